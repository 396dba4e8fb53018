"""The import API: uploads, archives, scraping jobs, and who may use them."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import Candidate, Image, ImportJob
from tests.conftest import stored_files
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def _file(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_curator_uploads_images_and_gets_a_report(curator_api, category):
    # when a curator uploads two images and a text file
    response = curator_api.post(
        "/api/imports/upload/",
        {
            "category": "cat",
            "files": [
                _file("a.jpg", image_bytes(1)),
                _file("notes.txt", b"hello"),
                _file("b.png", image_bytes(2, "PNG")),
            ],
        },
        format="multipart",
    )

    # then two images are stored and the text file is reported with its reason
    assert response.status_code == 201
    body = response.json()
    assert (body["added"], body["duplicates"], body["rejected"]) == (2, 0, 1)
    assert [(i["name"], i["outcome"]) for i in body["items"]] == [
        ("a.jpg", "added"),
        ("notes.txt", "rejected"),
        ("b.png", "added"),
    ]
    assert "reason" in body["items"][1]
    assert Image.objects.count() == 2
    assert Candidate.objects.filter(category=category).count() == 2


def test_upload_mixes_images_and_zip_archives(curator_api, category):
    archive = _zip(
        {"x/1.jpg": image_bytes(3), "../evil.png": image_bytes(4, "PNG"), "2.jpg": image_bytes(5)}
    )

    response = curator_api.post(
        "/api/imports/upload/",
        {"category": "cat", "files": [_file("a.jpg", image_bytes(6)), _file("set.zip", archive)]},
        format="multipart",
    )

    assert response.status_code == 201
    body = response.json()
    assert [(i["name"], i["outcome"]) for i in body["items"]] == [
        ("a.jpg", "added"),
        ("set.zip:x/1.jpg", "added"),
        ("set.zip:../evil.png", "rejected"),
        ("set.zip:2.jpg", "added"),
    ]
    assert Image.objects.count() == 3


def test_archive_endpoint_refuses_a_non_archive_and_stores_nothing(
    curator_api, category, media_root
):
    response = curator_api.post(
        "/api/imports/archive/",
        {"category": "cat", "archive": _file("a.jpg", image_bytes(7))},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json() == {"archive": ["a.jpg is not a zip or tar archive."]}
    assert Image.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("unicorn", "Object with slug=unicorn does not exist."),
        ("c\x00t", "Give a category by its slug."),  # NUL: never looked up
    ],
)
def test_upload_needs_a_known_category(curator_api, category, slug, message):
    response = curator_api.post(
        "/api/imports/upload/",
        {"category": slug, "files": [_file("a.jpg", image_bytes(8))]},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json() == {"category": [message]}
    assert Image.objects.count() == 0


@pytest.mark.parametrize("who", ["worker", "anonymous"])
def test_only_curators_import(who, worker_api, api, category, media_root):
    client = worker_api if who == "worker" else api
    for url, payload in [
        ("/api/imports/upload/", {"category": "cat", "files": [_file("a.jpg", image_bytes(9))]}),
        ("/api/imports/archive/", {"category": "cat", "archive": _file("a.zip", _zip({}))}),
    ]:
        response = client.post(url, payload, format="multipart")
        assert response.status_code == (403 if who == "worker" else 401)
    response = client.post(
        "/api/imports/scrape/",
        {"category": "cat", "urls": ["http://example.com/a.jpg"]},
        format="json",
    )
    assert response.status_code == (403 if who == "worker" else 401)
    assert Image.objects.count() == 0
    assert ImportJob.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (
            {"category": "cat"},
            {"non_field_errors": ["Give either urls (a list) or page_url, not both."]},
        ),
        (
            {
                "category": "cat",
                "urls": ["http://a.example/x.jpg"],
                "page_url": "http://a.example/",
            },
            {"non_field_errors": ["Give either urls (a list) or page_url, not both."]},
        ),
        ({"category": "cat", "page_url": "not a url"}, {"page_url": ["Enter a valid URL."]}),
    ],
)
def test_scrape_validates_its_input(payload, error, curator_api, category):
    response = curator_api.post("/api/imports/scrape/", payload, format="json")

    assert response.status_code == 400
    assert response.json() == error
    assert ImportJob.objects.count() == 0


def test_import_jobs_are_curator_only(worker_api, curator, category):
    job = ImportJob.objects.create(source="url", category=category, created_by=curator)

    assert worker_api.get("/api/imports/jobs/").status_code == 403
    assert worker_api.get(f"/api/imports/jobs/{job.uid}/").status_code == 403


def test_image_list_has_a_fixed_number_of_queries(curator_api, category, django_assert_num_queries):
    for seed in range(5):
        curator_api.post(
            "/api/imports/upload/",
            {"category": "cat", "files": [_file(f"{seed}.jpg", image_bytes(100 + seed))]},
            format="multipart",
        )

    with django_assert_num_queries(3):  # count, images, candidates with their categories
        response = curator_api.get("/api/images/?category=cat")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    assert [c["category"] for c in body["results"][0]["candidates"]] == ["cat"]
