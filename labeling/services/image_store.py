"""Storing prepared images: files through Django's storage, rows in one transaction.

Batches are written together (one lookup for exact duplicates, one for near-duplicate
candidates, one insert per table), which is what makes ingestion fast. When anything in a
batch fails, its files are removed and every file is retried on its own, so a bad file is
reported alone and nothing half-written remains.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction

from labeling.evaluation_reserve import votes_needed_for
from labeling.ingest.dedup import Hashes, Match, best_match, hamming64
from labeling.ingest.pipeline import IngestConfig, Prepared
from labeling.models import Candidate, Category, Image, ImageArrival, User

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Arrival:
    category: Category
    source: str
    uploader: User | None
    source_url: str = ""


def _band_sql(bands: Sequence[Sequence[int]]) -> tuple[str, list[int]]:
    """SQL for (id, phash) of rows whose band i is among ``bands[i]``: a UNION ALL of one
    index-only scan per band (an OR makes PostgreSQL visit every matching heap page). Written
    out because this is the hottest query of ingestion and the ORM's compile costs 5x its run."""
    table = connection.ops.quote_name(Image._meta.db_table)
    parts = [
        f"SELECT id, phash FROM {table} WHERE phash_band{index} IN "  # noqa: S608 (no input)
        f"({', '.join(['%s'] * len(values))})"
        for index, values in enumerate(bands)
    ]
    return " UNION ALL ".join(parts), [value for values in bands for value in values]


def _close_rows(
    phash: int, ids: np.ndarray, phashes: np.ndarray, max_distance: int
) -> list[tuple[int, int]]:
    """(id, phash) of the rows within ``max_distance`` bits of ``phash``."""
    close = hamming64(phash, phashes) <= max_distance
    return list(zip(ids[close].tolist(), phashes[close].tolist(), strict=True))


def _with_phash256(rows: Iterable[tuple[int, int]]) -> dict[int, tuple[int, int, str]]:
    """Complete (id, phash) rows with their 256-bit hash, in one query."""
    by_id = dict(rows)
    if not by_id:
        return {}
    long_hashes = Image.objects.filter(id__in=by_id).values_list("id", "phash256")
    return {image_id: (image_id, by_id[image_id], value) for image_id, value in long_hashes}


def _band_rows(bands: Sequence[Iterable[int]]) -> tuple[np.ndarray, np.ndarray]:
    """ids and 64-bit hashes of the stored images sharing any of the given band values."""
    sql, params = _band_sql([sorted(set(values)) for values in bands])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        array = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2)
    ids, first = np.unique(array[:, 0], return_index=True)  # a row can share several bands
    return ids, array[first, 1]


