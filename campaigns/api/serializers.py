"""Campaign API serializers: shape and validate input, no side effects."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from campaigns.exports import money
from campaigns.models import CAMPAIGN_FIELDS, Assignment, Campaign, LedgerEntry
from labeling.api.serializers import CategorySlugField
from labeling.models import Category, TaskKind


class CampaignSerializer(serializers.ModelSerializer):
    categories = CategorySlugField(slug_field="slug", queryset=Category.objects.active(), many=True)
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=TaskKind.choices), allow_empty=False
    )
    link = serializers.SerializerMethodField(help_text="The entry link to give the marketplace.")

    class Meta:
        model = Campaign
        fields = ["id", *CAMPAIGN_FIELDS, "state", "link", "created_at"]
        read_only_fields = ["id", "state", "created_at"]

    def get_link(self, campaign: Campaign) -> str:
        path = reverse("campaign-entry", args=[campaign.slug])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class CampaignStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Campaign.State.choices)


class AssignmentSerializer(serializers.ModelSerializer):
    worker = serializers.CharField(source="worker.external_id")

    class Meta:
        model = Assignment
        fields = [
            "uid",
            "external_id",
            "group_id",
            "worker",
            "state",
            "completion_code",
            "started_at",
            "finished_at",
            "submitted_at",
            "reviewed_at",
            "reject_reason",
        ]


class LedgerEntrySerializer(serializers.ModelSerializer):
    worker = serializers.CharField(source="worker.external_id")
    assignment = serializers.CharField(source="assignment.external_id")
    amount = serializers.SerializerMethodField(help_text="amount_cents as dollars or pounds.")

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "worker",
            "assignment",
            "kind",
            "amount_cents",
            "amount",
            "tasks",
            "accepted_answers",
            "control_seen",
            "control_correct",
            "note",
            "created_at",
        ]

    def get_amount(self, entry: LedgerEntry) -> str:
        return money(entry.amount_cents)


class WorkerPaySerializer(serializers.Serializer):
    external_id = serializers.CharField()
    username = serializers.CharField()
    assignments = serializers.IntegerField()
    tasks = serializers.IntegerField()
    base_cents = serializers.IntegerField()
    bonus_cents = serializers.IntegerField()
    total_cents = serializers.IntegerField()


class CampaignSummarySerializer(serializers.Serializer):
    assignments = serializers.DictField(child=serializers.IntegerField())
    tasks_answered = serializers.IntegerField()
    base_cents = serializers.IntegerField()
    bonus_cents = serializers.IntegerField()
    spent_cents = serializers.IntegerField()
    accepted_labels = serializers.IntegerField()
    cents_per_accepted_label = serializers.DecimalField(
        max_digits=12, decimal_places=2, allow_null=True
    )
    workers = WorkerPaySerializer(many=True)


class ReviewSerializer(serializers.Serializer):
    approved = serializers.IntegerField()
    rejected = serializers.IntegerField()


def campaign_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Validated data without the categories, for campaign_create's keyword arguments."""
    return {key: value for key, value in data.items() if key != "categories"}
