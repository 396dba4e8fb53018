"""The campaign API: curators manage campaigns and read their pay; a worker asks for the
next task of their own assignment."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from campaigns.api.serializers import (
    AssignmentSerializer,
    CampaignSerializer,
    CampaignStateSerializer,
    CampaignSummarySerializer,
    LedgerEntrySerializer,
    ReviewSerializer,
    campaign_fields,
)
from campaigns.exports import EXPORTS, export_csv
from campaigns.models import Campaign
from campaigns.services.manage import campaign_create, campaign_state_set
from campaigns.services.pay import campaign_review, campaign_summary
from campaigns.services.work import AssignmentNotFound, assignment_task_next
from labeling.api.permissions import IsCurator
from labeling.api.task_serializers import TASK_SCHEMA
from labeling.api.tasks import EMPTY_REASON_HEADER, TaskIPThrottle, TaskThrottle, task_body
from labeling.services.microtasks import WorkerPaused
from labeling.services.task_pool import task_empty_reason

FINISHED_REASON = "finished"
"""Crowdnet-Empty-Reason of a 204 when the assignment is finished and its code issued."""


class CampaignViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Campaigns (curators only): open one, list them, read one's summary, assignments and
    ledger, review submitted assignments, and download the marketplace CSV files."""

    permission_classes = [IsCurator]
    serializer_class = CampaignSerializer
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[Campaign]:
        return Campaign.objects.prefetch_related("categories")

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        try:
            serializer.instance = campaign_create(
                created_by=self.request.user,
                categories=data["categories"],
                **campaign_fields(data),
            )
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None

    @extend_schema(request=CampaignStateSerializer, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def state(self, request: Request, slug: str) -> Response:
        """Open or close the campaign; a closed one admits nobody new."""
        serializer = CampaignStateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_state_set(
            campaign=self.get_object(), state=serializer.validated_data["state"]
        )
        return Response(self.get_serializer(campaign).data)

    @extend_schema(responses=CampaignSummarySerializer)
    @action(detail=True)
    def summary(self, request: Request, slug: str) -> Response:
        """Spent (cents), per accepted label and per worker."""
        return Response(CampaignSummarySerializer(campaign_summary(self.get_object())).data)

    @extend_schema(responses=AssignmentSerializer(many=True))
    @action(detail=True)
    def assignments(self, request: Request, slug: str) -> Response:
        """The campaign's assignments, oldest first (paginated)."""
        rows = self.get_object().assignments.select_related("worker").order_by("id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(AssignmentSerializer(page, many=True).data)

    @extend_schema(responses=LedgerEntrySerializer(many=True))
    @action(detail=True)
    def ledger(self, request: Request, slug: str) -> Response:
        """What each worker earned, entry by entry (paginated)."""
        rows = self.get_object().ledger.select_related("worker", "assignment").order_by("id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(LedgerEntrySerializer(page, many=True).data)

    @extend_schema(request=None, responses=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def review(self, request: Request, slug: str) -> Response:
        """Approve every submitted assignment, or reject it with the reason when a quality
        gate paused its worker; approvals write the ledger."""
        result = campaign_review(campaign=self.get_object())
        return Response(ReviewSerializer(result).data)

    @extend_schema(
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH, enum=list(EXPORTS))],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    @action(detail=True, url_path=r"exports/(?P<name>[a-z-]+)")
    def export(self, request: Request, slug: str, name: str) -> HttpResponse:
        """A CSV file: mturk-review, mturk-bonus, prolific-review, prolific-bonus or ledger
        (the columns are described in the README)."""
        if name not in EXPORTS:
            raise NotFound(f"No export {name!r}; use one of {', '.join(EXPORTS)}.")
        campaign = self.get_object()
        response = HttpResponse(export_csv(campaign, name), content_type="text/csv")
        filename = f"{campaign.slug}-{name}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class AssignmentNextView(APIView):
    """The next task of the signed-in worker's own assignment; 204 when there is none, with
    Crowdnet-Empty-Reason "finished" once the assignment is done (its code is issued)."""

    throttle_classes = [TaskThrottle, TaskIPThrottle]
    throttle_scope = "tasks"

    @extend_schema(
        responses={
            200: TASK_SCHEMA,
            204: OpenApiResponse(
                description="No task: Crowdnet-Empty-Reason is finished (the assignment is "
                "done; its completion page shows the code), no-work or done."
            ),
            403: OpenApiResponse(description="The worker is paused; the reason is given."),
            404: OpenApiResponse(description="No such assignment for this worker."),
        }
    )
    def get(self, request: Request, uid: str) -> Response:
        try:
            work = assignment_task_next(uid=uid, user=request.user)
        except AssignmentNotFound:
            raise NotFound("No such assignment.") from None
        except WorkerPaused as paused:
            raise PermissionDenied(f"Your account is paused: {paused.reason}") from None
        if work.task is not None:
            return Response(task_body(work.task))
        reason = FINISHED_REASON if work.finished else task_empty_reason().value
        return Response(status=status.HTTP_204_NO_CONTENT, headers={EMPTY_REASON_HEADER: reason})
