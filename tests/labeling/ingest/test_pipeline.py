"""ordered_map and prepare_image."""

from __future__ import annotations

import hashlib
import threading

import pytest

from labeling.ingest.pipeline import IngestConfig, Prepared, Rejection, ordered_map, prepare_image
from labeling.ingest.validation import ValidationLimits
from tests.factories import image_bytes

CONFIG = IngestConfig(validation=ValidationLimits(max_bytes=10**7, max_pixels=10**7))


def test_ordered_map_keeps_order_and_bounds_what_it_reads_ahead():
    read: list[int] = []
    lock = threading.Lock()

    def source():
        for value in range(50):
            with lock:
                read.append(value)
            yield value

    results = []
    for value in ordered_map(lambda x: x * x, source(), workers=2, window=4):
        results.append(value)
        with lock:
            assert len(read) - len(results) <= 4  # never more than the window in flight

    assert results == [x * x for x in range(50)]


def test_ordered_map_returns_items_already_read_when_the_input_fails():
    def source():
        yield 1
        yield 2
        raise OSError("archive broke")

    seen = []
    with pytest.raises(OSError, match="archive broke"):
        for value in ordered_map(lambda x: x + 10, source(), workers=2, window=8):
            seen.append(value)

    assert seen == [11, 12]


def test_prepare_image_gives_everything_storage_needs():
    data = image_bytes(1, size=(640, 480))

    prepared = prepare_image("a.jpg", data, CONFIG)

    assert isinstance(prepared, Prepared)
    assert (prepared.format, prepared.width, prepared.height, prepared.extension) == (
        "JPEG",
        640,
        480,
        "jpg",
    )
    assert prepared.derivatives.preview.size == (256, 192)
    assert prepared.data == data  # nothing to cut from a plain JPEG
    assert prepared.sha256 == prepared.arrival_sha256 == hashlib.sha256(data).hexdigest()


def test_prepare_image_reports_bad_files_without_raising():
    result = prepare_image("x.txt", b"hello", CONFIG)

    assert isinstance(result, Rejection)
    assert (result.name, result.code) == ("x.txt", "not_an_image")
