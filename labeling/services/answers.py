"""answer_submit: record a worker's answers to a leased micro-task, once.

One transaction: the votes, the candidates' counts, boxes and their stage, the worker's record
and quality gates, and the stored response that a retried POST with the same client_token gets
back without writing anything again. On PostgreSQL every kind takes a lean path (a handful of
statements, deciding as this module's ORM path does): labeling.services.label_answers for a
verify task or a grid, labeling.services.box_answers for the box chain; SQLite, and an answer
whose worker has no profile row yet, take the ORM path here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from labeling.crowd.answers import AnswerInvalid, BoxLimits, ItemAnswer, ItemSpec, parse_answers
from labeling.crowd.gates import ControlAnswer, LabelAnswer
from labeling.models import (
    QUESTION_OF_KIND,
    Box,
    Candidate,
    MicroTask,
    TaskItem,
    TaskKind,
    User,
    Vote,
    WorkerProfile,
)
from labeling.services.answer_records import Submitted, profile_record, worker_stats
from labeling.services.answer_statements import task_load
from labeling.services.box_answers import box_answer
from labeling.services.box_statements import STAGE, stage_params
from labeling.services.category_priors import category_decision_counts
from labeling.services.consensus import box_accepted, candidates_decide, objects_fuse
from labeling.services.label_answers import grid_answer, verify_answer
from labeling.services.microtasks import WorkerPaused, worker_profile
from labeling.services.plans import engine_plans

BOX_KINDS = (TaskKind.DRAW, TaskKind.VERIFY_BOX, TaskKind.COVERAGE)

__all__ = ["AnswerInvalid", "TaskConflict", "TaskNotFound", "WorkerPaused", "answer_submit"]


class TaskNotFound(Exception):
    """No such task for this worker (another worker's task looks the same: not found)."""


class TaskConflict(Exception):
    """The lease expired, or the task was already answered; ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _specs(items: list[TaskItem]) -> list[ItemSpec]:
    return [
        ItemSpec(
            uid=str(item.uid), width=item.candidate.image.width, height=item.candidate.image.height
        )
        for item in items
    ]


def _gold_results(items: list[TaskItem], parsed: list[ItemAnswer]) -> list[ControlAnswer | None]:
    """Per item: the control item's known answer and whether it was answered right; None for
    items that are not gold."""
    known = [
        (item.candidate.gold.answer if item.control_answer is None else item.control_answer)
        if item.is_gold
        else None
        for item in items
    ]  # items leased before control_answer existed fall back to the gold row
    return [
        None if positive is None else ControlAnswer(positive, (a.answer == "yes") == positive)
        for positive, a in zip(known, parsed, strict=True)
    ]


TALLY_SQL = """
UPDATE labeling_candidate c
SET yes_votes = c.yes_votes + v.yes, no_votes = c.no_votes + v.no,
    unsure_votes = c.unsure_votes + v.unsure
FROM (SELECT id FROM labeling_candidate WHERE id = ANY(%s) ORDER BY id FOR UPDATE) locked,
     unnest(%s::bigint[], %s::int[], %s::int[], %s::int[]) AS v(id, yes, no, unsure)
WHERE c.id = locked.id AND c.id = v.id
"""
"""Every cell's tally in one statement; the rows are locked in id order first, so two grids
sharing candidates can't deadlock."""


def _apply_label_counts(votes: list[Vote]) -> None:
    """Add counted, non-gold verify/grid votes to their candidates' tallies (a grid counts per
    cell), then let consensus decide them or ask for one more vote."""
    tally = Counter((v.candidate_id, v.answer) for v in votes if v.counted and not v.is_gold)
    ids = sorted({candidate_id for candidate_id, _ in tally})
    if connection.vendor == "postgresql" and ids:
        with connection.cursor() as cursor:
            cursor.execute(
                TALLY_SQL,
                [ids, ids, *([tally[(i, a)] for i in ids] for a in ("yes", "no", "unsure"))],
            )
    else:  # SQLite serialises writers: one UPDATE per cell
        fields = {"yes": "yes_votes", "no": "no_votes", "unsure": "unsure_votes"}
        for (candidate_id, answer), n in sorted(tally.items()):
            Candidate.objects.filter(pk=candidate_id).update(
                **{fields[answer]: F(fields[answer]) + n}
            )
    candidates_decide(ids)


BoxState = Candidate.BoxState


def _box_stage_settle(candidate_id: int, *, covered: bool = False) -> str:
    """Settle and write the image's box stage (box_statements.STAGE); returns it."""
    with connection.cursor() as cursor:
        cursor.execute(STAGE, stage_params(candidate_id, covered=covered))
        return cursor.fetchone()[0]


def _apply_draw(worker: User, item: TaskItem, answer: ItemAnswer) -> None:
    Box.objects.bulk_create(
        Box(candidate=item.candidate, worker=worker, x0=b[0], y0=b[1], x1=b[2], y1=b[3])
        for b in answer.boxes
    )
    _box_stage_settle(item.candidate_id)


BOX_VOTE_SQL = """
UPDATE labeling_box SET yes_votes = yes_votes + %(yes)s, no_votes = no_votes + %(no)s
WHERE id = %(box)s RETURNING yes_votes, no_votes
"""
"""A box check's vote added to its box, which it locks; the box's counts come back."""


def _apply_verify_box(item: TaskItem, answer: ItemAnswer) -> None:
    """Count the check on the box (one statement, no read of the box the items hold); once it
    has CROWDNET_BOX_VERIFY_VOTES, decide it; settle the image's stage."""
    yes = answer.answer == "yes"
    with connection.cursor() as cursor:
        cursor.execute(BOX_VOTE_SQL, {"yes": int(yes), "no": int(not yes), "box": item.box_id})
        yes_votes, no_votes = cursor.fetchone()
    if yes_votes + no_votes >= settings.CROWDNET_BOX_VERIFY_VOTES:
        box = item.box
        state = Box.State.ACCEPTED if box_accepted(box) else Box.State.REJECTED
        Box.objects.filter(pk=item.box_id).update(state=state)
    _box_stage_settle(item.candidate_id)


def _apply_coverage(item: TaskItem, answer: ItemAnswer) -> None:
    """ "Every instance boxed?": yes closes the chain only over accepted boxes; with none it
    settles like a drawing (a "yes" over zero boxes never marks an image boxed)."""
    if answer.answer != "yes":
        Candidate.objects.filter(pk=item.candidate_id).update(box_state=BoxState.DRAW)
        return
    if _box_stage_settle(item.candidate_id, covered=True) == BoxState.DONE:
        objects_fuse(item.candidate_id)


def _apply_boxes(
    worker: User, task: MicroTask, items: list[TaskItem], parsed: list[ItemAnswer]
) -> None:
    for item, answer in zip(items, parsed, strict=True):
        if task.kind == TaskKind.DRAW:
            _apply_draw(worker, item, answer)
        elif task.kind == TaskKind.VERIFY_BOX:
            _apply_verify_box(item, answer)
        elif task.kind == TaskKind.COVERAGE:
            _apply_coverage(item, answer)


def _label_answers(task: MicroTask, votes: list[Vote]) -> tuple[LabelAnswer, ...]:
    """The task's counted yes/no label votes, each with its category's decisions so far (for
    the one-answer gate)."""
    said = [
        v.answer == "yes"
        for v in votes
        if v.counted and not v.is_gold and v.question == "label" and v.answer in ("yes", "no")
    ]
    if not said:
        return ()
    accepted, rejected = category_decision_counts({task.category_id})[task.category_id]
    return tuple(LabelAnswer(yes, accepted, rejected) for yes in said)


def _locked_task(worker: User, task_uid: str, client_token: str) -> MicroTask | Submitted:
    """The worker's task, row-locked, or the stored reply to an earlier POST with this
    client_token; one statement reads both (the task by uid, any task by the token)."""
    wanted = Q(uid=task_uid) | Q(client_token=client_token) if client_token else Q(uid=task_uid)
    rows = list(MicroTask.objects.select_for_update().filter(wanted, worker=worker))
    return _task_of(rows, task_uid, client_token)


def _task_of(rows: list[MicroTask], task_uid: str, client_token: str) -> MicroTask | Submitted:
    """Among the worker's tasks matched by uid or client_token: the one to answer, or the
    stored reply to replay; raises TaskNotFound or TaskConflict."""
    earlier = next((t for t in rows if client_token and t.client_token == client_token), None)
    if earlier is not None:
        if str(earlier.uid) != str(task_uid):
            raise TaskConflict("This client_token was already used for another task.")
        # An earlier POST, or the same POST racing itself that won the lock: replay its result.
        return Submitted(body=earlier.response or {}, replayed=True)
    task = next((t for t in rows if str(t.uid) == str(task_uid)), None)
    if task is None:
        raise TaskNotFound
    if task.status == MicroTask.Status.ANSWERED:
        raise TaskConflict("This task was already answered.")
    if task.expires_at <= timezone.now():
        raise TaskConflict("This task's time ran out; ask for the next one.")
    return task


def answer_submit(
    *, worker: User, task_uid: str, answers: Any, client_token: str = ""
) -> Submitted:
    """Record the answers to one leased task; writes votes, candidate tallies, boxes, the
    worker's profile and the task. Raises TaskNotFound, TaskConflict, WorkerPaused or
    AnswerInvalid, each before anything is written."""
    with transaction.atomic():
        engine_plans()
        loaded = None
        if connection.vendor == "postgresql":
            loaded = task_load(worker_id=worker.pk, task_uid=task_uid, client_token=client_token)
        if loaded is not None:  # one statement: the task(s) and the profile locked, the items
            found = _task_of([t for t, _ in loaded.tasks], task_uid, client_token)
            profile = loaded.profile
        else:  # SQLite, or no such task or no profile yet: the ORM says which
            found = _locked_task(worker, task_uid, client_token)
            profile = None
        if isinstance(found, Submitted):
            return found
        task = found
        task.worker = worker
        if profile is None:
            profile = worker_profile(worker, lock=True)
        profile.user = worker
        if profile.paused:
            raise WorkerPaused(profile.pause_reason)
        if loaded is not None:
            items = next(items for t, items in loaded.tasks if t.pk == task.pk)
            if task.kind == TaskKind.VERIFY and len(items) == 1:
                return verify_answer(task, profile, items, answers, client_token)
            if task.kind == TaskKind.GRID:
                return grid_answer(task, profile, items, answers, client_token)
            if task.kind in BOX_KINDS and len(items) == 1:
                return box_answer(task, profile, items, answers, client_token)
        return _orm_answer(task, profile, answers, client_token)


def _orm_answer(
    task: MicroTask, profile: WorkerProfile, answers: Any, client_token: str
) -> Submitted:
    """answer_submit's answer through the ORM (SQLite, or a worker's first answer), inside
    its transaction: the task and the profile are locked, the worker is not paused."""
    worker = task.worker
    # ordered by position alone: the model's (task, position) joined the task locked above
    items = list(
        task.items.select_related("candidate__image", "candidate__gold", "box").order_by("position")
    )
    limits = BoxLimits(settings.CROWDNET_MAX_BOXES, settings.CROWDNET_MIN_BOX_SIDE)
    parsed = parse_answers(task.kind, answers, _specs(items), limits)
    now = timezone.now()
    # A prefetched task was issued while the previous one was on screen: time it from
    # whichever came later, its issue or the worker's previous answer.
    shown = max(filter(None, [task.issued_at, profile.last_answer_at]))
    seconds = max(0.0, (now - shown).total_seconds()) / len(items)
    results = _gold_results(items, parsed)
    gold = [control for control in results if control is not None]
    counted = all(
        control.right for control in gold
    )  # reCAPTCHA's rule: the unknowns count only when the control is right
    votes = [
        Vote(
            worker=worker,
            task=task,
            kind=task.kind,
            question=QUESTION_OF_KIND[task.kind],
            candidate=item.candidate,
            box=item.box,
            answer=answer.answer,
            is_gold=item.is_gold,
            correct=None if control is None else control.right,
            counted=counted and not item.is_gold,
            seconds=seconds,
        )
        for item, answer, control in zip(items, parsed, results, strict=True)
    ]
    # Inserted in candidate id order: the commit's foreign-key checks then share-lock the
    # candidates in the order tallies lock them, so an uncounted grid and a counted one
    # on the same cells can't deadlock.
    Vote.objects.bulk_create(sorted(votes, key=lambda vote: vote.candidate_id))
    if task.kind in (TaskKind.VERIFY, TaskKind.GRID):
        _apply_label_counts(votes)
    elif counted:
        _apply_boxes(worker, task, items, parsed)
    labels = _label_answers(task, votes)
    profile_record(profile, items=len(items), seconds_per_item=seconds, gold=gold, labels=labels)
    profile.save()
    body = worker_stats(profile)
    task.status, task.answered_at = MicroTask.Status.ANSWERED, now
    task.client_token, task.response = client_token or None, body
    task.save(update_fields=["status", "answered_at", "client_token", "response"])
    TaskItem.objects.filter(task=task).update(leased_until=now)
    return Submitted(body=body, replayed=False)
