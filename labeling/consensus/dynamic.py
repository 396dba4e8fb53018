"""ImageNet's dynamic consensus (Deng et al. 2009) for binary yes/no verification.

A calibration sample of items gets many votes each. From it, a table gives P(item is good | y
yes and n no votes) for every tally up to a cap; live items then get votes one at a time until
the table is confident either way, or the cap is reached and a curator decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeling.consensus.decisions import decision_codes
from labeling.consensus.votes import as_index_array


@dataclass(frozen=True)
class ConfidenceTable:
    """``table[y, n]`` = P(good | y yes, n no) for y + n <= ``cap``, NaN elsewhere; shape
    (cap + 1, cap + 1). ``prior``: share of good items in the calibration sample."""

    cap: int
    table: NDArray[np.float64]
    prior: float


def fit_confidence_table(
    yes: ArrayLike, no: ArrayLike, *, cap: int = 10, smoothing: float = 1.0
) -> ConfidenceTable:
    """The confidence table of a calibration sample with ``yes[i]``/``no[i]`` votes per item.

    Each item's truth is the majority of its votes; items with as many yes as no votes are left
    out entirely (their truth is unknown). For a tally (y, n) with m = y + n <= cap, an item with
    Y yes out of T votes contributes the probability that m of its votes drawn without
    replacement hold exactly y yes, the hypergeometric pmf C(Y, y) C(T - Y, n) / C(T, m) (0 when
    m > T). Then::

        table[y, n] = (sum of pmf over good items + smoothing * prior)
                      / (sum of pmf over all items + smoothing)

    so a tally that the sample rarely shows falls back towards the prior (with smoothing 0, a
    tally that no item can show is NaN). Items should have at least ``cap`` votes; ValueError
    if the arrays are empty, any item has fewer than 2 votes, or no item has a majority."""
    yes_votes = as_index_array(yes, "yes")
    no_votes = as_index_array(no, "no")
    if len(yes_votes) != len(no_votes):
        raise ValueError(
            f"yes and no must have one length, got {len(yes_votes)} and {len(no_votes)}"
        )
    if len(yes_votes) == 0:
        raise ValueError("the calibration sample is empty")
    if cap < 1:
        raise ValueError(f"cap must be at least 1, got {cap}")
    if smoothing < 0:
        raise ValueError(f"smoothing must be non-negative, got {smoothing}")
    total = yes_votes + no_votes
    if total.min() < 2:
        raise ValueError(f"every calibration item needs at least 2 votes, one has {total.min()}")
    decided = yes_votes != no_votes
    if not decided.any():
        raise ValueError("no calibration item has a majority of yes or no votes")
    sample_yes, sample_no = yes_votes[decided], no_votes[decided]
    good = sample_yes > sample_no
    prior = float(good.mean())

    most = int(total.max())
    log_factorial = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, most + 1)))))
    y, n = np.indices((cap + 1, cap + 1))
    m = y + n
    # one pmf per (item, y, n): items on axis 0, tallies on axes 1 and 2
    item_yes, item_no = sample_yes[:, None, None], sample_no[:, None, None]
    possible = (y <= item_yes) & (n <= item_no) & (m <= cap)
    log_pmf = (
        _log_choose(log_factorial, item_yes, y, possible)
        + _log_choose(log_factorial, item_no, n, possible)
        - _log_choose(log_factorial, item_yes + item_no, m, possible)
    )
    pmf = np.where(possible, np.exp(log_pmf), 0.0)
    good_mass = pmf[good].sum(axis=0)
    all_mass = pmf.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = (good_mass + smoothing * prior) / (all_mass + smoothing)
    table[m > cap] = np.nan
    return ConfidenceTable(cap=cap, table=table, prior=prior)


def _log_choose(
    log_factorial: NDArray[np.float64],
    total: NDArray[np.int64],
    chosen: NDArray[np.int64],
    valid: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """log C(total, chosen) where ``valid`` (which implies 0 <= chosen <= total), else 0."""
    chosen = np.where(valid, chosen, 0)
    total = np.where(valid, total, 0)
    log_choose: NDArray[np.float64] = (
        log_factorial[total] - log_factorial[chosen] - log_factorial[total - chosen]
    )
    return log_choose


def decide(
    table: ConfidenceTable,
    yes: ArrayLike,
    no: ArrayLike,
    *,
    threshold: float = 0.95,
    cap: int | None = None,
) -> NDArray[np.int8]:
    """Decision codes for tallies (``yes``, ``no``, broadcast together) read off ``table``.

    ACCEPT where table[y, n] >= threshold, REJECT where 1 - table[y, n] >= threshold, else
    CONTINUE while y + n < ``cap`` (default ``table.cap``) and REVIEW from the cap on. A tally
    past the table's cap has no entry and goes to REVIEW."""
    limit = table.cap if cap is None else cap
    if not 1 <= limit <= table.cap:
        raise ValueError(f"cap must be between 1 and the table's cap {table.cap}, got {limit}")
    y, n = np.broadcast_arrays(np.asarray(yes), np.asarray(no))
    if not (np.issubdtype(y.dtype, np.integer) and np.issubdtype(n.dtype, np.integer)):
        raise ValueError(f"yes and no must hold integers, got {y.dtype} and {n.dtype}")
    if y.size and min(y.min(), n.min()) < 0:
        raise ValueError("yes and no must be non-negative")
    inside = y + n <= table.cap
    p_good = np.where(inside, table.table[np.where(inside, y, 0), np.where(inside, n, 0)], np.nan)
    return decision_codes(p_good, y + n, threshold=threshold, cap=limit)
