"""Curators' datasets in and out: exports (create a job, follow it, cancel it, download it; or
download a small selection directly; only the curator who asked, or staff, sees one) and
imports of existing annotations."""

from __future__ import annotations

import tempfile

from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.exports.annotations import IMPORT_FORMATS
from datasets.exports.formats import FORMATS
from datasets.models import DatasetExport, DatasetVersion
from datasets.services.annotation_imports import annotations_import
from datasets.services.exports import (
    ExportRequestError,
    export_cancel,
    export_create,
    export_may_download,
    export_options_parse,
    export_path,
    export_selection,
    export_stream,
)
from labeling.api.permissions import IsCurator
from labeling.api.views import ImportThrottle


class ExportSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)
    progress = serializers.FloatField(read_only=True)
    download_url = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetExport
        fields = [
            "uid",
            "version",
            "format",
            "archive",
            "options",
            "status",
            "progress",
            "images_total",
            "images_done",
            "images_written",
            "byte_size",
            "sha256",
            "error",
            "created_at",
            "finished_at",
            "expires_at",
            "status_url",
            "download_url",
        ]

    def get_status_url(self, export: DatasetExport) -> str:
        return reverse("api-export", args=[export.uid])

    def get_download_url(self, export: DatasetExport) -> str | None:
        if export.status != DatasetExport.Status.DONE:
            return None
        return reverse("api-export-download", args=[export.uid])


class ExportRequestSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        required=False, allow_null=True, help_text="A version number; none: snapshot one now."
    )
    format = serializers.ChoiceField(choices=FORMATS)
    options = serializers.DictField(required=False, default=dict)


def _version(number: int | None) -> DatasetVersion | None:
    if number is None:
        return None
    version = DatasetVersion.objects.filter(number=number).first()
    if version is None:
        raise ExportRequestError(f"There is no dataset version {number}.")
    return version


def _visible(request: Request) -> QuerySet[DatasetExport]:
    exports = DatasetExport.objects.select_related("version")
    return exports if request.user.is_staff else exports.filter(requested_by=request.user)


class ExportListCreateView(generics.ListAPIView):
    """Your exports (staff: everyone's), newest first; POST asks for a new one."""

    permission_classes = [IsCurator]
    serializer_class = ExportSerializer

    def get_queryset(self) -> QuerySet[DatasetExport]:
        return _visible(self.request)

    @extend_schema(request=ExportRequestSerializer, responses={201: ExportSerializer})
    def post(self, request: Request) -> Response:
        asked = ExportRequestSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        try:
            export = export_create(
                by=request.user,
                kind=asked.validated_data["format"],
                options=asked.validated_data["options"],
                version=_version(asked.validated_data.get("version")),
            )
        except ExportRequestError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ExportSerializer(export).data, status=status.HTTP_201_CREATED)


class ExportDetailView(generics.RetrieveAPIView):
    """One export's status and progress."""

    permission_classes = [IsCurator]
    serializer_class = ExportSerializer
    lookup_field = "uid"

    def get_queryset(self) -> QuerySet[DatasetExport]:
        return _visible(self.request)


class ExportCancelView(APIView):
    permission_classes = [IsCurator]

    @extend_schema(request=None, responses={200: ExportSerializer})
    def post(self, request: Request, uid: str) -> Response:
        export = get_object_or_404(_visible(request), uid=uid)
        return Response(ExportSerializer(export_cancel(export=export)).data)


