"""McNemar's exact one-sided test and the discordant counts, against hand-computed values."""

from __future__ import annotations

import pytest

from training.ml.metrics import discordant, mcnemar_one_sided


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 0, 1.0),  # never disagree: no evidence either way
        (1, 0, 0.5),
        (5, 0, 1 / 32),
        (5, 1, 7 / 64),  # (C(6,5) + C(6,6)) / 2**6
        (1, 5, 63 / 64),
        (3, 3, 42 / 64),  # (20 + 15 + 6 + 1) / 64: a tie is never evidence
        (8, 2, 56 / 1024),  # (45 + 10 + 1) / 1024
        (2, 8, 1013 / 1024),
        (0, 4, 1.0),
    ],
)
def test_mcnemar_one_sided_is_the_binomial_tail(b, c, p):
    assert mcnemar_one_sided(b, c) == p


def test_mcnemar_stays_exact_for_large_sets():
    # 2**-400: floats would underflow a naive product of probabilities long before this
    assert mcnemar_one_sided(400, 0) == 2.0**-400
    # 1/2 + C(2000, 1000) / 2**2001: the tie term counts on the candidate's side
    assert mcnemar_one_sided(1000, 1000) == pytest.approx(0.5089195056, abs=1e-10)


def test_mcnemar_refuses_negative_counts():
    with pytest.raises(ValueError, match="cannot be negative"):
        mcnemar_one_sided(-1, 2)


def test_discordant_counts_only_the_images_where_one_is_right():
    assert discordant("110010", "101010") == (1, 1)
    assert discordant("1111", "0000") == (4, 0)
    assert discordant("", "") == (0, 0)
    with pytest.raises(ValueError, match="3 answers against 2"):
        discordant("101", "10")
