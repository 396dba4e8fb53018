"""Category ids and names from imported annotations are checked like the model checks them:
a synset that is not a WordNet id (a path, say) or a name too long for the table is reported
per record, never stored and never a database error."""

from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from datasets.exports.annotations import RecordError
from datasets.services.annotation_imports import annotations_import
from labeling.models import Candidate, Category, Image
from tests.factories import image_bytes, zip_of

pytestmark = pytest.mark.django_db


def _coco_archive(category: dict[str, object]) -> io.BytesIO:
    document = {
        "images": [{"id": 1, "file_name": "p.jpg", "category_id": 1}],
        "annotations": [],
        "categories": [{"id": 1, **category}],
    }
    return zip_of({"a.json": json.dumps(document).encode(), "p.jpg": image_bytes(1)})


def _nothing_written() -> tuple[int, int, int]:
    return (Image.objects.count(), Category.objects.count(), Candidate.objects.count())


@pytest.mark.parametrize(
    ("category", "message"),
    [
        (
            {"name": "zz", "synset": "../../../../tmp/zz"},
            "synset '../../../../tmp/zz' of category 'zz': Use a WordNet id such as n02123045.",
        ),
        (
            {"name": "cat", "synset": "n0212180800000000000000"},
            "synset 'n0212180800000000000000' of category 'cat': "
            "Use a WordNet id such as n02123045.",
        ),
        (
            {"name": "c\x00t"},
            "category name 'c\\x00t' holds a NUL character",
        ),
        (
            {"name": "x" * 201},
            f"category name {'x' * 40!r}… is 201 characters; at most 200 are allowed",
        ),
    ],
)
def test_a_coco_category_the_model_would_refuse_is_reported_and_nothing_written(
    category, message, curator
):
    report = annotations_import(source=_coco_archive(category), kind="coco", by=curator)

    assert report.errors == [RecordError("a.json: category 1", message)]
    assert _nothing_written() == (0, 0, 0)


def test_the_api_answers_400_listing_the_record_for_a_climbing_synset(curator_api):
    upload = _coco_archive({"name": "zz", "synset": "../../../../tmp/zz"})

    response = curator_api.post(
        "/api/imports/annotations/", {"archive": upload, "format": "coco"}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "record": "a.json: category 1",
            "message": "synset '../../../../tmp/zz' of category 'zz': "
            "Use a WordNet id such as n02123045.",
        }
    ]
    assert _nothing_written() == (0, 0, 0)


def test_a_label_studio_choice_with_a_name_too_long_is_reported(curator):
    tasks = [
        {
            "id": 7,
            "data": {"image": "/data/p.jpg"},
            "annotations": [{"result": [{"type": "choices", "value": {"choices": ["y" * 300]}}]}],
        }
    ]
    archive = zip_of({"ls.json": json.dumps(tasks).encode(), "p.jpg": image_bytes(1)})

    report = annotations_import(source=archive, kind="labelstudio", by=curator)

    assert report.errors == [
        RecordError(
            "ls.json: task 7",
            f"category name {'y' * 40!r}… is 300 characters; at most 200 are allowed",
        )
    ]
    assert _nothing_written() == (0, 0, 0)


@pytest.mark.parametrize("wnid", ["../../tmp/zz", "n0212180", "n02121808\n", "N02121808", "x"])
def test_the_model_refuses_a_malformed_wnid_in_validation_and_in_the_database(wnid):
    with pytest.raises(ValidationError) as invalid:
        Category(name="a", slug="a", wnid=wnid).full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        Category.objects.create(name="a", slug="a", wnid=wnid)

    assert invalid.value.message_dict == {"wnid": ["Use a WordNet id such as n02123045."]}
    assert Category.objects.count() == 0


def test_the_admin_refuses_a_malformed_wnid(admin_client):
    response = admin_client.post(
        "/admin/labeling/category/add/",
        {"name": "zz", "slug": "zz", "wnid": "../../../../tmp/zz", "definition": ""},
    )

    listing = admin_client.get("/admin/labeling/category/?archived_at__isempty=1")

    assert response.status_code == 200
    assert "Use a WordNet id such as n02123045." in response.content.decode()
    assert listing.status_code == 200
    assert Category.objects.count() == 0


def test_a_json_file_nested_too_deep_is_reported_not_a_500(curator_api):
    # json.loads recurses once per level: this depth raises RecursionError, not ValueError
    nested = b"[" * 100_000 + b"]" * 100_000
    upload = zip_of({"a.json": nested, "p.jpg": image_bytes(1)})

    response = curator_api.post(
        "/api/imports/annotations/", {"archive": upload, "format": "coco"}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"record": "a.json", "message": "not valid JSON (nested too deeply)"},
        {
            "record": "archive",
            "message": "no COCO JSON file (with images, annotations and categories) in it",
        },
    ]
    assert _nothing_written() == (0, 0, 0)
