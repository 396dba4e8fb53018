"""A drawing, a box check and a coverage check on PostgreSQL's lean path
(labeling.services.box_answers) write what the ORM path writes: the same vote, boxes, box
verdict, image stage, fused objects, worker record and answered task."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from labeling.models import Box, Candidate, MicroTask, ObjectBox, TaskItem, Vote, WorkerProfile
from labeling.services import answers
from labeling.services.answer_statements import RECORD_FIELDS
from labeling.services.microtasks import task_assign, worker_profile
from tests.factories import UserFactory, candidate_pool

pytestmark = pytest.mark.django_db

TIMED = ("seconds_total", "last_answer_at", "fast_evidence", "paused_at", "recheck_due")
"""Record fields that depend on when the answer ran (the two runs are milliseconds apart)."""


@pytest.fixture(autouse=True)
def _rules(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the lean box answers are PostgreSQL's; SQLite takes the ORM path")
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0


def _worker(name: str, *, gold_seen: int = 0, gold_correct: int = 0):
    user = UserFactory(username=name)
    WorkerProfile.objects.create(user=user, gold_seen=gold_seen, gold_correct=gold_correct)
    return user


def _outcome(task: MicroTask, worker) -> dict[str, Any]:
    """Everything an answer writes about the task's image, the worker and the task."""
    image = TaskItem.objects.get(task=task).candidate_id
    return {
        "stage": Candidate.objects.filter(pk=image).values_list("box_state", flat=True).get(),
        "boxes": list(
            Box.objects.filter(candidate_id=image)
            .order_by("id")
            .values_list("worker_id", "x0", "y0", "x1", "y1", "state", "yes_votes", "no_votes")
        ),
        "objects": list(
            ObjectBox.objects.filter(candidate_id=image)
            .order_by("x0", "y0")
            .values_list("x0", "y0", "x1", "y1", "score", "drawers")
        ),
        "votes": list(
            Vote.objects.filter(candidate_id=image)
            .order_by("id")
            .values_list(
                "worker_id", "kind", "question", "box_id", "answer", "is_gold", "correct", "counted"
            )
        ),
        "record": WorkerProfile.objects.filter(user=worker)
        .values(*[f for f in RECORD_FIELDS if f not in TIMED])
        .get(),
        "task": MicroTask.objects.filter(pk=task.pk)
        .values_list("status", "client_token", "response")
        .get(),
        "open_leases": TaskItem.objects.filter(task=task, leased_until__gt=timezone.now()).count(),
    }


def _both_paths(worker, task: MicroTask, said: list[dict[str, Any]]):
    """The answer on the lean path, then (rolled back) on the ORM path: both outcomes and the
    lean path's statements."""
    rollback = transaction.savepoint()
    with CaptureQueriesContext(connection) as lean_statements:
        answers.answer_submit(worker=worker, task_uid=str(task.uid), answers=said, client_token="t")
    lean = _outcome(task, worker)
    transaction.savepoint_rollback(rollback)
    with transaction.atomic():
        locked = MicroTask.objects.select_for_update().get(pk=task.pk)
        locked.worker = worker
        profile = worker_profile(worker, lock=True)
        profile.user = worker
        answers._orm_answer(locked, profile, said, "t")
    return lean, _outcome(task, worker), len(lean_statements)


def _image(category, stage: str) -> Candidate:
    [image] = candidate_pool(category, 1, seed=5400)
    Candidate.objects.filter(pk=image.pk).update(state="accepted", box_state=stage)
    return image


@pytest.mark.parametrize(
    ("earlier_none", "boxes", "stage"),
    [
        (False, [[1, 2, 30, 40], [5, 6, 50, 44]], "verify"),
        (True, [], "absent"),
        (False, [], "draw"),
    ],
)
def test_a_drawing_on_the_lean_path_writes_what_the_orm_path_writes(
    category, earlier_none, boxes, stage
):
    # given an image waiting for boxes, which another worker found none on (or not)
    _image(category, "draw")
    if earlier_none:
        bob = _worker("bob")
        first = task_assign(worker=bob, kind="draw")
        item = first.items.get()
        answers.answer_submit(
            worker=bob, task_uid=str(first.uid), answers=[{"item": str(item.uid), "boxes": []}]
        )
    ann = _worker("ann")
    task = task_assign(worker=ann, kind="draw")

    # when a worker draws two boxes or finds none, on each path
    said = [{"item": str(task.items.get().uid), "boxes": boxes}]
    lean, orm, statements = _both_paths(ann, task, said)

    # then both wrote the same: the boxes wait for checks, or two workers found none, or one
    assert lean == orm
    assert statements == 6  # with the transaction's plan mode
    assert lean["stage"] == stage
    assert len(lean["boxes"]) == len(boxes)


@pytest.mark.parametrize(
    ("said", "other_box", "verdict", "stage"),
    [
        ("yes", False, "accepted", "coverage"),
        ("no", False, "rejected", "draw"),
        ("no", True, "rejected", "verify"),
        ("yes", True, "accepted", "verify"),
    ],
)
def test_a_box_check_on_the_lean_path_writes_what_the_orm_path_writes(
    category, said, other_box, verdict, stage
):
    # given a proposed box on an image, and another one still waiting for its check (or not)
    image = _image(category, "verify")
    bob = _worker("bob")
    Box.objects.create(candidate=image, worker=bob, x0=1, y0=2, x1=30, y1=40)
    if other_box:
        Box.objects.create(candidate=image, worker=bob, x0=9, y0=9, x1=40, y1=44)
    ann = _worker("ann", gold_seen=10, gold_correct=9)
    task = task_assign(worker=ann, kind="verify_box")

    # when a reliable worker checks the first box, on each path
    lean, orm, statements = _both_paths(
        ann, task, [{"item": str(task.items.get().uid), "answer": said}]
    )

    # then both wrote the same: the box's verdict and the image's stage
    assert lean == orm
    assert statements == 7  # with the transaction's plan mode
    assert lean["boxes"][0][5:] == (verdict, int(said == "yes"), int(said == "no"))
    assert lean["stage"] == stage


@pytest.mark.parametrize(("said", "stage", "objects"), [("yes", "done", 1), ("no", "draw", 0)])
def test_a_coverage_check_on_the_lean_path_writes_what_the_orm_path_writes(
    category, said, stage, objects
):
    # given an image with two overlapping accepted boxes and a rejected one
    image = _image(category, "coverage")
    bob, cid = _worker("bob"), _worker("cid", gold_seen=10, gold_correct=10)
    for worker, x0, state in [(bob, 1, "accepted"), (cid, 3, "accepted"), (bob, 50, "rejected")]:
        Box.objects.create(
            candidate=image, worker=worker, x0=x0, y0=2, x1=x0 + 28, y1=40, state=state
        )
    ann = _worker("ann")
    task = task_assign(worker=ann, kind="coverage")

    # when a worker says every instance is boxed (or not), on each path
    lean, orm, statements = _both_paths(
        ann, task, [{"item": str(task.items.get().uid), "answer": said}]
    )

    # then both wrote the same: done with the two boxes fused into one object, or drawn again
    assert lean == orm
    assert statements == (10 if said == "yes" else 6)  # with the plan mode
    assert lean["stage"] == stage
    assert len(lean["objects"]) == objects
