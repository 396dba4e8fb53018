"""Control items look like the real items around them: same category, size and examples; a
category without curated gold uses items the crowd decided confidently."""

from __future__ import annotations

import pytest
from django.utils import timezone

from labeling.models import Candidate, GoldAnswer, MicroTask, TaskItem, Vote, WorkerProfile
from labeling.services.ingest import images_ingest
from labeling.services.microtasks import gold_mark
from tests.factories import CategoryFactory, image_bytes, worker_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_CONTROL_CONFIDENCE = 0.99


def _images(category, count: int, start: int, size=(80, 60)) -> list[Candidate]:
    files = [(f"{start + i}.jpg", image_bytes(start + i, size=size)) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    return list(Candidate.objects.filter(category=category, image__width=size[0]).order_by("id"))[
        -count:
    ]


def _decide(candidates: list[Candidate], state: str, confidence: float) -> None:
    Candidate.objects.filter(pk__in=[c.pk for c in candidates]).update(
        state=state, confidence=confidence
    )


def _next(client) -> dict:
    response = client.get("/api/tasks/next/?kind=verify")
    assert response.status_code == 200
    return response.json()


def _served(task: dict) -> TaskItem:
    return TaskItem.objects.select_related("candidate").get(uid=task["items"][0]["id"])


def test_a_control_item_is_of_the_category_of_the_pool_item_it_stands_in_for(category, settings):
    # given cats first in the pool, and curated gold in both categories (more of it for dogs)
    settings.CROWDNET_GOLD_RATE = 1.0
    dog = CategoryFactory(name="dog", slug="dog")
    cats = _images(category, 4, start=0)
    Candidate.objects.filter(pk__in=[c.pk for c in cats]).update(priority=5)
    gold_mark(candidate=cats[0], answer=True)
    for candidate in _images(dog, 6, start=100)[:5]:
        gold_mark(candidate=candidate, answer=False)

    # when eight workers each ask for a verify task
    served = [_served(_next(worker_client(f"w{i}")[0])) for i in range(8)]

    # then every one is the cat control item, with its known answer
    assert [(s.is_gold, s.candidate_id, s.control_answer) for s in served] == [
        (True, cats[0].pk, True)
    ] * 8


def test_a_category_without_gold_uses_a_confident_decision_and_the_gate_scores_it(
    category, settings
):
    # given cats with no curated gold: three accepted examples, one item rejected at 0.995,
    # one accepted below the confidence bar, and open items
    settings.CROWDNET_GOLD_RATE = 1.0
    examples = _images(category, 3, start=0)
    _decide(examples, "accepted", 1.0)
    [rejected] = _images(category, 1, start=10)
    _decide([rejected], "rejected", 0.995)
    [unsure] = _images(category, 1, start=20)
    _decide([unsure], "accepted", 0.9)
    _images(category, 2, start=30)
    client, user = worker_client("ann")

    # when the worker gets a verify task and says "yes"
    task = _next(client)
    item = _served(task)
    answered = client.post(
        f"/api/tasks/{task['id']}/answer/",
        {"answers": [{"item": task["items"][0]["id"], "answer": "yes"}], "client_token": "a"},
        format="json",
    )

    # then the rejected item was the control, scored by the gate against the decision, and
    # its tallies and the gold table are untouched
    assert answered.status_code == 201
    assert (item.candidate_id, item.is_gold, item.control_answer) == (rejected.pk, True, False)
    vote = Vote.objects.get(worker=user)
    assert (vote.is_gold, vote.correct, vote.counted) == (True, False, False)
    profile = WorkerProfile.objects.get(user=user)
    assert (profile.gold_seen, profile.gold_correct) == (1, 0)
    rejected.refresh_from_db()
    assert (rejected.yes_votes, rejected.no_votes, rejected.state) == (0, 0, "rejected")
    assert not GoldAnswer.objects.exists()
    # and, having answered it, the worker is never given it again: no other item qualifies,
    # so the next task is a real one
    second = _served(_next(client))
    assert (second.is_gold, second.candidate.state) == (False, "open")


def test_the_control_item_is_the_one_closest_in_size_to_the_pool_item(category, settings):
    settings.CROWDNET_GOLD_RATE = 1.0
    _images(category, 1, start=0, size=(80, 60))
    [large] = _images(category, 1, start=10, size=(400, 300))
    [close] = _images(category, 1, start=20, size=(84, 60))
    gold_mark(candidate=large, answer=True)
    _decide([close], "rejected", 0.999)  # accepted, it would be an example

    served = [_served(_next(worker_client(f"w{i}")[0])) for i in range(3)]

    assert [(s.is_gold, s.candidate_id) for s in served] == [(True, close.pk)] * 3


def test_control_and_real_tasks_carry_the_same_examples(category, settings):
    # given cats (examples, a confidently decided item, open items) first in the pool, and
    # dogs with curated gold and no accepted examples
    dog = CategoryFactory(name="dog", slug="dog")
    gold_mark(candidate=_images(dog, 1, start=100)[0], answer=True)
    examples = _images(category, 4, start=0)
    _decide(examples, "accepted", 1.0)
    _images(category, 2, start=10)
    Candidate.objects.filter(category=category).update(priority=5)

    # when one worker gets a control task and another a real one
    settings.CROWDNET_GOLD_RATE = 1.0
    control = _next(worker_client("ann")[0])
    settings.CROWDNET_GOLD_RATE = 0.0
    real = _next(worker_client("bob")[0])

    # then both show three cat examples (signed per worker, so compared by count and task)
    assert _served(control).is_gold is True
    assert _served(real).is_gold is False
    assert (control["category"]["name"], len(control["examples"])) == ("cat", 3)
    assert (real["category"]["name"], len(real["examples"])) == ("cat", 3)


def test_a_control_comes_from_the_decided_items_next_to_the_pool_item_or_from_gold(
    category, settings, monkeypatch
):
    # given, in import order, an item for gold, two decided items and the open pool item, and
    # a window of one decided item on each side
    settings.CROWDNET_GOLD_RATE = 1.0
    monkeypatch.setattr("labeling.services.microtasks.CONTROL_WINDOW", 1)
    far_gold, far, near, _ = _images(category, 4, start=0)
    _decide([far, near], "rejected", 0.999)
    _decide([far_gold], "needs_review", 0.0)  # out of the pool

    # when workers ask before and after the first item is made gold
    before = [_served(_next(worker_client(f"w{i}")[0])) for i in range(4)]
    gold_mark(candidate=far_gold, answer=False)
    after = _served(_next(worker_client("w9")[0]))

    # then only the nearest decided item served, and then the gold item, wherever it lies
    assert {(s.candidate_id, s.control_answer) for s in before} == {(near.pk, False)}
    assert (after.candidate_id, after.control_answer) == (far_gold.pk, False)


def test_a_control_is_gold_the_worker_never_answered_however_much_of_it_he_has(
    category, settings, monkeypatch
):
    # given, in import order, twelve gold items, twelve items the crowd decided and the open
    # pool item; a window of three items a side (and three gold); and a worker who answered
    # eleven of the twelve gold items before
    settings.CROWDNET_GOLD_RATE = 1.0
    monkeypatch.setattr("labeling.services.microtasks.CONTROL_WINDOW", 3)
    gold = _images(category, 12, start=0)
    for candidate in gold:
        gold_mark(candidate=candidate, answer=False)
    _decide(_images(category, 12, start=20), "rejected", 0.999)
    _images(category, 1, start=40)
    client, ann = worker_client("ann")
    task = MicroTask.objects.create(
        worker=ann, kind="verify", category=category, expires_at=timezone.now()
    )
    Vote.objects.bulk_create(
        Vote(
            worker=ann,
            task=task,
            kind="verify",
            question="label",
            candidate=c,
            answer="no",
            seconds=2.0,
        )
        for c in gold[1:]
    )

    # when he gets a verify task
    served = _served(_next(client))

    # then its control is the one gold item he has not answered, wherever the sample of the
    # category's gold started
    assert (served.is_gold, served.candidate_id) == (True, gold[0].pk)
