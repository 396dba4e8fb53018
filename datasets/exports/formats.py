"""The export formats: each writes categories and a stream of labelled images into an
`ArchiveWriter`, reading each image once, in the order given, holding no more than one image
and a few spooled index files at a time.

Layouts (``<folder>`` is a category's slug, or its WordNet-style id when asked for):

- imagefolder: ``<split>/<folder>/<file>`` (torchvision's ImageFolder reads each split as is)
  and ``synsets.txt``, ``<folder> <name>`` per line in label order, like ILSVRC's mapping;
- coco: ``annotations/instances_<split>.json`` (category ids are labels + 1, supercategory from
  the hierarchy, one annotation per box: bbox [x, y, w, h], area, iscrowd 0; each image also
  carries its ``category_id``) and ``images/<split>/<file>``;
- voc: ``Annotations/<stem>.xml`` per image (its boxes as objects), ``JPEGImages/<file>``,
  ``ImageSets/Main/<split>.txt`` and, per class, ``<slug>_<split>.txt`` with its positives;
- yolo: ``images/<split>/<file>``, ``labels/<split>/<stem>.txt`` (class cx cy w h, relative)
  and ``data.yaml``;
- csv, jsonl: ``manifest.csv`` or ``manifest.jsonl``, one row per image and category with the
  consensus (confidence, votes), split and boxes, plus ``images/<split>/<folder>/<file>``;
- webdataset: ``shards/<split>-NNNNNN.tar``, each sample ``<stem>.<ext>``, ``<stem>.cls``
  (the label) and ``<stem>.json``.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO
from xml.sax.saxutils import escape

from datasets.exports.archive import SPOOL_BYTES, ArchiveWriter
from datasets.exports.records import ExportCategory, ExportImage

FORMATS = ("imagefolder", "coco", "voc", "yolo", "csv", "jsonl", "webdataset")
SPLITS = ("train", "val")
MANIFEST_FIELDS = (
    "path",
    "image_sha256",
    "split",
    "label",
    "category",
    "wnid",
    "confidence",
    "yes_votes",
    "no_votes",
    "unsure_votes",
    "width",
    "height",
    "boxes",
)


@dataclass(frozen=True)
class FormatOptions:
    """How a format lays the dataset out. `include_images`: False writes the index files
    only (refused for imagefolder and webdataset, which are images)."""

    include_images: bool = True
    folder_naming: str = "slug"  # or "wnid"
    shard_size: int = 1000
    name: str = "crowdnet"


Progress = Callable[[ExportImage], None]
FormatWriter = Callable[
    [ArchiveWriter, list[ExportCategory], Iterable[ExportImage], "FormatOptions"], None
]


def _number(value: float) -> float | int:
    """Coordinates with two decimals, whole numbers as ints: stable, short JSON."""
    rounded = round(float(value), 2)
    return int(rounded) if rounded.is_integer() else rounded


def _box_json(boxes: Sequence[tuple[float, float, float, float]]) -> list[list[float | int]]:
    return [[_number(v) for v in box] for box in boxes]


class _Spool:
    """A text file spooled to disk past SPOOL_BYTES, copied into a member at the end."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(  # noqa: SIM115  closed by close()
            max_size=SPOOL_BYTES, mode="w+b"
        )
        self.count = 0

    def write(self, text: str) -> None:
        self.file.write(text.encode())

    def copy_to(self, out: BinaryIO) -> None:
        self.file.seek(0)
        while block := self.file.read(2**20):
            out.write(block)

    def close(self) -> None:
        self.file.close()


def export_write(
    kind: str,
    writer: ArchiveWriter,
    categories: Sequence[ExportCategory],
    images: Iterable[ExportImage],
    options: FormatOptions = FormatOptions(),
    progress: Progress | None = None,
) -> int:
    """Write `images` in format `kind` into `writer` (not closed here); returns the image count."""
    if kind not in FORMATS:
        raise ValueError(f"unknown format {kind!r}; choose one of: {', '.join(FORMATS)}")
    if not options.include_images and kind in ("imagefolder", "webdataset"):
        raise ValueError(f"{kind} is made of the images: it cannot leave them out")
    writers: dict[str, FormatWriter] = {
        "imagefolder": _imagefolder,
        "coco": _coco,
        "voc": _voc,
        "yolo": _yolo,
        "csv": partial(_manifest, "csv"),
        "jsonl": partial(_manifest, "jsonl"),
        "webdataset": _webdataset,
    }
    write = writers[kind]
    count = 0

    def counted() -> Iterable[ExportImage]:
        nonlocal count
        for image in images:
            yield image
            count += 1
            if progress is not None:
                progress(image)

    write(writer, list(categories), counted(), options)
    return count


