"""What every answer path writes into the worker's record: the answer counted, the quality
gates run on it (labeling.crowd.gates), and what the worker is shown of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from labeling.crowd.gates import ControlAnswer, LabelAnswer, WorkerRecord, gate_task
from labeling.models import WorkerProfile
from labeling.services.consensus import worker_decisions_reopen
from labeling.services.leases import leases_release
from labeling.services.worker_coins import gate_settings


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


def profile_record(
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
        leases_release(profile.user_id, now)
        worker_id = profile.user_id
        transaction.on_commit(lambda: worker_decisions_reopen(worker_id=worker_id))
