"""task_assign: the next micro-task for a worker.

Correct under concurrency on PostgreSQL: pool rows are taken with ``FOR UPDATE SKIP LOCKED``,
and the open leases of the rows we hold are counted again in a fresh statement after the locks
are taken, so no item gets more leases than the votes it still needs. (Anyone adding a lease to
a candidate must hold its row lock first.) On SQLite, transactions are IMMEDIATE, so writers are
serialised and the same reasoning holds. On PostgreSQL the verify and grid leases are two raw
statements each that follow the same protocol (labeling.services.leases, grid_leases), and so
are drawings, box checks and coverage checks (box_leases); a campaign's scoped leases and SQLite
use the ORM code here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Abs, Coalesce
from django.utils import timezone

from labeling.crowd.gates import PEER_TESTS
from labeling.models import (
    Box,
    Candidate,
    GoldAnswer,
    MicroTask,
    TaskItem,
    TaskKind,
    User,
    Vote,
    WorkerProfile,
)
from labeling.services import box_leases, grid_leases, leases
from labeling.services.consensus import worker_decisions_reopen
from labeling.services.contested import is_contested, settle
from labeling.services.plans import engine_plans
from labeling.services.task_pool import (
    KIND_ORDER,
    LIVE,
    LIVE_CANDIDATE,
    KindsState,
    kinds_state,
    work_of_kind,
)
from labeling.services.task_scope import TaskScope, in_scope, scoped

EXAMPLES = 3
"""Example images a task carries: the category's most confident accepted items."""
SIZE_STEP = 32
"""Control items are drawn from the closest size step to the real item's: pixels of
width + height difference."""
CONTROL_WINDOW = 20
"""Decided items looked at on each side of the real item, in id order, for its control, and
on PostgreSQL curated gold items from a random point of the category's gold: every lease
looks its control up, so this bounds what each lease reads (200 a side and the whole gold
read up to 7,400 buffers a lease: docs/benchmarks.md)."""


class WorkerPaused(Exception):
    """The worker is paused by a quality gate; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Cell:
    """One item to lease: a candidate, maybe a box, and whether it is a control (gold) item."""

    candidate: Candidate
    box: Box | None = None
    is_gold: bool = False
    control_answer: bool | None = None


def worker_profile(worker: User, *, lock: bool = False) -> WorkerProfile:
    """The worker's profile (row-locked with ``lock``), created on first use."""
    queryset = WorkerProfile.objects.select_for_update() if lock else WorkerProfile.objects
    profile = queryset.filter(user=worker).first()
    if profile is None:
        WorkerProfile.objects.get_or_create(user=worker)  # unique user: a racing twin is fine
        profile = queryset.get(user=worker)
    return profile


def _active(now: datetime) -> Q:
    """Items under an open lease: answering or pausing sets leased_until to that moment."""
    return Q(leased_until__gt=now)


def _lease_counts(candidate_ids: Sequence[int], now: datetime) -> dict[int, int]:
    rows = (
        TaskItem.objects.filter(_active(now), candidate_id__in=candidate_ids, box__isnull=True)
        .values("candidate_id")
        .annotate(n=Count("id"))
    )
    return {row["candidate_id"]: row["n"] for row in rows}


def _new_to(worker: User, now: datetime, candidates: QuerySet[Candidate]) -> QuerySet[Candidate]:
    """``candidates`` without those the worker already answered (label question) or holds."""
    answered = Vote.objects.filter(worker=worker, candidate=OuterRef("pk"), question="label")
    held = TaskItem.objects.filter(_active(now), candidate=OuterRef("pk"), task__worker=worker)
    return candidates.exclude(Exists(answered)).exclude(Exists(held))


def _label_pool(worker: User, now: datetime) -> QuerySet[Candidate]:
    """Open candidates this worker has neither answered nor holds (gold ones are decided, so
    never open: see gold_mark)."""
    leases = (
        TaskItem.objects.filter(_active(now), candidate=OuterRef("pk"), box__isnull=True)
        .values("candidate")
        .annotate(n=Count("id"))
        .values("n")
    )
    open_items = Candidate.objects.filter(
        in_scope(LIVE), state=Candidate.State.OPEN, votes_cast__lt=F("votes_needed")
    )
    return (
        _new_to(worker, now, open_items)
        .alias(leases=Coalesce(Subquery(leases), 0))
        .filter(votes_cast__lt=F("votes_needed") - F("leases"))
    )


