"""Dawid & Skene (1979) EM: a confusion matrix per worker, learned without ground truth.

Both models alternate an M-step (class priors and worker confusions from the current
posteriors) and an E-step (posteriors from those parameters, in log space), until no posterior
moves by ``tol`` or more. Gold items are clamped: in every E-step their posterior is one-hot on
the known label.

Each worker's confusion is shrunk towards the crowd's pooled confusion (a Dirichlet prior
centred on it, worth K * (1 + ``smoothing``) pseudo-votes per row), not towards uniform
noise: a worker with a handful of votes reads like the average worker, one with hundreds like
himself, and a worker without votes gets the pooled matrix. Shrinking towards uniform
instead swamps sparse crowds (3-10 votes per worker): every worker looks like noise, the
class prior takes over and rare classes are never predicted. Class priors carry one
pseudo-item per class, whatever ``smoothing`` is, so no class's prior reaches 0.

That prior is the likely component of a two-component mixture (``free_prior``, the default):
the other is a weak prior on the same centre (0.1 pseudo-votes per cell). A worker whose
counts the pooled prior cannot explain (one who always answers against the truth, say, with
hundreds of votes) is released to his own matrix, so that his reliably wrong answers count in
full; a worker with a handful of votes, or one who spreads around the crowd, keeps the
shrinkage.

Each fit first regroups the votes (:class:`VoteLayout`) so that every round is a few whole-array
gathers, slice additions and ``np.bincount`` calls: no Python loop runs per vote or per item.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.consensus.majority import majority_vote, normalise_last_axis
from labeling.consensus.result import AggregateResult
from labeling.consensus.vote_layout import VoteLayout, sum_per_item, sum_per_pair, vote_layout
from labeling.consensus.votes import Gold, Votes

Params = tuple[NDArray[np.float64], NDArray[np.float64]]
"""(class priors (K,), confusions (n_workers, K, K))."""

# Floor inside logarithms, so that an exactly zero probability (possible with smoothing=0)
# gives a very negative log instead of -inf and NaN posteriors.
_TINY = np.finfo(np.float64).tiny

# Pseudo-items per class added to the class priors' counts (a symmetric Dirichlet prior). A
# share of the items instead (2 % spread over the classes) lifted the sparse binary crowds'
# rare-class recall but cost a dense rare-class crowd 3 points of accuracy.
_CLASS_PSEUDO_ITEMS = 1.0

# The free component of each worker's prior: 0.1 * K pseudo-votes per row, along the pooled
# row (the strong component has K * (1 + smoothing)).
_FREE_PSEUDO_VOTES = 0.1

_HALF_LOG_TAU = 0.5 * np.log(2.0 * np.pi)

# x (x + 1) ... (x + 7) = x^8 + 28 x^7 + ... + 5040 x: its coefficients, highest power first.
_RISING_8 = (1.0, 28.0, 322.0, 1960.0, 6769.0, 13132.0, 13068.0, 5040.0)

# The share of workers released to the free prior is learned from the crowd (the mean
# release, 5 rounds of fixed point per M-step) with a Beta prior worth 100 pseudo-workers of
# whom 1 is released: a crowd of 150 with 15 inverters releases about 6 %, a crowd of 5 with
# one always-yes worker about 2 %. Without those pseudo-workers the share ran to 0.3 in such
# small crowds and released a worker with 3 votes too; a fixed 1 % closed less of the gap on
# the crowds with inverters and colluders.
_FREE_PRIOR_WORKERS = 100.0
_FREE_PRIOR_RELEASED = 1.0
_MIXTURE_ROUNDS = 5


def dawid_skene(
    votes: Votes,
    *,
    gold: Gold | None = None,
    smoothing: float = 1.0,
    diagonal_prior: float = 0.0,
    free_prior: bool = True,
    max_iter: int = 100,
    tol: float = 1e-6,
    init: ArrayLike | None = None,
    init_confusions: ArrayLike | None = None,
    init_priors: ArrayLike | None = None,
) -> AggregateResult:
    """Labels, posteriors, per-worker confusion matrices and class priors by Dawid-Skene EM.

    M-step, with T the (n_items, K) posteriors, C[w, k, l] = sum of T[i, k] over w's votes l
    on items i (expected counts) and S = K * (1 + ``smoothing``) pseudo-votes::

        priors[k]     = (sum_i T[i, k] + 1) / (n_items + K)
        pooled[k, l]  = (sum_w C[w, k, l] + 1 / K) / (sum_w,l C[w, k, l] + 1)
        conf[w, k, l] = (C[w, k, l] + S * pooled[k, l] + diagonal_prior * (k == l))
                        / (sum_l C[w, k, l] + S + diagonal_prior)

    i.e. each confusion row is the posterior mean under a Dirichlet prior of concentration S
    centred on the crowd's pooled confusion row (the concentration the uniform
    Dirichlet(1 + smoothing) of textbook smoothing has): a worker with few votes on a true
    class keeps the crowd's row there, one with many his own, and a worker without votes gets
    the pooled matrix (any ``smoothing`` >= 0). ``pooled`` carries one uniform pseudo-vote per
    row, so it is defined before anyone votes. ``diagonal_prior`` > 0 leans every worker
    towards being right.

    With ``free_prior`` (the default) each worker's prior is a mixture of that Dirichlet and a
    weak one on the same centre, F = 0.1 * K pseudo-votes per row, and his matrix is the
    mixture's posterior mean::

        conf[w] = (1 - r_w) * conf_S[w] + r_w * conf_F[w]
        r_w     = 1 / (1 + exp(-(E_F[w] - E_S[w] + log(pi / (1 - pi)))))

    with conf_S, conf_F the formula above at strength S and F, E_S[w], E_F[w] the log
    Dirichlet-multinomial evidence of w's counts (diagonal prior included) under each, summed
    over his rows, and pi = (sum_w r_w + 1) / (n_workers + 100) (the crowd's share of
    released workers under a Beta prior of 100 pseudo-workers, 1 released), found by 5 rounds
    of fixed point from pi = 1/100 in every M-step. A worker without votes still gets the
    pooled matrix, and a few votes cannot outweigh the prior odds: a 3-vote worker's r_w is
    a few thousandths in the tests' crowds.

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

    def m_step(layout: VoteLayout, posteriors: NDArray[np.float64]) -> Params:
        return _priors(posteriors), _confusions(
            layout, posteriors, votes.n_workers, smoothing, diagonal_prior, free_prior
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

        c_w    = sum of T[i, l] over w's votes l on items i    (expected right answers)
        pooled = (sum_w c_w + 1 / K) / (sum_w n_w + 1)
        p_w    = (c_w + S * pooled) / (n_w + S),   S = 2 * (1 + smoothing)

    (n_w = w's vote count): the posterior mean under a Beta prior of concentration S centred
    on the crowd's pooled accuracy, so a worker without votes has the pooled accuracy.
    Priors, start, clamping, labels and likelihood as in :func:`dawid_skene`."""
    _check_em_args(smoothing, max_iter, tol)
    n_classes = votes.n_classes
    seen = np.bincount(votes.worker, minlength=votes.n_workers).astype(np.float64)

    def m_step(layout: VoteLayout, posteriors: NDArray[np.float64]) -> Params:
        agreement = np.take(posteriors, layout.cell)
        correct: NDArray[np.float64] = np.bincount(
            layout.worker, weights=agreement, minlength=votes.n_workers
        ).astype(np.float64, copy=False)
        pooled = (correct.sum() + 1.0 / n_classes) / (seen.sum() + 1.0)
        accuracy = _shrink(correct, seen, pooled, 2.0 * (1.0 + smoothing))
        wrong = (1.0 - accuracy) / (n_classes - 1)
        eye = np.eye(n_classes, dtype=bool)
        confusions = np.where(eye, accuracy[:, None, None], wrong[:, None, None])
        return _priors(posteriors), confusions

    return _fit(votes, gold, m_step, max_iter, tol, None, None, None)


def _check_em_args(smoothing: float, max_iter: int, tol: float) -> None:
    if smoothing < 0:
        raise ValueError(f"smoothing must be non-negative, got {smoothing}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    if tol < 0:
        raise ValueError(f"tol must be non-negative, got {tol}")


def _priors(posteriors: NDArray[np.float64]) -> NDArray[np.float64]:
    """Class priors from (K, n_items) posteriors, with ``_CLASS_PSEUDO_ITEMS`` per class."""
    return normalise_last_axis(posteriors.sum(axis=1) + _CLASS_PSEUDO_ITEMS)


def _shrink(
    counts: NDArray[np.float64],
    totals: NDArray[np.float64],
    centre: float | NDArray[np.float64],
    strength: float,
) -> NDArray[np.float64]:
    """(counts + strength * centre) / (totals + strength), broadcast; ``strength`` > 0."""
    shrunk: NDArray[np.float64] = (counts + strength * centre) / (totals + strength)
    return shrunk


def _confusions(
    layout: VoteLayout,
    posteriors: NDArray[np.float64],
    n_workers: int,
    smoothing: float,
    diagonal_prior: float,
    free_prior: bool,
) -> NDArray[np.float64]:
    """conf[w, true, given]: expected counts shrunk towards the pooled confusion (see
    :func:`dawid_skene`)."""
    k = posteriors.shape[0]
    counts = sum_per_pair(layout, posteriors, n_workers * k)  # [true, worker * K + given]
    by_worker = counts.reshape(k, n_workers, k).transpose(1, 0, 2)
    pooled = by_worker.sum(axis=0)
    centre = (pooled + 1.0 / k) / (pooled.sum(axis=1, keepdims=True) + 1.0)
    leaning = by_worker + diagonal_prior * np.eye(k)
    rows = by_worker.sum(axis=2, keepdims=True) + diagonal_prior
    strength = k * (1.0 + smoothing)
    shrunk = _shrink(leaning, rows, centre, strength)
    if not free_prior:
        return shrunk
    free = _shrink(leaning, rows, centre, k * _FREE_PSEUDO_VOTES)
    log_odds = _log_evidence(leaning, centre, k * _FREE_PSEUDO_VOTES) - _log_evidence(
        leaning, centre, strength
    )
    weight = _FREE_PRIOR_RELEASED / _FREE_PRIOR_WORKERS
    for _ in range(_MIXTURE_ROUNDS):
        prior_log_odds = np.log(weight) - np.log1p(-weight)
        released = 1.0 / (1.0 + np.exp(-np.clip(log_odds + prior_log_odds, -700.0, 700.0)))
        weight = (released.sum() + _FREE_PRIOR_RELEASED) / (released.size + _FREE_PRIOR_WORKERS)
    r = released[:, None, None]
    mixed: NDArray[np.float64] = (1.0 - r) * shrunk + r * free
    return mixed


def _log_evidence(
    counts: NDArray[np.float64], centre: NDArray[np.float64], strength: float
) -> NDArray[np.float64]:
    """(n_workers,) log P(counts | Dirichlet(strength * centre) on each row), per worker.

    The Dirichlet-multinomial likelihood of each row's (expected) counts, less the
    multinomial coefficient (the same under every prior), summed over the rows."""
    alpha = strength * centre
    rows = alpha.shape[0]
    constant = float(_log_gamma(np.full(rows, strength)).sum() - _log_gamma(alpha).sum())
    per_worker = _log_gamma(counts + alpha).sum(axis=(1, 2)) - _log_gamma(
        counts.sum(axis=2) + strength
    ).sum(axis=1)
    total: NDArray[np.float64] = per_worker + constant
    return total


def _log_gamma(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """log Gamma(x) for x > 0, elementwise (absolute error under 2e-11 up to x = 1e4).

    Stirling's series at x + 8, brought back by log Gamma(x) = log Gamma(x + 8)
    - log(x (x + 1) ... (x + 7)), that product by Horner's rule on its coefficients (no
    overflow below x = 1e38): two logarithms per entry, not a loop in Python."""
    x = np.asarray(x, dtype=np.float64)
    product = x + _RISING_8[1]
    for coefficient in _RISING_8[2:]:
        product *= x
        product += coefficient
    product *= x
    z = x + 8.0
    inverse = 1.0 / z
    square = inverse * inverse
    series = inverse * (1.0 / 12 - square * (1.0 / 360 - square * (1.0 / 1260 - square / 1680)))
    result: NDArray[np.float64] = (z - 0.5) * np.log(z) - z + _HALF_LOG_TAU + series
    return result - np.log(product)


def _e_step(
    layout: VoteLayout,
    params: Params,
    gold_items: NDArray[np.int64],
    gold_labels: NDArray[np.int64],
    out: NDArray[np.float64],
) -> tuple[NDArray[np.float64], float]:
    """Posteriors (gold clamped), written into ``out`` ((K, n_items)), and log P(votes | params)."""
    priors, confusions = params
    k = priors.size
    log_conf = np.log(np.maximum(confusions, _TINY))
    # by_pair[true, worker * K + given]
    by_pair = log_conf.transpose(1, 0, 2).reshape(k, confusions.shape[0] * k)
    log_joint = sum_per_item(layout, by_pair, out)
    log_joint += np.log(np.maximum(priors, _TINY))[:, None]
    gold_log_joint = log_joint[gold_labels, gold_items]
    top = log_joint.max(axis=0)
    joint = np.exp(np.subtract(log_joint, top, out=log_joint), out=log_joint)
    totals = joint.sum(axis=0)
    log_marginal = top + np.log(totals)
    log_marginal[gold_items] = gold_log_joint
    posteriors = np.divide(joint, totals, out=joint)
    _clamp(posteriors, gold_items, gold_labels)
    return posteriors, float(log_marginal.sum())


def _clamp(
    posteriors: NDArray[np.float64], gold_items: NDArray[np.int64], gold_labels: NDArray[np.int64]
) -> None:
    """Set gold items' columns of (K, n_items) ``posteriors`` one-hot on their labels."""
    posteriors[:, gold_items] = 0.0
    posteriors[gold_labels, gold_items] = 1.0


def _fit(
    votes: Votes,
    gold: Gold | None,
    m_step: Callable[[VoteLayout, NDArray[np.float64]], Params],
    max_iter: int,
    tol: float,
    init: ArrayLike | None,
    init_confusions: ArrayLike | None,
    init_priors: ArrayLike | None,
) -> AggregateResult:
    """Run EM from the chosen start until posteriors move less than ``tol``."""
    gold_items, gold_labels = votes.gold_arrays(gold)
    layout = vote_layout(votes)
    gold_at = layout.position[gold_items]
    posteriors = _start(votes, layout, init, init_confusions, init_priors, gold_at, gold_labels)
    spare = np.empty_like(posteriors)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        params = m_step(layout, posteriors)
        updated, log_likelihood = _e_step(layout, params, gold_at, gold_labels, spare)
        # Two buffers take turns: the previous posteriors' one takes the change, then the
        # next round's posteriors (fresh arrays of that size cost page faults every round).
        change_by_entry = np.abs(np.subtract(updated, posteriors, out=posteriors), out=posteriors)
        change = float(change_by_entry.max(initial=0.0))
        posteriors, spare = updated, change_by_entry
        if change < tol:
            break
    by_item = np.ascontiguousarray(posteriors[:, layout.position].T)
    labels = by_item.argmax(axis=1)
    known = layout.position < layout.n_voted
    known[gold_items] = True
    labels[~known] = -1
    return AggregateResult(
        labels=labels.astype(np.int64),
        posteriors=by_item,
        confusions=params[1],
        class_priors=params[0],
        iterations=iterations,
        log_likelihood=log_likelihood,
    )


def _start(
    votes: Votes,
    layout: VoteLayout,
    init: ArrayLike | None,
    init_confusions: ArrayLike | None,
    init_priors: ArrayLike | None,
    gold_items: NDArray[np.int64],
    gold_labels: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Initial (K, n_items) posteriors in the layout's item numbering, gold clamped."""
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
        out = np.empty((k, votes.n_items))
        return _e_step(layout, (priors, confusions), gold_items, gold_labels, out)[0]
    if init is None:
        by_item = majority_vote(votes).posteriors
    else:
        by_item = _stochastic(init, (votes.n_items, k), "init")
    posteriors = np.ascontiguousarray(by_item[layout.order].T)
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
