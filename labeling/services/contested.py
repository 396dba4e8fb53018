"""Contested calls: curators' decisions as blind checks on the crowd.

A bloc of colluders who can tell control items apart answers them right and agrees on the wrong
label elsewhere. Once it carries the crowd's calls, the peer-agreement gate pauses the honest
workers who contradict it, and nothing on agreement alone can tell the two blocs apart
(docs/benchmarks.md, "Peer-agreement gate reviewed"). What can is a check nobody sees coming:
a curator's decision on a contested call (below) scores every label vote cast on it before
(``Vote.blind_right``, the worker's blind record and its test,
labeling.crowd.gates.blind_pause), and takes the place of the crowd's call in the peer credits
of those votes, so the side that was wrong gains the peer gate's evidence and the side that was
right loses it. Only contested calls: the other items curators decide were picked because the
crowd split on them or likely got them wrong, and there honest voters are right far less often
than the test's bar assumes (a check is fair to them only where the item was not chosen for
the crowd's mistakes; a contested call is chosen for one paused worker's disagreement).

Where to look: a *contested* item is one the crowd decided against the label vote of a worker
whom the peer gate paused while his control record held (control evidence at or below 0).
That is the signature of both failures: a worker who spots controls and votes wrong elsewhere
(the crowd is right, the pause stands, and the checks confirm it), or a captured crowd (the
crowd is wrong, the checks pause the colluders, their calls are taken again, and the honest
workers' peer evidence falls back: the review page lists them to resume).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from labeling.crowd.gates import (
    GOLD_REASON,
    PEER_REASON,
    PEER_TESTS,
    GateSettings,
    blind_change,
    blind_pause,
    blind_threshold,
    gold_thresholds,
    peer_thresholds,
)
from labeling.models import Candidate, GoldAnswer, TaskItem, Vote, WorkerProfile
from labeling.services.control_rescore import (
    control_voters,
    controls_rescore,
    open_control_leases,
)
from labeling.services.worker_coins import gate_pause, gate_settings, profiles_lock

YES, NO = "yes", "no"
CHECKS_GRACE = timedelta(minutes=1)
"""How long the sweep leaves due checks to the commit hook that normally runs them at once."""


def checked_votes(candidate_ids: Sequence[int]) -> QuerySet[Vote]:
    """The votes a curator's decision on these candidates checks: counted yes/no label votes
    that were not control answers (those were scored when given)."""
    return Vote.objects.filter(
        candidate_id__in=list(candidate_ids),
        question="label",
        counted=True,
        is_gold=False,
        answer__in=[YES, NO],
    )


def curator_calls(candidate_ids: Sequence[int]) -> dict[int, bool | None]:
    """Each candidate's curator answer, where a curator settled it as a contested call
    (``blind_checked``): the override where there is one, else the control's curated answer;
    None elsewhere (nothing to check against)."""
    rows = list(
        Candidate.objects.filter(pk__in=list(candidate_ids)).values_list(
            "pk", "override", "blind_checked"
        )
    )
    calls: dict[int, bool | None] = {pk: override for pk, override, _ in rows}
    checked = {pk for pk, _, blind_checked in rows if blind_checked}
    gold = GoldAnswer.objects.filter(candidate_id__in=list(calls))
    for candidate_id, answer in gold.values_list("candidate_id", "answer"):
        if calls[candidate_id] is None:
            calls[candidate_id] = answer
    return {pk: call if pk in checked else None for pk, call in calls.items()}


@dataclass(frozen=True)
class Checks:
    """What one checks_apply did: votes whose check changed, workers it paused, and control
    votes it scored again (labeling.services.control_rescore)."""

    votes: list[int]
    paused: list[int]
    rescored: list[int]


def checks_apply(candidate_ids: Sequence[int]) -> Checks:
    """Bring the checks of the votes on these candidates in line with their curator answers
    (curator_calls), exactly once: each vote's ``blind_right`` is what its worker's blind record
    holds, so only the difference is added (a decision taken again or lifted moves it, a repeat
    does nothing); the votes are credited with the curator's call as the crowd's (P(yes) 1 or
    0; none where the call was lifted), added to the peer records once this commits
    (consensus.peer_learn: the peer gate may pause, and decisions are taken again); whoever the
    blind-check test now catches is paused, his open leases go back to the pool, and his
    decisions are taken again once this commits (recheck_due meanwhile). The control votes on
    them scored against a stand-in answer are scored against the curator's in the same
    transaction (control_rescore.controls_rescore, which may pause by the control tests).
    Profiles are locked before votes, in id order, as the answer path and peer_credits_apply
    lock them. A candidate stays due while a lease serving it as a control is open, or a
    control vote's worker was not locked: the sweep takes it again."""
    from labeling.services.consensus import peer_learn, worker_decisions_reopen

    ids = sorted(set(candidate_ids))
    started = timezone.now()
    gates = gate_settings()
    threshold = blind_threshold(gates)
    with transaction.atomic():
        calls = curator_calls(ids)
        workers = sorted(
            set(checked_votes(ids).values_list("worker_id", flat=True)) | control_voters(ids)
        )
        profiles_lock(workers)
        rows = list(
            checked_votes(ids)
            .filter(worker_id__in=workers)
            .select_for_update()
            .order_by("id")
            .values_list("id", "worker_id", "candidate_id", "answer", "blind_right")
        )
        by_target: dict[bool | None, list[int]] = {True: [], False: [], None: []}
        credit: dict[float | None, list[int]] = {1.0: [], 0.0: [], None: []}
        records: dict[int, list[float]] = {}
        for vote_id, worker_id, candidate_id, answer, before in rows:
            call = calls.get(candidate_id)
            after = None if call is None else (answer == YES) == call
            if after == before:
                continue
            by_target[after].append(vote_id)
            credit[None if call is None else float(call)].append(vote_id)
            record = records.setdefault(worker_id, [0.0, 0.0, 0.0])
            record[0] += (after is not None) - (before is not None)
            record[1] += bool(after) - bool(before)
            record[2] += blind_change(before, after, gates)
        for target, vote_ids in by_target.items():
            if vote_ids:
                Vote.objects.filter(pk__in=vote_ids).update(blind_right=target)
        for q, vote_ids in credit.items():
            if vote_ids:
                Vote.objects.filter(pk__in=vote_ids).update(peer_p_yes=q)
        for worker_id, (seen, correct, change) in sorted(records.items()):
            WorkerProfile.objects.filter(user_id=worker_id).update(
                blind_seen=F("blind_seen") + int(seen),
                blind_correct=F("blind_correct") + int(correct),
                blind_evidence=Greatest(Value(-2.0 * threshold), F("blind_evidence") + change),
            )
        rescored = controls_rescore(ids, gates, set(workers))
        paused = sorted(set(_blind_pauses(sorted(records), gates)) | set(rescored.paused))
        Candidate.objects.filter(pk__in=ids, checks_due__lte=started).exclude(
            open_control_leases()
        ).exclude(pk__in=rescored.pending).update(checks_due=None)
    changed = sorted(vote_id for vote_ids in by_target.values() for vote_id in vote_ids)
    if changed or paused:

        def after_commit() -> None:
            for worker_id in paused:
                worker_decisions_reopen(worker_id=worker_id)
            if changed:
                peer_learn(changed)

        transaction.on_commit(after_commit)
    return Checks(votes=changed, paused=paused, rescored=rescored.votes)


