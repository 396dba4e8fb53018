"""Reading uploaded ZIP and TAR archives in memory, one entry at a time, through bounded reads.

Pure module (stdlib only; no Django); nothing is extracted to disk. Whole-archive problems raise
``ArchiveRejected``; a refused entry is yielded with its ``rejection`` and the walk goes on.
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Protocol

# Bytes of the file inspected to recognise an archive, and of a decompressed stream to find the
# TAR header magic ("ustar" at offset 257).
_HEAD_BYTES = 64 * 1024
_TAR_MAGIC_END = 262
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# Signatures of archives and compressed streams; such an entry is not unpacked further.
_NESTED_SIGNATURES: tuple[tuple[re.Pattern[bytes], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), kind)
    for pattern, kind in (
        (rb"\APK(?:\x03\x04|\x05\x06)", "ZIP"),
        (rb"\A.{257}ustar", "TAR"),
        (rb"\A\x1f\x8b", "gzip"),
        (rb"\ABZh[1-9](?:1AY&SY|\x17rE8P\x90)", "bzip2"),
        (rb"\A\xfd7zXZ\x00", "xz"),
        (rb"\A7z\xbc\xaf\x27\x1c", "7-Zip"),
        (rb"\ARar!\x1a\x07", "RAR"),
    )
)
_WINDOWS_DRIVE = re.compile(r"\A[A-Za-z]:")
# Errors the stdlib decompressors and archive readers raise on damaged or unsupported input.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, NotImplementedError)
_READ_ERRORS = (*_STREAM_ERRORS, tarfile.TarError, zipfile.BadZipFile, ValueError)
_ACCEPTED = ".zip, .tar, .tar.gz, .tgz, .tar.bz2 or .tar.xz"


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps for one archive: entry count (files and directories), total and per-entry
    uncompressed bytes, and the largest uncompressed/compressed ratio of a ZIP entry."""

    max_entries: int
    max_total_bytes: int
    max_entry_bytes: int
    max_ratio: float


class ArchiveRejected(Exception):
    """A whole archive refused; ``code`` is for programs, ``message`` for the uploader."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of an archive: its path as written there, and either its bytes or the
    (code, message) saying why it was refused."""

    name: str
    data: bytes | None
    rejection: tuple[str, str] | None


def archive_kind(head: bytes) -> str | None:
    """The kind of archive, "zip" or "tar", from a file's first bytes (64 KB is plenty), or None.

    A gzip, bzip2 or xz stream counts as "tar" when its decompressed start has the TAR magic,
    or when head ends before the decompressor produces enough to tell (bzip2 works in blocks
    of up to 900 KB); iter_archive then makes the final call.
    """
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head[257:_TAR_MAGIC_END] == b"ustar":
        return "tar"
    decompressor = _decompressor(head)
    if decompressor is None:
        return None
    try:
        start = decompressor.decompress(head, _TAR_MAGIC_END)
    except _STREAM_ERRORS:
        return None
    if len(start) >= _TAR_MAGIC_END:
        return "tar" if start[257:_TAR_MAGIC_END] == b"ustar" else None
    return None if decompressor.eof else "tar"


class _StreamDecompressor(Protocol):
    """What zlib, bz2 and lzma decompressor objects have in common."""

    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...

    @property
    def eof(self) -> bool: ...


def _decompressor(head: bytes) -> _StreamDecompressor | None:
    """A fresh decompressor for the gzip, bzip2 or xz stream head starts with, else None."""
    if head.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if head.startswith(b"BZh"):
        return bz2.BZ2Decompressor()
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    return None


def iter_archive(
    path_or_fileobj: str | os.PathLike[str] | IO[bytes], limits: ArchiveLimits
) -> Iterator[ArchiveEntry]:
    """Yield the regular files of a ZIP or TAR archive (gzip/bzip2/xz compressed TAR too).

    A file object must be seekable and is read from its start; it is not closed. Directories,
    __MACOSX/ and dotfiles are skipped silently. Raises ArchiveRejected before yielding
    anything for a file that is not an archive, a damaged, encrypted or oversized archive; and
    mid-way when the bytes actually read pass max_total_bytes (the entries yielded so far stand).
    """
    with ExitStack() as stack:
        if isinstance(path_or_fileobj, str | os.PathLike):
            fileobj: IO[bytes] = stack.enter_context(open(path_or_fileobj, "rb"))
        else:
            fileobj = path_or_fileobj
        fileobj.seek(0)
        kind = archive_kind(fileobj.read(_HEAD_BYTES))
        fileobj.seek(0)
        if kind is None:
            raise ArchiveRejected(
                "not_an_archive", f"the file is not a ZIP or TAR archive; upload a {_ACCEPTED}"
            )
        if kind == "zip":
            yield from _iter_zip(fileobj, limits)
        else:
            yield from _iter_tar(fileobj, limits)


