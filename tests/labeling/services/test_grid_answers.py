"""A grid answer on PostgreSQL's lean path (labeling.services.label_answers.grid_answer) writes
what the ORM path writes: the same votes, tallies, decisions, peer credits, worker record and
answered task, with the control answered right or wrong."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from labeling.models import Candidate, MicroTask, TaskItem, Vote, WorkerProfile
from labeling.services import answers
from labeling.services.answer_statements import RECORD_FIELDS
from labeling.services.consensus import decision_override
from labeling.services.microtasks import gold_mark, task_assign, worker_profile
from labeling.services.worker_coins import crowd_newcomer
from tests.factories import UserFactory, candidate_pool

pytestmark = pytest.mark.django_db

TIMED = ("seconds_total", "last_answer_at", "fast_evidence", "paused_at", "recheck_due")
"""Record fields that depend on when the answer ran (the two runs are milliseconds apart)."""


@pytest.fixture(autouse=True)
def _rules(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the lean grid answer is PostgreSQL's; SQLite takes the ORM path")
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_CONSENSUS_THRESHOLD = 0.95
    settings.CROWDNET_CONSENSUS_VOTE_CAP = 7
    settings.CROWDNET_CONSENSUS_PRIOR = 0.5


def _worker(name: str, *, gold_seen: int, gold_correct: int):
    user = UserFactory(username=name)
    WorkerProfile.objects.create(user=user, gold_seen=gold_seen, gold_correct=gold_correct)
    return user


def _selections(task: MicroTask, says_yes, control_right: bool) -> list[dict[str, Any]]:
    """One selection per cell: the control cells (answer yes) right or wrong, the others as
    ``says_yes`` says of their candidate id."""
    return [
        {
            "item": str(item.uid),
            "selected": control_right if item.is_gold else says_yes(item.candidate_id),
        }
        for item in task.items.all()
    ]


def _outcome(task_uid: str, worker) -> dict[str, Any]:
    """Everything an answer writes about the task's cells, the worker and the task."""
    cells = list(TaskItem.objects.filter(task__uid=task_uid).values_list("candidate_id", flat=True))
    candidates = Candidate.objects.filter(pk__in=cells).order_by("id")
    profile = WorkerProfile.objects.filter(user=worker)
    return {
        "candidates": list(
            candidates.values_list(
                "id",
                "state",
                "yes_votes",
                "no_votes",
                "unsure_votes",
                "votes_needed",
                "priority",
                "box_state",
                "override",
            )
        ),
        "posteriors": [
            (round(p, 9), round(c, 9), d is not None)
            for p, c, d in candidates.values_list("posterior", "confidence", "decided_at")
        ],
        "votes": [
            (*row[:-1], None if row[-1] is None else round(row[-1], 9))
            for row in Vote.objects.filter(candidate_id__in=cells)
            .order_by("id")
            .values_list(
                "worker_id",
                "candidate_id",
                "kind",
                "question",
                "answer",
                "is_gold",
                "correct",
                "counted",
                "box_id",
                "peer_p_yes",
            )
        ],
        "record": profile.values(*[f for f in RECORD_FIELDS if f not in TIMED]).get(),
        "task": MicroTask.objects.filter(uid=task_uid)
        .values_list("status", "client_token", "response")
        .get(),
        "open_leases": TaskItem.objects.filter(
            task__uid=task_uid, leased_until__gt=timezone.now()
        ).count(),
    }


