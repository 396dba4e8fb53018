"""Curators' consensus API: the review queue, overrides, and re-aggregation runs."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.permissions import IsCurator
from labeling.api.serializers import ImageLinksMixin
from labeling.models import Candidate, ConsensusRun, User
from labeling.services.consensus import decision_override, model_disagreements, review_queue
from labeling.services.contested import contested_items, suspect_list
from labeling.services.dashboards import crowd_quality, labeling_progress
from labeling.services.microtasks import worker_pause, worker_profile


class ReviewItemSerializer(ImageLinksMixin, serializers.ModelSerializer):
    """A candidate as a curator reviews it: the image, the category and the crowd's tally;
    ``box_state`` "review" marks an accepted image whose drawers disagree (some found none)."""

    category_name = serializers.CharField(source="category.name", read_only=True)

    class Meta:
        model = Candidate
        fields = [
            "id",
            "category",
            "category_name",
            "state",
            "yes_votes",
            "no_votes",
            "unsure_votes",
            "posterior",
            "confidence",
            "override",
            "box_state",
            "thumbnail_url",
            "image_url",
        ]
        read_only_fields = fields


class DecisionSerializer(serializers.Serializer):
    accepted = serializers.BooleanField(
        allow_null=True, help_text="true accepts, false rejects, null gives it back to the crowd."
    )


class ConsensusRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsensusRun
        fields = [
            "id",
            "trigger",
            "status",
            "started_at",
            "finished_at",
            "items",
            "votes",
            "workers",
            "iterations",
            "warm_start",
            "changed",
            "log_likelihood",
            "seconds",
            "error",
        ]
        read_only_fields = fields


class ReviewQueueView(generics.ListAPIView):
    """Candidates the crowd could not decide within the vote cap, for a curator's decision."""

    permission_classes = [IsCurator]
    serializer_class = ReviewItemSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return review_queue().select_related("image", "category")


class DisagreementSerializer(ReviewItemSerializer):
    class Meta(ReviewItemSerializer.Meta):
        fields = [*ReviewItemSerializer.Meta.fields, "model_p"]


class DisagreementsView(generics.ListAPIView):
    """Items the crowd decided and the current model strongly contradicts, strongest first."""

    permission_classes = [IsCurator]
    serializer_class = DisagreementSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return model_disagreements().select_related("image", "category")


class ContestedSerializer(ReviewItemSerializer):
    contradictions = serializers.IntegerField(
        read_only=True,
        help_text="Workers paused by the peer-agreement gate, with a good control record, who "
        "voted against the crowd's call on it.",
    )

    class Meta(ReviewItemSerializer.Meta):
        fields = [*ReviewItemSerializer.Meta.fields, "contradictions"]


class ContestedView(generics.ListAPIView):
    """Decided items the crowd called against workers whom the peer-agreement gate paused
    while their control record held, most contradicted first. A decision here checks every
    earlier label vote on the item (labeling.services.contested)."""

    permission_classes = [IsCurator]
    serializer_class = ContestedSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return contested_items().select_related("image", "category")


class SuspectSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    gold_seen = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    blind_seen = serializers.IntegerField(help_text="Label votes checked by curators' decisions.")
    blind_correct = serializers.IntegerField()
    cleared = serializers.BooleanField(
        help_text="The evidence that paused him (peer agreement, or control items re-scored "
        "against curators' answers) is back below every threshold."
    )


