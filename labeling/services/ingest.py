"""image_ingest and friends: the one path every image takes into CrowdNet.

Browser uploads, the API, ``import_images``, ``scrape_images`` and ``load_demo`` all end here.
Files are validated and derived in a small thread pool, then stored in batches (see
image_store): one bad file never fails the batch, and a failure after files were written removes
them again, so no row points at a missing file and no file is left without a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import IO

from django.conf import settings

from labeling.ingest.archives import ArchiveLimits, ArchiveRejected, archive_kind, iter_archive
from labeling.ingest.pipeline import IngestConfig, Prepared, Rejection, ordered_map, prepare_image
from labeling.ingest.validation import ValidationLimits
from labeling.models import Category, User
from labeling.services.image_store import Arrival, IngestItem, IngestReport, store_batch

__all__ = [
    "IngestItem",
    "IngestReport",
    "archive_ingest",
    "image_ingest",
    "images_ingest",
    "path_ingest",
]

BATCH_SIZE = 32
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


Progress = Callable[[IngestItem], None]


def ingest_config() -> IngestConfig:
    """Ingestion limits from settings."""
    return IngestConfig(
        validation=ValidationLimits(
            max_bytes=settings.CROWDNET_MAX_IMAGE_BYTES,
            max_pixels=settings.CROWDNET_MAX_IMAGE_PIXELS,
        ),
        thumb_size=settings.CROWDNET_THUMB_SIZE,
        train_size=settings.CROWDNET_TRAIN_SIZE,
        near_dup_distance=settings.CROWDNET_NEAR_DUP_DISTANCE,
        keep_gps=settings.CROWDNET_KEEP_GPS,
    )


def archive_limits() -> ArchiveLimits:
    """Archive limits from settings."""
    return ArchiveLimits(
        max_entries=settings.CROWDNET_ARCHIVE_MAX_ENTRIES,
        max_total_bytes=settings.CROWDNET_ARCHIVE_MAX_TOTAL_BYTES,
        max_entry_bytes=settings.CROWDNET_MAX_IMAGE_BYTES,
        max_ratio=settings.CROWDNET_ARCHIVE_MAX_RATIO,
    )


Source = tuple[str, bytes] | tuple[str, bytes, str] | Rejection


def _prepare_source(config: IngestConfig, source: Source) -> tuple[Prepared | Rejection, str]:
    if isinstance(source, Rejection):
        return source, ""
    url = source[2] if len(source) == 3 else ""
    return prepare_image(source[0], source[1], config), url


def images_ingest(
    *,
    files: Iterable[Source],
    category: Category,
    source: str,
    uploader: User | None,
    progress: Progress | None = None,
    config: IngestConfig | None = None,
    report: IngestReport | None = None,
) -> IngestReport:
    """Ingest (name, bytes[, source_url]) files into ``category``; writes images, arrivals and
    candidates, one transaction per file. Rejections passed in are reported as they are.

    Items are appended to ``report`` as they finish, so a caller that catches an exception
    from ``files`` still holds every outcome so far."""
    config = config or ingest_config()
    report = report if report is not None else IngestReport()
    # The window spans more than a batch, so the pool keeps preparing while a batch is stored.
    prepared_stream = ordered_map(
        partial(_prepare_source, config), files, workers=config.workers, window=3 * BATCH_SIZE
    )
    batch: list[Prepared] = []
    arrivals: list[Arrival] = []

    def flush() -> None:
        done = store_batch(batch, arrivals, config) if batch else []
        batch.clear()
        arrivals.clear()
        for item in done:
            _report(report, item, progress)

    try:
        for result, url in prepared_stream:
            if isinstance(result, Rejection):
                flush()
                item = IngestItem(name=result.name, outcome="rejected", reason=result.message)
                _report(report, item, progress)
                continue
            batch.append(result)
            arrivals.append(Arrival(category, source, uploader, url))
            if len(batch) >= BATCH_SIZE:
                flush()
    finally:
        flush()
    return report


def _report(report: IngestReport, item: IngestItem, progress: Progress | None) -> None:
    report.items.append(item)
    if progress is not None:
        progress(item)


def image_ingest(
    *,
    data: bytes,
    name: str,
    category: Category,
    source: str,
    uploader: User | None,
    source_url: str = "",
) -> IngestItem:
    """Ingest one file; see images_ingest."""
    report = images_ingest(
        files=[(name, data, source_url)],
        category=category,
        source=source,
        uploader=uploader,
        config=ingest_config(),
    )
    return report.items[0]


def _archive_sources(fileobj: IO[bytes] | Path, name: str) -> Iterator[Source]:
    for entry in iter_archive(fileobj, archive_limits()):
        label = f"{name}:{entry.name}"
        if entry.rejection is not None:
            yield Rejection(name=label, code=entry.rejection[0], message=entry.rejection[1])
        elif entry.data is not None:
            yield (label, entry.data)


def archive_ingest(
    *,
    fileobj: IO[bytes] | Path,
    name: str,
    category: Category,
    uploader: User | None,
    source: str = "archive",
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest every image inside a zip or tar archive; raises ArchiveRejected when the archive
    as a whole is refused before any entry was read."""
    report = IngestReport()
    try:
        images_ingest(
            files=_archive_sources(fileobj, name),
            category=category,
            source=source,
            uploader=uploader,
            progress=progress,
            report=report,
        )
    except ArchiveRejected as error:
        if not report.items:
            raise
        report.items.append(IngestItem(name=name, outcome="rejected", reason=error.message))
    return report


def _read_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(512)


def _folder_sources(paths: list[Path], root: Path) -> Iterator[Source]:
    for path in paths:
        label = str(path.relative_to(root))
        if path.is_symlink():
            yield Rejection(label, "symlink", "symbolic links are not followed; copy the file")
            continue
        yield (label, path.read_bytes())


def folder_files(root: Path) -> list[Path]:
    """The image files under ``root`` (by suffix, recursively, sorted); dotfiles skipped."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and (path.is_file() or path.is_symlink())
    )


def path_ingest(
    *,
    path: Path,
    category: Category,
    uploader: User | None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest a folder (recursively) or one archive file from local disk."""
    if path.is_dir():
        return images_ingest(
            files=_folder_sources(folder_files(path), path),
            category=category,
            source="folder",
            uploader=uploader,
            progress=progress,
        )
    if archive_kind(_read_head(path)) is not None:
        return archive_ingest(
            fileobj=path, name=path.name, category=category, uploader=uploader, progress=progress
        )
    return images_ingest(
        files=[(path.name, path.read_bytes())],
        category=category,
        source="folder",
        uploader=uploader,
        progress=progress,
    )
