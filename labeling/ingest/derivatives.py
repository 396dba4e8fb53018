"""JPEG derivatives of a validated image: a thumbnail for the UI and a training-size copy.

Pure module (Pillow only; no Django). Outputs carry no EXIF, ICC or other metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from PIL import Image


@dataclass(frozen=True)
class Derivatives:
    """Encoded JPEG bytes: thumbnail with its longest side <= thumb_size pixels, and the
    training copy with its shorter side brought down to train_size pixels (never upscaled)."""

    thumbnail: bytes
    train: bytes


def make_derivatives(
    image: Image.Image, *, thumb_size: int = 256, train_size: int = 256, quality: int = 88
) -> Derivatives:
    """Resize image (any mode, converted to RGB) into both derivatives, aspect ratio kept.

    thumb_size and train_size are in pixels (>= 1); quality is the JPEG quality, 1 to 95.
    """
    if thumb_size < 1 or train_size < 1:
        raise ValueError(f"sizes must be at least 1 pixel, got {thumb_size=} {train_size=}")
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be between 1 and 95, got {quality}")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return Derivatives(
        thumbnail=_encode_jpeg(_fit_longest_side(rgb, thumb_size), quality),
        train=_encode_jpeg(_fit_shorter_side(rgb, train_size), quality),
    )


def _fit_longest_side(image: Image.Image, size: int) -> Image.Image:
    """A copy whose longest side is at most size pixels, never larger than the original."""
    thumbnail = image.copy()
    thumbnail.thumbnail((size, size), Image.Resampling.LANCZOS)
    return thumbnail


def _fit_shorter_side(image: Image.Image, size: int) -> Image.Image:
    """A copy whose shorter side is size pixels, or the original size when already smaller."""
    width, height = image.size
    shorter = min(width, height)
    if shorter <= size:
        return image.copy()
    scale = size / shorter
    target = (
        (size, max(1, round(height * scale)))
        if width <= height
        else (max(1, round(width * scale)), size)
    )
    # reducing_gap first shrinks by a whole factor with a cheap box filter, then resamples;
    # with a gap of 3 the result is indistinguishable from plain Lanczos and much faster.
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG bytes of image with no EXIF, ICC profile or comment attached."""
    # copy() and resize() carry the source's info dict; drop it so nothing can leak through.
    image.info.clear()
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()
