"""The curator's campaign form: shape and validate browser input for campaign_create."""

from __future__ import annotations

from django import forms

from campaigns.models import CAMPAIGN_FIELDS, Campaign
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
        fields = list(CAMPAIGN_FIELDS)
        labels = {
            "reward_cents": "Reward per task (cents)",
            "bonus_cents": "Bonus (cents)",
            "bonus_threshold": "Bonus threshold (control accuracy, 0-1)",
        }
