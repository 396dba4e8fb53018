"""A curator opens, changes and closes campaigns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from campaigns.models import Campaign, Marketplace
from labeling.models import Category, TaskKind, User


def _check(fields: dict[str, Any], categories: Sequence[Category]) -> None:
    kinds = fields.get("kinds") or []
    if not kinds or any(kind not in TaskKind.values for kind in kinds):
        raise ValidationError({"kinds": f"Choose one or more of {', '.join(TaskKind.values)}."})
    if not categories or any(c.archived_at is not None for c in categories):
        raise ValidationError({"categories": "Choose one or more categories in use."})
    marketplace = fields.get("marketplace")
    if marketplace == Marketplace.PROLIFIC and not fields.get("completion_url"):
        raise ValidationError({"completion_url": "A Prolific campaign needs its completion URL."})
    if fields.get("bonus_rule", "none") != "none" and not fields.get("bonus_cents"):
        raise ValidationError({"bonus_cents": "A bonus rule needs a bonus amount."})


def campaign_create(*, created_by: User, categories: Sequence[Category], **fields: Any) -> Campaign:
    """Open a campaign over ``categories``; writes it and its category links."""
    if not created_by.is_curator:
        raise PermissionDenied("Only curators open campaigns.")
    _check(fields, categories)
    with transaction.atomic():
        campaign = Campaign(created_by=created_by, **fields)
        campaign.full_clean(exclude=["categories"])
        campaign.save()
        campaign.categories.set(categories)
    return campaign


def campaign_state_set(*, campaign: Campaign, state: str) -> Campaign:
    """Open or close a campaign; a closed one admits nobody new. Writes the campaign."""
    if state not in Campaign.State.values:
        raise ValidationError({"state": f"Use one of {', '.join(Campaign.State.values)}."})
    campaign.state = state
    campaign.save(update_fields=["state"])
    return campaign
