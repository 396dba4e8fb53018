"""Validation of uploaded image bytes: what is accepted, and the clean 8-bit RGB image it yields.

Pure module (stdlib, Pillow, numpy; no Django). Refusals raise ``ImageRejected(code, message)``.
"""

from __future__ import annotations

import codecs
import re
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import IO

import numpy as np
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from labeling.ingest.markup import find_markup, has_zip
from labeling.ingest.originals import (
    REENCODED,
    OriginalUnstorable,
    reencoded_original,
    rewritten_original,
)

# Pillow format name -> name in messages, in the order messages list them.
_DISPLAY_NAMES = dict(JPEG="JPEG", PNG="PNG", WEBP="WebP", GIF="GIF", BMP="BMP", TIFF="TIFF")

# The sniffed format's plugin parses the header (SyntaxError if not that format), built directly
# so no other Pillow plugin sees uploads and the pixel check, naming width x height, is ours.
_OPENERS: dict[str, Callable[[IO[bytes]], ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.jpeg_factory,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
}

_TIMES = "\N{MULTIPLICATION SIGN}"
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

# Recognisable non-images, checked in order against the start of the file, for the message.
# Markup may open with a byte-order mark, an XML declaration and comments.
_PROLOGUE = rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
_LOOKS_LIKE: tuple[tuple[re.Pattern[bytes], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), what)
    for pattern, what in (
        (_PROLOGUE + rb"(?i:<!doctype svg|<svg)", "an SVG document"),
        (_PROLOGUE + rb"(?i:<(?:!doctype html|html|head|body|script))", "an HTML document"),
        (rb"\A(?:\xef\xbb\xbf)?\s*(?i:<\?xml)", "an XML document"),
        (rb"\A\s*(?i:<\?php)", "a PHP script"),
        (rb"\A#!", "a script"),
        (rb"\A%PDF-", "a PDF document"),
        (rb"\A(?:%!PS|\xc5\xd0\xd3\xc6)", "a PostScript document"),
        (rb"\APK(?:\x03\x04|\x05\x06|\x07\x08)", "a ZIP archive"),
        (rb"\A\x1f\x8b", "a gzip archive"),
        (rb"\ABZh", "a bzip2 archive"),
        (rb"\A\xfd7zXZ\x00", "an xz archive"),
        (rb"\A7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (rb"\ARar!\x1a\x07", "a RAR archive"),
        (rb"\A.{257}ustar", "a TAR archive"),
        (rb"\A(?:MZ|\x7fELF|\xcf\xfa\xed\xfe)", "a program"),
        (rb"\A....ftyp(?:hei[cxms]|hev[cx]|mif1|msf1)", "a HEIC image"),
        (rb"\A....ftypavi[fs]", "an AVIF image"),
        (rb"\A....ftyp", "a video"),
        (rb"\A\x00\x00\x00\x0c(?:jP  |JXL )|\A\xff\x0a", "a JPEG 2000 or JPEG XL image"),
        (rb"\A8BPS", "a Photoshop document"),
        (rb"\A\x00\x00\x01\x00", "an icon file"),
    )
)


@dataclass(frozen=True)
class ValidationLimits:
    """What validate_image accepts: file size in bytes, pixel count, Pillow format names."""

    max_bytes: int
    max_pixels: int
    allowed_formats: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"})


class ImageRejected(Exception):
    """An upload that is not accepted; ``code`` is for programs, ``message`` for the uploader."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ValidatedImage:
    """An accepted upload: original Pillow format, size in pixels after EXIF orientation, and
    the decoded first frame as a fresh 8-bit RGB image without EXIF, ICC or other metadata,
    and ``original``, the bytes to store and serve as the original (see originals)."""

    format: str
    width: int
    height: int
    image: Image.Image
    original: bytes = field(repr=False)


def validate_image(
    data: bytes, limits: ValidationLimits, *, keep_gps: bool = False
) -> ValidatedImage:
    """Check uploaded bytes and decode them to a clean RGB image, or raise ImageRejected.

    The original to store is the upload less its data after the end, comments, GPS (unless
    keep_gps) and metadata holding markup (see originals); markup or a ZIP record left in it
    are in the picture's own data, and refused."""
    if not data:
        raise ImageRejected("empty", "the file is empty")
    if len(data) > limits.max_bytes:
        raise ImageRejected(
            "too_large",
            f"the file is {len(data):,} bytes, more than the limit of {limits.max_bytes:,} bytes; "
            "resize or recompress it before uploading",
        )
    fmt = _sniff_format(data)
    if fmt is None:
        raise ImageRejected("not_an_image", _not_an_image_message(data, limits))
    if fmt not in limits.allowed_formats:
        raise ImageRejected(
            "format_not_allowed",
            f"{_DISPLAY_NAMES[fmt]} images are not accepted here; accepted formats: "
            f"{_accepted_list(limits)}",
        )
    original = _stored_original(data, fmt, keep_gps)
    if original is not None:
        _refuse_polyglot(original)
    # The stored bytes are the ones decoded (and so known to decode), when already made.
    decoded = _decode_first_frame(data if original is None else original, fmt, limits)
    if original is None:
        original = _reencoded(decoded, fmt, keep_gps)
        _refuse_polyglot(original)
    rgb = _to_rgb(_apply_orientation(decoded))
    # A fresh image with the pixels pasted in carries no info dict, EXIF, ICC or XMP.
    clean = Image.new("RGB", rgb.size)
    clean.paste(rgb)
    return ValidatedImage(
        format=fmt, width=clean.width, height=clean.height, image=clean, original=original
    )


def _sniff_format(data: bytes) -> str | None:
    """Pillow format name from the magic bytes alone, or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    # "BM" alone is too weak a signature: also require a known DIB header size at offset 14.
    if data[:2] == b"BM" and len(data) >= 18:
        (dib_size,) = struct.unpack_from("<I", data, 14)
        if dib_size in (12, 16, 40, 52, 56, 64, 108, 124):
            return "BMP"
    return None


def _accepted_list(limits: ValidationLimits) -> str:
    """The accepted formats for messages, in a fixed order: 'JPEG, PNG, WebP, ...'."""
    return ", ".join(name for fmt, name in _DISPLAY_NAMES.items() if fmt in limits.allowed_formats)


def _not_an_image_message(data: bytes, limits: ValidationLimits) -> str:
    """Say what the bytes look like, when recognisable, and what is accepted instead."""
    head = data[:4096]
    what = next((name for pattern, name in _LOOKS_LIKE if pattern.match(head)), None)
    if what is None and _is_text(head):
        what = "a text file"
    accepted = f"only raster images are accepted: {_accepted_list(limits)}"
    if what is None:
        return f"the file is not a recognised image; {accepted}"
    return f"looks like {what}; {accepted}"


def _is_text(head: bytes) -> bool:
    """True when the bytes decode as UTF-8 with no control characters besides whitespace."""
    try:
        # Incremental, so a character cut in two at the end of head is not an error.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\n\r\f" for ch in text)


def _stored_original(data: bytes, fmt: str, keep_gps: bool) -> bytes | None:
    """The rewritten original of a JPEG, PNG, WebP or GIF (None for BMP and TIFF, which are
    re-encoded once decoded), refused as corrupt when it never reaches its end marker."""
    if fmt in REENCODED:
        return None
    original = rewritten_original(data, fmt, keep_gps=keep_gps)
    if original is None:
        raise ImageRejected(
            "corrupt",
            f"the {_DISPLAY_NAMES[fmt]} file ends before its end marker; it is truncated or "
            "damaged, upload the complete file",
        )
    return original


def _reencoded(frame: Image.Image, fmt: str, keep_gps: bool) -> bytes:
    """A BMP or TIFF frame written again losslessly, or refused when Pillow cannot."""
    try:
        return reencoded_original(frame, fmt, keep_gps=keep_gps)
    except OriginalUnstorable as exc:
        raise ImageRejected(
            "corrupt",
            f"the {_DISPLAY_NAMES[fmt]} image could not be stored losslessly ({exc}); "
            "convert it to PNG and upload that",
        ) from exc


def _refuse_polyglot(original: bytes) -> None:
    """Raise polyglot for markup, script or ZIP data in what would be stored and served.

    Data after the picture's end and metadata holding markup are already gone from it, so
    what is left is in the picture's own data: a file made to be read as two things."""
    markup = find_markup(original)
    if markup is not None:
        raise ImageRejected(
            "polyglot",
            f"the image data contains {markup[1]!r}: images with embedded markup or script "
            "are refused; re-export the picture from an image editor",
        )
    if has_zip(original):
        raise ImageRejected(
            "polyglot",
            "the file has a ZIP archive embedded in it; upload the picture alone, "
            "re-exported from an image editor",
        )


def _decode_first_frame(data: bytes, fmt: str, limits: ValidationLimits) -> ImageFile.ImageFile:
    """Open, check the declared size, verify, and fully decode a fresh copy of the first frame."""
    with warnings.catch_warnings():
        # Pillow warns (rather than raises) just past its own pixel limit; make that a refusal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            header = _open(data, fmt)
            _refuse_bomb(header.size, limits)
            header.verify()
            image = _open(data, fmt)
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(
                "decompression_bomb",
                f"the image declares more pixels than can be safely decoded ({exc}); "
                "downscale it before uploading",
            ) from exc
        except ImageRejected:
            raise
        # Pillow's parsers raise many exception types on hostile input (OSError, SyntaxError,
        # ValueError, struct.error, EOFError, IndexError, ...); all of them mean a broken file.
        except Exception as exc:
            raise ImageRejected(
                "corrupt",
                f"the {_DISPLAY_NAMES[fmt]} file could not be decoded ({exc}); "
                "it is damaged or truncated, upload the complete file",
            ) from exc
    return image


def _open(data: bytes, fmt: str) -> ImageFile.ImageFile:
    """Parse the header with the plugin for the sniffed format; Pillow must agree on the format."""
    image = _OPENERS[fmt](BytesIO(data))
    if ("JPEG" if image.format == "MPO" else image.format) != fmt:
        raise SyntaxError(f"Pillow reads it as {image.format}")
    return image


def _refuse_bomb(size: tuple[int, int], limits: ValidationLimits) -> None:
    """Refuse a declared width x height over max_pixels, or over Pillow's limit if lower."""
    width, height = size
    limit = limits.max_pixels
    if Image.MAX_IMAGE_PIXELS is not None:
        limit = min(limit, Image.MAX_IMAGE_PIXELS)
    if width * height > limit:
        raise ImageRejected(
            "decompression_bomb",
            f"the image is {width}{_TIMES}{height} pixels ({width * height:,}), "
            f"more than the limit of {limit:,} pixels; downscale it before uploading",
        )


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate or flip as the EXIF Orientation tag says (a copy when there is nothing to do)."""
    try:
        return ImageOps.exif_transpose(image)
    # Unreadable EXIF must not cost the picture: it is then used as stored.
    except Exception:
        return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: alpha composited onto white, 16/32-bit and float scaled."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _wide_to_rgb(image)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    if mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageRejected(
            "corrupt", f"the image's colour mode {mode} cannot be converted to RGB ({exc})"
        ) from exc


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale to 8-bit RGB by scaling, never by clipping.

    16-bit values map to round(v / 257), so 0 -> 0, 257 -> 1, 32896 -> 128, 65535 -> 255.
    Mode I holding values within 0..65535 is treated as 16-bit; float within 0..1 is scaled by
    255; anything else is stretched from its own minimum and maximum to 0..255.
    """
    values = np.asarray(image).astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if image.mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif image.mode != "F" and low >= 0.0 and high <= 65535.0:
        scaled = values / 257.0
    elif high > low:
        scaled = (values - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(values)
    grey = np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[:, :, np.newaxis], 3, axis=2))
