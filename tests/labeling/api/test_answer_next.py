"""An answer that asks for the next task (``?next=``): one request per task instead of two."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import MicroTask, TaskItem, Vote
from tests.factories import UserFactory, candidate_pool, worker_client

pytestmark = pytest.mark.django_db

TASK_FIELDS = {"id", "kind", "prompt", "category", "examples", "items", "expires_at"}
STATS_FIELDS = {"answered_tasks", "answered_items", "streak", "paused", "pause_reason"}


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0


def _answer(client, task, path="?next=verify", token="t1", value="yes"):
    answers = [{"item": item["id"], "answer": value} for item in task["items"]]
    return client.post(
        f"/api/tasks/{task['id']}/answer/{path}",
        {"answers": answers, "client_token": token},
        format="json",
    )


def _candidate_of(task: dict) -> int:
    return TaskItem.objects.get(uid=task["items"][0]["id"]).candidate_id


def test_each_answer_brings_the_next_task_until_none_is_left(category):
    pool = candidate_pool(category, 3, seed=7100)
    client, user = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=verify").json()

    bodies, served = [], [_candidate_of(task)]
    for token in ["a", "b", "c"]:
        response = _answer(client, task, token=token)
        assert response.status_code == 201
        body = response.json()
        bodies.append(body)
        if body["next"]["status"] == "task":
            task = body["next"]["task"]
            served.append(_candidate_of(task))

    # every answer carries the worker's stats and the next task, leased to him, a new item
    # each time, until he has answered all three
    assert [set(body) for body in bodies] == [STATS_FIELDS | {"next"}] * 3
    assert [body["answered_tasks"] for body in bodies] == [1, 2, 3]
    assert [body["next"]["status"] for body in bodies] == ["task", "task", "empty"]
    assert set(bodies[0]["next"]) == {"status", "task"}
    assert set(bodies[0]["next"]["task"]) == TASK_FIELDS
    assert bodies[0]["next"]["task"]["kind"] == "verify"
    assert bodies[2]["next"] == {"status": "empty", "why": "done"}
    assert served == [c.pk for c in pool]
    assert Vote.objects.filter(worker=user).count() == 3
    assert set(MicroTask.objects.filter(worker=user).values_list("status", flat=True)) == {
        "answered"
    }


def test_next_any_takes_whichever_kind_and_an_empty_kind_says_no_work(category):
    candidate_pool(category, 3, seed=7200)
    client, _ = worker_client("ann")
    first = client.get("/api/tasks/next/?kind=verify").json()
    second = client.get("/api/tasks/next/?kind=verify").json()

    any_kind = _answer(client, first, path="?next=any", token="a").json()
    draw = _answer(client, second, path="?next=draw", token="b").json()
    asked = client.get("/api/tasks/next/?kind=any")

    assert any_kind["next"]["status"] == "task"
    assert any_kind["next"]["task"]["kind"] == "verify"
    assert draw["next"] == {"status": "empty", "why": "no-work"}
    # the next-task endpoint takes "any" as no kind: of the three items he holds the last
    # and answered the others, so there is work, none of it for him
    assert (asked.status_code, asked["Crowdnet-Empty-Reason"]) == (204, "done")


def test_an_unknown_next_is_400_and_the_answer_is_not_taken(category):
    candidate_pool(category, 2, seed=7300)
    client, user = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=verify").json()

    response = _answer(client, task, path="?next=paint")

    assert response.status_code == 400
    assert response.json() == {
        "next": ["Unknown kind; use one of verify, grid, draw, verify_box, coverage, or any."]
    }
    assert not Vote.objects.exists()
    assert MicroTask.objects.get(worker=user).status == "leased"
    assert _answer(client, task, path="").status_code == 201


def test_an_answer_that_pauses_the_worker_says_so_in_next_and_leases_nothing(category, settings):
    # the speed gate, loose enough to pause after two fast tasks (2 log 5 > log 20)
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 60.0
    settings.CROWDNET_GATE_FALSE_PAUSE = 0.05
    candidate_pool(category, 4, seed=7400)
    client, user = worker_client("speedy")
    task = client.get("/api/tasks/next/?kind=verify").json()

    first = _answer(client, task, token="a").json()
    second = _answer(client, first["next"]["task"], token="b").json()

    assert (first["paused"], first["next"]["status"]) == (False, "task")
    assert second["paused"] is True
    assert second["next"] == {"status": "paused", "reason": second["pause_reason"]}
    assert MicroTask.objects.filter(worker=user).count() == 2


def test_a_retried_answer_with_next_writes_once_and_offers_a_task(category):
    candidate_pool(category, 3, seed=7500)
    client, user = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=verify").json()

    first = _answer(client, task, token="same").json()
    again = _answer(client, task, token="same").json()

    assert {k: again[k] for k in STATS_FIELDS} == {k: first[k] for k in STATS_FIELDS}
    assert Vote.objects.filter(worker=user).count() == 1
    # the retry leases at most up to the open-task limit (one shown, one prefetched)
    assert again["next"]["status"] == "task"
    assert MicroTask.objects.filter(worker=user, status="leased").count() == 2


def test_one_request_authenticates_once_for_the_answer_and_the_next_task(category):
    candidate_pool(category, 2, seed=7600)
    user = UserFactory(username="tom", role="worker")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    task = client.get("/api/tasks/next/?kind=verify").json()

    with CaptureQueriesContext(connection) as captured:
        body = _answer(client, task).json()

    assert body["next"]["status"] == "task"
    assert sum("FROM authtoken_token" in q["sql"] for q in captured.captured_queries) == 1
    assert MicroTask.objects.filter(worker=user).count() == 2
