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


@pytest.mark.parametrize(
    ("tie", "expected"), [("prior", [1, 0, -1]), ("lowest", [1, 0, -1]), ("none", [1, -1, -1])]
)
def test_tie_rules(tie, expected):
    np.testing.assert_array_equal(majority_vote(VOTES, tie=tie).labels, expected)


def test_prior_ties_go_to_the_class_with_most_votes_overall_then_the_lowest():
    # given four classes with 2, 3, 1 and 3 votes over all items; item 0 ties 0 against 3,
    # item 1 ties 1 against 3, item 2 ties 2 against 3
    votes = Votes.from_arrays(
        [0, 0, 1, 1, 2, 2, 3, 3, 3],
        [0, 1, 0, 1, 0, 1, 0, 1, 2],
        [0, 3, 1, 3, 3, 2, 1, 1, 0],
        n_classes=4,
    )
    np.testing.assert_array_equal(votes.counts().sum(axis=0), [2, 3, 1, 3])

    # then each tie goes to the most voted class, and 1 beats 3 (as many votes, lower index)
    np.testing.assert_array_equal(majority_vote(votes, tie="prior").labels, [3, 1, 3, 1])
    np.testing.assert_array_equal(majority_vote(votes).labels, [3, 1, 3, 1])
    np.testing.assert_array_equal(majority_vote(votes, tie="lowest").labels, [0, 1, 2, 1])


def test_prior_ties_use_the_weighted_totals():
    # given item 2 tied 1-1 between workers of weight 1; by head count class 0 leads overall
    # (3 votes to 2), by weight class 1 does (worker 2 weighs 5: 6 to 3)
    votes = Votes.from_arrays([0, 0, 1, 2, 2], [0, 1, 2, 0, 3], [0, 0, 1, 0, 1])

    weighted = majority_vote(votes, weights=[1.0, 1.0, 5.0, 1.0])

    np.testing.assert_array_equal(weighted.labels, [0, 1, 1])
    np.testing.assert_array_equal(majority_vote(votes).labels, [0, 1, 0])


def _even_crowd(seed: int) -> tuple[Votes, np.ndarray]:
    """2,000 yes/no items, 10 % of them class 0, four votes each from 40 workers right 65 to
    85 % of the time: about one item in five ends 2-2."""
    rng = np.random.default_rng(seed)
    truth = np.ones(2000, dtype=np.int64)
    truth[rng.permutation(2000)[:200]] = 0
    accuracy = rng.uniform(0.65, 0.85, 40)
    items = np.repeat(np.arange(2000), 4)
    workers = np.concatenate([rng.choice(40, 4, replace=False) for _ in range(2000)])
    right = rng.random(items.size) < accuracy[workers]
    labels = np.where(right, truth[items], 1 - truth[items])
    return Votes.from_arrays(items, workers, labels, n_items=2000, n_workers=40), truth


def test_on_an_even_vote_crowd_with_a_rare_class_ties_follow_the_prior():
    # given the crowd above: 418 of its 2,000 items tie
    votes, truth = _even_crowd(12)
    counts = votes.counts()
    assert int((counts[:, 0] == counts[:, 1]).sum()) == 418

    # when ties go to the class the crowd votes most, not to class 0
    by_prior = majority_vote(votes, tie="prior").labels
    lowest = majority_vote(votes, tie="lowest").labels

    # then 1,856 items (92.8 %) come out right against 1,520 (76.0 %)
    assert int((by_prior == truth).sum()) == 1856
    assert int((lowest == truth).sum()) == 1520


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
        ({"tie": "first"}, 'tie must be "prior", "lowest", "random" or "none", got \'first\''),
        ({"weights": [1.0, -1.0, 1.0]}, "weights must be finite and non-negative"),
        ({"weights": [1.0, np.nan, 1.0]}, "weights must be finite and non-negative"),
        ({"weights": [1.0, 1.0]}, r"weights must have shape \(3,\), got \(2,\)"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        majority_vote(VOTES, **kwargs)
