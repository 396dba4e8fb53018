"""Paying a campaign: the review of submitted assignments (approve, or reject on a quality
gate's evidence), the ledger entries an approval writes, and the campaign's summary.

Amounts are integer cents. A bonus rule reads the assignment's own answers: control
accuracy is its control items answered right over those answered (the same Vote.correct
that feeds WorkerProfile.gold_seen / gold_correct and the gates in labeling.crowd.gates);
an accepted answer is a verify or grid answer that matches its item's decision, or a box
check that matches the box's outcome, as they stand at review time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from campaigns.models import Assignment, Campaign, LedgerEntry
from labeling.models import Box, Candidate, MicroTask, Vote, WorkerProfile

CURATOR_PAUSE_DETAIL = "Paused by a curator."
"""labeling.services.microtasks.worker_pause's detail: a curator's pause is not a gate's
evidence, so it never rejects an assignment by itself."""

ACCEPTED_ANSWER = (
    Q(question="label", answer="yes", candidate__state=Candidate.State.ACCEPTED)
    | Q(question="label", answer="no", candidate__state=Candidate.State.REJECTED)
    | Q(question="box", answer="yes", box__state=Box.State.ACCEPTED)
    | Q(question="box", answer="no", box__state=Box.State.REJECTED)
)


@dataclass(frozen=True)
class Review:
    approved: int
    rejected: int


@dataclass(frozen=True)
class AssignmentRecord:
    """What an assignment's answers show: tasks answered, accepted answers, control items."""

    tasks: int
    accepted: int
    control_seen: int
    control_correct: int


def assignment_record(assignment: Assignment) -> AssignmentRecord:
    """Counts over the assignment's answered tasks and their votes (reads only)."""
    votes = Vote.objects.filter(task__assignment__assignment=assignment)
    counts = votes.aggregate(
        seen=Count("id", filter=Q(is_gold=True)),
        right=Count("id", filter=Q(is_gold=True, correct=True)),
        accepted=Count("id", filter=Q(ACCEPTED_ANSWER, is_gold=False, counted=True)),
    )
    tasks = MicroTask.objects.filter(
        assignment__assignment=assignment, status=MicroTask.Status.ANSWERED
    ).count()
    return AssignmentRecord(tasks, counts["accepted"], counts["seen"], counts["right"])


def bonus_cents(campaign: Campaign, record: AssignmentRecord) -> tuple[int, str]:
    """The bonus the campaign's rule gives this record, and why, in words."""
    rule = campaign.bonus_rule
    if rule == Campaign.BonusRule.PER_ACCEPTED:
        return campaign.bonus_cents * record.accepted, f"{record.accepted} accepted answers"
    if rule == Campaign.BonusRule.ACCURACY:
        seen, right = record.control_seen, record.control_correct
        if seen and Decimal(right) >= campaign.bonus_threshold * seen:
            return campaign.bonus_cents, f"control accuracy {right}/{seen}"
        return 0, f"control accuracy {right}/{seen} below {campaign.bonus_threshold}"
    return 0, "no bonus rule"


def gate_evidence(profile: WorkerProfile | None) -> str:
    """Why a quality gate paused this worker (reason and evidence), or "" when no gate did."""
    if profile is None or not profile.paused or profile.pause_detail == CURATOR_PAUSE_DETAIL:
        return ""
    return f"{profile.pause_reason} {profile.pause_detail}".strip()


def _approve(assignment: Assignment, now: object) -> None:
    campaign = assignment.campaign
    record = assignment_record(assignment)
    common = {
        "campaign": campaign,
        "assignment": assignment,
        "worker": assignment.worker,
        "tasks": record.tasks,
        "accepted_answers": record.accepted,
        "control_seen": record.control_seen,
        "control_correct": record.control_correct,
    }
    entries = [
        LedgerEntry(
            kind=LedgerEntry.Kind.BASE,
            amount_cents=campaign.reward_cents * record.tasks,
            note=f"{record.tasks} tasks at {campaign.reward_cents} c",
            **common,
        )
    ]
    bonus, why = bonus_cents(campaign, record)
    if bonus:
        entries.append(
            LedgerEntry(kind=LedgerEntry.Kind.BONUS, amount_cents=bonus, note=why, **common)
        )
    LedgerEntry.objects.bulk_create(entries)
    assignment.state, assignment.reviewed_at = Assignment.State.APPROVED, now
    assignment.save(update_fields=["state", "reviewed_at"])


