"""Validation of uploaded image bytes: what is accepted, and the clean 8-bit RGB image it yields.

Pure module (stdlib, Pillow, numpy; no Django). Refusals raise ``ImageRejected(code, message)``.
"""

from __future__ import annotations

import codecs
import re
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
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

# Markup or script a browser or interpreter would act on, searched in a lower-cased copy (several
# times faster than re.IGNORECASE). A tag name must end in whitespace, '/' or '>', as a browser
# needs, which keeps random bytes in compressed pixel data from matching by chance.
_MARKUP_TAG = re.compile(rb"<(?:script|html|svg|iframe|body)[\s/>]|<\?php\s")
_SCRIPT_URL = re.compile(rb"javascript:")
# A ZIP local file header or end-of-central-directory record. A bare 4-byte signature turns up
# by chance in a few photos per thousand, so the fields after it must make sense too: version
# needed <= 6.3 and a known compression method; a single-disk archive with equal entry counts.
_ZIP_RECORD = re.compile(
    rb"PK\x03\x04[\x00-\x3f]\x00..[\x00\x01\x06\x08\x09\x0c\x0e\x13\x5d\x5f\x61-\x63]\x00"
    rb"|PK\x05\x06\x00\x00\x00\x00(..)\1",
    re.DOTALL,
)
# A marker in JPEG data: 0xFF followed by anything but stuffing (0x00), restart markers
# (0xD0-0xD7, which live inside entropy-coded data) or fill bytes (0xFF).
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
# Up to this many bytes of NUL, 0xFF or whitespace may follow a PNG or JPEG end (some encoders
# pad to a word or sector boundary); anything longer or anything else is a smuggled payload.
_MAX_PADDING = 16
_TIMES = "\N{MULTIPLICATION SIGN}"
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_PADDING = re.compile(rb"[\x00\xff\s]*")

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
    the decoded first frame as a fresh 8-bit RGB image without EXIF, ICC or other metadata."""

    format: str
    width: int
    height: int
    image: Image.Image


def validate_image(data: bytes, limits: ValidationLimits) -> ValidatedImage:
    """Check uploaded bytes and decode them to a clean RGB image, or raise ImageRejected."""
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
    _refuse_polyglot(data, fmt)
    decoded = _decode_first_frame(data, fmt, limits)
    rgb = _to_rgb(_apply_orientation(decoded))
    # A fresh image with the pixels pasted in carries no info dict, EXIF, ICC or XMP.
    clean = Image.new("RGB", rgb.size)
    clean.paste(rgb)
    return ValidatedImage(format=fmt, width=clean.width, height=clean.height, image=clean)


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


def _refuse_polyglot(data: bytes, fmt: str) -> None:
    """Raise polyglot for embedded markup or ZIP data, or for bytes after a PNG/JPEG/WebP end
    (corrupt when that end is missing)."""
    markup = _find_markup(data)
    if markup is not None:
        start, found = markup
        raise ImageRejected(
            "polyglot",
            f"the file contains {found!r} at byte {start:,}: images with embedded "
            "markup or script are refused; re-export the picture from an image editor",
        )
    if _ZIP_RECORD.search(data) is not None:
        raise ImageRejected(
            "polyglot",
            "the file has a ZIP archive embedded in it; upload the picture alone, "
            "re-exported from an image editor",
        )
    end = _image_end(data, fmt)
    if end is None:
        raise ImageRejected(
            "corrupt",
            f"the {_DISPLAY_NAMES[fmt]} file ends before its end marker; it is truncated or "
            "damaged, upload the complete file",
        )
    trailing = data[end:]
    if len(trailing) > _MAX_PADDING or not _PADDING.fullmatch(trailing):
        raise ImageRejected(
            "polyglot",
            f"{len(trailing):,} bytes of other data follow the end of the "
            f"{_DISPLAY_NAMES[fmt]} image; re-export the picture from an image editor",
        )


def _find_markup(data: bytes) -> tuple[int, str] | None:
    """Offset and text, as written, of the first markup or script marker, case-insensitively."""
    lowered = data.lower()
    found = [m for m in (_MARKUP_TAG.search(lowered), _SCRIPT_URL.search(lowered)) if m]
    if not found:
        return None
    first = min(found, key=lambda match: match.start())
    return first.start(), data[first.start() : first.end()].decode("ascii").rstrip()


def _image_end(data: bytes, fmt: str) -> int | None:
    """Offset just past the image's own data for PNG, JPEG and WebP (None when it never ends);
    len(data) for the formats whose end is not checked."""
    if fmt == "PNG":
        return _png_end(data)
    if fmt == "JPEG":
        end = _jpeg_end(data, 0)
        # Multi-picture (MPO) camera files are several complete JPEG streams back to back.
        while end is not None and data.startswith(b"\xff\xd8\xff", end):
            end = _jpeg_end(data, end)
        return end
    if fmt == "WEBP":
        (riff_size,) = struct.unpack_from("<I", data, 4)
        end = 8 + riff_size + (riff_size & 1)
        return end if end <= len(data) else None
    return len(data)


def _png_end(data: bytes) -> int | None:
    """Offset just past the IEND chunk, walking chunk lengths from the signature."""
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        chunk_type = data[pos + 4 : pos + 8]
        pos += 12 + length
        if chunk_type == b"IEND":
            return pos if pos <= len(data) else None
    return None


def _jpeg_end(data: bytes, start: int) -> int | None:
    """Offset just past the EOI marker of the JPEG stream starting at start (SOI there).

    Segments are skipped by their length, so an EXIF thumbnail's own EOI does not end the
    walk; entropy-coded data after SOS is skipped to the next real marker.
    """
    pos = start + 2
    while True:
        marker = _JPEG_MARKER.search(data, pos)
        if marker is None:
            return None
        code = data[marker.end() - 1]
        pos = marker.end()
        if code == 0xD9:
            return pos
        if code in _JPEG_STANDALONE:
            continue
        if pos + 2 > len(data):
            return None
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            return None
        pos += length


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