def near_duplicate_find(hashes: Hashes, *, max_distance: int, confirm_bits: int) -> Match | None:
    """The stored image closest to ``hashes`` within the near-duplicate limits, if any.

    One indexed query fetches the (id, 64-bit hash) rows sharing a band; distances are taken in
    numpy, and only rows within ``max_distance`` bits have their 256-bit hash read."""
    if max_distance < 0:
        return None
    ids, phashes = _band_rows([[band] for band in hashes.bands])
    close = _with_phash256(_close_rows(hashes.phash, ids, phashes, max_distance))
    return best_match(
        hashes, list(close.values()), max_distance=max_distance, confirm_bits=confirm_bits
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


@dataclass
class _Plan:
    """What to do with each file of a batch: store it, or link it to a stored/batch image."""

    new: list[int] = field(default_factory=list)
    # file index -> (kind, stored image id or None, batch file index or None, distance in bits)
    links: dict[int, tuple[str, int | None, int | None, int]] = field(default_factory=dict)


def _plan(batch: Sequence[Prepared], config: IngestConfig) -> _Plan:
    exact = dict(
        Image.objects.filter(sha256__in=[p.sha256 for p in batch]).values_list("sha256", "id")
    )
    stored: list[list[tuple[int, int, str]]] = [[] for _ in batch]
    if config.near_dup_distance >= 0:
        ids, phashes = _band_rows(list(zip(*(p.hashes.bands for p in batch), strict=True)))
        close = [_close_rows(p.hashes.phash, ids, phashes, config.near_dup_distance) for p in batch]
        complete = _with_phash256(row for rows in close for row in rows)
        stored = [[complete[image_id] for image_id, _ in rows] for rows in close]
    plan, first_by_sha = _Plan(), {}
    for index, prepared in enumerate(batch):
        if prepared.sha256 in exact:
            plan.links[index] = ("exact", exact[prepared.sha256], None, 0)
        elif prepared.sha256 in first_by_sha:
            plan.links[index] = ("exact", None, first_by_sha[prepared.sha256], 0)
        else:
            near = _nearest(prepared, batch, plan.new, stored[index], config)
            if near is None:
                first_by_sha[prepared.sha256] = index
                plan.new.append(index)
            else:
                plan.links[index] = near
    return plan


def _nearest(
    prepared: Prepared,
    batch: Sequence[Prepared],
    new: list[int],
    stored: list[tuple[int, int, str]],
    config: IngestConfig,
) -> tuple[str, int | None, int | None, int] | None:
    """The closest near-duplicate among stored rows, then among earlier new files of the batch."""
    limits = {"max_distance": config.near_dup_distance, "confirm_bits": config.confirm_bits}
    match = best_match(prepared.hashes, stored, **limits)
    if match is not None:
        return ("near", match.image_id, None, match.distance)
    earlier = [(j, batch[j].hashes.phash, batch[j].hashes.phash256) for j in new]
    match = best_match(prepared.hashes, earlier, **limits)
    return ("near", None, match.image_id, match.distance) if match is not None else None


def _image_row(prepared: Prepared, arrival: Arrival, written: list[str]) -> Image:
    return Image(
        file=written[0],
        thumbnail=written[1],
        train_copy=written[2],
        sha256=prepared.sha256,
        phash=prepared.hashes.phash,
        phash256=prepared.hashes.phash256,
        **{f"phash_band{i}": band for i, band in enumerate(prepared.hashes.bands)},
        width=prepared.width,
        height=prepared.height,
        format=prepared.format,
        byte_size=len(prepared.data),
        source=arrival.source,
        source_url=arrival.source_url,
        original_name=prepared.name[:255],
        uploader=arrival.uploader,
    )


def _write_batch(
    batch: Sequence[Prepared], arrivals: Sequence[Arrival], plan: _Plan, files: dict[int, list[str]]
) -> list[IngestItem]:
    images = {i: _image_row(batch[i], arrivals[i], files[i]) for i in plan.new}
    with transaction.atomic():
        Image.objects.bulk_create(list(images.values()))
        stored = {
            image_id: image
            for image_id, image in Image.objects.in_bulk(
                [link[1] for link in plan.links.values() if link[1] is not None]
            ).items()
        }
        items, arrival_rows, candidates = [], [], []
        for index, (prepared, arrival) in enumerate(zip(batch, arrivals, strict=True)):
            if index in images:
                image, kind, distance = images[index], ImageArrival.Kind.NEW, 0
                item = IngestItem(prepared.name, "added", image_uid=str(image.uid))
            else:
                kind, image_id, batch_index, distance = plan.links[index]
                image = stored[image_id] if image_id is not None else images[batch_index]
                item = IngestItem(
                    prepared.name,
                    "duplicate",
                    reason=f"{kind} duplicate of an image already stored",
                    duplicate_of=str(image.uid),
                    distance=distance,
                )
            arrival_rows.append(
                ImageArrival(
                    image=image,
                    kind=kind,
                    distance=distance,
                    sha256=prepared.arrival_sha256,
                    source=arrival.source,
                    source_url=arrival.source_url,
                    original_name=prepared.name[:255],
                    category=arrival.category,
                    uploader=arrival.uploader,
                )
            )
            candidates.append(
                Candidate(
                    image=image,
                    category=arrival.category,
                    votes_needed=votes_needed_for(image.sha256),
                )
            )
            items.append(item)
        ImageArrival.objects.bulk_create(arrival_rows)
        Candidate.objects.bulk_create(candidates, ignore_conflicts=True)
    return items


def _attempt(
    batch: Sequence[Prepared], arrivals: Sequence[Arrival], config: IngestConfig
) -> list[IngestItem]:
    """Plan, write the new files, then every row in one transaction; on any failure the files
    written are removed again and the error is raised."""
    files: dict[int, list[str]] = {}
    try:
        plan = _plan(batch, config)
        for index in plan.new:
            files[index] = _save_files(batch[index])
        return _write_batch(batch, arrivals, plan, files)
    except BaseException:
        _delete_files(name for names in files.values() for name in names)
        raise


def store_batch(
    batch: Sequence[Prepared], arrivals: Sequence[Arrival], config: IngestConfig
) -> list[IngestItem]:
    """Store or link every prepared file of a batch, in order; writes images, arrivals and
    candidates in one transaction, or falls back to one transaction per file on any error."""
    try:
        return _attempt(batch, arrivals, config)
    except Exception:
        log.info("batch of %d failed; storing its files one by one", len(batch), exc_info=True)
    return [store_one_reported(p, a, config) for p, a in zip(batch, arrivals, strict=True)]


def store_one(prepared: Prepared, arrival: Arrival, config: IngestConfig) -> IngestItem:
    """Store one prepared file, or link it to the image it duplicates (one transaction).

    When another process stores the same bytes between our lookup and our insert, the unique
    sha256 refuses ours; planning again then finds theirs and links to it."""
    try:
        return _attempt([prepared], [arrival], config)[0]
    except IntegrityError:
        return _attempt([prepared], [arrival], config)[0]


def store_one_reported(prepared: Prepared, arrival: Arrival, config: IngestConfig) -> IngestItem:
    """store_one, with any failure reported as a rejected item (nothing kept)."""
    try:
        return store_one(prepared, arrival, config)
    except Exception:
        log.exception("ingest of %s failed", prepared.name)
        return IngestItem(
            name=prepared.name,
            outcome="rejected",
            reason="internal error while storing this file; nothing was kept, try it again",
        )
