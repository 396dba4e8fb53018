"""Votes: conversion, validation and counting, no database."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus import Votes


def test_from_arrays_converts_and_infers_sizes():
    votes = Votes.from_arrays([0, 0, 2], [1, 3, 1], [1, 0, 2])

    assert votes.item.dtype == votes.worker.dtype == votes.label.dtype == np.int64
    assert (votes.n_items, votes.n_workers, votes.n_classes, votes.n_votes) == (3, 4, 3, 3)


def test_default_n_classes_is_at_least_two():
    votes = Votes.from_arrays([0, 1], [0, 0], [0, 0])

    assert votes.n_classes == 2


def test_no_votes_give_empty_sizes():
    votes = Votes.from_arrays([], [], [])

    assert (votes.n_items, votes.n_workers, votes.n_classes, votes.n_votes) == (0, 0, 2, 0)
    assert votes.counts().shape == (0, 2)


def test_counts_per_item_and_class_include_items_without_votes():
    votes = Votes.from_arrays([0, 0, 0, 2], [0, 1, 2, 0], [1, 1, 0, 2], n_items=4)

    np.testing.assert_array_equal(
        votes.counts(), [[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    )


def test_weighted_counts_add_each_workers_weight():
    votes = Votes.from_arrays([0, 0, 0], [0, 1, 2], [0, 1, 1])

    np.testing.assert_allclose(votes.counts([0.5, 1.0, 2.0]), [[0.5, 3.0]], rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("item", "worker", "label", "sizes", "message"),
    [
        ([0, 1], [0], [0, 1], {}, "one length, got 2, 1 and 2"),
        ([[0, 1]], [0, 1], [0, 1], {}, r"item must be 1-D, got shape \(1, 2\)"),
        ([0, -1], [0, 1], [0, 1], {}, "item must be non-negative, got -1"),
        ([0, 1], [0, 1], [0.5, 1.0], {}, "label must hold integers, got dtype float64"),
        ([0, 3], [0, 1], [0, 1], {"n_items": 3}, "item holds 3, out of range for n_items=3"),
        ([0, 1], [0, 4], [0, 1], {"n_workers": 2}, "worker holds 4, out of range for n_workers"),
        ([0, 1], [0, 1], [0, 2], {"n_classes": 2}, "label holds 2, out of range for n_classes"),
        ([0, 1], [0, 1], [0, 0], {"n_classes": 1}, "n_classes must be at least 2, got 1"),
        ([0, 1], [0, 1], [0, 1], {"n_items": -1}, "n_items must be non-negative, got -1"),
    ],
)
def test_malformed_votes_are_refused(item, worker, label, sizes, message):
    with pytest.raises(ValueError, match=message):
        Votes.from_arrays(item, worker, label, **sizes)


def test_constructor_refuses_unconverted_arrays():
    with pytest.raises(ValueError, match=r"item must be a 1-D int64 array; use Votes\.from_arrays"):
        Votes(
            item=np.array([0], dtype=np.int32),
            worker=np.array([0]),
            label=np.array([0]),
            n_items=1,
            n_workers=1,
            n_classes=2,
        )


def test_counts_refuse_weights_of_the_wrong_length():
    votes = Votes.from_arrays([0, 0], [0, 1], [0, 1])

    with pytest.raises(ValueError, match=r"weights must have shape \(2,\), got \(3,\)"):
        votes.counts([1.0, 1.0, 1.0])


def test_gold_arrays_are_checked_against_the_votes():
    votes = Votes.from_arrays([0, 1, 2], [0, 0, 0], [0, 1, 1])

    items, labels = votes.gold_arrays(([2, 0], [1, 0]))

    np.testing.assert_array_equal(items, [2, 0])
    np.testing.assert_array_equal(labels, [1, 0])
    assert votes.gold_arrays(None)[0].shape == (0,)


@pytest.mark.parametrize(
    ("gold", "message"),
    [
        (([0, 1], [0]), "gold items and labels must have one length, got 2 and 1"),
        (([3], [0]), "gold items holds 3, out of range for n_items=3"),
        (([0], [2]), "gold labels holds 2, out of range for n_classes=2"),
        (([1, 1], [0, 0]), "gold items must not repeat"),
        (([0], [-1]), "gold labels must be non-negative, got -1"),
    ],
)
def test_malformed_gold_is_refused(gold, message):
    votes = Votes.from_arrays([0, 1, 2], [0, 0, 0], [0, 1, 1])

    with pytest.raises(ValueError, match=message):
        votes.gold_arrays(gold)