def _imagefolder(
    writer: ArchiveWriter,
    categories: list[ExportCategory],
    images: Iterable[ExportImage],
    options: FormatOptions,
) -> None:
    folders = [c.folder(options.folder_naming) for c in categories]
    for image in images:
        writer.add_bytes(f"{image.split}/{folders[image.label]}/{image.file_name}", image.read())
    lines = "".join(f"{folder} {c.name}\n" for folder, c in zip(folders, categories, strict=True))
    writer.add_bytes("synsets.txt", lines.encode())


def _coco(
    writer: ArchiveWriter,
    categories: list[ExportCategory],
    images: Iterable[ExportImage],
    options: FormatOptions,
) -> None:
    spools = {split: (_Spool(), _Spool()) for split in SPLITS}
    annotation_id = 0
    try:
        for image in images:
            if options.include_images:
                writer.add_bytes(f"images/{image.split}/{image.file_name}", image.read())
            image_rows, box_rows = spools[image.split]
            # category_id on the image (not in COCO's schema, ignored by its readers) keeps
            # the label of an image without boxes, so an import gets every label back
            entry = {
                "id": image.id,
                "file_name": image.file_name,
                "width": image.width,
                "height": image.height,
                "category_id": image.label + 1,
            }
            image_rows.write(("," if image_rows.count else "") + json.dumps(entry))
            image_rows.count += 1
            for x0, y0, x1, y1 in image.boxes:
                annotation_id += 1
                width, height = _number(x1 - x0), _number(y1 - y0)
                box = {
                    "id": annotation_id,
                    "image_id": image.id,
                    "category_id": image.label + 1,
                    "bbox": [_number(x0), _number(y0), width, height],
                    "area": _number(width * height),
                    "iscrowd": 0,
                    "segmentation": [],
                }
                box_rows.write(("," if box_rows.count else "") + json.dumps(box))
                box_rows.count += 1
        coco_categories = json.dumps(
            [
                {
                    "id": c.index + 1,
                    "name": c.slug,
                    "supercategory": c.supercategory,
                    "synset": c.wnid,
                    "display_name": c.name,
                }
                for c in categories
            ]
        )
        for split, (image_rows, box_rows) in spools.items():

            def document(
                out: BinaryIO,
                image_rows: _Spool = image_rows,
                box_rows: _Spool = box_rows,
                split: str = split,
            ) -> None:
                info = {"description": f"{options.name} {split}", "version": "1.0"}
                out.write(f'{{"info":{json.dumps(info)},"licenses":[],'.encode())
                out.write(f'"categories":{coco_categories},"images":['.encode())
                image_rows.copy_to(out)
                out.write(b'],"annotations":[')
                box_rows.copy_to(out)
                out.write(b"]}")

            writer.add_writer(f"annotations/instances_{split}.json", document)
    finally:
        for pair in spools.values():
            for spool in pair:
                spool.close()


def _voc_xml(image: ExportImage, categories: list[ExportCategory], options: FormatOptions) -> bytes:
    name = escape(categories[image.label].slug)
    # VOC counts pixels from 1, corners inclusive
    objects = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{max(1, round(x0) + 1)}</xmin>"
        f"<ymin>{max(1, round(y0) + 1)}</ymin><xmax>{min(image.width, round(x1))}</xmax>"
        f"<ymax>{min(image.height, round(y1))}</ymax></bndbox></object>"
        for x0, y0, x1, y1 in image.boxes
    )
    return (
        f"<annotation><folder>{escape(options.name)}</folder>"
        f"<filename>{image.file_name}</filename>"
        f"<source><database>{escape(options.name)}</database></source>"
        f"<size><width>{image.width}</width><height>{image.height}</height>"
        f"<depth>3</depth></size><segmented>0</segmented>{objects}</annotation>\n"
    ).encode()


def _voc(
    writer: ArchiveWriter,
    categories: list[ExportCategory],
    images: Iterable[ExportImage],
    options: FormatOptions,
) -> None:
    sets = {split: _Spool() for split in SPLITS}
    positives = {(c.index, split): _Spool() for c in categories for split in SPLITS}
    try:
        for image in images:
            if options.include_images:
                writer.add_bytes(f"JPEGImages/{image.file_name}", image.read())
            writer.add_bytes(f"Annotations/{image.stem}.xml", _voc_xml(image, categories, options))
            sets[image.split].write(f"{image.stem}\n")
            positives[image.label, image.split].write(f"{image.stem}  1\n")
        for split, spool in sets.items():
            writer.add_writer(f"ImageSets/Main/{split}.txt", spool.copy_to)
        for (index, split), spool in positives.items():
            writer.add_writer(f"ImageSets/Main/{categories[index].slug}_{split}.txt", spool.copy_to)
    finally:
        for spool in [*sets.values(), *positives.values()]:
            spool.close()


