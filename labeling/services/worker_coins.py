"""Each worker's two coins (sensitivity, specificity) on yes/no label questions, as the live
answer path reads and learns them: from the control record, from agreement with the rest of the
crowd on the items it decides, and from the last Dawid-Skene run when there was one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Sum

from labeling.consensus import live_coins, newcomer_accuracy
from labeling.models import WorkerProfile

PEER_FIELDS = ("peer_yes_items", "peer_yes_said_yes", "peer_no_items", "peer_no_said_no")
COIN_FIELDS = ("user_id", "gold_correct", "gold_seen", "confusion", "paused", *PEER_FIELDS)
"""The profile columns a worker's coins are learnt from, in the order _coins reads them."""
_READ = COIN_FIELDS
PAUSED = (0.5, 0.5)
"""A paused worker's coins: his votes weigh nothing until a curator resumes him."""


NEWCOMER_CACHE_KEY = "worker-coins:newcomer"
NEWCOMER_SECONDS = 60
"""How long the crowd's pooled control accuracy is reused: summing every worker's record on
each answer would make an answer's cost grow with the crowd; a minute-old figure is as good."""


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


def peer_record_add(counts: dict[int, tuple[float, float, float, float]]) -> list[int]:
    """Add agreement counts (laid out as ``PEER_FIELDS``) to these workers' profiles with
    targeted updates, in id order; returns the workers whose votes carried evidence before and
    no longer do (their decisions are to be looked at again)."""
    ids = sorted(counts)
    newcomer = crowd_newcomer()
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
        for worker_id in ids:
            added = dict(zip(PEER_FIELDS, counts[worker_id], strict=True))
            WorkerProfile.objects.filter(user_id=worker_id).update(
                **{name: F(name) + value for name, value in added.items()}
            )
        after = _coins(
            list(WorkerProfile.objects.filter(user_id__in=ids).values_list(*_READ)), newcomer
        )
    return [
        w for w in ids if w in before and informative(*before[w]) and not informative(*after[w])
    ]


def peer_counts_by_worker(
    workers: np.ndarray, counts: np.ndarray
) -> dict[int, tuple[float, float, float, float]]:
    """``counts`` rows (from labeling.consensus.peer_counts or peer_count_changes over worker
    indices) keyed by the worker ids in ``workers``; workers whose row is all zero are left
    out."""
    return {
        int(w): tuple(float(v) for v in counts[i])  # type: ignore[misc]
        for i, w in enumerate(workers.tolist())
        if np.any(counts[i] != 0)
    }
