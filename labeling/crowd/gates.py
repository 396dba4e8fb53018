"""Worker quality gates (Toloka-style): too fast, failed-gold streaks, low gold accuracy."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class GateSettings:
    min_seconds_per_item: float = 0.4
    fast_window: int = 10
    fast_max: int = 3
    gold_fail_streak: int = 3
    gold_min_seen: int = 10
    gold_min_accuracy: float = 0.7


@dataclass(frozen=True)
class WorkerRecord:
    """What the gates look at: gold seen and right, the current failed-gold streak, and 1/0 per
    recent task for "answered faster than the floor" (newest last)."""

    gold_seen: int = 0
    gold_correct: int = 0
    gold_failed_streak: int = 0
    recent_fast: tuple[int, ...] = ()


def record_task(
    record: WorkerRecord, *, seconds_per_item: float, gold: list[bool], gates: GateSettings
) -> WorkerRecord:
    """The record after one answered task: ``gold`` holds one bool per gold item (right?)."""
    streak = record.gold_failed_streak
    for right in gold:
        streak = 0 if right else streak + 1
    fast = int(seconds_per_item < gates.min_seconds_per_item)
    return replace(
        record,
        gold_seen=record.gold_seen + len(gold),
        gold_correct=record.gold_correct + sum(gold),
        gold_failed_streak=streak,
        recent_fast=(*record.recent_fast, fast)[-gates.fast_window :],
    )


def pause_reason(record: WorkerRecord, gates: GateSettings) -> str | None:
    """Why this worker must pause, in words for them and for curators; None when fine."""
    if sum(record.recent_fast) >= gates.fast_max:
        return (
            f"{sum(record.recent_fast)} of your last {len(record.recent_fast)} tasks were answered "
            f"faster than {gates.min_seconds_per_item:g} s per image. Take a little more time "
            "on each one; a curator can resume your account."
        )
    if record.gold_failed_streak >= gates.gold_fail_streak:
        return (
            f"{record.gold_failed_streak} check questions in a row were answered wrong. "
            "Re-read the category definitions; a curator can resume your account."
        )
    if record.gold_seen >= gates.gold_min_seen:
        accuracy = record.gold_correct / record.gold_seen
        if accuracy < gates.gold_min_accuracy:
            return (
                f"Your accuracy on check questions is {accuracy:.0%}, below the "
                f"{gates.gold_min_accuracy:.0%} needed. A curator can resume your account."
            )
    return None
