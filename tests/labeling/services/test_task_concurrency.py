"""task_assign and answer_submit under real concurrency on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction

from labeling.models import Candidate, Category, TaskItem, Vote
from labeling.services.answers import answer_submit
from labeling.services.ingest import images_ingest
from labeling.services.microtasks import gold_mark, task_assign
from tests.factories import UserFactory, image_bytes

WORKERS = 24
ROUNDS = 6
ITEMS = 20
NEEDED = 3


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_never_over_assign(settings):
    # given 20 items that each need 3 votes, and 24 workers hammering the engine at once
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED are PostgreSQL's; SQLite serialises writers")
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_CONSENSUS_VOTE_CAP = NEEDED  # every item stops at exactly NEEDED votes
    category = Category.objects.create(name="cat", slug="cat")
    files = [(f"{i}.jpg", image_bytes(500 + i, size=(40, 30))) for i in range(ITEMS)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    Candidate.objects.update(votes_needed=NEEDED)
    workers = [UserFactory(username=f"w{i}") for i in range(WORKERS)]
    barrier = threading.Barrier(WORKERS)
    errors: list[BaseException] = []
    leases_seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def one_task(worker, token: str) -> bool:
        task = task_assign(worker=worker, kind="verify")
        if task is None:
            return False
        items = list(task.items.all())
        with lock:
            leases_seen.extend((worker.pk, item.candidate_id) for item in items)
        answers = [{"item": str(item.uid), "answer": "yes"} for item in items]
        answer_submit(worker=worker, task_uid=str(task.uid), answers=answers, client_token=token)
        return True

    def work(worker) -> None:
        try:
            barrier.wait()
            for round_ in range(ROUNDS):
                one_task(worker, f"{worker.pk}-{round_}")
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    # when they all run at once
    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then nothing failed and no item got more votes than it needed; a worker may have found
    # every open item locked by others for a moment (SKIP LOCKED), so some may still need votes
    assert errors == []
    assert max(Candidate.objects.values_list("votes_cast", flat=True)) <= NEEDED

    # and when the same workers then take turns until nobody is offered anything
    offered = True
    while offered:
        offered = False
        for worker in workers:
            offered |= one_task(worker, f"{worker.pk}-drain-{len(leases_seen)}")

    # then every item got exactly the votes it needed, and no worker was ever handed the same
    # item twice
    assert sorted(Candidate.objects.values_list("votes_cast", flat=True)) == [NEEDED] * ITEMS
    assert Vote.objects.count() == NEEDED * ITEMS
    per_worker_item = Counter(Vote.objects.values_list("worker_id", "candidate_id"))
    assert max(per_worker_item.values()) == 1
    assert max(Counter(leases_seen).values()) == 1
    assert TaskItem.objects.count() == NEEDED * ITEMS


@pytest.mark.django_db(transaction=True)
def test_the_same_answer_posted_twice_at_once_is_recorded_once(settings):
    # given one leased task and a client that sends its answer twice at the same moment
    if connection.vendor != "postgresql":
        pytest.skip("needs two real concurrent transactions: PostgreSQL")
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    category = Category.objects.create(name="cat", slug="cat")
    images_ingest(
        files=[("a.jpg", image_bytes(900))], category=category, source="upload", uploader=None
    )
    worker = UserFactory(username="twice")
    task = task_assign(worker=worker, kind="verify")
    answers = [{"item": str(item.uid), "answer": "no"} for item in task.items.all()]
    barrier = threading.Barrier(2)
    results: list[object] = []

    def post() -> None:
        try:
            barrier.wait()
            results.append(
                answer_submit(
                    worker=worker, task_uid=str(task.uid), answers=answers, client_token="same"
                )
            )
        except BaseException as error:
            results.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then both calls return the same body, exactly one of them replayed, and one vote exists
    assert sorted(r.replayed for r in results) == [False, True]
    assert results[0].body == results[1].body
    assert Vote.objects.count() == 1
    assert Candidate.objects.get().no_votes == 1


def _blocked_on_a_lock(cursor) -> bool:
    cursor.execute("SELECT pg_stat_clear_snapshot()")
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_an_uncounted_grid_answer_and_a_tally_on_its_cells_do_not_deadlock(settings):
    # given a grid whose control item the worker gets wrong, so none of its cells is counted
    # (or locked by its answer), and two of its cells that it shows in the opposite order to
    # their ids
    if connection.vendor != "postgresql":
        pytest.skip("needs two real concurrent transactions: PostgreSQL")
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.1
    category = Category.objects.create(name="cat", slug="cat")
    files = [(f"{i}.jpg", image_bytes(950 + i)) for i in range(12)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    gold_mark(candidate=Candidate.objects.order_by("id").first(), answer=False)
    worker = UserFactory(username="ann")
    task = task_assign(worker=worker, kind="grid")
    items = sorted(TaskItem.objects.filter(task=task), key=lambda item: item.position)
    cells = [item.candidate_id for item in items if not item.is_gold]
    shown_first, shown_later = next(
        (a, b) for i, a in enumerate(cells) for b in cells[i + 1 :] if a > b
    )
    answers = [{"item": str(item.uid), "selected": item.is_gold} for item in items]
    outcome: list[object] = []

    def answer() -> None:
        try:
            outcome.append(answer_submit(worker=worker, task_uid=str(task.uid), answers=answers))
        except BaseException as error:
            outcome.append(error)
        finally:
            connection.close()

    # when another answer's tally holds the lower id while this answer commits, and then
    # takes the higher one (tallies lock in id order)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '20s'")
        lock = "SELECT id FROM labeling_candidate WHERE id = %s FOR UPDATE"
        cursor.execute(lock, [shown_later])
        thread = threading.Thread(target=answer)
        thread.start()
        for _ in range(200):
            if _blocked_on_a_lock(cursor):
                break
            time.sleep(0.05)
        cursor.execute(lock, [shown_first])
    thread.join()

    # then both go through: the answer is recorded, nothing counted, control scored wrong
    [submitted] = outcome
    assert not isinstance(submitted, BaseException), submitted
    votes = Vote.objects.filter(task=task)
    assert votes.count() == 9
    assert set(votes.values_list("counted", flat=True)) == {False}
    assert list(votes.filter(is_gold=True).values_list("correct", flat=True)) == [False]
