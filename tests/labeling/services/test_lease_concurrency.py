"""The two-statement verify lease (labeling.services.leases) under many workers at once, on
PostgreSQL: no item leased beyond the votes it needs, no worker given an item twice, and
control items served through the same statements."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection
from django.utils import timezone

from labeling.models import Box, Candidate, Category, MicroTask, TaskItem, Vote
from labeling.services.answers import answer_submit
from labeling.services.microtasks import gold_mark, task_assign
from tests.factories import UserFactory, candidate_pool

pytestmark = pytest.mark.django_db(transaction=True)

NEEDED = 3


def _at_once(workers: list, job: Callable) -> list[BaseException]:
    """Run ``job(worker)`` on one thread per worker, all released together; the errors."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(worker) -> None:
        try:
            barrier.wait()
            job(worker)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _lease_and_answer(worker, kind: str, answer: dict, token: str) -> bool:
    """Lease a task of ``kind`` for ``worker`` and give each item ``answer``; False if none."""
    task = task_assign(worker=worker, kind=kind)
    if task is None:
        return False
    answers = [{"item": str(item.uid), **answer} for item in task.served.items]
    answer_submit(worker=worker, task_uid=str(task.uid), answers=answers, client_token=token)
    return True


def _work_to_the_end(workers: list, kind: str, answer: dict, rounds: int) -> list[BaseException]:
    """Every worker leases and answers ``rounds`` tasks at once, then they take turns until
    none is offered; the errors of the part at once."""
    errors = _at_once(
        workers,
        lambda w: [_lease_and_answer(w, kind, answer, f"{w.pk}-{r}") for r in range(rounds)],
    )
    offered, turn = True, 0
    while offered:
        turn += 1
        offered = any([_lease_and_answer(w, kind, answer, f"{w.pk}-end-{turn}") for w in workers])
    return errors


