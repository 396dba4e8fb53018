"""Media housekeeping: remove stored files that no image row refers to."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.core.files.storage import default_storage
from django.utils import timezone

from labeling.models import Image

# Each folder and the Image field whose files live there.
MEDIA_FOLDERS = {"images": "file", "thumbs": "thumbnail", "train": "train_copy"}
CHUNK = 1000


def _walk(folder: str) -> Iterator[str]:
    # listdir, not exists(): on S3 a folder is a key prefix, which exists() never finds
    try:
        directories, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}/{name}"
    for directory in directories:
        yield from _walk(f"{folder}/{directory}")


def media_orphans_sweep(*, grace: timedelta = timedelta(hours=1)) -> int:
    """Delete files under images/, thumbs/ and train/ that no Image references and that are
    older than ``grace`` (younger ones may belong to an ingest still in flight); returns how
    many were deleted."""
    cutoff = timezone.now() - grace
    deleted = 0
    for folder, field in MEDIA_FOLDERS.items():
        old = [name for name in _walk(folder) if default_storage.get_modified_time(name) <= cutoff]
        for start in range(0, len(old), CHUNK):
            chunk = old[start : start + CHUNK]
            referenced = set(
                Image.objects.filter(**{f"{field}__in": chunk}).values_list(field, flat=True)
            )
            for name in chunk:
                if name not in referenced:
                    default_storage.delete(name)
                    deleted += 1
    return deleted
