"""Export jobs over a real version: what each option keeps, byte-identical repeats, the
archive read back by pycocotools and torchvision, cancellation, failure and expiry."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image as PILImage

from datasets.exports.archive import MANIFEST
from datasets.models import DatasetExport
from datasets.services import exports
from datasets.services.exports import (
    ExportRequestError,
    export_build,
    export_cancel,
    export_create,
    export_path,
    exports_expire,
)
from labeling.models import Candidate, ObjectBox
from tests.factories import photos_version

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.CROWDNET_EXPORT_DIR = tmp_path / "exports"


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Export ids handed to the queue (the real worker's round trip is in tests/integration)."""
    ids: list[int] = []
    monkeypatch.setattr(exports, "_enqueue", ids.append)
    return ids


def _built(curator, kind, version, **options) -> tuple[DatasetExport, zipfile.ZipFile]:
    export = export_create(by=curator, kind=kind, options=options, version=version, enqueue=False)
    export = export_build(export.pk)
    assert export.status == "done", export.error
    return export, zipfile.ZipFile(io.BytesIO(export_path(export).open().read()))


def _jsonl(archive: zipfile.ZipFile) -> list[dict]:
    return [json.loads(line) for line in archive.read("manifest.jsonl").decode().splitlines()]


def test_a_coco_job_writes_the_version_and_pycocotools_reads_the_boxes(curator, tmp_path):
    from pycocotools.coco import COCO

    version = photos_version()
    export, archive = _built(curator, "coco", version)

    assert export.images_total == export.images_done == export.images_written == 18
    assert export.progress == 1.0
    assert export.sha256 == hashlib.sha256(export_path(export).open().read()).hexdigest()
    assert export.byte_size == export_path(export).size()
    assert export.expires_at > timezone.now() + timedelta(hours=71)
    archive.extractall(tmp_path / "out")
    boxes = []
    for split in ("train", "val"):
        coco = COCO(str(tmp_path / "out" / "annotations" / f"instances_{split}.json"))
        cats = {c["id"]: c for c in coco.loadCats(coco.getCatIds())}
        assert [(c["name"], c["supercategory"], c["synset"]) for c in cats.values()] == [
            ("cat", "animal", "n02121808"),
            ("dog", "animal", ""),
            ("car", "", "n02958343"),
        ]
        for annotation in coco.loadAnns(coco.getAnnIds()):
            image = coco.loadImgs(annotation["image_id"])[0]
            car = cats[annotation["category_id"]]["name"] == "car"
            assert (image["width"], image["height"]) == ((400, 300) if car else (64, 48))
            boxes.append(
                (cats[annotation["category_id"]]["name"], annotation["bbox"], annotation["area"])
            )
    stored = sorted(
        (
            b.candidate.category.slug,
            [b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0],
            (b.x1 - b.x0) * (b.y1 - b.y0),
        )
        for b in ObjectBox.objects.select_related("candidate__category")
    )
    assert sorted(boxes) == stored
    assert sorted(boxes) == [
        ("car", [0, 0, 400, 300], 120000),
        ("cat", [4, 6, 26, 34], 884),
        ("cat", [32.5, 10, 27.5, 37], 1017.5),
    ]


def test_the_same_version_and_options_export_to_the_same_bytes(curator):
    version = photos_version()
    first, second = (
        export_build(
            export_create(
                by=curator,
                kind="imagefolder",
                options={"archive": "tar"},
                version=version,
                enqueue=False,
            ).pk
        )
        for _ in range(2)
    )

    assert first.file_name != second.file_name
    assert export_path(first).open().read() == export_path(second).open().read()
    assert first.sha256 == second.sha256


def test_imagefolder_job_loads_in_torchvision(curator, tmp_path):
    from torchvision.datasets import ImageFolder

    version = photos_version()
    _, archive = _built(curator, "imagefolder", version, folder_naming="wnid")
    archive.extractall(tmp_path)

    train, val = ImageFolder(str(tmp_path / "train")), ImageFolder(str(tmp_path / "val"))
    assert train.classes == val.classes == ["dog", "n02121808", "n02958343"]
    assert len(train) + len(val) == 18
    counts = version.counts
    by_folder = {"n02121808": 0, "dog": 1, "n02958343": 2}
    for dataset, split in ((train, "train"), (val, "val")):
        seen = [0, 0, 0]
        for _, target in dataset.samples:
            seen[by_folder[dataset.classes[target]]] += 1
        assert seen == counts[split]


