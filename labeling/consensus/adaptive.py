"""Online decisions on binary items from reliability-weighted votes.

Each worker answers right with his own probability p (one-coin model), so a yes from him
multiplies the odds of "yes" by p / (1 - p) and a no divides them by it. An item gets votes
until its posterior passes the threshold either way, or it reaches the vote cap.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.consensus.decisions import CONTINUE, decision_codes
from labeling.consensus.reliability import ACCURACY_EPS
from labeling.consensus.votes import as_index_array


def binary_posteriors(
    item: ArrayLike,
    answers: ArrayLike,
    accuracies: ArrayLike,
    n_items: int,
    prior: float | ArrayLike = 0.5,
) -> NDArray[np.float64]:
    """P(yes) per item, shape (n_items,), from one vote per entry of ``item``.

    ``answers``: 1 yes, 0 no; ``accuracies``: the voter's accuracy for each vote, clipped to
    [0.5, 1 - ACCURACY_EPS]; ``prior``: P(yes) before any vote, scalar or per item,
    strictly between 0 and 1. Computed as sigmoid(logit(prior) + sum of ±log(p / (1 - p))),
    + for yes. A worker at or below chance weighs nothing (the rule of ``worker_weights``):
    reading his answers backwards would trust a worker whose behaviour is the one thing known
    to be wrong, and hand an adversary who changes tack a full weight until he is re-learnt."""
    items, evidence, log_odds = _evidence(item, answers, accuracies, n_items, prior)
    log_odds = log_odds + np.bincount(items, weights=evidence, minlength=n_items)
    return _sigmoid(log_odds)


def vote_agreement(
    item: ArrayLike,
    answers: ArrayLike,
    accuracies: ArrayLike,
    n_items: int,
    prior: float | ArrayLike = 0.5,
) -> NDArray[np.float64]:
    """Per vote, P(yes) of its item from the prior and the item's *other* votes (leave one out),
    arguments as in :func:`binary_posteriors`: what the rest of the crowd says the truth was,
    free of this vote's own weight, so a worker cannot agree with himself."""
    items, evidence, log_odds = _evidence(item, answers, accuracies, n_items, prior)
    total = np.broadcast_to(log_odds, (n_items,)) + np.bincount(
        items, weights=evidence, minlength=n_items
    )
    return _sigmoid(total[items] - evidence)


def vote_accuracies(
    answers: ArrayLike, sensitivity: ArrayLike, specificity: ArrayLike
) -> NDArray[np.float64]:
    """Per vote, the one-coin accuracy whose odds equal the voter's two-coin likelihood ratio:
    a yes from a worker with sensitivity s (P(yes | yes)) and specificity c (P(no | no))
    multiplies the odds of yes by s / (1 - c), a no divides them by c / (1 - s). A yes-clicker
    (s = 1, c = 0) so weighs nothing either way."""
    said_yes = np.asarray(answers) == 1
    s = np.clip(np.asarray(sensitivity, dtype=np.float64), ACCURACY_EPS, 1.0 - ACCURACY_EPS)
    c = np.clip(np.asarray(specificity, dtype=np.float64), ACCURACY_EPS, 1.0 - ACCURACY_EPS)
    accuracy: NDArray[np.float64] = np.where(said_yes, s / (s + 1.0 - c), c / (c + 1.0 - s))
    return accuracy


def _sigmoid(log_odds: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * log_odds))  # without overflow


def _evidence(
    item: ArrayLike,
    answers: ArrayLike,
    accuracies: ArrayLike,
    n_items: int,
    prior: float | ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Validated item indices, each vote's log-odds evidence (+ for yes, 0 for a voter at or
    below chance) and the prior's log-odds."""
    items = as_index_array(item, "item")
    said_yes = as_index_array(answers, "answers")
    p = np.clip(np.asarray(accuracies, dtype=np.float64), 0.5, 1.0 - ACCURACY_EPS)
    if not len(items) == len(said_yes) == p.size or p.ndim != 1:
        raise ValueError("item, answers and accuracies must be 1-D arrays of one length")
    if said_yes.size and said_yes.max() > 1:
        raise ValueError("answers must be 1 (yes) or 0 (no)")
    if items.size and items.max() >= n_items:
        raise ValueError(f"item holds {items.max()}, out of range for n_items={n_items}")
    prior_yes = np.asarray(prior, dtype=np.float64)
    if np.any(prior_yes <= 0) or np.any(prior_yes >= 1):
        raise ValueError("prior must lie strictly between 0 and 1")
    evidence = np.where(said_yes == 1, 1.0, -1.0) * (np.log(p) - np.log1p(-p))
    return items, evidence, np.log(prior_yes) - np.log1p(-prior_yes)


