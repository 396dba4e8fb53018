"""Curators' training API: dataset versions, training runs, promotion, and predictions."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.http import FileResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.file_stores import stored_read
from datasets.models import DatasetVersion
from datasets.services.versions import DatasetTooSmall, dataset_snapshot
from labeling.api.permissions import IsCurator
from labeling.api.serializers import ImageLinksMixin
from labeling.ingest.validation import ImageRejected
from labeling.models import Category
from training.dashboard_serializers import ArchitectureSerializer, ModelErrorSerializer
from training.ml.catalog import CheckpointCorrupt, sha256_file
from training.models import TrainingEpoch, TrainingRun, ValidationMistake
from training.services.checkpoints import run_checkpoint
from training.services.dashboards import architecture_summary, model_error_history, run_detail
from training.services.promotion import promotion_by_hand
from training.services.runs import (
    NoCurrentModel,
    RunBusy,
    RunInvalid,
    run_cancel,
    run_create,
)

log = logging.getLogger(__name__)

CHECKPOINT_UNREADABLE = (
    "The current model's checkpoint cannot be read; promote another run or train a new one."
)


def upload_read(upload: UploadedFile) -> bytes:
    """An uploaded image's bytes; ImageRejected without reading it when it is over the limit
    (the validator would say so too, but only after holding all of it in memory)."""
    limit = settings.CROWDNET_MAX_IMAGE_BYTES
    if upload.size is not None and upload.size > limit:
        raise ImageRejected(
            "too_large",
            f"the file is {upload.size:,} bytes, more than the limit of {limit:,} bytes; "
            "resize or recompress it before uploading",
        )
    return upload.read()


class DatasetVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetVersion
        fields = ["number", "created_at", "classes", "counts", "val_share", "images", "skipped"]
        read_only_fields = fields


class SnapshotSerializer(serializers.Serializer):
    categories = serializers.PrimaryKeyRelatedField(
        queryset=Category.objects.all(),
        many=True,
        required=False,
        help_text="Category ids to include; every category when left out.",
    )
    val_share = serializers.FloatField(
        min_value=0.01,
        max_value=0.9,
        required=False,
        help_text="Share of images kept for validation; CROWDNET_TRAIN_VAL_SHARE when left out.",
    )


class EpochSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingEpoch
        fields = [
            "epoch",
            "train_loss",
            "val_loss",
            "top1_error",
            "top5_error",
            "images_per_second",
            "seconds",
        ]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    """A run as listed; errors are fractions in [0, 1], seconds of wall time."""

    version = serializers.IntegerField(source="version.number", read_only=True)
    attempts = serializers.IntegerField(source="attempt", read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "version",
            "backbone",
            "weights",
            "mode",
            "params",
            "trigger",
            "status",
            "cancel_requested",
            "attempts",
            "device",
            "created_at",
            "started_at",
            "finished_at",
            "seconds",
            "top1_error",
            "top5_error",
            "best_epoch",
            "current",
            "error",
        ]
        read_only_fields = fields


class ClassErrorSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    error = serializers.FloatField(allow_null=True, help_text="None: no validation image.")


class MistakeSerializer(ImageLinksMixin, serializers.ModelSerializer):
    """A validation image the run gets most wrong; class indexes count in `classes`."""

    image = serializers.UUIDField(source="image.uid", read_only=True)

    class Meta:
        model = ValidationMistake
        fields = [
            "rank",
            "image",
            "thumbnail_url",
            "image_url",
            "label",
            "predicted",
            "confidence",
            "label_probability",
        ]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    """A run with its epochs, per-class error, confusion[true][predicted] in class order and
    the validation images it gets most wrong (the lowest probability on the label first)."""

    classes = serializers.SerializerMethodField()
    per_class_error = serializers.SerializerMethodField()
    epochs = EpochSerializer(many=True, read_only=True)
    mistakes = MistakeSerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [
            *RunSerializer.Meta.fields,
            "classes",
            "per_class_error",
            "confusion",
            "epochs",
            "mistakes",
        ]
        read_only_fields = fields

    def get_classes(self, run: TrainingRun) -> list[str]:
        return [c["name"] for c in run.version.classes]

    @extend_schema_field(ClassErrorSerializer(many=True, allow_null=True))
    def get_per_class_error(self, run: TrainingRun) -> list[dict[str, Any]] | None:
        if run.per_class_error is None:
            return None
        return [
            {"slug": c["slug"], "name": c["name"], "error": error}
            for c, error in zip(run.version.classes, run.per_class_error, strict=False)
        ]


class RunCreateSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The dataset version's number.")
    backbone = serializers.CharField()
    weights = serializers.CharField(default="imagenet")
    mode = serializers.CharField(default=TrainingRun.Mode.FEATURE_EXTRACTION)
    params = serializers.DictField(
        default=dict, help_text="epochs, batch_size, lr, weight_decay, patience, seed, image_size"
    )


class PredictSerializer(serializers.Serializer):
    image = serializers.FileField()


class PredictionSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    probability = serializers.FloatField()


class PredictResultSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    predictions = PredictionSerializer(many=True)


class VersionsView(generics.ListAPIView):
    """Dataset versions, newest first; POST freezes the accepted labels into a new one."""

    permission_classes = [IsCurator]
    serializer_class = DatasetVersionSerializer
    queryset = DatasetVersion.objects.all()

    @extend_schema(
        request=SnapshotSerializer,
        responses={
            201: DatasetVersionSerializer,
            400: OpenApiResponse(description="Too few accepted labels, or bad input."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = SnapshotSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            version = dataset_snapshot(
                categories=serializer.validated_data.get("categories"),
                val_share=serializer.validated_data.get("val_share"),
                by=request.user,
            )
        except DatasetTooSmall as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class RunsView(generics.ListAPIView):
    """Training runs, newest first; POST queues one (one run at a time)."""

    permission_classes = [IsCurator]
    serializer_class = RunSerializer

    def get_queryset(self) -> QuerySet[TrainingRun]:
        return TrainingRun.objects.select_related("version")

    @extend_schema(
        request=RunCreateSerializer,
        responses={
            201: RunSerializer,
            400: OpenApiResponse(description="{field: [message]} for the setting in error."),
            404: OpenApiResponse(description="No dataset version has that number."),
            409: OpenApiResponse(description="Another run is queued or running."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = RunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = get_object_or_404(DatasetVersion, number=data["version"])
        try:
            run = run_create(
                version=version,
                backbone=data["backbone"],
                weights=data["weights"],
                mode=data["mode"],
                params=data["params"],
                by=request.user,
            )
        except RunInvalid as error:
            return Response({error.field: [error.message]}, status=status.HTTP_400_BAD_REQUEST)
        except RunBusy as busy:
            return Response({"detail": str(busy)}, status=status.HTTP_409_CONFLICT)
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


def _run(pk: int) -> TrainingRun:
    return get_object_or_404(TrainingRun.objects.select_related("version"), pk=pk)


class RunDetailView(APIView):
    """One run with its learning curves and per-class results."""

    permission_classes = [IsCurator]

    @extend_schema(responses={200: RunDetailSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return Response(RunDetailSerializer(run_detail(pk)).data)


class RunArchitectureView(APIView):
    """The run's layer table: each leaf layer's output shape and parameters, and whether it
    trains in the run's mode, with the totals."""

    permission_classes = [IsCurator]

    @extend_schema(
        responses={
            200: ArchitectureSerializer,
            404: OpenApiResponse(description="No such run, or it has not started training."),
        }
    )
    def get(self, request: Request, pk: int) -> Response:
        run = get_object_or_404(TrainingRun.objects.only("architecture"), pk=pk)
        if run.architecture is None:
            raise NotFound(
                f"Run {pk} has no layer table: it is written when a run starts training."
            )
        return Response(architecture_summary(run.architecture))


