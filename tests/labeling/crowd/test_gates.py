"""The quality gates' sequential tests, on cases worked out by hand (defaults: bar 0.8, chance
0.5, one kind of control wrong 0.1, false-pause budget 0.01; speed 0.1 against 0.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labeling.crowd.gates import (
    GOLD_REASON,
    ONE_ANSWER_REASON,
    ControlAnswer,
    GateSettings,
    LabelAnswer,
    WorkerRecord,
    gate_task,
    generous_share,
    gold_thresholds,
    one_answer_rates,
    pause_decision,
    record_task,
)

GATES = GateSettings()
SLOW = 5.0  # seconds per item, over the 0.4 s floor
RIGHT_POOLED, WRONG_POOLED = math.log(0.5 / 0.8), math.log(0.5 / 0.2)  # -0.470, +0.916 nats
RIGHT_CLASS, WRONG_CLASS = math.log(0.1 / 0.8), math.log(0.9 / 0.2)  # -2.079, +1.504 nats


def _run(
    controls: list[ControlAnswer], record: WorkerRecord | None = None
) -> tuple[WorkerRecord, list[bool]]:
    """One task per control answer; the record at the end and, per task, paused or not."""
    record = record or WorkerRecord()
    paused = []
    for control in controls:
        record = record_task(record, seconds_per_item=SLOW, gold=[control], gates=GATES)
        paused.append(pause_decision(record, GATES) is not None)
    return record, paused


def test_thresholds_split_the_budget_half_pooled_a_quarter_per_kind_of_control():
    assert gold_thresholds(GATES) == (pytest.approx(math.log(200)), pytest.approx(math.log(400)))


def test_six_missed_controls_of_both_kinds_pause_at_the_sixth():
    # 5 misses: 5 x 0.916 = 4.58 < log(200) = 5.30; 6 misses: 5.50; per kind 3 x 1.504 = 4.51
    misses = [ControlAnswer(positive=i % 2 == 0, right=False) for i in range(6)]

    record, paused = _run(misses)

    assert paused == [False] * 5 + [True]
    assert record.gold_evidence == pytest.approx(6 * WRONG_POOLED)
    assert record.gold_evidence_yes == record.gold_evidence_no == pytest.approx(3 * WRONG_CLASS)


def test_four_missed_no_controls_in_a_row_pause_a_yes_clicker():
    # per kind: 3 x 1.504 = 4.51 < log(400) = 5.99 <= 4 x 1.504 = 6.02; pooled only 3.67
    record, paused = _run([ControlAnswer(positive=False, right=False)] * 4)

    assert paused == [False, False, False, True]
    assert (record.gold_evidence, record.gold_evidence_no, record.gold_evidence_yes) == (
        pytest.approx(4 * WRONG_POOLED),
        pytest.approx(4 * WRONG_CLASS),
        0.0,
    )


def test_an_honest_worker_with_9_of_13_is_not_paused_even_with_the_misses_first():
    misses = [ControlAnswer(positive=i % 2 == 0, right=False) for i in range(4)]
    rights = [ControlAnswer(positive=i % 2 == 0, right=True) for i in range(9)]

    record, paused = _run(misses + rights)

    assert paused == [False] * 13
    assert (record.gold_seen, record.gold_correct) == (13, 9)
    assert record.gold_evidence == pytest.approx(4 * WRONG_POOLED + 9 * RIGHT_POOLED)
    # yes items: 2 misses, 5 right; no items: 2 misses, 4 right
    assert record.gold_evidence_yes == pytest.approx(2 * WRONG_CLASS + 5 * RIGHT_CLASS)
    assert record.gold_evidence_no == pytest.approx(2 * WRONG_CLASS + 4 * RIGHT_CLASS)


def test_a_long_honest_record_is_floored_so_a_worker_who_turns_bad_is_still_caught():
    record, _ = _run([ControlAnswer(positive=True, right=True)] * 200)
    assert record.gold_evidence == pytest.approx(-2 * math.log(200))

    # from the floor, -10.60 nats, 18 misses in a row reach 5.90 >= 5.30; 17 reach 4.98
    _, paused = _run([ControlAnswer(positive=False, right=False)] * 18, record)

    assert paused.index(True) == 3  # the per-kind test on "no" items gets there first
    _, pooled_only = _run([ControlAnswer(positive=i % 2 == 0, right=False) for i in range(18)])
    assert pooled_only.index(True) == 5


def test_random_spammers_are_all_paused_within_120_control_answers():
    # 200 workers who answer each control item (yes or no, half each) at random
    rng = np.random.default_rng(20261207)
    when = []
    for _ in range(200):
        truths, rights = rng.random(200) < 0.5, rng.random(200) < 0.5
        answers = [
            ControlAnswer(positive=bool(t), right=bool(r))
            for t, r in zip(truths, rights, strict=True)
        ]
        _, paused = _run(answers)
        when.append(paused.index(True) + 1 if True in paused else 10**9)

    # median 17 control answers (about 150 label votes at the default control rate)
    assert (max(when) <= 120, int(np.median(when))) == (True, 17)


@pytest.mark.parametrize(
    ("fast_tasks", "paused"),
    [
        # each fast task adds log(0.5 / 0.1) = 1.609 nats, each slow one log(0.5 / 0.9) = -0.588;
        # the speed gate pauses at log(100) = 4.61
        ([1, 1], False),
        ([1, 1, 1], True),
        ([1, 1, 0, 1], False),  # 3 x 1.609 - 0.588 = 4.24
        ([1, 1, 0, 1, 1], True),
        ([1, 0, 0, 0, 0, 0, 0, 0, 0, 0] * 100, False),  # an honest worker, fast one time in 10
    ],
)
def test_the_speed_gate_is_a_sequential_test_too(fast_tasks, paused):
    record = WorkerRecord()
    for fast in fast_tasks:
        seconds = 0.1 if fast else SLOW
        record = record_task(record, seconds_per_item=seconds, gold=[], gates=GATES)

    decision = pause_decision(record, GATES)

    assert (decision is not None) == paused
    if paused:
        assert decision.reason == (
            "Too many of your recent tasks were answered faster than 0.4 s per image. Take a "
            "little more time on each one; a curator can resume your account."
        )


def test_the_workers_message_names_the_reason_and_nothing_else_while_curators_get_evidence():
    record, _ = _run([ControlAnswer(positive=True, right=False)] * 6)

    decision = pause_decision(record, GATES)

    assert decision is not None
    assert decision.reason == GOLD_REASON
    assert decision.reason == (
        "Your answers to check questions were below the required accuracy. Re-read the "
        "category definitions; a curator can resume your account."
    )
    assert not any(ch.isdigit() for ch in decision.reason)
    assert "in a row" not in decision.reason
    assert decision.detail == (
        "Control items: 0 of 6 right. Evidence (nats, pause at 5.30 / 5.99): all 5.50, "
        "yes items 9.02, no items 0.00 (bar 80%)."
    )


def test_gate_task_takes_one_task_through_the_record_and_the_pause_decision():
    # the answer path's and bench/consensus_live.py's one call: 3 no-control misses pass, the
    # 4th pauses (per kind 4 x 1.504 = 6.02 >= log(400) = 5.99)
    miss = [ControlAnswer(positive=False, right=False)]
    record, pause = WorkerRecord(), None
    outcomes = []
    for _ in range(4):
        record, pause = gate_task(record, seconds_per_item=SLOW, gold=miss, gates=GATES)
        outcomes.append(pause is not None)

    assert outcomes == [False, False, False, True]
    assert pause is not None and pause.reason == GOLD_REASON
    assert record.gold_evidence_no == pytest.approx(4 * WRONG_CLASS)
    assert (record.gold_seen, record.gold_correct) == (4, 0)


# One-answer gate. With the share taken as 1/2: "below" says yes 0.5 + 0.5 x 0.9 = 0.95 of the
# time, "at the bar" (a coin on the no items) 0.5 + 0.5 x 0.5 = 0.75.
SAID_IT, SAID_OTHER = math.log(0.95 / 0.75), math.log(0.05 / 0.25)  # +0.236, -1.609 nats
ONE_ANSWER_PAUSE = math.log(200)  # half the gate's budget per answer: 5.30 nats


@pytest.mark.parametrize(
    ("accepted", "rejected", "share"),
    [
        (0, 0, 1.0),  # no decision yet: 1/2 + 2 x 0.289, capped at 1 (no test)
        (40, 60, 0.5),  # 41/102 + 2 x 0.048 = 0.499, raised to 1/2
        (60, 40, 61 / 102 + 2 * math.sqrt(61 / 102 * 41 / 102 / 103)),  # 0.695
        (0, 10, 0.5),  # 1/12 + 2 x 0.077 = 0.237, raised to 1/2
    ],
)
def test_the_share_of_an_answer_is_taken_generously(accepted, rejected, share):
    assert generous_share(accepted, rejected) == pytest.approx(share)


def test_one_answer_rates_at_an_even_share():
    assert one_answer_rates(0.5, GATES) == (pytest.approx(0.95), pytest.approx(0.75))


def _labels(said: list[bool], accepted: int, rejected: int) -> tuple[WorkerRecord, list[bool]]:
    """One task per label vote; the record at the end and, per task, paused or not."""
    record, paused = WorkerRecord(), []
    for yes in said:
        label = (LabelAnswer(yes, accepted, rejected),)
        record, pause = gate_task(record, seconds_per_item=SLOW, gold=[], gates=GATES, labels=label)
        paused.append(pause is not None)
    return record, paused


def test_a_yes_clicker_is_paused_at_his_23rd_label_vote():
    # 22 x 0.236 = 5.20 < 5.30 <= 23 x 0.236 = 5.44, on a category decided 40 yes / 60 no;
    # his "says no" evidence sinks to the floor, -2 log(200)
    record, paused = _labels([True] * 23, accepted=40, rejected=60)

    assert paused == [False] * 22 + [True]
    assert record.said_yes_evidence == pytest.approx(23 * SAID_IT)
    assert record.said_no_evidence == pytest.approx(-2 * ONE_ANSWER_PAUSE)
    pause = pause_decision(record, GATES)
    assert pause is not None and pause.reason == ONE_ANSWER_REASON
    assert "control" not in pause.reason and "check" not in pause.reason


def test_a_no_clicker_is_paused_the_same_way():
    record, paused = _labels([False] * 23, accepted=60, rejected=40)

    assert paused == [False] * 22 + [True]
    assert record.said_no_evidence == pytest.approx(23 * SAID_IT)


def test_before_any_decision_the_one_answer_gate_waits():
    record, paused = _labels([True] * 200, accepted=0, rejected=0)

    assert not any(paused)
    assert (record.said_yes_evidence, record.said_no_evidence) == (0.0, 0.0)


def test_a_worker_who_says_yes_two_times_in_three_is_never_paused():
    # a yes-biased worker: per three votes 2 x 0.236 - 1.609 = -1.137 nats, so his evidence
    # rests on the floor, -2 log(200), after each "no"
    record, paused = _labels([True, True, False] * 100, accepted=40, rejected=60)

    assert not any(paused)
    assert record.said_yes_evidence == pytest.approx(-2 * ONE_ANSWER_PAUSE)
    record, _ = gate_task(
        record, seconds_per_item=SLOW, gold=[], gates=GATES, labels=(LabelAnswer(True, 40, 60),)
    )
    assert record.said_yes_evidence == pytest.approx(-2 * ONE_ANSWER_PAUSE + SAID_IT)
