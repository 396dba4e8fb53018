"""The shared stores, and how a file crosses between one of them and this host's disk.

Three entries of ``STORAGES`` hold every file more than one host reads: media (``default``:
images and their copies), ``checkpoints`` (``run-N.pt``) and ``exports`` (dataset archives).
settings.py points all three at folders on a volume every host mounts, or at one S3 bucket.
Code reaches them only through this module, by storage name, never by a path of its own.

A store on local disk (FileSystemStorage, anything with ``path()``) is read and written in
place and published with an atomic rename; any other store (S3) is read through a temporary
copy, written by uploading one, and published by a copy made after the ownership check.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.core.files.utils import validate_file_name

MEDIA = "default"
CHECKPOINTS = "checkpoints"
EXPORTS = "exports"


def store(alias: str) -> Storage:
    """The configured storage behind ``alias`` (MEDIA, CHECKPOINTS or EXPORTS)."""
    return storages[alias]


def _local(storage: Storage, name: str) -> Path | None:
    """The file's path when the store is on this host's disk, else None."""
    try:
        return Path(storage.path(name))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class StoredFile:
    """One file in one store: the store's alias and the file's name inside it."""

    alias: str
    name: str

    @property
    def storage(self) -> Storage:
        return store(self.alias)

    def sibling(self, name: str) -> StoredFile:
        """Another file in the same store and folder."""
        return StoredFile(self.alias, posixpath.join(posixpath.dirname(self.name), name))

    def exists(self) -> bool:
        return bool(self.storage.exists(self.name))

    def size(self) -> int:
        """Bytes; FileNotFoundError when it is not there."""
        return int(self.storage.size(self.name))

    def open(self) -> File:
        """The file, open for reading bytes; FileNotFoundError when it is not there."""
        return self.storage.open(self.name, "rb")

    def delete(self) -> None:
        """Remove it; nothing happens when it is not there."""
        self.storage.delete(self.name)

    def local_path(self) -> Path | None:
        """Where it lies on this host's disk, for stores on disk; None for the others."""
        return _local(self.storage, self.name)


def name_is_safe(stored: StoredFile) -> bool:
    """Whether ``stored.name`` is a relative name that stays inside its store: no absolute
    name, no ``..``, no NUL byte, and on disk no link that leads out. Reads no file."""
    if "\x00" in stored.name:  # os.path.realpath raises on it; an S3 key would take it
        return False
    try:
        validate_file_name(stored.name, allow_relative_path=True)
        path = stored.local_path()
    except SuspiciousFileOperation:
        return False
    if "\\" in stored.name or stored.name.endswith("/"):
        return False
    if path is None:
        return True
    root = Path(os.path.realpath(stored.storage.path("")))
    resolved = Path(os.path.realpath(path))
    return resolved != root and resolved.is_relative_to(root)


@contextmanager
def stored_read(stored: StoredFile) -> Iterator[Path]:
    """A local file with the stored file's bytes, for readers that want a path (torch.load):
    the file itself on disk, else a temporary copy removed afterwards. FileNotFoundError when
    it is not there."""
    path = stored.local_path()
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"{stored.alias}:{stored.name} does not exist")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="crowdnet-read-") as folder:
        copy = Path(folder) / posixpath.basename(stored.name)
        with stored.open() as source, copy.open("wb") as target:
            shutil.copyfileobj(source, target, 2**20)
        yield copy


@contextmanager
def stored_write(stored: StoredFile) -> Iterator[Path]:
    """A local path to write; when the block ends without an exception its bytes are the
    stored file. On disk the path is the stored file itself; elsewhere it is a temporary
    file, uploaded (replacing one of that name) and removed."""
    path = stored.local_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="crowdnet-write-") as folder:
        local = Path(folder) / posixpath.basename(stored.name)
        yield local
        with local.open("rb") as content:
            saved = stored.storage.save(stored.name, File(content))
        if saved != stored.name:  # a store that renames instead of replacing
            stored.storage.delete(saved)
            raise FileExistsError(f"{stored.alias}:{stored.name} exists and was not replaced")


def stored_move(source: StoredFile, target: StoredFile) -> None:
    """Put ``source``'s bytes under ``target``'s name (replacing it) and remove ``source``.
    Atomic on disk (a rename); on S3 a server-side copy then a delete, so a reader sees the
    old object or the whole new one."""
    storage = source.storage
    paths = (source.local_path(), target.local_path())
    if paths[0] is not None and paths[1] is not None:
        os.replace(paths[0], paths[1])
        return
    bucket = getattr(storage, "bucket", None)
    key = getattr(storage, "_normalize_name", None)  # django-storages' name -> object key
    if bucket is not None and key is not None:
        copy_source = {"Bucket": bucket.name, "Key": key(source.name)}
        bucket.Object(key(target.name)).copy(copy_source)
    else:
        with source.open() as content:
            storage.delete(target.name)
            saved = storage.save(target.name, content)
        if saved != target.name:
            raise FileExistsError(f"{target.alias}:{target.name} exists and was not replaced")
    source.delete()


def stored_matching(folder: StoredFile, pattern: str) -> list[StoredFile]:
    """The files directly in ``folder`` (a StoredFile naming a folder, "" for the top) whose
    names match the shell pattern ``pattern``; none when the folder does not exist."""
    try:
        _, files = folder.storage.listdir(folder.name)
    except FileNotFoundError:
        return []
    return [
        StoredFile(folder.alias, posixpath.join(folder.name, name))
        for name in sorted(files)
        if fnmatch.fnmatchcase(name, pattern)
    ]
