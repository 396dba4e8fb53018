"""The banded perceptual-hash index: pure functions, no database."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.ingest.dedup import (
    BAND_WIDTHS,
    MAX_INDEXED_DISTANCE,
    Hashes,
    best_match,
    hamming64,
    hamming_hex,
    hash_bands,
    image_hashes,
)
from tests.factories import noise_image


def _recombine(bands: tuple[int, ...]) -> int:
    value = 0
    for band, width in zip(bands, BAND_WIDTHS, strict=True):
        value = (value << width) | band
    return value - (1 << 64) if value >= 1 << 63 else value


@pytest.mark.parametrize("phash", [0, 1, -1, 2**63 - 1, -(2**63), 0x0123456789ABCDEF])
def test_bands_cover_all_64_bits_exactly(phash):
    bands = hash_bands(phash)

    assert sum(BAND_WIDTHS) == 64
    assert all(0 <= band < (1 << width) for band, width in zip(bands, BAND_WIDTHS, strict=True))
    assert _recombine(bands) == phash


def test_any_hash_within_the_indexed_distance_shares_a_band():
    # given 2,000 random hashes, each with up to 4 random bits flipped
    rng = np.random.default_rng(5)
    for _ in range(2000):
        phash = int(rng.integers(-(2**63), 2**63 - 1))
        flips = rng.choice(64, size=int(rng.integers(0, MAX_INDEXED_DISTANCE + 1)), replace=False)
        other = phash
        for bit in flips:
            other ^= 1 << int(bit)
        other = other - (1 << 64) if other >= 1 << 63 else other
        if other < -(2**63):
            other += 1 << 64

        # then the pigeonhole guarantee holds: at least one band is equal
        assert any(a == b for a, b in zip(hash_bands(phash), hash_bands(other), strict=True))
        assert hamming64(phash, [other]).tolist() == [len(flips)]


def test_hamming_distances():
    assert hamming64(0, [0, 1, 3, -1]).tolist() == [0, 1, 2, 64]
    assert hamming_hex("00ff", "0f0f") == 8


def test_best_match_takes_the_closest_confirmed_row_and_the_oldest_on_ties():
    mine = Hashes(phash=0b1111, phash256="0" * 64)
    rows = [
        (7, 0b0111, "f" * 64),  # 1 bit away, but the 256-bit hash disagrees
        (5, 0b0011, "0" * 63 + "1"),  # 2 bits, confirmed
        (3, 0b1100, "0" * 64),  # 2 bits, confirmed, older
        (2, 0b0000, "0" * 64),  # 4 bits
    ]

    match = best_match(mine, rows, max_distance=4, confirm_bits=10)

    assert (match.image_id, match.distance, match.distance256) == (3, 2, 0)
    assert best_match(mine, rows, max_distance=0, confirm_bits=10) is None
    assert best_match(mine, [], max_distance=4, confirm_bits=10) is None


def test_image_hashes_are_stable_and_distinguish_pictures():
    a, b = image_hashes(noise_image(1, (256, 192))), image_hashes(noise_image(2, (256, 192)))

    assert image_hashes(noise_image(1, (256, 192))) == a
    assert len(a.phash256) == 64
    assert hamming64(a.phash, [b.phash])[0] > MAX_INDEXED_DISTANCE
