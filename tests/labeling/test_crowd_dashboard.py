"""Crowd quality: every worker's record with votes aggregated in the database (pinned
queries), accuracy histograms, a curator pausing and restoring a worker, a worker's recent
answers, and workers kept out of all of it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.crowd.gates import GOLD_REASON
from labeling.models import WorkerProfile
from tests.factories import UserFactory, progress_seed

pytestmark = pytest.mark.django_db


def test_crowd_quality_lists_workers_from_their_profiles_in_one_query(
    curator_api, worker, django_assert_num_queries
):
    progress_seed(worker)  # six voters, and "wendy" with no profile yet
    users = UserFactory._meta.model.objects
    WorkerProfile.objects.create(
        user=users.get(username="voter0"),
        gold_seen=10,
        gold_correct=9,
        em_accuracy=0.93,
        spammer_score=0.71,
        answered_tasks=4,
        answered_items=20,
        seconds_total=31.0,
    )
    WorkerProfile.objects.create(
        user=users.get(username="voter1"),
        gold_seen=4,
        gold_correct=1,
        em_accuracy=0.55,
        spammer_score=0.02,
        paused=True,
        pause_reason="Too fast.",
    )

    with django_assert_num_queries(1):
        data = curator_api.get("/api/crowd/").json()

    rows = {w["username"]: w for w in data["workers"]}
    assert sorted(rows) == ["voter0", "voter1", "voter2", "voter3", "voter4", "voter5", "wendy"]
    assert {
        k: rows["voter0"][k]
        for k in (
            "answered_tasks",
            "answered_items",
            "gold_seen",
            "gold_accuracy",
            "em_accuracy",
            "spammer_score",
            "seconds_per_item",
            "paused",
        )
    } == {
        "answered_tasks": 4,
        "answered_items": 20,
        "gold_seen": 10,
        "gold_accuracy": 0.9,
        "em_accuracy": 0.93,
        "spammer_score": 0.71,
        "seconds_per_item": 1.55,
        "paused": False,
    }
    assert (
        rows["voter1"]["paused"],
        rows["voter1"]["pause_reason"],
        rows["voter1"]["gold_accuracy"],
    ) == (True, "Too fast.", 0.25)
    assert (
        rows["wendy"]["answered_items"],
        rows["wendy"]["gold_accuracy"],
        rows["wendy"]["seconds_per_item"],
    ) == (0, None, None)
    assert data["gold_accuracy"] == [0, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    assert data["em_accuracy"] == [0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert data["bins"][0] == 0.0 and data["bins"][-1] == 1.0


def test_a_curator_pauses_and_restores_a_worker_and_reads_their_answers(client, curator, worker):
    progress_seed(worker)
    voter = UserFactory._meta.model.objects.get(username="voter0")
    client.force_login(curator)

    client.post(
        "/curate/crowd/", {"action": "pause", "worker": voter.pk, "reason": "Check your boxes."}
    )
    paused = WorkerProfile.objects.get(user=voter)
    client.post("/curate/crowd/", {"action": "resume", "worker": voter.pk})
    restored = WorkerProfile.objects.get(user=voter)
    answers = client.get(f"/curate/crowd/{voter.pk}/answers/").content.decode()

    assert (paused.paused, paused.pause_reason) == (True, "Check your boxes.")
    assert (restored.paused, restored.pause_reason) == (False, "")
    assert answers.count("<tr>") == 2  # the header and one answer
    assert ">cat</td>" in answers


def test_the_pause_api_and_workers_kept_out(curator_api, worker_api, client, worker):
    other = UserFactory(username="walt", role="worker")

    paused = curator_api.post(f"/api/workers/{other.pk}/pause/", {"reason": "Spam."}, format="json")
    missing = curator_api.post(f"/api/workers/{other.pk}/pause/", {}, format="json")
    client.force_login(worker)

    assert paused.status_code == 204
    assert WorkerProfile.objects.get(user=other).pause_reason == "Spam."
    assert missing.status_code == 400
    assert worker_api.get("/api/crowd/").status_code == 403
    assert (
        worker_api.post(
            f"/api/workers/{other.pk}/pause/", {"reason": "x"}, format="json"
        ).status_code
        == 403
    )
    for path in ("/curate/crowd/", f"/curate/crowd/{other.pk}/answers/"):
        assert client.get(path).status_code == 403


def test_a_gates_evidence_is_shown_to_curators_and_never_to_the_worker(client, curator, worker):
    # given a worker paused by the control-item gate
    detail = "Control items: 3 of 11 right. Evidence (nats, pause at 5.30 / 5.99): all 5.61"
    WorkerProfile.objects.create(
        user=worker, paused=True, pause_reason=GOLD_REASON, pause_detail=detail
    )

    # when the worker opens their home page and a curator the Crowd and Workers pages
    client.force_login(worker)
    home = client.get(reverse("home")).content.decode()
    client.force_login(curator)
    crowd = client.get("/curate/crowd/").content.decode()
    workers = client.get("/curate/workers/").content.decode()

    # then the worker reads the reason only, curators the reason and the evidence
    assert f"<p>{GOLD_REASON}</p>" in home
    assert "Control items" not in home
    assert f'{GOLD_REASON} <small class="pause-detail">{detail}</small>' in crowd
    assert f"<small>{detail}</small>" in workers
