"""validate_image: what is accepted, what is refused and why, and the clean RGB image it yields.

All test material is generated here with Pillow, zipfile and hand-built PNG/GIF chunks.
"""

from __future__ import annotations

import gzip
import io
import struct
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import ExifTags, Image, PngImagePlugin

from labeling.ingest.validation import (
    ImageRejected,
    ValidatedImage,
    ValidationLimits,
    validate_image,
)

LIMITS = ValidationLimits(max_bytes=5_000_000, max_pixels=50_000_000)
ACCEPTED = "only raster images are accepted: JPEG, PNG, WebP, GIF, BMP, TIFF"
TIMES = "\N{MULTIPLICATION SIGN}"
HTML_PAYLOAD = b"<html><script>alert(1)</script></html>"


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _solid(color: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (24, 16)) -> bytes:
    return _encode(Image.new("RGB", size, color), "PNG")


def _jpeg(size: tuple[int, int] = (24, 16), **params: Any) -> bytes:
    return _encode(Image.new("RGB", size, (200, 40, 40)), "JPEG", quality=95, **params)


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("payload.jar", b"malicious class files " * 20)
    return buffer.getvalue()


def _rejection(data: bytes, limits: ValidationLimits = LIMITS) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        validate_image(data, limits)
    return caught.value


def _pixels(result: ValidatedImage) -> list[list[tuple[int, int, int]]]:
    return [[tuple(px) for px in row] for row in np.asarray(result.image).tolist()]


def _near(actual: object, expected: tuple[int, ...], tolerance: int = 8) -> bool:
    """True when a getpixel() result is within tolerance of expected on every channel."""
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    """A greyscale PNG whose IHDR claims width x height but whose IDAT holds only 4 rows."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def _gif_with_frame(width: int, height: int) -> bytes:
    """A GIF with a 10x10 screen whose first frame claims width x height."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0x80, 0, 0) + b"\x00" * 6
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame + b";"


def test_empty_file_is_rejected() -> None:
    # given / when
    rejected = _rejection(b"")

    # then
    assert (rejected.code, rejected.message, str(rejected)) == (
        "empty",
        "the file is empty",
        "the file is empty",
    )


def test_size_cap_is_checked_before_anything_else() -> None:
    # given an SVG one byte over the cap
    data = b"<svg" + b" " * 97
    limits = ValidationLimits(max_bytes=100, max_pixels=1_000)

    # when
    rejected = _rejection(data, limits)

    # then the size, not the content, is the reason
    assert rejected.code == "too_large"
    assert rejected.message == (
        "the file is 101 bytes, more than the limit of 100 bytes; "
        "resize or recompress it before uploading"
    )


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "an SVG document"),
        (b"  <SVG width='10'></SVG>", "an SVG document"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "an HTML document"),
        (b"<!-- saved page -->\n<html><head></head></html>", "an HTML document"),
        (b'<?xml version="1.0"?><feed/>', "an XML document"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (b"#!/bin/sh\nrm -rf /\n", "a script"),
        (b"<?php system($_GET['c']); ?>", "a PHP script"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 60, "a program"),
        (b"MZ\x90\x00\x03" + b"\x00" * 60, "a program"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "a HEIC image"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "an AVIF image"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2", "a video"),
        (gzip.compress(b"hello"), "a gzip archive"),
        (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 20, "a RAR archive"),
        (b"8BPS\x00\x01" + b"\x00" * 40, "a Photoshop document"),
        ("a note: café ☕\n".encode(), "a text file"),
    ],
)
def test_recognisable_non_images_are_named(data: bytes, looks_like: str) -> None:
    # given / when
    rejected = _rejection(data)

    # then
    assert rejected.code == "not_an_image"
    assert rejected.message == f"looks like {looks_like}; {ACCEPTED}"


def test_zip_upload_is_named() -> None:
    # given / when
    rejected = _rejection(_zip_bytes())

    # then
    assert (rejected.code, rejected.message) == (
        "not_an_image",
        f"looks like a ZIP archive; {ACCEPTED}",
    )


def test_unrecognised_binary_is_not_an_image() -> None:
    # given bytes with control characters and no known signature
    data = bytes(range(256)) * 4

    # when
    rejected = _rejection(data)

    # then
    assert (rejected.code, rejected.message) == (
        "not_an_image",
        f"the file is not a recognised image; {ACCEPTED}",
    )


