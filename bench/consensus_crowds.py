"""Simulated crowds with known truth, shared by the consensus benchmarks (pure numpy).

A crowd is a pool of workers, each with a true confusion matrix ``conf[w, true, given]``
(P(worker w answers ``given`` | the truth is ``true``)), and votes drawn from those matrices:

- honest workers: accuracy drawn uniformly from a range, errors spread evenly;
- confusers: honest, except that they mix up look-alike class pairs (0 <-> 1, ...);
- random spammers: every class equally likely, whatever the truth;
- constant spammers: always the same class (their own, drawn at random);
- adversaries: right on gold items, wrong (uniform over the other classes) everywhere else;
- colluders: right on gold items; elsewhere all of them give the same wrong label, drawn per
  item (their errors are shared, so they agree with each other against the truth); with
  ``colluders_know_controls=False`` they cannot tell control items apart and answer them
  wrong as well;
- yes-clickers: always the "yes" class (the last one), all of them the same;
- yes-biased: honest, but with probability ``yes_bias`` they answer "yes" whatever the truth;
- inverters: always wrong (uniform over the other classes), gold items included.

Weak honest workers are honest ones with a low ``honest_accuracy`` range. ``FAMILIES`` holds
the named crowd families the consensus benchmarks score on.

Workers differ in how much they work (log-normal activity), and every item gets its votes
from distinct workers. Everything is vectorised: no Python loop runs per vote or per item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

KINDS = (
    "honest",
    "confuser",
    "random",
    "constant",
    "adversary",
    "colluder",
    "yes-clicker",
    "yes-biased",
    "inverter",
)
(
    HONEST,
    CONFUSER,
    RANDOM,
    CONSTANT,
    ADVERSARY,
    COLLUDER,
    YES_CLICKER,
    YES_BIASED,
    INVERTER,
) = range(len(KINDS))
BAD_KINDS = KINDS[1:]


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
    colluders: float = 0.0,
    yes_clickers: float = 0.0,
    yes_biased: float = 0.0,
    inverters: float = 0.0,
    colluders_know_controls: bool = True,
    yes_bias: float = 0.3,
    confused_pairs: tuple[tuple[int, int], ...] = ((0, 1),),
    confusion: float = 0.4,
    activity_sigma: float = 1.0,
) -> WorkerPool:
    """A pool of ``n_workers``: the given fractions of each bad kind, the rest honest.

    Confusers have an honest accuracy from the same range, and on a true class in one of
    ``confused_pairs`` they answer its partner with probability ``confusion`` on top of that.
    Activity is log-normal with ``activity_sigma`` (0 = everyone works equally)."""
    fractions = (
        confusers,
        random_spammers,
        constant_spammers,
        adversaries,
        colluders,
        yes_clickers,
        yes_biased,
        inverters,
    )
    kind = np.full(n_workers, HONEST, dtype=np.int64)
    start = 0
    for code, fraction in enumerate(fractions, start=CONFUSER):
        count = round(fraction * n_workers)
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
    yes = np.zeros(k)
    yes[-1] = 1.0
    biased = kind == YES_BIASED
    confusions[biased] = (1.0 - yes_bias) * confusions[biased] + yes_bias * yes
    confusions[kind == YES_CLICKER] = yes
    confusions[kind == INVERTER] = off
    gold_confusions = confusions.copy()
    # colluders' answers off gold are replaced per item in make_crowd; this is their average
    for code in (ADVERSARY, COLLUDER):
        confusions[kind == code] = off
        gold_confusions[kind == code] = eye
    if not colluders_know_controls:  # they answer controls as they answer the rest: wrong
        gold_confusions[kind == COLLUDER] = off

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
    shared_wrong = (truth + rng.integers(1, len(priors), size=n_items)) % len(priors)
    colluding = (pool.kind[worker] == COLLUDER) & ~gold[item]
    label[colluding] = shared_wrong[item[colluding]]
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


def zipf(n_classes: int, exponent: float = 1.0) -> NDArray[np.float64]:
    """(K,) class priors proportional to 1 / rank ** exponent."""
    weights = 1.0 / np.arange(1, n_classes + 1) ** exponent
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _family(
    n_items: int, n_workers: int, per_item: int, priors: list[float] | NDArray[np.float64], **pool
) -> dict[str, object]:
    return {
        "n_items": n_items,
        "n_workers": n_workers,
        "votes_per_item": per_item,
        "priors": np.asarray(priors, dtype=np.float64),
        **pool,
    }


# Sparse families: thousands of workers with 3-10 votes each (log-normal activity, sigma 0.4).
_SPARSE = {"activity_sigma": 0.4, "random_spammers": 0.1}
FAMILIES: dict[str, dict[str, object]] = {
    "sparse binary 90% yes, 5 votes/item, 8/worker": _family(4000, 2500, 5, [0.1, 0.9], **_SPARSE),
    "sparse binary 90% yes, 4 votes/item, 8/worker": _family(4000, 2000, 4, [0.1, 0.9], **_SPARSE),
    "sparse binary 90% yes, 3 votes/item, 4/worker": _family(4000, 3000, 3, [0.1, 0.9], **_SPARSE),
    "sparse 4 classes, 8 votes/worker": _family(
        2000, 1250, 5, [0.4, 0.3, 0.2, 0.1], constant_spammers=0.05, confusers=0.1, **_SPARSE
    ),
    "sparse 10 classes Zipf, 7 votes/worker": _family(2000, 1500, 5, zipf(10), **_SPARSE),
    "rare binary 7%": _family(5000, 200, 5, [0.93, 0.07], random_spammers=0.1),
    "rare 5 classes (5% and 8%)": _family(
        5000,
        200,
        5,
        [0.45, 0.27, 0.15, 0.08, 0.05],
        random_spammers=0.1,
        confusers=0.1,
        confused_pairs=((3, 4),),
    ),
    "12 classes Zipf, confuser pairs": _family(
        5000, 300, 5, zipf(12), confusers=0.3, confused_pairs=((0, 1), (2, 3), (4, 5))
    ),
    "colluders 15%, 4 classes": _family(3000, 200, 5, [0.25] * 4, colluders=0.15),
    "binary colluders 15%, 30% yes": _family(3000, 200, 5, [0.7, 0.3], colluders=0.15),
    "binary colluders 30%, 30% yes": _family(3000, 200, 5, [0.7, 0.3], colluders=0.3),
    "binary colluders 40%, 50% yes": _family(3000, 200, 5, [0.5, 0.5], colluders=0.4),
    "binary colluders 30% blind to controls, 30% yes": _family(
        3000, 200, 5, [0.7, 0.3], colluders=0.3, colluders_know_controls=False
    ),
    "yes-clickers 10% + yes-biased 20%, weak honest": _family(
        3000,
        150,
        5,
        [0.6, 0.4],
        honest_accuracy=(0.55, 0.75),
        yes_clickers=0.1,
        yes_biased=0.2,
    ),
    "weak honest 0.55-0.75 + inverters 10%": _family(
        3000, 150, 7, [0.3, 0.7], honest_accuracy=(0.55, 0.75), inverters=0.1
    ),
    "adversaries 10% + spammers 20%, binary": _family(
        3000, 150, 5, [0.5, 0.5], adversaries=0.1, random_spammers=0.1, constant_spammers=0.1
    ),
}
