"""The curator's campaign form: shape and validate browser input for campaign_create."""

from __future__ import annotations

from django import forms

from campaigns.models import Campaign
from labeling.models import Category, TaskKind


class CampaignForm(forms.ModelForm):
    categories = forms.ModelMultipleChoiceField(
        queryset=Category.objects.active().order_by("name"),
        widget=forms.CheckboxSelectMultiple,
    )
    completion_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="Prolific: where a finished participant is sent (with its cc=).",
    )
    kinds = forms.MultipleChoiceField(
        choices=TaskKind.choices, widget=forms.CheckboxSelectMultiple, label="Task kinds"
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "slug",
            "marketplace",
            "categories",
            "kinds",
            "reward_cents",
            "bonus_rule",
            "bonus_cents",
            "bonus_threshold",
            "tasks_per_assignment",
            "cap_per_worker",
            "prolific_study_id",
            "completion_url",
        ]
        labels = {
            "reward_cents": "Reward per task (cents)",
            "bonus_cents": "Bonus (cents)",
            "bonus_threshold": "Bonus threshold (control accuracy, 0-1)",
        }
