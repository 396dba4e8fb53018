"""Control answers scored against a crowd's call that a curator overturns, scored again.

Where a category has no curated gold, a decided item stands in as the control
(``TaskItem.control_answer`` is the crowd's decision when it was served), and the worker's
answer to it is scored against that decision (``Vote.correct``, his control record). A crowd
captured by colluders decides wrong, so an honest worker's right answer to such a control is
a miss and a colluder's wrong one a hit, until a curator overturns the call. Then every
control vote on the item that was scored against a stand-in answer is scored against the
curator's answer (the override where there is one, else the item's curated gold answer), and
where none is left (an override lifted on an item without gold) against the answer it was
served with again. Curated gold answers are the truth by definition: a control vote whose
item had its GoldAnswer row when the task was leased (``GoldAnswer.created_at`` at or before
``MicroTask.issued_at``; a served item without ``control_answer`` predates stand-ins and was
gold) is never scored again. The rule reads two application clocks: a gold_mark racing a
lease on the same item within clock skew can classify its one vote either way, and a gold
row deleted by hand leaves the votes served with it reading as stand-ins.

Exactly once: ``Vote.correct`` is what the worker's record holds, so a vote already scored
against the answer that stands is left alone, and the record follows the votes. The control
tests' evidence is floored (labeling.crowd.gates.sprt_step), so one answer's term cannot be
taken out of a sum on its own: the record is replayed instead, through the answer path's own
record_task, over his control votes since his last resume in the order he answered them
(task answered, then item position), once as they were scored and once as they are scored
now. Where the first replay gives the record as stored (always, for a worker resumed after
``resumed_at`` was kept, or never), the second replaces it, so a re-scored vote moves the
evidence exactly as if it had been scored right in the first place; where it does not (a
resume before migration 0030) the difference of the two is added, floored.
``gold_seen`` stays; ``gold_correct`` moves by the votes flipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from labeling.crowd.gates import (
    ControlAnswer,
    GateSettings,
    WorkerRecord,
    gold_pause,
    gold_thresholds,
    record_task,
)
from labeling.models import Candidate, GoldAnswer, TaskItem, Vote, WorkerProfile
from labeling.services.worker_coins import gate_pause

YES = "yes"
EVIDENCE = ("gold_evidence", "gold_evidence_yes", "gold_evidence_no")
"""The control tests' evidence columns, in the order WorkerRecord and the replay give them."""
SAME = 1e-9
"""How close a replay must come to the stored evidence (nats) to be the same record."""


def _served(field: str) -> Subquery:
    """The vote's TaskItem's ``field``: the cell of its task that served its candidate."""
    return Subquery(
        TaskItem.objects.filter(
            task_id=OuterRef("task_id"), candidate_id=OuterRef("candidate_id"), box__isnull=True
        ).values(field)[:1]
    )


def standin_votes(candidate_ids: Sequence[int]) -> QuerySet[Vote]:
    """Control votes on these candidates scored against a stand-in answer (a decided item's,
    not curated gold at lease time), annotated with ``served`` (that answer)."""
    gold_then = GoldAnswer.objects.filter(
        candidate_id=OuterRef("candidate_id"), created_at__lte=OuterRef("task__issued_at")
    )
    return (
        Vote.objects.filter(
            candidate_id__in=list(candidate_ids),
            question="label",
            is_gold=True,
            correct__isnull=False,
        )
        .annotate(served=_served("control_answer"))
        .filter(served__isnull=False)
        .exclude(Exists(gold_then))
    )


def curator_answers(candidate_ids: Sequence[int]) -> dict[int, bool]:
    """Each candidate's answer by a curator's hand: its override, else its curated gold
    answer; candidates with neither are left out."""
    answers = dict(
        GoldAnswer.objects.filter(candidate_id__in=list(candidate_ids)).values_list(
            "candidate_id", "answer"
        )
    )
    overrides = Candidate.objects.filter(pk__in=list(candidate_ids), override__isnull=False)
    answers.update(overrides.values_list("pk", "override"))
    return answers


def control_voters(candidate_ids: Sequence[int]) -> set[int]:
    """The workers whose control votes on these candidates may be scored again (their
    profiles are to be locked before the votes)."""
    return set(standin_votes(candidate_ids).values_list("worker_id", flat=True))


@dataclass(frozen=True)
class Rescored:
    """What one controls_rescore did: votes scored again, workers the control tests paused,
    and candidates with votes left for a later call."""

    votes: list[int]
    paused: list[int]
    pending: set[int]