def _blind_pauses(ids: list[int], gates: GateSettings) -> list[int]:
    """Pause the workers among ``ids`` (rows locked by the caller) whose blind-check evidence
    has reached the threshold and who are not paused already; returns them."""
    caught = list(
        WorkerProfile.objects.filter(
            user_id__in=ids, paused=False, blind_evidence__gte=blind_threshold(gates)
        )
        .order_by("user_id")
        .values_list("user_id", "blind_evidence", "blind_seen", "blind_correct")
    )
    now = timezone.now()
    paused = []
    for worker_id, evidence, seen, correct in caught:
        pause = blind_pause(evidence, seen, correct, gates)
        if pause is None:  # not reachable: the filter asked for evidence at the threshold
            continue
        gate_pause(worker_id, pause, now)
        paused.append(worker_id)
    return paused


def settle(candidate_id: int, *, contested: bool) -> None:
    """A curator's decision on a candidate (an override, a lifted one, a control's answer), in
    its transaction: one settled while it was a contested call (``contested``, read before the
    decision) is marked ``blind_checked`` for good, and the votes on a marked one are to be
    checked against the decision (or un-checked, where it was lifted); on any candidate ever
    served as a control, the control votes scored against a stand-in answer are to be scored
    again (labeling.services.control_rescore): checks_apply once this commits, the sweep
    should that never run. Other decisions check no label votes: the review queue holds the
    items the crowd split on and the model's disagreements the ones it likely got wrong, so
    honest voters are right there far less often than the checks' bar assumes."""
    candidate = Candidate.objects.filter(pk=candidate_id)
    if contested:
        candidate.update(blind_checked=True)
    served = TaskItem.objects.filter(candidate_id=candidate_id, is_gold=True).exists()
    due = candidate if served else candidate.filter(blind_checked=True)
    if not due.update(checks_due=timezone.now()):
        return
    transaction.on_commit(lambda: checks_apply([candidate_id]))


