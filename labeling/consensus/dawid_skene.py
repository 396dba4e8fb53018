"""Dawid & Skene (1979) EM: a confusion matrix per worker, learned without ground truth.

Both models alternate an M-step (class priors and worker confusions from the current
posteriors, with additive Dirichlet smoothing) and an E-step (posteriors from those
parameters, in log space), until no posterior moves by ``tol`` or more. Gold items are clamped:
in every E-step their posterior is one-hot on the known label.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.consensus.majority import majority_vote, normalise_last_axis
from labeling.consensus.result import AggregateResult
from labeling.consensus.votes import Gold, Votes

Params = tuple[NDArray[np.float64], NDArray[np.float64]]
"""(class priors (K,), confusions (n_workers, K, K))."""

# Floor inside logarithms, so that an exactly zero probability (possible with smoothing=0)
# gives a very negative log instead of -inf and NaN posteriors.
_TINY = np.finfo(np.float64).tiny


def dawid_skene(
    votes: Votes,
    *,
    gold: Gold | None = None,
    smoothing: float = 1.0,
    diagonal_prior: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-6,
    init: ArrayLike | None = None,
    init_confusions: ArrayLike | None = None,
    init_priors: ArrayLike | None = None,
) -> AggregateResult:
    """Labels, posteriors, per-worker confusion matrices and class priors by Dawid-Skene EM.

    M-step, with T the (n_items, K) posteriors::

        priors[k]     = (sum_i T[i, k] + smoothing) / (n_items + K * smoothing)
        conf[w, k, l] ∝ sum of T[i, k] over w's votes l on items i
                        + smoothing + diagonal_prior * (k == l)

    i.e. the MAP estimate under a Dirichlet(1 + smoothing + diagonal_prior * (k == l)) prior on
    each confusion row: a worker with one or two votes keeps a mild matrix, and
    ``diagonal_prior`` > 0 leans such a worker towards being right.

    Start: posteriors from ``init`` ((n_items, K), rows normalised) or else majority vote's
    vote shares, followed by an M-step; or, for a warm start, an E-step from
    ``init_confusions`` ((n_workers, K, K)) and ``init_priors`` ((K,), default uniform).
    ``iterations`` counts M+E rounds. Items with neither votes nor gold get label -1 (their
    posterior is the class prior); otherwise the label is the argmax, ties to the lowest class.
    ``log_likelihood`` is log P(votes | final parameters), taking gold items' classes as known.
    """
    _check_em_args(smoothing, max_iter, tol)
    if diagonal_prior < 0:
        raise ValueError(f"diagonal_prior must be non-negative, got {diagonal_prior}")

    def m_step(posteriors: NDArray[np.float64]) -> Params:
        return _priors(posteriors, smoothing), _confusions(
            votes, posteriors, smoothing, diagonal_prior
        )

    return _fit(votes, gold, m_step, max_iter, tol, init, init_confusions, init_priors)


def one_coin_dawid_skene(
    votes: Votes,
    *,
    gold: Gold | None = None,
    smoothing: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> AggregateResult:
    """Dawid-Skene EM where each worker has one accuracy p_w, errors spread evenly.

    ``conf[w]`` has p_w on the diagonal and (1 - p_w) / (K - 1) elsewhere, with::

        p_w = (sum of T[i, l] over w's votes l on items i + smoothing) / (n_w + 2 * smoothing)

    (n_w = w's vote count): the MAP estimate under a Beta(1 + smoothing, 1 + smoothing) prior,
    so a worker without votes sits at 0.5. Priors, start, clamping, labels and likelihood as
    in :func:`dawid_skene`."""
    _check_em_args(smoothing, max_iter, tol)
    n_classes = votes.n_classes

    def m_step(posteriors: NDArray[np.float64]) -> Params:
        agreement = posteriors[votes.item, votes.label]
        correct = np.bincount(votes.worker, weights=agreement, minlength=votes.n_workers)
        seen = np.bincount(votes.worker, minlength=votes.n_workers)
        accuracy = (correct + smoothing) / (seen + 2 * smoothing)
        wrong = (1.0 - accuracy) / (n_classes - 1)
        eye = np.eye(n_classes, dtype=bool)
        confusions = np.where(eye, accuracy[:, None, None], wrong[:, None, None])
        return _priors(posteriors, smoothing), confusions

    return _fit(votes, gold, m_step, max_iter, tol, None, None, None)


def _check_em_args(smoothing: float, max_iter: int, tol: float) -> None:
    if smoothing < 0:
        raise ValueError(f"smoothing must be non-negative, got {smoothing}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    if tol < 0:
        raise ValueError(f"tol must be non-negative, got {tol}")


def _priors(posteriors: NDArray[np.float64], smoothing: float) -> NDArray[np.float64]:
    return normalise_last_axis(posteriors.sum(axis=0) + smoothing)


def _confusions(
    votes: Votes, posteriors: NDArray[np.float64], smoothing: float, diagonal_prior: float
) -> NDArray[np.float64]:
    """Smoothed, row-normalised expected counts conf[w, true, given]."""
    k = votes.n_classes
    worker_label = votes.worker * k + votes.label
    counts = np.empty((votes.n_workers, k, k))
    for true_class in range(k):
        counts[:, true_class, :] = np.bincount(
            worker_label, weights=posteriors[votes.item, true_class], minlength=votes.n_workers * k
        ).reshape(votes.n_workers, k)
    counts += smoothing + diagonal_prior * np.eye(k)
    return normalise_last_axis(counts)


def _e_step(
    votes: Votes,
    params: Params,
    gold_items: NDArray[np.int64],
    gold_labels: NDArray[np.int64],
) -> tuple[NDArray[np.float64], float]:
    """Posteriors (gold clamped) and log P(votes | params)."""
    priors, confusions = params
    log_conf = np.log(np.maximum(confusions, _TINY))
    log_joint = np.empty((votes.n_items, votes.n_classes))
    for true_class in range(votes.n_classes):
        log_joint[:, true_class] = np.bincount(
            votes.item,
            weights=log_conf[votes.worker, true_class, votes.label],
            minlength=votes.n_items,
        )
    log_joint += np.log(np.maximum(priors, _TINY))
    top = log_joint.max(axis=1, keepdims=True)
    joint = np.exp(log_joint - top)
    totals = joint.sum(axis=1, keepdims=True)
    log_marginal = top[:, 0] + np.log(totals[:, 0])
    log_marginal[gold_items] = log_joint[gold_items, gold_labels]
    posteriors = joint / totals
    _clamp(posteriors, gold_items, gold_labels)
    return posteriors, float(log_marginal.sum())


def _clamp(
    posteriors: NDArray[np.float64], gold_items: NDArray[np.int64], gold_labels: NDArray[np.int64]
) -> None:
    posteriors[gold_items] = 0.0
    posteriors[gold_items, gold_labels] = 1.0


def _fit(
    votes: Votes,
    gold: Gold | None,
    m_step: Callable[[NDArray[np.float64]], Params],
    max_iter: int,
    tol: float,
    init: ArrayLike | None,
    init_confusions: ArrayLike | None,
    init_priors: ArrayLike | None,
) -> AggregateResult:
    """Run EM from the chosen start until posteriors move less than ``tol``."""
    gold_items, gold_labels = votes.gold_arrays(gold)
    posteriors = _start(votes, init, init_confusions, init_priors, gold_items, gold_labels)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        params = m_step(posteriors)
        updated, log_likelihood = _e_step(votes, params, gold_items, gold_labels)
        change = float(np.abs(updated - posteriors).max(initial=0.0))
        posteriors = updated
        if change < tol:
            break
    labels = posteriors.argmax(axis=1)
    known = np.bincount(votes.item, minlength=votes.n_items) > 0
    known[gold_items] = True
    labels[~known] = -1
    return AggregateResult(
        labels=labels.astype(np.int64),
        posteriors=posteriors,
        confusions=params[1],
        class_priors=params[0],
        iterations=iterations,
        log_likelihood=log_likelihood,
    )


def _start(
    votes: Votes,
    init: ArrayLike | None,
    init_confusions: ArrayLike | None,
    init_priors: ArrayLike | None,
    gold_items: NDArray[np.int64],
    gold_labels: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Initial posteriors, gold clamped."""
    k = votes.n_classes
    if init_priors is not None and init_confusions is None:
        raise ValueError("init_priors needs init_confusions")
    if init_confusions is not None:
        if init is not None:
            raise ValueError("give either init or init_confusions, not both")
        confusions = _stochastic(init_confusions, (votes.n_workers, k, k), "init_confusions")
        priors = (
            np.full(k, 1.0 / k)
            if init_priors is None
            else _stochastic(init_priors, (k,), "init_priors")
        )
        return _e_step(votes, (priors, confusions), gold_items, gold_labels)[0]
    if init is None:
        posteriors = majority_vote(votes).posteriors
    else:
        posteriors = _stochastic(init, (votes.n_items, k), "init")
    _clamp(posteriors, gold_items, gold_labels)
    return posteriors


def _stochastic(values: ArrayLike, shape: tuple[int, ...], name: str) -> NDArray[np.float64]:
    """``values`` as a float array of ``shape`` whose last axis holds probabilities.

    Sums within 1e-3 of 1 (e.g. matrices stored rounded) are accepted and renormalised."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if array.size and not (
        np.all(np.isfinite(array))
        and array.min() >= 0
        and np.allclose(array.sum(axis=-1), 1.0, rtol=0, atol=1e-3)
    ):
        raise ValueError(f"{name} must hold probabilities summing to 1 along the last axis")
    return normalise_last_axis(array)
