"""Dataset exports: choose the images of a version, write them in a format into an archive,
as a job with progress (or streamed straight out for a small selection), and expire them.

A version is frozen, and every format writes in a fixed order with fixed metadata, so the
same version exported with the same options gives the same bytes every time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from PIL import Image as PILImage

from config.file_stores import EXPORTS, StoredFile, stored_write
from datasets.exports.archive import ArchiveWriter
from datasets.exports.formats import FORMATS, SPLITS, FormatOptions, export_write
from datasets.exports.records import ExportCategory, ExportImage
from datasets.models import DatasetExport, DatasetItem, DatasetVersion
from datasets.services.versions import DatasetTooSmall, dataset_snapshot
from jobs.beat import JobBeat
from jobs.kinds import EXPORT
from jobs.services import (
    Claim,
    JobCancelled,
    JobLost,
    job_cancel,
    job_cancel_requested,
    job_claim,
    job_enqueue_on_commit,
    job_finish,
    job_publish,
    partial_path,
)
from labeling.ingest.pipeline import EXTENSIONS
from labeling.models import Candidate, Category, Image, User

log = logging.getLogger(__name__)

CHUNK = 2000


class ExportRequestError(ValueError):
    """An export asked for something that cannot be: the message says what to change."""


@dataclass(frozen=True)
class ExportOptions:
    """What goes into an export. `categories`: slugs (None: every class of the version);
    `subtree`: a category slug whose class and descendants are kept; `min_confidence`: the
    consensus confidence an image's label needs; `image_size`: "original" or "training"
    (the stored copy, shorter side CROWDNET_TRAIN_SIZE)."""

    archive: str = "zip"
    categories: tuple[str, ...] | None = None
    subtree: str | None = None
    min_confidence: float = 0.0
    include_images: bool = True
    image_size: str = "original"
    splits: tuple[str, ...] = SPLITS
    folder_naming: str = "slug"
    shard_size: int = 1000

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["categories"] = None if self.categories is None else list(self.categories)
        data["splits"] = list(self.splits)
        return data


def _choice(raw: dict[str, object], key: str, choices: tuple[str, ...], default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise ExportRequestError(f"{key} must be one of {', '.join(choices)}, not {value!r}.")
    return str(value)


def export_options_parse(raw: dict[str, object] | None) -> ExportOptions:
    """Checked options from JSON-like input; raises ExportRequestError saying what is wrong."""
    raw = dict(raw or {})
    known = set(ExportOptions.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ExportRequestError(
            f"Unknown option(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}."
        )
    categories = raw.get("categories")
    if categories is not None and (
        not isinstance(categories, list | tuple) or not all(isinstance(c, str) for c in categories)
    ):
        raise ExportRequestError("categories must be a list of category slugs.")
    subtree = raw.get("subtree")
    if subtree is not None and not isinstance(subtree, str):
        raise ExportRequestError("subtree must be one category slug.")
    try:
        min_confidence = float(raw.get("min_confidence", 0.0))  # type: ignore[arg-type]
        shard_size = int(raw.get("shard_size", 1000))  # type: ignore[call-overload]
    except (TypeError, ValueError) as error:
        raise ExportRequestError(
            "min_confidence must be a number, shard_size a whole one."
        ) from error
    if not 0.0 <= min_confidence <= 1.0:
        raise ExportRequestError("min_confidence must lie between 0 and 1.")
    if not 1 <= shard_size <= 100_000:
        raise ExportRequestError("shard_size must lie between 1 and 100000.")
    splits = raw.get("splits", list(SPLITS))
    if not isinstance(splits, list | tuple) or not splits or not set(splits) <= set(SPLITS):
        raise ExportRequestError("splits must be a non-empty list of: train, val.")
    include_images = raw.get("include_images", True)
    if not isinstance(include_images, bool):
        raise ExportRequestError("include_images must be true or false.")
    return ExportOptions(
        archive=_choice(raw, "archive", ("zip", "tar"), "zip"),
        categories=None if categories is None else tuple(categories),  # type: ignore[arg-type]
        subtree=subtree,
        min_confidence=min_confidence,
        include_images=include_images,
        image_size=_choice(raw, "image_size", ("original", "training"), "original"),
        splits=tuple(s for s in SPLITS if s in splits),
        folder_naming=_choice(raw, "folder_naming", ("slug", "wnid"), "slug"),
        shard_size=shard_size,
    )


@dataclass(frozen=True)
class Selection:
    """The classes kept (a version's label index -> export category) and the filters."""

    version: DatasetVersion
    categories: list[ExportCategory]
    kept: dict[int, int]  # version label -> export label
    category_ids: dict[int, int]  # version label -> Category id
    options: ExportOptions

    def items(self) -> QuerySet[DatasetItem]:
        return DatasetItem.objects.filter(
            version=self.version, label__in=list(self.kept), split__in=list(self.options.splits)
        )


def export_selection(version: DatasetVersion, options: ExportOptions) -> Selection:
    """The classes of `version` that `options` keep, with their hierarchy; raises
    ExportRequestError for a slug the version does not have."""
    classes = version.classes
    rows = {
        c.pk: c
        for c in Category.objects.select_related("parent").filter(pk__in=[c["id"] for c in classes])
    }
    slugs = {c["slug"]: label for label, c in enumerate(classes)}
    kept_labels = list(range(len(classes)))
    if options.categories is not None:
        missing = [slug for slug in options.categories if slug not in slugs]
        if missing:
            raise ExportRequestError(
                f"Version {version.number} has no class {', '.join(missing)}; it has: "
                f"{', '.join(slugs)}."
            )
        kept_labels = sorted(slugs[slug] for slug in options.categories)
    if options.subtree is not None:
        root = Category.objects.filter(slug=options.subtree).first()
        if root is None:
            raise ExportRequestError(f"No category has the slug {options.subtree!r}.")
        parents = dict(Category.objects.values_list("id", "parent_id"))

        def under(category_id: int | None) -> bool:
            seen = set()
            while category_id is not None and category_id not in seen:
                if category_id == root.pk:
                    return True
                seen.add(category_id)
                category_id = parents.get(category_id)
            return False

        kept_labels = [label for label in kept_labels if under(classes[label]["id"])]
    if not kept_labels:
        raise ExportRequestError("No class of the version is left by these options.")
    categories, kept = [], {}
    for new, label in enumerate(kept_labels):
        entry = classes[label]
        row = rows.get(entry["id"])
        categories.append(
            ExportCategory(
                index=new,
                slug=entry["slug"],
                name=entry["name"],
                wnid=(row.wnid or "") if row else "",
                supercategory=row.parent.name if row and row.parent else "",
            )
        )
        kept[label] = new
    return Selection(
        version, categories, kept, {label: classes[label]["id"] for label in kept}, options
    )


def _reader(name: str) -> Callable[[], bytes]:
    def read() -> bytes:
        with default_storage.open(name, "rb") as handle:
            return handle.read()

    return read


def _training_size(name: str) -> tuple[int, int]:
    with default_storage.open(name, "rb") as handle, PILImage.open(handle) as image:
        return image.size


def export_images(selection: Selection) -> Iterator[ExportImage | None]:
    """Each item of the selection in a fixed order (split, then item id), as an ExportImage,
    or None for one the confidence filter drops (so progress can count it)."""
    options = selection.options
    training = options.image_size == "training"
    rows = (
        selection.items()
        .order_by("split", "id")
        .values_list("id", "image_id", "label", "split", "boxes")
    )
    chunk: list[tuple[int, int, int, str, list[list[float]]]] = []

    def flush() -> Iterator[ExportImage | None]:
        image_ids = [row[1] for row in chunk]
        images = {
            i.pk: i
            for i in Image.objects.filter(pk__in=image_ids).only(
                "id", "sha256", "format", "width", "height", "file", "train_copy"
            )
        }
        consensus = {
            (c[0], c[1]): c[2:]
            for c in Candidate.objects.filter(
                image_id__in=image_ids, category_id__in=list(selection.category_ids.values())
            ).values_list(
                "image_id", "category_id", "confidence", "yes_votes", "no_votes", "unsure_votes"
            )
        }
        for _, image_id, label, split, boxes in chunk:
            image = images[image_id]
            confidence, yes, no, unsure = consensus.get(
                (image_id, selection.category_ids[label]), (0.0, 0, 0, 0)
            )
            if confidence < options.min_confidence:
                yield None
                continue
            width, height = image.width, image.height
            if training:
                width, height = _training_size(image.train_copy.name)
            scale = (width / image.width, height / image.height)
            yield ExportImage(
                id=image.pk,
                sha256=image.sha256,
                extension="jpg" if training else EXTENSIONS.get(image.format, "bin"),
                width=width,
                height=height,
                split=split,
                label=selection.kept[label],
                boxes=tuple(
                    (x0 * scale[0], y0 * scale[1], x1 * scale[0], y1 * scale[1])
                    for x0, y0, x1, y1 in boxes
                ),
                confidence=confidence,
                yes_votes=yes,
                no_votes=no,
                unsure_votes=unsure,
                read=_reader(image.train_copy.name if training else image.file.name),
            )

    for row in rows.iterator(chunk_size=CHUNK):
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield from flush()
            chunk = []
    if chunk:
        yield from flush()


def export_stream(
    selection: Selection,
    kind: str,
    out: BinaryIO,
    *,
    on_image: Callable[[int, int], None] | None = None,
) -> int:
    """Write the selection's archive in format `kind` to `out`; returns the images written.
    `on_image(done, written)` is called after each item gone through (it may raise to stop)."""
    options = selection.options
    writer = ArchiveWriter(out, options.archive)  # type: ignore[arg-type]
    done = written = 0

    def kept() -> Iterator[ExportImage]:
        nonlocal done
        for image in export_images(selection):
            done += 1
            if image is not None:
                yield image
            elif on_image is not None:
                on_image(done, written)

    def progress(image: ExportImage) -> None:
        nonlocal written
        written += 1
        if on_image is not None:
            on_image(done, written)

    try:
        export_write(
            kind,
            writer,
            selection.categories,
            kept(),
            FormatOptions(
                include_images=options.include_images,
                folder_naming=options.folder_naming,
                shard_size=options.shard_size,
                name=f"crowdnet-v{selection.version.number}",
            ),
            progress,
        )
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return written


def export_create(
    *,
    by: User,
    kind: str,
    options: dict[str, object] | None = None,
    version: DatasetVersion | None = None,
    enqueue: bool = True,
) -> DatasetExport:
    """A queued export job (snapshotting a new version when none is given), sent to a worker
    once committed. Raises ExportRequestError saying what to change."""
    if not by.is_curator:
        raise ExportRequestError("Only curators can export datasets.")
    if kind not in FORMATS:
        raise ExportRequestError(f"Unknown format {kind!r}; choose one of: {', '.join(FORMATS)}.")
    parsed = export_options_parse(options)
    if not parsed.include_images and kind in ("imagefolder", "webdataset"):
        raise ExportRequestError(f"{kind} is made of the images: it cannot leave them out.")
    with transaction.atomic():
        if version is None:
            try:
                version = dataset_snapshot(by=by)
            except DatasetTooSmall as error:
                raise ExportRequestError(str(error)) from error
        selection = export_selection(version, parsed)
        export = DatasetExport.objects.create(
            version=version,
            format=kind,
            archive=parsed.archive,
            options=parsed.as_json(),
            requested_by=by,
            images_total=selection.items().count(),
        )
        if enqueue:
            job_enqueue_on_commit(EXPORT, export.pk)
    return export


def _enqueue(export_id: int) -> None:
    from datasets.tasks import export_build_task

    export_build_task.delay(export_id)


def export_path(export: DatasetExport) -> StoredFile:
    """A finished export's archive in the exports store."""
    return StoredFile(EXPORTS, export.file_name)


def export_output(export: DatasetExport) -> StoredFile:
    """Where a job's archive goes once whole, in the exports store (its attempts write beside
    it, see jobs)."""
    name = f"crowdnet-v{export.version.number}-{export.format}-{export.uid.hex[:12]}"
    return StoredFile(EXPORTS, f"{name}.{export.archive}")


def export_build(export_id: int) -> DatasetExport:
    """Build a queued export's archive: claims it (a message delivered twice builds once),
    beats a heartbeat throughout, writes ``<archive>.attempt-N.partial`` with progress and
    moves it into place only while this attempt still owns the job. A cancel request is seen
    between two images; a failure leaves no file and says why."""
    claim = job_claim(EXPORT, export_id, started_at=timezone.now())
    export = DatasetExport.objects.select_related("version").get(pk=export_id)
    if claim is None:
        return export
    final = export_output(export)
    partial = partial_path(final, claim.attempt)
    with JobBeat(claim) as beat:
        outcome = _build(export, claim, beat, partial, final)
    partial.delete()
    if outcome is not None:
        job_finish(claim, **outcome)  # type: ignore[arg-type]
    export.refresh_from_db()
    return export


def _build(
    export: DatasetExport, claim: Claim, beat: JobBeat, partial: StoredFile, final: StoredFile
) -> dict[str, object] | None:
    """Write the archive and publish it; the fields of the job's outcome (None: not ours)."""
    last = [0.0]

    def on_image(done: int, written: int) -> None:
        beat.check()
        now = time.monotonic()
        if now - last[0] < 1.0:
            return
        last[0] = now
        # the progress write is also a heartbeat, only while the job is ours
        if not claim.mine().update(
            images_done=done, images_written=written, heartbeat_at=timezone.now()
        ):
            raise JobLost(f"export {export.pk} was taken away")
        if job_cancel_requested(claim):
            raise JobCancelled

    try:
        selection = export_selection(export.version, export_options_parse(export.options))
        # built on this host's disk, then stored as the attempt's partial (uploaded to S3)
        with stored_write(partial) as local:
            with open(local, "wb") as out:
                written = export_stream(selection, export.format, out, on_image=on_image)
                out.flush()
                os.fsync(out.fileno())
            digest = hashlib.sha256()
            with open(local, "rb") as archive:
                for block in iter(lambda: archive.read(2**20), b""):
                    digest.update(block)
            byte_size = local.stat().st_size
        with transaction.atomic():
            if not job_publish(claim, partial, final):
                return None
            job_finish(
                claim,
                DatasetExport.Status.DONE,
                file_name=final.name,
                byte_size=byte_size,
                sha256=digest.hexdigest(),
                images_done=export.images_total,
                images_written=written,
                expires_at=timezone.now()
                + timedelta(hours=settings.CROWDNET_EXPORT_RETENTION_HOURS),
            )
        return None
    except JobLost:
        log.warning("export %s was taken from this worker; it stops", export.pk)
        return None
    except JobCancelled:
        return {"status": DatasetExport.Status.CANCELLED}
    except Exception as error:
        log.exception("export %s failed", export.pk)
        return {"status": DatasetExport.Status.FAILED, "error": f"{type(error).__name__}: {error}"}


def export_cancel(*, export: DatasetExport) -> DatasetExport:
    """Cancel an export in any state: a queued one at once, a running one at its next image;
    a finished one is left as it is."""
    job_cancel(EXPORT, export.pk)
    export.refresh_from_db()
    return export


def exports_expire() -> int:
    """Delete the archives past their retention period; returns how many."""
    expired = DatasetExport.objects.filter(
        status=DatasetExport.Status.DONE, expires_at__lte=timezone.now()
    )
    count = 0
    for export in expired:
        export_path(export).delete()
        count += DatasetExport.objects.filter(
            pk=export.pk, status=DatasetExport.Status.DONE
        ).update(status=DatasetExport.Status.EXPIRED, file_name="")
    return count


def export_may_download(export: DatasetExport, user: User) -> bool:
    """Only the curator who asked for it, or staff, and only while it is a curator."""
    return bool(
        user.is_authenticated
        and user.is_curator
        and (user.is_staff or export.requested_by_id == user.pk)
    )
