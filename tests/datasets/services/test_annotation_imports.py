"""Importing annotations: a CrowdNet export imported into an empty platform gives back the
same labels and boxes (COCO, VOC, YOLO, ImageFolder), a Label Studio export comes in, and
crafted bad archives fail record by record and write nothing."""

from __future__ import annotations

import io
import json

import pytest

from datasets.exports.annotations import RecordError
from datasets.models import DatasetExport, DatasetItem, DatasetVersion
from datasets.services.annotation_imports import annotations_import
from datasets.services.exports import export_options_parse, export_selection, export_stream
from labeling.models import Box, Candidate, Category, Image, ObjectBox
from tests.factories import image_bytes, photos_version, zip_of

pytestmark = pytest.mark.django_db


def _truth() -> dict[tuple[str, str], list[list[float]]]:
    """(image sha256, category slug) -> its boxes, for every accepted label."""
    truth = {}
    for candidate in Candidate.objects.filter(state="accepted").select_related("image", "category"):
        boxes = sorted(
            [b.x0, b.y0, b.x1, b.y1] for b in ObjectBox.objects.filter(candidate=candidate)
        )
        truth[candidate.image.sha256, candidate.category.slug] = boxes
    return truth


def _exported(kind: str) -> bytes:
    version = DatasetVersion.objects.get()
    out = io.BytesIO()
    export_stream(export_selection(version, export_options_parse({})), kind, out)
    return out.getvalue()


def _wipe() -> None:
    DatasetExport.objects.all().delete()
    DatasetItem.objects.all().delete()
    DatasetVersion.objects.all().delete()
    Image.objects.all().delete()
    Category.objects.exclude(parent=None).delete()  # children first: a parent is protected
    Category.objects.all().delete()


def _close(a: list[list[float]], b: list[list[float]], tolerance: float) -> bool:
    return len(a) == len(b) and all(
        abs(x - y) <= tolerance
        for box_a, box_b in zip(a, b, strict=True)
        for x, y in zip(box_a, box_b, strict=True)
    )


@pytest.mark.parametrize(
    ("kind", "tolerance", "labels_kept"),
    [
        ("coco", 0.0, "all"),
        ("voc", 1.0, "all"),  # VOC stores whole pixels
        ("imagefolder", None, "all"),  # labels only: ImageFolder has no boxes
        ("yolo", 0.01, "boxed"),  # YOLO labels only the images with boxes
    ],
)
def test_an_export_imported_into_an_empty_platform_gives_the_same_labels_and_boxes(
    kind, tolerance, labels_kept, curator
):
    photos_version()
    truth = _truth()
    archive = _exported(kind)
    _wipe()

    report = annotations_import(source=io.BytesIO(archive), kind=kind, by=curator)

    assert report.errors == []
    got = _truth()
    expected = truth if labels_kept == "all" else {k: v for k, v in truth.items() if v}
    assert sorted(got) == sorted(expected)
    assert report.labels == len(expected) and report.images == len(expected)
    for key, boxes in expected.items():
        if tolerance is None:
            assert got[key] == []
        else:
            assert _close(got[key], boxes, tolerance), (key, got[key], boxes)
    if kind == "coco":
        cat = Category.objects.get(slug="cat")
        assert (cat.parent.slug, cat.wnid, Category.objects.get(slug="car").parent) == (
            "animal",
            "n02121808",
            None,
        )
        assert sorted(report.categories_created) == ["animal", "car", "cat", "dog"]


def test_a_label_studio_export_becomes_labels_and_boxes(curator):
    photo = image_bytes(5, size=(200, 100))
    tasks = [
        {
            "id": 7,
            "data": {"image": "/data/upload/3/d1a2-photo.jpg"},
            "annotations": [
                {
                    "result": [
                        {"type": "choices", "value": {"choices": ["Tabby Cat"]}},
                        {
                            "type": "rectanglelabels",
                            "original_width": 200,
                            "original_height": 100,
                            "value": {
                                "x": 10,
                                "y": 20,
                                "width": 50,
                                "height": 40,
                                "rectanglelabels": ["Tabby Cat"],
                            },
                        },
                    ]
                }
            ],
        }
    ]
    source = zip_of({"export.json": json.dumps(tasks).encode(), "images/d1a2-photo.jpg": photo})

    report = annotations_import(source=source, kind="labelstudio", by=curator)

    assert report.errors == [] and (report.labels, report.boxes) == (1, 1)
    candidate = Candidate.objects.get()
    assert (candidate.category.slug, candidate.category.name, candidate.state) == (
        "tabby-cat",
        "Tabby Cat",
        "accepted",
    )
    box = ObjectBox.objects.get()
    assert [box.x0, box.y0, box.x1, box.y1] == [20.0, 20.0, 120.0, 60.0]


def test_prefilled_labels_stay_open_and_their_boxes_wait_for_verification(curator):
    photos_version()
    archive = _exported("coco")
    _wipe()

    report = annotations_import(source=io.BytesIO(archive), kind="coco", by=curator, prefill=True)

    assert report.errors == []
    assert set(Candidate.objects.values_list("state", flat=True)) == {"open"}
    assert ObjectBox.objects.count() == 0
    assert Box.objects.filter(state="proposed", worker=None).count() == report.boxes == 3
    assert Candidate.objects.filter(box_state="verify").count() == 2


