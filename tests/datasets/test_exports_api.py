"""The exports API: who may ask, see and download; a job followed to its download; a small
selection downloaded directly; clear refusals that write nothing."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from rest_framework.test import APIClient

from config.celery import app as celery_app
from datasets.models import DatasetExport
from datasets.services.exports import export_path
from tests.factories import UserFactory, photos_version

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.CROWDNET_EXPORT_DIR = tmp_path / "exports"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _finished(client: APIClient, capture, monkeypatch, **body) -> dict:
    # the task runs in this process (the real worker's round trip is tests/integration's)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    with capture(execute=True):
        response = client.post("/api/exports/", body, format="json")
    assert response.status_code == 201, response.json()
    return client.get(response.json()["status_url"]).json()


def test_a_curator_follows_a_job_to_its_download(
    curator_api, django_capture_on_commit_callbacks, monkeypatch
):
    version = photos_version()

    export = _finished(
        curator_api,
        django_capture_on_commit_callbacks,
        monkeypatch,
        version=version.number,
        format="csv",
        options={"categories": ["cat", "car"]},
    )

    assert (export["status"], export["progress"], export["images_written"]) == ("done", 1.0, 12)
    assert export["options"]["categories"] == ["cat", "car"]
    download = curator_api.get(export["download_url"])
    assert download.status_code == 200
    data = b"".join(download.streaming_content)
    assert hashlib.sha256(data).hexdigest() == export["sha256"] == download["X-Content-SHA256"]
    assert "attachment" in download["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("manifest.csv").decode().count("\n") == 13
    listed = curator_api.get("/api/exports/").json()
    assert [e["uid"] for e in listed["results"]] == [export["uid"]]


def test_only_the_asker_or_staff_see_and_download_an_export(
    curator_api, django_capture_on_commit_callbacks, monkeypatch, worker_api
):
    version = photos_version()
    export = _finished(
        curator_api,
        django_capture_on_commit_callbacks,
        monkeypatch,
        version=version.number,
        format="jsonl",
    )
    other = _client(UserFactory(username="otto", role="curator"))
    staff = _client(UserFactory(username="sam", role="curator", is_staff=True))

    assert other.get(export["status_url"]).status_code == 404
    assert other.get(export["download_url"]).status_code == 404
    assert other.get("/api/exports/").json()["results"] == []
    assert other.post(f"{export['status_url']}cancel/").status_code == 404
    assert worker_api.get(export["download_url"]).status_code == 403
    assert worker_api.get("/api/exports/").status_code == 403
    assert worker_api.post("/api/exports/", {"format": "csv"}, format="json").status_code == 403
    assert APIClient().get(export["download_url"]).status_code in (401, 403)
    assert staff.get(export["download_url"]).status_code == 200


def test_a_done_export_whose_archive_is_gone_answers_410(
    curator_api, django_capture_on_commit_callbacks, monkeypatch
):
    # given a finished export whose archive the expiry removed after its status was read
    export = _finished(
        curator_api,
        django_capture_on_commit_callbacks,
        monkeypatch,
        version=photos_version().number,
        format="csv",
    )
    row = DatasetExport.objects.get(uid=export["uid"])
    export_path(row).delete()

    # when it is downloaded
    response = curator_api.get(export["download_url"])

    # then the answer says the archive is gone, not a server error
    assert response.status_code == 410
    assert response.json() == {
        "detail": "This export's archive is gone (expired or removed); export again."
    }


def test_downloads_of_unfinished_and_expired_exports_say_why(curator_api, curator):
    version = photos_version()
    queued = DatasetExport.objects.create(version=version, format="csv", requested_by=curator)
    expired = DatasetExport.objects.create(
        version=version, format="csv", requested_by=curator, status="expired"
    )

    waiting = curator_api.get(f"/api/exports/{queued.uid}/download/")
    gone = curator_api.get(f"/api/exports/{expired.uid}/download/")

    assert (waiting.status_code, waiting.json()) == (
        409,
        {"detail": "This export is queued: its archive is not ready."},
    )
    assert gone.status_code == 410
    assert gone.json()["detail"].startswith("This export has expired")
    cancelled = curator_api.post(f"/api/exports/{queued.uid}/cancel/").json()
    assert cancelled["status"] == "cancelled"


def test_bad_requests_are_400s_that_write_nothing(curator_api):
    version = photos_version()
    cases = [
        ({"format": "tfrecord"}, "format"),
        ({"format": "coco", "version": 99}, "There is no dataset version 99."),
        (
            {"format": "coco", "version": version.number, "options": {"min_confidence": 5}},
            "min_confidence must lie between 0 and 1.",
        ),
    ]
    for body, message in cases:
        response = curator_api.post("/api/exports/", body, format="json")
        assert response.status_code == 400
        assert message in str(response.json())
    assert DatasetExport.objects.count() == 0


def test_a_small_selection_downloads_directly_and_a_large_one_is_sent_to_a_job(
    curator_api, settings
):
    version = photos_version()
    body = {"version": version.number, "format": "yolo", "options": {"categories": ["car"]}}

    settings.CROWDNET_EXPORT_DIRECT_MAX = 6
    small = curator_api.post("/api/exports/direct/", body, format="json")
    settings.CROWDNET_EXPORT_DIRECT_MAX = 5
    large = curator_api.post("/api/exports/direct/", body, format="json")

    assert small.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(small.streaming_content))) as archive:
        assert archive.read("data.yaml").decode().endswith('names:\n  0: "car"\n')
        assert len([n for n in archive.namelist() if n.startswith("images/")]) == 6
    assert large.status_code == 400
    assert large.json()["detail"] == (
        "This selection has 6 images, more than the 5 a direct download allows; ask for an "
        "export job instead (POST /api/exports/)."
    )
    assert DatasetExport.objects.count() == 0