def test_options_pick_classes_confidence_splits_and_sizes(curator):
    version = photos_version()

    subtree = _jsonl(_built(curator, "jsonl", version, subtree="animal", include_images=False)[1])
    only_car = _jsonl(
        _built(curator, "jsonl", version, categories=["car"], include_images=False)[1]
    )
    confident = _jsonl(
        _built(curator, "jsonl", version, min_confidence=0.9, include_images=False)[1]
    )
    val = _jsonl(_built(curator, "jsonl", version, splits=["val"], include_images=False)[1])

    assert {r["category"] for r in subtree} == {"cat", "dog"} and len(subtree) == 12
    assert {(r["category"], r["label"]) for r in subtree} == {("cat", 0), ("dog", 1)}
    assert {(r["category"], r["label"]) for r in only_car} == {("car", 0)} and len(only_car) == 6
    expected = Candidate.objects.filter(confidence__gte=0.9).count()
    assert len(confident) == expected and all(r["confidence"] >= 0.9 for r in confident)
    assert {r["split"] for r in val} == {"val"} and len(val) == sum(version.counts["val"])


def test_training_size_images_are_the_stored_copies_with_boxes_scaled(curator):
    version = photos_version()
    _, archive = _built(curator, "jsonl", version, image_size="training", categories=["car"])

    rows = _jsonl(archive)
    first = next(r for r in rows if r["boxes"])
    picture = PILImage.open(io.BytesIO(archive.read(first["path"])))
    assert picture.format == "JPEG" and first["path"].endswith(".jpg")
    assert picture.size == (first["width"], first["height"]) == (341, 256)
    assert first["boxes"] == [[0, 0, 341, 256]]


def test_bad_requests_say_what_to_change_and_write_nothing(curator, worker, sent):
    version = photos_version()
    cases = [
        ({"kind": "tfrecord"}, "Unknown format 'tfrecord'"),
        ({"options": {"min_confidence": 2}}, "min_confidence must lie between 0 and 1"),
        ({"options": {"categories": ["unicorn"]}}, "has no class unicorn; it has: cat, dog, car"),
        ({"options": {"subtree": "plant"}}, "No category has the slug 'plant'"),
        ({"options": {"splits": ["test"]}}, "splits must be a non-empty list of: train, val"),
        ({"options": {"colour": "red"}}, "Unknown option(s): colour"),
        ({"kind": "imagefolder", "options": {"include_images": False}}, "cannot leave them out"),
        ({"by": worker}, "Only curators can export datasets"),
    ]
    for case, message in cases:
        arguments = {"by": curator, "kind": "coco", "version": version, **case}
        with pytest.raises(
            ExportRequestError, match=message.replace("(", r"\(").replace(")", r"\)")
        ):
            export_create(**arguments)
    assert DatasetExport.objects.count() == 0
    assert sent == []


def test_create_snapshots_a_version_when_none_is_given_and_queues_the_job(
    curator, sent, django_capture_on_commit_callbacks
):
    photos_version()

    with django_capture_on_commit_callbacks(execute=True):
        export = export_create(by=curator, kind="csv")

    assert export.version.number == 2
    assert sent == [export.pk]
    assert (export.status, export.images_total, export.options["archive"]) == ("queued", 18, "zip")


def test_a_cancel_request_stops_the_job_and_leaves_no_file(curator, settings):
    version = photos_version()
    queued = export_create(by=curator, kind="coco", version=version, enqueue=False)
    assert export_cancel(export=queued).status == "cancelled"
    assert export_build(queued.pk).status == "cancelled"  # a cancelled job is not built

    running = export_create(by=curator, kind="coco", version=version, enqueue=False)
    # the request arrives while it runs: the flag is what a running job sees
    DatasetExport.objects.filter(pk=running.pk).update(cancel_requested=True)
    done = export_build(running.pk)

    assert done.status == "cancelled"
    assert list(settings.CROWDNET_EXPORT_DIR.iterdir()) == []


def test_a_missing_image_fails_the_job_with_the_reason_and_no_file(curator, settings, media_root):
    version = photos_version()
    image = Candidate.objects.order_by("id").first().image
    (media_root / image.file.name).unlink()

    export = export_build(export_create(by=curator, kind="csv", version=version, enqueue=False).pk)

    assert export.status == "failed"
    assert export.error.startswith("FileNotFoundError")
    assert export.file_name == ""
    assert list(settings.CROWDNET_EXPORT_DIR.iterdir()) == []


def test_archives_past_their_retention_are_deleted(curator, settings):
    version = photos_version()
    old, _ = _built(curator, "csv", version)
    fresh, _ = _built(curator, "csv", version)
    DatasetExport.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert exports_expire() == 1

    old.refresh_from_db()
    assert (old.status, old.file_name) == ("expired", "")
    assert not any(
        p.name.startswith(f"crowdnet-v{version.number}-csv-{old.uid.hex[:12]}")
        for p in settings.CROWDNET_EXPORT_DIR.iterdir()
    )
    assert export_path(fresh).exists()
    assert exports_expire() == 0


def test_the_manifest_lists_every_file_with_its_sha256(curator):
    _, archive = _built(curator, "yolo", photos_version())

    lines = archive.read(MANIFEST).decode().splitlines()

    assert len(lines) == len(archive.namelist()) - 1
    for line in lines:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