def binary_posterior(answers: ArrayLike, accuracies: ArrayLike, prior: float = 0.5) -> float:
    """P(yes) for one item from its votes; see :func:`binary_posteriors`."""
    said_yes = np.asarray(answers)
    return float(
        binary_posteriors(np.zeros(said_yes.shape, np.int64), said_yes, accuracies, 1, prior)[0]
    )


def decided_prior(accepted: ArrayLike, decided: ArrayLike) -> NDArray[np.float64]:
    """P(yes) learnt from the decisions taken so far: (accepted + 1) / (decided + 2), the
    Beta(1, 1) posterior mean of the share of yes among decided items."""
    yes = np.asarray(accepted, dtype=np.float64)
    total = np.asarray(decided, dtype=np.float64)
    if np.any(yes < 0) or np.any(yes > total):
        raise ValueError("accepted must lie between 0 and decided")
    prior: NDArray[np.float64] = (yes + 1.0) / (total + 2.0)
    return prior


def cautious_posteriors(
    posterior: ArrayLike, prior: float | ArrayLike, learnt_prior: float | ArrayLike
) -> NDArray[np.float64]:
    """P(yes) for deciding: ``posterior`` (computed under ``prior``) taken again under whichever
    of ``prior`` and ``learnt_prior`` makes its leaning side harder to reach. A yes is judged
    under the smaller prior, a no under the larger; an item either leaves leaning its way, or
    at 1/2 when the two disagree. The learnt prior can so only ask for more evidence, never
    less: a rare class is not accepted on the evidence that would do at 50/50, and a prior
    learnt from decisions that adversaries skewed cannot make their next decisions easier."""
    p = np.clip(np.asarray(posterior, dtype=np.float64), 1e-12, 1 - 1e-12)
    base = np.asarray(prior, dtype=np.float64)
    learnt = np.clip(np.asarray(learnt_prior, dtype=np.float64), ACCURACY_EPS, 1 - ACCURACY_EPS)
    evidence = np.log(p) - np.log1p(-p) - (np.log(base) - np.log1p(-base))

    def under(q: NDArray[np.float64]) -> NDArray[np.float64]:
        return _sigmoid(evidence + np.log(q) - np.log1p(-q))

    as_yes, as_no = under(np.minimum(base, learnt)), under(np.maximum(base, learnt))
    cautious: NDArray[np.float64] = np.where(
        as_yes >= 0.5, as_yes, np.where(as_no <= 0.5, as_no, 0.5)
    )
    return cautious


def allocate(
    posterior: ArrayLike, votes: ArrayLike, *, threshold: float = 0.95, cap: int = 7
) -> tuple[NDArray[np.int8], NDArray[np.int64]]:
    """Decision codes and asking priority per item, from P(yes) and the vote count so far.

    Codes as in :func:`labeling.consensus.dynamic.decide`: ACCEPT, REJECT, CONTINUE (fewer than
    ``cap`` votes) or REVIEW. Priority: round(1000 * max(p, 1 - p)) for items that continue, so
    the one closest to a decision is asked first, and 0 for all others."""
    p = np.asarray(posterior, dtype=np.float64)
    if cap < 1:
        raise ValueError(f"cap must be at least 1, got {cap}")
    codes = decision_codes(p, votes, threshold=threshold, cap=cap)
    confidence = np.rint(1000.0 * np.maximum(p, 1.0 - p)).astype(np.int64)
    return codes, np.where(codes == CONTINUE, confidence, 0)
