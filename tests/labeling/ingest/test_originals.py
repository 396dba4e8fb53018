"""The stored original: data after the end, comments, GPS and markup in metadata removed."""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np
import pytest
from PIL import ExifTags, Image, TiffImagePlugin

from labeling.ingest.exif import ExifUnreadable, scrub_exif
from labeling.ingest.validation import ValidationLimits, validate_image

LIMITS = ValidationLimits(max_bytes=5_000_000, max_pixels=50_000_000)
SCRIPT = b"<script>alert(1)</script>"
GPS = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (51.0, 30.0, 0.0)}


def _picture(mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB").convert(mode)


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _camera_exif(*, text: str = "holiday") -> Image.Exif:
    """EXIF as a phone writes it: make, orientation, a description, a comment and GPS."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phone"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.ImageDescription] = text
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = (
        b"ASCII\x00\x00\x00" + text.encode()
    )
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    return exif


def _gps_tiff() -> bytes:
    """A TIFF carrying make, an Exif directory and a GPS directory (Pillow's own writer)."""
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[ExifTags.Base.Make] = "Scanner"
    tags[ExifTags.IFD.Exif] = {ExifTags.Base.ExposureTime: 0.01}
    tags[ExifTags.IFD.GPSInfo] = dict(GPS)
    return _encode(_picture(), "TIFF", tiffinfo=tags)


def _opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


CAMERA_FILES = {
    "jpeg": lambda: _encode(_picture(), "JPEG", quality=95, exif=_camera_exif()),
    "png": lambda: _encode(_picture(), "PNG", exif=_camera_exif()),
    "webp": lambda: _encode(_picture(), "WEBP", lossless=True, exif=_camera_exif()),
}


@pytest.mark.parametrize("make", CAMERA_FILES.values(), ids=CAMERA_FILES.keys())
def test_gps_is_dropped_and_the_rest_of_exif_kept(make) -> None:
    # given a phone picture with GPS in its EXIF
    data = make()
    assert _opened(data).getexif().get_ifd(ExifTags.IFD.GPSInfo) == GPS

    # when
    result = validate_image(data, LIMITS)

    # then the stored original has no GPS, but its make, orientation and comment remain
    stored = _opened(result.original).getexif()
    assert stored.get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert (stored[ExifTags.Base.Make], stored[ExifTags.Base.Orientation]) == ("Phone", 6)
    assert stored[ExifTags.Base.ImageDescription] == "holiday"
    assert len(result.original) == len(data)  # scrubbed in place, nothing else moved
    assert (result.width, result.height) == (20, 30)


@pytest.mark.parametrize("make", [*CAMERA_FILES.values(), _gps_tiff], ids=[*CAMERA_FILES, "tiff"])
def test_gps_is_kept_when_asked(make) -> None:
    # given a picture with GPS
    data = make()

    # when GPS is to be kept
    result = validate_image(data, LIMITS, keep_gps=True)

    # then it is in the stored original
    assert _opened(result.original).getexif().get_ifd(ExifTags.IFD.GPSInfo) == GPS


def test_tiff_is_rewritten_without_gps_but_with_its_exif() -> None:
    # given a TIFF with make, exposure time and GPS
    data = _gps_tiff()

    # when
    result = validate_image(data, LIMITS)

    # then
    stored = _opened(result.original).getexif()
    assert stored.get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert stored[ExifTags.Base.Make] == "Scanner"
    assert stored.get_ifd(ExifTags.IFD.Exif) == {ExifTags.Base.ExposureTime: 0.01}
    assert np.array_equal(np.asarray(_opened(result.original)), np.asarray(_picture()))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_script_in_exif_text_is_accepted_and_not_stored(fmt: str) -> None:
    # given a real picture whose EXIF description and user comment hold a script tag
    params: dict[str, Any] = {"quality": 95} if fmt == "JPEG" else {}
    data = _encode(_picture(), fmt, exif=_camera_exif(text=SCRIPT.decode()), **params)

    # when
    result = validate_image(data, LIMITS)

    # then it is accepted, and the stored copy keeps orientation but holds no script
    assert result.format == fmt
    assert b"<script" not in result.original.lower()
    stored = _opened(result.original).getexif()
    assert (stored[ExifTags.Base.Make], stored[ExifTags.Base.Orientation]) == ("Phone", 6)


def test_tiff_description_with_script_is_not_stored() -> None:
    # given a TIFF whose ImageDescription holds a script tag
    data = _encode(_picture(), "TIFF", description=SCRIPT.decode())

    # when
    result = validate_image(data, LIMITS)

    # then
    assert b"<script" not in result.original
    assert np.array_equal(np.asarray(_opened(result.original)), np.asarray(_picture()))


def _xmp_jpeg(xmp: bytes) -> bytes:
    jpeg = _encode(_picture(), "JPEG", quality=95)
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_xmp_is_dropped_unless_location_is_kept() -> None:
    # given a JPEG with an XMP packet giving a GPS position
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>51,30N</exif:GPSLatitude>'
    data = _xmp_jpeg(xmp)

    # when
    dropped = validate_image(data, LIMITS).original
    kept = validate_image(data, LIMITS, keep_gps=True).original

    # then
    assert (xmp in dropped, xmp in kept) == (False, True)
    assert dropped == _encode(_picture(), "JPEG", quality=95)


def test_xmp_with_script_is_dropped_even_when_location_is_kept() -> None:
    # given
    data = _xmp_jpeg(b"<x:xmpmeta><dc:description>" + SCRIPT + b"</dc:description>")

    # when
    result = validate_image(data, LIMITS, keep_gps=True)

    # then
    assert result.original == _encode(_picture(), "JPEG", quality=95)


def test_webp_xmp_is_dropped_and_its_flag_cleared() -> None:
    # given an extended WebP with EXIF and XMP chunks (VP8X flags say so)
    data = _encode(_picture(), "WEBP", lossless=True, exif=_camera_exif(), xmp=b"<x:xmpmeta/>")
    assert data[20] & 0x0C == 0x0C

    # when
    result = validate_image(data, LIMITS)

    # then the XMP chunk and flag are gone, the EXIF chunk and flag stay, and it decodes
    stored = result.original
    assert (b"XMP " in stored, stored[20] & 0x0C) == (False, 0x08)
    assert struct.unpack_from("<I", stored, 4)[0] == len(stored) - 8
    assert np.array_equal(np.asarray(_opened(stored)), np.asarray(_picture()))


def test_gif_comments_go_and_the_animation_stays() -> None:
    # given a looping two-frame GIF with a comment
    frames = [Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))]
    data = _encode(
        frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0, comment=SCRIPT
    )
    assert SCRIPT in data

    # when
    result = validate_image(data, LIMITS)

    # then
    stored = _opened(result.original)
    assert SCRIPT not in result.original
    assert (stored.n_frames, stored.info["loop"]) == (2, 0)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "1"])