class RunCancelView(APIView):
    """Stop a run: a queued one at once, a running one after its current batch."""

    permission_classes = [IsCurator]

    @extend_schema(request=None, responses={200: RunSerializer})
    def post(self, request: Request, pk: int) -> Response:
        return Response(RunSerializer(run_cancel(_run(pk))).data)


class RunPromoteView(APIView):
    """Make a finished run the current model, the one that predicts; the promotion is
    recorded with the two models' figures on the current evaluation set where there is one."""

    permission_classes = [IsCurator]

    @extend_schema(
        request=None,
        responses={200: RunSerializer, 400: OpenApiResponse(description="Not a finished run.")},
    )
    def post(self, request: Request, pk: int) -> Response:
        try:
            promotion = promotion_by_hand(run=_run(pk), by=request.user)
        except RunInvalid as error:
            return Response({"detail": error.message}, status=status.HTTP_400_BAD_REQUEST)
        return Response(RunSerializer(_run(promotion.candidate_id)).data)


class RunCheckpointView(APIView):
    """Download a finished run's checkpoint, after its sha256 is checked against the one
    recorded when it was written (a checkpoint is only ever renamed into place whole)."""

    permission_classes = [IsCurator]

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The .pt file."
            ),
            404: OpenApiResponse(description="No such run, or it has no checkpoint."),
            409: OpenApiResponse(description="The file no longer matches its recorded hash."),
        }
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        run = _run(pk)
        stored = run_checkpoint(run)
        if stored is None or not stored.exists():
            raise NotFound("This run has no checkpoint.")
        # One read of the store: the bytes hashed are the bytes served. A temporary copy's
        # folder is removed when the block ends; the open handle still reads it (POSIX).
        with stored_read(stored) as path:
            if sha256_file(path) != run.checkpoint_sha256:
                return Response(
                    {
                        "detail": "The checkpoint no longer matches its recorded sha256; it was "
                        "changed or damaged, so it is not served."
                    },
                    status=status.HTTP_409_CONFLICT,
                )
            handle = path.open("rb")
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=f"crowdnet-run-{run.pk}-{run.backbone}.pt",
            content_type="application/octet-stream",
        )
        response["X-Checkpoint-SHA256"] = run.checkpoint_sha256
        return response


