"""Crowd votes as flat integer arrays, and the gold labels that go with them.

A vote is one (item, worker, label) triple; the three arrays hold one entry per vote. Items,
workers and classes are numbered from 0, so the arrays index straight into result arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

Gold = tuple[ArrayLike, ArrayLike]
"""Known labels: ``(items, labels)``, two equal-length integer arrays."""


def as_index_array(values: ArrayLike, name: str) -> NDArray[np.int64]:
    """``values`` as a 1-D int64 array of non-negative integers; ValueError naming ``name``."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.min() < 0:
        raise ValueError(f"{name} must be non-negative, got {array.min()}")
    return array.astype(np.int64, copy=False)


def _check_below(values: NDArray[np.int64], size: int, name: str, size_name: str) -> None:
    if size < 0:
        raise ValueError(f"{size_name} must be non-negative, got {size}")
    if values.size and values.max() >= size:
        raise ValueError(f"{name} holds {values.max()}, out of range for {size_name}={size}")


@dataclass(frozen=True)
class Votes:
    """One array entry per vote: ``worker`` gave ``label`` to ``item``.

    Build it with :meth:`from_arrays`, which converts and checks its input; the constructor
    checks the invariants (int64 1-D arrays of one length, every index below its size) too."""

    item: NDArray[np.int64]
    worker: NDArray[np.int64]
    label: NDArray[np.int64]
    n_items: int
    n_workers: int
    n_classes: int

    def __post_init__(self) -> None:
        arrays = {"item": self.item, "worker": self.worker, "label": self.label}
        for name, array in arrays.items():
            if not isinstance(array, np.ndarray) or array.dtype != np.int64 or array.ndim != 1:
                raise ValueError(f"{name} must be a 1-D int64 array; use Votes.from_arrays")
        if not len(self.item) == len(self.worker) == len(self.label):
            raise ValueError(
                "item, worker and label must have one length, got "
                f"{len(self.item)}, {len(self.worker)} and {len(self.label)}"
            )
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {self.n_classes}")
        if self.item.size and min(self.item.min(), self.worker.min(), self.label.min()) < 0:
            raise ValueError("item, worker and label must be non-negative")
        _check_below(self.item, self.n_items, "item", "n_items")
        _check_below(self.worker, self.n_workers, "worker", "n_workers")
        _check_below(self.label, self.n_classes, "label", "n_classes")

    @classmethod
    def from_arrays(
        cls,
        item: ArrayLike,
        worker: ArrayLike,
        label: ArrayLike,
        *,
        n_items: int | None = None,
        n_workers: int | None = None,
        n_classes: int | None = None,
    ) -> Votes:
        """Votes from three integer sequences, raising ValueError on malformed input.

        A size left out is the largest index seen plus one (0 when there are no votes); the
        default ``n_classes`` is at least 2, so binary votes that are all 0 still make a
        two-class problem."""
        items = as_index_array(item, "item")
        workers = as_index_array(worker, "worker")
        labels = as_index_array(label, "label")
        return cls(
            item=items,
            worker=workers,
            label=labels,
            n_items=_size(items) if n_items is None else n_items,
            n_workers=_size(workers) if n_workers is None else n_workers,
            n_classes=max(2, _size(labels)) if n_classes is None else n_classes,
        )

    @property
    def n_votes(self) -> int:
        """Number of votes."""
        return len(self.item)

    def counts(self, weights: ArrayLike | None = None) -> NDArray[np.float64]:
        """Votes per (item, class), shape (n_items, n_classes).

        With ``weights`` (one per worker) each vote counts its worker's weight instead of 1."""
        vote_weights = None
        if weights is not None:
            per_worker = np.asarray(weights, dtype=np.float64)
            if per_worker.shape != (self.n_workers,):
                raise ValueError(
                    f"weights must have shape ({self.n_workers},), got {per_worker.shape}"
                )
            vote_weights = per_worker[self.worker]
        flat = np.bincount(
            self.item * self.n_classes + self.label,
            weights=vote_weights,
            minlength=self.n_items * self.n_classes,
        )
        return flat.astype(np.float64, copy=False).reshape(self.n_items, self.n_classes)

    def gold_arrays(self, gold: Gold | None) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``gold`` checked against these votes' sizes, as (items, labels) int64 arrays.

        Empty arrays when ``gold`` is None. An item may appear at most once."""
        if gold is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        items = as_index_array(gold[0], "gold items")
        labels = as_index_array(gold[1], "gold labels")
        if len(items) != len(labels):
            raise ValueError(
                f"gold items and labels must have one length, got {len(items)} and {len(labels)}"
            )
        _check_below(items, self.n_items, "gold items", "n_items")
        _check_below(labels, self.n_classes, "gold labels", "n_classes")
        if len(np.unique(items)) != len(items):
            raise ValueError("gold items must not repeat")
        return items, labels


def _size(values: NDArray[np.int64]) -> int:
    return int(values.max()) + 1 if values.size else 0
