"""Confidence intervals for an error rate measured on a fixed set of images. Pure Python."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95 % interval


def wilson_interval(errors: int, images: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for an error rate of ``errors`` out of ``images``, as fractions
    in [0, 1]. Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or
    ``images`` errors, which is where good models on small evaluation sets live."""
    if images <= 0:
        raise ValueError("an interval needs at least one image")
    if not 0 <= errors <= images:
        raise ValueError(f"{errors} errors out of {images} images")
    p = errors / images
    square = z * z / images
    centre = (p + square / 2) / (1 + square)
    half = z * math.sqrt(p * (1 - p) / images + square / (4 * images)) / (1 + square)
    return max(0.0, centre - half), min(1.0, centre + half)


def errors_of(rate: float, images: int) -> int:
    """The count of errors behind an error rate stored as a fraction of ``images``."""
    return round(rate * images)
