"""A web process reuses each category's counted decisions for a while
(labeling.services.category_priors.counts_remembered)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Candidate
from labeling.services import category_priors
from labeling.services.microtasks import gold_mark
from tests.factories import candidate_pool, worker_client

pytestmark = pytest.mark.django_db

COUNTS = "state = 'accepted' LIMIT"


@pytest.fixture(autouse=True)
def _postgresql(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the lean answer path is PostgreSQL's; SQLite takes the ORM path")
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0


def _answer_one(name: str) -> str:
    """A new worker leases a verify task and answers yes; the statements of the answer."""
    client, _ = worker_client(name)
    task = client.get("/api/tasks/next/?kind=verify").json()
    answer = [{"item": task["items"][0]["id"], "answer": "yes"}]
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            f"/api/tasks/{task['id']}/answer/", {"answers": answer}, format="json"
        )
    assert response.status_code == 201
    return "\n".join(query["sql"] for query in queries.captured_queries)


def test_counts_are_read_once_then_reused_until_they_run_out(category, settings, monkeypatch):
    # given a category with 3 accepted and 1 rejected items, counts kept for 30 seconds, and a
    # clock we move
    settings.CROWDNET_PRIOR_COUNTS_SECONDS = 30.0
    pool = candidate_pool(category, 10, seed=1400)
    for candidate, answer in zip(pool[:4], [True, True, True, False], strict=True):
        gold_mark(candidate=candidate, answer=answer)
    clock = [1000.0]
    monkeypatch.setattr(category_priors.time, "monotonic", lambda: clock[0])

    # when three answers come in, the third 31 seconds after the first
    first = _answer_one("ann")
    clock[0] += 10
    second = _answer_one("bob")
    clock[0] += 21
    third = _answer_one("cy")

    # then the first reads the counts, the second reuses them, the third reads them again;
    # what is remembered is the category's (accepted, rejected)
    assert COUNTS in first
    assert COUNTS not in second
    assert COUNTS in third
    assert category_priors.counts_remembered([category.pk]) == {category.pk: (3, 1)}


def test_with_no_seconds_every_answer_reads_the_counts(category, settings):
    # given counts never kept
    settings.CROWDNET_PRIOR_COUNTS_SECONDS = 0.0
    candidate_pool(category, 4, seed=1420)

    # when two answers come in
    statements = [_answer_one("ann"), _answer_one("bob")]

    # then both read the counts, and nothing is remembered
    assert all(COUNTS in sql for sql in statements)
    assert category_priors.counts_remembered([category.pk]) is None


def test_a_grid_answer_reuses_the_counts_a_verify_answer_read(category, settings):
    # given counts kept, the category's read by a verify answer
    settings.CROWDNET_PRIOR_COUNTS_SECONDS = 30.0
    settings.CROWDNET_GOLD_RATE = 0.1
    pool = candidate_pool(category, 20, seed=1440)
    gold_mark(candidate=pool[0], answer=True)
    settings.CROWDNET_GOLD_RATE = 0.0
    assert COUNTS in _answer_one("ann")
    settings.CROWDNET_GOLD_RATE = 0.1

    # when a worker answers a grid of the category, its control right
    client, _ = worker_client("bob")
    task = client.get("/api/tasks/next/?kind=grid").json()
    cells = Candidate.objects.filter(task_items__task__uid=task["id"]).values_list("pk", flat=True)
    answers = [{"item": item["id"], "selected": True} for item in task["items"]]
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            f"/api/tasks/{task['id']}/answer/", {"answers": answers}, format="json"
        )

    # then its votes counted and its consensus read took the remembered counts
    assert response.status_code == 201
    assert len(cells) == 9
    sql = "\n".join(query["sql"] for query in queries.captured_queries)
    assert "WITH counts AS" in sql
    assert COUNTS not in sql
