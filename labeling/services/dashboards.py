"""What the curators' labeling dashboards show, aggregated in the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Avg, Case, Count, F, FloatField, Q, Sum, When
from django.db.models.functions import Cast, Greatest, TruncHour
from django.utils import timezone

from labeling.models import Candidate, Category, User, Vote

DECIDED = (Candidate.State.ACCEPTED, Candidate.State.REJECTED)
BOX_WAITING = (Candidate.BoxState.DRAW, Candidate.BoxState.VERIFY, Candidate.BoxState.COVERAGE)
"""Box stages of an accepted image still waiting for the crowd's boxes."""


def labeling_progress(*, hours: int = 72) -> dict[str, Any]:
    """Per category: candidates by state; accepted images boxed, confirmed to hold none,
    waiting for boxes and disputed by their drawers (in review); votes per decided item,
    agreement on decided items (the majority's share of their votes), accepted against the
    target; and label votes per hour over the last `hours`. Three queries."""
    decided = Q(state__in=DECIDED)
    accepted, boxes = Candidate.State.ACCEPTED, Candidate.BoxState
    rows = (
        Candidate.objects.values("category_id")
        .annotate(
            open=Count("id", filter=Q(state=Candidate.State.OPEN)),
            accepted=Count("id", filter=Q(state=Candidate.State.ACCEPTED)),
            rejected=Count("id", filter=Q(state=Candidate.State.REJECTED)),
            review=Count("id", filter=Q(state=Candidate.State.NEEDS_REVIEW)),
            boxed=Count("id", filter=Q(state=accepted, box_state=boxes.DONE)),
            none_present=Count("id", filter=Q(state=accepted, box_state=boxes.ABSENT)),
            awaiting_boxes=Count("id", filter=Q(state=accepted, box_state__in=BOX_WAITING)),
            boxes_disputed=Count("id", filter=Q(state=accepted, box_state=boxes.REVIEW)),
            decided_votes=Sum("votes_cast", filter=decided),
            agreement=Avg(
                Case(
                    When(
                        votes_cast__gt=0,
                        then=Cast(Greatest("yes_votes", "no_votes"), FloatField())
                        / F("votes_cast"),
                    ),
                    output_field=FloatField(),
                ),
                filter=decided,
            ),
        )
        .order_by()
    )
    by_category = {row["category_id"]: row for row in rows}
    categories = []
    for category in Category.objects.order_by("name").values("id", "name", "slug", "target_images"):
        row = by_category.get(category["id"], {})
        accepted, rejected = row.get("accepted", 0), row.get("rejected", 0)
        target = category["target_images"] or settings.CROWDNET_CATEGORY_TARGET
        decided_count = accepted + rejected
        categories.append(
            {
                "id": category["id"],
                "name": category["name"],
                "slug": category["slug"],
                "open": row.get("open", 0),
                "accepted": accepted,
                "rejected": rejected,
                "review": row.get("review", 0),
                "boxed": row.get("boxed", 0),
                "none_present": row.get("none_present", 0),
                "awaiting_boxes": row.get("awaiting_boxes", 0),
                "boxes_disputed": row.get("boxes_disputed", 0),
                "votes_per_decided": (
                    round(row["decided_votes"] / decided_count, 3) if decided_count else None
                ),
                "agreement": (
                    round(row["agreement"], 4) if row.get("agreement") is not None else None
                ),
                "target": target,
                "progress": round(min(1.0, accepted / target), 4),
            }
        )
    since = timezone.now() - timedelta(hours=hours)
    hourly = (
        Vote.objects.filter(created_at__gte=since, question="label")
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(votes=Count("id"))
        .order_by("hour")
    )
    return {
        "categories": categories,
        "votes_per_hour": [
            {"hour": row["hour"].isoformat(), "votes": row["votes"]} for row in hourly
        ],
        "hours": hours,
    }


BINS = 10  # histogram bins over [0, 1]


def _histogram(values: list[float]) -> list[int]:
    counts = [0] * BINS
    for value in values:
        counts[min(BINS - 1, int(value * BINS))] += 1
    return counts


def crowd_quality() -> dict[str, Any]:
    """Every worker: answers, gold accuracy, Dawid-Skene accuracy and spammer score, seconds
    per item, state; with histograms of both accuracies. One query: the counters live on the
    profile (kept by each answer and each re-aggregation), so no vote is read here."""
    workers = []
    for user in (
        User.objects.filter(role=User.Role.WORKER, is_staff=False)
        .select_related("profile")
        .order_by("username")
    ):
        profile = getattr(user, "profile", None)
        items = profile.answered_items if profile else 0
        gold_seen = profile.gold_seen if profile else 0
        workers.append(
            {
                "id": user.pk,
                "username": user.username,
                "answered_tasks": profile.answered_tasks if profile else 0,
                "answered_items": items,
                "gold_seen": gold_seen,
                "gold_accuracy": (
                    round(profile.gold_correct / gold_seen, 4) if profile and gold_seen else None
                ),
                "em_accuracy": profile.em_accuracy if profile else None,
                "spammer_score": profile.spammer_score if profile else None,
                "seconds_per_item": (
                    round(profile.seconds_total / items, 2) if profile and items else None
                ),
                "paused": bool(profile and profile.paused),
                "pause_reason": profile.pause_reason if profile else "",
                "pause_detail": profile.pause_detail if profile else "",
                "last_answer_at": (
                    profile.last_answer_at.isoformat()
                    if profile and profile.last_answer_at
                    else None
                ),
            }
        )
    return {
        "workers": workers,
        "bins": [round(i / BINS, 1) for i in range(BINS + 1)],
        "gold_accuracy": _histogram(
            [w["gold_accuracy"] for w in workers if w["gold_accuracy"] is not None]
        ),
        "em_accuracy": _histogram(
            [w["em_accuracy"] for w in workers if w["em_accuracy"] is not None]
        ),
    }


def worker_answers(worker_id: int, limit: int = 50) -> list[Vote]:
    """A worker's most recent answers, newest first, with what a curator needs to judge them."""
    return list(
        Vote.objects.filter(worker_id=worker_id)
        .select_related("candidate__category", "candidate__image", "candidate__gold")
        .order_by("-created_at", "-id")[:limit]
    )
