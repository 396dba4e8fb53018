"""Simulated crowds with known truth, shared by the consensus benchmarks (pure numpy).

A crowd is a pool of workers, each with a true confusion matrix ``conf[w, true, given]``
(P(worker w answers ``given`` | the truth is ``true``)), and votes drawn from those matrices:

- honest workers: accuracy drawn uniformly from a range, errors spread evenly;
- confusers: honest, except that they mix up look-alike class pairs (0 <-> 1, ...);
- random spammers: every class equally likely, whatever the truth;
- constant spammers: always the same class (their own, drawn at random);
- adversaries: right on gold items, wrong (uniform over the other classes) everywhere else.

Workers differ in how much they work (log-normal activity), and every item gets its votes
from distinct workers. Everything is vectorised: no Python loop runs per vote or per item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

KINDS = ("honest", "confuser", "random", "constant", "adversary")
HONEST, CONFUSER, RANDOM, CONSTANT, ADVERSARY = range(len(KINDS))


@dataclass(frozen=True)
class WorkerPool:
    """Workers and their true behaviour.

    ``kind``: (W,) int64 index into KINDS. ``confusions``: (W, K, K) on ordinary items;
    ``gold_confusions``: (W, K, K) on gold items (they differ for adversaries only).
    ``activity``: (W,) probabilities, how likely each worker is to pick up a given task."""

    kind: NDArray[np.int64]
    confusions: NDArray[np.float64]
    gold_confusions: NDArray[np.float64]
    activity: NDArray[np.float64]

    @property
    def n_workers(self) -> int:
        return len(self.kind)

    @property
    def n_classes(self) -> int:
        return int(self.confusions.shape[1])

    def accuracy(self, priors: NDArray[np.float64]) -> NDArray[np.float64]:
        """(W,) P(right answer) on ordinary items, under class ``priors``."""
        diagonal = np.diagonal(self.confusions, axis1=1, axis2=2)
        return np.asarray(diagonal @ priors, dtype=np.float64)


def make_pool(
    rng: np.random.Generator,
    n_workers: int,
    n_classes: int,
    *,
    honest_accuracy: tuple[float, float] = (0.55, 0.95),
    confusers: float = 0.0,
    random_spammers: float = 0.0,
    constant_spammers: float = 0.0,
    adversaries: float = 0.0,
    confused_pairs: tuple[tuple[int, int], ...] = ((0, 1),),
    confusion: float = 0.4,
    activity_sigma: float = 1.0,
) -> WorkerPool:
    """A pool of ``n_workers``: the given fractions of each bad kind, the rest honest.

    Confusers have an honest accuracy from the same range, and on a true class in one of
    ``confused_pairs`` they answer its partner with probability ``confusion`` on top of that.
    Activity is log-normal with ``activity_sigma`` (0 = everyone works equally)."""
    counts = [round(f * n_workers) for f in (confusers, random_spammers, constant_spammers)]
    counts.append(round(adversaries * n_workers))
    kind = np.full(n_workers, HONEST, dtype=np.int64)
    start = 0
    for code, count in zip((CONFUSER, RANDOM, CONSTANT, ADVERSARY), counts, strict=True):
        kind[start : start + count] = code
        start += count
    if start > n_workers:
        raise ValueError("the bad-worker fractions add up to more than the pool")
    kind = rng.permutation(kind)

    k = n_classes
    eye = np.eye(k)
    off = (1.0 - eye) / (k - 1)
    accuracy = rng.uniform(*honest_accuracy, size=n_workers)
    confusions = accuracy[:, None, None] * eye + (1.0 - accuracy)[:, None, None] * off
    swap = np.eye(k)
    paired = np.zeros(k, dtype=bool)
    for a, b in confused_pairs:
        swap[[a, b]] = swap[[b, a]]
        paired[[a, b]] = True
    mixed = (1.0 - confusion) * confusions + confusion * swap[None, :, :]
    confuser_row = (kind == CONFUSER)[:, None, None] & paired[None, :, None]
    confusions = np.where(confuser_row, mixed, confusions)
    confusions[kind == RANDOM] = 1.0 / k
    constant = kind == CONSTANT
    confusions[constant] = 0.0
    confusions[constant, :, rng.integers(0, k, size=int(constant.sum()))] = 1.0
    gold_confusions = confusions.copy()
    confusions[kind == ADVERSARY] = off
    gold_confusions[kind == ADVERSARY] = eye

    activity = rng.lognormal(0.0, activity_sigma, size=n_workers) if activity_sigma else None
    activity = np.ones(n_workers) if activity is None else activity
    return WorkerPool(kind, confusions, gold_confusions, activity / activity.sum())


def draw_workers(
    rng: np.random.Generator, activity: NDArray[np.float64], n_items: int, per_item: int
) -> NDArray[np.int64]:
    """(n_items, per_item) worker ids, distinct within each row, drawn by ``activity``.

    Rows with a repeat are redrawn until none is left (a few rounds at realistic sizes).
    A worker's chance of a slot is roughly, not exactly, proportional to its activity."""
    n_workers = len(activity)
    if per_item > n_workers:
        raise ValueError(f"{per_item} distinct workers asked of a pool of {n_workers}")
    chosen = rng.choice(n_workers, size=(n_items, per_item), p=activity)
    while True:
        ordered = np.sort(chosen, axis=1)
        repeat = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if not repeat.any():
            return chosen
        chosen[repeat] = rng.choice(n_workers, size=(int(repeat.sum()), per_item), p=activity)