class PredictView(APIView):
    """The current model's top-5 classes for an uploaded image (multipart, field ``image``)."""

    permission_classes = [IsCurator]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": PredictSerializer},
        responses={
            200: PredictResultSerializer,
            400: OpenApiResponse(description='{"image": [message]} for a rejected upload.'),
            409: OpenApiResponse(description="No model is current yet."),
            503: OpenApiResponse(description="The current model's checkpoint is unreadable."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = PredictSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            # Scoring needs torch, which only this request loads (14 s cold): the rest of the
            # web process never imports it.
            from training.services.scoring import predict

            run, predictions = predict(upload_read(serializer.validated_data["image"]))
        except ImageRejected as rejected:
            return Response({"image": [rejected.message]}, status=status.HTTP_400_BAD_REQUEST)
        except NoCurrentModel as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        except (CheckpointCorrupt, OSError):
            log.exception("the current model's checkpoint cannot be read")
            return Response(
                {"detail": CHECKPOINT_UNREADABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE
            )
        body: dict[str, Any] = {
            "run": run.pk,
            "predictions": [PredictionSerializer(p).data for p in predictions],
        }
        return Response(body)


class ModelErrorView(APIView):
    """Top-1 and top-5 error of every finished run on each evaluation set version it was
    scored on, with Wilson 95 % bands, one series per version; runs with no score listed
    apart; the current model flagged."""

    permission_classes = [IsCurator]

    @extend_schema(responses={200: ModelErrorSerializer})
    def get(self, request: Request) -> Response:
        return Response(model_error_history())
