"""Per-worker reliability: accuracy from gold or from EM, spammer score, voting weights."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.consensus.votes import Votes

ACCURACY_EPS = 1e-3
"""Accuracies are clipped to [ACCURACY_EPS, 1 - ACCURACY_EPS] before taking log-odds."""


def gold_accuracy(
    correct: ArrayLike, seen: ArrayLike, *, alpha: float = 2.0, beta: float = 1.0
) -> NDArray[np.float64]:
    """Posterior mean accuracy (correct + alpha) / (seen + alpha + beta) under a
    Beta(alpha, beta) prior, from ``correct`` right answers out of ``seen`` gold items.

    The default prior (mean 2/3) gives a new worker the benefit of the doubt without trusting
    him fully."""
    right = np.asarray(correct, dtype=np.float64)
    total = np.asarray(seen, dtype=np.float64)
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"alpha and beta must be positive, got {alpha} and {beta}")
    if np.any(right < 0) or np.any(right > total):
        raise ValueError("correct must lie between 0 and seen")
    return (right + alpha) / (total + alpha + beta)


PEER_CONFIDENCE = 0.9
"""A vote teaches its worker's live coins only where the item's other votes were at least this
sure of the truth: an item they left near even says little about him, and counting it as half
right pulls every worker toward chance (bench/consensus_live.py)."""


def newcomer_accuracy(
    crowd_correct: float, crowd_seen: float, *, alpha: float = 2.0, beta: float = 1.0
) -> float:
    """What a worker is taken to be right on before his own record says more: the
    Beta(alpha, beta) prior's mean (2/3), or the whole crowd's control accuracy under that
    prior, ``crowd_correct`` of ``crowd_seen`` answers, where that is lower. In a crowd of weak
    workers (right 55-75 % of the time) 2/3 overstates every newcomer, and a handful of such
    votes can decide an item that their true weight leaves near even (bench/consensus_live.py:
    the yes-clicker mix's wrong acceptances came mostly from the first waves); the crowd's
    figure only ever asks for more evidence, never less, so adversaries who answer controls
    right cannot raise it."""
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"alpha and beta must be positive, got {alpha} and {beta}")
    if crowd_correct < 0 or crowd_correct > crowd_seen:
        raise ValueError("crowd_correct must lie between 0 and crowd_seen")
    prior = alpha / (alpha + beta)
    return min(prior, (crowd_correct + alpha) / (crowd_seen + alpha + beta))


COUNT_ROUNDING = 1e-6
"""Peer counts this little below zero are rounding left by replaced credits, read as 0."""


def live_coins(
    gold_correct: ArrayLike,
    gold_seen: ArrayLike,
    peer: ArrayLike,
    *,
    strength: float = 4.0,
    alpha: float = 2.0,
    beta: float = 1.0,
    newcomer: float | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per worker, (sensitivity, specificity) learnt live from his control record and from
    agreement with the rest of the crowd.

    ``peer`` (workers, 4): expected counts over his votes on decided items, weighted by what
    the other votes said the truth was: [votes on yes items, of those said yes, votes on no
    items, of those said no]. Each coin is a Beta posterior mean over those counts whose prior
    has the control record's mean (under Beta(alpha, beta): 2/3 for a newcomer) and weighs at
    most ``strength`` votes: a worker who answers controls right and the rest wrong (controls
    spotted) is then caught as soon as the crowd outvotes him on a few items, however long his
    control record. ``newcomer`` (newcomer_accuracy) moves that Beta prior's mean, keeping its
    weight alpha + beta."""
    right = np.asarray(gold_correct, dtype=np.float64)
    seen = np.asarray(gold_seen, dtype=np.float64)
    counts = np.asarray(peer, dtype=np.float64).reshape(-1, 4)
    # a credit replaced (peer_count_changes) can leave a count a rounding error below zero
    counts = np.where((counts < 0) & (counts > -COUNT_ROUNDING), 0.0, counts)
    if np.any(right < 0) or np.any(right > seen) or np.any(counts < 0):
        raise ValueError("counts must be non-negative and gold_correct at most gold_seen")
    if strength <= 0:
        raise ValueError(f"strength must be positive, got {strength}")
    if newcomer is not None:
        if not 0 < newcomer < 1:
            raise ValueError(f"newcomer must lie strictly between 0 and 1, got {newcomer}")
        alpha, beta = newcomer * (alpha + beta), (1 - newcomer) * (alpha + beta)
    weight = np.minimum(seen + alpha + beta, strength)[:, None]
    mean = ((right + alpha) / (seen + alpha + beta))[:, None]
    judged, agreed = counts[:, [0, 2]], counts[:, [1, 3]]
    coins = (weight * mean + agreed) / (weight + judged)
    return coins[:, 0], coins[:, 1]


def peer_counts(
    worker: ArrayLike, answers: ArrayLike, p_yes_others: ArrayLike, n_workers: int
) -> NDArray[np.float64]:
    """(n_workers, 4) expected counts for :func:`live_coins` from votes (``answers`` 1 yes, 0
    no) and, per vote, P(yes) from the item's other votes."""
    w = np.asarray(worker, dtype=np.int64)
    yes = np.asarray(answers, dtype=np.float64)
    q = np.asarray(p_yes_others, dtype=np.float64)
    columns = (q, q * yes, 1.0 - q, (1.0 - q) * (1.0 - yes))
    return np.stack([np.bincount(w, weights=c, minlength=n_workers) for c in columns], axis=1)


def peer_count_changes(
    worker: ArrayLike,
    answers: ArrayLike,
    credited: ArrayLike,
    p_yes_others: ArrayLike,
    n_workers: int,
) -> NDArray[np.float64]:
    """(n_workers, 4) change to the :func:`peer_counts` records when each vote's credit moves
    from ``credited`` (the P(yes) it was credited with before, NaN: never) to ``p_yes_others``
    (NaN: no credit now). A vote so counts once, with its item's latest decision, however
    often the item is reopened and decided again."""
    old = np.asarray(credited, dtype=np.float64)
    new = np.asarray(p_yes_others, dtype=np.float64)
    w = np.asarray(worker, dtype=np.int64)
    had, has = ~np.isnan(old), ~np.isnan(new)
    added = peer_counts(w[has], np.asarray(answers)[has], new[has], n_workers)
    taken = peer_counts(w[had], np.asarray(answers)[had], old[had], n_workers)
    return added - taken


def em_accuracy(confusions: ArrayLike, class_priors: ArrayLike) -> NDArray[np.float64]:
    """Per worker, P(answer is right) = sum_k prior_k * conf[w, k, k]."""
    conf = _confusions(confusions)
    priors = np.asarray(class_priors, dtype=np.float64)
    if priors.shape != conf.shape[1:2]:
        raise ValueError(f"class_priors must have shape ({conf.shape[1]},), got {priors.shape}")
    accuracy: NDArray[np.float64] = np.einsum("k,wkk->w", priors, conf)
    return accuracy


def spammer_score(confusions: ArrayLike) -> NDArray[np.float64]:
    """Raykar & Yu (2012) spammer score per worker, in [0, 1]; low means spammer.

    S_w = 1 / (K (K - 1)) * sum over class pairs c < c' of ||conf[w, c] - conf[w, c']||^2.

    A spammer answers independently of the truth, so all his rows are equal and S = 0; a
    perfect worker (identity matrix) has K(K-1)/2 pairs at squared distance 2, so S = 1. For
    K = 2 it is (a + b - 1)^2 with a the sensitivity conf[1, 1] and b the specificity
    conf[0, 0]."""
    conf = _confusions(confusions)
    k = conf.shape[1]
    # sum over pairs i < j of ||r_i - r_j||^2 = K * sum_i ||r_i||^2 - ||sum_i r_i||^2
    pair_sum = k * np.square(conf).sum(axis=(1, 2)) - np.square(conf.sum(axis=1)).sum(axis=1)
    score: NDArray[np.float64] = np.maximum(pair_sum / (k * (k - 1)), 0.0)  # rounding dips < 0
    return score


def worker_weights(accuracy: ArrayLike, n_classes: int) -> NDArray[np.float64]:
    """Voting weight per worker: the one-coin log-odds log((K - 1) p / (1 - p)), floored at 0.

    p is clipped to [ACCURACY_EPS, 1 - ACCURACY_EPS], so weights stay finite (at most
    log((K - 1) * 999)). A worker at or below chance (p <= 1/K) weighs 0: majority vote ignores
    him rather than reading his answers backwards."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    p = np.clip(np.asarray(accuracy, dtype=np.float64), ACCURACY_EPS, 1.0 - ACCURACY_EPS)
    return np.maximum(np.log((n_classes - 1) * p / (1.0 - p)), 0.0)


def _confusions(confusions: ArrayLike) -> NDArray[np.float64]:
    conf = np.asarray(confusions, dtype=np.float64)
    if conf.ndim != 3 or conf.shape[1] != conf.shape[2] or conf.shape[1] < 2:
        raise ValueError(
            f"confusions must have shape (n_workers, K, K) with K >= 2, got {conf.shape}"
        )
    return conf


def own_confusions(votes: Votes, posteriors: ArrayLike) -> NDArray[np.float64]:
    """(workers, classes, classes): each worker's confusion from his own votes alone, every
    vote spread over the true classes by its item's posterior (items, classes); no prior, so a
    worker the model knows is judged on what he answered. A row with no evidence is uniform."""
    post = np.asarray(posteriors, dtype=np.float64)
    k, workers = votes.n_classes, votes.n_workers
    pair = votes.worker * k + votes.label
    by_true = [
        np.bincount(pair, weights=post[votes.item, c], minlength=workers * k) for c in range(k)
    ]
    # [true class, worker * k + label] -> [worker, true class, label]
    counts = np.stack(by_true).reshape(k, workers, k).transpose(1, 0, 2)
    rows = counts.sum(axis=2, keepdims=True)
    own: NDArray[np.float64] = np.where(rows > 0, counts / np.maximum(rows, 1e-12), 1.0 / k)
    return own