def test_bm_prefix_without_a_bitmap_header_is_not_a_bmp() -> None:
    # given text that happens to start with "BM"
    data = b"BMW 320i service history\n" * 3

    # when
    rejected = _rejection(data)

    # then
    assert (rejected.code, rejected.message) == (
        "not_an_image",
        f"looks like a text file; {ACCEPTED}",
    )


def test_format_outside_allowed_set_is_refused() -> None:
    # given limits that only take PNG and WebP
    limits = ValidationLimits(
        max_bytes=1_000_000, max_pixels=1_000_000, allowed_formats=frozenset({"PNG", "WEBP"})
    )

    # when
    rejected = _rejection(_jpeg(), limits)

    # then
    assert rejected.code == "format_not_allowed"
    assert rejected.message == "JPEG images are not accepted here; accepted formats: PNG, WebP"


def test_not_an_image_message_lists_only_allowed_formats() -> None:
    # given
    limits = ValidationLimits(
        max_bytes=1_000_000, max_pixels=1_000_000, allowed_formats=frozenset({"PNG", "JPEG"})
    )

    # when
    rejected = _rejection(b"%PDF-1.4\n", limits)

    # then
    assert (
        rejected.message == "looks like a PDF document; only raster images are accepted: JPEG, PNG"
    )


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("PNG", {}),
        ("GIF", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
    ],
)
def test_lossless_formats_decode_to_exact_rgb(fmt: str, params: dict[str, Any]) -> None:
    # given a 24x16 solid image in that format
    data = _encode(Image.new("RGB", (24, 16), (10, 200, 30)), fmt, **params)

    # when
    result = validate_image(data, LIMITS)

    # then
    assert (result.format, result.width, result.height) == (fmt, 24, 16)
    assert (result.image.mode, result.image.size, result.image.info) == ("RGB", (24, 16), {})
    assert {px for row in _pixels(result) for px in row} == {(10, 200, 30)}


def test_jpeg_decodes_to_rgb_close_to_source() -> None:
    # given / when
    result = validate_image(_jpeg((40, 30)), LIMITS)

    # then
    assert (result.format, result.width, result.height, result.image.mode) == (
        "JPEG",
        40,
        30,
        "RGB",
    )
    assert _near(result.image.getpixel((20, 15)), (200, 40, 40))


def test_exif_orientation_is_applied_and_all_metadata_dropped() -> None:
    # given a 64x32 JPEG, blue with a red 16x16 block top-left, tagged "rotate 90° clockwise"
    # and carrying a GPS position
    stored = Image.new("RGB", (64, 32), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 16, 16))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 0.0)
    data = _encode(stored, "JPEG", quality=95, subsampling=0, exif=exif, icc_profile=b"x" * 64)

    # when
    result = validate_image(data, LIMITS)

    # then width and height are swapped and the red block is now top-right
    assert (result.width, result.height, result.image.size) == (32, 64, (32, 64))
    assert _near(result.image.getpixel((24, 8)), (255, 0, 0))
    assert _near(result.image.getpixel((8, 8)), (0, 0, 255))
    assert _near(result.image.getpixel((24, 56)), (0, 0, 255))
    # and nothing of the original metadata is attached
    assert result.image.info == {}
    assert dict(result.image.getexif()) == {}


