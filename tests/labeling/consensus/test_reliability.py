"""Worker reliability: gold accuracy, EM accuracy, spammer score, voting weights."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus import (
    Votes,
    em_accuracy,
    gold_accuracy,
    own_confusions,
    peer_count_changes,
    spammer_score,
    worker_weights,
)


def test_gold_accuracy_is_the_beta_posterior_mean():
    # (0 + 2) / (0 + 3), (3 + 2) / (4 + 3), (10 + 2) / (10 + 3)
    np.testing.assert_allclose(
        gold_accuracy([0, 3, 10], [0, 4, 10]), [2 / 3, 5 / 7, 12 / 13], rtol=1e-15
    )
    np.testing.assert_allclose(gold_accuracy(1, 2, alpha=1.0, beta=1.0), 0.5, rtol=1e-15)


@pytest.mark.parametrize(
    ("correct", "seen", "kwargs", "message"),
    [
        ([3], [2], {}, "correct must lie between 0 and seen"),
        ([-1], [2], {}, "correct must lie between 0 and seen"),
        ([1], [2], {"alpha": 0.0}, "alpha and beta must be positive, got 0.0 and 1.0"),
    ],
)
def test_gold_accuracy_refuses_impossible_counts(correct, seen, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gold_accuracy(correct, seen, **kwargs)


def test_em_accuracy_weighs_the_diagonal_by_the_priors():
    confusions = [[[1.0, 0.0], [0.0, 1.0]], [[0.9, 0.1], [0.2, 0.8]]]

    # .25 * .9 + .75 * .8 = .825
    np.testing.assert_allclose(em_accuracy(confusions, [0.25, 0.75]), [1.0, 0.825], rtol=1e-15)


def test_em_accuracy_refuses_priors_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"class_priors must have shape \(2,\), got \(3,\)"):
        em_accuracy(np.full((1, 2, 2), 0.5), [0.2, 0.3, 0.5])


@pytest.mark.parametrize("k", [2, 3, 5])
def test_perfect_worker_scores_one_and_equal_rows_score_zero(k):
    rng = np.random.default_rng(k)
    rows = rng.dirichlet(np.ones(k), size=3)
    confusions = np.stack([np.eye(k), *[np.tile(row, (k, 1)) for row in rows]])

    np.testing.assert_allclose(spammer_score(confusions), [1.0, 0.0, 0.0, 0.0], atol=1e-15)


@pytest.mark.parametrize(
    ("sensitivity", "specificity"), [(0.9, 0.8), (0.6, 0.7), (0.3, 0.2), (1.0, 0.5)]
)
def test_binary_spammer_score_is_youden_squared(sensitivity, specificity):
    confusions = [[[specificity, 1 - specificity], [1 - sensitivity, sensitivity]]]

    np.testing.assert_allclose(
        spammer_score(confusions), [(sensitivity + specificity - 1) ** 2], rtol=1e-12
    )


def test_three_class_worker_who_merges_two_classes():
    # pairs (0,1) and (0,2) at squared distance 2, (1,2) at 0: (2 + 2 + 0) / (3 * 2)
    confusions = [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]]

    np.testing.assert_allclose(spammer_score(confusions), [2 / 3], rtol=1e-15)


def test_spammer_score_refuses_non_square_matrices():
    with pytest.raises(ValueError, match=r"shape \(n_workers, K, K\) with K >= 2, got \(1, 2, 3\)"):
        spammer_score(np.ones((1, 2, 3)))


def test_worker_weights_are_clipped_one_coin_log_odds():
    weights = worker_weights([0.8, 0.5, 1.0, 0.2, 0.0, 1 / 3], n_classes=3)

    # log(2 * .8 / .2), log(2), log(2 * .999 / .001), then at or below chance (1/3): 0
    np.testing.assert_allclose(
        weights, [np.log(8.0), np.log(2.0), np.log(1998.0), 0.0, 0.0, 0.0], atol=1e-12
    )
    np.testing.assert_allclose(worker_weights([0.5, 0.75], n_classes=2), [0.0, np.log(3.0)])


def test_worker_weights_need_two_classes():
    with pytest.raises(ValueError, match="n_classes must be at least 2, got 1"):
        worker_weights([0.8], n_classes=1)


def test_own_confusions_count_each_workers_votes_by_the_items_posteriors():
    # items 0 and 1 are surely yes, item 2 is "no" with probability 0.75; worker 0 says yes to
    # everything, worker 1 answers 0 and 2 right, worker 2 cast no vote
    posteriors = np.array([[0.0, 1.0], [0.0, 1.0], [0.75, 0.25]])
    votes = Votes.from_arrays(
        [0, 1, 2, 0, 2], [0, 0, 0, 1, 1], [1, 1, 1, 1, 0], n_items=3, n_workers=3, n_classes=2
    )

    own = own_confusions(votes, posteriors)

    # worker 0: the "no" row holds only item 2's 0.75, all of it answered yes
    np.testing.assert_allclose(own[0], [[0.0, 1.0], [0.0, 1.0]])
    # worker 1: "no" row 0.75 answered no; "yes" row 1.0 yes (item 0) + 0.25 no (item 2)
    np.testing.assert_allclose(own[1], [[1.0, 0.0], [0.2, 0.8]])
    np.testing.assert_allclose(own[2], [[0.5, 0.5], [0.5, 0.5]])
    assert spammer_score(own)[0] == 0.0


def test_peer_count_changes_replace_an_earlier_credit_rather_than_add_to_it():
    # given three votes by workers 0, 1, 1: the first credited before at P(yes) 0.9 and now at
    # 0.99 (a reopened item decided again), the second new at 0.2, the third credited at 0.95
    # before and not now (its item's other votes are no longer sure)
    nan = float("nan")
    changes = peer_count_changes([0, 1, 1], [0, 1, 0], [0.9, nan, 0.95], [0.99, 0.2, nan], 2)

    # then worker 0 moves by (0.99 - 0.9) on yes items and (0.01 - 0.1) on no items, his no
    # on the no side; worker 1 gains the new vote's (0.2, 0.2, 0.8, 0) and loses (0.95, 0,
    # 0.05, 0.05)
    np.testing.assert_allclose(
        changes,
        [[0.09, 0.0, -0.09, -0.09], [0.2 - 0.95, 0.2, 0.8 - 0.05, -0.05]],
        atol=1e-15,
    )
    # and a credit that does not move changes nothing
    np.testing.assert_array_equal(peer_count_changes([0], [1], [0.9], [0.9], 1), [[0.0] * 4])
