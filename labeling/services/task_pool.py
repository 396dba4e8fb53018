"""What work exists, by kind, for anyone: the kinds' order, and why a worker got nothing."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet, TextChoices

from labeling.models import Box, Candidate, GoldAnswer, TaskKind

KIND_ORDER = (TaskKind.VERIFY_BOX, TaskKind.COVERAGE, TaskKind.DRAW, TaskKind.GRID, TaskKind.VERIFY)
# Candidates of archived categories are kept but never asked about again, in any kind of task.
LIVE = Q(category__archived_at__isnull=True)
LIVE_CANDIDATE = Q(candidate__category__archived_at__isnull=True)
# The box stage whose candidates a box task of each kind serves.
BOX_STAGE_OF_KIND = {
    TaskKind.DRAW: Candidate.BoxState.DRAW,
    TaskKind.COVERAGE: Candidate.BoxState.COVERAGE,
}


class EmptyReason(TextChoices):
    """Why task_assign found nothing for a worker."""

    NO_WORK = "no-work", "No task of this kind exists for anyone yet."
    DONE = "done", "There is work, but none this worker may take now."


def work_of_kind(kind: str) -> QuerySet[Candidate] | QuerySet[Box]:
    """What any worker could be given as a task of ``kind`` (leases and own answers aside);
    archived categories hold none. Each reads from the top of a partial index."""
    if kind in (TaskKind.VERIFY, TaskKind.GRID):
        open_items = Candidate.objects.filter(
            LIVE, state=Candidate.State.OPEN, votes_cast__lt=F("votes_needed")
        )
        if kind == TaskKind.GRID:
            gold = GoldAnswer.objects.values("category_id")
            open_items = open_items.filter(category_id__in=gold)
        return open_items
    # The box stages' first row in serving order, by key: as a plain filter the planner read
    # the table from its start to the stage's first row (the whole table when the stage's rows
    # came last), where the ordered slice reads the top of the stage's index.
    if kind in (TaskKind.DRAW, TaskKind.COVERAGE):
        stage = Candidate.objects.filter(LIVE, box_state=BOX_STAGE_OF_KIND[kind])
        return Candidate.objects.filter(pk__in=stage.order_by("-priority", "id").values("pk")[:1])
    proposed = Box.objects.filter(LIVE_CANDIDATE, state=Box.State.PROPOSED)
    return Box.objects.filter(pk__in=proposed.order_by("id").values("pk")[:1])


def _work_exists(kind: str) -> bool:
    return work_of_kind(kind).exists()


def task_empty_reason(*, kind: str | None = None) -> EmptyReason:
    """Why task_assign returned None: no work of ``kind`` (any kind when None) exists yet, or
    this worker has done, or others hold, all there is. Reads only."""
    kinds = [kind] if kind else KIND_ORDER
    return EmptyReason.DONE if any(_work_exists(k) for k in kinds) else EmptyReason.NO_WORK