class ContestedWorkersView(APIView):
    """Workers the peer-agreement gate paused while their control record held: either they
    tell control items apart and vote wrong elsewhere, or the crowd they contradicted is
    wrong; and workers the control tests paused whose control items, re-scored against
    curators' decisions, no longer support the pause. ``cleared``: curators' decisions have
    taken that evidence away; resume them."""

    permission_classes = [IsCurator]

    @extend_schema(responses={200: SuspectSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(SuspectSerializer(suspect_list(), many=True).data)


class DecisionView(APIView):
    """A curator's decision on a candidate; it wins over the crowd's, now and later."""

    permission_classes = [IsCurator]

    @extend_schema(request=DecisionSerializer, responses={200: ReviewItemSerializer})
    def post(self, request: Request, pk: int) -> Response:
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        candidate = get_object_or_404(Candidate, pk=pk)
        candidate = decision_override(
            candidate=candidate, accepted=serializer.validated_data["accepted"], by=request.user
        )
        return Response(ReviewItemSerializer(candidate).data)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ConsensusRunsView(APIView):
    """Re-aggregation runs: list them, or queue one now."""

    permission_classes = [IsCurator]

    @extend_schema(responses={200: ConsensusRunSerializer(many=True)})
    def get(self, request: Request) -> Response:
        runs = ConsensusRun.objects.all()[:50]
        return Response(ConsensusRunSerializer(runs, many=True).data)

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(DetailSerializer, description="Queued for a Celery worker.")
        },
    )
    def post(self, request: Request) -> Response:
        from labeling.tasks import consensus_reaggregate

        user_id = request.user.pk
        transaction.on_commit(
            lambda: consensus_reaggregate.delay(ConsensusRun.Trigger.MANUAL, user_id)
        )
        return Response({"detail": "Re-aggregation queued."}, status=status.HTTP_202_ACCEPTED)


class LabelingProgressView(APIView):
    """Per category: candidates by state, accepted images boxed (``boxed``), with none present
    (``none_present``), waiting for boxes (``awaiting_boxes``) and disputed by their drawers
    (``boxes_disputed``), votes per decided item, agreement and
    progress toward the target; label votes per hour (``?hours=``, 1-720, default 72)."""

    permission_classes = [IsCurator]

    @extend_schema(responses={200: OpenApiResponse(description="categories and votes per hour")})
    def get(self, request: Request) -> Response:
        try:
            hours = int(request.query_params.get("hours", 72))
        except ValueError:
            hours = -1
        if not 1 <= hours <= 720:
            return Response(
                {"detail": "hours must be a whole number from 1 to 720."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(labeling_progress(hours=hours))


class CrowdWorkerSerializer(serializers.Serializer):
    """One worker's record; accuracies are fractions in [0, 1], null before there is data."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    answered_tasks = serializers.IntegerField()
    answered_items = serializers.IntegerField()
    gold_seen = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    em_accuracy = serializers.FloatField(allow_null=True, help_text="Dawid-Skene accuracy.")
    spammer_score = serializers.FloatField(allow_null=True)
    seconds_per_item = serializers.FloatField(allow_null=True)
    paused = serializers.BooleanField()
    pause_reason = serializers.CharField(help_text="What the worker is told.")
    pause_detail = serializers.CharField(help_text="The evidence behind it, for curators.")
    last_answer_at = serializers.DateTimeField(allow_null=True)


class CrowdQualitySerializer(serializers.Serializer):
    workers = CrowdWorkerSerializer(many=True)
    bins = serializers.ListField(
        child=serializers.FloatField(), help_text="Histogram bin edges, 0 to 1."
    )
    gold_accuracy = serializers.ListField(
        child=serializers.IntegerField(), help_text="Workers per bin."
    )
    em_accuracy = serializers.ListField(
        child=serializers.IntegerField(), help_text="Workers per bin."
    )


class CrowdQualityView(APIView):
    """Every worker's answers, gold accuracy, model accuracy, spammer score, speed and state,
    with histograms of both accuracies."""

    permission_classes = [IsCurator]

    @extend_schema(responses={200: CrowdQualitySerializer})
    def get(self, request: Request) -> Response:
        return Response(crowd_quality())


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class WorkerPauseView(APIView):
    """Curators pause a worker; the reason is what the worker is shown."""

    permission_classes = [IsCurator]

    @extend_schema(request=PauseSerializer, responses={204: None})
    def post(self, request: Request, pk: int) -> Response:
        worker = get_object_or_404(User, pk=pk, role=User.Role.WORKER)
        asked = PauseSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        worker_pause(profile=worker_profile(worker), reason=asked.validated_data["reason"])
        return Response(status=status.HTTP_204_NO_CONTENT)
