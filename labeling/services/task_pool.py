"""What work exists, by kind, for anyone: the kinds' order, and why a worker got nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
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


# work_of_kind's tests in plain SQL, one per kind, for KINDS_STATE: the same rows, the same
# filters (archived categories hold none). A box kind's test reads the first row in serving
# order as a sub-select of its own, so it stays a read of the top of the stage's index (as an
# EXISTS the planner drops the ORDER BY and LIMIT and may read the table from its start).
_OPEN_CANDIDATES = """EXISTS (SELECT 1 FROM labeling_candidate c
  JOIN labeling_category g ON g.id = c.category_id
  WHERE g.archived_at IS NULL AND c.state = 'open' AND c.votes_cast < c.votes_needed{more})"""
_STAGE_TOP = """((SELECT c.id FROM labeling_candidate c
  JOIN labeling_category g ON g.id = c.category_id
  WHERE g.archived_at IS NULL AND c.box_state = '{stage}'
  ORDER BY c.priority DESC, c.id LIMIT 1) IS NOT NULL)"""
# A grid needs an open candidate in a category with gold: read category by category from the
# gold rows' own index (the few categories with gold, each one probe of its grid pool), not
# open candidate by candidate (it walked 4,000 of them, 8,500 buffers, before one in a
# category with gold, on every next without a kind).
_GRID_WORK = """EXISTS (WITH RECURSIVE gold_categories AS (
    (SELECT gold.category_id AS id FROM labeling_goldanswer gold
     ORDER BY gold.category_id LIMIT 1)
    UNION ALL
    SELECT (SELECT gold.category_id FROM labeling_goldanswer gold
      WHERE gold.category_id > k.id ORDER BY gold.category_id LIMIT 1)
    FROM gold_categories k WHERE k.id IS NOT NULL)
  SELECT 1 FROM gold_categories k JOIN labeling_category g ON g.id = k.id
  WHERE g.archived_at IS NULL AND EXISTS (SELECT 1 FROM labeling_candidate c
    WHERE c.category_id = k.id AND c.state = 'open' AND c.votes_cast < c.votes_needed))"""
HAS_WORK_SQL = {
    TaskKind.VERIFY: _OPEN_CANDIDATES.format(more=""),
    TaskKind.GRID: _GRID_WORK,
    TaskKind.DRAW: _STAGE_TOP.format(stage=Candidate.BoxState.DRAW.value),
    TaskKind.COVERAGE: _STAGE_TOP.format(stage=Candidate.BoxState.COVERAGE.value),
    TaskKind.VERIFY_BOX: f"""((SELECT b.id FROM labeling_box b
  JOIN labeling_candidate c ON c.id = b.candidate_id
  JOIN labeling_category g ON g.id = c.category_id
  WHERE g.archived_at IS NULL AND b.state = '{Box.State.PROPOSED.value}'
  ORDER BY b.id LIMIT 1) IS NOT NULL)""",  # noqa: S608 (a constant)
}

_KINDS_STATE = """SELECT p.paused, p.pause_reason,
  (SELECT count(*) FROM labeling_microtask t JOIN labeling_category tg ON tg.id = t.category_id
   WHERE t.worker_id = %(worker)s AND t.status = 'leased' AND t.expires_at > %(now)s
     AND tg.archived_at IS NULL{of_kind}),
  {flags}
FROM labeling_workerprofile p
WHERE p.user_id = %(worker)s
FOR UPDATE OF p"""
KINDS_STATE = {
    kind: _KINDS_STATE.format(
        of_kind="" if kind is None else " AND t.kind = %(kind)s",
        flags=",\n  ".join(HAS_WORK_SQL[k] for k in ([kind] if kind else KIND_ORDER)),
    )
    for kind in (None, *KIND_ORDER)
}
"""A worker's state for a next, in one statement, by kind asked for (None: any): his profile
row-locked, whether he is paused, how many open tasks (of the kind) he holds, and whether
anyone has work of each kind to try (KIND_ORDER's, or the one asked for)."""


@dataclass(frozen=True)
class KindsState:
    """What a next reads first: the worker's pause, his open tasks (of the kind asked for), and
    the kinds to try, in order, with those nobody has work for left out."""

    paused: bool
    pause_reason: str
    open_tasks: int
    kinds: list[str]


def kinds_state(*, worker_id: int, now: datetime, kind: str | None) -> KindsState | None:
    """KINDS_STATE on PostgreSQL: lock the worker's profile and read his state (see there);
    None when he has no profile yet."""
    values = {"worker": worker_id, "now": now, "kind": kind}
    with connection.cursor() as cursor:
        cursor.execute(KINDS_STATE[kind], values)
        row = cursor.fetchone()
    if row is None:
        return None
    kinds = [kind] if kind else list(KIND_ORDER)
    with_work = [k for k, has in zip(kinds, row[3:], strict=True) if has]
    return KindsState(row[0], row[1], row[2], with_work)


def _work_exists(kind: str) -> bool:
    return work_of_kind(kind).exists()


def task_empty_reason(*, kind: str | None = None) -> EmptyReason:
    """Why task_assign returned None: no work of ``kind`` (any kind when None) exists yet, or
    this worker has done, or others hold, all there is. Reads only."""
    kinds = [kind] if kind else KIND_ORDER
    return EmptyReason.DONE if any(_work_exists(k) for k in kinds) else EmptyReason.NO_WORK
