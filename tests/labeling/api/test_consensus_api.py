"""Curators' consensus API: review queue, overrides, re-aggregation runs; workers kept out."""

from __future__ import annotations

import pytest

from config.celery import app as celery_app
from labeling.models import Candidate, ConsensusRun
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def _candidates(category, count: int) -> list[Candidate]:
    files = [(f"{i}.jpg", image_bytes(7000 + i, size=(48, 32))) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    return list(Candidate.objects.filter(category=category).order_by("id"))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/review/"),
        ("get", "/api/review/contested/"),
        ("get", "/api/review/contested/workers/"),
        ("post", "/api/candidates/{pk}/decision/"),
        ("get", "/api/consensus/runs/"),
        ("post", "/api/consensus/runs/"),
    ],
)
def test_workers_and_strangers_are_kept_out(method, path, worker_api, category, client):
    [candidate] = _candidates(category, 1)
    url = path.format(pk=candidate.pk)

    worker = getattr(worker_api, method)(url, {"accepted": True}, format="json")
    anonymous = getattr(client, method)(url)

    assert worker.status_code == 403
    assert worker.json() == {"detail": "Only curators can do this."}
    assert anonymous.status_code in (401, 403)


def test_review_queue_lists_undecided_items_with_their_tally(curator_api, category):
    first, second, _ = _candidates(category, 3)
    Candidate.objects.filter(pk__in=[first.pk, second.pk]).update(
        state="needs_review", yes_votes=3, no_votes=4, posterior=0.41
    )

    response = curator_api.get("/api/review/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    item = body["results"][0]
    assert (item["id"], item["state"], item["category_name"]) == (first.pk, "needs_review", "cat")
    assert (item["yes_votes"], item["no_votes"], item["posterior"]) == (3, 4, 0.41)
    assert item["thumbnail_url"] == f"/img/{first.image.uid}/thumb/"
    assert curator_api.get(item["thumbnail_url"]).status_code == 200


def test_a_curator_decides_and_a_bad_decision_is_400(curator_api, curator, category):
    [candidate] = _candidates(category, 1)
    Candidate.objects.update(state="needs_review")

    accepted = curator_api.post(
        f"/api/candidates/{candidate.pk}/decision/", {"accepted": True}, format="json"
    )
    bad = curator_api.post(
        f"/api/candidates/{candidate.pk}/decision/", {"accepted": "maybe"}, format="json"
    )
    missing = curator_api.post("/api/candidates/999999/decision/", {"accepted": True})

    assert accepted.status_code == 200
    assert (accepted.json()["state"], accepted.json()["override"]) == ("accepted", True)
    candidate.refresh_from_db()
    assert (candidate.override_by, candidate.box_state, candidate.confidence) == (
        curator,
        "draw",
        1.0,
    )
    assert bad.status_code == 400
    assert bad.json() == {"accepted": ["Must be a valid boolean."]}
    assert missing.status_code == 404
    assert curator_api.get("/api/review/").json()["count"] == 0


def test_a_curator_runs_a_reaggregation_and_lists_runs(
    curator_api, curator, django_capture_on_commit_callbacks, monkeypatch
):
    # the task runs in this process (the real-worker round trip is tests/integration's)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)

    with django_capture_on_commit_callbacks(execute=True):
        response = curator_api.post("/api/consensus/runs/")

    assert response.status_code == 202
    assert response.json() == {"detail": "Re-aggregation queued."}
    run = ConsensusRun.objects.get()
    assert (run.trigger, run.status, run.requested_by) == ("manual", "done", curator)
    runs = curator_api.get("/api/consensus/runs/").json()
    assert [(r["id"], r["trigger"], r["status"], r["items"]) for r in runs] == [
        (run.pk, "manual", "done", 0)
    ]
