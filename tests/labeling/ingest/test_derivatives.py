"""make_derivatives: sizes of the thumbnail and training copy, JPEG output, no metadata."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from labeling.ingest.derivatives import make_derivatives
from labeling.ingest.validation import ValidationLimits, validate_image


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 0.0)
    return exif


def _assert_no_metadata(image: Image.Image) -> None:
    assert "exif" not in image.info
    assert "icc_profile" not in image.info
    assert "comment" not in image.info
    assert dict(image.getexif()) == {}
    assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}


@pytest.mark.parametrize(
    ("size", "thumbnail_size", "train_size"),
    [
        ((1000, 500), (256, 128), (512, 256)),
        ((300, 900), (85, 256), (256, 768)),
        ((257, 1000), (66, 256), (256, 996)),
        ((256, 256), (256, 256), (256, 256)),
        ((100, 50), (100, 50), (100, 50)),
        ((4000, 3000), (256, 192), (341, 256)),
    ],
)
def test_sizes_keep_aspect_and_never_upscale(
    size: tuple[int, int], thumbnail_size: tuple[int, int], train_size: tuple[int, int]
) -> None:
    # given
    image = Image.new("RGB", size, (30, 90, 150))

    # when
    derivatives = make_derivatives(image)

    # then
    thumbnail, train = _decode(derivatives.thumbnail), _decode(derivatives.train)
    assert (thumbnail.format, thumbnail.mode, thumbnail.size) == ("JPEG", "RGB", thumbnail_size)
    assert (train.format, train.mode, train.size) == ("JPEG", "RGB", train_size)


def test_custom_sizes_are_honoured() -> None:
    # given
    image = Image.new("RGB", (800, 600))

    # when
    derivatives = make_derivatives(image, thumb_size=64, train_size=128, quality=70)

    # then
    assert _decode(derivatives.thumbnail).size == (64, 48)
    assert _decode(derivatives.train).size == (171, 128)


def test_thumbnail_larger_than_the_training_copy_comes_from_the_original() -> None:
    # given a training size below the thumbnail size
    image = Image.new("RGB", (1000, 500))

    # when
    derivatives = make_derivatives(image, thumb_size=256, train_size=64)

    # then the thumbnail is not an upscaled training copy
    assert _decode(derivatives.thumbnail).size == (256, 128)
    assert _decode(derivatives.train).size == (128, 64)


def test_preview_is_the_decoded_thumbnail() -> None:
    # given
    image = Image.new("RGB", (900, 600), (10, 20, 30))

    # when
    derivatives = make_derivatives(image)

    # then
    assert (derivatives.preview.mode, derivatives.preview.size) == ("RGB", (256, 171))
    assert _decode(derivatives.thumbnail).size == (256, 171)


def test_colour_survives_the_resize() -> None:
    # given a solid orange image
    image = Image.new("RGB", (600, 400), (240, 140, 20))

    # when
    derivatives = make_derivatives(image)

    # then
    for data in (derivatives.thumbnail, derivatives.train):
        pixel = _decode(data).getpixel((40, 40))
        assert isinstance(pixel, tuple)
        assert all(abs(a - e) <= 4 for a, e in zip(pixel, (240, 140, 20), strict=True))


@pytest.mark.parametrize(
    ("mode", "color"), [("RGBA", (10, 20, 30, 255)), ("L", 128), ("P", 3), ("CMYK", (0, 0, 0, 0))]
)
def test_any_input_mode_gives_rgb_jpeg(mode: str, color: int | tuple[int, ...]) -> None:
    # given
    image = Image.new(mode, (300, 300), color)

    # when
    derivatives = make_derivatives(image)

    # then
    assert _decode(derivatives.thumbnail).mode == "RGB"
    assert _decode(derivatives.train).mode == "RGB"


def test_metadata_on_the_input_never_reaches_the_outputs() -> None:
    # given an image whose info carries EXIF with GPS, an ICC profile and a comment
    image = Image.new("RGB", (512, 512), (200, 200, 200))
    image.info.update({"exif": _gps_exif().tobytes(), "icc_profile": b"i" * 64, "comment": b"home"})

    # when
    derivatives = make_derivatives(image)

    # then
    _assert_no_metadata(_decode(derivatives.thumbnail))
    _assert_no_metadata(_decode(derivatives.train))
    # and the caller's image is left as it was
    assert set(image.info) == {"exif", "icc_profile", "comment"}


def test_validated_phone_photo_loses_its_gps_position() -> None:
    # given a JPEG straight from a phone, with GPS in its EXIF
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 120, 60)).save(buffer, "JPEG", exif=_gps_exif())
    assert _decode(buffer.getvalue()).getexif().get_ifd(ExifTags.IFD.GPSInfo) != {}
    validated = validate_image(
        buffer.getvalue(), ValidationLimits(max_bytes=1_000_000, max_pixels=1_000_000)
    )

    # when
    derivatives = make_derivatives(validated.image)

    # then
    _assert_no_metadata(_decode(derivatives.thumbnail))
    _assert_no_metadata(_decode(derivatives.train))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thumb_size": 0}, "sizes must be at least 1 pixel, got thumb_size=0 train_size=256"),
        ({"train_size": -5}, "sizes must be at least 1 pixel, got thumb_size=256 train_size=-5"),
        ({"quality": 0}, "JPEG quality must be between 1 and 95, got 0"),
        ({"quality": 100}, "JPEG quality must be between 1 and 95, got 100"),
    ],
)
def test_invalid_arguments_are_refused(kwargs: dict[str, int], message: str) -> None:
    # given
    image = Image.new("RGB", (10, 10))

    # when / then
    with pytest.raises(ValueError) as caught:
        make_derivatives(image, **kwargs)
    assert str(caught.value) == message
