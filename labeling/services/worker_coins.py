"""Each worker's two coins (sensitivity, specificity) on yes/no label questions, as the live
answer path reads and learns them: from the control record, from agreement with the rest of the
crowd on the items it decides, and from the last Dawid-Skene run when there was one; and the
peer-agreement gate, which reads the same agreement (labeling.crowd.gates).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from labeling.consensus import live_coins, newcomer_accuracy, peer_count_changes
from labeling.crowd.gates import (
    PEER_TESTS,
    GateSettings,
    Pause,
    peer_evidence_changes,
    peer_pause,
    peer_thresholds,
)
from labeling.models import PEER_PENDING, Vote, WorkerProfile
from labeling.services.leases import leases_release

PEER_FIELDS = ("peer_yes_items", "peer_yes_said_yes", "peer_no_items", "peer_no_said_no")
COIN_FIELDS = ("user_id", "gold_correct", "gold_seen", "confusion", "paused", *PEER_FIELDS)
"""The profile columns a worker's coins are learnt from, in the order _coins reads them."""
_READ = COIN_FIELDS
PEER_CREDIT = (*PEER_FIELDS, *PEER_TESTS)
"""What one decision's credits add to a worker's profile: the agreement counts and the
peer-agreement gate's evidence (labeling.crowd.gates.peer_evidence_changes)."""
PAUSED = (0.5, 0.5)
"""A paused worker's coins: his votes weigh nothing until a curator resumes him."""


NEWCOMER_CACHE_KEY = "worker-coins:newcomer"
NEWCOMER_SECONDS = 60
"""How long the crowd's pooled control accuracy is reused: summing every worker's record on
each answer would make an answer's cost grow with the crowd; a minute-old figure is as good."""


def gate_settings() -> GateSettings:
    """Quality-gate thresholds from settings."""
    return GateSettings(
        min_seconds_per_item=settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM,
        fast_honest_rate=settings.CROWDNET_GATE_FAST_HONEST_RATE,
        fast_bot_rate=settings.CROWDNET_GATE_FAST_BOT_RATE,
        gold_bar=settings.CROWDNET_GATE_GOLD_BAR,
        gold_chance=settings.CROWDNET_GATE_GOLD_CHANCE,
        false_pause=settings.CROWDNET_GATE_FALSE_PAUSE,
        peer_trust=settings.CROWDNET_GATE_PEER_TRUST,
        peer_false_pause=settings.CROWDNET_GATE_PEER_FALSE_PAUSE,
        blind_false_pause=settings.CROWDNET_GATE_BLIND_FALSE_PAUSE,
    )


def crowd_newcomer() -> float:
    """newcomer_accuracy over every worker's control record: one aggregate statement at most
    once a NEWCOMER_SECONDS per cache (and on every call while the cache is down)."""
    cached = cache.get(NEWCOMER_CACHE_KEY)
    if cached is not None:
        return float(cached)
    totals = WorkerProfile.objects.aggregate(correct=Sum("gold_correct"), seen=Sum("gold_seen"))
    newcomer = newcomer_accuracy(totals["correct"] or 0, totals["seen"] or 0)
    cache.set(NEWCOMER_CACHE_KEY, newcomer, NEWCOMER_SECONDS)
    return newcomer


def _coins(rows: list[tuple], newcomer: float) -> dict[int, tuple[float, float]]:
    """(sensitivity, specificity) per worker from profile rows laid out as ``_READ``."""
    if not rows:
        return {}
    ids = [row[0] for row in rows]
    sens, spec = live_coins(
        [row[1] for row in rows],
        [row[2] for row in rows],
        [row[5:] for row in rows],
        strength=settings.CROWDNET_CONSENSUS_CONTROL_VOTES,
        newcomer=newcomer,
    )
    coins = {}
    for i, worker_id in enumerate(ids):
        s, c = float(sens[i]), float(spec[i])
        confusion = rows[i][3]
        if confusion:  # the batch model's view: whichever of the two doubts him more wins
            s, c = min(s, float(confusion[1][1])), min(c, float(confusion[0][0]))
        coins[worker_id] = PAUSED if rows[i][4] else (s, c)
    return coins


def worker_coins(worker_ids: Iterable[int]) -> dict[int, tuple[float, float]]:
    """(sensitivity, specificity) per worker; a worker with no profile reads as a newcomer
    (crowd_newcomer on both classes: two thirds, or the crowd's control accuracy where that
    is lower), a paused one as PAUSED."""
    ids = set(worker_ids)
    if not ids:
        return {}
    return worker_coins_of(
        ids, list(WorkerProfile.objects.filter(user_id__in=ids).values_list(*_READ))
    )


