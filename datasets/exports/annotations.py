"""Reading the annotations people bring: COCO JSON, Pascal VOC XML, YOLO, ImageFolder and
Label Studio's JSON export, as categories and labelled images with pixel boxes.

Pure: it reads the text files of an archive (path -> bytes) and knows which image files the
archive holds and their sizes; every problem becomes a `RecordError` naming the file and
record, and nothing is guessed. The service decides what to write.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

import yaml
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from datasets.exports.records import Box
from labeling.wordnet_ids import CATEGORY_NAME_MAX_LENGTH, WNID_MESSAGE, is_wnid, slug_of

IMPORT_FORMATS = ("coco", "voc", "yolo", "imagefolder", "labelstudio")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
TEXT_SUFFIXES = (".json", ".xml", ".txt", ".yaml", ".yml")
BOX_SLACK = 1.0  # pixels a box may pass the image's edge (rounding in other tools)


@dataclass(frozen=True)
class ImportCategory:
    slug: str
    name: str
    wnid: str = ""
    parent: str = ""  # a slug, or "" for a root


@dataclass(frozen=True)
class AnnotatedImage:
    """One label: an image of the archive shows `category` (a slug), with these boxes."""

    path: str
    category: str
    boxes: tuple[Box, ...]
    record: str


@dataclass(frozen=True)
class RecordError:
    record: str
    message: str


@dataclass
class ParsedAnnotations:
    categories: dict[str, ImportCategory] = field(default_factory=dict)
    images: list[AnnotatedImage] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)

    def error(self, record: str, message: str) -> None:
        self.errors.append(RecordError(record, message))

    def category(self, name: str, record: str = "archive", **fields: str) -> str:
        """The slug for a category called `name`, declared (and checked) on first sight."""
        slug = slug_of(name)
        if slug not in self.categories:
            category = ImportCategory(slug=slug, name=fields.pop("display", name), **fields)
            problem = _category_problem(category)
            if problem:
                self.error(record, problem)
            self.categories[slug] = category
        return slug


def _category_problem(category: ImportCategory) -> str | None:
    """Why the category could not be stored as given (a name too long, a malformed id)."""
    if "\x00" in category.name:  # no database text column takes it
        return f"category name {category.name[:40]!r} holds a NUL character"
    if len(category.name) > CATEGORY_NAME_MAX_LENGTH:
        return (
            f"category name {category.name[:40]!r}… is {len(category.name):,} characters; "
            f"at most {CATEGORY_NAME_MAX_LENGTH} are allowed"
        )
    if category.wnid and not is_wnid(category.wnid):
        return f"synset {category.wnid[:40]!r} of category {category.name[:40]!r}: {WNID_MESSAGE}"
    return None


@dataclass(frozen=True)
class ArchiveView:
    """What a reader sees of an archive: text files by path, image paths with their size."""

    texts: Mapping[str, bytes]
    sizes: Mapping[str, tuple[int, int]]

    def resolve(self, name: str, near: str = "") -> str | None:
        """The archive's image for a file name an annotation gives: the exact path, the path
        beside `near` (an annotation file's folder), or the one image with that base name."""
        name = posixpath.normpath(name.replace("\\", "/")).lstrip("/")
        if name in self.sizes:
            return name
        if near:
            beside = posixpath.normpath(posixpath.join(posixpath.dirname(near), name))
            if beside in self.sizes:
                return beside
        base = posixpath.basename(name)
        matches = [path for path in self.sizes if posixpath.basename(path) == base]
        return matches[0] if len(matches) == 1 else None


def _box_problem(box: Box, size: tuple[int, int]) -> str | None:
    x0, y0, x1, y1 = box
    width, height = size
    if not all(isinstance(v, int | float) for v in box):
        return "its coordinates are not numbers"
    if x1 <= x0 or y1 <= y0:
        return f"box {list(box)} is empty or upside down"
    if x0 < -BOX_SLACK or y0 < -BOX_SLACK or x1 > width + BOX_SLACK or y1 > height + BOX_SLACK:
        return f"box {list(box)} lies outside the {width}x{height} image"
    return None


def _clip(box: Box, size: tuple[int, int]) -> Box:
    x0, y0, x1, y1 = box
    return (max(0.0, x0), max(0.0, y0), min(float(size[0]), x1), min(float(size[1]), y1))


def _add(
    parsed: ParsedAnnotations,
    view: ArchiveView,
    path: str | None,
    name: str,
    category: str,
    boxes: list[Box],
    record: str,
) -> None:
    """One label, after checking its image is in the archive and its boxes lie on it."""
    if path is None:
        parsed.error(record, f"image file {name!r} is not in the archive")
        return
    size = view.sizes[path]
    for box in boxes:
        problem = _box_problem(box, size)
        if problem:
            parsed.error(record, problem)
            return
    parsed.images.append(
        AnnotatedImage(path, category, tuple(_clip(b, size) for b in boxes), record)
    )


def _json(parsed: ParsedAnnotations, path: str, data: bytes) -> object | None:
    try:
        document: object = json.loads(data)
        return document
    except (ValueError, UnicodeDecodeError) as error:
        parsed.error(path, f"not valid JSON ({error})")
        return None
    except RecursionError:  # the decoder recurses once per level of nesting
        parsed.error(path, "not valid JSON (nested too deeply)")
        return None


def read_coco(view: ArchiveView) -> ParsedAnnotations:
    parsed = ParsedAnnotations()
    documents = 0
    for path, data in sorted(view.texts.items()):
        if not path.endswith(".json"):
            continue
        document = _json(parsed, path, data)
        if not isinstance(document, dict) or "images" not in document:
            continue
        documents += 1
        categories: dict[int, str] = {}
        for category in document.get("categories", []):
            try:
                categories[int(category["id"])] = parsed.category(
                    str(category["name"]),
                    record=f"{path}: category {category['id']!r:.40}",
                    display=str(category.get("display_name") or category["name"]),
                    wnid=str(category.get("synset") or ""),
                    parent=slug_of(category["supercategory"])
                    if category.get("supercategory")
                    else "",
                )
            except (KeyError, TypeError, ValueError):
                parsed.error(f"{path}: category {category!r:.80}", "needs an id and a name")
        images: dict[int, dict[str, object]] = {}
        for image in document.get("images", []):
            try:
                images[int(image["id"])] = image
            except (KeyError, TypeError, ValueError):
                parsed.error(f"{path}: image {image!r:.80}", "needs an id")
        boxes: dict[tuple[int, int], list[Box]] = defaultdict(list)
        for annotation in document.get("annotations", []):
            number = annotation.get("id", "?") if isinstance(annotation, dict) else "?"
            record = f"{path}: annotation {number}"
            try:
                image_id, category_id = int(annotation["image_id"]), int(annotation["category_id"])
                x, y, w, h = (float(v) for v in annotation["bbox"])
            except (KeyError, TypeError, ValueError):
                parsed.error(record, "needs image_id, category_id and a bbox [x, y, width, height]")
                continue
            if category_id not in categories:
                parsed.error(
                    record, f"category_id {category_id} is not among the file's categories"
                )
                continue
            if image_id not in images:
                parsed.error(record, f"image_id {image_id} is not among the file's images")
                continue
            boxes[image_id, category_id].append((x, y, x + w, y + h))
        labelled: dict[int, set[int]] = defaultdict(set)
        for image_id, category_id in boxes:
            labelled[image_id].add(category_id)
        for image_id, image in images.items():
            own = image.get("category_id")
            if own is not None:
                if not isinstance(own, int) or own not in categories:
                    parsed.error(
                        f"{path}: image {image_id}",
                        f"category_id {own!r} is not among the file's categories",
                    )
                    continue
                labelled[image_id].add(own)
            name = str(image.get("file_name", ""))
            resolved = view.resolve(name, near=posixpath.dirname(posixpath.dirname(path)) + "/")
            for category_id in sorted(labelled[image_id]):
                _add(
                    parsed,
                    view,
                    resolved,
                    name,
                    categories[category_id],
                    boxes.get((image_id, category_id), []),
                    f"{path}: image {image_id}",
                )
    if documents == 0:
        parsed.error("archive", "no COCO JSON file (with images, annotations and categories) in it")
    return parsed


def read_voc(view: ArchiveView) -> ParsedAnnotations:
    parsed = ParsedAnnotations()
    by_stem: dict[str, tuple[str, str]] = {}
    for path, data in sorted(view.texts.items()):
        if not path.endswith(".xml"):
            continue
        try:
            root = ElementTree.fromstring(data)
        except (ElementTree.ParseError, DefusedXmlException) as error:
            parsed.error(path, f"not valid XML, or XML with entities ({type(error).__name__})")
            continue
        if root.tag != "annotation":
            continue
        name = root.findtext("filename") or ""
        resolved = view.resolve(
            name, near=posixpath.dirname(posixpath.dirname(path)) + "/JPEGImages/"
        )
        by_stem[posixpath.splitext(posixpath.basename(path))[0]] = (name, path)
        per_class: dict[str, list[Box]] = defaultdict(list)
        for number, obj in enumerate(root.findall("object"), 1):
            try:
                label = parsed.category(obj.findtext("name") or "", record=path)
                # VOC counts from 1 with inclusive corners
                x0, y0, x1, y1 = (
                    float(obj.findtext(f"bndbox/{k}") or "x")
                    for k in ("xmin", "ymin", "xmax", "ymax")
                )
            except ValueError:
                parsed.error(f"{path}: object {number}", "needs a name and a numeric bndbox")
                continue
            per_class[label].append((x0 - 1, y0 - 1, x1, y1))
        for label, boxes in sorted(per_class.items()):
            _add(parsed, view, resolved, name, label, boxes, path)
    # images without objects get their class from ImageSets/Main/<class>_<split>.txt
    boxed: set[tuple[str | None, str]] = {(image.path, image.category) for image in parsed.images}
    for path, data in sorted(view.texts.items()):
        match = re.fullmatch(r"(?:.*/)?ImageSets/Main/(.+)_(train|val|trainval|test)\.txt", path)
        if not match:
            continue
        label = parsed.category(match.group(1), record=path)
        for line in data.decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 2 or parts[1] != "1" or parts[0] not in by_stem:
                continue
            name, xml_path = by_stem[parts[0]]
            resolved = view.resolve(
                name, near=posixpath.dirname(posixpath.dirname(xml_path)) + "/JPEGImages/"
            )
            if (resolved, label) not in boxed:
                _add(parsed, view, resolved, name, label, [], f"{path}: {parts[0]}")
                boxed.add((resolved, label))
    if not by_stem:
        parsed.error("archive", "no Pascal VOC annotation XML in it")
    return parsed


def read_yolo(view: ArchiveView) -> ParsedAnnotations:
    parsed = ParsedAnnotations()
    config = next(
        (p for p in sorted(view.texts) if posixpath.basename(p) in ("data.yaml", "data.yml")), None
    )
    if config is None:
        parsed.error("archive", "no data.yaml naming the classes")
        return parsed
    try:
        names = yaml.safe_load(view.texts[config])["names"]
    except (yaml.YAMLError, KeyError, TypeError) as error:
        parsed.error(config, f"needs a names list or mapping ({type(error).__name__})")
        return parsed
    table = dict(enumerate(names)) if isinstance(names, list) else dict(names or {})
    classes = {int(k): parsed.category(str(v), record=config) for k, v in table.items()}
    root = posixpath.dirname(config)
    for path, data in sorted(view.texts.items()):
        match = re.fullmatch(r"(?:.*/)?labels/(.+)\.txt", path)
        if not match:
            continue
        stem = match.group(1)
        image = next(
            (
                p
                for p in view.sizes
                if p.startswith(posixpath.join(root, "images", stem) + ".")
                or p.startswith(f"images/{stem}.")
            ),
            None,
        )
        if image is None:
            parsed.error(path, f"no image images/{stem}.* beside it")
            continue
        width, height = view.sizes[image]
        per_class: dict[int, list[Box]] = defaultdict(list)
        for number, line in enumerate(data.decode(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                fields = line.split()
                if len(fields) < 5:
                    raise ValueError(line)
                index = int(fields[0])
                cx, w = float(fields[1]) * width, float(fields[3]) * width
                cy, h = float(fields[2]) * height, float(fields[4]) * height
            except ValueError:
                parsed.error(f"{path}: line {number}", "needs: class cx cy w h")
                continue
            if index not in classes:
                parsed.error(f"{path}: line {number}", f"class {index} is not in {config}")
                continue
            per_class[index].append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        for index, boxes in sorted(per_class.items()):
            _add(parsed, view, image, image, classes[index], boxes, path)
    return parsed


def read_imagefolder(view: ArchiveView) -> ParsedAnnotations:
    parsed = ParsedAnnotations()
    names: dict[str, str] = {}
    for path, data in view.texts.items():
        if posixpath.basename(path) in ("synsets.txt", "LOC_synset_mapping.txt"):
            for line in data.decode(errors="replace").splitlines():
                folder, _, name = line.partition(" ")
                if folder:
                    names[folder] = name.strip() or folder
    for path in sorted(view.sizes):
        parts = path.split("/")
        if len(parts) < 2:
            parsed.error(path, "an image outside any class folder")
            continue
        folder = parts[-2]
        wnid = folder if re.fullmatch(r"n\d{8}", folder) else ""
        slug = parsed.category(
            names.get(folder, folder) if wnid else folder,
            record=path,
            wnid=wnid,
            display=names.get(folder, folder),
        )
        _add(parsed, view, path, path, slug, [], path)
    return parsed


def read_labelstudio(view: ArchiveView) -> ParsedAnnotations:
    parsed = ParsedAnnotations()
    found = False
    for path, data in sorted(view.texts.items()):
        if not path.endswith(".json"):
            continue
        tasks = _json(parsed, path, data)
        if not isinstance(tasks, list):
            continue
        found = True
        for number, task in enumerate(tasks, 1):
            record = f"{path}: task {task.get('id', number) if isinstance(task, dict) else number}"
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                parsed.error(record, "needs a data object with the image")
                continue
            source = next((v for v in task["data"].values() if isinstance(v, str)), "")
            name = posixpath.basename(unquote(urlparse(source).path))
            resolved = view.resolve(name)
            labels: dict[str, list[Box]] = defaultdict(list)
            results = [
                r
                for a in task.get("annotations") or []
                if isinstance(a, dict)
                for r in a.get("result") or []
            ]
            for result in results:
                value = result.get("value", {}) if isinstance(result, dict) else {}
                if result.get("type") == "choices":
                    for choice in value.get("choices", []):
                        labels[parsed.category(str(choice), record=record)]
                elif result.get("type") == "rectanglelabels" and resolved is not None:
                    width, height = view.sizes[resolved]
                    try:
                        x, y = float(value["x"]) * width / 100, float(value["y"]) * height / 100
                        w, h = (
                            float(value["width"]) * width / 100,
                            float(value["height"]) * height / 100,
                        )
                    except (KeyError, TypeError, ValueError):
                        parsed.error(record, "a rectangle needs x, y, width and height in percent")
                        continue
                    for label in value.get("rectanglelabels", []):
                        labels[parsed.category(str(label), record=record)].append(
                            (x, y, x + w, y + h)
                        )
            if not labels:
                parsed.error(record, "no choice or rectangle label in its annotations")
            for label, boxes in sorted(labels.items()):
                _add(parsed, view, resolved, name, label, boxes, record)
    if not found:
        parsed.error("archive", "no Label Studio JSON export (a list of tasks) in it")
    return parsed


READERS: dict[str, Callable[[ArchiveView], ParsedAnnotations]] = {
    "coco": read_coco,
    "voc": read_voc,
    "yolo": read_yolo,
    "imagefolder": read_imagefolder,
    "labelstudio": read_labelstudio,
}


def annotations_read(kind: str, view: ArchiveView) -> ParsedAnnotations:
    """Parse an archive's annotations in format `kind`. A category's `parent` is a slug that
    may name no category of the file (COCO's supercategory): the importer makes it a root."""
    if kind not in READERS:
        raise ValueError(f"unknown format {kind!r}; choose one of: {', '.join(IMPORT_FORMATS)}")
    parsed = READERS[kind](view)
    if not parsed.images and not parsed.errors:
        parsed.error("archive", "no labelled image in it")
    return parsed
