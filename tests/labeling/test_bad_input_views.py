"""Curator pages answer a malformed id or choice with 400 and a message, and write nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from datasets.models import DatasetExport
from labeling.models import Candidate, Category, Image, ImportJob, WorkerProfile
from labeling.services.microtasks import worker_pause, worker_profile
from tests.factories import UserFactory, photos_version
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(curator) -> Candidate:
    """A paused worker, a queued export of the curator's and a candidate waiting for review
    (returned)."""
    worker_pause(profile=worker_profile(UserFactory(username="pat", role="worker")), reason="r")
    version = photos_version(per_class=2)
    DatasetExport.objects.create(version=version, format="csv", requested_by=curator)
    waiting = Candidate.objects.order_by("pk").first()
    Candidate.objects.filter(pk=waiting.pk).update(state="needs_review", yes_votes=2, no_votes=2)
    return waiting


def _state() -> tuple:
    """Every column these forms could write."""
    return (
        list(WorkerProfile.objects.order_by("pk").values_list("paused", "pause_reason")),
        list(Candidate.objects.order_by("pk").values_list("state", "override", "box_state")),
        list(DatasetExport.objects.order_by("pk").values_list("status")),
        TrainingRun.objects.count(),
    )


BAD_POSTS = [
    ("/curate/workers/", {"action": "resume", "worker": "abc"}, "worker to resume"),
    ("/curate/workers/", {"action": "resume"}, "worker to resume"),
    ("/curate/workers/", {"action": "resume", "worker": "-3"}, "worker to resume"),
    ("/curate/workers/", {"action": "resume", "worker": "9" * 40}, "worker to resume"),
    ("/curate/crowd/", {"action": "resume", "worker": "abc"}, "worker to resume"),
    ("/curate/crowd/", {"action": "pause", "worker": "1.5", "reason": "x"}, "worker to pause"),
    ("/curate/crowd/", {"action": "pause", "worker": "\u0663"}, "worker to pause"),
    ("/curate/review/", {"action": "decide", "candidate": "abc", "accepted": "yes"}, "item"),
    ("/curate/review/", {"action": "decide", "accepted": "yes"}, "item to decide"),
    (
        "/curate/review/",
        {"action": "decide", "candidate": "{pk}", "accepted": "maybe"},
        "must be yes or no",
    ),
    ("/curate/review/", {"action": "decide", "candidate": "{pk}"}, "must be yes or no"),
    (
        "/curate/review/",
        {"action": "decide", "candidate": "{pk}", "accepted": "YES"},
        "must be yes or no",
    ),
    ("/curate/exports/", {"action": "cancel", "export": "not-a-uuid"}, "export to cancel"),
    ("/curate/exports/", {"action": "cancel"}, "export to cancel"),
    ("/curate/training/", {"action": "cancel", "run": "abc"}, "run to cancel"),
    ("/curate/training/", {"action": "promote", "run": ""}, "run to promote"),
]


@pytest.mark.parametrize(("url", "data", "message"), BAD_POSTS)
def test_a_malformed_id_or_choice_is_refused_with_400_and_nothing_changes(
    curator, seeded, url, data, message
):
    client = Client()
    client.force_login(curator)
    pk = str(seeded.pk)
    data = {key: value.replace("{pk}", pk) for key, value in data.items()}
    before = _state()

    response = client.post(url, data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert _state() == before


def test_an_unknown_but_wellformed_id_is_404_and_a_clear_no_rejects(curator, seeded):
    client = Client()
    client.force_login(curator)
    candidate = seeded

    missing = client.post("/curate/workers/", {"action": "resume", "worker": "999999"})
    rejected = client.post(
        "/curate/review/",
        {"action": "decide", "candidate": str(candidate.pk), "accepted": "no", "page": "x&y"},
    )

    assert missing.status_code == 404
    assert (rejected.status_code, rejected["Location"]) == (302, "/curate/review/?page=1")
    candidate.refresh_from_db()
    assert (candidate.state, candidate.override) == ("rejected", False)


BAD_API_QUERIES = [
    ("/api/images/", {"category": "cat\x00"}, "category", "Give a category by its slug."),
    ("/api/images/", {"category": "a b"}, "category", "Give a category by its slug."),
    ("/api/progress/", {"hours": "abc"}, "detail", "hours must be a whole number from 1 to 720."),
]


@pytest.mark.parametrize(("url", "params", "field", "message"), BAD_API_QUERIES)
def test_a_malformed_api_query_is_a_400_naming_the_parameter(
    curator_api, seeded, url, params, field, message
):
    before = _state()

    response = curator_api.get(url, params)

    assert response.status_code == 400
    body = response.json()
    assert (body[field] if field == "detail" else body[field][0]) == message
    assert _state() == before


BAD_CATEGORY_WRITES = [
    ("/api/imports/scrape/", {"category": "cat\x00", "urls": ["https://example.org/a.jpg"]}),
    ("/api/imports/scrape/", {"category": ["cat"], "urls": ["https://example.org/a.jpg"]}),
    ("/api/categories/", {"name": "kitten", "slug": "kitten", "parent": "cat\x00"}),
]


@pytest.mark.parametrize(("url", "body"), BAD_CATEGORY_WRITES)
def test_a_category_that_is_no_slug_is_a_400_before_any_lookup(curator_api, category, url, body):
    before = (ImportJob.objects.count(), Category.objects.count())

    response = curator_api.post(url, body, format="json")

    assert response.status_code == 400
    field = "parent" if "parent" in body else "category"
    assert response.json()[field] == ["Give a category by its slug."]
    assert (ImportJob.objects.count(), Category.objects.count()) == before


@pytest.mark.parametrize("url", ["/api/imports/upload/", "/api/imports/archive/"])
def test_an_upload_into_a_category_that_is_no_slug_is_a_400(curator_api, category, url):
    field = "files" if url.endswith("upload/") else "archive"
    upload = SimpleUploadedFile("a.png", b"\x89PNG not really", content_type="image/png")

    response = curator_api.post(url, {"category": "cat\x00", field: upload}, format="multipart")

    assert response.status_code == 400
    assert response.json()["category"] == ["Give a category by its slug."]
    assert Image.objects.count() == 0
