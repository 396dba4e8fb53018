"""Comparing two classifiers on the same images. Pure Python: no Django, no torch."""

from __future__ import annotations

from math import comb


def mcnemar_one_sided(only_candidate_right: int, only_incumbent_right: int) -> float:
    """McNemar's exact test, one-sided: the probability, were the two models equally good,
    that the candidate would be the one right on at least ``only_candidate_right`` of the
    ``b + c`` images where exactly one of them is right (binomial, n = b + c, p = 1/2).
    Images both get right or both get wrong say nothing about which is better. 1.0 when the
    models never disagree."""
    b, c = only_candidate_right, only_incumbent_right
    if b < 0 or c < 0:
        raise ValueError("counts of images cannot be negative")
    n = b + c
    # integer numerator and denominator: exact, and true division rounds once
    tail: int = sum(comb(n, k) for k in range(b, n + 1))
    return tail / (1 << n)


def discordant(candidate: str, incumbent: str) -> tuple[int, int]:
    """(images only the candidate gets right, images only the incumbent gets right) from two
    '1'/'0' strings of the same images in the same order."""
    if len(candidate) != len(incumbent):
        raise ValueError(f"{len(candidate)} answers against {len(incumbent)}: not the same images")
    b = sum(1 for x, y in zip(candidate, incumbent, strict=True) if x == "1" and y == "0")
    c = sum(1 for x, y in zip(candidate, incumbent, strict=True) if x == "0" and y == "1")
    return b, c