def _coco(images, annotations, categories=({"id": 1, "name": "cat"},)) -> bytes:
    return json.dumps(
        {"images": images, "annotations": annotations, "categories": list(categories)}
    ).encode()


@pytest.mark.parametrize(
    ("files", "errors"),
    [
        (
            {"a.json": _coco([{"id": 1, "file_name": "gone.jpg", "category_id": 1}], [])},
            [RecordError("a.json: image 1", "image file 'gone.jpg' is not in the archive")],
        ),
        (
            {
                "a.json": _coco(
                    [{"id": 1, "file_name": "p.jpg"}],
                    [{"id": 4, "image_id": 1, "category_id": 1, "bbox": [50, 10, 30, 20]}],
                ),
                "p.jpg": image_bytes(1),
            },
            [
                RecordError(
                    "a.json: image 1", "box [50.0, 10.0, 80.0, 30.0] lies outside the 64x48 image"
                )
            ],
        ),
        (
            {
                "a.json": _coco(
                    [{"id": 1, "file_name": "p.jpg", "category_id": 1}],
                    [{"id": 4, "image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5]}],
                ),
                "p.jpg": image_bytes(1),
            },
            [
                RecordError(
                    "a.json: annotation 4", "category_id 9 is not among the file's categories"
                )
            ],
        ),
        (
            {
                "a.json": _coco([{"id": 1, "file_name": "p.jpg", "category_id": 1}], []),
                "p.jpg": image_bytes(1),
                "../../etc/evil.jpg": image_bytes(2),
            },
            "path",
        ),
    ],
)
def test_bad_archives_fail_record_by_record_and_write_nothing(curator, files, errors):
    report = annotations_import(source=zip_of(files), kind="coco", by=curator)

    if errors == "path":
        assert [e.record for e in report.errors] == ["../../etc/evil.jpg"]
        assert "outside" in report.errors[0].message or ".." in report.errors[0].message
    else:
        assert report.errors == errors
    assert (Image.objects.count(), Category.objects.count(), Candidate.objects.count()) == (0, 0, 0)


def test_a_huge_annotation_file_and_a_non_archive_are_refused(curator, settings):
    settings.CROWDNET_IMPORT_MAX_ANNOTATION_BYTES = 2048
    huge = _coco([{"id": i, "file_name": f"{i}.jpg", "category_id": 1} for i in range(200)], [])

    report = annotations_import(source=zip_of({"a.json": huge}), kind="coco", by=curator)
    not_zip = annotations_import(source=io.BytesIO(b"plain text"), kind="coco", by=curator)
    unknown = annotations_import(source=zip_of({}), kind="tfrecord", by=curator)

    assert report.errors[0] == RecordError(
        "a.json",
        f"{len(huge):,} bytes: annotation files may hold at most 2,048 "
        "(CROWDNET_IMPORT_MAX_ANNOTATION_BYTES); split it",
    )
    assert not_zip.errors[0].record == "archive" and "not a ZIP or TAR" in not_zip.errors[0].message
    assert unknown.errors[0].message.startswith("unknown format 'tfrecord'")
    assert Category.objects.count() == 0


def test_the_api_imports_for_curators_and_reports_bad_records(curator_api, worker_api):
    photos_version()
    archive = _exported("coco")
    _wipe()

    def post(client, data: bytes):
        upload = io.BytesIO(data)
        upload.name = "dataset.zip"
        return client.post(
            "/api/imports/annotations/", {"archive": upload, "format": "coco"}, format="multipart"
        )

    refused = post(worker_api, archive)
    bad = post(
        curator_api,
        bytes(
            zip_of(
                {"a.json": _coco([{"id": 1, "file_name": "x.jpg", "category_id": 1}], [])}
            ).getvalue()
        ),
    )
    done = post(curator_api, archive)

    assert refused.status_code == 403
    assert bad.status_code == 400
    assert bad.json()["errors"] == [
        {"record": "a.json: image 1", "message": "image file 'x.jpg' is not in the archive"}
    ]
    assert done.status_code == 201
    assert (done.json()["labels"], done.json()["boxes"]) == (18, 3)


def test_the_command_imports_or_lists_what_to_fix(tmp_path):
    from django.core.management import CommandError, call_command

    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(
        zip_of(
            {"train/tabby/a.jpg": image_bytes(1), "train/tabby/b.jpg": image_bytes(2)}
        ).getvalue()
    )
    bad.write_bytes(zip_of({"a.jpg": image_bytes(3)}).getvalue())
    out = io.StringIO()

    call_command("import_annotations", str(good), "--format", "imagefolder", stdout=out)
    with pytest.raises(CommandError) as error:
        call_command("import_annotations", str(bad), "--format", "imagefolder")

    assert out.getvalue() == "2 images, 2 labels, 0 boxes imported; new categories: tabby\n"
    assert str(error.value) == (
        "1 bad record(s); nothing was imported. Fix them and run again:\n"
        "  a.jpg: an image outside any class folder"
    )