def test_cmyk_jpeg_is_converted_with_adobe_inversion() -> None:
    # given a CMYK JPEG of pure red (no cyan, full magenta and yellow)
    data = _encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)

    # when
    result = validate_image(data, LIMITS)

    # then
    assert result.image.mode == "RGB"
    assert _near(result.image.getpixel((8, 8)), (255, 0, 0))


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    # given a 16-bit greyscale PNG (mode I;16) with known values
    values = [0, 255, 257, 1000, 32896, 65535]
    data = _encode(Image.fromarray(np.array([values], dtype=np.uint16)), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"

    # when
    result = validate_image(data, LIMITS)

    # then each value maps to round(v / 257), equal on all three channels
    assert _pixels(result) == [[(v, v, v) for v in (0, 1, 1, 4, 128, 255)]]


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[0, 257, 65535]], dtype=">u2"), [0, 1, 255]),
        (np.array([[0, 257, 65535]], dtype=np.int32), [0, 1, 255]),
        (np.array([[0, 100_000, 200_000]], dtype=np.int32), [0, 128, 255]),
        (np.array([[0.0, 0.5, 1.0]], dtype=np.float32), [0, 128, 255]),
        (np.array([[-1.0, 0.0, 3.0]], dtype=np.float32), [0, 64, 255]),
    ],
)
def test_wide_tiff_modes_are_scaled_to_eight_bits(array: np.ndarray, expected: list[int]) -> None:
    # given a TIFF of 16-bit big-endian, 32-bit integer or float samples
    data = _encode(Image.fromarray(array), "TIFF")

    # when
    result = validate_image(data, LIMITS)

    # then
    assert _pixels(result) == [[(v, v, v) for v in expected]]


@pytest.mark.parametrize(
    ("mode", "color", "expected"),
    [
        ("1", 1, (255, 255, 255)),
        ("L", 100, (100, 100, 100)),
        ("LA", (100, 0), (255, 255, 255)),
        ("LA", (100, 255), (100, 100, 100)),
        ("RGBA", (255, 0, 0, 128), (255, 127, 127)),
        ("RGBA", (255, 0, 0, 0), (255, 255, 255)),
    ],
)
def test_modes_convert_to_rgb_with_alpha_on_white(
    mode: str, color: int | tuple[int, ...], expected: tuple[int, int, int]
) -> None:
    # given a PNG in that mode
    data = _encode(Image.new(mode, (4, 4), color), "PNG")

    # when
    result = validate_image(data, LIMITS)

    # then
    assert result.image.mode == "RGB"
    assert result.image.getpixel((2, 2)) == expected


def test_palette_png_transparency_becomes_white() -> None:
    # given a 4x2 palette PNG: index 0 (red) is transparent on the left, index 1 (green) right
    image = Image.new("P", (4, 2), 0)
    image.putpalette([255, 0, 0, 0, 255, 0])
    image.paste(1, (2, 0, 4, 2))
    data = _encode(image, "PNG", transparency=0)

    # when
    result = validate_image(data, LIMITS)

    # then
    white, green = (255, 255, 255), (0, 255, 0)
    assert _pixels(result) == [[white, white, green, green]] * 2


def test_animated_gif_yields_its_first_frame() -> None:
    # given a GIF whose first frame is red and second blue
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)

    # when
    result = validate_image(data, LIMITS)

    # then
    assert (result.format, result.image.getpixel((4, 4))) == ("GIF", (255, 0, 0))


def test_multi_page_tiff_yields_its_first_page() -> None:
    # given a two-page TIFF, green then blue
    pages = [Image.new("RGB", (8, 8), c) for c in ((0, 255, 0), (0, 0, 255))]
    data = _encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])

    # when
    result = validate_image(data, LIMITS)

    # then
    assert (result.format, result.image.getpixel((4, 4))) == ("TIFF", (0, 255, 0))


def test_animated_webp_yields_its_first_frame() -> None:
    # given
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)

    # when
    result = validate_image(data, LIMITS)

    # then
    assert (result.format, result.image.getpixel((4, 4))) == ("WEBP", (255, 0, 0))


def test_png_metadata_is_not_carried_over() -> None:
    # given a PNG with a text chunk and an ICC profile
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at home")
    data = _encode(Image.new("RGB", (4, 4)), "PNG", pnginfo=info, icc_profile=b"p" * 64)

    # when
    result = validate_image(data, LIMITS)

    # then
    assert result.image.info == {}


def test_jpeg_with_embedded_thumbnail_segment_is_accepted() -> None:
    # given a JPEG with a whole second JPEG (ending in FFD9) inside an APP1 segment
    thumbnail = _jpeg((8, 8))
    outer = _jpeg()
    segment = b"\xff\xe1" + struct.pack(">H", len(thumbnail) + 8) + b"Exif\x00\x00" + thumbnail
    data = outer[:2] + segment + outer[2:]

    # when
    result = validate_image(data, LIMITS)

    # then
    assert (result.format, result.width, result.height) == ("JPEG", 24, 16)


