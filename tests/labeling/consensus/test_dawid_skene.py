"""Dawid-Skene EM, full and one-coin: exact single rounds, gold, warm starts, a simulated crowd."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labeling.consensus import (
    Votes,
    dawid_skene,
    majority_vote,
    one_coin_dawid_skene,
    spammer_score,
)
from labeling.consensus.dawid_skene import _log_gamma

# K = 3. Worker 0 votes 0, 1, 2 on items 0, 1, 2; worker 1 votes 0, 2 on items 0, 1.
THREE_CLASSES = Votes.from_arrays([0, 0, 1, 1, 2], [0, 1, 0, 1, 0], [0, 0, 1, 2, 2], n_classes=3)


def test_one_round_on_three_classes_matches_the_hand_computation():
    # start (vote shares): T = [[1, 0, 0], [0, .5, .5], [0, 0, 1]]
    # priors = (T.sum(0) + 1) / (3 + 3) = [2, 1.5, 2.5] / 6 = [1/3, 1/4, 5/12]
    # expected counts C, worker 0: truth 0 [1, 0, 0], truth 1 [0, .5, 0], truth 2 [0, .5, 1]
    #                    worker 1: truth 0 [1, 0, 0], truth 1 [0, 0, .5], truth 2 [0, 0, .5]
    # pooled rows (C summed + 1/3) / (row total + 1): [7, 1, 1] / 9, [2, 5, 5] / 12,
    # [2, 5, 11] / 18; each row then gets S = 3 * (1 + 1) = 6 pseudo-votes along them:
    # worker 0, truth 0: ([1, 0, 0] + [14/3, 2/3, 2/3]) / 7 = [17, 2, 2] / 21
    #           truth 1: ([0, .5, 0] + [1, 2.5, 2.5]) / 6.5 = [2, 6, 5] / 13
    #           truth 2: ([0, .5, 1] + [2/3, 5/3, 11/3]) / 7.5 = [4, 13, 28] / 45
    # worker 1, truth 0: [17, 2, 2] / 21; truth 1: [1, 2.5, 3] / 6.5 = [2, 5, 6] / 13
    #           truth 2: ([0, 0, .5] + [2/3, 5/3, 11/3]) / 6.5 = [4, 10, 25] / 39
    # (the pooled prior alone; the mixture with the free prior is checked against the
    # reference EM below)
    result = dawid_skene(THREE_CLASSES, free_prior=False, max_iter=1)

    priors = np.array([1 / 3, 1 / 4, 5 / 12])
    worker0 = np.array(
        [[17 / 21, 2 / 21, 2 / 21], [2 / 13, 6 / 13, 5 / 13], [4 / 45, 13 / 45, 28 / 45]]
    )
    worker1 = np.array(
        [[17 / 21, 2 / 21, 2 / 21], [2 / 13, 5 / 13, 6 / 13], [4 / 39, 10 / 39, 25 / 39]]
    )
    np.testing.assert_allclose(result.class_priors, priors, rtol=1e-14)
    np.testing.assert_allclose(result.confusions, [worker0, worker1], rtol=1e-14)
    # E-step, prior * product of the voters' confusion entries (columns: given labels):
    # item 0 (0, 0), item 1 (1, 2), item 2 (2)
    joint = np.array(
        [
            priors * worker0[:, 0] * worker1[:, 0],
            priors * worker0[:, 1] * worker1[:, 2],
            priors * worker0[:, 2],
        ]
    )
    np.testing.assert_allclose(result.posteriors, joint / joint.sum(axis=1, keepdims=True), 1e-14)
    np.testing.assert_array_equal(result.labels, joint.argmax(axis=1))
    np.testing.assert_array_equal(result.labels, [0, 2, 2])
    assert result.iterations == 1
    assert result.log_likelihood == pytest.approx(np.log(joint.sum(axis=1)).sum(), rel=1e-14)


def test_one_coin_round_on_three_classes_matches_the_hand_computation():
    # worker 0 agrees with T on item 0 (1), item 1 (.5), item 2 (1): 2.5 of 3 votes
    # worker 1 agrees on item 0 (1) and item 1 (.5): 1.5 of 2
    # pooled accuracy (4 + 1/3) / (5 + 1) = 13/18, worth S = 2 * (1 + 1) = 4 pseudo-votes:
    # worker 0: (2.5 + 4 * 13/18) / (3 + 4) = 97/126; worker 1: (1.5 + 4 * 13/18) / 6 = 79/108
    result = one_coin_dawid_skene(THREE_CLASSES, max_iter=1)

    p0, p1 = 97 / 126, 79 / 108
    np.testing.assert_allclose(result.class_priors, [1 / 3, 1 / 4, 5 / 12], rtol=1e-14)
    for confusion, p in zip(result.confusions, (p0, p1), strict=True):
        expected = np.full((3, 3), (1 - p) / 2) + (p - (1 - p) / 2) * np.eye(3)
        np.testing.assert_allclose(confusion, expected, rtol=1e-14)
    # item 0 (0, 0): 1/3 * p0 * p1, 1/4 * q0 * q1, 5/12 * q0 * q1 with q = (1 - p) / 2
    q0, q1 = (1 - p0) / 2, (1 - p1) / 2
    joint0 = np.array([1 / 3 * p0 * p1, 1 / 4 * q0 * q1, 5 / 12 * q0 * q1])
    np.testing.assert_allclose(result.posteriors[0], joint0 / joint0.sum(), rtol=1e-14)
    np.testing.assert_array_equal(result.labels, [0, 2, 2])


def test_rows_of_every_output_are_distributions():
    for result in (dawid_skene(THREE_CLASSES), one_coin_dawid_skene(THREE_CLASSES)):
        np.testing.assert_allclose(result.posteriors.sum(axis=1), 1.0, rtol=1e-12)
        np.testing.assert_allclose(result.confusions.sum(axis=2), 1.0, rtol=1e-12)
        assert result.class_priors.sum() == pytest.approx(1.0, rel=1e-12)


def test_a_worker_who_only_answered_gold_gets_his_gold_record_shrunk_towards_the_crowd():
    # workers 0-2 agree on items 0-3; worker 3 answered only gold items 4 (truth 0, said 0)
    # and 5 (truth 1, said 0)
    votes = Votes.from_arrays(
        [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5],
        [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3],
        [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0],
    )
    gold = ([4, 5], [0, 1])

    first = dawid_skene(votes, gold=gold, free_prior=False, max_iter=1)
    result = dawid_skene(votes, gold=gold)

    # pooled counts: truth 0 [7, 0], truth 1 [1, 6]; rows (+ 1/2) / (total + 1): [15, 1] / 16
    # and [3, 13] / 16, worth S = 2 * (1 + 1) = 4 pseudo-votes; worker 3 said 0 once per row:
    # ([1, 0] + [15/4, 1/4]) / 5 = [19, 1] / 20 and ([1, 0] + [3/4, 13/4]) / 5 = [7, 13] / 20
    np.testing.assert_allclose(first.confusions[3], [[19 / 20, 1 / 20], [7 / 20, 13 / 20]], 1e-14)
    np.testing.assert_array_equal(result.posteriors[4:], [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(result.labels, [0, 1, 0, 1, 0, 1])
    one_coin = one_coin_dawid_skene(votes, gold=gold, max_iter=1)
    # 13 right of 14 votes: pooled (13 + 1/2) / (14 + 1) = .9; worker 3, one right of two:
    # (1 + 4 * .9) / (2 + 4) = 23/30
    np.testing.assert_allclose(
        one_coin.confusions[3], [[23 / 30, 7 / 30], [7 / 30, 23 / 30]], rtol=1e-14
    )


def test_gold_clamping_changes_the_outcome():
    # workers 0 and 1 always say x, worker 2 always says 1 - x; gold on items 0-5 sides with
    # worker 2, so on items 6-8 EM must trust him over the other two
    x = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0])
    votes = Votes.from_arrays(
        np.tile(np.arange(9), 3), np.repeat([0, 1, 2], 9), np.concatenate([x, x, 1 - x])
    )

    without = dawid_skene(votes)
    with_gold = dawid_skene(votes, gold=(np.arange(6), 1 - x[:6]))

    np.testing.assert_array_equal(majority_vote(votes).labels, x)
    np.testing.assert_array_equal(without.labels, x)
    np.testing.assert_array_equal(with_gold.labels, 1 - x)
    np.testing.assert_array_equal(with_gold.posteriors[:6], np.eye(2)[1 - x[:6]])


def test_an_item_without_votes_is_undecided_with_the_class_prior_as_posterior():
    votes = Votes.from_arrays([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 0, 0], n_items=3)

    result = dawid_skene(votes)

    assert result.labels[2] == -1
    np.testing.assert_allclose(result.posteriors[2], result.class_priors, rtol=1e-14)


def test_a_gold_item_without_votes_keeps_its_gold_label():
    votes = Votes.from_arrays(
        np.tile(np.arange(4), 3), np.repeat([0, 1, 2], 4), [0, 1] * 6, n_items=5
    )

    result = dawid_skene(votes, gold=([4], [1]))

    np.testing.assert_array_equal(result.labels, [0, 1, 0, 1, 1])
    np.testing.assert_array_equal(result.posteriors[4], [0.0, 1.0])


def test_items_voted_only_by_a_constant_spammer_stay_near_the_prior():
    # workers 0-2 label items 0-19 correctly; worker 3 says 0 to everything, items 20-21 too.
    # His 22 zeros are likelier under the free prior than under the pooled one (which says 0
    # on truth 1 about a third of the time), so he is half released towards his own rows:
    # [.998, .002] and [.887, .113], his 0 weaker evidence (likelihood ratio 1.125) than
    # under the pooled prior alone, rows [.997, .003] and [.804, .196], ratio about 1.24.
    truth = np.arange(20) % 2
    votes = Votes.from_arrays(
        np.concatenate([np.tile(np.arange(20), 3), np.arange(22)]),
        np.concatenate([np.repeat([0, 1, 2], 20), np.full(22, 3)]),
        np.concatenate([np.tile(truth, 3), np.zeros(22, dtype=np.int64)]),
    )

    result = dawid_skene(votes)
    pooled_only = dawid_skene(votes, free_prior=False)

    np.testing.assert_array_equal(majority_vote(votes).posteriors[20:], [[1.0, 0.0], [1.0, 0.0]])
    for fit, low, high in ((result, 1.12, 1.13), (pooled_only, 1.2, 1.3)):
        odds = fit.confusions[3, 0, 0] / fit.confusions[3, 1, 0]
        expected = fit.class_priors * [odds, 1.0]
        np.testing.assert_allclose(fit.posteriors[20:], [expected / expected.sum()] * 2, 1e-5)
        assert low < odds < high
        np.testing.assert_array_equal(fit.labels[:20], truth)
    assert 0.531 < result.posteriors[20, 0] < 0.533
    assert 0.55 < pooled_only.posteriors[20, 0] < 0.57
    scores = spammer_score(result.confusions)
    assert scores[3] < 0.05
    assert scores[:3].min() > 0.8


def test_a_lone_worker_needs_a_diagonal_prior_to_count():
    # without agreement or gold, a flat prior cannot tell a lone worker from noise: EM drifts
    # to the fixed point where his answers say nothing; a diagonal prior keeps him informative
    votes = Votes.from_arrays([0, 1, 2], [0, 0, 0], [0, 1, 1])

    flat = dawid_skene(votes)
    leaning = dawid_skene(votes, diagonal_prior=1.0)

    np.testing.assert_allclose(flat.posteriors, [flat.class_priors] * 3, atol=1e-5)
    np.testing.assert_array_equal(leaning.labels, [0, 1, 1])
    assert leaning.confusions[0, 0, 0] > 0.5
    assert leaning.confusions[0, 1, 1] > 0.5


def _simulated_crowd(seed: int) -> tuple[Votes, np.ndarray, np.ndarray, np.ndarray]:
    """2,000 items, 3 classes, 5 votes each from 50 workers: workers 0-39 right with
    probability 0.8 (errors spread evenly), workers 40-49 answer uniformly at random."""
    rng = np.random.default_rng(seed)
    n_items, n_classes, n_workers, per_item = 2000, 3, 50, 5
    truth = rng.integers(0, n_classes, n_items)
    spammer = np.arange(n_workers) >= 40
    worker = np.argsort(rng.random((n_items, n_workers)), axis=1)[:, :per_item].ravel()
    item = np.repeat(np.arange(n_items), per_item)
    right = rng.random(item.size) < 0.8
    wrong = (truth[item] + rng.integers(1, n_classes, item.size)) % n_classes
    honest = np.where(right, truth[item], wrong)
    label = np.where(spammer[worker], rng.integers(0, n_classes, item.size), honest)
    true_confusions = np.where(np.eye(n_classes, dtype=bool), 0.8, 0.1)[None].repeat(50, 0)
    true_confusions[spammer] = 1 / n_classes
    votes = Votes.from_arrays(item, worker, label, n_classes=n_classes)
    return votes, truth, spammer, true_confusions


def test_simulated_crowd_dawid_skene_beats_majority_and_finds_the_spammers():
    votes, truth, spammer, true_confusions = _simulated_crowd(seed=0)
    # a Bayes oracle that knows every worker's true matrix (votes come 5 per item, in order)
    log_likelihood = np.log(true_confusions[votes.worker, :, votes.label]).reshape(-1, 5, 3)
    oracle = (log_likelihood.sum(axis=1).argmax(axis=1) == truth).mean()

    majority = (majority_vote(votes).labels == truth).mean()
    result = dawid_skene(votes)
    em = (result.labels == truth).mean()
    one_coin = (one_coin_dawid_skene(votes).labels == truth).mean()

    # observed with seed 0: majority 0.8985, Dawid-Skene 0.9385, one-coin 0.938, oracle 0.94
    assert majority >= 0.89
    assert em >= majority + 0.03
    assert em >= 0.935
    assert em >= oracle - 0.005
    assert one_coin >= 0.935
    scores = spammer_score(result.confusions)
    assert scores[spammer].max() < scores[~spammer].min()


def test_warm_start_reaches_the_same_answer_in_fewer_rounds():
    votes, _, _, _ = _simulated_crowd(seed=1)
    cold = dawid_skene(votes)

    warm = dawid_skene(votes, init_confusions=cold.confusions, init_priors=cold.class_priors)
    from_posteriors = dawid_skene(votes, init=cold.posteriors)

    for rerun in (warm, from_posteriors):
        assert rerun.iterations < cold.iterations
        assert rerun.iterations <= 2
        np.testing.assert_array_equal(rerun.labels, cold.labels)
        np.testing.assert_allclose(rerun.posteriors, cold.posteriors, atol=1e-5)


def test_max_iter_caps_the_rounds():
    votes, _, _, _ = _simulated_crowd(seed=2)

    assert dawid_skene(votes, max_iter=3).iterations == 3
    assert dawid_skene(votes, tol=1.0).iterations == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"smoothing": -1.0}, "smoothing must be non-negative, got -1.0"),
        ({"diagonal_prior": -0.5}, "diagonal_prior must be non-negative, got -0.5"),
        ({"max_iter": 0}, "max_iter must be at least 1, got 0"),
        ({"tol": -1e-3}, "tol must be non-negative, got -0.001"),
        ({"init": np.ones((3, 2)) / 2}, r"init must have shape \(3, 3\), got \(3, 2\)"),
        ({"init": np.ones((3, 3))}, "init must hold probabilities summing to 1"),
        ({"init_priors": [0.2, 0.3, 0.5]}, "init_priors needs init_confusions"),
        (
            {"init_confusions": np.full((2, 3, 3), 1 / 3), "init": np.full((3, 3), 1 / 3)},
            "give either init or init_confusions, not both",
        ),
        (
            {"init_confusions": np.full((1, 3, 3), 1 / 3)},
            r"init_confusions must have shape \(2, 3, 3\), got \(1, 3, 3\)",
        ),
        (
            {"init_confusions": np.full((2, 3, 3), 1 / 3), "init_priors": [0.5, 0.5, 0.5]},
            "init_priors must hold probabilities summing to 1",
        ),
        ({"gold": ([0], [3])}, "gold labels holds 3, out of range for n_classes=3"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        dawid_skene(THREE_CLASSES, **kwargs)


def test_one_coin_refuses_bad_arguments():
    with pytest.raises(ValueError, match="smoothing must be non-negative, got -1"):
        one_coin_dawid_skene(THREE_CLASSES, smoothing=-1)


def test_warm_start_accepts_matrices_stored_rounded():
    votes, _, _, _ = _simulated_crowd(seed=1)
    cold = dawid_skene(votes)

    rounded = dawid_skene(
        votes,
        init_confusions=np.round(cold.confusions, 4),
        init_priors=np.round(cold.class_priors, 4),
    )

    np.testing.assert_array_equal(rounded.labels, cold.labels)


def _ragged_crowd(seed: int) -> tuple[Votes, tuple[np.ndarray, np.ndarray]]:
    """3 classes; 3,000 items with 1 + Poisson(2.5) votes each (over a thousand items at each of
    the first four vote ranks), 10 of them with 60 more, and 4 items without votes; workers 5,
    40 and 82 of 83 never vote; votes in random order. Gold: 50 items, one without votes."""
    rng = np.random.default_rng(seed)
    n_items, n_classes = 3004, 3
    per_item = np.r_[1 + rng.poisson(2.5, 3000), np.zeros(4, dtype=np.int64)]
    per_item[rng.choice(3000, 10, replace=False)] += 60
    item = rng.permutation(np.repeat(np.arange(n_items), per_item))
    active = np.setdiff1d(np.arange(83), [5, 40, 82])
    worker = active[rng.integers(0, active.size, item.size)]
    truth = rng.integers(0, n_classes, n_items)
    right = rng.random(item.size) < rng.uniform(0.4, 0.9, 83)[worker]
    label = np.where(right, truth[item], (truth[item] + rng.integers(1, 3, item.size)) % 3)
    votes = Votes.from_arrays(item, worker, label, n_items=n_items, n_workers=83, n_classes=3)
    gold_items = np.r_[rng.choice(3000, 49, replace=False), 3001]
    return votes, (gold_items, truth[gold_items])


def _log_evidence(counts, centre, strength):
    """Per worker: log Dirichlet-multinomial evidence of (W, K, K) counts, rows summed."""
    lgamma = np.vectorize(math.lgamma)
    alpha = strength * centre
    per_row = (
        (lgamma(counts + alpha) - lgamma(alpha)).sum(axis=2)
        + math.lgamma(strength)
        - lgamma(counts.sum(axis=2) + strength)
    )
    return per_row.sum(axis=1)


def _mixture_confusions(counts, centre, strength):
    """The free-prior mixture's posterior mean, as the docstring states it, from (W, K, K)
    counts (diagonal prior included) and the (K, K) pooled centre."""
    k = centre.shape[0]
    rows = counts.sum(axis=2, keepdims=True)
    shrunk = (counts + strength * centre) / (rows + strength)
    free = (counts + 0.1 * k * centre) / (rows + 0.1 * k)
    log_odds = _log_evidence(counts, centre, 0.1 * k) - _log_evidence(counts, centre, strength)
    weight = 0.01
    for _ in range(5):
        released = 1 / (1 + np.exp(-(log_odds + math.log(weight / (1 - weight)))))
        weight = (released.sum() + 1) / (len(released) + 100)
    return (1 - released[:, None, None]) * shrunk + released[:, None, None] * free, released


def _reference_em(votes, gold, rounds, *, one_coin=False, warm=None, diagonal_prior=0.0):
    """EM as the docstrings state it, vote by vote with np.add.at (smoothing 1, so K * 2
    pseudo-votes per confusion row along the pooled row, mixed with the free prior; 4 for
    one-coin's accuracy): posteriors, confusions, priors and log-likelihood after ``rounds``
    rounds."""
    n_items, n_workers, k = votes.n_items, votes.n_workers, votes.n_classes
    gold_items, gold_labels = gold

    def e_step(priors, confusions):
        log_joint = np.tile(np.log(priors), (n_items, 1))
        np.add.at(log_joint, votes.item, np.log(confusions[votes.worker, :, votes.label]))
        log_marginal = np.logaddexp.reduce(log_joint, axis=1)
        posteriors = np.exp(log_joint - log_marginal[:, None])
        log_marginal[gold_items] = log_joint[gold_items, gold_labels]
        posteriors[gold_items] = np.eye(k)[gold_labels]
        return posteriors, log_marginal.sum()

    def m_step(posteriors):
        priors = (posteriors.sum(axis=0) + 1) / (n_items + k)
        if one_coin:
            correct = np.zeros(n_workers)
            np.add.at(correct, votes.worker, posteriors[votes.item, votes.label])
            seen = np.bincount(votes.worker, minlength=n_workers)
            pooled = (correct.sum() + 1 / k) / (seen.sum() + 1)
            accuracy = (correct + 4 * pooled) / (seen + 4)
            wrong = (1 - accuracy) / (k - 1)
            diagonal = np.eye(k, dtype=bool)
            return priors, np.where(diagonal, accuracy[:, None, None], wrong[:, None, None])
        counts = np.zeros((n_workers, k, k))
        np.add.at(counts, (votes.worker, slice(None), votes.label), posteriors[votes.item])
        pooled = counts.sum(axis=0)
        centre = (pooled + 1 / k) / (pooled.sum(axis=1, keepdims=True) + 1)
        return priors, _mixture_confusions(counts + diagonal_prior * np.eye(k), centre, 2 * k)[0]

    if warm is None:
        shares = votes.counts()
        totals = shares.sum(axis=1, keepdims=True)
        posteriors = np.where(totals > 0, shares / np.maximum(totals, 1), 1 / k)
        posteriors[gold_items] = np.eye(k)[gold_labels]
    else:
        posteriors, _ = e_step(warm[1], warm[0])
    for _ in range(rounds):
        priors, confusions = m_step(posteriors)
        posteriors, log_likelihood = e_step(priors, confusions)
    return posteriors, confusions, priors, log_likelihood


@pytest.mark.parametrize("case", ["cold", "diagonal prior", "warm", "one-coin"])
def test_rounds_match_a_reference_em_on_a_ragged_crowd(case):
    votes, gold = _ragged_crowd(seed=3)
    rng = np.random.default_rng(4)
    warm = (rng.dirichlet([4, 1, 1], size=(83, 3)), np.array([0.5, 0.3, 0.2]))
    fits = {
        "cold": lambda: dawid_skene(votes, gold=gold, max_iter=6, tol=0.0),
        "diagonal prior": lambda: dawid_skene(
            votes, gold=gold, diagonal_prior=2.0, max_iter=6, tol=0.0
        ),
        "warm": lambda: dawid_skene(
            votes, gold=gold, init_confusions=warm[0], init_priors=warm[1], max_iter=3, tol=0.0
        ),
        "one-coin": lambda: one_coin_dawid_skene(votes, gold=gold, max_iter=6, tol=0.0),
    }
    posteriors, confusions, priors, log_likelihood = _reference_em(
        votes,
        gold,
        3 if case == "warm" else 6,
        one_coin=case == "one-coin",
        warm=warm if case == "warm" else None,
        diagonal_prior=2.0 if case == "diagonal prior" else 0.0,
    )

    result = fits[case]()

    np.testing.assert_allclose(result.posteriors, posteriors, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(result.confusions, confusions, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(result.class_priors, priors, rtol=1e-10)
    assert result.log_likelihood == pytest.approx(log_likelihood, rel=1e-10)
    labels = posteriors.argmax(axis=1)
    labels[3000:] = -1
    labels[3001] = gold[1][-1]
    np.testing.assert_array_equal(result.labels, labels)
    assert result.iterations == (3 if case == "warm" else 6)


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_a_worker_without_votes_gets_the_crowds_pooled_matrix(smoothing):
    # THREE_CLASSES plus a worker 2 who never voted. After one round, pooled expected counts
    # (see the hand computation above) give the rows [7, 1, 1] / 9, [2, 5, 5] / 12 and
    # [2, 5, 11] / 18; pooled accuracy (4 + 1/3) / (5 + 1) = 13/18.
    votes = Votes.from_arrays(
        THREE_CLASSES.item, THREE_CLASSES.worker, THREE_CLASSES.label, n_workers=3
    )

    full = dawid_skene(votes, smoothing=smoothing, max_iter=1)
    one_coin = one_coin_dawid_skene(votes, smoothing=smoothing, max_iter=1)

    pooled = [[7 / 9, 1 / 9, 1 / 9], [2 / 12, 5 / 12, 5 / 12], [2 / 18, 5 / 18, 11 / 18]]
    np.testing.assert_allclose(full.confusions[2], pooled, rtol=1e-14)
    accuracy = 13 / 18
    expected = np.full((3, 3), (1 - accuracy) / 2) + (accuracy - (1 - accuracy) / 2) * np.eye(3)
    np.testing.assert_allclose(one_coin.confusions[2], expected, rtol=1e-14)
    for result in (dawid_skene(votes, smoothing=smoothing), one_coin_dawid_skene(votes)):
        assert np.isfinite(result.confusions).all()
        assert np.isfinite(result.posteriors).all()


def _inverter_crowd():
    """120 binary items; workers 0-5 honest at 0.7-0.8 on every item, worker 6 always wrong
    on every item, worker 7 three votes (two right, one wrong)."""
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 120)
    items, workers, labels = [], [], []
    for worker, accuracy in enumerate([0.7, 0.75, 0.8, 0.7, 0.75, 0.8]):
        right = rng.random(120) < accuracy
        items.append(np.arange(120))
        workers.append(np.full(120, worker))
        labels.append(np.where(right, truth, 1 - truth))
    items += [np.arange(120), np.arange(3)]
    workers += [np.full(120, 6), np.full(3, 7)]
    labels += [1 - truth, np.array([truth[0], truth[1], 1 - truth[2]])]
    votes = Votes.from_arrays(
        np.concatenate(items), np.concatenate(workers), np.concatenate(labels)
    )
    return votes, truth


def test_a_confident_inverter_is_released_and_a_three_vote_worker_reads_like_the_crowd():
    votes, truth = _inverter_crowd()

    result = dawid_skene(votes)
    pooled_only = dawid_skene(votes, free_prior=False)

    # the inverter's answers count in full: his error rates drop from .086 / .048 (shrunk
    # towards the crowd, which is right 63-67 % of the time) to .011 / .003
    np.testing.assert_allclose(
        result.confusions[6], [[0.01118, 0.98882], [0.99735, 0.00265]], atol=1e-5
    )
    np.testing.assert_allclose(
        pooled_only.confusions[6], [[0.0862, 0.9138], [0.95167, 0.04833]], atol=1e-5
    )
    assert (result.labels == truth).sum() == 120
    assert (pooled_only.labels == truth).sum() == 119
    assert (majority_vote(votes).labels == truth).sum() == 102
    # the next M-step from the fit's posteriors, by the docstring's formula: the inverter's
    # weight on the free prior is 0.9996, the honest workers' 0.0003-0.0007 and the 3-vote
    # worker's 0.0033, so his matrix is the pooled prior's shrinkage to 2e-5
    k = 2
    counts = np.zeros((8, k, k))
    np.add.at(counts, (votes.worker, slice(None), votes.label), result.posteriors[votes.item])
    pooled = counts.sum(axis=0)
    centre = (pooled + 1 / k) / (pooled.sum(axis=1, keepdims=True) + 1)
    mixed, released = _mixture_confusions(counts, centre, 2 * k)
    np.testing.assert_allclose(
        released,
        [0.000312, 0.000302, 0.000382, 0.000306, 0.000334, 0.000737, 0.999603, 0.003317],
        atol=1e-6,
    )
    shrunk = (counts + 2 * k * centre) / (counts.sum(axis=2, keepdims=True) + 2 * k)
    np.testing.assert_allclose(mixed[7], shrunk[7], atol=2e-5)
    assert np.abs(mixed[7] - shrunk[7]).max() > 1e-5
    next_round = dawid_skene(votes, init=result.posteriors, max_iter=1)
    np.testing.assert_allclose(next_round.confusions, mixed, rtol=1e-12)


def test_log_gamma_matches_the_standard_library():
    x = np.array([1e-3, 0.02, 0.1, 0.5, 1.0, 2.5, 7.99, 8.0, 8.01, 33.3, 1e3, 1e4, 1e6])

    np.testing.assert_allclose(
        _log_gamma(x), [math.lgamma(value) for value in x], rtol=1e-15, atol=2e-11
    )
