"""Votes regrouped for EM rounds in whole-array steps (pure numpy, used by Dawid-Skene).

A :class:`VoteLayout` is built once per fit; each round then sums over the votes with a few
gathers, slice additions and ``np.bincount`` calls, never a Python loop per vote or per item.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from labeling.consensus.votes import Votes

# Vote ranks covering fewer items than this go to the tail, summed by np.bincount: a sliced rank
# costs a few Python-level numpy calls per class, which only pays off over enough items
# (measured at 1M votes: 1,000 ranks of 1,000 items are faster as a tail).
_MIN_SLICE = 1024


@dataclass(frozen=True)
class VoteLayout:
    """The votes regrouped once per fit, so that an EM round sums them in whole-array steps.

    Items are renumbered by vote count, most first (ties keep their order), so that the items
    with more than r votes are a prefix of the new numbering. Votes are laid out rank by rank:
    every item's first vote in the new item order, then every item's second vote, and so on.
    Rank r's votes then line up with that prefix, and a sum per item is one slice addition per
    rank, adding each item's votes in their original order as ``np.bincount`` does. Ranks of
    fewer than ``_MIN_SLICE`` items (the last votes of the few busiest items) form a tail that
    ``np.bincount`` sums.

    Inside the EM loop posteriors are (K, n_items) in the new numbering. Per-vote arrays are in
    layout order; ``scratch`` is an (n_votes,) buffer that the rounds gather into."""

    order: NDArray[np.int64]  # (n_items,) original number of each renumbered item
    position: NDArray[np.int64]  # (n_items,) new number of each original item
    n_voted: int  # items with at least one vote, numbered [0, n_voted)
    item: NDArray[np.int64]  # new number of each vote's item
    worker: NDArray[np.int64]
    label: NDArray[np.int64]
    pair: NDArray[np.int64]  # worker * K + label
    ranks: tuple[tuple[int, int], ...]  # (first vote, votes = items) of each sliced rank
    tail: int  # first vote of the tail
    tail_items: int  # items with votes in the tail, numbered [0, tail_items)
    scratch: NDArray[np.float64]

    @cached_property
    def cell(self) -> NDArray[np.int64]:
        """label * n_items + item: each vote's entry in the flattened (K, n_items) posteriors."""
        return self.label * self.order.size + self.item


def vote_layout(votes: Votes) -> VoteLayout:
    """The layout of ``votes``: two sorts, then a few gathers and scatters over the votes."""
    counts = np.bincount(votes.item, minlength=votes.n_items)
    order = np.argsort(-counts, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(votes.n_items)
    by_item = np.argsort(position[votes.item], kind="stable")
    ordered_counts = counts[order]
    renumbered = np.repeat(np.arange(votes.n_items), ordered_counts)  # of by_item's votes
    first = np.cumsum(ordered_counts) - ordered_counts
    rank = np.arange(votes.n_votes) - np.repeat(first, ordered_counts)
    # votes of rank r = items with more than r votes
    sizes = votes.n_items - np.cumsum(np.bincount(ordered_counts))[:-1]
    starts = np.cumsum(sizes) - sizes
    laid_out = np.empty(votes.n_votes, dtype=np.int64)
    laid_out[starts[rank] + renumbered] = by_item
    worker = votes.worker[laid_out]
    label = votes.label[laid_out]
    sliced = int(np.count_nonzero(sizes >= _MIN_SLICE))
    tail = sliced < sizes.size
    return VoteLayout(
        order=order,
        position=position,
        n_voted=int(sizes[0]) if sizes.size else 0,
        item=np.arange(votes.n_votes) - np.repeat(starts, sizes),
        worker=worker,
        label=label,
        pair=worker * votes.n_classes + label,
        ranks=tuple((int(starts[r]), int(sizes[r])) for r in range(sliced)),
        tail=int(starts[sliced]) if tail else votes.n_votes,
        tail_items=int(sizes[sliced]) if tail else 0,
        scratch=np.empty(votes.n_votes),
    )


def sum_per_item(
    layout: VoteLayout, by_pair: NDArray[np.float64], totals: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``totals`` ((K, n_items)) set to the sums of ``by_pair[:, pair]`` over each item's votes.

    ``by_pair``: (K, n_pairs), a value per class and pair (worker * K + label)."""
    totals.fill(0.0)
    for start, size in layout.ranks:
        pairs = layout.pair[start : start + size]
        gathered = layout.scratch[:size]
        for row, table in zip(totals, by_pair, strict=True):
            row[:size] += np.take(table, pairs, out=gathered, mode="clip")
    tail = slice(layout.tail, None)
    _add_tail(layout, totals[:, : layout.tail_items], by_pair, layout.pair[tail], layout.item[tail])
    return totals


def sum_per_pair(
    layout: VoteLayout, posteriors: NDArray[np.float64], n_pairs: int
) -> NDArray[np.float64]:
    """(K, n_pairs) sums of ``posteriors[:, item]`` ((K, n_items)) over each pair's votes.

    A pair is worker * K + label. A sliced rank's votes line up with the first items, so
    their posteriors are read in place; the tail's are gathered."""
    totals = np.zeros((posteriors.shape[0], n_pairs))
    for start, size in layout.ranks:
        pairs = layout.pair[start : start + size]
        for row, values in zip(totals, posteriors[:, :size], strict=True):
            row += np.bincount(pairs, weights=values, minlength=n_pairs)
    tail = slice(layout.tail, None)
    _add_tail(layout, totals, posteriors, layout.item[tail], layout.pair[tail])
    return totals


def _add_tail(
    layout: VoteLayout,
    totals: NDArray[np.float64],
    tables: NDArray[np.float64],
    read_at: NDArray[np.int64],
    add_to: NDArray[np.int64],
) -> None:
    """Per row: ``totals[row, add_to[v]] += tables[row, read_at[v]]`` for each tail vote v."""
    gathered = layout.scratch[: read_at.size]
    for row, table in zip(totals, tables, strict=True):
        np.take(table, read_at, out=gathered, mode="clip")
        row += np.bincount(add_to, weights=gathered, minlength=row.size)
