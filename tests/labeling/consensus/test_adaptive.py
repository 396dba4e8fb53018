"""Reliability-weighted posteriors for binary items and the ask-or-stop decision."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus import (
    ACCEPT,
    CONTINUE,
    REJECT,
    REVIEW,
    allocate,
    binary_posterior,
    binary_posteriors,
)


@pytest.mark.parametrize(
    ("answers", "accuracies", "prior", "expected"),
    [
        ([1, 1, 0], [0.8, 0.8, 0.8], 0.5, 0.8),  # odds 4 * 4 / 4
        ([1], [0.8], 0.2, 0.5),  # odds 1/4 * 4
        ([], [], 0.3, 0.3),
        ([1], [0.2], 0.5, 0.2),  # a worker below chance is evidence against his answer
        ([1], [1.0], 0.5, 0.999),  # accuracy clipped to .999: odds 999
        ([1, 0], [0.9, 0.6], 0.5, 6 / 7),  # odds 9 / 1.5 = 6
    ],
)
def test_binary_posterior(answers, accuracies, prior, expected):
    assert binary_posterior(answers, accuracies, prior) == pytest.approx(expected, rel=1e-12)


def test_binary_posteriors_match_item_by_item():
    rng = np.random.default_rng(4)
    item = rng.integers(0, 30, 200)
    answers = rng.integers(0, 2, 200)
    accuracies = rng.uniform(0.4, 0.95, 200)
    prior = rng.uniform(0.1, 0.9, 31)

    together = binary_posteriors(item, answers, accuracies, 31, prior)

    expected = [
        binary_posterior(answers[item == i], accuracies[item == i], prior[i]) for i in range(31)
    ]
    np.testing.assert_allclose(together, expected, rtol=1e-12)
    assert together[30] == pytest.approx(prior[30], rel=1e-12)


def test_many_confident_votes_do_not_overflow():
    posteriors = binary_posteriors(
        np.zeros(2000, np.int64), np.ones(2000, np.int64), np.full(2000, 0.99), 1
    )

    np.testing.assert_array_equal(posteriors, [1.0])


@pytest.mark.parametrize(
    ("item", "answers", "accuracies", "prior", "message"),
    [
        ([0], [2], [0.8], 0.5, r"answers must be 1 \(yes\) or 0 \(no\)"),
        ([0, 1], [1], [0.8], 0.5, "item, answers and accuracies must be 1-D arrays of one length"),
        ([3], [1], [0.8], 0.5, "item holds 3, out of range for n_items=2"),
        ([0], [1], [0.8], 1.0, "prior must lie strictly between 0 and 1"),
    ],
)
def test_binary_posteriors_refuse_bad_input(item, answers, accuracies, prior, message):
    with pytest.raises(ValueError, match=message):
        binary_posteriors(item, answers, accuracies, 2, prior)


def test_allocate_decides_and_ranks_the_items_still_open():
    posterior = np.array([0.97, 0.02, 0.6, 0.9, 0.5, 0.94, 0.1])
    votes = np.array([3, 3, 2, 7, 7, 3, 6])

    codes, priority = allocate(posterior, votes)

    np.testing.assert_array_equal(
        codes, [ACCEPT, REJECT, CONTINUE, REVIEW, REVIEW, CONTINUE, CONTINUE]
    )
    np.testing.assert_array_equal(priority, [0, 0, 600, 0, 0, 940, 900])
    assert priority.dtype == np.int64


def test_allocate_refuses_a_cap_below_one():
    with pytest.raises(ValueError, match="cap must be at least 1, got 0"):
        allocate([0.5], [0], cap=0)