def controls_rescore(
    candidate_ids: Sequence[int], gates: GateSettings, locked: set[int]
) -> Rescored:
    """Score the stand-in control votes on these candidates against their curator answers
    (curator_answers; where none, the answer each was served with), in the caller's
    transaction, the voters' profiles locked by the caller: ``Vote.correct`` flipped where it
    differs, each voter's control record brought in line (control_record), and whoever the
    control tests now reach paused (gate_pause: his leases back to the pool, his decisions due
    to be taken again). A worker already paused stays so, whatever his record says now:
    curators resume (contested.suspect_list shows such a pause as cleared). Votes of workers
    not in ``locked`` (answered since the caller locked the profiles) are left for the next
    call: their candidates come back in ``pending``."""
    answers = curator_answers(candidate_ids)
    rows = list(
        standin_votes(candidate_ids)
        .select_for_update(of=("self",))
        .order_by("id")
        .values_list("id", "worker_id", "candidate_id", "answer", "correct", "served")
    )
    flipped: dict[bool, list[int]] = {True: [], False: []}
    workers: dict[int, int] = {}
    pending: set[int] = set()
    for vote_id, worker_id, candidate_id, answer, correct, served in rows:
        right = (answer == YES) == answers.get(candidate_id, served)
        if right == correct:
            continue
        if worker_id not in locked:
            pending.add(candidate_id)
            continue
        flipped[right].append(vote_id)
        workers[worker_id] = workers.get(worker_id, 0) + (1 if right else -1)
    changed = sorted(flipped[True] + flipped[False])
    if not changed:
        return Rescored(votes=[], paused=[], pending=pending)
    for right, vote_ids in flipped.items():
        if vote_ids:
            Vote.objects.filter(pk__in=vote_ids).update(correct=right)
    paused = []
    now = timezone.now()
    for worker_id, correct_change in sorted(workers.items()):
        record, already_paused = control_record(worker_id, set(changed), correct_change, gates)
        pause = gold_pause(record, gates)
        if pause is not None and not already_paused:
            gate_pause(worker_id, pause, now)
            paused.append(worker_id)
    return Rescored(votes=changed, paused=paused, pending=pending)


def _replay(answers: list[ControlAnswer], gates: GateSettings) -> tuple[float, float, float]:
    """The control tests' evidence after these answers from a fresh start, as the answer
    path's record_task sums it."""
    record = record_task(WorkerRecord(), seconds_per_item=1e9, gold=answers, gates=gates)
    return record.gold_evidence, record.gold_evidence_yes, record.gold_evidence_no


def control_record(
    worker_id: int, flipped: set[int], correct_change: int, gates: GateSettings
) -> tuple[WorkerRecord, bool]:
    """Bring the worker's control record (row locked by the caller) in line with his control
    votes after the votes ``flipped`` had ``Vote.correct`` flipped: ``gold_correct`` moved by
    ``correct_change``, the evidence replayed (module docstring); writes it, and returns it
    with whether he is paused."""
    profile = WorkerProfile.objects.get(user_id=worker_id)
    votes = Vote.objects.filter(
        worker_id=worker_id, question="label", is_gold=True, correct__isnull=False
    )
    if profile.resumed_at is not None:
        votes = votes.filter(task__answered_at__gt=profile.resumed_at)
    rows = list(
        votes.annotate(position=_served("position"))
        .order_by(F("task__answered_at").asc(nulls_last=True), "task_id", "position", "id")
        .values_list("id", "answer", "correct")
    )
    # a control's known answer is the one it was scored against: right iff it said it
    now = [ControlAnswer((answer == YES) == correct, correct) for _, answer, correct in rows]
    was = [(answer, correct != (vote_id in flipped)) for vote_id, answer, correct in rows]
    then = [ControlAnswer((answer == YES) == correct, correct) for answer, correct in was]
    stored = tuple(getattr(profile, name) for name in EVIDENCE)
    old, new = _replay(then, gates), _replay(now, gates)
    if all(abs(a - b) <= SAME for a, b in zip(old, stored, strict=True)):
        evidence = new
    else:  # history before a resume nobody recorded: move it by the difference, floored
        pooled, per_class = gold_thresholds(gates)
        evidence = tuple(
            max(-2.0 * threshold, value + after - was)
            for value, after, was, threshold in zip(
                stored, new, old, (pooled, per_class, per_class), strict=True
            )
        )
    WorkerProfile.objects.filter(user_id=worker_id).update(
        gold_correct=Greatest(Value(0), F("gold_correct") + correct_change),
        **dict(zip(EVIDENCE, evidence, strict=True)),
    )
    profile.refresh_from_db(fields=["gold_seen", "gold_correct", *EVIDENCE])
    record = WorkerRecord(
        gold_seen=profile.gold_seen,
        gold_correct=profile.gold_correct,
        gold_evidence=profile.gold_evidence,
        gold_evidence_yes=profile.gold_evidence_yes,
        gold_evidence_no=profile.gold_evidence_no,
    )
    return record, profile.paused


def open_control_leases() -> Q:
    """Candidates served as a control on a lease issued before their checks were due and
    still open: its answer, to come, will be scored against the answer it was served with, so
    the checks stay due (contested.checks_apply; the sweep takes them again). Leases issued
    since serve the curator's answer already."""
    return Q(
        Exists(
            TaskItem.objects.filter(
                candidate_id=OuterRef("pk"),
                is_gold=True,
                leased_until__gt=timezone.now(),
                task__issued_at__lte=OuterRef("checks_due"),
            )
        )
    )
