"""Reliability-weighted posteriors for binary items and the ask-or-stop decision."""

from __future__ import annotations

import itertools

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
    cautious_posteriors,
    decided_prior,
    live_coins,
    newcomer_accuracy,
    peer_counts,
    vote_accuracies,
    vote_agreement,
    worker_weights,
)


@pytest.mark.parametrize(
    ("answers", "accuracies", "prior", "expected"),
    [
        ([1, 1, 0], [0.8, 0.8, 0.8], 0.5, 0.8),  # odds 4 * 4 / 4
        ([1], [0.8], 0.2, 0.5),  # odds 1/4 * 4
        ([], [], 0.3, 0.3),
        ([1], [0.2], 0.5, 0.5),  # a worker below chance weighs nothing, as in worker_weights
        ([1, 0], [0.9, 0.1], 0.5, 0.9),  # ... not even read backwards
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


def test_below_chance_rule_matches_worker_weights():
    accuracies = np.array([0.1, 0.3, 0.5, 0.7, 0.9])

    posteriors = binary_posteriors(np.arange(5), np.ones(5, np.int64), accuracies, 5)

    log_odds = np.log(posteriors / (1 - posteriors))
    np.testing.assert_allclose(log_odds, worker_weights(accuracies, 2), atol=1e-12)


def test_vote_agreement_leaves_each_vote_out():
    # item 0: yes 0.8, yes 0.8, no 0.8; item 1: one vote, so only the prior is left
    agreement = vote_agreement([0, 0, 0, 1], [1, 1, 0, 1], [0.8, 0.8, 0.8, 0.9], 2, 0.3)

    # without one yes: odds 3/7 * 4 / 4; without the no: 3/7 * 16
    np.testing.assert_allclose(agreement, [0.3, 0.3, 48 / 55, 0.3], rtol=1e-12)


@pytest.mark.parametrize(
    ("answer", "sensitivity", "specificity", "expected"),
    [
        (1, 0.8, 0.8, 0.8),  # one coin: the accuracy itself
        (1, 0.9, 0.6, 0.9 / 1.3),  # yes: odds s / (1 - c) = 9 / 4
        (0, 0.9, 0.6, 0.6 / 0.7),  # no: odds c / (1 - s) = 6
        (1, 1.0, 0.0, 0.5),  # a yes-clicker's yes says nothing (clipped coins: 0.999 / 0.999)
    ],
)
def test_vote_accuracies_carry_the_two_coin_odds(answer, sensitivity, specificity, expected):
    got = vote_accuracies([answer], [sensitivity], [specificity])

    assert got[0] == pytest.approx(expected, rel=1e-12)


def test_live_coins_catch_a_worker_who_answers_controls_right_and_the_rest_wrong():
    # 20 of 20 controls right (the prior: mean 22/23, worth 4 votes); on 20 decided items the
    # crowd said the opposite of him; a newcomer's prior is Beta(2, 1) itself (3 votes)
    sens, spec = live_coins([20, 0], [20, 0], [[10, 0, 10, 0], [0, 0, 0, 0]])

    np.testing.assert_allclose(sens, [4 * 22 / 23 / 14, 2 / 3], rtol=1e-12)
    np.testing.assert_allclose(spec, [4 * 22 / 23 / 14, 2 / 3], rtol=1e-12)


def test_live_coins_learn_each_class_apart():
    # a yes-clicker: on 6 yes items he said yes 6 times, on 4 no items never no
    sens, spec = live_coins([0], [0], [[6, 6, 4, 0]], strength=3.0)

    np.testing.assert_allclose([sens[0], spec[0]], [8 / 9, 2 / 7], rtol=1e-12)


@pytest.mark.parametrize(
    ("correct", "seen", "expected"),
    [
        (0, 0, 2 / 3),  # nothing known: the Beta(2, 1) mean
        (90, 100, 2 / 3),  # a crowd right 90 % of the time: never above 2/3
        (60, 100, 62 / 103),  # a weak crowd: (60 + 2) / (100 + 3)
    ],
)
def test_a_newcomer_is_taken_as_right_as_the_crowd_where_the_crowd_is_weaker(
    correct, seen, expected
):
    assert newcomer_accuracy(correct, seen) == pytest.approx(expected, rel=1e-12)


def test_live_coins_move_the_prior_mean_to_the_newcomer_figure_keeping_its_weight():
    # prior Beta(3 x 0.6, 3 x 0.4); a worker with 2 of 2 controls right has weight 4 (capped)
    # at mean (2 + 1.8) / (2 + 3) = 0.76, then 3 of 4 yes items said yes, 1 of 1 no said no
    sens, spec = live_coins([0, 2], [0, 2], [[0, 0, 0, 0], [4, 3, 1, 1]], newcomer=0.6)

    np.testing.assert_allclose(sens, [0.6, (4 * 0.76 + 3) / 8], rtol=1e-12)
    np.testing.assert_allclose(spec, [0.6, (4 * 0.76 + 1) / 5], rtol=1e-12)
    with pytest.raises(ValueError, match="newcomer must lie strictly between 0 and 1"):
        live_coins([0], [0], [[0, 0, 0, 0]], newcomer=1.0)


def test_peer_counts_weigh_each_vote_by_what_the_others_said():
    counts = peer_counts([0, 0, 1], [1, 0, 1], [0.9, 0.2, 0.5], 2)

    np.testing.assert_allclose(counts, [[1.1, 0.9, 0.9, 0.8], [0.5, 0.5, 0.5, 0.0]], rtol=1e-12)


def test_live_coins_refuse_bad_counts():
    with pytest.raises(ValueError, match="gold_correct at most gold_seen"):
        live_coins([4], [3], [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="must be non-negative"):
        live_coins([0], [0], [[0, 0, -1e-3, 0]])


def test_live_coins_read_a_count_a_rounding_error_below_zero_as_zero():
    # a credit of 0.3 replaced by 0.2 and then taken back as 0.1 leaves -2.8e-17 behind
    sens, spec = live_coins([0], [0], [[0.0, 0.0, 0.3 - 0.2 - 0.1, 0.0]])

    np.testing.assert_allclose([sens[0], spec[0]], [2 / 3, 2 / 3], rtol=1e-12)


def _bins(posterior, truth, edges):
    """Per bin of max(P, 1 - P): (items, share right)."""
    confidence = np.maximum(posterior, 1 - posterior)
    right = (posterior >= 0.5) == (truth == 1)
    rows = []
    for low, high in itertools.pairwise(edges):
        inside = (confidence >= low) & (confidence < high)
        rows.append((int(inside.sum()), round(float(right[inside].mean()), 4)))
    return rows


def test_posteriors_with_the_true_two_coins_are_calibrated():
    # given 20,000 items (30 % yes) with 5 votes each from workers whose sensitivity and
    # specificity differ (yes-biased ones among them), weighted by their true coins
    rng = np.random.default_rng(2026)
    n_items, n_workers = 20_000, 200
    sens = rng.uniform(0.6, 0.95, n_workers)
    spec = np.where(np.arange(n_workers) < 50, sens - 0.3, sens)  # a quarter yes-biased
    truth = (rng.random(n_items) < 0.3).astype(np.int64)
    item = np.repeat(np.arange(n_items), 5)
    worker = rng.integers(0, n_workers, item.size)
    p_yes = np.where(truth[item] == 1, sens[worker], 1 - spec[worker])
    answers = (rng.random(item.size) < p_yes).astype(np.int64)

    posterior = binary_posteriors(
        item, answers, vote_accuracies(answers, sens[worker], spec[worker]), n_items, 0.3
    )

    # then items at P in each bin are right about that often (every bin at or above its floor)
    assert _bins(posterior, truth, [0.9, 0.95, 0.99, 0.995, 1.0001]) == [
        (2028, 0.9295),
        (4816, 0.9805),
        (1904, 0.9921),
        (6317, 0.9986),
    ]


def test_one_coin_weights_overstate_a_yes_biased_crowd():
    # given the same kind of crowd, all yes-biased, but weighted by one accuracy per worker
    # (the mean of his two coins): his yes is trusted more than it deserves
    rng = np.random.default_rng(7)
    n_items, n_workers = 20_000, 100
    sens = rng.uniform(0.85, 0.95, n_workers)
    spec = sens - 0.3
    truth = (rng.random(n_items) < 0.5).astype(np.int64)
    item = np.repeat(np.arange(n_items), 5)
    worker = rng.integers(0, n_workers, item.size)
    p_yes = np.where(truth[item] == 1, sens[worker], 1 - spec[worker])
    answers = (rng.random(item.size) < p_yes).astype(np.int64)
    one_coin = (sens + spec) / 2

    two = binary_posteriors(
        item, answers, vote_accuracies(answers, sens[worker], spec[worker]), n_items
    )
    one = binary_posteriors(item, answers, one_coin[worker], n_items)

    # then items accepted at P(yes) >= 0.95 are right as often as the two coins say (98.3 %
    # against a mean P of 98.2 %), while one coin claims 98.5 % and is right 92.1 % of the time
    for posterior, accepted, right, claimed in (
        (two, 5967, 0.9831, 0.9825),
        (one, 9485, 0.9208, 0.985),
    ):
        yes = posterior >= 0.95
        assert int(yes.sum()) == accepted
        assert round(float(truth[yes].mean()), 4) == right
        assert round(float(posterior[yes].mean()), 4) == claimed


def test_decided_prior_is_the_beta_one_one_mean_of_the_share_of_yes():
    np.testing.assert_allclose(decided_prior([0, 6, 99], [0, 98, 99]), [1 / 2, 7 / 100, 100 / 101])
    with pytest.raises(ValueError, match="between 0 and decided"):
        decided_prior(3, 2)


@pytest.mark.parametrize(
    ("posterior", "learnt", "expected"),
    [
        # leaning yes at odds 199 under 1/2, with a category 7 % yes (odds 7/93): odds 14.98
        (199 / 200, 0.07, 199 * 7 / (199 * 7 + 93)),
        # leaning no under 1/2, the same category: the prior 1/2 is the harder one, unchanged
        (1 / 200, 0.07, 1 / 200),
        # a category 90 % yes makes a no harder: odds of no 199 / 9
        (1 / 200, 0.9, 9 / (9 + 199)),
        # leaning yes at odds 3 under 1/2, a 10 % category turns it to odds 1/3 (yes judged
        # under 0.1) while the no side, judged under 1/2, still leans yes: no side, 1/2
        (3 / 4, 0.1, 0.5),
    ],
)
def test_cautious_posteriors_take_each_side_under_the_prior_that_asks_more(
    posterior, learnt, expected
):
    got = cautious_posteriors([posterior], 0.5, [learnt])

    assert got[0] == pytest.approx(expected, rel=1e-9)
