"""Perceptual hashing and the banded index that finds near-duplicates without a full scan.

Two hashes per image:

* a 64-bit DCT perceptual hash, split into five bands of 13/13/13/13/12 bits. Two hashes at
  most 4 bits apart agree exactly on at least one band (pigeonhole), so a lookup asks the
  database for rows sharing any band, an indexed query whose cost follows the bucket size,
  not the collection size;
* a 256-bit perceptual hash that confirms a match. The 64-bit hash alone merges distinct
  small images (5,000 MNIST digits have 3,000 pairs within 4 bits of each other, but none
  within 20 bits at 256), while recompressed or rescaled copies stay within 4 bits at 256.
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


@dataclass(frozen=True)
class Hashes:
    """An image's perceptual hashes: ``phash`` as a signed 64-bit int, ``phash256`` as hex."""

    phash: int
    phash256: str

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
    small = imagehash.phash(grey, hash_size=8)
    large = imagehash.phash(grey, hash_size=16)
    return Hashes(phash=_to_signed(_bits(small)), phash256=f"{_bits(large):064x}")


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
    ``confirm_bits`` bits on the 256-bit hash. Ties go to the oldest (smallest) id.
    """
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
