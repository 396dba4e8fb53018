"""The worker API: next task, answers, gold, quality gates, the box chain."""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from labeling.models import Box, Candidate, GoldAnswer, MicroTask, TaskItem, Vote, WorkerProfile
from labeling.services.ingest import images_ingest
from labeling.services.microtasks import gold_mark
from tests.factories import CategoryFactory, UserFactory, image_bytes, worker_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_speed_gate(settings):
    """Test clients answer in milliseconds; only the gate's own test keeps the floor."""
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0


def _pool(category, count: int, start: int = 0) -> list[Candidate]:
    files = [(f"{i}.jpg", image_bytes(1000 + start + i, size=(80, 60))) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    return list(Candidate.objects.filter(category=category).order_by("id"))


def _answer(client, task, answers, token="t1"):
    return client.post(
        f"/api/tasks/{task['id']}/answer/",
        {"answers": answers, "client_token": token},
        format="json",
    )


def _yes(task, value="yes"):
    return [{"item": item["id"], "answer": value} for item in task["items"]]


def test_verify_task_shape_and_what_it_hides(worker_api, category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    _pool(category, 1)

    response = worker_api.get("/api/tasks/next/?kind=verify")

    assert response.status_code == 200
    task = response.json()
    assert set(task) == {"id", "kind", "prompt", "category", "examples", "items", "expires_at"}
    assert (task["kind"], task["prompt"]) == ("verify", "Is there a cat in this image?")
    assert task["category"]["definition"] == "a small domesticated feline"
    [item] = task["items"]
    assert set(item) == {"id", "image_url", "width", "height"}
    assert re.fullmatch(
        r"/img/task/[0-9a-f-]{36}/\?sig=[0-9]+%3A[\w-]+%3A[\w-]+", item["image_url"]
    )
    assert (item["width"], item["height"]) == (80, 60)
    assert worker_api.get(item["image_url"]).status_code == 200


def test_nothing_to_do_is_204_and_unknown_kind_is_400(worker_api, category):
    assert worker_api.get("/api/tasks/next/").status_code == 204
    response = worker_api.get("/api/tasks/next/?kind=paint")
    assert response.status_code == 400
    assert "kind" in response.json()


def test_a_worker_never_gets_an_item_twice_and_holds_at_most_two_tasks(category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    _pool(category, 3)
    client, _ = worker_client("ann")

    first = client.get("/api/tasks/next/?kind=verify").json()
    second = client.get("/api/tasks/next/?kind=verify").json()
    third = client.get("/api/tasks/next/?kind=verify").json()

    assert first["items"][0]["id"] != second["items"][0]["id"]
    assert third["id"] == first["id"]  # two open already: the oldest comes back
    assert _answer(client, first, _yes(first)).status_code == 201
    assert _answer(client, second, _yes(second), token="t2").status_code == 201
    last = client.get("/api/tasks/next/?kind=verify").json()
    assert _answer(client, last, _yes(last), token="t3").status_code == 201
    assert client.get("/api/tasks/next/?kind=verify").status_code == 204


def test_no_item_gets_more_leases_than_the_votes_it_needs(category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    [candidate] = _pool(category, 1)
    clients = [worker_client(f"w{i}")[0] for i in range(4)]

    codes = [c.get("/api/tasks/next/?kind=verify").status_code for c in clients]

    assert codes == [200, 200, 200, 204]
    assert TaskItem.objects.filter(candidate=candidate).count() == 3

    # and the last lease noted the first one's end on the item (the picks' full-until hint)
    first = TaskItem.objects.get(task__worker__username="w0").leased_until
    assert Candidate.objects.get(pk=candidate.pk).full_until == (
        first if connection.vendor == "postgresql" else None
    )

    # when one lease expires (the clock moved to its end, and so to the hint's), its place goes
    # back to the pool
    now = timezone.now()
    MicroTask.objects.filter(worker__username="w0").update(expires_at=now)
    TaskItem.objects.filter(task__worker__username="w0").update(leased_until=now)
    Candidate.objects.filter(pk=candidate.pk, full_until=first).update(full_until=now)
    assert clients[3].get("/api/tasks/next/?kind=verify").status_code == 200


def test_breadth_first_and_priority(category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    _fresh, nearly, urgent = _pool(category, 3)
    Candidate.objects.filter(pk=nearly.pk).update(yes_votes=2)
    client, _ = worker_client("ann")

    first = client.get("/api/tasks/next/?kind=verify").json()
    assert TaskItem.objects.get(uid=first["items"][0]["id"]).candidate == nearly

    Candidate.objects.filter(pk=urgent.pk).update(priority=5)
    second = client.get("/api/tasks/next/?kind=verify").json()
    assert TaskItem.objects.get(uid=second["items"][0]["id"]).candidate == urgent


def test_answer_records_one_vote_and_is_idempotent(worker_api, worker, category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    [candidate] = _pool(category, 1)
    task = worker_api.get("/api/tasks/next/").json()

    first = _answer(worker_api, task, _yes(task), token="abc")
    again = _answer(worker_api, task, _yes(task, "no"), token="abc")

    assert first.status_code == again.status_code == 201
    assert (
        first.json()
        == again.json()
        == {
            "answered_tasks": 1,
            "answered_items": 1,
            "streak": 1,
            "paused": False,
            "pause_reason": "",
        }
    )
    assert list(Vote.objects.values_list("answer", "counted", "question")) == [
        ("yes", True, "label")
    ]
    candidate.refresh_from_db()
    assert (candidate.yes_votes, candidate.no_votes, candidate.votes_cast) == (1, 0, 1)
    # the worker's time on task is kept on the profile, as each vote's seconds
    vote_seconds = Vote.objects.get().seconds
    assert worker.profile.__class__.objects.get(user=worker).seconds_total == vote_seconds
    other_token = _answer(worker_api, task, _yes(task), token="other")
    assert other_token.status_code == 409
    assert other_token.json() == {"detail": "This task was already answered."}
    assert Vote.objects.count() == 1


def test_other_workers_task_is_404_and_expired_is_409(worker_api, category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    _pool(category, 2)
    task = worker_api.get("/api/tasks/next/").json()
    intruder, _ = worker_client("mallory")

    assert _answer(intruder, task, _yes(task)).status_code == 404
    assert intruder.get(task["items"][0]["image_url"]).status_code == 404

    MicroTask.objects.filter(uid=task["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    late = _answer(worker_api, task, _yes(task))
    assert late.status_code == 409
    assert late.json() == {"detail": "This task's time ran out; ask for the next one."}
    assert Vote.objects.count() == 0


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        ("yes", {"answers": ['Expected a list of items but got type "str".']}),
        ([], {"answers": ["1 item(s) of this task have no answer."]}),
        (
            [{"item": "nope", "answer": "yes"}],
            {"answers[0].item": ["That item is not part of this task."]},
        ),
        (
            [{"item": None, "answer": "maybe"}],
            {"answers[0].item": ["Each answer needs the item's id as 'item'."]},
        ),
    ],
)
def test_malformed_answers_are_400_with_the_field(answers, error, worker_api, category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    _pool(category, 1)
    task = worker_api.get("/api/tasks/next/").json()

    response = _answer(worker_api, task, answers)

    assert response.status_code == 400
    assert response.json() == error
    assert Vote.objects.count() == 0


def test_bad_choice_names_the_answer_field(worker_api, category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    _pool(category, 1)
    task = worker_api.get("/api/tasks/next/").json()

    response = _answer(worker_api, task, _yes(task, "maybe"))

    assert response.json() == {"answers[0].answer": ["Answer with one of: yes, no, unsure."]}


def _with_gold(category, count: int, gold: int) -> list[Candidate]:
    candidates = _pool(category, count)
    for candidate in candidates[:gold]:
        gold_mark(candidate=candidate, answer=True)
    return candidates


def test_grid_carries_gold_that_the_worker_cannot_see(worker_api, category):
    _with_gold(category, 12, gold=3)

    response = worker_api.get("/api/tasks/next/?kind=grid")

    task = response.json()
    assert (task["kind"], len(task["items"])) == ("grid", 9)
    assert task["prompt"] == "Select all images with a cat."
    items = TaskItem.objects.filter(task__uid=task["id"])
    assert items.filter(is_gold=True).count() == 1
    body = json.dumps(task)
    for leak in ["gold", "is_gold", "state", "accepted", "votes", "confidence"]:
        assert leak not in body
    assert len({item["image_url"] for item in task["items"]}) == 9


def test_grid_votes_count_only_when_the_control_is_right(category):
    _with_gold(category, 12, gold=1)
    client, _ = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=grid").json()
    gold_item = str(TaskItem.objects.get(task__uid=task["id"], is_gold=True).uid)

    # the worker leaves the gold cell (a cat) unselected and selects all others
    answers = [{"item": i["id"], "selected": i["id"] != gold_item} for i in task["items"]]
    assert _answer(client, task, answers).status_code == 201

    assert Vote.objects.filter(counted=False, is_gold=False).count() == 8
    assert Vote.objects.get(is_gold=True).correct is False
    assert sum(Candidate.objects.values_list("votes_cast", flat=True)) == 0
    profile = WorkerProfile.objects.get(user__username="ann")
    # one missed control whose answer is yes: evidence log(0.5 / 0.2) against a coin and
    # log(0.9 / 0.2) against "misses yes items" (labeling.crowd.gates)
    assert (profile.gold_seen, profile.gold_correct) == (1, 0)
    assert (profile.gold_evidence, profile.gold_evidence_yes, profile.gold_evidence_no) == (
        pytest.approx(math.log(2.5)),
        pytest.approx(math.log(4.5)),
        0.0,
    )
    assert (profile.paused, profile.pause_reason) == (False, "")


def test_a_worker_who_saw_a_categorys_control_items_gets_a_grid_of_another(category):
    dog = CategoryFactory(name="dog", slug="dog")
    _with_gold(category, 14, gold=1)
    Candidate.objects.filter(category=category).update(priority=5)  # cats come first
    dogs = _pool(dog, 12, start=100)
    gold_mark(candidate=dogs[0], answer=True)
    client, _ = worker_client("ann")

    first = client.get("/api/tasks/next/?kind=grid").json()
    everything = [{"item": i["id"], "selected": True} for i in first["items"]]
    assert _answer(client, first, everything).status_code == 201
    second = client.get("/api/tasks/next/?kind=grid")

    assert first["category"]["name"] == "cat"
    assert second.status_code == 200
    assert second.json()["category"]["name"] == "dog"
    gold = TaskItem.objects.get(task__uid=second.json()["id"], is_gold=True)
    assert gold.candidate_id == dogs[0].pk
    # cats and dogs still wait for votes, but the worker has seen every control item
    again = [{"item": i["id"], "selected": True} for i in second.json()["items"]]
    assert _answer(client, second.json(), again, token="t2").status_code == 201
    third = client.get("/api/tasks/next/?kind=grid")
    assert (third.status_code, third["Crowdnet-Empty-Reason"]) == (204, "done")
    assert MicroTask.objects.filter(worker__username="ann").count() == 2


def test_an_empty_answer_says_whether_there_is_no_work_or_none_left_for_the_worker(
    category, settings
):
    settings.CROWDNET_GOLD_RATE = 0.0
    client, _ = worker_client("ann")
    before_any = client.get("/api/tasks/next/")
    [candidate] = _pool(category, 1)
    grid_without_control_items = client.get("/api/tasks/next/?kind=grid")
    task = client.get("/api/tasks/next/?kind=verify").json()
    assert _answer(client, task, _yes(task)).status_code == 201

    after_answering = client.get("/api/tasks/next/?kind=verify")
    any_kind = client.get("/api/tasks/next/")
    draw = client.get("/api/tasks/next/?kind=draw")

    assert (before_any.status_code, before_any["Crowdnet-Empty-Reason"]) == (204, "no-work")
    assert grid_without_control_items["Crowdnet-Empty-Reason"] == "no-work"
    # the item still wants two more votes, from other workers
    assert Candidate.objects.get(pk=candidate.pk).votes_cast == 1
    assert (after_answering.status_code, after_answering["Crowdnet-Empty-Reason"]) == (
        204,
        "done",
    )
    assert any_kind["Crowdnet-Empty-Reason"] == "done"
    assert draw["Crowdnet-Empty-Reason"] == "no-work"


def test_too_fast_worker_is_paused_with_a_reason(category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 60.0
    settings.CROWDNET_GATE_FALSE_PAUSE = 0.05  # pause at log(20) nats: two fast tasks (2 log 5)
    _pool(category, 4)
    client, _ = worker_client("speedy")

    for token in ["a", "b"]:
        task = client.get("/api/tasks/next/").json()
        body = _answer(client, task, _yes(task), token=token).json()

    assert body["paused"] is True
    assert body["pause_reason"] == (
        "Too many of your recent tasks were answered faster than 60 s per image. Take a little "
        "more time on each one; a curator can resume your account."
    )
    response = client.get("/api/tasks/next/")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("Your account is paused: Too many of your")
    assert not TaskItem.objects.filter(
        task__worker__username="speedy", leased_until__gt=timezone.now()
    ).exists()


def test_missed_controls_pause_with_a_reason_that_names_no_item_count_or_answer(
    category, curator_api, settings
):
    # given control items served every time (a control stands in for a pool item, so the pool
    # has some) and a gate loose enough to pause after two misses
    # (the pooled test at log(1 / 0.25) = 1.39 nats; two misses give 2 log(2.5) = 1.83)
    settings.CROWDNET_GOLD_RATE = 1.0
    settings.CROWDNET_GATE_FALSE_PAUSE = 0.5
    _with_gold(category, 5, gold=3)
    client, user = worker_client("ann")

    # when the worker says "no" to two of them
    bodies = []
    for token in ["a", "b"]:
        task = client.get("/api/tasks/next/?kind=verify").json()
        bodies.append(_answer(client, task, _yes(task, "no"), token=token).json())

    # then the first answer leaves them working and the second pauses them, told why in words
    # that give away nothing about the items
    assert [body["paused"] for body in bodies] == [False, True]
    reason = bodies[1]["pause_reason"]
    assert reason == (
        "Your answers to check questions were below the required accuracy. Re-read the "
        "category definitions; a curator can resume your account."
    )
    leased = TaskItem.objects.count()
    for path in ("/api/tasks/next/", "/api/tasks/next/?kind=verify"):
        refused = client.get(path)
        assert refused.status_code == 403
        assert refused.json()["detail"] == f"Your account is paused: {reason}"
    assert TaskItem.objects.count() == leased
    # curators see the evidence
    [row] = [w for w in curator_api.get("/api/crowd/").json()["workers"] if w["id"] == user.pk]
    assert row["pause_reason"] == reason
    assert row["pause_detail"].startswith("Control items: 0 of 2 right.")


def test_box_chain_draw_verify_coverage(category):
    [candidate] = _pool(category, 1)
    Candidate.objects.filter(pk=candidate.pk).update(state="accepted", box_state="draw")
    drawer, _ = worker_client("drawer")
    checker, _ = worker_client("checker")
    closer, _ = worker_client("closer")

    # draw: one box inside the 80x60 image
    task = drawer.get("/api/tasks/next/?kind=draw").json()
    assert task["prompt"] == "Draw a box around each cat."
    bad = _answer(drawer, task, [{"item": task["items"][0]["id"], "boxes": [[10, 10, 90, 50]]}])
    assert bad.status_code == 400
    assert bad.json() == {
        "answers[0].boxes[0]": ["The box must lie inside the image (0-80 x 0-60 px)."]
    }
    ok = _answer(drawer, task, [{"item": task["items"][0]["id"], "boxes": [[10, 10, 40, 50]]}])
    assert ok.status_code == 201
    box = Box.objects.get()
    assert (box.x0, box.y0, box.x1, box.y1, box.state) == (10, 10, 40, 50, "proposed")
    assert drawer.get("/api/tasks/next/?kind=verify_box").status_code == 204  # not your own box

    # verify_box by someone else
    task = checker.get("/api/tasks/next/?kind=verify_box").json()
    assert task["items"][0]["box"] == [10.0, 10.0, 40.0, 50.0]
    assert _answer(checker, task, _yes(task)).status_code == 201
    box.refresh_from_db()
    assert box.state == "accepted"
    assert Candidate.objects.get(pk=candidate.pk).box_state == "coverage"

    # coverage by a third worker, who sees the accepted boxes
    assert drawer.get("/api/tasks/next/?kind=coverage").status_code == 204
    task = closer.get("/api/tasks/next/?kind=coverage").json()
    assert task["items"][0]["boxes"] == [[10.0, 10.0, 40.0, 50.0]]
    assert _answer(closer, task, _yes(task)).status_code == 201
    assert Candidate.objects.get(pk=candidate.pk).box_state == "done"


def test_curators_mark_gold_and_workers_cannot(curator_api, worker_api, category):
    [candidate] = _pool(category, 1)

    assert (
        worker_api.post(
            f"/api/candidates/{candidate.pk}/gold/", {"answer": True}, format="json"
        ).status_code
        == 403
    )
    assert not GoldAnswer.objects.exists()
    response = curator_api.post(
        f"/api/candidates/{candidate.pk}/gold/", {"answer": False}, format="json"
    )

    assert response.status_code == 201
    candidate.refresh_from_db()
    assert (candidate.state, candidate.gold.answer, candidate.confidence) == (
        "rejected",
        False,
        1.0,
    )
    assert worker_api.get("/api/tasks/next/?kind=verify").status_code in (200, 204)


def test_curator_resumes_a_paused_worker(curator_api, category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    _pool(category, 2)
    client, user = worker_client("paused")
    WorkerProfile.objects.create(
        user=user,
        paused=True,
        pause_reason="too fast",
        pause_detail="evidence",
        gold_seen=4,
        gold_evidence=1.5,
        gold_evidence_no=2.0,
        fast_evidence=5.0,
        said_yes_evidence=4.0,
        said_no_evidence=-1.0,
        peer_evidence=5.5,
        peer_evidence_yes=-2.0,
        peer_evidence_no=1.0,
        peer_yes_items=7.0,
    )
    assert client.get("/api/tasks/next/").status_code == 403

    assert client.post(f"/api/workers/{user.pk}/resume/").status_code == 403  # not a curator
    response = curator_api.post(f"/api/workers/{user.pk}/resume/")

    assert response.status_code == 200
    profile = WorkerProfile.objects.get(user=user)
    assert (profile.paused, profile.pause_reason, profile.pause_detail) == (False, "", "")
    evidence = [
        profile.gold_evidence,
        profile.gold_evidence_yes,
        profile.gold_evidence_no,
        profile.fast_evidence,
        profile.said_yes_evidence,
        profile.said_no_evidence,
        profile.peer_evidence,
        profile.peer_evidence_yes,
        profile.peer_evidence_no,
    ]
    # the tests start afresh; the lifetime records (controls, agreement counts) stay
    assert (evidence, profile.gold_seen, profile.peer_yes_items) == ([0.0] * 9, 4, 7.0)
    assert client.get("/api/tasks/next/").status_code == 200


def test_a_prefetched_task_is_timed_from_the_previous_answer(category, settings):
    # given two tasks issued 20 s ago (one shown, one prefetched) and a 5 s floor per image
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 5.0
    _pool(category, 2)
    client, user = worker_client("ann")
    first = client.get("/api/tasks/next/?kind=verify").json()
    second = client.get("/api/tasks/next/?kind=verify").json()
    MicroTask.objects.update(issued_at=timezone.now() - timedelta(seconds=20))

    # when the worker answers the first after 20 s, then the second at once
    assert _answer(client, first, _yes(first), token="a").status_code == 201
    assert _answer(client, second, _yes(second), token="b").status_code == 201

    # then only the second counts as too fast
    # (evidence log(0.5 / 0.9) for the slow one, then log(0.5 / 0.1) for the fast one)
    assert WorkerProfile.objects.get(user=user).fast_evidence == pytest.approx(
        math.log(0.5 / 0.9) + math.log(5.0)
    )
    seconds = list(Vote.objects.order_by("id").values_list("seconds", flat=True))
    assert seconds[0] >= 20 and seconds[1] < 5


def test_a_box_gets_as_many_checks_as_configured_then_the_majority_decides(category, settings):
    settings.CROWDNET_BOX_VERIFY_VOTES = 3
    [candidate] = _pool(category, 1)
    Candidate.objects.filter(pk=candidate.pk).update(state="accepted", box_state="verify")
    drawer = UserFactory(username="drawer")
    box = Box.objects.create(candidate=candidate, worker=drawer, x0=1, y0=1, x1=30, y1=20)
    checkers = [worker_client(f"c{i}")[0] for i in range(4)]

    tasks = [c.get("/api/tasks/next/?kind=verify_box") for c in checkers]
    assert [t.status_code for t in tasks] == [200, 200, 200, 204]
    for client, response, answer in zip(checkers, tasks, ["yes", "no", "yes"], strict=False):
        assert _answer(client, response.json(), _yes(response.json(), answer)).status_code == 201

    box.refresh_from_db()
    assert (box.yes_votes, box.no_votes, box.state) == (2, 1, "accepted")
    assert Candidate.objects.get(pk=candidate.pk).box_state == "coverage"
