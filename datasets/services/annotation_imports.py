"""Importing existing annotations (COCO, Pascal VOC, YOLO, ImageFolder, Label Studio): an
archive of images and annotation files becomes categories, images, labels and boxes.

Everything is checked before anything is written: a missing image, a box off its image, a
category the file never declares, a path that climbs out of the archive or an oversized
annotation file is reported per record, and then nothing is imported. A clean archive is
written in one transaction: accepted labels with their boxes as the objects on the image, or
with ``prefill`` open labels for the crowd to verify and the boxes proposed for verification.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from datasets.exports.annotations import (
    IMAGE_SUFFIXES,
    IMPORT_FORMATS,
    TEXT_SUFFIXES,
    AnnotatedImage,
    ArchiveView,
    ImportCategory,
    RecordError,
    annotations_read,
)
from labeling.ingest.archives import ArchiveLimits, ArchiveRejected, iter_archive
from labeling.models import Box, Candidate, Category, Image, ObjectBox, User
from labeling.services.ingest import archive_limits, image_ingest

BoxState = Candidate.BoxState
_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def _limits() -> ArchiveLimits:
    """The archive limits, with room for an annotation file larger than any image."""
    limits = archive_limits()
    largest = max(limits.max_entry_bytes, settings.CROWDNET_IMPORT_MAX_ANNOTATION_BYTES)
    return replace(limits, max_entry_bytes=largest)


@dataclass
class AnnotationImportReport:
    """What an import did, or (with errors) why it wrote nothing."""

    images: int = 0
    labels: int = 0
    boxes: int = 0
    categories_created: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, object]:
        return {
            "images": self.images,
            "labels": self.labels,
            "boxes": self.boxes,
            "categories_created": self.categories_created,
            "errors": [{"record": e.record, "message": e.message} for e in self.errors],
        }


class _Abort(Exception):
    def __init__(self, errors: list[RecordError]) -> None:
        self.errors = errors


def _size(data: bytes) -> tuple[int, int]:
    """Width and height as shown (EXIF orientation applied), from the header only."""
    with PILImage.open(io.BytesIO(data)) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in _TRANSPOSED else (width, height)


def _survey(source: Path | IO[bytes]) -> tuple[ArchiveView, list[RecordError]]:
    """First pass: the archive's annotation texts and its images' sizes (no image kept)."""
    texts: dict[str, bytes] = {}
    sizes: dict[str, tuple[int, int]] = {}
    errors: list[RecordError] = []
    limit = settings.CROWDNET_IMPORT_MAX_ANNOTATION_BYTES
    for entry in iter_archive(source, _limits()):
        if entry.rejection is not None:
            errors.append(RecordError(entry.name, entry.rejection[1]))
            continue
        assert entry.data is not None
        lower = entry.name.lower()
        if lower.endswith(IMAGE_SUFFIXES):
            try:
                sizes[entry.name] = _size(entry.data)
            except (OSError, ValueError, PILImage.DecompressionBombError) as error:
                errors.append(RecordError(entry.name, f"not a readable image ({error})"))
        elif lower.endswith(TEXT_SUFFIXES):
            if len(entry.data) > limit:
                errors.append(
                    RecordError(
                        entry.name,
                        f"{len(entry.data):,} bytes: annotation files may hold at most "
                        f"{limit:,} (CROWDNET_IMPORT_MAX_ANNOTATION_BYTES); split it",
                    )
                )
            else:
                texts[entry.name] = entry.data
    return ArchiveView(texts, sizes), errors


def annotations_import(
    *, source: Path | IO[bytes], kind: str, by: User | None, prefill: bool = False
) -> AnnotationImportReport:
    """Import the archive at `source` in annotation format `kind`; writes categories, images,
    candidates and boxes in one transaction, or nothing when any record is wrong."""
    report = AnnotationImportReport()
    if kind not in IMPORT_FORMATS:
        report.errors.append(
            RecordError(
                "format", f"unknown format {kind!r}; choose one of: {', '.join(IMPORT_FORMATS)}"
            )
        )
        return report
    try:
        view, errors = _survey(source)
    except ArchiveRejected as rejected:
        report.errors.append(RecordError("archive", rejected.message))
        return report
    parsed = annotations_read(kind, view)
    report.errors = errors + parsed.errors
    if report.errors:
        return report
    try:
        with transaction.atomic():
            _write(source, parsed.categories, parsed.images, by, prefill, report)
    except _Abort as abort:
        return AnnotationImportReport(errors=abort.errors)
    return report


def _categories(
    declared: dict[str, ImportCategory], report: AnnotationImportReport
) -> dict[str, Category]:
    """The categories by slug: existing ones reused, others (and missing parents) created.

    Raises _Abort when the file names an archived category: it takes no new labels."""
    by_slug = {c.slug: c for c in Category.objects.filter(slug__in=list(declared))}
    archived = sorted(slug for slug, c in by_slug.items() if c.archived_at is not None)
    if archived:
        message = "is archived; restore it on the Categories page to import into it"
        raise _Abort([RecordError(f"category {slug}", message) for slug in archived])
    parents = {d.parent for d in declared.values()} - {""}
    for slug in sorted(parents - set(by_slug)):
        parent = Category.objects.filter(slug=slug).first()
        if parent is None:
            parent = _category_create(slug=slug, name=slug.replace("-", " "))
            report.categories_created.append(slug)
        by_slug[slug] = parent
    for slug, spec in sorted(declared.items()):
        if slug in by_slug:
            continue
        wnid = spec.wnid or None
        if wnid and Category.objects.filter(wnid=wnid).exists():
            wnid = None  # the WordNet id is another category's already
        by_slug[slug] = _category_create(
            slug=slug, name=spec.name, wnid=wnid, parent=by_slug.get(spec.parent)
        )
        report.categories_created.append(slug)
    return by_slug


def _category_create(**fields: object) -> Category:
    """A new category, checked by the model's own validators first (the readers check too)."""
    category = Category(**fields)
    try:
        category.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
        raise _Abort([RecordError(f"category {category.slug}", problems)]) from None
    category.save()
    return category


