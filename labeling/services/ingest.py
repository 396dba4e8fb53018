"""image_ingest and friends: the one path every image takes into CrowdNet.

Browser uploads, the API, ``import_images``, ``scrape_images`` and ``load_demo`` all end here.
Each file is its own transaction: one bad file never fails the batch, and a failure after the
files were written removes them again, so no row points at a missing file and no file is left
without a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q

from labeling.ingest.archives import ArchiveLimits, ArchiveRejected, archive_kind, iter_archive
from labeling.ingest.dedup import Hashes, Match, best_match
from labeling.ingest.pipeline import IngestConfig, Prepared, Rejection, ordered_map, prepare_image
from labeling.ingest.validation import ValidationLimits
from labeling.models import Candidate, Category, Image, ImageArrival, User

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class IngestItem:
    """What happened to one file: ``added``, ``duplicate`` (exact or near) or ``rejected``."""

    name: str
    outcome: str
    reason: str = ""
    image_uid: str | None = None
    duplicate_of: str | None = None
    distance: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ""}


@dataclass
class IngestReport:
    """Every file's outcome, in arrival order, with counts."""

    items: list[IngestItem] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(1 for item in self.items if item.outcome == "added")

    @property
    def duplicates(self) -> int:
        return sum(1 for item in self.items if item.outcome == "duplicate")

    @property
    def rejected(self) -> int:
        return sum(1 for item in self.items if item.outcome == "rejected")

    def summary(self) -> str:
        """One line for people: counts of each outcome."""
        return f"{self.added} added, {self.duplicates} duplicates, {self.rejected} rejected"

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "items": [item.as_dict() for item in self.items],
        }


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
    )


def archive_limits() -> ArchiveLimits:
    """Archive limits from settings."""
    return ArchiveLimits(
        max_entries=settings.CROWDNET_ARCHIVE_MAX_ENTRIES,
        max_total_bytes=settings.CROWDNET_ARCHIVE_MAX_TOTAL_BYTES,
        max_entry_bytes=settings.CROWDNET_MAX_IMAGE_BYTES,
        max_ratio=settings.CROWDNET_ARCHIVE_MAX_RATIO,
    )


@dataclass(frozen=True)
class _Arrival:
    category: Category
    source: str
    uploader: User | None
    source_url: str = ""


def near_duplicate_find(hashes: Hashes, *, max_distance: int, confirm_bits: int) -> Match | None:
    """The stored image closest to ``hashes`` within the near-duplicate limits, if any: one
    indexed query for rows sharing a hash band, then exact distances in numpy."""
    if max_distance < 0:
        return None
    query = Q()
    for index, band in enumerate(hashes.bands):
        query |= Q(**{f"phash_band{index}": band})
    rows = list(Image.objects.filter(query).values_list("id", "phash", "phash256"))
    return best_match(hashes, rows, max_distance=max_distance, confirm_bits=confirm_bits)


def _record_duplicate(
    image: Image, prepared: Prepared, arrival: _Arrival, kind: str, distance: int
) -> IngestItem:
    with transaction.atomic():
        ImageArrival.objects.create(
            image=image,
            kind=kind,
            distance=distance,
            sha256=prepared.sha256,
            source=arrival.source,
            source_url=arrival.source_url,
            original_name=prepared.name[:255],
            category=arrival.category,
            uploader=arrival.uploader,
        )
        Candidate.objects.get_or_create(image=image, category=arrival.category)
    return IngestItem(
        name=prepared.name,
        outcome="duplicate",
        reason=f"{kind} duplicate of an image already stored",
        duplicate_of=str(image.uid),
        distance=distance,
    )


def _save_files(prepared: Prepared) -> list[str]:
    """Write the original and its derived copies; returns the storage names written."""
    digest = prepared.sha256
    stem = f"{digest[:2]}/{digest[2:4]}/{digest}"
    written: list[str] = []
    try:
        for name, content in (
            (f"images/{stem}.{prepared.extension}", prepared.data),
            (f"thumbs/{stem}.jpg", prepared.derivatives.thumbnail),
            (f"train/{stem}.jpg", prepared.derivatives.train),
        ):
            written.append(default_storage.save(name, ContentFile(content)))
    except BaseException:
        _delete_files(written)
        raise
    return written


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            log.exception("could not remove %s after a failed ingest", name)


def _store_new(prepared: Prepared, arrival: _Arrival) -> IngestItem:
    written = _save_files(prepared)
    try:
        with transaction.atomic():
            bands = prepared.hashes.bands
            image = Image.objects.create(
                file=written[0],
                thumbnail=written[1],
                train_copy=written[2],
                sha256=prepared.sha256,
                phash=prepared.hashes.phash,
                phash256=prepared.hashes.phash256,
                **{f"phash_band{i}": band for i, band in enumerate(bands)},
                width=prepared.width,
                height=prepared.height,
                format=prepared.format,
                byte_size=len(prepared.data),
                source=arrival.source,
                source_url=arrival.source_url,
                original_name=prepared.name[:255],
                uploader=arrival.uploader,
            )
            ImageArrival.objects.create(
                image=image,
                kind=ImageArrival.Kind.NEW,
                sha256=prepared.sha256,
                source=arrival.source,
                source_url=arrival.source_url,
                original_name=prepared.name[:255],
                category=arrival.category,
                uploader=arrival.uploader,
            )
            Candidate.objects.create(image=image, category=arrival.category)
    except BaseException:
        _delete_files(written)
        raise
    return IngestItem(name=prepared.name, outcome="added", image_uid=str(image.uid))


def _commit(prepared: Prepared, arrival: _Arrival, config: IngestConfig) -> IngestItem:
    """Store a prepared file, or link it to the image it duplicates."""
    existing = Image.objects.filter(sha256=prepared.sha256).first()
    if existing is not None:
        return _record_duplicate(existing, prepared, arrival, ImageArrival.Kind.EXACT, 0)
    near = near_duplicate_find(
        prepared.hashes, max_distance=config.near_dup_distance, confirm_bits=config.confirm_bits
    )
    if near is not None:
        image = Image.objects.get(pk=near.image_id)
        return _record_duplicate(image, prepared, arrival, ImageArrival.Kind.NEAR, near.distance)
    try:
        return _store_new(prepared, arrival)
    except IntegrityError:
        # Another process stored the same bytes between our lookup and our insert.
        existing = Image.objects.filter(sha256=prepared.sha256).first()
        if existing is None:
            raise
        return _record_duplicate(existing, prepared, arrival, ImageArrival.Kind.EXACT, 0)


def _outcome(
    result: Prepared | Rejection, arrival: _Arrival, config: IngestConfig
) -> IngestItem:
    if isinstance(result, Rejection):
        return IngestItem(name=result.name, outcome="rejected", reason=result.message)
    try:
        return _commit(result, arrival, config)
    except Exception:
        log.exception("ingest of %s failed", result.name)
        return IngestItem(
            name=result.name,
            outcome="rejected",
            reason="internal error while storing this file; nothing was kept, try it again",
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
    prepared_stream = ordered_map(
        partial(_prepare_source, config), files, workers=config.workers
    )
    for result, url in prepared_stream:
        arrival = _Arrival(category=category, source=source, uploader=uploader, source_url=url)
        item = _outcome(result, arrival, config)
        report.items.append(item)
        if progress is not None:
            progress(item)
    return report


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
