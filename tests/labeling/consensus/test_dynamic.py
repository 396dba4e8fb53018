"""ImageNet dynamic consensus: the confidence table and the decisions read off it."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus import (
    ACCEPT,
    CONTINUE,
    REJECT,
    REVIEW,
    ConfidenceTable,
    decide,
    fit_confidence_table,
)


def test_table_of_a_two_item_sample_matches_the_hand_computation():
    # item A: 3 yes, 1 no -> good; item B: 0 yes, 4 no -> bad; prior = 1/2, smoothing 1.
    # Chance that m of A's 4 votes drawn without replacement hold y yes (C(3,y) C(1,n) / C(4,m)):
    #   m=0: (0,0) 1;  m=1: (1,0) 3/4, (0,1) 1/4;  m=2: (2,0) 3/6, (1,1) 3/6, (0,2) 0
    # B: (0,0) 1; (0,1) 1; (0,2) 1; every tally with a yes 0.
    # table = (A's chance + 1/2) / (A's + B's chance + 1):
    #   (0,0) 1.5/3; (1,0) 1.25/1.75; (0,1) .75/2.25; (2,0) 1/1.5; (1,1) 1/1.5; (0,2) .5/2
    table = fit_confidence_table([3, 0], [1, 4], cap=2)

    nan = np.nan
    np.testing.assert_allclose(
        table.table,
        [[1 / 2, 1 / 3, 1 / 4], [5 / 7, 2 / 3, nan], [2 / 3, nan, nan]],
        rtol=1e-14,
    )
    assert table.cap == 2
    assert table.prior == 0.5


def test_tied_items_are_left_out_of_the_table():
    with_tie = fit_confidence_table([3, 0, 2], [1, 4, 2], cap=2)
    without = fit_confidence_table([3, 0], [1, 4], cap=2)

    np.testing.assert_array_equal(with_tie.table, without.table)
    assert with_tie.prior == without.prior


def test_tallies_larger_than_an_item_ignore_that_item():
    # item A has 2 votes (both yes), item B 4 no: for m = 3, only B speaks
    # (0,3): (0 + 1/2) / (1 + 1) = 1/4; (3,0): (0 + 1/2) / (0 + 1) = 1/2
    table = fit_confidence_table([2, 0], [0, 4], cap=3)

    assert table.table[0, 3] == 0.25
    assert table.table[3, 0] == 0.5
    assert table.table[2, 0] == pytest.approx(1.5 / 2, rel=1e-14)


def test_a_simulated_sample_gives_a_table_that_follows_the_votes():
    # given 400 items, half good, 20 votes each from workers right 80% of the time
    rng = np.random.default_rng(3)
    good = rng.random(400) < 0.5
    yes = rng.binomial(20, np.where(good, 0.8, 0.2))

    table = fit_confidence_table(yes, 20 - yes, cap=10).table

    # observed: (3, 0) 0.983, (0, 3) 0.017, (4, 1) 0.982, (1, 4) 0.018, ties 0.48 to 0.56
    assert table[3, 0] > 0.95
    assert table[4, 1] > 0.95
    assert table[0, 3] < 0.05
    assert table[1, 4] < 0.05
    np.testing.assert_allclose(np.diag(table)[:6], 0.5, atol=0.1)
    assert table[1, 0] < table[2, 0] < table[3, 0]
    assert table[0, 1] > table[0, 2] > table[0, 3]


@pytest.mark.parametrize(
    ("yes", "no", "kwargs", "message"),
    [
        ([], [], {}, "the calibration sample is empty"),
        ([1, 2], [1], {}, "yes and no must have one length, got 2 and 1"),
        ([1, 2], [0, 3], {}, "every calibration item needs at least 2 votes, one has 1"),
        ([1, 2], [1, 2], {}, "no calibration item has a majority of yes or no votes"),
        ([3, 0], [1, -4], {}, "no must be non-negative, got -4"),
        ([3, 0], [1, 4], {"cap": 0}, "cap must be at least 1, got 0"),
        ([3, 0], [1, 4], {"smoothing": -1.0}, "smoothing must be non-negative, got -1.0"),
    ],
)
def test_bad_calibration_samples_are_refused(yes, no, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_confidence_table(yes, no, **kwargs)


NAN = np.nan
TABLE = ConfidenceTable(
    cap=2,
    table=np.array([[0.5, 0.03, 0.01], [0.96, 0.6, NAN], [0.97, NAN, NAN]]),
    prior=0.5,
)


def test_decide_accepts_rejects_continues_and_sends_the_cap_to_review():
    codes = decide(TABLE, [0, 1, 0, 1, 2, 0], [0, 0, 1, 1, 0, 2])

    np.testing.assert_array_equal(codes, [CONTINUE, ACCEPT, REJECT, REVIEW, ACCEPT, REJECT])
    assert codes.dtype == np.int8
    assert (ACCEPT, REJECT, CONTINUE, REVIEW) == (1, 0, -1, -2)


def test_decide_with_a_lower_cap_and_tallies_past_the_table():
    codes = decide(TABLE, [0, 0, 1, 3], [0, 0, 1, 0], cap=1, threshold=0.99)

    np.testing.assert_array_equal(codes[[0, 2, 3]], [CONTINUE, REVIEW, REVIEW])
    np.testing.assert_array_equal(decide(TABLE, [[0, 1]], [[1], [0]]).shape, (2, 2))


def test_decide_on_the_hand_computed_table():
    table = fit_confidence_table([3, 0], [1, 4], cap=2)

    codes = decide(table, [1, 0, 1, 0, 0], [0, 2, 1, 1, 0], threshold=0.7)

    # 5/7 >= .7 accept; 1 - 1/4 >= .7 reject; 2/3 at the cap review; 1/3 and 1/2 continue
    np.testing.assert_array_equal(codes, [ACCEPT, REJECT, REVIEW, CONTINUE, CONTINUE])


@pytest.mark.parametrize(
    ("kwargs", "yes", "message"),
    [
        ({"cap": 3}, [0], "cap must be between 1 and the table's cap 2, got 3"),
        ({"threshold": 0.5}, [0], r"threshold must be in \(0.5, 1\], got 0.5"),
        ({}, [-1], "yes and no must be non-negative"),
        ({}, [0.5], "yes and no must hold integers"),
    ],
)
def test_decide_refuses_bad_arguments(kwargs, yes, message):
    with pytest.raises(ValueError, match=message):
        decide(TABLE, yes, [0], **kwargs)