def _write(
    source: Path | IO[bytes],
    declared: dict[str, ImportCategory],
    labels: list[AnnotatedImage],
    by: User | None,
    prefill: bool,
    report: AnnotationImportReport,
) -> None:
    categories = _categories(declared, report)
    first_label: dict[str, AnnotatedImage] = {}
    for label in labels:
        first_label.setdefault(label.path, label)
    uids: dict[str, str] = {}
    errors: list[RecordError] = []
    for entry in iter_archive(source, _limits()):
        label = first_label.get(entry.name)
        if label is None or entry.data is None:
            continue
        item = image_ingest(
            data=entry.data,
            name=entry.name,
            category=categories[label.category],
            source="archive",
            uploader=by,
        )
        uid = item.image_uid or item.duplicate_of
        if item.outcome == "rejected" or uid is None:
            errors.append(RecordError(entry.name, item.reason or "the image was refused"))
            continue
        uids[entry.name] = uid
    if errors:
        raise _Abort(errors)
    found = Image.objects.in_bulk(list(uids.values()), field_name="uid")
    by_uid = {str(key): image for key, image in found.items()}
    images = {path: by_uid[str(uid)] for path, uid in uids.items()}
    report.images = len(images)
    now = timezone.now()
    for label in labels:
        candidate, _ = Candidate.objects.get_or_create(
            image=images[label.path], category=categories[label.category]
        )
        if prefill:
            candidate.state = Candidate.State.OPEN
            candidate.box_state = BoxState.VERIFY if label.boxes else BoxState.NONE
            Box.objects.bulk_create(
                Box(candidate=candidate, worker=None, x0=x0, y0=y0, x1=x1, y1=y1)
                for x0, y0, x1, y1 in label.boxes
            )
        else:
            candidate.state = Candidate.State.ACCEPTED
            candidate.confidence = candidate.posterior = 1.0
            candidate.decided_at = now
            candidate.box_state = BoxState.DONE if label.boxes else BoxState.NONE
            ObjectBox.objects.filter(candidate=candidate).delete()
            ObjectBox.objects.bulk_create(
                ObjectBox(candidate=candidate, x0=x0, y0=y0, x1=x1, y1=y1, score=1.0, drawers=0)
                for x0, y0, x1, y1 in label.boxes
            )
        candidate.save()
        report.labels += 1
        report.boxes += len(label.boxes)
