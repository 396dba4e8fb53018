"""iter_archive and archive_kind: ZIP and TAR uploads read in memory, with every refusal path.

All archives are built here with zipfile and tarfile; nothing is extracted to disk.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from labeling.ingest.archives import (
    ArchiveEntry,
    ArchiveLimits,
    ArchiveRejected,
    archive_kind,
    iter_archive,
)

LIMITS = ArchiveLimits(
    max_entries=100, max_total_bytes=10_000_000, max_entry_bytes=1_000_000, max_ratio=100.0
)
ACCEPTED = ".zip, .tar, .tar.gz, .tgz, .tar.bz2 or .tar.xz"
RELATIVE_ONLY = (
    "entries must use relative paths inside the archive, "
    "re-create the archive from the folder that holds the images"
)


def _png(color: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "PNG")
    return buffer.getvalue()


PNG_A = _png((255, 0, 0))
PNG_B = _png((0, 0, 255))


def _zip(
    files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED, dirs: tuple[str, ...] = ()
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for directory in dirs:
            archive.mkdir(directory)
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _zip_infos(infos: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in infos:
            archive.writestr(info, data)
    return buffer.getvalue()


def _tar_member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = len(data) if kind == tarfile.REGTYPE else 0
    return member


def _tar(members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for member, data in members:
            archive.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return buffer.getvalue()


def _tar_files(files: dict[str, bytes], mode: str = "w") -> bytes:
    return _tar([(_tar_member(name, data), data) for name, data in files.items()], mode)


def _entries(data: bytes, limits: ArchiveLimits = LIMITS) -> list[ArchiveEntry]:
    return list(iter_archive(io.BytesIO(data), limits))


def _rejection(data: bytes, limits: ArchiveLimits = LIMITS) -> ArchiveRejected:
    entries = iter_archive(io.BytesIO(data), limits)
    with pytest.raises(ArchiveRejected) as caught:
        next(entries)
    return caught.value


def _ok(name: str, data: bytes) -> ArchiveEntry:
    return ArchiveEntry(name=name, data=data, rejection=None)


def _refused(name: str, code: str, message: str) -> ArchiveEntry:
    return ArchiveEntry(name=name, data=None, rejection=(code, message))


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (_zip({"a.png": PNG_A}), "zip"),
        (_zip({}), "zip"),
        (_tar_files({"a.png": PNG_A}), "tar"),
        (_tar_files({"a.png": PNG_A}, "w:gz")[:512], "tar"),
        (_tar_files({"a.png": PNG_A}, "w:bz2"), "tar"),
        (_tar_files({"a.png": PNG_A}, "w:xz"), "tar"),
        (gzip.compress(PNG_A), None),
        (bz2.compress(PNG_A), None),
        (lzma.compress(PNG_A), None),
        (b"\x1f\x8bnot really gzip", None),
        (PNG_A, None),
        (b"", None),
    ],
    ids=[
        "zip",
        "empty-zip",
        "tar",
        "tar.gz-first-512-bytes",
        "tar.bz2",
        "tar.xz",
        "gzip-of-png",
        "bzip2-of-png",
        "xz-of-png",
        "broken-gzip",
        "png",
        "empty",
    ],
)
def test_archive_kind_from_magic_bytes(head: bytes, kind: str | None) -> None:
    # given / when / then
    assert archive_kind(head) == kind


def test_archive_kind_defers_when_bzip2_head_is_too_short_to_tell() -> None:
    # given the first 100 bytes of a bzip2 stream (bzip2 only emits whole blocks)
    head = _tar_files({"a.png": PNG_A}, "w:bz2")[:100]

    # when / then iter_archive makes the final call
    assert archive_kind(head) == "tar"


def test_zip_yields_files_and_skips_directories() -> None:
    # given
    data = _zip({"a.png": PNG_A, "photos/b.png": PNG_B}, dirs=("photos",))

    # when
    entries = _entries(data)

    # then
    assert entries == [_ok("a.png", PNG_A), _ok("photos/b.png", PNG_B)]


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_in_every_compression_yields_files(mode: str) -> None:
    # given a tar with a directory, a "./"-prefixed file and a nested file
    members = [
        (_tar_member("photos", kind=tarfile.DIRTYPE), b""),
        (_tar_member("./a.png", PNG_A), PNG_A),
        (_tar_member("photos/b.png", PNG_B), PNG_B),
    ]
    data = _tar(members, mode)

    # when
    entries = _entries(data)

    # then
    assert entries == [_ok("./a.png", PNG_A), _ok("photos/b.png", PNG_B)]


@pytest.mark.parametrize("as_str", [True, False], ids=["str", "path"])
def test_archive_can_be_read_from_a_path(tmp_path: Path, as_str: bool) -> None:
    # given
    path = tmp_path / "upload.tgz"
    path.write_bytes(_tar_files({"a.png": PNG_A}, "w:gz"))

    # when
    entries = list(iter_archive(str(path) if as_str else path, LIMITS))

    # then
    assert entries == [_ok("a.png", PNG_A)]


def test_file_object_is_read_from_its_start_and_left_open() -> None:
    # given a file object already read to its end
    upload = io.BytesIO(_zip({"a.png": PNG_A}))
    upload.read()

    # when
    entries = list(iter_archive(upload, LIMITS))

    # then
    assert entries == [_ok("a.png", PNG_A)]
    assert not upload.closed


@pytest.mark.parametrize("container", ["zip", "tar"])
def test_resource_forks_and_dotfiles_are_skipped_silently(container: str) -> None:
    # given
    files = {
        "__MACOSX/._a.png": b"\x00\x05\x16\x07",
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
        "photos/.hidden.png": PNG_B,
        ".git/config": b"[core]",
        "a.png": PNG_A,
    }
    data = _zip(files) if container == "zip" else _tar_files(files)

    # when
    entries = _entries(data)

    # then
    assert entries == [_ok("a.png", PNG_A)]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.png", "climbs out of the archive with '..'"),
        ("photos/../../evil.png", "climbs out of the archive with '..'"),
        ("..\\evil.png", "climbs out of the archive with '..'"),
        ("/etc/x.png", "is an absolute path"),
        ("\\windows\\x.png", "is an absolute path"),
        ("C:\\x.png", "is an absolute path"),
        ("c:/x.png", "is an absolute path"),
    ],
)
@pytest.mark.parametrize("container", ["zip", "tar"])
def test_zip_slip_names_are_refused_and_the_walk_goes_on(
    container: str, name: str, reason: str
) -> None:
    # given an unsafe name followed by a fine one
    files = {name: PNG_B, "a.png": PNG_A}
    data = _zip(files) if container == "zip" else _tar_files(files)

    # when
    entries = _entries(data)

    # then
    assert entries == [
        _refused(name, "unsafe_path", f"{name!r} {reason}; {RELATIVE_ONLY}"),
        _ok("a.png", PNG_A),
    ]


def test_nul_byte_in_a_zip_name_is_refused() -> None:
    # given a stored name "a\0b.png" (zipfile writes no NUL itself, so patch the bytes)
    data = _zip({"a_b.png": PNG_A}).replace(b"a_b.png", b"a\x00b.png")

    # when
    entries = _entries(data)

    # then
    assert entries == [
        _refused("a\x00b.png", "unsafe_path", f"'a\\x00b.png' contains a NUL byte; {RELATIVE_ONLY}")
    ]


def test_symlink_in_zip_is_refused() -> None:
    # given a zip entry whose Unix mode says symbolic link
    link = zipfile.ZipInfo("link.png")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = _zip_infos([(link, b"/etc/passwd"), (zipfile.ZipInfo("a.png"), PNG_A)])

    # when
    entries = _entries(data)

    # then
    assert entries == [
        _refused(
            "link.png",
            "symlink",
            "'link.png' is a link; links are not followed, "
            "put the image file itself in the archive",
        ),
        _ok("a.png", PNG_A),
    ]


@pytest.mark.parametrize("file_type", [stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK])
def test_special_files_in_zip_are_refused(file_type: int) -> None:
    # given
    device = zipfile.ZipInfo("dev.png")
    device.create_system = 3
    device.external_attr = (file_type | 0o644) << 16

    # when
    entries = _entries(_zip_infos([(device, b"")]))

    # then
    assert entries == [
        _refused(
            "dev.png",
            "special_file",
            "'dev.png' is a device, pipe or other special file, not a regular file; leave it out",
        )
    ]


@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        (
            tarfile.SYMTYPE,
            "symlink",
            "'x.png' is a link; links are not followed, put the image file itself in the archive",
        ),
        (
            tarfile.LNKTYPE,
            "symlink",
            "'x.png' is a link; links are not followed, put the image file itself in the archive",
        ),
        (
            tarfile.FIFOTYPE,
            "special_file",
            "'x.png' is a device, pipe or other special file, not a regular file; leave it out",
        ),
        (
            tarfile.CHRTYPE,
            "special_file",
            "'x.png' is a device, pipe or other special file, not a regular file; leave it out",
        ),
        (
            tarfile.BLKTYPE,
            "special_file",
            "'x.png' is a device, pipe or other special file, not a regular file; leave it out",
        ),
    ],
    ids=["symlink", "hardlink", "fifo", "char-device", "block-device"],
)
def test_links_and_special_files_in_tar_are_refused(kind: bytes, code: str, message: str) -> None:
    # given
    member = _tar_member("x.png", kind=kind)
    member.linkname = "/etc/passwd"
    data = _tar([(member, b""), (_tar_member("a.png", PNG_A), PNG_A)])

    # when
    entries = _entries(data)

    # then
    assert entries == [_refused("x.png", code, message), _ok("a.png", PNG_A)]


@pytest.mark.parametrize(
    ("inner", "kind"),
    [
        (_zip({"a.png": PNG_A}), "ZIP"),
        (_tar_files({"a.png": PNG_A}), "TAR"),
        (gzip.compress(PNG_A), "gzip"),
        (bz2.compress(PNG_A), "bzip2"),
        (lzma.compress(PNG_A), "xz"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24, "7-Zip"),
        (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 24, "RAR"),
    ],
)
def test_nested_archives_are_not_unpacked(inner: bytes, kind: str) -> None:
    # given an archive holding another archive (named like an image, to be sure)
    data = _zip({"inner.png": inner, "a.png": PNG_A})

    # when
    entries = _entries(data)

    # then
    assert entries == [
        _refused(
            "inner.png",
            "nested_archive",
            f"'inner.png' is itself a {kind} archive; nested archives are not unpacked, "
            "upload it separately",
        ),
        _ok("a.png", PNG_A),
    ]


def test_nested_tar_gz_inside_tar_is_not_unpacked() -> None:
    # given
    inner = _tar_files({"a.png": PNG_A}, "w:gz")
    data = _tar_files({"more.tar.gz": inner})

    # when
    entries = _entries(data)

    # then
    assert [(e.name, e.rejection and e.rejection[0]) for e in entries] == [
        ("more.tar.gz", "nested_archive")
    ]


@pytest.mark.parametrize("container", ["zip", "tar"])
def test_entry_over_the_per_file_limit_is_refused(container: str) -> None:
    # given a 100,001-byte entry (stored: ratio 1) and a 100,000-byte limit
    limits = ArchiveLimits(
        max_entries=10, max_total_bytes=1_000_000, max_entry_bytes=100_000, max_ratio=10.0
    )
    files = {"big.png": b"\x89" * 100_001, "a.png": PNG_A}
    data = _zip(files, zipfile.ZIP_STORED) if container == "zip" else _tar_files(files)

    # when
    entries = _entries(data, limits)

    # then
    assert entries == [
        _refused(
            "big.png",
            "too_large",
            "'big.png' is larger than the 0.1 MB limit for one file; "
            "shrink it or upload it on its own",
        ),
        _ok("a.png", PNG_A),
    ]


def test_zip_bomb_entry_is_refused_without_being_inflated() -> None:
    # given 50 MB of zeros that deflate to about 50 KB
    data = _zip({"bomb.png": bytes(50_000_000), "a.png": PNG_A})
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("bomb.png")
    ratio = info.file_size / info.compress_size
    assert ratio > 900
    limits = ArchiveLimits(
        max_entries=10, max_total_bytes=100_000_000, max_entry_bytes=60_000_000, max_ratio=100.0
    )

    # when
    entries = _entries(data, limits)

    # then
    assert entries == [
        _refused(
            "bomb.png",
            "zip_bomb",
            f"'bomb.png' expands {ratio:,.0f} times its compressed size (limit 100); that is how "
            "zip bombs work, so it was skipped. A real image compresses far less; "
            "upload it on its own",
        ),
        _ok("a.png", PNG_A),
    ]


def test_zip_header_understating_a_size_is_caught_without_a_big_read() -> None:
    # given a good entry, then a 5,000-byte entry whose central directory claims 10 bytes
    data = bytearray(_zip({"a.png": PNG_A, "big.png": PNG_B * 20}, zipfile.ZIP_STORED))
    second = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 1)
    struct.pack_into("<I", data, second + 24, 10)
    entries = iter_archive(io.BytesIO(bytes(data)), LIMITS)

    # when the walk reaches the lying entry
    first = next(entries)
    with pytest.raises(ArchiveRejected) as caught:
        next(entries)

    # then what was yielded stands and the archive is reported damaged
    assert first == _ok("a.png", PNG_A)
    assert caught.value.code == "corrupt"
    assert caught.value.message == (
        "'big.png' in the archive could not be read (Bad CRC-32 for file 'big.png'); the archive "
        f"is damaged or uses an unsupported format, re-create it as a {ACCEPTED} without a password"
    )


@pytest.mark.parametrize("container", ["zip", "tar.gz"])
def test_too_many_entries_refuses_the_whole_archive(container: str) -> None:
    # given 2 files and 2 directories against a limit of 3 entries
    limits = ArchiveLimits(
        max_entries=3, max_total_bytes=1_000_000, max_entry_bytes=100_000, max_ratio=100.0
    )
    if container == "zip":
        data = _zip({"a/1.png": PNG_A, "b/2.png": PNG_B}, dirs=("a", "b"))
    else:
        directories = [(_tar_member(n, kind=tarfile.DIRTYPE), b"") for n in ("a", "b")]
        files = [(_tar_member(n, PNG_A), PNG_A) for n in ("a/1.png", "b/2.png")]
        data = _tar(directories + files, "w:gz")

    # when
    rejected = _rejection(data, limits)

    # then
    assert (rejected.code, rejected.message) == (
        "too_many_entries",
        "the archive has more than 3 entries; split it into parts of at most 3 files",
    )


@pytest.mark.parametrize("container", ["zip", "tar", "tar.xz"])
def test_declared_total_over_the_limit_refuses_the_whole_archive(container: str) -> None:
    # given two 1.5 MB entries against a 2 MB total
    limits = ArchiveLimits(
        max_entries=10, max_total_bytes=2_000_000, max_entry_bytes=2_000_000, max_ratio=10_000.0
    )
    files = {"a.png": bytes(1_500_000), "b.png": bytes(1_500_000)}
    data = {
        "zip": lambda: _zip(files),
        "tar": lambda: _tar_files(files),
        "tar.xz": lambda: _tar_files(files, "w:xz"),
    }[container]()

    # when
    rejected = _rejection(data, limits)

    # then
    assert (rejected.code, rejected.message) == (
        "too_large",
        "the archive unpacks to more than 2 MB; split the archive into parts under 2 MB",
    )


def test_encrypted_zip_is_refused() -> None:
    # given a zip whose entries are flagged encrypted (bit 0 of the general-purpose flags)
    data = bytearray(_zip({"a.png": PNG_A}))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.index(signature)
        data[start + flags_at] |= 0x01

    # when
    rejected = _rejection(bytes(data))

    # then
    assert (rejected.code, rejected.message) == (
        "encrypted",
        "the archive is password-protected; upload it again without a password",
    )


@pytest.mark.parametrize(
    "data",
    [PNG_A, gzip.compress(PNG_A), b"just some text\n" * 40, b""],
    ids=["png", "gzip-of-png", "text", "empty"],
)
def test_not_an_archive_is_refused(data: bytes) -> None:
    # given / when
    rejected = _rejection(data)

    # then
    assert (rejected.code, rejected.message) == (
        "not_an_archive",
        f"the file is not a ZIP or TAR archive; upload a {ACCEPTED}",
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_zip({"a.png": PNG_A})[:40], "File is not a zip file"),
        (
            _tar_files({"a.png": random.Random(0).randbytes(100_000)}, "w:gz")[:2000],
            "Compressed file ended before the end-of-stream marker was reached",
        ),
    ],
    ids=["truncated-zip", "truncated-tar.gz"],
)
def test_truncated_archive_is_corrupt(data: bytes, reason: str) -> None:
    # given / when
    rejected = _rejection(data)

    # then
    assert (rejected.code, rejected.message) == (
        "corrupt",
        f"the archive could not be read ({reason}); the archive is damaged or uses an "
        f"unsupported format, re-create it as a {ACCEPTED} without a password",
    )