def test_back_to_back_jpeg_streams_are_stored_as_the_first_picture() -> None:
    # given two complete JPEG streams in a row, as in camera MPO files
    first = _jpeg((24, 16))

    # when
    result = validate_image(first + _jpeg((12, 8)), LIMITS)

    # then only the picture that is used is stored
    assert result.original == first


def test_padding_after_the_end_is_cut_from_the_original() -> None:
    # given a JPEG padded with 4 NUL bytes and a PNG with a trailing newline
    jpeg, png = _jpeg(), _solid()

    # when
    results = [validate_image(data, LIMITS) for data in (jpeg + b"\x00" * 4, png + b"\n")]

    # then both are accepted and stored as they were before the padding
    assert [(r.format, r.original) for r in results] == [("JPEG", jpeg), ("PNG", png)]


@pytest.mark.parametrize(
    ("image_bytes", "payload"),
    [
        (_jpeg(), HTML_PAYLOAD),
        (_jpeg(), b"<ScRiPt src=//evil.example>"),
        (_solid(), b"<?php system($_GET['c']);"),
        (_encode(Image.new("RGB", (8, 8)), "GIF"), b"<iframe src=x>"),
        (_encode(Image.new("RGB", (8, 8)), "WEBP", lossless=True), b"javascript:alert(1)"),
        (_jpeg(), _zip_bytes()),
        (_solid(), _zip_bytes()),
        (_encode(Image.new("RGB", (8, 8)), "GIF"), _zip_bytes()),
        (_jpeg(), b"\x00" * 17),
        (_solid(), b"trailing-data-here-xyz123"),
    ],
    ids=[
        "html",
        "script",
        "php",
        "iframe",
        "javascript",
        "zip-jpeg",
        "zip-png",
        "zip-gif",
        "padding",
        "text",
    ],
)
def test_data_after_the_end_is_cut_from_the_original(image_bytes: bytes, payload: bytes) -> None:
    # given a picture with markup, a ZIP archive or other data appended after its end
    data = image_bytes + payload

    # when
    result = validate_image(data, LIMITS)

    # then the picture is accepted and stored without what followed its end
    assert result.original == image_bytes


