"""Archives written as they are read, byte for byte the same each time.

Every member has fixed metadata (1980-01-01 in zip, mtime 0 and root ownership in tar, mode
0644), members go in the order they are added, and the output is treated as unseekable even
when it is a file, so an archive written to disk and one streamed to a browser are the same
bytes. A member made by a writer (an index file) is spooled (in memory up to SPOOL_BYTES, then
a temporary file) to learn its size and sha256 before it is added; one given as bytes (an
image) goes in as it is. Memory stays flat whatever the dataset's size. The
manifest, ``SHA256SUMS`` in ``sha256sum`` format, is the last member.

Member paths are relative and stay inside the archive: one that is empty, absolute, starts
with a drive, holds a backslash or a ``..`` segment is refused (UnsafeMemberPath), so that no
name from the data (a category id, a file name) can make an archive that climbs when unpacked.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from typing import BinaryIO, Literal

ArchiveKind = Literal["zip", "tar"]
SPOOL_BYTES = 8 * 2**20
MANIFEST = "SHA256SUMS"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# already compressed: storing them again costs time and gains nothing
_STORED = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".tar")
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeMemberPath(ValueError):
    """A member path that could land outside the folder the archive is unpacked into."""


def member_path_problem(path: str) -> str | None:
    """Why `path` may not name an archive member, or None when it is a safe relative path."""
    if not path:
        return "it is empty"
    if "\\" in path:
        return "it holds a backslash"
    if "\x00" in path:
        return "it holds a NUL character"
    if path.startswith("/"):
        return "it is absolute"
    if _DRIVE.match(path):
        return "it starts with a drive"
    if ".." in path.split("/"):
        return "it has a '..' segment"
    return None


class _Unseekable(io.RawIOBase):
    """A write-only view of a stream that says it cannot seek, so zipfile writes data
    descriptors the same way whether the target is a file or an HTTP response."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def discard(self) -> None:
        """Send whatever is written from now on nowhere."""
        self.target = io.BytesIO()


class ArchiveWriter:
    """Add members by path; `close` writes the manifest and ends the archive."""

    def __init__(self, target: BinaryIO, kind: ArchiveKind) -> None:
        if kind not in ("zip", "tar"):
            raise ValueError(f"archive kind must be zip or tar, not {kind!r}")
        self.kind = kind
        self.stream = _Unseekable(target)
        # the manifest grows on disk past a few MiB, and paths are remembered by an 8-byte
        # digest: a million members cost tens of MiB here, not hundreds
        self._manifest = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self._paths: set[bytes] = set()
        if kind == "zip":
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(self.stream, "w", allowZip64=True)
            self._tar: tarfile.TarFile | None = None
        else:
            self._zip = None
            self._tar = tarfile.open(  # noqa: SIM115  closed in close()
                fileobj=self.stream, mode="w|", format=tarfile.PAX_FORMAT
            )

    def add_bytes(self, path: str, data: bytes) -> str:
        """Add one member already in memory (an image, say); returns its sha256."""
        self._claim(path)
        self._member(path, io.BytesIO(data), len(data))
        return self._listed(path, hashlib.sha256(data).hexdigest())

    def add_writer(self, path: str, write: Callable[[BinaryIO], object]) -> str:
        """Add one member whose content `write` produces into a file; returns its sha256."""
        self._claim(path)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            write(spool)  # type: ignore[arg-type]
            size = spool.tell()
            spool.seek(0)
            digest = hashlib.sha256()
            for block in iter(lambda: spool.read(2**20), b""):
                digest.update(block)
            spool.seek(0)
            self._member(path, spool, size)  # type: ignore[arg-type]
        return self._listed(path, digest.hexdigest())

    def _claim(self, path: str) -> None:
        problem = member_path_problem(path)
        if problem:
            raise UnsafeMemberPath(f"refused archive member {path[:200]!r}: {problem}")
        key = hashlib.blake2b(path.encode(), digest_size=8).digest()
        if key in self._paths or path == MANIFEST:
            raise ValueError(f"{path!r} is in the archive already")
        self._paths.add(key)

    def _listed(self, path: str, digest: str) -> str:
        self._manifest.write(f"{digest}  {path}\n".encode())
        return digest

    def _member(self, path: str, source: BinaryIO, size: int) -> None:
        if self._zip is not None:
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.create_system = 3  # unix, whatever this machine is
            info.external_attr = 0o100644 << 16
            stored = path.lower().endswith(_STORED)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            with self._zip.open(info, "w", force_zip64=size >= 2**31) as out:
                shutil.copyfileobj(source, out, 2**20)
        else:
            assert self._tar is not None
            entry = tarfile.TarInfo(path)
            entry.size, entry.mtime, entry.mode = size, 0, 0o644
            entry.uid = entry.gid = 0
            entry.uname = entry.gname = ""
            self._tar.addfile(entry, source)
            # a streamed tar has no index to write: keep none
            self._tar.members.clear()  # type: ignore[attr-defined]

    def abort(self) -> None:
        """End an archive cut short (by an error or a cancel) without writing to the target."""
        self._manifest.close()
        self.stream.discard()
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()

    def close(self) -> None:
        """Write the manifest and end the archive."""
        size = self._manifest.tell()
        self._manifest.seek(0)
        self._member(MANIFEST, self._manifest, size)  # type: ignore[arg-type]
        self._manifest.close()
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()
        self.stream.flush()
