"""Every export format written from plain records and read back by its real reader:
torchvision's ImageFolder, pycocotools, ElementTree for VOC, YOLO's text, csv/json, and the
webdataset library; archives byte for byte reproducible."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from PIL import Image

from datasets.exports.archive import MANIFEST, ArchiveWriter
from datasets.exports.formats import FormatOptions, export_write
from datasets.exports.records import ExportCategory, ExportImage

CATEGORIES = [
    ExportCategory(0, "tabby-cat", "tabby cat", "n02123045", "cat"),
    ExportCategory(1, "goldfish", "goldfish", "", ""),
    ExportCategory(2, "sports-car", "sports car", "n04285008", "car"),
]


def _png(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def _images() -> list[ExportImage]:
    """Seven images over three classes and both splits; two with boxes."""
    rows = [
        (0, "train", ()),
        (0, "train", ((2.0, 3.0, 30.5, 20.0),)),
        (1, "train", ()),
        (2, "train", ((0.0, 0.0, 40.0, 30.0), (10.25, 5.0, 20.0, 12.0))),
        (0, "val", ()),
        (1, "val", ()),
        (2, "val", ()),
    ]
    images = []
    for index, (label, split, boxes) in enumerate(rows):
        data = _png((index * 30, label * 80, 200), (40, 30))
        images.append(
            ExportImage(
                id=index + 1,
                sha256=hashlib.sha256(data).hexdigest(),
                extension="png",
                width=40,
                height=30,
                split=split,
                label=label,
                boxes=boxes,
                confidence=0.9 + index / 100,
                yes_votes=3 + index,
                no_votes=index % 2,
                unsure_votes=0,
                read=lambda data=data: data,
            )
        )
    return images


def _export(kind: str, archive: str = "zip", **options: object) -> bytes:
    out = io.BytesIO()
    writer = ArchiveWriter(out, archive)  # type: ignore[arg-type]
    count = export_write(kind, writer, CATEGORIES, _images(), FormatOptions(**options))  # type: ignore[arg-type]
    writer.close()
    assert count == 7
    return out.getvalue()


def _unzip(data: bytes, into: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(into)  # noqa: S202  our own archive, names checked by the writer
    return into


def _sums_match(data: bytes) -> list[str]:
    """The manifest's paths, after checking each listed sha256 against the member."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        lines = archive.read(MANIFEST).decode().splitlines()
        paths = []
        for line in lines:
            digest, path = line.split("  ", 1)
            assert hashlib.sha256(archive.read(path)).hexdigest() == digest, path
            paths.append(path)
        assert sorted([*paths, MANIFEST]) == sorted(archive.namelist())
    return paths


@pytest.mark.parametrize(
    "kind", ["imagefolder", "coco", "voc", "yolo", "csv", "jsonl", "webdataset"]
)
@pytest.mark.parametrize("archive", ["zip", "tar"])
def test_every_format_is_byte_identical_twice_and_its_manifest_lists_every_file(kind, archive):
    first, second = _export(kind, archive), _export(kind, archive)

    assert first == second
    if archive == "zip":
        _sums_match(first)
    else:
        with tarfile.open(fileobj=io.BytesIO(first)) as tar:
            names = tar.getnames()
            assert names[-1] == MANIFEST
            assert {m.mtime for m in tar.getmembers()} == {0}


def test_imagefolder_loads_in_torchvision_with_the_right_classes(tmp_path):
    from torchvision.datasets import ImageFolder

    root = _unzip(_export("imagefolder", folder_naming="wnid"), tmp_path)

    train = ImageFolder(str(root / "train"))
    # goldfish has no WordNet id: its slug stands in
    assert train.classes == ["goldfish", "n02123045", "n04285008"]
    by_folder = {"n02123045": 0, "goldfish": 1, "n04285008": 2}
    labels = sorted(by_folder[train.classes[target]] for _, target in train.samples)
    assert labels == [0, 0, 1, 2]
    assert len(ImageFolder(str(root / "val"))) == 3
    assert (root / "synsets.txt").read_text() == (
        "n02123045 tabby cat\ngoldfish goldfish\nn04285008 sports car\n"
    )


def test_coco_loads_in_pycocotools_with_ids_areas_and_boxes(tmp_path):
    from pycocotools.coco import COCO

    root = _unzip(_export("coco"), tmp_path)

    coco = COCO(str(root / "annotations" / "instances_train.json"))
    assert sorted(coco.getImgIds()) == [1, 2, 3, 4]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [
        "tabby-cat",
        "goldfish",
        "sports-car",
    ]
    assert coco.loadCats(1)[0]["supercategory"] == "cat"
    annotations = coco.loadAnns(coco.getAnnIds())
    assert [(a["id"], a["image_id"], a["category_id"]) for a in annotations] == [
        (1, 2, 1),
        (2, 4, 3),
        (3, 4, 3),
    ]
    assert [a["bbox"] for a in annotations] == [
        [2, 3, 28.5, 17],
        [0, 0, 40, 30],
        [10.25, 5, 9.75, 7],
    ]
    assert [a["area"] for a in annotations] == [484.5, 1200, 68.25]
    assert {a["iscrowd"] for a in annotations} == {0}
    first = coco.loadImgs(2)[0]
    assert (root / "images" / "train" / first["file_name"]).is_file()
    val = COCO(str(root / "annotations" / "instances_val.json"))
    assert sorted(val.getImgIds()) == [5, 6, 7] and val.getAnnIds() == []


