"""The CPU half of ingestion: validate, hash and derive one file, with no database or storage.

``prepare_image`` is pure and thread-safe (Pillow and numpy release the GIL for the heavy
parts), so batches run it in a small thread pool while one thread writes rows in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from labeling.ingest.dedup import CONFIRM_BITS_DEFAULT, Hashes, image_hashes
from labeling.ingest.derivatives import Derivatives, make_derivatives
from labeling.ingest.validation import ImageRejected, ValidationLimits, validate_image

EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
}

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class IngestConfig:
    """Limits and sizes for ingestion; ``near_dup_distance`` and ``confirm_bits`` are bits;
    ``keep_gps`` keeps GPS and other location metadata in stored originals."""

    validation: ValidationLimits
    thumb_size: int = 256
    train_size: int = 256
    near_dup_distance: int = 4
    confirm_bits: int = CONFIRM_BITS_DEFAULT
    workers: int = 2
    keep_gps: bool = False


@dataclass(frozen=True)
class Prepared:
    """A validated file with everything the database and storage need: ``data`` is the
    original to store (see originals), ``sha256`` its digest, ``arrival_sha256`` the digest of
    the bytes that arrived (equal unless something was cut from them)."""

    name: str
    data: bytes
    sha256: str
    arrival_sha256: str
    format: str
    width: int
    height: int
    hashes: Hashes
    derivatives: Derivatives

    @property
    def extension(self) -> str:
        """File extension for the stored original, from the sniffed format."""
        return EXTENSIONS[self.format]


@dataclass(frozen=True)
class Rejection:
    """A file refused before it touched storage; ``message`` says what to do about it."""

    name: str
    code: str
    message: str


def prepare_image(name: str, data: bytes, config: IngestConfig) -> Prepared | Rejection:
    """Validate ``data`` and compute its hashes and derived copies; never raises on bad input."""
    try:
        validated = validate_image(data, config.validation, keep_gps=config.keep_gps)
    except ImageRejected as error:
        return Rejection(name=name, code=error.code, message=error.message)
    derivatives = make_derivatives(
        validated.image, thumb_size=config.thumb_size, train_size=config.train_size
    )
    return Prepared(
        name=name,
        data=validated.original,
        sha256=hashlib.sha256(validated.original).hexdigest(),
        arrival_sha256=hashlib.sha256(data).hexdigest(),
        format=validated.format,
        width=validated.width,
        height=validated.height,
        hashes=image_hashes(derivatives.preview),
        derivatives=derivatives,
    )


def ordered_map(
    function: Callable[[T], R], items: Iterable[T], *, workers: int, window: int = 8
) -> Iterator[R]:
    """``map`` over a thread pool that keeps at most ``window`` items in flight, in order.

    Unlike ``Executor.map`` it does not read the whole input first, so a 50,000-file archive
    never sits in memory at once.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        pending: list[Future[R]] = []
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= window:
                    yield pending.pop(0).result()
        except Exception:
            # Items already read still come out when reading the input fails part-way.
            for future in pending:
                yield future.result()
            raise
        for future in pending:
            yield future.result()