def worker_coins_of(ids: set[int], rows: list[tuple]) -> dict[int, tuple[float, float]]:
    """worker_coins over profile rows already read, laid out as ``COIN_FIELDS`` (``confusion``
    decoded)."""
    if not ids:
        return {}
    newcomer = crowd_newcomer()
    coins = _coins(rows, newcomer)
    return {w: coins.get(w, (newcomer, newcomer)) for w in ids}


def informative(sensitivity: float, specificity: float) -> bool:
    """Whether the worker's votes carry any evidence: his yes is likelier on yes items than on
    no items (Youden's J above 0). A worker at or below it weighs nothing live."""
    return sensitivity + specificity > 1.0


def peer_record_add(credits: dict[int, tuple[float, ...]]) -> list[int]:
    """Add one decision's credits (laid out as ``PEER_CREDIT``) to these workers' profiles
    with targeted updates, in id order, and pause whoever the peer-agreement gate now catches
    (his open leases go back to the pool); returns the workers whose votes carried evidence
    before and no longer do, paused ones included (their decisions are to be looked at
    again)."""
    ids = sorted(credits)
    newcomer = crowd_newcomer()
    gates = gate_settings()
    thresholds = peer_thresholds(gates)
    with transaction.atomic():
        before = _coins(
            list(
                WorkerProfile.objects.select_for_update()
                .filter(user_id__in=ids)
                .order_by("user_id")
                .values_list(*_READ)
            ),
            newcomer,
        )
        _peer_credits_add(ids, credits, thresholds)
        paused = _peer_pauses(ids, thresholds, gates)
        after = _coins(
            list(WorkerProfile.objects.filter(user_id__in=ids).values_list(*_READ)), newcomer
        )
        recheck = [
            w
            for w in ids
            if w in paused
            or (w in before and informative(*before[w]) and not informative(*after[w]))
        ]
        if recheck:  # the sweep's, should the caller be killed before it rechecks them
            WorkerProfile.objects.filter(user_id__in=recheck).update(recheck_due=timezone.now())
    return recheck


PEER_ADD_SQL = f"""
UPDATE labeling_workerprofile p
SET {", ".join(f"{name} = p.{name} + v.{name}" for name in PEER_FIELDS)},
  {", ".join(f"{name} = GREATEST(%(floor_{name})s, p.{name} + v.{name})" for name in PEER_TESTS)}
FROM unnest(%(ids)s::bigint[], {", ".join(f"%({name})s::float8[]" for name in PEER_CREDIT)})
  AS v(user_id, {", ".join(PEER_CREDIT)})
WHERE p.user_id = v.user_id
"""  # noqa: S608 (column names are constants; values are bound)
"""Every credited worker's counts and peer evidence in one statement; the evidence is floored at
minus twice its test's threshold, as each test's sum is (labeling.crowd.gates)."""