@pytest.fixture(autouse=True)
def _postgresql(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the two-statement lease is PostgreSQL's; SQLite takes the ORM path")
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_CONSENSUS_VOTE_CAP = NEEDED  # every item stops at exactly NEEDED votes


def test_forty_workers_leasing_at_once_fill_every_place_once(settings):
    # given 6 items that need 3 votes each (18 places) and 40 workers asking at the same moment
    settings.CROWDNET_GOLD_RATE = 0.0
    category = Category.objects.create(name="cat", slug="cat")
    candidate_pool(category, 6, seed=700)
    Candidate.objects.update(votes_needed=NEEDED)
    workers = [UserFactory(username=f"w{i}") for i in range(40)]

    # when they all ask for a verify task at once, and then once more each, in turn
    errors = _at_once(workers, lambda worker: task_assign(worker=worker, kind="verify"))
    for worker in workers:
        task_assign(worker=worker, kind="verify")

    # then every place is leased exactly once, and no worker holds two leases on one item
    assert errors == []
    leases = TaskItem.objects.filter(leased_until__gt=timezone.now())
    per_item = Counter(leases.values_list("candidate_id", flat=True))
    assert sorted(per_item.values()) == [NEEDED] * 6
    per_worker_item = Counter(leases.values_list("task__worker_id", "candidate_id"))
    assert set(per_worker_item.values()) == {1}


def test_workers_leasing_and_answering_at_once_never_over_assign_with_controls(settings):
    # given 30 open items (3 votes each) next to 20 decided items, 5 of them curated gold, and
    # a control rate of 30 %
    settings.CROWDNET_GOLD_RATE = 0.3
    category = Category.objects.create(name="cat", slug="cat")
    pool = candidate_pool(category, 50, seed=800)
    decided, open_items = pool[:20], pool[20:]
    Candidate.objects.filter(pk__in=[c.pk for c in decided]).update(
        state="rejected", confidence=1.0
    )
    for candidate in decided[:5]:
        gold_mark(candidate=candidate, answer=False)
    Candidate.objects.update(votes_needed=NEEDED)
    workers = [UserFactory(username=f"w{i}") for i in range(24)]

    # when every worker leases and answers 5 tasks at once, then they take turns to the end
    errors = _work_to_the_end(workers, "verify", {"answer": "no"}, rounds=5)

    # then no open item got more votes than it needed, every one got all of them, no worker
    # voted twice on an item, controls were served (and scored, never counted) and no decided
    # item was ever given a counted vote
    assert errors == []
    open_ids = [c.pk for c in open_items]
    cast = Candidate.objects.filter(pk__in=open_ids).values_list("votes_cast", flat=True)
    assert sorted(cast) == [NEEDED] * len(open_items)
    real_votes = Vote.objects.filter(candidate_id__in=open_ids, is_gold=False)
    assert real_votes.count() == NEEDED * len(open_items)
    per_worker_item = Counter(Vote.objects.values_list("worker_id", "candidate_id"))
    assert set(per_worker_item.values()) == {1}
    controls = Vote.objects.filter(is_gold=True)
    assert controls.exists()
    assert set(controls.values_list("candidate__state", "counted")) == {("rejected", False)}
    decided_ids = [c.pk for c in decided]
    assert not TaskItem.objects.filter(is_gold=False, candidate_id__in=decided_ids).exists()


def _grid_pool(settings, open_count: int, gold_count: int) -> tuple[list[int], list[int]]:
    """A category of ``open_count`` items that need NEEDED votes and ``gold_count`` curated
    gold items (answer no); grids of 4 cells, one of them gold. The open and gold ids."""
    settings.CROWDNET_GRID_SIZE = 4
    settings.CROWDNET_GOLD_RATE = 0.25
    category = Category.objects.create(name="cat", slug="cat")
    pool = candidate_pool(category, open_count + gold_count, seed=900)
    for candidate in pool[:gold_count]:
        gold_mark(candidate=candidate, answer=False)
    Candidate.objects.update(votes_needed=NEEDED)
    return [c.pk for c in pool[gold_count:]], [c.pk for c in pool[:gold_count]]


def test_thirty_workers_leasing_grids_at_once_fill_every_place_once(settings):
    # given 12 items that need 3 votes each (36 places), 3 gold items, and 30 workers asking
    # for a grid (3 pool cells and 1 gold cell) at the same moment
    open_ids, gold_ids = _grid_pool(settings, 12, 3)
    workers = [UserFactory(username=f"w{i}") for i in range(30)]

    # when they all ask at once, and then once more each, in turn
    errors = _at_once(workers, lambda worker: task_assign(worker=worker, kind="grid"))
    for worker in workers:
        task_assign(worker=worker, kind="grid")

    # then every place is leased exactly once, each grid holds one gold cell, and no worker
    # holds two leases on one item
    assert errors == []
    leases = TaskItem.objects.filter(leased_until__gt=timezone.now())
    per_item = Counter(leases.filter(is_gold=False).values_list("candidate_id", flat=True))
    assert sorted(per_item) == sorted(open_ids)
    assert sorted(per_item.values()) == [NEEDED] * 12
    gold_per_task = Counter(leases.filter(is_gold=True).values_list("task_id", flat=True))
    assert set(gold_per_task.values()) == {1}
    assert set(leases.filter(is_gold=True).values_list("candidate_id", flat=True)) <= set(gold_ids)
    assert len(gold_per_task) == len(set(leases.values_list("task_id", flat=True)))
    per_worker_item = Counter(leases.values_list("task__worker_id", "candidate_id"))
    assert set(per_worker_item.values()) == {1}


def test_workers_leasing_and_answering_grids_at_once_never_over_assign(settings):
    # given 20 items that need 3 votes each (60 places) and 4 gold items (answer no), and 16
    # workers who lease and answer grids of 3 pool cells and 1 gold cell
    open_ids, gold_ids = _grid_pool(settings, 20, 4)
    workers = [UserFactory(username=f"w{i}") for i in range(16)]

    # when every worker leases and answers 3 grids at once, then they take turns to the end
    errors = _work_to_the_end(workers, "grid", {"selected": False}, rounds=3)

    # then every open item got exactly the votes it needed, all counted (every control was
    # answered right), no worker voted twice on an item, and the gold votes were scored, never
    # counted; no worker saw more controls than the 4 there are
    assert errors == []
    cast = Candidate.objects.filter(pk__in=open_ids).values_list("votes_cast", flat=True)
    assert sorted(cast) == [NEEDED] * 20
    real_votes = Vote.objects.filter(candidate_id__in=open_ids)
    assert (real_votes.count(), real_votes.filter(counted=True).count()) == (60, 60)
    assert set(real_votes.values_list("is_gold", flat=True)) == {False}
    per_worker_item = Counter(Vote.objects.values_list("worker_id", "candidate_id"))
    assert set(per_worker_item.values()) == {1}
    controls = Vote.objects.filter(candidate_id__in=gold_ids)
    assert set(controls.values_list("is_gold", "counted", "correct")) == {(True, False, True)}
    grids = MicroTask.objects.filter(kind="grid", status="answered").count()
    assert controls.count() == grids
    assert Candidate.objects.filter(pk__in=gold_ids, votes_cast__gt=0).count() == 0


def _proposed_boxes(count: int, drawer) -> list[int]:
    """``count`` accepted images waiting for box checks, each with one box by ``drawer``."""
    category = Category.objects.create(name="dog", slug="dog")
    pool = candidate_pool(category, count, seed=1000)
    Candidate.objects.update(state="accepted", box_state="verify")
    boxes = Box.objects.bulk_create(
        Box(candidate=c, worker=drawer, x0=2, y0=2, x1=40, y1=30) for c in pool
    )
    return [box.pk for box in boxes]


def test_thirty_workers_leasing_box_checks_at_once_fill_every_place_once(settings):
    # given 6 proposed boxes that need 2 checks each (12 places), drawn by one of 30 workers
    # who all ask for a box check at the same moment
    settings.CROWDNET_BOX_VERIFY_VOTES = 2
    workers = [UserFactory(username=f"w{i}") for i in range(30)]
    box_ids = _proposed_boxes(6, drawer=workers[0])

    # when they all ask at once, and then once more each, in turn
    errors = _at_once(workers, lambda worker: task_assign(worker=worker, kind="verify_box"))
    for worker in workers:
        task_assign(worker=worker, kind="verify_box")

    # then every place is leased exactly once, never to the box's drawer, and no worker holds
    # two leases on one box
    assert errors == []
    leases = TaskItem.objects.filter(leased_until__gt=timezone.now())
    per_box = Counter(leases.values_list("box_id", flat=True))
    assert sorted(per_box) == sorted(box_ids)
    assert sorted(per_box.values()) == [2] * 6
    assert not leases.filter(task__worker=workers[0]).exists()
    per_worker_box = Counter(leases.values_list("task__worker_id", "box_id"))
    assert set(per_worker_box.values()) == {1}


def test_workers_leasing_and_answering_box_checks_at_once_never_over_assign(settings):
    # given 10 proposed boxes that need 3 checks each (30 places) and 12 workers (one drew
    # them all) who lease and answer box checks
    settings.CROWDNET_BOX_VERIFY_VOTES = 3
    workers = [UserFactory(username=f"w{i}") for i in range(12)]
    box_ids = _proposed_boxes(10, drawer=workers[0])

    # when every worker leases and answers 3 box checks at once, then they take turns to the end
    errors = _work_to_the_end(workers, "verify_box", {"answer": "yes"}, rounds=3)

    # then every box got exactly its 3 checks, none from its drawer nor twice from one worker,
    # and every box was accepted
    assert errors == []
    boxes = Box.objects.filter(pk__in=box_ids)
    assert sorted(boxes.values_list("yes_votes", "no_votes")) == [(3, 0)] * 10
    assert set(boxes.values_list("state", flat=True)) == {"accepted"}
    votes = Vote.objects.filter(box_id__in=box_ids)
    assert votes.count() == 30
    assert not votes.filter(worker=workers[0]).exists()
    assert set(Counter(votes.values_list("worker_id", "box_id")).values()) == {1}


def test_twenty_workers_asking_for_drawings_at_once_lease_each_image_once(settings):
    # given 5 accepted images waiting for boxes and 20 workers asking at the same moment
    category = Category.objects.create(name="dog", slug="dog")
    pool = candidate_pool(category, 5, seed=1100)
    Candidate.objects.update(state="accepted", box_state="draw")
    workers = [UserFactory(username=f"w{i}") for i in range(20)]

    # when they all ask for a drawing at once
    errors = _at_once(workers, lambda worker: task_assign(worker=worker, kind="draw"))

    # then each image is leased to exactly one of them
    assert errors == []
    leases = TaskItem.objects.filter(leased_until__gt=timezone.now())
    assert sorted(leases.values_list("candidate_id", flat=True)) == [c.pk for c in pool]