def _yolo(
    writer: ArchiveWriter,
    categories: list[ExportCategory],
    images: Iterable[ExportImage],
    options: FormatOptions,
) -> None:
    for image in images:
        if options.include_images:
            writer.add_bytes(f"images/{image.split}/{image.file_name}", image.read())
        lines = "".join(
            f"{image.label} {(x0 + x1) / 2 / image.width:.6f} {(y0 + y1) / 2 / image.height:.6f} "
            f"{(x1 - x0) / image.width:.6f} {(y1 - y0) / image.height:.6f}\n"
            for x0, y0, x1, y1 in image.boxes
        )
        writer.add_bytes(f"labels/{image.split}/{image.stem}.txt", lines.encode())
    names = "".join(f"  {c.index}: {json.dumps(c.slug)}\n" for c in categories)
    data = f"path: .\ntrain: images/train\nval: images/val\nnc: {len(categories)}\nnames:\n{names}"
    writer.add_bytes("data.yaml", data.encode())


def manifest_row(image: ExportImage, category: ExportCategory, path: str) -> dict[str, object]:
    """One manifest row: the image, its category and the crowd's consensus on it."""
    return {
        "path": path,
        "image_sha256": image.sha256,
        "split": image.split,
        "label": image.label,
        "category": category.slug,
        "wnid": category.wnid,
        "confidence": round(image.confidence, 6),
        "yes_votes": image.yes_votes,
        "no_votes": image.no_votes,
        "unsure_votes": image.unsure_votes,
        "width": image.width,
        "height": image.height,
        "boxes": _box_json(image.boxes),
    }


def _manifest(
    kind: str,  # csv or jsonl
    writer: ArchiveWriter,
    categories: list[ExportCategory],
    images: Iterable[ExportImage],
    options: FormatOptions,
) -> None:
    rows = _Spool()
    text = io.StringIO()
    table = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    if kind == "csv":
        table.writeheader()
    try:
        for image in images:
            category = categories[image.label]
            path = ""
            if options.include_images:
                folder = category.folder(options.folder_naming)
                path = f"images/{image.split}/{folder}/{image.file_name}"
                writer.add_bytes(path, image.read())
            row = manifest_row(image, category, path)
            if kind == "csv":
                table.writerow({**row, "boxes": json.dumps(row["boxes"])})
            else:
                text.write(json.dumps(row) + "\n")
            rows.write(text.getvalue())
            text.seek(0)
            text.truncate()
        writer.add_writer(f"manifest.{kind}", rows.copy_to)
    finally:
        rows.close()


def _tar_add(tar: tarfile.TarFile, path: str, data: bytes) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


class _Shards:
    """The open shard of each split: a tar spooled until it holds `size` samples."""

    def __init__(self, writer: ArchiveWriter, size: int) -> None:
        if size < 1:
            raise ValueError("shard_size must be at least 1")
        self.writer, self.size = writer, size
        self.open: dict[str, tuple[tempfile.SpooledTemporaryFile[bytes], tarfile.TarFile, int]] = {}
        self.numbers = dict.fromkeys(SPLITS, 0)

    def add(self, split: str, files: list[tuple[str, bytes]]) -> None:
        if split not in self.open:
            # both live until the shard is full: closed in flush()
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
            tar = tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
            self.open[split] = (spool, tar, 0)
        spool, tar, samples = self.open[split]
        for path, data in files:
            _tar_add(tar, path, data)
        tar.members.clear()  # type: ignore[attr-defined]  # written as it goes: no index needed
        self.open[split] = (spool, tar, samples + 1)
        if samples + 1 >= self.size:
            self.flush(split)

    def flush(self, split: str) -> None:
        spool, tar, _ = self.open.pop(split)
        tar.close()
        spool.seek(0)
        name = f"shards/{split}-{self.numbers[split]:06d}.tar"
        self.numbers[split] += 1
        self.writer.add_writer(name, lambda out: out.write(spool.read()))
        spool.close()

    def close(self) -> None:
        for split in list(self.open):
            self.flush(split)


def _webdataset(
    writer: ArchiveWriter,
    categories: list[ExportCategory],
    images: Iterable[ExportImage],
    options: FormatOptions,
) -> None:
    shards = _Shards(writer, options.shard_size)
    for image in images:
        category = categories[image.label]
        meta = manifest_row(image, category, "")
        del meta["path"]
        shards.add(
            image.split,
            [
                (image.file_name, image.read()),
                (f"{image.stem}.cls", str(image.label).encode()),
                (f"{image.stem}.json", json.dumps(meta).encode()),
            ],
        )
    shards.close()