def _lock_label_cells(
    worker: User, now: datetime, limit: int, category_id: int | None = None
) -> list[Cell]:
    """Up to ``limit`` pool candidates, locked, that still need a vote beyond their leases."""
    pool = _label_pool(worker, now)
    if category_id is not None:
        pool = pool.filter(category_id=category_id)
    locked = list(
        pool.order_by("-priority", "-votes_cast", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .select_related("image", "category")[: limit * 3]
    )
    counts = _lease_counts([c.pk for c in locked], now)
    free = [c for c in locked if c.votes_cast + counts.get(c.pk, 0) < c.votes_needed]
    return [Cell(candidate) for candidate in free[:limit]]


def _gold_cells(
    worker: User, now: datetime, limit: int, category_id: int | None = None
) -> list[Cell]:
    """Up to ``limit`` gold candidates this worker has not answered, in random order.

    The gold ids are read from the (small) gold table first and shuffled here: asking the
    database to order a category's candidates by random() scanned all of them."""
    ids = GoldAnswer.objects.filter(in_scope(LIVE)).values_list("candidate_id", flat=True)
    if category_id is not None:
        ids = ids.filter(category_id=category_id)
    shuffled = list(ids)
    random.shuffle(shuffled)
    chosen: list[Candidate] = []
    for start in range(0, len(shuffled), 200):
        window = shuffled[start : start + 200]
        fresh = _new_to(worker, now, Candidate.objects.filter(pk__in=window))
        found = {c.pk: c for c in fresh.select_related("image", "category", "gold")}
        chosen += [found[pk] for pk in window if pk in found][: limit - len(chosen)]
        if len(chosen) == limit:
            break
    return [Cell(c, is_gold=True, control_answer=c.gold.answer) for c in chosen]


def task_examples(category_id: int) -> QuerySet[Candidate]:
    """The images a task of the category shows as examples, best first (slice to EXAMPLES)."""
    return Candidate.objects.filter(
        category_id=category_id, state=Candidate.State.ACCEPTED, gold__isnull=True
    ).order_by("-confidence", "id")


def _control_cell(worker: User, now: datetime, like: Candidate) -> Cell | None:
    """A control item to serve in place of ``like``: same category, closest size step, curated
    gold first, else an item the crowd decided with CROWDNET_CONTROL_CONFIDENCE (its known
    answer is the decision); never one the worker answered or sees as an example. One query;
    it ranks the category's gold and at most 2 x CONTROL_WINDOW decided items next to ``like``
    in id order (the same import, so the same kind of image)."""
    known = Q(gold__isnull=False) | Q(confidence__gte=settings.CROWDNET_CONTROL_CONFIDENCE)
    decided = _new_to(
        worker,
        now,
        Candidate.objects.filter(
            known,
            category_id=like.category_id,
            state__in=[Candidate.State.ACCEPTED, Candidate.State.REJECTED],
        ).exclude(pk__in=task_examples(like.category_id).values("pk")[:EXAMPLES]),
    )
    below = decided.filter(pk__lt=like.pk).order_by("-pk").values("pk")[:CONTROL_WINDOW]
    above = decided.filter(pk__gt=like.pk).order_by("pk").values("pk")[:CONTROL_WINDOW]
    curated = GoldAnswer.objects.filter(candidate__category_id=like.category_id)
    width, height = like.image.width, like.image.height
    distance = Abs(F("image__width") - width) + Abs(F("image__height") - height)
    control = (
        decided.filter(Q(pk__in=below) | Q(pk__in=above) | Q(pk__in=curated.values("candidate_id")))
        .alias(step=distance / SIZE_STEP, curated=Exists(curated.filter(candidate=OuterRef("pk"))))
        .order_by("step", F("curated").desc(), "?")
        .select_related("image", "category", "gold")
        .first()
    )
    if control is None:
        return None
    gold = getattr(control, "gold", None)
    answer = gold.answer if gold is not None else control.state == Candidate.State.ACCEPTED
    return Cell(control, is_gold=True, control_answer=answer)


def _verify_cells(worker: User, now: datetime) -> list[Cell]:
    """The worker's next pool item or, at CROWDNET_GOLD_RATE, a control item in its place
    drawn alongside it. Both are looked up (and the pool row locked) every time, so a control
    costs the same queries and time as a real item; an empty pool serves no control either."""
    real = _lock_label_cells(worker, now, 1)
    if not real:
        return []
    control = _control_cell(worker, now, real[0].candidate)
    if random.random() < settings.CROWDNET_GOLD_RATE and control is not None:
        return [control]
    return real


def _grid_category(worker: User, now: datetime) -> int | None:
    """The category of the grid: the one holding the worker's top pool item among those that
    still have a control item the worker has not seen (one query over the small gold table)."""
    unseen_gold = _new_to(worker, now, Candidate.objects.filter(gold__isnull=False))
    # The few categories first, as a list: as a subquery the planner sorted the whole pool
    # (2 million rows read per grid on a 10,000-item pool, bench/crowd_load.py --kind all).
    categories = list(unseen_gold.order_by().values_list("category_id", flat=True).distinct())
    if not categories:
        return None
    return (
        _label_pool(worker, now)
        .filter(category_id__in=categories)
        .order_by("-priority", "-votes_cast", "id")
        .values_list("category_id", flat=True)
        .first()
    )


def _grid_cells(worker: User, now: datetime) -> list[Cell]:
    """A grid of one category: pool cells plus at least one gold cell, shuffled. Categories
    whose control items this worker has all seen are passed over: a grid without a control
    item would be trusted blindly."""
    size = settings.CROWDNET_GRID_SIZE
    category_id = _grid_category(worker, now)
    if category_id is None:
        return []
    gold = _gold_cells(worker, now, max(1, round(size * settings.CROWDNET_GOLD_RATE)), category_id)
    rest = _lock_label_cells(worker, now, size - len(gold), category_id) if gold else []
    if not rest:
        return []  # taken by others since the category was picked; the worker asks again
    cells = rest + gold
    random.shuffle(cells)
    return cells


def _box_stage_cells(worker: User, now: datetime, stage: str, question: str) -> list[Cell]:
    """One candidate waiting for drawing or a coverage check, with no open lease on it."""
    answered = Vote.objects.filter(worker=worker, candidate=OuterRef("pk"), question=question)
    leased = TaskItem.objects.filter(_active(now), candidate=OuterRef("pk"), box__isnull=True)
    drew = Box.objects.filter(candidate=OuterRef("pk"), worker=worker)
    pool = (
        Candidate.objects.filter(in_scope(LIVE), box_state=stage)
        .exclude(Exists(answered))
        .exclude(Exists(leased))
    )
    if stage == Candidate.BoxState.COVERAGE:
        pool = pool.exclude(Exists(drew))  # the coverage check is someone else's eyes
    chosen = list(
        pool.order_by("-priority", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .select_related("image", "category")[:1]
    )
    return [Cell(candidate) for candidate in chosen]


def _verify_box_cells(worker: User, now: datetime) -> list[Cell]:
    """One proposed box drawn by someone else that still needs verification votes."""
    voted = Vote.objects.filter(worker=worker, box=OuterRef("pk"))
    pool = (
        Box.objects.filter(
            in_scope(LIVE_CANDIDATE, "candidate__category_id"), state=Box.State.PROPOSED
        )
        .exclude(worker=worker)
        .exclude(Exists(voted))
        .alias(cast=F("yes_votes") + F("no_votes"))
        .filter(cast__lt=settings.CROWDNET_BOX_VERIFY_VOTES)
    )
    for box in pool.order_by("id").select_for_update(skip_locked=True, of=("self",))[:5]:
        leases = TaskItem.objects.filter(_active(now), box=box).count()
        if box.yes_votes + box.no_votes + leases < settings.CROWDNET_BOX_VERIFY_VOTES:
            candidate = Candidate.objects.select_related("image", "category").get(
                pk=box.candidate_id
            )
            return [Cell(candidate, box=box)]
    return []


def _cells(kind: str, worker: User, now: datetime) -> list[Cell]:
    """The cells of a task of ``kind`` (the ORM path: SQLite, a campaign's scope)."""
    if kind == TaskKind.VERIFY:
        return _verify_cells(worker, now)
    if kind == TaskKind.GRID:
        return _grid_cells(worker, now)
    if kind in (TaskKind.DRAW, TaskKind.COVERAGE):
        stage = Candidate.BoxState.DRAW if kind == TaskKind.DRAW else Candidate.BoxState.COVERAGE
        return _box_stage_cells(worker, now, stage, kind)
    return _verify_box_cells(worker, now)


def _lease(worker: User, kind: str, cells: list[Cell], now: datetime) -> MicroTask:
    expires = now + timedelta(seconds=settings.CROWDNET_LEASE_SECONDS)
    task = MicroTask.objects.create(
        worker=worker, kind=kind, category=cells[0].candidate.category, expires_at=expires
    )
    TaskItem.objects.bulk_create(
        TaskItem(
            task=task,
            position=position,
            candidate=cell.candidate,
            box=cell.box,
            is_gold=cell.is_gold,
            control_answer=cell.control_answer,
            leased_until=expires,
        )
        for position, cell in enumerate(cells)
    )
    return task


def gold_mark(*, candidate: Candidate, answer: bool, by: User | None = None) -> GoldAnswer:
    """Make a candidate a control item with a known answer; writes the gold row (with the
    candidate's category) and decides the candidate (accepted or rejected), which also takes it
    out of the voting pool."""
    with transaction.atomic():
        contested = is_contested(candidate.pk)
        gold, _ = GoldAnswer.objects.update_or_create(
            candidate=candidate,
            defaults={"answer": answer, "created_by": by, "category_id": candidate.category_id},
        )
        state = Candidate.State.ACCEPTED if answer else Candidate.State.REJECTED
        Candidate.objects.filter(pk=candidate.pk).update(state=state, confidence=1.0)
        settle(candidate.pk, contested=contested)  # a contested call's votes are checked
    return gold


def worker_pause(*, profile: WorkerProfile, reason: str) -> None:
    """A curator pauses a worker (shown to them as the reason); writes the profile, and once
    that commits takes again the decisions his votes carried (they weigh nothing while he is
    paused)."""
    profile.paused, profile.pause_reason, profile.paused_at = True, reason[:300], timezone.now()
    profile.pause_detail = "Paused by a curator."
    profile.recheck_due = profile.paused_at  # the sweep's, should the hook below never run
    profile.save(
        update_fields=["paused", "pause_reason", "pause_detail", "paused_at", "recheck_due"]
    )
    worker_id = profile.user_id
    transaction.on_commit(lambda: worker_decisions_reopen(worker_id=worker_id))


def worker_resume(*, profile: WorkerProfile) -> None:
    """Lift a pause and start the gates' sequential tests afresh (the lifetime control counts
    stay; ``resumed_at`` says since when); writes the profile."""
    profile.paused, profile.pause_reason, profile.pause_detail, profile.paused_at = (
        False,
        "",
        "",
        None,
    )
    evidence = [
        "gold_evidence",
        "gold_evidence_yes",
        "gold_evidence_no",
        "fast_evidence",
        "said_yes_evidence",
        "said_no_evidence",
        *PEER_TESTS,
        "blind_evidence",
    ]
    for field in evidence:
        setattr(profile, field, 0.0)
    profile.resumed_at = timezone.now()  # where a re-scored control record replays from
    profile.save(
        update_fields=[
            "paused",
            "pause_reason",
            "pause_detail",
            "paused_at",
            "resumed_at",
            *evidence,
        ]
    )


def _worker_state(worker: User, now: datetime, kind: str | None) -> KindsState:
    """In one statement: the worker's profile, row-locked; whether he is paused; how many open
    tasks (of ``kind``) he holds; and the kinds to try, in order, with those nobody has work for
    left out (an empty kind then costs nothing more). Plain SQL on PostgreSQL
    (task_pool.KINDS_STATE), the ORM elsewhere; both read what work_of_kind reads."""
    if connection.vendor == "postgresql":
        state = kinds_state(worker_id=worker.pk, now=now, kind=kind)
        if state is None:
            worker_profile(worker)  # first task: create the profile, then lock it as above
            return _worker_state(worker, now, kind)
        return state
    return _worker_state_orm(worker, now, kind)


def _worker_state_orm(worker: User, now: datetime, kind: str | None) -> KindsState:
    """_worker_state through the ORM, in one statement: off PostgreSQL, and the reference the
    plain statement is tested against."""
    open_tasks = MicroTask.objects.filter(
        LIVE, worker=worker, status=MicroTask.Status.LEASED, expires_at__gt=now
    )
    if kind is not None:
        open_tasks = open_tasks.filter(kind=kind)
    counted = open_tasks.order_by().values("worker_id").annotate(n=Count("pk")).values("n")[:1]
    kinds = [kind] if kind else list(KIND_ORDER)
    flags = {f"has_{k}": Exists(work_of_kind(k)) for k in kinds}
    profile = (
        WorkerProfile.objects.select_for_update(of=("self",))
        .filter(user=worker)
        .annotate(open_tasks=Coalesce(Subquery(counted), 0), **flags)
        .first()
    )
    if profile is None:
        worker_profile(worker)  # first task: create the profile, then lock it as above
        return _worker_state_orm(worker, now, kind)
    return KindsState(
        profile.paused,
        profile.pause_reason,
        profile.open_tasks,
        [k for k in kinds if getattr(profile, f"has_{k}")],
    )


def _verify_lease_sql(
    worker: User, now: datetime, locked: list[int] | None = None
) -> MicroTask | None:
    """The verify lease on PostgreSQL: two statements (labeling.services.leases), the pick
    left out when ``locked`` holds its rows already; the control item drawn at
    CROWDNET_GOLD_RATE is looked up by the same statement every time."""
    return leases.verify_task_lease(
        worker=worker,
        now=now,
        serve_control=random.random() < settings.CROWDNET_GOLD_RATE,
        params={
            "control_confidence": settings.CROWDNET_CONTROL_CONFIDENCE,
            "window": CONTROL_WINDOW,
            "size_step": SIZE_STEP,
            "examples": EXAMPLES,
        },
        locked=locked,
    )


def _verify_assign(worker: User, now: datetime) -> MicroTask | None:
    """task_assign for a verify task on PostgreSQL outside a campaign: the worker's state and
    the pick in one statement (leases.STATE_PICK), then the lease."""
    state = leases.verify_state_pick(
        worker_id=worker.pk, now=now, max_open=settings.CROWDNET_MAX_OPEN_TASKS, limit=3
    )
    if state is None:
        worker_profile(worker)  # first task: create the profile, then lock it as above
        return _verify_assign(worker, now)
    if state.paused:
        raise WorkerPaused(state.pause_reason)
    if state.open_tasks >= settings.CROWDNET_MAX_OPEN_TASKS:
        open_tasks = MicroTask.objects.filter(
            LIVE,
            worker=worker,
            kind=TaskKind.VERIFY,
            status=MicroTask.Status.LEASED,
            expires_at__gt=now,
        )
        return open_tasks.order_by("issued_at").first()
    if not state.locked:
        return None
    return _verify_lease_sql(worker, now, state.locked)


def task_assign(
    *, worker: User, kind: str | None = None, scope: TaskScope | None = None
) -> MicroTask | None:
    """The next micro-task for ``worker`` (of ``kind`` when given; within ``scope``, a
    campaign's categories and kinds, when given), or None when there is none.

    Writes a MicroTask and its TaskItems (the lease). A worker holds at most
    CROWDNET_MAX_OPEN_TASKS open tasks (the one shown and one prefetched); past that, the oldest
    open one is returned again. Raises WorkerPaused for a paused worker. A task leased on
    PostgreSQL comes back with ``served`` (its items and examples, so its body needs no
    read)."""
    now = timezone.now()
    if kind == TaskKind.VERIFY and scope is None and connection.vendor == "postgresql":
        with transaction.atomic():
            engine_plans()
            return _verify_assign(worker, now)
    with transaction.atomic(), scoped(scope):
        engine_plans()
        state = _worker_state(worker, now, kind)
        if state.paused:
            raise WorkerPaused(state.pause_reason)
        open_count, kinds = state.open_tasks, state.kinds
        open_tasks = MicroTask.objects.filter(
            in_scope(LIVE), worker=worker, status=MicroTask.Status.LEASED, expires_at__gt=now
        )
        if kind is not None:
            open_tasks = open_tasks.filter(kind=kind)
        if scope is not None:  # a campaign counts (and serves) only its own open tasks
            kinds = [k for k in kinds if k in scope.kinds]
            open_tasks = open_tasks.filter(kind__in=scope.kinds)
            open_count = open_tasks.count()
        if open_count >= settings.CROWDNET_MAX_OPEN_TASKS:
            return open_tasks.order_by("issued_at").first()
        # the SQL leases and picks know no campaign scope: a scoped lease takes the pools
        in_sql = connection.vendor == "postgresql" and scope is None
        for candidate_kind in kinds:
            if in_sql and candidate_kind == TaskKind.VERIFY:
                task = _verify_lease_sql(worker, now)
            elif in_sql and candidate_kind == TaskKind.GRID:
                task = grid_leases.grid_task_lease(worker=worker, now=now, examples=EXAMPLES)
            elif in_sql:  # drawing, box check, coverage check
                task = box_leases.box_task_lease(
                    worker=worker, kind=candidate_kind, now=now, examples=EXAMPLES
                )
            else:
                cells = _cells(candidate_kind, worker, now)
                task = _lease(worker, candidate_kind, cells, now) if cells else None
            if task is not None:
                return task
    return None
