"""The quality gates' sequential tests, on cases worked out by hand (defaults: bar 0.8, chance
0.5, one kind of control wrong 0.1, false-pause budget 0.01; speed 0.1 against 0.5)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from labeling.crowd.gates import (
    GOLD_REASON,
    ONE_ANSWER_REASON,
    PEER_REASON,
    ControlAnswer,
    GateSettings,
    LabelAnswer,
    WorkerRecord,
    crossing_chance,
    gate_task,
    generous_share,
    gold_thresholds,
    one_answer_rates,
    pause_decision,
    peer_evidence_add,
    peer_evidence_changes,
    peer_pause,
    peer_thresholds,
    peer_vote_evidence,
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


# Peer-agreement gate. A credit of P(yes) 0.99 from the item's other votes is taken as 0.95
# (peer_trust): at the bar a worker says yes there with probability 0.95 x 0.8 + 0.05 x 0.2 =
# 0.77, a coin 0.5. Each kind's test reads only the items the crowd calls that kind and takes
# the other kind's coin at 1: the yes-items test has him say yes on an item called yes 0.95 x
# 0.8 = 0.76 of the time at the bar, 0.95 x 0.1 = 0.095 below it; the no-items test is its
# mirror image.
AGREE, DISAGREE = math.log(0.5 / 0.77), math.log(0.5 / 0.23)  # -0.432, +0.777 nats
OWN_KIND_RIGHT, OWN_KIND_WRONG = math.log(0.095 / 0.76), math.log(0.905 / 0.24)  # -2.079, +1.327
# The peer gate spends its own budget, 0.3 %, so that with the control tests' (exactly 0.77 % at
# the bar, bench/gates.py) a worker at the bar is paused by either at most 1 % of the time:
# half of it for the coin test, a quarter for each kind's
PEER_PAUSE = (math.log(2 / 0.003), math.log(4 / 0.003), math.log(4 / 0.003))  # 6.50, 7.20


@pytest.mark.parametrize(
    ("said_yes", "p_yes", "evidence"),
    [
        (1, 0.99, (AGREE, OWN_KIND_RIGHT, 0.0)),
        (0, 0.99, (DISAGREE, OWN_KIND_WRONG, 0.0)),
        # the mirror image on an item the crowd calls no
        (0, 0.01, (AGREE, 0.0, OWN_KIND_RIGHT)),
        (1, 0.01, (DISAGREE, 0.0, OWN_KIND_WRONG)),
        # a call under peer_trust is taken as it is: yes at the bar 0.9 x 0.8 + 0.1 x 0.2 =
        # 0.74; yes-items test 0.9 x 0.1 against 0.9 x 0.8
        (1, 0.9, (math.log(0.5 / 0.74), math.log(0.09 / 0.72), 0.0)),
        # no credit, no evidence
        (1, float("nan"), (0.0, 0.0, 0.0)),
    ],
)
def test_each_credited_vote_is_a_likelihood_ratio_given_the_crowds_call(said_yes, p_yes, evidence):
    assert peer_vote_evidence([said_yes], [p_yes], GATES).tolist() == [
        [pytest.approx(value, abs=1e-12) for value in evidence]
    ]


def test_a_replaced_credit_leaves_the_evidence_of_the_latest_one_only():
    # given worker 0's yes credited at P(yes) 0.99 and worker 1's no at 0.9
    said, first = [1, 0], [0.99, 0.9]
    none = [float("nan")] * 2
    credited = peer_evidence_changes([0, 1], said, none, first, 2, GATES)

    # when the items are decided again the other way, then both credits are dropped
    moved = peer_evidence_changes([0, 1], said, first, [0.01, float("nan")], 2, GATES)
    total = credited + moved

    assert total.tolist() == [
        [pytest.approx(v, abs=1e-12) for v in (DISAGREE, 0.0, OWN_KIND_WRONG)],
        [0.0, 0.0, 0.0],
    ]


def test_a_withdrawn_credit_can_only_lower_the_evidence():
    # given a long agreeing record floored at minus twice each threshold, 40 votes each way
    said = [1, 0] * 20
    calls = [0.99, 0.01] * 20
    none = [float("nan")] * 40
    floor = tuple(-2 * value for value in PEER_PAUSE)
    added = peer_evidence_changes([0] * 40, said, none, calls, 1, GATES)[0]
    evidence = peer_evidence_add((0.0, 0.0, 0.0), tuple(added.tolist()), GATES)
    assert evidence == tuple(pytest.approx(value) for value in floor)

    # when their items go back to open and the credits are taken back
    taken = peer_evidence_changes([0] * 40, said, calls, none, 1, GATES)[0]

    # then the evidence stays where it was: taking back the agreement the floor had already
    # cut off would raise it by 40 x 0.432 = 17.3 nats, far past the pause at 6.50, though
    # every credit he had agreed with the crowd (before, it did: a worker at the floor whose
    # agreeing credits were taken back in bulk was paused)
    assert taken.tolist() == [0.0, 0.0, 0.0]
    assert peer_evidence_add(evidence, tuple(taken.tolist()), GATES) == evidence


def _peer_run(said: list[int], p_yes: list[float]) -> tuple[tuple[float, ...], list[bool]]:
    """One credit per decision, as peer_record_add takes them: the evidence at the end and,
    per credit, paused or not."""
    evidence: tuple[float, ...] = (0.0, 0.0, 0.0)
    paused = []
    for yes, q in zip(said, p_yes, strict=True):
        change = peer_evidence_changes([0], [yes], [float("nan")], [q], 1, GATES)[0]
        evidence = peer_evidence_add(evidence, tuple(change.tolist()), GATES)
        paused.append(peer_pause(evidence, 0.0, 0.0, GATES) is not None)
    return evidence, paused


def test_the_peer_thresholds_spend_their_own_budget_split_as_the_control_tests_do():
    assert GATES.peer_false_pause == 0.003
    assert peer_thresholds(GATES) == tuple(pytest.approx(value) for value in PEER_PAUSE)
    # the control tests keep theirs
    assert gold_thresholds(GATES) == (pytest.approx(math.log(200)), pytest.approx(math.log(400)))


def test_a_worker_who_contradicts_the_crowd_on_both_kinds_is_paused_at_his_9th_credit():
    # the coin test: 8 x 0.777 = 6.22 < log(2 / 0.003) = 6.50 <= 9 x 0.777 = 6.99; each kind's
    # test gets +1.327 per contradiction on its own kind: 5 x 1.327 = 6.64 < 7.20
    evidence, paused = _peer_run([1 - i % 2 for i in range(9)], [0.01, 0.99] * 4 + [0.01])

    assert paused == [False] * 8 + [True]
    assert evidence == (
        pytest.approx(9 * DISAGREE),
        pytest.approx(4 * OWN_KIND_WRONG),
        pytest.approx(5 * OWN_KIND_WRONG),
    )


def test_a_no_clicker_on_items_the_crowd_calls_yes_is_paused_at_his_6th_credit():
    # the yes-items test: 5 x 1.327 = 6.64 < log(4 / 0.003) = 7.20 <= 6 x 1.327 = 7.96; the coin
    # test only 6 x 0.777 = 4.66
    evidence, paused = _peer_run([0] * 6, [0.99] * 6)

    assert paused == [False] * 5 + [True]
    assert evidence == (pytest.approx(6 * DISAGREE), pytest.approx(6 * OWN_KIND_WRONG), 0.0)


def test_a_long_agreeing_record_is_floored_at_twice_each_threshold():
    evidence, paused = _peer_run([1, 0] * 100, [0.99, 0.01] * 100)

    assert not any(paused)
    assert evidence == tuple(pytest.approx(-2 * value) for value in PEER_PAUSE)


def _expected_ratio(p_yes: float, truth_yes: float, sens: float, spec: float) -> np.ndarray:
    """Per test, E[likelihood ratio] of one vote credited at ``p_yes`` by a worker with these
    coins, on an item whose truth is yes with probability ``truth_yes``."""
    says_yes = truth_yes * sens + (1 - truth_yes) * (1 - spec)
    ratios = np.exp(peer_vote_evidence([1, 0], [p_yes, p_yes], GATES))
    return says_yes * ratios[0] + (1 - says_yes) * ratios[1]


CALLS = [0.01, 0.05, 0.1, 0.4, 0.6, 0.9, 0.95, 0.99, 1.0]


@pytest.mark.parametrize("calls_right", ["as they say", "always"])
@pytest.mark.parametrize("right", [0.8, 0.9, 1.0])
@pytest.mark.parametrize("p_yes", CALLS)
def test_the_coin_test_is_a_supermartingale_for_a_worker_at_or_above_the_bar(
    calls_right, right, p_yes
):
    # given a call right as often as it says (up to peer_trust) or always, and a worker right
    # `right` of the time on both kinds of items
    q = min(max(p_yes, 1 - GATES.peer_trust), GATES.peer_trust)
    truth_yes = q if calls_right == "as they say" else float(p_yes > 0.5)
    expectation = _expected_ratio(p_yes, truth_yes, right, right)[0]

    # then the coin test's likelihood ratio has expectation at most 1 (exactly 1 at the bar)
    assert expectation <= 1 + 1e-12
    if right == 0.8 and calls_right == "as they say":
        assert expectation == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("calls_right", ["as they say", "always"])
@pytest.mark.parametrize(("own", "other"), [(0.8, 0.0), (0.8, 0.5), (0.8, 1.0), (0.95, 0.3)])
@pytest.mark.parametrize("p_yes", CALLS)
def test_each_kinds_test_is_a_supermartingale_for_a_worker_at_the_bar_on_that_kind(
    calls_right, own, other, p_yes
):
    # given a call right as often as it says (up to peer_trust) or always, and a worker right
    # `own` of the time on one kind of item and `other` on the other, whatever that is
    q = min(max(p_yes, 1 - GATES.peer_trust), GATES.peer_trust)
    truth_yes = q if calls_right == "as they say" else float(p_yes > 0.5)
    yes_items = _expected_ratio(p_yes, truth_yes, own, other)[1]
    no_items = _expected_ratio(p_yes, truth_yes, other, own)[2]

    # then that kind's test has expectation at most 1 (exactly 1 at the bar on its own kind's
    # calls, perfect on the other kind; the other kind's calls leave it alone)
    assert (yes_items <= 1 + 1e-12, no_items <= 1 + 1e-12) == (True, True)
    if (own, other, calls_right) == (0.8, 1.0, "as they say"):
        assert (yes_items if p_yes > 0.5 else no_items) == pytest.approx(1.0)
    assert (no_items if p_yes > 0.5 else yes_items) == 1.0


def _peer_crossing(test: int, steps: int) -> float:
    """P(the peer test reaches its threshold within ``steps`` credits), exact over the
    reachable sums, in its worst case: every credit 0.95 sure (0.99 taken at peer_trust) and
    right that often, on items the crowd calls yes (the no-items test: on no items), and a
    worker at the bar (for a kind's test: on that kind, and never wrong on the other), who so
    agrees with the call 0.77 of the time (a kind's test: 0.76)."""
    p_yes = 0.01 if test == 2 else 0.99
    agree_yes = 1 if test != 2 else 0
    agree = 0.77 if test == 0 else 0.76
    ratio = peer_vote_evidence([agree_yes, 1 - agree_yes], [p_yes] * 2, GATES)[:, test]
    outcomes = [(float(ratio[0]), agree), (float(ratio[1]), 1 - agree)]
    return crossing_chance(outcomes, peer_thresholds(GATES)[test], steps)


def test_a_worker_at_the_bar_is_paused_within_200_credits_at_most_as_budgeted():
    # exact: by the coin test (budget 0.15 %), by each kind's (0.075 %); bench/gates.py: the
    # same within 1,000 credits
    assert _peer_crossing(0, 200) == pytest.approx(0.0011, abs=1e-4)
    assert _peer_crossing(1, 200) == pytest.approx(0.0005, abs=1e-4)
    assert _peer_crossing(2, 200) == pytest.approx(0.0005, abs=1e-4)


def test_the_peer_pause_names_the_reason_and_curators_get_the_evidence():
    assert peer_pause((6.50, 7.19, 7.19), 3.0, 10.0, GATES) is None

    decision = peer_pause((6.61, 4.91, 3.39), 0.1, 7.0, GATES)

    assert decision is not None
    assert (
        decision.reason
        == PEER_REASON
        == (
            "Too many of your answers were unlikely to be right. Look closely at each image and "
            "re-read the category definition; a curator can resume your account."
        )
    )
    assert not any(ch.isdigit() for ch in decision.reason)
    assert decision.detail == (
        "Crowd agreement: 0.1 of 7.0 credited label votes agreed with the crowd's call. "
        "Evidence (nats, pause at 6.50 / 7.20): all 6.61, yes items 4.91, no items 3.39 "
        "(bar 80%, call at most 95% sure)."
    )


def _crossing_by_paths(outcomes, threshold: float, steps: int) -> float:
    """crossing_chance by walking every one of the len(outcomes) ** steps paths."""
    total = 0.0
    for path in itertools.product(outcomes, repeat=steps):
        value, crossed = 0.0, False
        for step, _ in path:
            value = max(-2 * threshold, value + step)
            crossed = crossed or value >= threshold
        total += math.prod(chance for _, chance in path) if crossed else 0.0
    return total


def test_crossing_chance_sums_the_paths_that_reach_the_threshold_under_the_floor():
    # given steps of +1 or -1 nat at even chances, threshold 1.5 (floor -3); and steps of
    # +0.2 or -1, threshold 0.25, whose floor (-0.5) lets four steps up cross after a step down
    even, floored = [(1.0, 0.5), (-1.0, 0.5)], [(0.2, 0.5), (-1.0, 0.5)]

    # when 2, 4 and 6 steps are taken
    # then only +1 +1 crosses within 2; within 4 also -1 +1 +1 +1 and +1 -1 +1 +1 (1/16 each);
    # and with the floor the chance is what walking every path gives (without the floor no
    # path starting with -1 could cross within 6)
    assert crossing_chance(even, 1.5, 2) == 0.25
    assert crossing_chance(even, 1.5, 4) == 0.25 + 2 / 16
    assert crossing_chance(floored, 0.25, 6) == pytest.approx(
        _crossing_by_paths(floored, 0.25, 6), abs=1e-15
    )
    assert crossing_chance(floored, 0.25, 6) > crossing_chance(floored, 0.25, 4) == 0.25
