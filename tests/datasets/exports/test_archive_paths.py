"""The archive writer refuses member paths that could climb out of the folder the archive is
unpacked into, and no category id, however it got into the data, makes an export climb."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from datasets.exports.archive import MANIFEST, ArchiveWriter, UnsafeMemberPath
from datasets.exports.formats import FormatOptions, export_write
from datasets.exports.records import ExportCategory, ExportImage


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "it is empty"),
        ("/etc/passwd", "it is absolute"),
        ("C:/Windows/win.ini", "it starts with a drive"),
        ("c:evil.png", "it starts with a drive"),
        ("train\\..\\evil.png", "it holds a backslash"),
        ("..", "it has a '..' segment"),
        ("../evil.png", "it has a '..' segment"),
        ("train/../../../../tmp/zz/a.png", "it has a '..' segment"),
        ("train/n1/..", "it has a '..' segment"),
        ("a\x00.png", "it holds a NUL character"),
    ],
)
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_the_writer_refuses_paths_that_could_climb(path, problem, kind):
    out = io.BytesIO()
    writer = ArchiveWriter(out, kind)

    with pytest.raises(UnsafeMemberPath) as refused:
        writer.add_bytes(path, b"data")
    with pytest.raises(UnsafeMemberPath):
        writer.add_writer(path, lambda f: f.write(b"data"))
    writer.abort()

    assert str(refused.value) == f"refused archive member {path!r}: {problem}"
    assert out.getvalue() == b""  # nothing of it reached the target


def test_a_refused_path_leaves_the_archive_and_its_manifest_clean():
    out = io.BytesIO()
    writer = ArchiveWriter(out, "zip")
    with pytest.raises(UnsafeMemberPath):
        writer.add_bytes("../evil.png", b"evil")
    writer.add_bytes("train/..a/ok..png", b"fine")  # dots inside a name are not a segment
    writer.close()

    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        assert archive.namelist() == ["train/..a/ok..png", MANIFEST]
        assert archive.read(MANIFEST).decode() == (
            f"{hashlib.sha256(b'fine').hexdigest()}  train/..a/ok..png\n"
        )


def test_an_imagefolder_export_named_by_wnid_never_climbs():
    # given a category whose id came in before ids were checked
    categories = [
        ExportCategory(0, "zz", "zz", "../../../../tmp/zz", ""),
        ExportCategory(1, "tabby", "tabby", "n02123045", ""),
    ]
    data = b"\x89PNG fake"
    images = [
        ExportImage(
            id=number,
            sha256=hashlib.sha256(data + bytes([number])).hexdigest(),
            extension="png",
            width=4,
            height=4,
            split="train",
            label=label,
            boxes=(),
            confidence=1.0,
            yes_votes=3,
            no_votes=0,
            unsure_votes=0,
            read=lambda: data,
        )
        for number, label in ((1, 0), (2, 1))
    ]
    out = io.BytesIO()
    writer = ArchiveWriter(out, "zip")

    # when it is exported with folders named by WordNet id
    export_write("imagefolder", writer, categories, images, FormatOptions(folder_naming="wnid"))
    writer.close()

    # then the malformed id falls back to the slug, and no member climbs
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        names = archive.namelist()
    assert sorted({name.rsplit("/", 1)[0] for name in names if "/" in name}) == [
        "train/n02123045",
        "train/zz",
    ]
    assert not any(".." in name.split("/") for name in names)