def _peer_credits_add(
    ids: list[int], credits: dict[int, tuple[float, ...]], thresholds: tuple[float, ...]
) -> None:
    """Add each worker's credits (laid out as PEER_CREDIT) to his profile (rows locked by the
    caller): one statement on PostgreSQL, one per worker elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                PEER_ADD_SQL,
                {
                    "ids": ids,
                    **{
                        name: [float(credits[w][k]) for w in ids]
                        for k, name in enumerate(PEER_CREDIT)
                    },
                    **{
                        f"floor_{name}": -2.0 * threshold
                        for name, threshold in zip(PEER_TESTS, thresholds, strict=True)
                    },
                },
            )
        return
    for worker_id in ids:
        added = dict(zip(PEER_CREDIT, credits[worker_id], strict=True))
        counts = {name: F(name) + added[name] for name in PEER_FIELDS}
        evidence = {
            name: Greatest(Value(-2.0 * threshold), F(name) + added[name])
            for name, threshold in zip(PEER_TESTS, thresholds, strict=True)
        }
        WorkerProfile.objects.filter(user_id=worker_id).update(**counts, **evidence)


def _peer_pauses(ids: list[int], thresholds: tuple[float, ...], gates: GateSettings) -> set[int]:
    """Pause the workers among ``ids`` (rows locked by the caller) whose peer evidence has
    reached one of the gate's thresholds and who are not paused already (a pause set by
    another gate or a curator stands, with its reason); returns them. Nobody while
    CROWDNET_GATE_PEER_PAUSES is off."""
    if not settings.CROWDNET_GATE_PEER_PAUSES:
        return set()
    reached = Q()
    for name, threshold in zip(PEER_TESTS, thresholds, strict=True):
        reached |= Q(**{f"{name}__gte": threshold})
    caught = list(
        WorkerProfile.objects.filter(reached, user_id__in=ids, paused=False).values_list(
            "user_id", *PEER_TESTS, *PEER_FIELDS
        )
    )
    now = timezone.now()
    for worker_id, *evidence, yes_items, said_yes, no_items, said_no in caught:
        pause = peer_pause(tuple(evidence), said_yes + said_no, yes_items + no_items, gates)
        if pause is None:  # not reachable: the filter asked for evidence at the threshold
            continue
        gate_pause(worker_id, pause, now)
    return {row[0] for row in caught}


def gate_pause(worker_id: int, pause: Pause, now: datetime) -> None:
    """Pause a worker a gate caught outside his own answer (the peer gate, the blind checks),
    unless a curator or another gate paused him first (that pause keeps its reason); his open
    leases go back to the pool, and his decisions are due to be taken again (recheck_due, in
    the caller's transaction: the caller takes them once it commits, the sweep otherwise)."""
    WorkerProfile.objects.filter(user_id=worker_id, paused=False).update(
        paused=True,
        pause_reason=pause.reason,
        pause_detail=pause.detail,
        paused_at=now,
        recheck_due=now,
    )
    leases_release(worker_id, now)


def peer_counts_by_worker(workers: np.ndarray, counts: np.ndarray) -> dict[int, tuple[float, ...]]:
    """``counts`` rows (from labeling.consensus.peer_counts or peer_count_changes over worker
    indices, and the peer evidence's change beside them) keyed by the worker ids in
    ``workers``; workers whose row is all zero are left out."""
    return {
        int(w): tuple(float(v) for v in counts[i])
        for i, w in enumerate(workers.tolist())
        if np.any(counts[i] != 0)
    }


def profiles_lock(worker_ids: Iterable[int]) -> None:
    """Row-lock these workers' profiles in id order (in the caller's transaction), as every
    writer of several profiles does before the votes it touches: no two deadlock."""
    list(
        WorkerProfile.objects.select_for_update()
        .filter(user_id__in=list(worker_ids))
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


PEER_SWEEP_BATCH = 5000
"""Votes one peer_credits_apply call takes at most when sweeping."""


def peer_credits_apply(vote_ids: Sequence[int] | None = None) -> list[int]:
    """Add to their workers' records the credits written on these votes (``None``: on any
    votes, PEER_SWEEP_BATCH of them at most) and not added yet, exactly once: each vote's
    change from the credit its record holds (Vote.peer_applied) to the one written
    (Vote.peer_p_yes), then the vote marked applied, in one transaction with the records
    (peer_record_add). The answer that writes the credits calls this once it commits; a process
    killed in between leaves them pending, and the sweep (labeling.tasks.peer_credits_sweep)
    adds them later. Profiles are locked before votes, in id order, as the answer path locks
    its own profile before the votes it credits; a vote another call has applied meanwhile no
    longer matches once locked and is skipped. Returns the workers whose decisions are to be
    looked at again (peer_record_add)."""
    pending = Vote.objects.filter(PEER_PENDING)
    if vote_ids is not None:
        pending = pending.filter(pk__in=list(vote_ids))
    with transaction.atomic():
        found = list(pending.order_by("id").values_list("id", "worker_id")[:PEER_SWEEP_BATCH])
        if not found:
            return []
        ids, workers = [row[0] for row in found], sorted({row[1] for row in found})
        profiles_lock(workers)
        rows = list(
            Vote.objects.select_for_update()
            .filter(PEER_PENDING, pk__in=ids)
            .order_by("id")
            .values_list("id", "worker_id", "answer", "peer_applied", "peer_p_yes")
        )
        if not rows:
            return []
        Vote.objects.filter(pk__in=[row[0] for row in rows]).update(peer_applied=F("peer_p_yes"))
        voters, index = np.unique([row[1] for row in rows], return_inverse=True)
        said = np.array([row[2] == "yes" for row in rows], dtype=np.float64)
        old, new = (
            np.array([np.nan if row[k] is None else row[k] for row in rows], dtype=np.float64)
            for k in (3, 4)
        )
        changes = np.column_stack(
            [
                peer_count_changes(index, said, old, new, len(voters)),
                peer_evidence_changes(index, said, old, new, len(voters), gate_settings()),
            ]
        )
        credits = peer_counts_by_worker(voters, changes)
        return peer_record_add(credits) if credits else []
