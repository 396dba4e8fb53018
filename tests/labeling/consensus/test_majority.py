"""Majority vote: counts, ties, weights, items without votes."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus import Votes, majority_vote

# Item 0: 2 votes for class 1 and one for 0. Item 1: one vote each for 0 and 2 (a tie).
# Item 2: no votes.
VOTES = Votes.from_arrays([0, 0, 0, 1, 1], [0, 1, 2, 0, 1], [1, 1, 0, 2, 0], n_items=3)


def test_majority_takes_the_most_voted_class_and_vote_shares():
    result = majority_vote(VOTES)

    np.testing.assert_array_equal(result.labels, [1, 0, -1])
    np.testing.assert_allclose(
        result.posteriors,
        [[1 / 3, 2 / 3, 0.0], [0.5, 0.0, 0.5], [1 / 3, 1 / 3, 1 / 3]],
        rtol=0,
        atol=1e-15,
    )
    assert result.confusions is None
    assert result.class_priors is None
    assert result.iterations == 0
    assert result.log_likelihood is None


@pytest.mark.parametrize(("tie", "expected"), [("lowest", [1, 0, -1]), ("none", [1, -1, -1])])
def test_tie_rules(tie, expected):
    np.testing.assert_array_equal(majority_vote(VOTES, tie=tie).labels, expected)


def test_random_ties_pick_uniformly_among_the_tied_classes_only():
    # given 400 items, each with one vote for class 1 and one for class 3 of four classes
    items = np.repeat(np.arange(400), 2)
    votes = Votes.from_arrays(items, np.tile([0, 1], 400), np.tile([1, 3], 400), n_classes=4)

    labels = majority_vote(votes, tie="random", rng=np.random.default_rng(7)).labels

    assert set(labels.tolist()) == {1, 3}
    assert 170 <= int((labels == 1).sum()) <= 230
    np.testing.assert_array_equal(
        labels, majority_vote(votes, tie="random", rng=np.random.default_rng(7)).labels
    )
    np.testing.assert_array_equal(
        majority_vote(votes, tie="random").labels, majority_vote(votes, tie="random").labels
    )


def test_random_tie_rule_leaves_clear_winners_alone():
    result = majority_vote(VOTES, tie="random", rng=np.random.default_rng(1))

    assert result.labels[0] == 1
    assert result.labels[1] in (0, 2)
    assert result.labels[2] == -1


def test_a_single_worker_decides_every_item_he_voted_on():
    votes = Votes.from_arrays([0, 1, 2], [0, 0, 0], [2, 0, 1], n_classes=3)

    result = majority_vote(votes)

    np.testing.assert_array_equal(result.labels, [2, 0, 1])
    np.testing.assert_array_equal(result.posteriors, np.eye(3)[[2, 0, 1]])


def test_weights_can_outvote_a_head_count():
    # workers 0 and 1 say 0, worker 2 (weight 3) says 1: 2 against 3
    votes = Votes.from_arrays([0, 0, 0], [0, 1, 2], [0, 0, 1])

    result = majority_vote(votes, weights=[1.0, 1.0, 3.0])

    np.testing.assert_array_equal(result.labels, [1])
    np.testing.assert_allclose(result.posteriors, [[0.4, 0.6]], rtol=0, atol=1e-15)


def test_float_weight_sums_that_agree_tie():
    # 0.1 + 0.2 != 0.3 in floating point, but the two classes carry the same weight
    votes = Votes.from_arrays([0, 0, 0], [0, 1, 2], [0, 0, 1])

    result = majority_vote(votes, tie="none", weights=[0.1, 0.2, 0.3])

    np.testing.assert_array_equal(result.labels, [-1])


def test_an_item_whose_voters_all_weigh_zero_is_undecided():
    votes = Votes.from_arrays([0, 1], [0, 1], [1, 0])

    result = majority_vote(votes, weights=[0.0, 1.0])

    np.testing.assert_array_equal(result.labels, [-1, 0])
    np.testing.assert_array_equal(result.posteriors, [[0.5, 0.5], [1.0, 0.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tie": "first"}, 'tie must be "lowest", "random" or "none", got \'first\''),
        ({"weights": [1.0, -1.0, 1.0]}, "weights must be finite and non-negative"),
        ({"weights": [1.0, np.nan, 1.0]}, "weights must be finite and non-negative"),
        ({"weights": [1.0, 1.0]}, r"weights must have shape \(3,\), got \(2,\)"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        majority_vote(VOTES, **kwargs)
