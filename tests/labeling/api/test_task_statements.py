"""The statements a verify round trip costs: pinned, so per-answer cost cannot creep back."""

from __future__ import annotations

import pytest
from django.db import connection

from labeling.models import Candidate, TaskItem, Vote
from labeling.services.microtasks import gold_mark, worker_profile
from labeling.services.worker_coins import crowd_newcomer
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

    # when they ask for the next task: savepoint, profile, open tasks and pick in one, lease,
    # release
    with django_assert_num_queries(4):
        response = client.get("/api/tasks/next/?kind=verify")

    # then it is served, a control exactly when the rate says so
    assert response.status_code == 200
    served = response.json()["items"][0]["id"]
    assert TaskItem.objects.get(uid=served).is_gold is (gold_rate == 1.0)


@pytest.mark.parametrize("gold_rate", [0.0, 1.0])
def test_answering_a_verify_task_costs_pinned_statements_for_a_real_or_a_control_item(
    category, settings, django_assert_num_queries, gold_rate
):
    # given a leased verify task (a control item exactly when the rate says so) next to
    # curated gold, two earlier votes on its item from others, and the crowd's control totals
    # already cached (as they are for a minute at a time)
    settings.CROWDNET_GOLD_RATE = gold_rate
    pool = candidate_pool(category, 12, seed=400)
    for candidate in pool[:3]:
        gold_mark(candidate=candidate, answer=True)
    for name in ("bob", "cid"):
        other, _ = worker_client(name)
        settings.CROWDNET_GOLD_RATE = 0.0
        earlier = other.get("/api/tasks/next/?kind=verify").json()
        answer = [{"item": earlier["items"][0]["id"], "answer": "yes"}]
        other.post(f"/api/tasks/{earlier['id']}/answer/", {"answers": answer}, format="json")
    settings.CROWDNET_GOLD_RATE = gold_rate
    crowd_newcomer()
    client, _ = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=verify").json()
    answer = [{"item": task["items"][0]["id"], "answer": "yes"}]

    # when it is answered: savepoint; the task (by uid or token), profile and items, locked;
    # vote and tally; the candidate's votes with their voters' records and the category's
    # capped decided counts; decision, credits, record, task and lease; release
    with django_assert_num_queries(6):
        response = client.post(
            f"/api/tasks/{task['id']}/answer/",
            {"answers": answer, "client_token": "a"},
            format="json",
        )

    # then it is recorded; a real item's third yes from newcomers moves its posterior and
    # asks one more vote (what the ORM path decides, too)
    assert response.status_code == 201
    assert response.json()["answered_tasks"] == 1
    item = TaskItem.objects.select_related("candidate").get(uid=task["items"][0]["id"])
    assert item.is_gold is (gold_rate == 1.0)
    vote = Vote.objects.get(worker__username="ann")
    assert (vote.counted, vote.is_gold) == (gold_rate == 0.0, gold_rate == 1.0)
    if gold_rate == 0.0:
        candidate = item.candidate
        assert (candidate.yes_votes, candidate.state, candidate.votes_needed) == (3, "open", 4)
        assert round(candidate.posterior, 4) == 0.8889


@pytest.mark.parametrize(("gold_rate", "gold_cells"), [(0.0, 1), (0.5, 4)])
def test_a_grid_lease_costs_pinned_statements_with_its_gold_cells(
    category, settings, django_assert_num_queries, gold_rate, gold_cells
):
    # given a pool of 20 with 10 curated gold items, and a worker who answered one grid already
    settings.CROWDNET_GOLD_RATE = gold_rate
    pool = candidate_pool(category, 30, seed=500)
    for candidate in pool[:10]:
        gold_mark(candidate=candidate, answer=True)
    client, _ = worker_client("ann")
    first = client.get("/api/tasks/next/?kind=grid").json()
    answers = [{"item": item["id"], "selected": True} for item in first["items"]]
    client.post(f"/api/tasks/{first['id']}/answer/", {"answers": answers}, format="json")

    # when they ask for the next grid: savepoint, profile and kinds, pick, lease, release
    with django_assert_num_queries(5):
        response = client.get("/api/tasks/next/?kind=grid")

    # then it is a full grid with its gold cells, none of which the worker saw before
    assert response.status_code == 200
    task = response.json()
    assert (task["kind"], len(task["items"])) == ("grid", 9)
    items = TaskItem.objects.filter(task__uid=task["id"])
    assert sorted(items.values_list("position", flat=True)) == list(range(9))
    assert items.filter(is_gold=True).count() == gold_cells
    seen = TaskItem.objects.filter(task__uid=first["id"]).values_list("candidate_id", flat=True)
    assert not items.filter(candidate_id__in=list(seen)).exists()


def test_a_drawing_lease_picks_in_one_statement(category, django_assert_num_queries):
    # given three accepted images waiting for boxes, one of them asked first and leased by
    # another worker, and a worker with a profile
    waiting = candidate_pool(category, 3, seed=600)
    Candidate.objects.filter(pk__in=[c.pk for c in waiting]).update(
        state="accepted", box_state="draw"
    )
    Candidate.objects.filter(pk=waiting[2].pk).update(priority=5)
    other, _ = worker_client("bob")
    assert other.get("/api/tasks/next/?kind=draw").json()["items"][0]["width"] == 80
    client, ann = worker_client("ann")
    worker_profile(ann)

    # when a worker asks for a drawing: savepoint, profile and kinds, pick, task, item,
    # release; the body's items and examples
    with django_assert_num_queries(8):
        response = client.get("/api/tasks/next/?kind=draw")

    # then they get the next image nobody holds, in serving order
    assert response.status_code == 200
    served = TaskItem.objects.get(uid=response.json()["items"][0]["id"])
    assert served.candidate_id == waiting[0].pk
    assert TaskItem.objects.get(task__worker__username="bob").candidate_id == waiting[2].pk
