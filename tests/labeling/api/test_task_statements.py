"""The statements a verify round trip costs: pinned, so per-answer cost cannot creep back."""

from __future__ import annotations

import pytest
from django.db import connection

from labeling.models import TaskItem
from labeling.services.microtasks import gold_mark
from tests.factories import candidate_pool, worker_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the two-statement lease is PostgreSQL's; SQLite takes the ORM path")
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0


@pytest.mark.parametrize("gold_rate", [0.0, 1.0])
def test_a_verify_lease_costs_the_same_statements_for_a_real_or_a_control_item(
    category, settings, django_assert_num_queries, gold_rate
):
    # given a pool next to curated gold, and a worker who answered once already
    settings.CROWDNET_GOLD_RATE = gold_rate
    pool = candidate_pool(category, 12, seed=300)
    for candidate in pool[:3]:
        gold_mark(candidate=candidate, answer=True)
    client, _ = worker_client("ann")
    first = client.get("/api/tasks/next/?kind=verify").json()
    answer = [{"item": first["items"][0]["id"], "answer": "yes"}]
    client.post(f"/api/tasks/{first['id']}/answer/", {"answers": answer}, format="json")

    # when they ask for the next task: savepoint, profile and kinds, pick, lease, release
    with django_assert_num_queries(5):
        response = client.get("/api/tasks/next/?kind=verify")

    # then it is served, a control exactly when the rate says so
    assert response.status_code == 200
    served = response.json()["items"][0]["id"]
    assert TaskItem.objects.get(uid=served).is_gold is (gold_rate == 1.0)


def test_answering_a_verify_task_costs_pinned_statements(
    category, settings, django_assert_num_queries
):
    # given a leased verify task
    settings.CROWDNET_GOLD_RATE = 0.0
    candidate_pool(category, 4, seed=400)
    client, _ = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=verify").json()
    answer = [{"item": task["items"][0]["id"], "answer": "yes"}]

    # when it is answered: savepoint, task (by uid or token) and profile locks, items, votes,
    # tally, consensus (candidates, votes, voters, the crowd's control totals for a newcomer's
    # coins, the category's capped decided counts for its learnt prior, posterior), the capped
    # counts again for the one-answer gate, profile, task, leases, release
    with django_assert_num_queries(17):
        response = client.post(
            f"/api/tasks/{task['id']}/answer/",
            {"answers": answer, "client_token": "a"},
            format="json",
        )

    # then it is recorded
    assert response.status_code == 201
    assert response.json()["answered_tasks"] == 1