def is_contested(candidate_id: int) -> bool:
    """Whether the candidate is a contested call now (contested_items)."""
    return contested_items().filter(pk=candidate_id).exists()


def checks_sweep(max_candidates: int = 500) -> int:
    """checks_apply on the candidates whose checks have been due for over CHECKS_GRACE (their
    hook's process was killed); returns how many were done."""
    due = list(
        Candidate.objects.filter(checks_due__lte=timezone.now() - CHECKS_GRACE)
        .order_by("checks_due")
        .values_list("pk", flat=True)[:max_candidates]
    )
    for start in range(0, len(due), 50):
        checks_apply(due[start : start + 50])
    return len(due)


def suspects() -> QuerySet[WorkerProfile]:
    """Workers the peer-agreement gate paused while their control record held (control
    evidence at or below 0; none answered yet counts: asking for one left more honest workers
    paused on captured crowds, bench/consensus_live.py --suspects-answered-controls)."""
    return WorkerProfile.objects.filter(
        paused=True, pause_reason=PEER_REASON, gold_evidence__lte=0.0
    )


def contested_items() -> QuerySet[Candidate]:
    """Items the crowd decided against a suspect's label vote that no curator has settled,
    annotated with ``contradictions`` (how many suspects voted against the call), most first,
    then oldest decision first."""
    against = Q(state=Candidate.State.ACCEPTED, votes__answer=NO) | Q(
        state=Candidate.State.REJECTED, votes__answer=YES
    )
    suspect_ids = suspects().values("user_id")
    return (
        Candidate.objects.filter(
            state__in=[Candidate.State.ACCEPTED, Candidate.State.REJECTED],
            override__isnull=True,
            gold__isnull=True,
        )
        .filter(
            against,
            votes__worker_id__in=suspect_ids,
            votes__question="label",
            votes__counted=True,
        )
        .annotate(contradictions=Count("votes__worker_id", distinct=True))
        .order_by("-contradictions", F("decided_at").asc(nulls_first=True), "id")
    )


@dataclass(frozen=True)
class Suspect:
    """A suspect as the review page shows him: ``cleared`` when his peer evidence is back
    below every threshold (curators' decisions took the calls he contradicted away), so is
    his control evidence (re-scored controls, labeling.services.control_rescore), and his
    blind checks do not speak against him (evidence at or below 0), so the pause no longer
    holds on its own evidence and a curator may resume him. The last condition keeps random
    spammers paused: the peer gate pauses them just over its threshold and revised credits can
    bring them back under it, while their blind checks go the other way
    (docs/benchmarks.md, "Curators' blind checks on contested items")."""

    user_id: int
    username: str
    gold_seen: int
    gold_correct: int
    blind_seen: int
    blind_correct: int
    cleared: bool


def gold_cleared() -> QuerySet[WorkerProfile]:
    """Workers the control tests paused whose control evidence is back below every threshold:
    nothing but a re-scoring of their control votes against a curator's answer lowers it
    while they are paused (labeling.services.control_rescore)."""
    pooled, per_class = gold_thresholds(gate_settings())
    return WorkerProfile.objects.filter(
        paused=True,
        pause_reason=GOLD_REASON,
        gold_evidence__lt=pooled,
        gold_evidence_yes__lt=per_class,
        gold_evidence_no__lt=per_class,
    )


def suspect_list(limit: int = 200) -> list[Suspect]:
    """The suspects and the workers in gold_cleared, most recently paused first, with whether
    each is cleared."""
    gates = gate_settings()
    thresholds = peer_thresholds(gates)
    pooled, per_class = gold_thresholds(gates)
    rows = (
        (suspects() | gold_cleared())
        .order_by(F("paused_at").desc(nulls_last=True), "user_id")
        .values_list(
            "user_id",
            "user__username",
            "gold_seen",
            "gold_correct",
            "blind_seen",
            "blind_correct",
            "blind_evidence",
            "gold_evidence",
            "gold_evidence_yes",
            "gold_evidence_no",
            *PEER_TESTS,
        )[:limit]
    )
    return [
        Suspect(
            user_id=row[0],
            username=row[1],
            gold_seen=row[2],
            gold_correct=row[3],
            blind_seen=row[4],
            blind_correct=row[5],
            cleared=row[6] <= 0.0
            and all(
                value < t
                for value, t in zip(
                    row[7:], (pooled, per_class, per_class, *thresholds), strict=True
                )
            ),
        )
        for row in rows
    ]
