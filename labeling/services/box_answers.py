"""The box chain's answers (a drawing, a box check, a coverage check) on PostgreSQL in the
fewest statements, after answer_statements' LOAD has locked and read the task, the worker's
profile and the item (labeling.services.box_statements): the vote with its boxes or its
count on the box in one, the box's checks after its lock in one (a box check that decides
it), the box's verdict, the image's stage, the worker's record and the answered task in one.
They decide as the ORM path in labeling.services.answers does (consensus.box_verdict,
box_statements.STAGE).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from labeling.crowd.answers import BoxLimits, ItemSpec, parse_answers
from labeling.crowd.gates import ControlAnswer
from labeling.models import QUESTION_OF_KIND, Box, Candidate, MicroTask, TaskKind, WorkerProfile
from labeling.services.answer_records import Submitted, profile_record, worker_stats
from labeling.services.answer_statements import Answered, LoadedItem
from labeling.services.box_statements import (
    BoxVote,
    box_answer_finish,
    box_checks_read,
    box_vote_write,
    stage_params,
)
from labeling.services.consensus import accuracy_of, box_verdict, objects_fuse


def _box_judged(box_id: int, counts: tuple[int, int] | None) -> tuple[int, str] | None:
    """A counted check's box and its verdict once it has CROWDNET_BOX_VERIFY_VOTES checks
    (consensus.box_accepted over one read); None before."""
    if counts is None or sum(counts) < settings.CROWDNET_BOX_VERIFY_VOTES:
        return None
    checks = box_checks_read(box_id)
    accuracy = {row[0]: accuracy_of(*row[2:]) for row in checks}
    accepted = box_verdict([(row[0], row[1]) for row in checks], accuracy)
    return box_id, Box.State.ACCEPTED if accepted else Box.State.REJECTED


def box_answer(
    task: MicroTask,
    profile: WorkerProfile,
    items: list[LoadedItem],
    answers: Any,
    client_token: str,
) -> Submitted:
    """answer_submit's drawing, box check or coverage check on PostgreSQL (one item), in two
    or three statements after the load; the answer moves the box chain only when it counts
    (no control item, or its control answered right)."""
    (item,) = items
    limits = BoxLimits(settings.CROWDNET_MAX_BOXES, settings.CROWDNET_MIN_BOX_SIDE)
    spec = ItemSpec(uid=str(item.uid), width=item.width, height=item.height)
    (parsed,) = parse_answers(task.kind, answers, [spec], limits)
    now = timezone.now()
    shown = max(filter(None, [task.issued_at, profile.last_answer_at]))
    seconds = max(0.0, (now - shown).total_seconds())
    known = item.known_answer()
    control = None if known is None else ControlAnswer(known, (parsed.answer == "yes") == known)
    counted = control is None or control.right
    counts = box_vote_write(
        worker_id=task.worker_id,
        task_id=task.pk,
        vote=BoxVote(
            kind=task.kind,
            question=QUESTION_OF_KIND[task.kind],
            candidate_id=item.candidate_id,
            box_id=item.box_id,
            answer=parsed.answer,
            is_gold=item.is_gold,
            correct=None if control is None else control.right,
            counted=counted and not item.is_gold,
            moves=counted,
            boxes=parsed.boxes if task.kind == TaskKind.DRAW else (),
        ),
        seconds=seconds,
        created_at=timezone.now(),
    )
    judged = None
    if counted and task.kind == TaskKind.VERIFY_BOX and item.box_id is not None:
        judged = _box_judged(item.box_id, counts)
    coverage = task.kind == TaskKind.COVERAGE
    profile_record(
        profile,
        items=1,
        seconds_per_item=seconds,
        gold=[] if control is None else [control],
        labels=(),
    )
    body = worker_stats(profile)
    stage = box_answer_finish(
        stage=stage_params(
            item.candidate_id,
            settle=counted,
            covered=coverage and parsed.answer == "yes",
            redraw=coverage and parsed.answer != "yes",
            judged=judged,
        ),
        answered=Answered(profile, task.pk, now, client_token or None, body),
    )
    if coverage and stage == Candidate.BoxState.DONE:
        objects_fuse(item.candidate_id)
    return Submitted(body=body, replayed=False)
