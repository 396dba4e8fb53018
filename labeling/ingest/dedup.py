"""Perceptual hashing and the banded index that finds near-duplicates without a full scan.

Two hashes per image:

* a 64-bit DCT perceptual hash, split into five bands of 13/13/13/13/12 bits. Two hashes at
  most 4 bits apart agree exactly on at least one band (pigeonhole), so a lookup asks the
  database for rows sharing any band, an indexed query whose cost follows the bucket size,
  not the collection size;
* a 256-bit perceptual hash that confirms a match. The 64-bit hash alone merges distinct
  small images (5,000 MNIST digits have 3,000 pairs within 4 bits of each other, but none
  within 20 bits at 256), while recompressed or rescaled copies stay within 4 bits at 256.

Some pictures carry too little detail for either hash to mean anything, and are only ever
duplicates by exact bytes (see ``Hashes.informative``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image

BAND_WIDTHS: tuple[int, ...] = (13, 13, 13, 13, 12)
MAX_INDEXED_DISTANCE = len(BAND_WIDTHS) - 1
CONFIRM_BITS_DEFAULT = 10
# A pHash sets the bits of the DCT coefficients above their median: a picture with detail sets
# exactly half of them, and only coefficients tied at the median (all zero in a flat image, all
# but one row or column in a ramp) pull the count down. Fewer than a quarter set means most bits
# say nothing, and such hashes (0x0, 0x8000000000000000, ...) collide across unrelated pictures.
MIN_SET_FRACTION = 0.25
# The 8x8 low-frequency block needs at least 8 samples along each axis of the hashed picture;
# a thinner one (a 4x4 icon, a 1000x2 strip) is stretched and its hash describes the stretching.
MIN_HASHED_SIDE = 8
# Below this standard deviation (grey levels, 0-255) of the 64x64 greyscale a picture is flat
# and its hash bits are set by noise or compression artefacts.
MIN_GREY_STD = 2.0


@dataclass(frozen=True)
class Hashes:
    """An image's perceptual hashes: ``phash`` as a signed 64-bit int, ``phash256`` as hex.

    ``informative`` is False for pictures too flat, small or thin for the hashes to tell them
    apart; those are never near-duplicates of anything."""

    phash: int
    phash256: str
    informative: bool = True

    @property
    def bands(self) -> tuple[int, ...]:
        """The 64-bit hash cut into the index's bands, most significant bits first."""
        return hash_bands(self.phash)


@dataclass(frozen=True)
class Match:
    """A stored image that an incoming one duplicates; distances in bits."""

    image_id: int
    distance: int
    distance256: int


def _to_signed(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def _to_unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def _bits(image_hash: imagehash.ImageHash) -> int:
    return int.from_bytes(np.packbits(image_hash.hash).tobytes(), "big")


def image_hashes(image: Image.Image) -> Hashes:
    """Both perceptual hashes of an RGB or greyscale image.

    The picture is shrunk once to the 64x64 greyscale that the 256-bit hash works on, and the
    64-bit hash is taken from that, instead of two resizes from full size."""
    grey = image.convert("L").resize((64, 64), Image.Resampling.BOX)
    small = _bits(imagehash.phash(grey, hash_size=8))
    large = _bits(imagehash.phash(grey, hash_size=16))
    informative = (
        min(image.size) >= MIN_HASHED_SIDE
        and float(np.asarray(grey, dtype=np.float64).std()) >= MIN_GREY_STD
        and _balanced(small, 64)
        and _balanced(large, 256)
    )
    return Hashes(phash=_to_signed(small), phash256=f"{large:064x}", informative=informative)


def _balanced(bits: int, width: int) -> bool:
    """True when between a quarter and three quarters of a width-bit hash's bits are set."""
    ones = _to_unsigned(bits).bit_count()
    return MIN_SET_FRACTION * width <= ones <= (1 - MIN_SET_FRACTION) * width


def hash_is_informative(phash: int) -> bool:
    """The part of the low-information test that a stored (signed) 64-bit hash alone allows."""
    return _balanced(phash, 64)


def hash_bands(phash: int) -> tuple[int, ...]:
    """Split a (signed) 64-bit hash into BAND_WIDTHS-bit unsigned bands."""
    value = _to_unsigned(phash)
    bands = []
    shift = 64
    for width in BAND_WIDTHS:
        shift -= width
        bands.append((value >> shift) & ((1 << width) - 1))
    return tuple(bands)


def hamming64(phash: int, others: Sequence[int] | np.ndarray) -> np.ndarray:
    """Bit distances from one signed 64-bit hash to many, vectorised."""
    mine = np.int64(phash).view(np.uint64)
    theirs = np.asarray(others, dtype=np.int64).view(np.uint64)
    return np.bitwise_count(np.bitwise_xor(theirs, mine)).astype(np.int64)


def hamming_hex(a: str, b: str) -> int:
    """Bit distance between two equal-length hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def best_match(
    hashes: Hashes,
    candidates: Sequence[tuple[int, int, str]],
    *,
    max_distance: int,
    confirm_bits: int = CONFIRM_BITS_DEFAULT,
) -> Match | None:
    """The closest candidate ``(image_id, phash, phash256)`` that is a near-duplicate, if any.

    A near-duplicate is within ``max_distance`` bits on the 64-bit hash and within
    ``confirm_bits`` bits on the 256-bit hash, and neither side's hashes are low-information.
    Ties go to the oldest (smallest) id.
    """
    if not hashes.informative:
        return None
    candidates = [row for row in candidates if hash_is_informative(row[1])]
    if not candidates or max_distance < 0:
        return None
    ids = np.fromiter((c[0] for c in candidates), dtype=np.int64, count=len(candidates))
    phashes = np.fromiter((c[1] for c in candidates), dtype=np.int64, count=len(candidates))
    distances = hamming64(hashes.phash, phashes)
    best: Match | None = None
    for index in np.argsort(distances * (1 << 40) + ids, kind="stable"):
        distance = int(distances[index])
        if distance > max_distance:
            break
        distance256 = hamming_hex(hashes.phash256, candidates[int(index)][2])
        if distance256 <= confirm_bits:
            best = Match(int(ids[index]), distance, distance256)
            break
    return best
