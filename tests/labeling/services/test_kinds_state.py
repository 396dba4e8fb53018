"""A next's first read, the worker's state and the kinds with work: PostgreSQL's plain statement
(task_pool.KINDS_STATE) reads what the ORM's (work_of_kind) reads, in every state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Box, Candidate, MicroTask, TaskKind
from labeling.services.microtasks import (
    _worker_state,
    _worker_state_orm,
    gold_mark,
    task_assign,
    worker_pause,
    worker_profile,
)
from labeling.services.task_pool import KIND_ORDER, KindsState, kinds_state
from tests.factories import CategoryFactory, candidate_pool, worker_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the plain statement is PostgreSQL's; SQLite takes the ORM path only")


def both(worker) -> dict[str | None, KindsState]:
    """The state by each path, for a next without a kind and for each kind; asserts they agree."""
    now = timezone.now()
    states = {}
    with transaction.atomic():
        for kind in (None, *KIND_ORDER):
            plain = kinds_state(worker_id=worker.pk, now=now, kind=kind)
            assert plain == _worker_state_orm(worker, now, kind), kind
            states[kind] = plain
    return states


def test_the_plain_statement_and_the_orm_agree_on_the_kinds_with_work_in_every_state(category):
    _, ann = worker_client("ann")
    _, bob = worker_client("bob")
    worker_profile(ann)

    # no work at all
    assert both(ann)[None] == KindsState(False, "", 0, [])
    assert both(ann)[TaskKind.DRAW] == KindsState(False, "", 0, [])

    # open candidates, no gold yet: verify only
    pool = candidate_pool(category, 6, seed=900)
    assert both(ann)[None].kinds == [TaskKind.VERIFY]

    # a gold item in the category: grids too (the gold candidate itself leaves the pool)
    gold_mark(candidate=pool[5], answer=True)
    states = both(ann)
    assert states[None].kinds == [TaskKind.GRID, TaskKind.VERIFY]
    assert states[TaskKind.GRID].kinds == [TaskKind.GRID]
    assert states[TaskKind.COVERAGE].kinds == []

    # every box stage: an image waiting for drawing, one for its coverage check, a proposed box
    Candidate.objects.filter(pk=pool[0].pk).update(state="accepted", box_state="draw")
    Candidate.objects.filter(pk=pool[1].pk).update(state="accepted", box_state="coverage")
    Candidate.objects.filter(pk=pool[2].pk).update(state="accepted", box_state="verify")
    Box.objects.create(candidate=pool[2], worker=bob, x0=1, y0=2, x1=30, y1=40)
    assert both(ann)[None].kinds == list(KIND_ORDER)

    # a stage emptied (the box decided), the open candidates with all the votes they need: out
    # of the kinds
    Box.objects.update(state="accepted")
    Candidate.objects.filter(pk=pool[0].pk).update(box_state="done")
    Candidate.objects.filter(pk__in=[pool[3].pk, pool[4].pk]).update(votes_needed=0)
    assert both(ann)[None].kinds == [TaskKind.COVERAGE]

    # the category archived: nothing anywhere
    Box.objects.update(state="proposed")
    Candidate.objects.filter(pk=pool[4].pk).update(votes_needed=3)
    category.archived_at = timezone.now()
    category.save(update_fields=["archived_at"])
    assert both(ann)[None].kinds == []

    # a gold item of another, live category counts for a grid only where its pool is
    dog = CategoryFactory(name="dog", slug="dog", definition="a dog")
    dogs = candidate_pool(dog, 2, seed=920)
    gold_mark(candidate=dogs[1], answer=False)
    assert both(ann)[None].kinds == [TaskKind.GRID, TaskKind.VERIFY]


def test_the_plain_statement_and_the_orm_agree_on_open_tasks_and_the_pause(category, settings):
    settings.CROWDNET_MAX_OPEN_TASKS = 2
    _, ann = worker_client("ann")
    candidate_pool(category, 4, seed=940)
    worker_profile(ann)

    # two open verify tasks (the most he may hold), one of them past its expiry then renewed
    first = task_assign(worker=ann, kind=TaskKind.VERIFY)
    task_assign(worker=ann, kind=TaskKind.VERIFY)
    states = both(ann)
    assert (states[None].open_tasks, states[TaskKind.VERIFY].open_tasks) == (2, 2)
    assert states[TaskKind.GRID].open_tasks == 0

    past = timezone.now() - timedelta(seconds=1)
    MicroTask.objects.filter(pk=first.pk).update(expires_at=past)
    assert both(ann)[None].open_tasks == 1
    MicroTask.objects.filter(pk=first.pk).update(status="answered", expires_at=past)
    assert both(ann)[TaskKind.VERIFY].open_tasks == 1

    # a paused worker: his reason, by either path
    worker_pause(profile=worker_profile(ann), reason="too fast")
    assert both(ann)[None] == KindsState(True, "too fast", 1, [TaskKind.VERIFY])

    # an archived category's open tasks do not count
    category.archived_at = timezone.now()
    category.save(update_fields=["archived_at"])
    assert both(ann)[None] == KindsState(True, "too fast", 0, [])


def test_a_first_next_creates_the_profile_then_reads_the_state(category):
    _, ann = worker_client("ann")
    candidate_pool(category, 1, seed=960)

    with transaction.atomic():
        state = _worker_state(ann, timezone.now(), None)

    assert state == KindsState(False, "", 0, [TaskKind.VERIFY])
    assert worker_profile(ann).paused is False