def test_voc_xml_parses_to_the_boxes_and_class_sets(tmp_path):
    root = _unzip(_export("voc"), tmp_path)
    images = _images()

    tree = ElementTree.parse(root / "Annotations" / f"{images[3].stem}.xml").getroot()  # noqa: S314

    assert tree.findtext("filename") == images[3].file_name
    assert (tree.findtext("size/width"), tree.findtext("size/height")) == ("40", "30")
    boxes = [
        (
            o.findtext("name"),
            *(int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")),
        )
        for o in tree.findall("object")
    ]
    assert boxes == [("sports-car", 1, 1, 40, 30), ("sports-car", 11, 6, 20, 12)]
    assert (root / "ImageSets" / "Main" / "val.txt").read_text().split() == [
        image.stem for image in images[4:]
    ]
    assert (root / "ImageSets" / "Main" / "goldfish_train.txt").read_text() == (
        f"{images[2].stem}  1\n"
    )
    assert (root / "JPEGImages" / images[0].file_name).read_bytes() == images[0].read()


def test_yolo_labels_parse_back_to_the_pixel_boxes(tmp_path):
    root = _unzip(_export("yolo"), tmp_path)
    images = _images()

    lines = (root / "labels" / "train" / f"{images[3].stem}.txt").read_text().splitlines()

    parsed = []
    for line in lines:
        label, cx, cy, w, h = line.split()
        cx, cy, w, h = float(cx) * 40, float(cy) * 30, float(w) * 40, float(h) * 30
        parsed.append((int(label), cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    assert [(label, *(round(v, 3) for v in box)) for label, *box in parsed] == [
        (2, 0.0, 0.0, 40.0, 30.0),
        (2, 10.25, 5.0, 20.0, 12.0),
    ]
    assert (root / "labels" / "val" / f"{images[4].stem}.txt").read_text() == ""
    data = yaml.safe_load((root / "data.yaml").read_text())
    assert data["nc"] == 3
    assert data["names"] == {0: "tabby-cat", 1: "goldfish", 2: "sports-car"}


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_manifests_have_one_row_per_image_with_its_consensus(kind, tmp_path):
    root = _unzip(_export(kind), tmp_path)
    text = (root / f"manifest.{kind}").read_text()

    if kind == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        rows = [{**row, "boxes": json.loads(row["boxes"])} for row in rows]
    else:
        rows = [json.loads(line) for line in text.splitlines()]

    assert len(rows) == 7
    fourth = rows[3]
    assert fourth["category"] == "sports-car" and fourth["wnid"] == "n04285008"
    assert fourth["boxes"] == [[0, 0, 40, 30], [10.25, 5, 20, 12]]
    assert str(fourth["yes_votes"]) == "6" and str(fourth["confidence"]) == "0.93"
    assert fourth["path"] == f"images/train/sports-car/{_images()[3].file_name}"
    assert (root / fourth["path"]).read_bytes() == _images()[3].read()


def test_a_manifest_without_images_holds_only_the_index(tmp_path):
    root = _unzip(_export("jsonl", include_images=False), tmp_path)

    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == [MANIFEST, "manifest.jsonl"]
    assert json.loads((root / "manifest.jsonl").read_text().splitlines()[0])["path"] == ""


def test_webdataset_shards_iterate_in_the_webdataset_library(tmp_path):
    import webdataset

    root = _unzip(_export("webdataset", shard_size=2), tmp_path)
    shards = sorted(str(p) for p in (root / "shards").glob("train-*.tar"))

    assert [Path(s).name for s in shards] == ["train-000000.tar", "train-000001.tar"]
    samples = list(webdataset.WebDataset(shards, shardshuffle=False))
    assert [int(s["cls"]) for s in samples] == [0, 0, 1, 2]
    assert [s["__key__"] for s in samples] == [image.stem for image in _images()[:4]]
    assert json.loads(samples[3]["json"])["boxes"] == [[0, 0, 40, 30], [10.25, 5, 20, 12]]
    assert samples[0]["png"] == _images()[0].read()


def test_formats_that_are_images_refuse_to_leave_them_out():
    writer = ArchiveWriter(io.BytesIO(), "zip")
    with pytest.raises(ValueError, match="imagefolder is made of the images"):
        export_write(
            "imagefolder", writer, CATEGORIES, _images(), FormatOptions(include_images=False)
        )
    with pytest.raises(ValueError, match="unknown format 'tfrecord'"):
        export_write("tfrecord", writer, CATEGORIES, _images())


def test_an_archive_refuses_a_path_twice():
    writer = ArchiveWriter(io.BytesIO(), "tar")
    writer.add_bytes("a.txt", b"1")
    with pytest.raises(ValueError, match="in the archive already"):
        writer.add_bytes("a.txt", b"2")
    with pytest.raises(ValueError, match="in the archive already"):
        writer.add_bytes(MANIFEST, b"")
