"""An archive with nothing in it is refused with a message, by the archive endpoint and the
annotation import alike, as the import commands refuse it; nothing is written."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import Candidate, Category, Image, ImportJob

pytestmark = pytest.mark.django_db


def _empty_zip(*folders: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder in folders:
            archive.writestr(folder, b"")  # a folder entry, no file
    return SimpleUploadedFile("empty.zip", buffer.getvalue(), "application/zip")


@pytest.mark.parametrize("folders", [(), ("train/", "train/cat/")])
def test_the_archive_endpoint_refuses_an_empty_archive(folders, curator_api, category):
    response = curator_api.post(
        "/api/imports/archive/",
        {"category": "cat", "archive": _empty_zip(*folders)},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json() == {"archive": ["empty.zip holds no image files; nothing was imported."]}
    assert (Image.objects.count(), Candidate.objects.count(), ImportJob.objects.count()) == (
        0,
        0,
        0,
    )


def test_the_upload_endpoint_reports_an_empty_archive_as_rejected(curator_api, category):
    response = curator_api.post(
        "/api/imports/upload/", {"category": "cat", "files": [_empty_zip()]}, format="multipart"
    )

    assert response.status_code == 201
    assert response.json()["items"] == [
        {
            "name": "empty.zip",
            "outcome": "rejected",
            "reason": "empty.zip holds no image files; nothing was imported.",
        }
    ]
    assert Image.objects.count() == 0


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("coco", "no COCO JSON file (with images, annotations and categories) in it"),
        ("voc", "no Pascal VOC annotation XML in it"),
        ("yolo", "no data.yaml naming the classes"),
        ("imagefolder", "no labelled image in it"),
        ("labelstudio", "no Label Studio JSON export (a list of tasks) in it"),
    ],
)
def test_the_annotation_import_refuses_an_empty_archive(kind, message, curator_api):
    response = curator_api.post(
        "/api/imports/annotations/",
        {"archive": _empty_zip(), "format": kind},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [{"record": "archive", "message": message}]
    assert (Image.objects.count(), Category.objects.count()) == (0, 0)
