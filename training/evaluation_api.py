"""Curators' API for evaluation sets: list, freeze a new version, one set with its scores."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.permissions import IsCurator
from labeling.models import Category
from training.models import EvaluationScore, EvaluationSet
from training.services.evaluation import EvaluationRefused, evaluation_freeze, evaluation_waiting


class EvaluationSetSerializer(serializers.ModelSerializer):
    """An evaluation version; ``counts`` are images per class in ``classes`` order."""

    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = EvaluationSet
        fields = [
            "id",
            "category_key",
            "number",
            "created_at",
            "created_by",
            "classes",
            "counts",
            "images",
            "note",
        ]
        read_only_fields = fields


class EvaluationScoreSerializer(serializers.ModelSerializer):
    """A run's errors on the set, fractions in [0, 1]."""

    class Meta:
        model = EvaluationScore
        fields = ["run", "images", "top1_error", "top5_error", "created_at"]
        read_only_fields = fields


class EvaluationDetailSerializer(EvaluationSetSerializer):
    waiting_for_scrutiny = serializers.IntegerField(
        help_text="Reserved accepted labels of these categories that a curator's review (or "
        "more votes) would add to a new version."
    )
    scores = EvaluationScoreSerializer(many=True)

    class Meta(EvaluationSetSerializer.Meta):
        fields = [*EvaluationSetSerializer.Meta.fields, "waiting_for_scrutiny", "scores"]
        read_only_fields = fields


class FreezeSerializer(serializers.Serializer):
    categories = serializers.PrimaryKeyRelatedField(
        queryset=Category.objects.all(),
        many=True,
        required=False,
        help_text="Category ids; the categories a dataset version would take when left out.",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class EvaluationsView(generics.ListAPIView):
    """Evaluation sets by category set, newest version first; POST freezes a new version."""

    permission_classes = [IsCurator]
    serializer_class = EvaluationSetSerializer
    queryset = EvaluationSet.objects.select_related("created_by")

    @extend_schema(
        request=FreezeSerializer,
        responses={
            201: EvaluationSetSerializer,
            400: OpenApiResponse(description="Too few eligible images, nothing new, bad input."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = FreezeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            evaluation = evaluation_freeze(
                categories=serializer.validated_data.get("categories"),
                by=request.user,
                note=serializer.validated_data["note"],
            )
        except EvaluationRefused as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(EvaluationSetSerializer(evaluation).data, status=status.HTTP_201_CREATED)


class EvaluationDetailView(APIView):
    """One evaluation version with its counts, the runs scored on it, and how many reserved
    labels wait for scrutiny."""

    permission_classes = [IsCurator]

    @extend_schema(responses={200: EvaluationDetailSerializer})
    def get(self, request: Request, pk: int) -> Response:
        evaluation = get_object_or_404(EvaluationSet.objects.select_related("created_by"), pk=pk)
        data: dict[str, Any] = {
            **EvaluationSetSerializer(evaluation).data,
            "waiting_for_scrutiny": evaluation_waiting(c["id"] for c in evaluation.classes),
            "scores": EvaluationScoreSerializer(
                evaluation.scores.order_by("run_id"), many=True
            ).data,
        }
        return Response(data)
