"""Decision codes shared by the dynamic (table) and adaptive (reliability) stopping rules."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

ACCEPT = 1
REJECT = 0
CONTINUE = -1
REVIEW = -2


def decision_codes(
    p_good: ArrayLike, n_votes: ArrayLike, *, threshold: float, cap: int
) -> NDArray[np.int8]:
    """Per item: ACCEPT if P(good) >= threshold, REJECT if 1 - P(good) >= threshold, else
    CONTINUE while it has fewer than ``cap`` votes and REVIEW once it has reached it.

    A NaN ``p_good`` (no estimate) never decides: the item continues or goes to review."""
    if not 0.5 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0.5, 1], got {threshold}")
    p = np.asarray(p_good, dtype=np.float64)
    count = np.asarray(n_votes)
    codes = np.where(count < cap, np.int8(CONTINUE), np.int8(REVIEW))
    codes = np.where(p >= threshold, np.int8(ACCEPT), codes)
    return np.where(1.0 - p >= threshold, np.int8(REJECT), codes).astype(np.int8)
