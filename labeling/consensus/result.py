"""What every label aggregator returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class AggregateResult:
    """Aggregated labels and the model behind them.

    ``labels``: (n_items,) int64, the chosen class, -1 where undecided (no votes, or a tie under
    ``tie="none"``). ``posteriors``: (n_items, n_classes), each row sums to 1.
    ``confusions``: (n_workers, K, K), ``confusions[w, true, given]`` = P(worker w answers
    ``given`` | the truth is ``true``), None for models without one. ``class_priors``: (K,) or
    None. ``iterations``: EM rounds run (0 for one-shot rules). ``log_likelihood``: natural log
    of P(votes | fitted parameters), None for models without one."""

    labels: NDArray[np.int64]
    posteriors: NDArray[np.float64]
    confusions: NDArray[np.float64] | None
    class_priors: NDArray[np.float64] | None
    iterations: int
    log_likelihood: float | None
