"""Ingest files that arrived in an HTTP request: images and archives mixed, in order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from labeling.ingest.archives import ArchiveRejected, archive_kind
from labeling.ingest.pipeline import Rejection
from labeling.models import Category, ImageSource, User
from labeling.services.ingest import (
    IngestItem,
    IngestReport,
    Source,
    archive_ingest,
    images_ingest,
)


def _head(upload: UploadedFile) -> bytes:
    upload.seek(0)
    head = upload.read(512)
    upload.seek(0)
    return head


def _image_sources(uploads: Sequence[UploadedFile]) -> Iterator[Source]:
    limit = settings.CROWDNET_MAX_IMAGE_BYTES
    for upload in uploads:
        name = upload.name or "upload"
        if upload.size is not None and upload.size > limit:
            yield Rejection(
                name,
                "too_large",
                f"file is {upload.size:,} bytes; the limit is {limit:,} bytes",
            )
            continue
        upload.seek(0)
        yield (name, upload.read())


def uploaded_files_ingest(
    *,
    files: Sequence[UploadedFile],
    category: Category,
    uploader: User,
    archives_only: bool = False,
) -> IngestReport:
    """Ingest uploaded images and archives into ``category``; one report, files in order.

    With ``archives_only`` a file that is not an archive, or an archive with no files in it,
    raises ArchiveRejected; otherwise a refused archive is reported as one rejected item and
    the other files still go in."""
    report = IngestReport()
    batch: list[UploadedFile] = []

    def flush() -> None:
        if batch:
            images_ingest(
                files=_image_sources(batch),
                category=category,
                source=ImageSource.UPLOAD,
                uploader=uploader,
                report=report,
            )
            batch.clear()

    for upload in files:
        name = upload.name or "upload"
        if archive_kind(_head(upload)) is None:
            if archives_only:
                raise ArchiveRejected("not_an_archive", f"{name} is not a zip or tar archive.")
            batch.append(upload)
            continue
        flush()
        if upload.size is not None and upload.size > settings.CROWDNET_ARCHIVE_MAX_BYTES:
            error = ArchiveRejected(
                "too_large",
                f"{name} is {upload.size:,} bytes; archives may be at most "
                f"{settings.CROWDNET_ARCHIVE_MAX_BYTES:,} bytes. Split it into parts.",
            )
            if archives_only:
                raise error
            report.items.append(IngestItem(name=name, outcome="rejected", reason=error.message))
            continue
        try:
            upload.seek(0)
            sub = archive_ingest(fileobj=upload, name=name, category=category, uploader=uploader)
            if not sub.items:  # as the import_images command says, not a silent success
                raise ArchiveRejected(
                    "empty", f"{name} holds no image files; nothing was imported."
                )
        except ArchiveRejected as error:
            if archives_only:
                raise
            report.items.append(IngestItem(name=name, outcome="rejected", reason=error.message))
            continue
        report.items.extend(sub.items)
    flush()
    return report
