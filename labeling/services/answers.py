"""answer_submit: record a worker's answers to a leased micro-task, once.

One transaction: the votes, the candidates' counts, boxes and their stage, the worker's record
and quality gates, and the stored response that a retried POST with the same client_token gets
back without writing anything again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from labeling.consensus import decided_prior
from labeling.crowd.answers import AnswerInvalid, BoxLimits, ItemAnswer, ItemSpec, parse_answers
from labeling.crowd.gates import (
    ControlAnswer,
    LabelAnswer,
    WorkerRecord,
    gate_task,
)
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
from labeling.services.answer_statements import (
    ConsensusRows,
    LoadedItem,
    Tally,
    consensus_read,
    task_load,
    verify_answer_finish,
    verify_vote_write,
)
from labeling.services.category_priors import DECIDED_PRIOR_SAMPLE, category_decision_counts
from labeling.services.consensus import (
    PeerCredits,
    box_accepted,
    candidates_decide,
    confidence_tables,
    decisions_of,
    live_votes_of,
    objects_fuse,
    peer_credits,
    peer_learn,
    state_fields,
    worker_decisions_reopen,
)
from labeling.services.microtasks import WorkerPaused, worker_profile
from labeling.services.worker_coins import gate_settings, worker_coins_of

__all__ = ["AnswerInvalid", "TaskConflict", "TaskNotFound", "WorkerPaused", "answer_submit"]


class TaskNotFound(Exception):
    """No such task for this worker (another worker's task looks the same: not found)."""


class TaskConflict(Exception):
    """The lease expired, or the task was already answered; ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Submitted:
    """The response body, and whether it was replayed from an earlier identical POST."""

    body: dict[str, Any]
    replayed: bool


def worker_stats(profile: WorkerProfile) -> dict[str, Any]:
    """What a worker may see of their own record (nothing about gold)."""
    return {
        "answered_tasks": profile.answered_tasks,
        "answered_items": profile.answered_items,
        "streak": profile.streak,
        "paused": profile.paused,
        "pause_reason": profile.pause_reason,
    }


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

SETTLE_SQL = """
UPDATE labeling_candidate SET box_state = CASE
  WHEN EXISTS (SELECT 1 FROM labeling_box b
    WHERE b.candidate_id = %(candidate)s AND b.state = 'proposed') THEN 'verify'
  WHEN EXISTS (SELECT 1 FROM labeling_box b
    WHERE b.candidate_id = %(candidate)s AND b.state = 'accepted')
    THEN CASE WHEN %(covered)s THEN 'done' ELSE 'coverage' END
  WHEN t.none >= %(needed)s AND t.none = t.drawers THEN 'absent'
  WHEN t.drawers >= %(cap)s THEN 'review'
  ELSE 'draw' END
FROM (SELECT count(DISTINCT v.worker_id) AS drawers,
        count(DISTINCT CASE WHEN v.answer = 'no' THEN v.worker_id END) AS none
      FROM labeling_vote v
      WHERE v.candidate_id = %(candidate)s AND v.question = 'draw' AND v.counted) t
WHERE labeling_candidate.id = %(candidate)s
RETURNING labeling_candidate.box_state
"""
"""An image's box stage once none of its boxes awaits a check, settled and written in one
statement: the coverage check when a box was accepted (done, when ``covered``: a coverage
check said yes); "absent" when CROWDNET_BOX_NONE_VOTES distinct workers found none present
and nobody drew one (one worker's "none" contradicts the crowd's label); the review queue once
CROWDNET_BOX_DRAW_CAP workers answered without settling it; else another worker draws."""


def _box_stage_settle(candidate_id: int, *, covered: bool = False) -> str:
    """Settle and write the image's box stage (SETTLE_SQL); returns it."""
    needed = settings.CROWDNET_BOX_NONE_VOTES
    values = {
        "candidate": candidate_id,
        "covered": covered,
        "needed": needed,
        "cap": max(needed, settings.CROWDNET_BOX_DRAW_CAP),
    }
    with connection.cursor() as cursor:
        cursor.execute(SETTLE_SQL, values)
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


def _update_profile(
    profile: WorkerProfile,
    *,
    items: int,
    seconds_per_item: float,
    gold: list[ControlAnswer],
    labels: tuple[LabelAnswer, ...],
) -> None:
    _profile_record(
        profile, items=items, seconds_per_item=seconds_per_item, gold=gold, labels=labels
    )
    profile.save()


def _profile_record(
    profile: WorkerProfile,
    *,
    items: int,
    seconds_per_item: float,
    gold: list[ControlAnswer],
    labels: tuple[LabelAnswer, ...],
) -> None:
    """Count the answer in the worker's record and run the quality gates on it (``profile``
    changed, not saved); a pause releases his other leases and, once the answer commits,
    takes again the decisions his votes carried."""
    gates = gate_settings()
    record, pause = gate_task(
        WorkerRecord(
            gold_seen=profile.gold_seen,
            gold_correct=profile.gold_correct,
            gold_evidence=profile.gold_evidence,
            gold_evidence_yes=profile.gold_evidence_yes,
            gold_evidence_no=profile.gold_evidence_no,
            fast_evidence=profile.fast_evidence,
            said_yes_evidence=profile.said_yes_evidence,
            said_no_evidence=profile.said_no_evidence,
        ),
        seconds_per_item=seconds_per_item,
        gold=gold,
        gates=gates,
        labels=labels,
    )
    now = timezone.now()
    same_day = profile.last_answer_at and profile.last_answer_at.date() == now.date()
    profile.streak = profile.streak + 1 if same_day else 1
    profile.answered_tasks += 1
    profile.answered_items += items
    profile.seconds_total += seconds_per_item * items
    profile.last_answer_at = now
    profile.gold_seen, profile.gold_correct = record.gold_seen, record.gold_correct
    profile.gold_evidence = record.gold_evidence
    profile.gold_evidence_yes, profile.gold_evidence_no = (
        record.gold_evidence_yes,
        record.gold_evidence_no,
    )
    profile.fast_evidence = record.fast_evidence
    profile.said_yes_evidence, profile.said_no_evidence = (
        record.said_yes_evidence,
        record.said_no_evidence,
    )
    if pause:
        profile.paused, profile.paused_at = True, now
        profile.pause_reason, profile.pause_detail = pause.reason, pause.detail
        profile.recheck_due = now  # the sweep's, should the hook below never run
        # A paused worker's other leases go back to the pool at once, and his votes weigh
        # nothing from now on (worker_coins): the decisions they carried are taken again.
        TaskItem.objects.filter(
            task__worker=profile.user, task__status=MicroTask.Status.LEASED
        ).update(leased_until=now)
        worker_id = profile.user_id
        transaction.on_commit(lambda: worker_decisions_reopen(worker_id=worker_id))


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


def _verify_consensus(
    item: LoadedItem, tally: Tally | None, counted_rows: ConsensusRows
) -> tuple[dict[str, object] | None, PeerCredits | None]:
    """candidates_decide for a verify answer's candidate over what CONSENSUS read: the fields
    to write (None while it is not open or the vote did not count) and the peer credits of a
    decision."""
    if tally is None or tally.state != Candidate.State.OPEN:
        return None, None
    candidate = Candidate(
        pk=item.candidate_id,
        category_id=item.category_id,
        state=tally.state,
        yes_votes=tally.yes_votes,
        no_votes=tally.no_votes,
        votes_needed=tally.votes_needed,
        override=tally.override,
        box_state=tally.box_state,
    )
    candidate.votes_cast = tally.votes_cast
    voters = {row[2] for row in counted_rows.votes}
    live = live_votes_of(
        [candidate.pk], counted_rows.votes, worker_coins_of(voters, counted_rows.profiles)
    )
    accepted, rejected = counted_rows.decided
    learnt = {candidate.category_id: float(decided_prior(accepted, accepted + rejected))}
    tables = confidence_tables({candidate.category_id})
    decisions, live = decisions_of([candidate], live, learnt, tables)
    fields = state_fields(candidate, decisions[candidate.pk], timezone.now())
    if fields.get("state", Candidate.State.OPEN) == Candidate.State.OPEN:
        return fields, None
    return fields, peer_credits(live, [0], 1)


def _verify_answer(
    task: MicroTask,
    profile: WorkerProfile,
    items: list[LoadedItem],
    answers: Any,
    client_token: str,
) -> Submitted:
    """answer_submit's verify answer on PostgreSQL, in the three statements after the load
    (labeling.services.answer_statements): the vote and tally, what consensus reads, and
    every write that follows from them."""
    (item,) = items
    spec = ItemSpec(uid=str(item.uid), width=item.width, height=item.height)
    (parsed,) = parse_answers(task.kind, answers, [spec])
    now = timezone.now()
    shown = max(filter(None, [task.issued_at, profile.last_answer_at]))
    seconds = max(0.0, (now - shown).total_seconds())
    known = item.known_answer()
    control = None if known is None else ControlAnswer(known, (parsed.answer == "yes") == known)
    counted = control is None  # a control never counts; a real item alone in its task does
    tally = verify_vote_write(
        worker_id=task.worker_id,
        task_id=task.pk,
        item=item,
        answer=parsed.answer,
        correct=None if control is None else control.right,
        counted=counted,
        seconds=seconds,
        created_at=timezone.now(),
    )
    rows = consensus_read(candidate_id=item.candidate_id, category_id=item.category_id)
    decision, credits = _verify_consensus(item, tally, rows)
    if credits is not None:
        vote_ids = credits.vote_ids
        transaction.on_commit(lambda: peer_learn(vote_ids))
    labels: tuple[LabelAnswer, ...] = ()
    if counted and parsed.answer in ("yes", "no"):
        # the one-answer gate reads the category's decisions with this answer's own in them
        accepted, rejected = rows.decided
        state = (decision or {}).get("state")
        if state == Candidate.State.ACCEPTED:
            accepted = min(accepted + 1, DECIDED_PRIOR_SAMPLE)
        elif state == Candidate.State.REJECTED:
            rejected = min(rejected + 1, DECIDED_PRIOR_SAMPLE)
        labels = (LabelAnswer(parsed.answer == "yes", accepted, rejected),)
    _profile_record(
        profile,
        items=1,
        seconds_per_item=seconds,
        gold=[] if control is None else [control],
        labels=labels,
    )
    body = worker_stats(profile)
    verify_answer_finish(
        candidate_id=item.candidate_id,
        decision=decision,
        credits=([], []) if credits is None else (credits.vote_ids, credits.peer_p_yes),
        profile=profile,
        task_id=task.pk,
        now=now,
        client_token=client_token or None,
        response=body,
    )
    return Submitted(body=body, replayed=False)


def answer_submit(
    *, worker: User, task_uid: str, answers: Any, client_token: str = ""
) -> Submitted:
    """Record the answers to one leased task; writes votes, candidate tallies, boxes, the
    worker's profile and the task. Raises TaskNotFound, TaskConflict, WorkerPaused or
    AnswerInvalid, each before anything is written."""
    with transaction.atomic():
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
        if loaded is not None and task.kind == TaskKind.VERIFY:
            rows = next(items for t, items in loaded.tasks if t.pk == task.pk)
            if len(rows) == 1:
                return _verify_answer(task, profile, rows, answers, client_token)
        # ordered by position alone: the model's (task, position) joined the task locked above
        items = list(
            task.items.select_related("candidate__image", "candidate__gold", "box").order_by(
                "position"
            )
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
        _update_profile(
            profile,
            items=len(items),
            seconds_per_item=seconds,
            gold=gold,
            labels=_label_answers(task, votes),
        )
        body = worker_stats(profile)
        task.status, task.answered_at = MicroTask.Status.ANSWERED, now
        task.client_token, task.response = client_token or None, body
        task.save(update_fields=["status", "answered_at", "client_token", "response"])
        TaskItem.objects.filter(task=task).update(leased_until=now)
    return Submitted(body=body, replayed=False)