def _iter_zip(fileobj: IO[bytes], limits: ArchiveLimits) -> Iterator[ArchiveEntry]:
    """iter_archive for a ZIP file: check the central directory, then read entry by entry."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except _READ_ERRORS as exc:
        raise _corrupt(exc) from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise _too_many_entries(limits)
        if sum(info.file_size for info in infos) > limits.max_total_bytes:
            raise _too_large(limits)
        if any(info.flag_bits & 0x1 for info in infos):
            raise ArchiveRejected(
                "encrypted",
                "the archive is password-protected; upload it again without a password",
            )
        total = 0
        for info in infos:
            entry = _zip_entry(archive, info, limits)
            if entry is None:
                continue
            total += len(entry.data or b"")
            if total > limits.max_total_bytes:
                raise _too_large(limits)
            yield entry


def _zip_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits
) -> ArchiveEntry | None:
    """The entry for one ZIP member, or None for one skipped silently."""
    # orig_filename is the name as stored; zipfile's filename is cut at the first NUL byte.
    name = info.orig_filename
    if info.is_dir():
        return None
    refusal = _path_refusal(name)
    if refusal is None and _is_skipped(name):
        return None
    refusal = (
        refusal
        or _mode_refusal(name, info.external_attr >> 16)
        or _size_refusal(name, info.file_size, limits)
        or _ratio_refusal(name, info, limits)
    )
    if refusal is not None:
        return ArchiveEntry(name=name, data=None, rejection=refusal)
    try:
        # zipfile never returns more than the declared file_size and checks the CRC at the end,
        # so a header that understates the size ends as a damaged archive, not a big read.
        with archive.open(info) as member:
            data = member.read(limits.max_entry_bytes + 1)
    except _READ_ERRORS as exc:
        raise _corrupt(exc, name) from exc
    return _entry_from_data(name, data, limits)


def _iter_tar(fileobj: IO[bytes], limits: ArchiveLimits) -> Iterator[ArchiveEntry]:
    """iter_archive for a TAR file: walk all headers first, then read member by member."""
    with _open_tar(fileobj) as archive:
        members = _tar_members(archive, limits)
        total = 0
        for member in members:
            entry = _tar_entry(archive, member, limits)
            if entry is None:
                continue
            total += len(entry.data or b"")
            if total > limits.max_total_bytes:
                raise _too_large(limits)
            yield entry


def _open_tar(fileobj: IO[bytes]) -> tarfile.TarFile:
    """The TAR file in fileobj, uncompressed or gzip/bzip2/xz compressed; corrupt if unreadable."""
    try:
        return tarfile.open(fileobj=fileobj, mode="r:*")
    except _READ_ERRORS as exc:
        raise _corrupt(exc) from exc


def _tar_members(archive: tarfile.TarFile, limits: ArchiveLimits) -> list[tarfile.TarInfo]:
    """All member headers, stopping as soon as the count or declared size is over the limit."""
    members: list[tarfile.TarInfo] = []
    declared = 0
    try:
        while (member := archive.next()) is not None:
            members.append(member)
            declared += member.size if member.isreg() else 0
            if len(members) > limits.max_entries:
                raise _too_many_entries(limits)
            if declared > limits.max_total_bytes:
                raise _too_large(limits)
    except _READ_ERRORS as exc:
        raise _corrupt(exc) from exc
    return members


def _tar_entry(
    archive: tarfile.TarFile, member: tarfile.TarInfo, limits: ArchiveLimits
) -> ArchiveEntry | None:
    """The entry for one TAR member, or None for one skipped silently."""
    name = member.name
    if member.isdir():
        return None
    refusal = _path_refusal(name)
    if refusal is None and _is_skipped(name):
        return None
    if refusal is None and (member.issym() or member.islnk()):
        refusal = _link_refusal(name)
    if refusal is None and not member.isreg():
        refusal = _special_refusal(name)
    refusal = refusal or _size_refusal(name, member.size, limits)
    if refusal is not None:
        return ArchiveEntry(name=name, data=None, rejection=refusal)
    try:
        stream = archive.extractfile(member)
        data = b"" if stream is None else stream.read(limits.max_entry_bytes + 1)
    except _READ_ERRORS as exc:
        raise _corrupt(exc, name) from exc
    return _entry_from_data(name, data, limits)


def _entry_from_data(name: str, data: bytes, limits: ArchiveLimits) -> ArchiveEntry:
    """The entry for bytes read with a bound of max_entry_bytes + 1: too large, nested, or fine."""
    refusal = _size_refusal(name, len(data), limits) or _nested_refusal(name, data)
    if refusal is not None:
        return ArchiveEntry(name=name, data=None, rejection=refusal)
    return ArchiveEntry(name=name, data=data, rejection=None)


def _path_refusal(name: str) -> tuple[str, str] | None:
    """unsafe_path for a name that could escape the folder it is unpacked into."""
    if "\x00" in name:
        reason = "contains a NUL byte"
    elif name.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(name):
        reason = "is an absolute path"
    elif ".." in re.split(r"[/\\]", name):
        reason = "climbs out of the archive with '..'"
    else:
        return None
    return (
        "unsafe_path",
        f"{name!r} {reason}; entries must use relative paths inside the archive, "
        "re-create the archive from the folder that holds the images",
    )


def _is_skipped(name: str) -> bool:
    """True for macOS resource forks (__MACOSX/) and hidden files or folders (.DS_Store)."""
    parts = [part for part in re.split(r"[/\\]", name) if part not in ("", ".")]
    return any(part == "__MACOSX" or part.startswith(".") for part in parts)


def _mode_refusal(name: str, mode: int) -> tuple[str, str] | None:
    """symlink or special_file from the Unix mode bits a ZIP entry may carry (0 when absent)."""
    if stat.S_ISLNK(mode):
        return _link_refusal(name)
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return _special_refusal(name)
    return None


def _link_refusal(name: str) -> tuple[str, str]:
    """symlink, for symbolic and hard links alike."""
    return (
        "symlink",
        f"{name!r} is a link; links are not followed, put the image file itself in the archive",
    )


def _special_refusal(name: str) -> tuple[str, str]:
    """special_file, for devices, FIFOs, sockets and unknown entry types."""
    return (
        "special_file",
        f"{name!r} is a device, pipe or other special file, not a regular file; leave it out",
    )


def _size_refusal(name: str, size: int, limits: ArchiveLimits) -> tuple[str, str] | None:
    """too_large for an entry of size bytes (declared or read) over max_entry_bytes."""
    if size <= limits.max_entry_bytes:
        return None
    return (
        "too_large",
        f"{name!r} is larger than the {_megabytes(limits.max_entry_bytes)} limit for one file; "
        "shrink it or upload it on its own",
    )


def _ratio_refusal(
    name: str, info: zipfile.ZipInfo, limits: ArchiveLimits
) -> tuple[str, str] | None:
    """zip_bomb for a ZIP entry that expands more than max_ratio times its compressed size."""
    if info.file_size == 0:
        return None
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio <= limits.max_ratio:
        return None
    return (
        "zip_bomb",
        f"{name!r} expands {ratio:,.0f} times its compressed size (limit {limits.max_ratio:g}); "
        "that is how zip bombs work, so it was skipped. A real image compresses far less; "
        "upload it on its own",
    )


def _nested_refusal(name: str, data: bytes) -> tuple[str, str] | None:
    """nested_archive for bytes that are themselves an archive or compressed stream."""
    for pattern, kind in _NESTED_SIGNATURES:
        if pattern.match(data):
            return (
                "nested_archive",
                f"{name!r} is itself a {kind} archive; nested archives are not unpacked, "
                "upload it separately",
            )
    return None


def _too_many_entries(limits: ArchiveLimits) -> ArchiveRejected:
    """too_many_entries, for more than max_entries files and directories."""
    return ArchiveRejected(
        "too_many_entries",
        f"the archive has more than {limits.max_entries:,} entries; "
        f"split it into parts of at most {limits.max_entries:,} files",
    )


def _too_large(limits: ArchiveLimits) -> ArchiveRejected:
    """too_large, for an archive unpacking (declared or actually read) past max_total_bytes."""
    size = _megabytes(limits.max_total_bytes)
    return ArchiveRejected(
        "too_large",
        f"the archive unpacks to more than {size}; split the archive into parts under {size}",
    )


def _corrupt(exc: BaseException, name: str | None = None) -> ArchiveRejected:
    """corrupt, for an archive (or the named entry in it) the stdlib readers fail on."""
    where = "the archive" if name is None else f"{name!r} in the archive"
    return ArchiveRejected(
        "corrupt",
        f"{where} could not be read ({exc}); the archive is damaged or uses an unsupported "
        f"format, re-create it as a {_ACCEPTED} without a password",
    )


def _megabytes(size: int) -> str:
    """size in bytes as decimal megabytes for messages: 1500000 -> '1.5 MB', 1000 -> '0.001 MB'."""
    return f"{size / 1_000_000:g} MB"
