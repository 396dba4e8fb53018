"""Dawid-Skene on sparse crowds (a few votes per worker): rare classes are not lost."""

from __future__ import annotations

import numpy as np

from labeling.consensus import Votes, dawid_skene, majority_vote, one_coin_dawid_skene


def _sparse_crowd(seed, *, priors, n_items, per_item, per_worker):
    """``n_items`` items with truth drawn from ``priors``, ``per_item`` votes each; every
    worker casts exactly ``per_worker`` votes. 90 % of workers are honest with accuracy
    0.55-0.95 (errors spread evenly), 10 % answer uniformly at random."""
    rng = np.random.default_rng(seed)
    k = len(priors)
    n_workers = n_items * per_item // per_worker
    truth = rng.choice(k, size=n_items, p=priors)
    accuracy = rng.uniform(0.55, 0.95, n_workers)
    spammer = rng.random(n_workers) < 0.1
    item = np.repeat(np.arange(n_items), per_item)
    worker = rng.permutation(item.size) % n_workers
    right = rng.random(item.size) < accuracy[worker]
    wrong = (truth[item] + rng.integers(1, k, item.size)) % k
    label = np.where(right, truth[item], wrong)
    label = np.where(spammer[worker], rng.integers(0, k, item.size), label)
    votes = Votes.from_arrays(item, worker, label, n_items=n_items, n_classes=k)
    return votes, truth


def test_a_sparse_binary_crowd_with_rare_no_items_still_finds_them():
    # 90 % "yes" (class 1), 4 votes per item, every worker 8 votes. Shrinking each worker
    # towards uniform let EM slide to "everything is yes" (prior of "no" 0.001, recall 0);
    # towards the crowd's pooled matrix it finds the "no" items the votes point to.
    votes, truth = _sparse_crowd(5, priors=[0.1, 0.9], n_items=4000, per_item=4, per_worker=8)
    no = truth == 0

    result = dawid_skene(votes)
    one_coin = one_coin_dawid_skene(votes)

    majority = majority_vote(votes, tie="random", rng=np.random.default_rng(0)).labels == truth
    # observed with seed 5: recall of "no" 0.452 (one-coin 0.336), prior of "no" 0.080,
    # accuracy 0.926 (one-coin 0.918) against majority vote's 0.827; before, both fits gave
    # recall 0, prior 0.001 and accuracy 0.89 (every item "yes")
    assert 0.42 <= (result.labels[no] == 0).mean() <= 0.48
    assert 0.3 <= (one_coin.labels[no] == 0).mean() <= 0.37
    assert 0.07 <= result.class_priors[0] <= 0.09
    assert (result.labels == truth).mean() >= majority.mean() + 0.09
    assert (one_coin.labels == truth).mean() >= majority.mean() + 0.08


def test_a_rare_class_is_still_predicted_in_a_sparse_multiclass_crowd():
    # 4 classes, the last one 10 %; 5 votes per item, every worker 8 votes
    votes, truth = _sparse_crowd(
        6, priors=[0.4, 0.3, 0.2, 0.1], n_items=2000, per_item=5, per_worker=8
    )
    rare = truth == 3

    result = dawid_skene(votes)

    # observed with seed 6: accuracy 0.917 (majority vote 0.899), recall of class 3 0.808,
    # its prior 0.092; before: accuracy 0.730, class 3 never predicted, its prior 0.0007
    assert 0.91 <= (result.labels == truth).mean() <= 0.925
    assert 0.78 <= (result.labels[rare] == 3).mean() <= 0.84
    assert 0.085 <= result.class_priors[3] <= 0.1
