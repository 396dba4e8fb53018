"""Majority vote, plain or weighted per worker."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.consensus.result import AggregateResult
from labeling.consensus.votes import Votes

TieRule = Literal["prior", "lowest", "random", "none"]

# Weighted counts are float sums taken in arbitrary order: classes whose totals differ by less
# than this relative amount count as tied.
_TIE_RTOL = 1e-12


def normalise_last_axis(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """``values`` scaled to sum to 1 along the last axis; all-zero rows become uniform."""
    totals = values.sum(axis=-1, keepdims=True)
    uniform = np.full_like(values, 1.0 / values.shape[-1])
    shares: NDArray[np.float64] = np.divide(values, totals, out=uniform, where=totals > 0)
    return shares


def _prior_rank(counts: NDArray[np.float64]) -> NDArray[np.int64]:
    """Per class, a rank that is higher the more (weighted) votes it has over all items, and
    for equal totals the lower its index: argmax over it breaks a tie by the prior."""
    classes = counts.shape[1]
    order = np.lexsort((-np.arange(classes), counts.sum(axis=0)))  # ascending: best last
    rank = np.empty(classes, dtype=np.int64)
    rank[order] = np.arange(classes)
    return rank


def majority_vote(
    votes: Votes,
    *,
    tie: TieRule = "prior",
    rng: np.random.Generator | None = None,
    weights: ArrayLike | None = None,
) -> AggregateResult:
    """Each item's most voted class, and its (weighted) vote shares as posteriors.

    ``weights``: optional non-negative weight per worker (length n_workers), e.g. from
    :func:`~labeling.consensus.reliability.worker_weights`. Ties between the top classes:
    ``"prior"`` takes the class with the most (weighted) votes over all items, the prior as the
    crowd sees it, and the lowest index among classes that tie on that too; ``"lowest"`` takes
    the lowest class index; ``"random"`` draws uniformly among them with ``rng`` (default
    ``np.random.default_rng(0)``); ``"none"`` leaves the item at -1. An item without votes (or
    whose voters all weigh 0) gets -1 and a uniform posterior."""
    if tie not in ("prior", "lowest", "random", "none"):
        raise ValueError(f'tie must be "prior", "lowest", "random" or "none", got {tie!r}')
    if weights is not None:
        per_worker = np.asarray(weights, dtype=np.float64)
        if per_worker.size and not (np.all(np.isfinite(per_worker)) and per_worker.min() >= 0):
            raise ValueError("weights must be finite and non-negative")
    counts = votes.counts(weights)
    top = counts.max(axis=1, initial=0.0, keepdims=True)
    tied = counts >= top * (1.0 - _TIE_RTOL)
    if tie == "random":
        generator = np.random.default_rng(0) if rng is None else rng
        labels = np.where(tied, generator.random(tied.shape), -1.0).argmax(axis=1)
    elif tie == "prior":
        labels = np.where(tied, _prior_rank(counts), -1).argmax(axis=1)
    else:
        labels = tied.argmax(axis=1)
        if tie == "none":
            labels[tied.sum(axis=1) > 1] = -1
    labels[top[:, 0] <= 0] = -1
    return AggregateResult(
        labels=labels.astype(np.int64),
        posteriors=normalise_last_axis(counts),
        confusions=None,
        class_priors=None,
        iterations=0,
        log_likelihood=None,
    )