def draw_answers(
    rng: np.random.Generator,
    pool: WorkerPool,
    worker: NDArray[np.int64],
    truth: NDArray[np.int64],
    on_gold: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """One answer per (worker, truth, on_gold) entry (any equal shapes), drawn from its row."""
    rows = np.where(
        on_gold[..., None],
        pool.gold_confusions[worker, truth],
        pool.confusions[worker, truth],
    )
    cumulative = np.cumsum(rows, axis=-1)
    draws = rng.random(worker.shape)
    labels: NDArray[np.int64] = (draws[..., None] >= cumulative[..., :-1]).sum(axis=-1)
    return labels.astype(np.int64)


@dataclass(frozen=True)
class Crowd:
    """Votes (one entry per vote) with the truth and the workers behind them.

    ``gold``: (n_items,) bool, items whose truth the platform knows (adversaries answer them
    right). ``priors``: (K,) the class priors the truth was drawn from."""

    item: NDArray[np.int64]
    worker: NDArray[np.int64]
    label: NDArray[np.int64]
    truth: NDArray[np.int64]
    gold: NDArray[np.bool_]
    priors: NDArray[np.float64]
    pool: WorkerPool

    @property
    def n_items(self) -> int:
        return len(self.truth)

    def oracle_posteriors(self) -> NDArray[np.float64]:
        """(n_items, K) posteriors with the true matrices and priors: the Bayes oracle."""
        return oracle_posteriors(self)


def make_crowd(
    seed: int,
    n_items: int,
    n_workers: int,
    votes_per_item: int,
    priors: NDArray[np.float64],
    *,
    gold_fraction: float = 0.05,
    **pool_options: object,
) -> Crowd:
    """A crowd of ``n_workers`` (``make_pool`` options) labelling ``n_items`` items, each by
    ``votes_per_item`` distinct workers; truth drawn from ``priors``."""
    rng = np.random.default_rng(seed)
    priors = np.asarray(priors, dtype=np.float64)
    pool = make_pool(rng, n_workers, len(priors), **pool_options)  # type: ignore[arg-type]
    truth = rng.choice(len(priors), size=n_items, p=priors).astype(np.int64)
    gold = rng.random(n_items) < gold_fraction
    workers = draw_workers(rng, pool.activity, n_items, votes_per_item)
    item = np.repeat(np.arange(n_items, dtype=np.int64), votes_per_item)
    worker = workers.ravel()
    label = draw_answers(rng, pool, worker, truth[item], gold[item])
    return Crowd(item, worker, label, truth, gold, priors, pool)


def oracle_posteriors(crowd: Crowd) -> NDArray[np.float64]:
    """Posterior P(truth | votes) under the true confusions (gold ones on gold items)."""
    k = len(crowd.priors)
    on_gold = crowd.gold[crowd.item]
    with np.errstate(divide="ignore"):
        log_conf = np.log(np.maximum(crowd.pool.confusions, 1e-12))
        log_gold = np.log(np.maximum(crowd.pool.gold_confusions, 1e-12))
    log_joint = np.empty((crowd.n_items, k))
    for true_class in range(k):
        weights = np.where(
            on_gold,
            log_gold[crowd.worker, true_class, crowd.label],
            log_conf[crowd.worker, true_class, crowd.label],
        )
        log_joint[:, true_class] = np.bincount(crowd.item, weights=weights, minlength=crowd.n_items)
    log_joint += np.log(crowd.priors)
    joint = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))
    return np.asarray(joint / joint.sum(axis=1, keepdims=True), dtype=np.float64)


def describe(pool: WorkerPool) -> str:
    """One line: how many workers of each kind."""
    counts = np.bincount(pool.kind, minlength=len(KINDS))
    return ", ".join(f"{count} {name}" for name, count in zip(KINDS, counts, strict=True) if count)