def campaign_review(*, campaign: Campaign) -> Review:
    """Decide every submitted assignment: rejected, with the gate's reason, when a quality
    gate paused its worker; else approved, with its base pay and bonus in the ledger. Writes
    the assignments and ledger entries; running it again decides only new submissions."""
    approved = rejected = 0
    now = timezone.now()
    with transaction.atomic():
        submitted = (
            Assignment.objects.select_for_update(of=("self",))
            .filter(campaign=campaign, state=Assignment.State.SUBMITTED)
            .select_related("campaign", "worker")
        )
        for assignment in submitted:
            profile = WorkerProfile.objects.filter(user_id=assignment.worker.user_id).first()
            evidence = gate_evidence(profile)
            if evidence:
                assignment.state, assignment.reviewed_at = Assignment.State.REJECTED, now
                assignment.reject_reason = evidence[:700]
                assignment.save(update_fields=["state", "reviewed_at", "reject_reason"])
                rejected += 1
            else:
                _approve(assignment, now)
                approved += 1
    return Review(approved, rejected)


@dataclass(frozen=True)
class WorkerPay:
    external_id: str
    username: str
    assignments: int
    tasks: int
    base_cents: int
    bonus_cents: int

    @property
    def total_cents(self) -> int:
        return self.base_cents + self.bonus_cents


@dataclass(frozen=True)
class CampaignSummary:
    """``spent_cents``: every ledger entry; ``accepted_labels``: distinct items the
    campaign's workers answered (not controls) that the crowd accepted;
    ``cents_per_accepted_label``: spent over them, to the hundredth of a cent."""

    assignments: dict[str, int]
    tasks_answered: int
    base_cents: int
    bonus_cents: int
    spent_cents: int
    accepted_labels: int
    cents_per_accepted_label: Decimal | None
    workers: list[WorkerPay]


def campaign_summary(campaign: Campaign) -> CampaignSummary:
    """The campaign's spending, per accepted label and per worker (reads only)."""
    states = dict(campaign.assignments.order_by().values_list("state").annotate(n=Count("id")))
    ledger = campaign.ledger.order_by()
    by_kind = dict(ledger.values_list("kind").annotate(total=Sum("amount_cents")))
    base, bonus = by_kind.get("base", 0), by_kind.get("bonus", 0)
    accepted = (
        Vote.objects.filter(
            task__assignment__assignment__campaign=campaign,
            is_gold=False,
            question="label",
            candidate__state=Candidate.State.ACCEPTED,
        )
        .values("candidate_id")
        .distinct()
        .count()
    )
    per_label = (
        (Decimal(base + bonus) / accepted).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        if accepted
        else None
    )
    rows = (
        ledger.values("worker__external_id", "worker__user__username")
        .annotate(
            assignments=Count("assignment", distinct=True),
            base=Sum("amount_cents", filter=Q(kind="base")),
            bonus=Sum("amount_cents", filter=Q(kind="bonus")),
            tasks=Sum("tasks", filter=Q(kind="base")),
        )
        .order_by("worker__external_id")
    )
    workers = [
        WorkerPay(
            external_id=row["worker__external_id"],
            username=row["worker__user__username"],
            assignments=row["assignments"],
            tasks=row["tasks"] or 0,
            base_cents=row["base"] or 0,
            bonus_cents=row["bonus"] or 0,
        )
        for row in rows
    ]
    answered = MicroTask.objects.filter(
        assignment__assignment__campaign=campaign, status=MicroTask.Status.ANSWERED
    ).count()
    return CampaignSummary(
        assignments={state: states.get(state, 0) for state in Assignment.State.values},
        tasks_answered=answered,
        base_cents=base,
        bonus_cents=bonus,
        spent_cents=base + bonus,
        accepted_labels=accepted,
        cents_per_accepted_label=per_label,
        workers=workers,
    )