class ExportDownloadView(APIView):
    """The finished archive, to the curator who asked for it (or staff)."""

    permission_classes = [IsCurator]

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, uid: str) -> FileResponse | Response:
        export = get_object_or_404(DatasetExport, uid=uid)
        if not export_may_download(export, request.user):
            raise Http404("No such export.")
        if export.status == DatasetExport.Status.EXPIRED:
            return Response(
                {"detail": "This export has expired and its archive is deleted; export again."},
                status=status.HTTP_410_GONE,
            )
        if export.status != DatasetExport.Status.DONE:
            return Response(
                {"detail": f"This export is {export.status}: its archive is not ready."},
                status=status.HTTP_409_CONFLICT,
            )
        try:
            archive = export_path(export).open()
        except FileNotFoundError:  # expired between the status read and the open
            return Response(
                {"detail": "This export's archive is gone (expired or removed); export again."},
                status=status.HTTP_410_GONE,
            )
        # Streamed from the exports store.
        response = FileResponse(archive, as_attachment=True, filename=export.file_name)
        response["Content-Type"] = (
            "application/zip" if export.archive == "zip" else "application/x-tar"
        )
        response["X-Content-SHA256"] = export.sha256
        return response


class ExportDirectView(APIView):
    """A small export written now and downloaded in the same request (at most
    CROWDNET_EXPORT_DIRECT_MAX images); larger ones are jobs."""

    permission_classes = [IsCurator]

    @extend_schema(
        request=ExportRequestSerializer, responses={(200, "application/octet-stream"): bytes}
    )
    def post(self, request: Request) -> FileResponse | Response:
        asked = ExportRequestSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        try:
            number = asked.validated_data.get("version")
            if number is None:
                raise ExportRequestError("A direct download needs a version number.")
            version = _version(number)
            assert version is not None
            options = export_options_parse(asked.validated_data["options"])
            selection = export_selection(version, options)
            count = selection.items().count()
            if count > settings.CROWDNET_EXPORT_DIRECT_MAX:
                raise ExportRequestError(
                    f"This selection has {count} images, more than the "
                    f"{settings.CROWDNET_EXPORT_DIRECT_MAX} a direct download allows; ask for "
                    "an export job instead (POST /api/exports/)."
                )
            kind = asked.validated_data["format"]
            # spooled: memory up to a few MiB, then a temporary file, never the whole dataset
            out = tempfile.SpooledTemporaryFile(max_size=8 * 2**20)  # noqa: SIM115  FileResponse closes it
            export_stream(selection, kind, out)
        except ValueError as error:  # ExportRequestError, or a format refusing the options
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        out.seek(0)
        name = f"crowdnet-v{version.number}-{kind}.{options.archive}"
        return FileResponse(out, as_attachment=True, filename=name)


class AnnotationImportSerializer(serializers.Serializer):
    archive = serializers.FileField(help_text="A zip or tar of images and annotation files.")
    format = serializers.ChoiceField(choices=IMPORT_FORMATS)
    prefill = serializers.BooleanField(
        default=False, help_text="Open labels and proposed boxes for the crowd to verify."
    )


class RecordErrorSerializer(serializers.Serializer):
    record = serializers.CharField(help_text="The file and record in error, e.g. a.json#3.")
    message = serializers.CharField()


class AnnotationImportReportSerializer(serializers.Serializer):
    """What an import wrote; with errors, nothing was written."""

    images = serializers.IntegerField()
    labels = serializers.IntegerField()
    boxes = serializers.IntegerField()
    categories_created = serializers.ListField(child=serializers.CharField())
    errors = RecordErrorSerializer(many=True)


class AnnotationImportView(APIView):
    """Import existing annotations (COCO, VOC, YOLO, ImageFolder, Label Studio): 201 with what
    was written, or 400 with every bad record and nothing written."""

    permission_classes = [IsCurator]
    parser_classes = [MultiPartParser]
    throttle_classes = [ImportThrottle]
    throttle_scope = "imports"

    @extend_schema(
        request={"multipart/form-data": AnnotationImportSerializer},
        responses={201: AnnotationImportReportSerializer, 400: AnnotationImportReportSerializer},
    )
    def post(self, request: Request) -> Response:
        asked = AnnotationImportSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        upload = asked.validated_data["archive"]
        report = annotations_import(
            source=upload.file,
            kind=asked.validated_data["format"],
            by=request.user,
            prefill=asked.validated_data["prefill"],
        )
        code = status.HTTP_201_CREATED if report.ok else status.HTTP_400_BAD_REQUEST
        return Response(report.as_dict(), status=code)