def test_bmp_is_rewritten_with_the_same_pixels(mode: str) -> None:
    # given a BMP of each mode Pillow writes, with a script appended
    clean = _encode(_picture(mode), "BMP")

    # when
    result = validate_image(clean + SCRIPT, LIMITS)

    # then it decodes to what the upload decodes to (32-bit BMP is read as RGB)
    stored, uploaded = _opened(result.original), _opened(clean)
    assert SCRIPT not in result.original
    assert stored.mode == uploaded.mode
    assert np.array_equal(np.asarray(stored), np.asarray(uploaded))


def test_unreadable_exif_is_dropped_whole() -> None:
    # given a JPEG whose EXIF segment points outside itself
    jpeg = _encode(_picture(), "JPEG", quality=95)
    payload = b"Exif\x00\x00II*\x00\xff\xff\x00\x00"
    data = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]

    # when
    result = validate_image(data, LIMITS)

    # then GPS removal cannot be assured, so the segment goes
    assert result.original == jpeg


@pytest.mark.parametrize(
    "block",
    [b"", b"not a tiff", b"II*\x00\x08\x00\x00\x00\xff\xff", b"MM\x00*\x00\x00\x00\x08\x00"],
    ids=["empty", "text", "entries-past-end", "truncated-count"],
)
def test_scrub_exif_refuses_what_it_cannot_walk(block: bytes) -> None:
    with pytest.raises(ExifUnreadable):
        scrub_exif(block, keep_gps=False)


def test_comments_and_metadata_between_the_scans_of_a_progressive_jpeg_are_dropped() -> None:
    # given a progressive JPEG with a comment and a GPS-bearing EXIF block after its first scan
    data = _encode(_picture(), "JPEG", quality=95, progressive=True)
    second_scan = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    exif = b"Exif\x00\x00" + _camera_exif().tobytes()
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 14) + b"where I live 1"
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + len(exif)) + exif
    data = data[:second_scan] + comment + app1 + data[second_scan:]

    # when
    result = validate_image(data, LIMITS)

    # then neither is stored, and the picture is the same
    assert b"where I live" not in result.original
    assert b"Exif\x00\x00" not in result.original
    assert len(result.original) == len(data) - len(comment) - len(app1)
    assert np.array_equal(np.asarray(_opened(result.original)), np.asarray(_opened(data)))