def _markup_png() -> bytes:
    """A one-row greyscale PNG stored without compression: its IDAT holds the row verbatim."""
    ihdr = struct.pack(">IIBBBBB", len(HTML_PAYLOAD), 1, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" + HTML_PAYLOAD, level=0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def _markup_bmp() -> bytes:
    # an 8-bit BMP whose only row of pixel values spells out the payload
    row = np.frombuffer(HTML_PAYLOAD + b" " * 2, dtype=np.uint8).reshape(1, -1)
    return _encode(Image.fromarray(row, "L"), "BMP")


@pytest.mark.parametrize("make", [_markup_png, _markup_bmp], ids=["png", "bmp"])
def test_markup_in_the_pixel_data_is_a_polyglot(make) -> None:
    # given a picture whose own pixel bytes are an HTML document
    data = make()
    assert HTML_PAYLOAD in data

    # when
    rejected = _rejection(data)

    # then
    assert (rejected.code, rejected.message) == (
        "polyglot",
        "the image data contains '<html>': images with embedded markup or script are "
        "refused; re-export the picture from an image editor",
    )


def test_markup_in_a_jpeg_comment_is_dropped() -> None:
    # given a JPEG whose COM segment holds an SVG tag
    data = _jpeg(comment=b"<svg onload=alert(1)>")

    # when
    result = validate_image(data, LIMITS)

    # then it is accepted, stored without its comment
    assert result.original == _jpeg()


def test_png_text_chunks_are_dropped() -> None:
    # given a PNG with a script URL in one text chunk and a plain comment in another
    info = PngImagePlugin.PngInfo()
    info.add_text("Source", "javascript:alert(document.cookie)")
    info.add_itxt("Comment", "taken at home")
    data = _encode(Image.new("RGB", (4, 4)), "PNG", pnginfo=info)

    # when
    result = validate_image(data, LIMITS)

    # then both are gone from the stored original
    assert result.original == _encode(Image.new("RGB", (4, 4)), "PNG")


def test_huge_declared_png_is_a_bomb_refused_without_decoding() -> None:
    # given a PNG whose header claims 30000x30000 (900 megapixels) with only 4 rows of data
    data = _png_claiming(30_000, 30_000)

    # when Pillow would warn or raise, that is an error here
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rejected = _rejection(data)

    # then
    assert rejected.code == "decompression_bomb"
    assert rejected.message == (
        f"the image is 30000{TIMES}30000 pixels (900,000,000), more than the limit of "
        "50,000,000 pixels; downscale it before uploading"
    )


def test_pillow_pixel_limit_applies_when_lower_than_ours() -> None:
    # given limits far above Pillow's own MAX_IMAGE_PIXELS
    limits = ValidationLimits(max_bytes=5_000_000, max_pixels=10**12)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485

    # when
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rejected = _rejection(_png_claiming(30_000, 30_000), limits)

    # then
    assert rejected.code == "decompression_bomb"
    assert "more than the limit of 89,478,485 pixels" in rejected.message


@pytest.mark.parametrize(
    "side",
    [10_000, 20_000],
    ids=["pillow-warning", "pillow-error"],
)
def test_gif_frame_bigger_than_its_screen_is_a_bomb(side: int) -> None:
    # given a GIF with a 10x10 screen whose first frame claims side x side; Pillow grows the
    # image to the frame while opening and warns (100 Mpx) or raises (400 Mpx)
    data = _gif_with_frame(side, side)

    # when
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rejected = _rejection(data)

    # then
    assert rejected.code == "decompression_bomb"
    assert rejected.message.startswith(
        "the image declares more pixels than can be safely decoded (Image size "
        f"({side * side} pixels) exceeds limit of "
    )
    assert rejected.message.endswith("; downscale it before uploading")


def test_image_within_pixel_limit_but_over_a_lower_one_is_refused() -> None:
    # given a real 200x100 PNG and a 10,000-pixel limit
    limits = ValidationLimits(max_bytes=1_000_000, max_pixels=10_000)

    # when
    rejected = _rejection(_solid(size=(200, 100)), limits)

    # then
    assert (rejected.code, rejected.message) == (
        "decompression_bomb",
        f"the image is 200{TIMES}100 pixels (20,000), more than the limit of 10,000 pixels; "
        "downscale it before uploading",
    )


@pytest.mark.parametrize(("make", "name"), [(_jpeg, "JPEG"), (_solid, "PNG")])
def test_truncated_file_is_corrupt(make: Any, name: str) -> None:
    # given the first half of a file
    whole = make(size=(64, 64))
    data = whole[: len(whole) // 2]

    # when
    rejected = _rejection(data)

    # then
    assert (rejected.code, rejected.message) == (
        "corrupt",
        f"the {name} file ends before its end marker; it is truncated or damaged, "
        "upload the complete file",
    )


def test_png_with_damaged_pixel_data_is_corrupt() -> None:
    # given a PNG whose IDAT CRC no longer matches
    data = bytearray(_solid(size=(64, 64)))
    data[data.index(b"IDAT") + 6] ^= 0xFF

    # when
    rejected = _rejection(bytes(data))

    # then
    assert rejected.code == "corrupt"
    assert rejected.message == (
        "the PNG file could not be decoded (broken PNG file (bad header checksum in b'IDAT')); "
        "it is damaged or truncated, upload the complete file"
    )


def test_bitmap_signature_with_garbage_header_is_corrupt() -> None:
    # given "BM" and a valid-looking DIB header size followed by nonsense
    data = b"BM" + struct.pack("<IHHII", 100, 0, 0, 54, 40) + b"\xff" * 40

    # when
    rejected = _rejection(data)

    # then
    assert rejected.code == "corrupt"
    assert rejected.message.startswith("the BMP file could not be decoded (")


def _bmp_with_zero_width() -> bytes:
    data = bytearray(_encode(Image.new("RGB", (4, 4)), "BMP"))
    data[18:22] = b"\x00\x00\x00\x00"
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "fmt"), [(_bmp_with_zero_width(), "BMP"), (_png_claiming(0, 16), "PNG")]
)
def test_zero_size_image_is_corrupt(data: bytes, fmt: str) -> None:
    # given a file whose header declares a width of 0

    # when
    rejected = _rejection(data)

    # then
    assert rejected.code == "corrupt"
    assert rejected.message.startswith(f"the {fmt} file could not be decoded (")
