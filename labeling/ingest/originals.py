"""The stored original of an accepted upload: the picture as uploaded, less what must not be
kept or served (data after its end, comments, GPS, markup in metadata).

Pure module (Pillow only; no Django). JPEG, PNG, WebP and GIF are rewritten block by block
(see containers); BMP and TIFF are written again from their decoded pixels, losslessly:

* BMP: its size fields (bfSize, biSizeImage) are often 0 or wrong, so they cannot say where the
  picture ends; writing the decoded pixels again as an uncompressed BMP keeps every pixel
  value, and BMP carries no metadata worth keeping.
* TIFF: strips, tiles and tag values may lie anywhere in the file, so nothing marks an end,
  and any gap can hold a payload; the first frame is written again with deflate (lossless),
  keeping orientation, resolution, the ICC profile and the usual camera tags. When there is
  an Exif (or, with keep_gps, GPS) directory to carry it is written uncompressed instead:
  libtiff, which Pillow uses for compression, cannot write sub-directories. Pillow turns a
  TIFF upright as it decodes it (and drops its Orientation tag), so it is stored upright.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from PIL import Image, TiffImagePlugin

from labeling.ingest.containers import REWRITERS
from labeling.ingest.exif import EXIF_IFD, GPS_IFD
from labeling.ingest.markup import is_hostile

REENCODED = frozenset({"BMP", "TIFF"})
# IFD0 tags a rewritten TIFF keeps: orientation, resolution, and who made it and when.
_TIFF_TAGS = (0x0112, 0x011A, 0x011B, 0x0128, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298)


class OriginalUnstorable(ValueError):
    """The picture decodes but cannot be written again in its own format."""


def rewritten_original(data: bytes, fmt: str, *, keep_gps: bool) -> bytes | None:
    """A JPEG, PNG, WebP or GIF file as stored; None when it never reaches its end marker."""
    return REWRITERS[fmt](data, keep_gps)


def reencoded_original(frame: Image.Image, fmt: str, *, keep_gps: bool) -> bytes:
    """A decoded BMP or TIFF first frame written again losslessly in its own format."""
    pixels = frame.copy()  # a plain Image: no TIFF tags or info dict ride along
    pixels.info = {}
    buffer = BytesIO()
    try:
        if fmt == "BMP":
            dpi = frame.info.get("dpi")
            pixels.save(buffer, "BMP", **({"dpi": dpi} if dpi else {}))
        else:
            _save_tiff(pixels, frame, buffer, keep_gps)
    # Pillow raises several types for a mode or tag it cannot write.
    except Exception as exc:
        raise OriginalUnstorable(str(exc)) from exc
    return buffer.getvalue()


def _save_tiff(pixels: Image.Image, frame: Image.Image, buffer: BytesIO, keep_gps: bool) -> None:
    """Write pixels as TIFF with the metadata of frame worth keeping."""
    source = frame.getexif()
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    for tag in _TIFF_TAGS:
        if tag in source and not _hostile_value(source[tag]):
            tags[tag] = source[tag]
    directories = {EXIF_IFD: _clean_directory(source.get_ifd(EXIF_IFD))}
    if keep_gps:
        directories[GPS_IFD] = _clean_directory(source.get_ifd(GPS_IFD))
    for tag, values in directories.items():
        if values:
            tags[tag] = values
    options: dict[str, Any] = {"tiffinfo": tags}
    if "icc_profile" in frame.info:
        options["icc_profile"] = frame.info["icc_profile"]
    if not any(directories.values()):
        options["compression"] = "tiff_adobe_deflate"
    pixels.save(buffer, "TIFF", **options)


def _clean_directory(values: dict[int, object]) -> dict[int, object]:
    """An EXIF directory less its nested directories and values holding markup."""
    return {
        tag: value
        for tag, value in values.items()
        if not isinstance(value, dict) and not _hostile_value(value)
    }


def _hostile_value(value: object) -> bool:
    if isinstance(value, str):
        return is_hostile(value.encode("utf-8", "replace"))
    if isinstance(value, bytes):
        return is_hostile(value)
    if isinstance(value, tuple):
        return any(_hostile_value(item) for item in value)
    return False