@pytest.mark.parametrize("control_right", [True, False])
def test_a_grid_answered_on_the_lean_path_writes_what_the_orm_path_writes(
    category, django_capture_on_commit_callbacks, control_right
):
    # given two reliable workers who answered the same grid (yes on even candidate ids, but
    # the second said the opposite on its last two cells), a third who leased it again, one
    # of whose cells a curator has decided meanwhile
    pool = candidate_pool(category, 20, seed=5300)
    for candidate in pool[:2]:
        gold_mark(candidate=candidate, answer=True)
    crowd_newcomer()
    cells: list[int] = []
    for name in ("bob", "cid"):
        other = _worker(name, gold_seen=40, gold_correct=40)
        task = task_assign(worker=other, kind="grid")
        cells = cells or sorted(
            task.items.filter(is_gold=False).values_list("candidate_id", flat=True)
        )
        flipped = cells[-2:] if name == "cid" else []
        with django_capture_on_commit_callbacks(execute=True):
            answers.answer_submit(
                worker=other,
                task_uid=str(task.uid),
                answers=_selections(task, lambda pk, f=flipped: (pk % 2 == 0) != (pk in f), True),
                client_token="b",
            )
    ann = _worker("ann", gold_seen=40, gold_correct=38)
    task = task_assign(worker=ann, kind="grid")
    assert sorted(task.items.filter(is_gold=False).values_list("candidate_id", flat=True)) == cells
    curator = UserFactory(username="cur", role="curator")
    decision_override(candidate=Candidate.objects.get(pk=cells[0]), accepted=True, by=curator)
    said = _selections(task, lambda pk: pk % 2 == 0, control_right)

    # when she answers on the lean path, and (rolled back) the same answer on the ORM path
    rollback = transaction.savepoint()
    with (
        django_capture_on_commit_callbacks() as lean_hooks,
        CaptureQueriesContext(connection) as lean_statements,
    ):
        answers.answer_submit(worker=ann, task_uid=str(task.uid), answers=said, client_token="t")
    lean = _outcome(str(task.uid), ann)
    transaction.savepoint_rollback(rollback)
    with (
        django_capture_on_commit_callbacks() as orm_hooks,
        CaptureQueriesContext(connection) as orm_statements,
        transaction.atomic(),
    ):
        locked = MicroTask.objects.select_for_update().get(pk=task.pk)
        locked.worker = ann
        profile = worker_profile(ann, lock=True)
        profile.user = ann
        answers._orm_answer(locked, profile, said, "t")
    orm = _outcome(str(task.uid), ann)

    # then both wrote the same, the lean path in its six statements and the plan mode
    assert len(lean_statements) == 7
    assert len(orm_statements) > 6
    assert lean == orm
    assert len(lean_hooks) == len(orm_hooks)
    # and the comparison covered what a grid decides: with the control right, a cell taken
    # by the curator (tallied, not decided), cells accepted and rejected, the two the others
    # disagreed on left open for one more vote, credits on the decided cells' votes
    states = {row[0]: row[1] for row in lean["candidates"]}
    if control_right:
        assert states[cells[0]] == "accepted"
        decided = [states[pk] for pk in cells[1:-2]]
        assert set(decided) == {"accepted", "rejected"}
        assert [states[pk] for pk in cells[-2:]] == ["open", "open"]
        credited = {row[1] for row in lean["votes"] if row[-1] is not None}
        assert credited == set(cells[1:-2])
        assert len(lean_hooks) == 1
    else:
        assert all(not row[7] for row in lean["votes"] if row[0] == ann.pk)
        assert set(states.values()) <= {"open", "accepted"}
        assert len(lean_hooks) == 0


def test_a_grid_notes_the_hints_of_the_cells_it_fills_and_an_uncounted_answer_voids_them(category):
    # given a pool whose items need one vote each beside curated gold, and bob holding a grid
    pool = candidate_pool(category, 20, seed=5310)
    for candidate in pool[:2]:
        gold_mark(candidate=candidate, answer=True)
    Candidate.objects.filter(pk__in=[c.pk for c in pool[2:]]).update(votes_needed=1)
    bob = _worker("bob", gold_seen=40, gold_correct=40)
    task = task_assign(worker=bob, kind="grid")
    real = task.items.filter(is_gold=False)
    cells = sorted(real.values_list("candidate_id", flat=True))
    expires = real.first().leased_until
    hinted = Candidate.objects.filter(full_until__isnull=False)

    # then his lease noted its end on each cell it filled, at one vote needed, and on nothing else
    assert sorted(hinted.values_list("id", flat=True)) == cells
    assert set(hinted.values_list("full_until", "full_needed")) == {(expires, 1)}

    # when he answers with the control wrong (none of his votes count)
    answers.answer_submit(
        worker=bob, task_uid=str(task.uid), answers=_selections(task, lambda pk: True, False)
    )

    # then the cells' hints are void and the next worker's grid takes the same cells
    assert not hinted.exists()
    cy = _worker("cy", gold_seen=40, gold_correct=40)
    again = task_assign(worker=cy, kind="grid")
    assert sorted(again.items.filter(is_gold=False).values_list("candidate_id", flat=True)) == cells
