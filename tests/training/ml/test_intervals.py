"""Wilson's 95 % interval for an error rate: exact values, the edges, bad input."""

from __future__ import annotations

import pytest

from training.ml.intervals import errors_of, wilson_interval


@pytest.mark.parametrize(
    ("errors", "images", "expected"),
    [
        # the same six digits as scipy.stats.binomtest(errors, images).proportion_ci("wilson")
        (10, 100, (0.055229, 0.174366)),
        (0, 50, (0.0, 0.071348)),
        (50, 50, (0.928652, 1.0)),
        (48, 480, (0.076257, 0.130095)),
        (1, 1, (0.206549, 1.0)),
    ],
)
def test_wilson_interval_matches_reference_values(errors, images, expected):
    low, high = wilson_interval(errors, images)

    assert (round(low, 6), round(high, 6)) == expected


def test_the_interval_narrows_as_the_set_grows():
    widths = [wilson_interval(n // 10, n) for n in (100, 400, 1600)]

    assert [round(high - low, 4) for low, high in widths] == [0.1191, 0.059, 0.0294]


@pytest.mark.parametrize(("errors", "images"), [(1, 0), (-1, 10), (11, 10)])
def test_impossible_counts_are_refused(errors, images):
    with pytest.raises(ValueError):
        wilson_interval(errors, images)


def test_errors_of_a_stored_rate():
    assert [errors_of(rate, 480) for rate in (0.1, 0.15, 19 / 480)] == [48, 72, 19]
