"""Worker quality gates as sequential tests: control items, speed, one answer, crowd agreement.

Each gate is Wald's sequential probability ratio test (SPRT), kept open-ended: a worker's
evidence is the log likelihood ratio "below the bar" against "at the bar", summed over every
control answer (or every task, for speed) since the last resume, and the worker is paused once
it reaches log(1 / alpha). For a worker at or above the bar that sum is a supermartingale, so
by Ville's inequality the chance it ever gets there, however long the worker stays, is at most
alpha: repeated looks are paid for. The sum is floored at -2 log(1 / alpha) so a long honest
record cannot hide a worker who turns bad later; the floor costs little (bench/gates.py computes
the exact false-pause rates).

Three control-item tests share the budget: all control answers, accuracy 0.5 (a coin) against
the bar (half of alpha); and, per known answer, control items whose answer is yes and those
whose answer is no, each at accuracy 0.1 against the bar (a quarter each), which catches a
worker who always says yes (or never selects) on a pool whose controls are mostly yes.

The one-answer gate reads a worker's counted label votes instead, where the truth is unknown
but the crowd's decisions on the category give a share of yes (pi): a worker right on every
yes item and no better than a coin (gold_chance) on the no items says yes with probability
pi + (1 - pi) / 2; one who gets no items wrong 90 % of the time (class_wrong, the per-answer
control test's "below") says yes with probability pi + (1 - pi) x 0.9. A yes-clicker is so
caught within about twenty label votes, long before a control item comes his way, while an
honest worker, even one who says yes more often than the crowd (yes-biased), drifts away from
the threshold. The decisions are a biased sample of the items (a side that needs more evidence
is decided less often; bench/consensus_live.py has crowds where the decided share of yes is
0.6 against a true 0.3), so pi is taken generously: the upper end of its Beta posterior (mean
plus two standard deviations: near 1 while decisions are few) and at least 1/2. Either can
only make the test more lenient. The same test runs on "no" with the share of no; the two
share the gate's budget, half each.

The peer-agreement gate reads each counted label vote once the crowd has decided its item
(or sent it to review): the item's other votes, without his, give P(yes) = q, taken at most
``peer_trust`` sure either way, and a worker with sensitivity s and specificity c gives a yes
with probability q s + (1 - q)(1 - c). Three tests share the gate's own budget (alpha:
peer_false_pause, 0.3 %, so that a worker at the bar is paused by it or by the control tests
at most 1 % of the time) as the control tests share theirs: a coin (gold_chance on both
coins) against the bar (half of alpha); and per kind of item, on the items the crowd calls
yes (or no) only, right there only class_wrong of the time against the bar, the other coin
taken at 1 in both (a quarter each). Each test's evidence is the log likelihood ratio summed
over his credited votes; a vote credited again when its item is decided
again has its old term replaced (peer_evidence_changes), so the sum is the one over his votes'
latest credits, floored at minus twice its threshold when a decision's credits are added;
a credit taken back (its item open again) can only lower it, since the floor may already have
cut off the agreement it added (an agreeing vote taken back and credited again so counts
twice, in the worker's favour).

When is that a supermartingale, so that Ville's inequality bounds the chance of ever pausing a
worker at the bar by alpha? For the coin test, when the worker is right at least gold_bar of
the time on both kinds of items and the crowd's call is right at least as often as the clipped
q says; for a kind's test, when he is right at least gold_bar of the time on that kind (on the
other, whatever he does: that is why the other coin is taken at 1), and the crowd's calls of
that kind are right that often (calls of the other kind, however right, would push it up if it
read them: it does not). The calls are noisy (q 0.9-0.95 was right 88-99 % of the time on the
benchmark crowds, 0.95-0.99 94-99.9 %: bench/consensus_live.py prints it),
and they are biased where the crowd is: colluders or adversaries with good control records
carry some decisions before they are caught, and then an honest worker who contradicts them
gains evidence until those decisions are reopened and their credits replaced. peer_trust (0.95)
is the margin for both; what it costs and what it leaves is measured there (honest workers
right >= 80 % of the time paused at most about 0.5 % per crowd). Against a random spammer the coin
test gains about 0.17 nats per credited vote, against a worker who answers wrong 0.6-0.8, and
a kind's test about 1.3 per vote a yes-clicker gives on an item the crowd calls no; a control
answer carries 0.22 nats against a coin and comes ten times rarer. The gate so pauses spammers
and adversaries within a few dozen label votes, including the worker who answers controls
right and the rest wrong, whom no control test can see.

The blind-check test reads what no worker can game: the label votes cast on a contested call a
curator settles afterwards (labeling.services.contested), right class_wrong of the time against the
bar, with its own alpha (blind_false_pause, 0.03 %; exact worst case 0.015 %, so the three
budgets stay within the 1 %). It is what catches a bloc that answers the controls right and
carries the crowd's calls, which the peer gate, reading those calls, cannot.

What the worker is told names the reason and nothing else: not which items were controls, how
many, or their answers. Curators get the evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class GateSettings:
    """``gold_bar``: accuracy on control items (per item, a grid counts per cell) an honest
    worker is protected at; ``gold_chance``: a worker who answers at random; ``class_wrong``:
    a worker who gets one kind of control item (yes or no) wrong almost always;
    ``fast_honest_rate`` / ``fast_bot_rate``: share of tasks answered under
    ``min_seconds_per_item`` seconds per item by an honest worker / by one clicking through;
    ``false_pause``: the chance a worker at the bar is ever paused, per gate (alpha);
    ``peer_trust``: how sure the crowd's call on an item (its other votes' P(yes)) is taken at
    most by the peer-agreement gate; ``peer_false_pause``: that gate's own alpha (it tests the
    same bar as the control tests, on other evidence: the two share the 1 % the bar allows,
    the control tests' exact 0.77 % worst case and this one's 0.20 %, bench/gates.py);
    ``blind_false_pause``: the blind-check test's alpha (blind_step)."""

    min_seconds_per_item: float = 0.4
    fast_honest_rate: float = 0.1
    fast_bot_rate: float = 0.5
    gold_bar: float = 0.8
    gold_chance: float = 0.5
    class_wrong: float = 0.1
    false_pause: float = 0.01
    peer_trust: float = 0.95
    peer_false_pause: float = 0.003
    blind_false_pause: float = 0.0003


@dataclass(frozen=True)
class ControlAnswer:
    """One answered control item (a grid: one control cell): its known answer, and whether
    the worker got it right."""

    positive: bool
    right: bool


@dataclass(frozen=True)
class LabelAnswer:
    """One counted yes/no label vote: whether it said yes, and the crowd's decisions so far on
    its category (accepted and rejected items)."""

    yes: bool
    accepted: int
    rejected: int


@dataclass(frozen=True)
class WorkerRecord:
    """What the gates look at: lifetime control counts (for curators), and the evidence (log
    likelihood ratios) of each sequential test since the last resume."""

    gold_seen: int = 0
    gold_correct: int = 0
    gold_evidence: float = 0.0
    gold_evidence_yes: float = 0.0
    gold_evidence_no: float = 0.0
    fast_evidence: float = 0.0
    said_yes_evidence: float = 0.0
    said_no_evidence: float = 0.0


@dataclass(frozen=True)
class Pause:
    """``reason`` is shown to the worker; ``detail`` (the evidence) only to curators."""

    reason: str
    detail: str


GOLD_REASON = (
    "Your answers to check questions were below the required accuracy. Re-read the category "
    "definitions; a curator can resume your account."
)


ONE_ANSWER_REASON = (
    "Your answers were nearly always the same, whatever the images showed. Look at each image "
    "before answering; a curator can resume your account."
)


PEER_REASON = (
    "Too many of your answers were unlikely to be right. Look closely at each image and "
    "re-read the category definition; a curator can resume your account."
)


def _threshold(alpha: float) -> float:
    return math.log(1.0 / alpha)


def sprt_step(evidence: float, *, bad: float, good: float, hit: bool, alpha: float) -> float:
    """One SPRT step: ``hit`` happened with probability ``bad`` under "below the bar" and
    ``good`` under "at the bar"; the sum floored at -2 log(1 / alpha)."""
    ratio = bad / good if hit else (1.0 - bad) / (1.0 - good)
    return max(-2.0 * _threshold(alpha), evidence + math.log(ratio))


def crossing_chance(outcomes: list[tuple[float, float]], threshold: float, steps: int) -> float:
    """P(a sequential test's sum, floored at -2 x ``threshold`` as the gates floor theirs,
    reaches ``threshold`` from 0 within ``steps`` steps), each step adding one of
    ``outcomes`` (log likelihood ratio, chance); exact, over the reachable sums (rounded to
    1e-9). What bench/gates.py reports as each gate's worst-case false-pause rate."""
    states, crossed = {0.0: 1.0}, 0.0
    for _ in range(steps):
        after: dict[float, float] = {}
        for value, weight in states.items():
            for step, chance in outcomes:
                moved = max(-2.0 * threshold, value + step)
                if moved >= threshold:
                    crossed += weight * chance
                else:
                    key = round(moved, 9)
                    after[key] = after.get(key, 0.0) + weight * chance
        states = after
    return crossed


def gold_thresholds(gates: GateSettings) -> tuple[float, float]:
    """Pause thresholds (nats) of the pooled test and of each per-answer test."""
    return _threshold(gates.false_pause / 2), _threshold(gates.false_pause / 4)


def generous_share(decided: int, other: int) -> float:
    """The share of one answer among the crowd's decisions (``decided`` of them, ``other``
    the other way), taken generously: the Beta(1, 1) posterior's mean plus two standard
    deviations, at least 1/2, at most 1."""
    n = decided + other + 2.0
    mean = (decided + 1.0) / n
    return min(1.0, max(0.5, mean + 2.0 * math.sqrt(mean * (1.0 - mean) / (n + 1.0))))


def one_answer_rates(share: float, gates: GateSettings) -> tuple[float, float]:
    """(below, at the bar): how often a worker right on every item of one answer, which the
    items show with probability ``share``, gives it, if he is wrong on the other answer's items
    with probability 1 - class_wrong (below), or 1 - gold_chance (a coin there)."""
    wrong_below, wrong_at_bar = 1.0 - gates.class_wrong, 1.0 - gates.gold_chance
    return share + (1.0 - share) * wrong_below, share + (1.0 - share) * wrong_at_bar


def _one_answer_step(evidence: float, share: float, said: bool, gates: GateSettings) -> float:
    below, at_bar = one_answer_rates(share, gates)
    if below >= 1.0 or below <= at_bar:  # the crowd gives this answer always: no test
        return evidence
    return sprt_step(evidence, bad=below, good=at_bar, hit=said, alpha=gates.false_pause / 2)


def record_task(
    record: WorkerRecord,
    *,
    seconds_per_item: float,
    gold: list[ControlAnswer],
    gates: GateSettings,
    labels: tuple[LabelAnswer, ...] = (),
) -> WorkerRecord:
    """The record after one answered task, with one ControlAnswer per control item in it and
    one LabelAnswer per counted yes/no label vote."""
    pooled, per_class = gates.false_pause / 2, gates.false_pause / 4
    evidence = record.gold_evidence
    by_class = {True: record.gold_evidence_yes, False: record.gold_evidence_no}
    for answer in gold:
        evidence = sprt_step(
            evidence, bad=gates.gold_chance, good=gates.gold_bar, hit=answer.right, alpha=pooled
        )
        by_class[answer.positive] = sprt_step(
            by_class[answer.positive],
            bad=gates.class_wrong,
            good=gates.gold_bar,
            hit=answer.right,
            alpha=per_class,
        )
    said_yes, said_no = record.said_yes_evidence, record.said_no_evidence
    for label in labels:
        yes_share = generous_share(label.accepted, label.rejected)
        no_share = generous_share(label.rejected, label.accepted)
        said_yes = _one_answer_step(said_yes, yes_share, label.yes, gates)
        said_no = _one_answer_step(said_no, no_share, not label.yes, gates)
    fast = seconds_per_item < gates.min_seconds_per_item
    return replace(
        record,
        gold_seen=record.gold_seen + len(gold),
        gold_correct=record.gold_correct + sum(answer.right for answer in gold),
        gold_evidence=evidence,
        gold_evidence_yes=by_class[True],
        gold_evidence_no=by_class[False],
        said_yes_evidence=said_yes,
        said_no_evidence=said_no,
        fast_evidence=sprt_step(
            record.fast_evidence,
            bad=gates.fast_bot_rate,
            good=gates.fast_honest_rate,
            hit=fast,
            alpha=gates.false_pause,
        ),
    )


def _gold_detail(record: WorkerRecord, gates: GateSettings) -> str:
    pooled, per_class = gold_thresholds(gates)
    return (
        f"Control items: {record.gold_correct} of {record.gold_seen} right. Evidence (nats, "
        f"pause at {pooled:.2f} / {per_class:.2f}): all {record.gold_evidence:.2f}, "
        f"yes items {record.gold_evidence_yes:.2f}, no items {record.gold_evidence_no:.2f} "
        f"(bar {gates.gold_bar:.0%})."
    )


def gold_pause(record: WorkerRecord, gates: GateSettings) -> Pause | None:
    """Whether the control tests pause the worker (one of them at its threshold)."""
    pooled, per_class = gold_thresholds(gates)
    if (
        record.gold_evidence >= pooled
        or record.gold_evidence_yes >= per_class
        or record.gold_evidence_no >= per_class
    ):
        return Pause(reason=GOLD_REASON, detail=_gold_detail(record, gates))
    return None


def pause_decision(record: WorkerRecord, gates: GateSettings) -> Pause | None:
    """Whether this worker must pause: a reason for them and the evidence for curators."""
    if record.fast_evidence >= _threshold(gates.false_pause):
        return Pause(
            reason=(
                f"Too many of your recent tasks were answered faster than "
                f"{gates.min_seconds_per_item:g} s per image. Take a little more time on each "
                "one; a curator can resume your account."
            ),
            detail=(
                f"Speed evidence {record.fast_evidence:.2f} nats reached "
                f"{_threshold(gates.false_pause):.2f}: tasks under "
                f"{gates.min_seconds_per_item:g} s per image far more often than "
                f"{gates.fast_honest_rate:.0%}."
            ),
        )
    gold = gold_pause(record, gates)
    if gold is not None:
        return gold
    one_answer = _threshold(gates.false_pause / 2)
    if record.said_yes_evidence >= one_answer or record.said_no_evidence >= one_answer:
        return Pause(
            reason=ONE_ANSWER_REASON,
            detail=(
                f"One-answer evidence (nats, pause at {one_answer:.2f}): says yes "
                f"{record.said_yes_evidence:.2f}, says no {record.said_no_evidence:.2f}, against "
                "the share of each among the crowd's decisions."
            ),
        )
    return None


def gate_task(
    record: WorkerRecord,
    *,
    seconds_per_item: float,
    gold: list[ControlAnswer],
    gates: GateSettings,
    labels: tuple[LabelAnswer, ...] = (),
) -> tuple[WorkerRecord, Pause | None]:
    """One answered task through every gate, as the answer path takes it: the record after it
    (record_task) and whether the worker must now pause (pause_decision)."""
    record = record_task(
        record, seconds_per_item=seconds_per_item, gold=gold, gates=gates, labels=labels
    )
    return record, pause_decision(record, gates)


PEER_TESTS = ("peer_evidence", "peer_evidence_yes", "peer_evidence_no")
"""The peer-agreement gate's three tests, as WorkerProfile columns: right like a coin; says no
on the items the crowd calls yes; says yes on those it calls no (each against the bar)."""


def peer_vote_evidence(
    answers: ArrayLike, p_yes_others: ArrayLike, gates: GateSettings
) -> NDArray[np.float64]:
    """(votes, 3), per credited label vote (``answers`` 1 yes, 0 no; ``p_yes_others`` the
    P(yes) of its item's other votes it is credited with, NaN: not credited, 0) and per test
    (PEER_TESTS): the log likelihood ratio of the answer under "below" against "at the bar",
    with the crowd's call taken at most ``peer_trust`` sure. A worker with sensitivity s and
    specificity c says yes with probability q s + (1 - q)(1 - c). The coin test: (s, c) at
    gold_chance against gold_bar. The yes-items test, on the items the crowd calls yes only
    (0 elsewhere): s at class_wrong against gold_bar, c = 1 in both; the no-items test the
    other way round. Taking the other coin at 1, and reading only the calls of its own kind,
    make each per-kind test a supermartingale for every worker at the bar on that kind,
    whatever he does on the other, wherever those calls are right at least as often as they
    say, however right the other kind's are."""
    yes = np.asarray(answers, dtype=np.float64)[:, None]
    raw = np.asarray(p_yes_others, dtype=np.float64)[:, None]
    credited = ~np.isnan(raw)
    q = np.clip(np.where(credited, raw, 0.5), 1.0 - gates.peer_trust, gates.peer_trust)
    read = np.concatenate([credited, credited & (raw > 0.5), credited & (raw < 0.5)], axis=1)
    bar, chance, wrong = gates.gold_bar, gates.gold_chance, gates.class_wrong

    def said(sens: list[float], spec: list[float]) -> NDArray[np.float64]:
        p_yes = q * np.array([sens]) + (1.0 - q) * (1.0 - np.array([spec]))
        chance_of_answer: NDArray[np.float64] = np.where(yes == 1, p_yes, 1.0 - p_yes)
        return chance_of_answer

    below = said([chance, wrong, 1.0], [chance, 1.0, wrong])
    at_bar = said([bar, bar, 1.0], [bar, 1.0, bar])
    evidence: NDArray[np.float64] = np.where(read, np.log(below / at_bar), 0.0)
    return evidence


def peer_evidence_changes(
    worker: ArrayLike,
    answers: ArrayLike,
    credited: ArrayLike,
    p_yes_others: ArrayLike,
    n_workers: int,
    gates: GateSettings,
) -> NDArray[np.float64]:
    """(n_workers, 3) change to each worker's peer evidence (PEER_TESTS) when each vote's
    credit moves from ``credited`` (NaN: never) to ``p_yes_others`` (NaN: none now), as
    labeling.consensus.peer_count_changes does for the counts: each vote counts once, with its
    item's latest decision. A credit taken back (its item open again) can only lower the
    evidence: the agreement it had added may have been cut off by the floor already, and
    taking it back again would raise a long good record past the threshold in one batch."""
    w = np.asarray(worker, dtype=np.int64)
    change = peer_vote_evidence(answers, p_yes_others, gates) - peer_vote_evidence(
        answers, credited, gates
    )
    taken_back = np.isnan(np.asarray(p_yes_others, dtype=np.float64)) & ~np.isnan(
        np.asarray(credited, dtype=np.float64)
    )
    change = np.where(taken_back[:, None], np.minimum(change, 0.0), change)
    return np.stack(
        [np.bincount(w, weights=change[:, k], minlength=n_workers) for k in range(3)], axis=1
    )


def peer_thresholds(gates: GateSettings) -> tuple[float, float, float]:
    """Pause thresholds (nats) of PEER_TESTS: half the gate's own budget (peer_false_pause)
    for the coin, a quarter for each kind of item, as the control tests share theirs; each is
    floored at minus twice its threshold."""
    per_class = _threshold(gates.peer_false_pause / 4)
    return _threshold(gates.peer_false_pause / 2), per_class, per_class


def peer_evidence_add(
    evidence: tuple[float, ...], change: tuple[float, ...], gates: GateSettings
) -> tuple[float, ...]:
    """The peer evidence (PEER_TESTS) after a batch of credits (peer_evidence_changes),
    floored."""
    return tuple(
        max(-2.0 * threshold, value + added)
        for value, added, threshold in zip(evidence, change, peer_thresholds(gates), strict=True)
    )


def peer_pause(
    evidence: tuple[float, ...], agreed: float, judged: float, gates: GateSettings
) -> Pause | None:
    """Whether the peer-agreement evidence (PEER_TESTS) pauses the worker; ``agreed`` of
    ``judged``: his credited votes the crowd's call agreed with (expected counts, for
    curators)."""
    thresholds = peer_thresholds(gates)
    if all(value < threshold for value, threshold in zip(evidence, thresholds, strict=True)):
        return None
    coin, yes_items, no_items = evidence
    return Pause(
        reason=PEER_REASON,
        detail=(
            f"Crowd agreement: {agreed:.1f} of {judged:.1f} credited label votes agreed with "
            f"the crowd's call. Evidence (nats, pause at {thresholds[0]:.2f} / "
            f"{thresholds[1]:.2f}): all {coin:.2f}, yes items {yes_items:.2f}, no items "
            f"{no_items:.2f} (bar {gates.gold_bar:.0%}, call at most {gates.peer_trust:.0%} sure)."
        ),
    )


BLIND_REASON = (
    "Too many of your answers were found wrong when a curator checked the images. Look "
    "closely at each image and re-read the category definition; a curator can resume your "
    "account."
)


def blind_threshold(gates: GateSettings) -> float:
    """Pause threshold (nats) of the blind-check test."""
    return _threshold(gates.blind_false_pause)


def blind_term(right: bool | None, gates: GateSettings) -> float:
    """One blind check's log likelihood ratio: right class_wrong of the time (below) against
    gold_bar (at the bar); 0 for a vote not checked (None)."""
    if right is None:
        return 0.0
    bad, good = gates.class_wrong, gates.gold_bar
    return math.log(bad / good) if right else math.log((1.0 - bad) / (1.0 - good))


def blind_change(before: bool | None, after: bool | None, gates: GateSettings) -> float:
    """The change to a worker's blind-check evidence when one vote's check moves from
    ``before`` to ``after`` (None: not checked; a curator may decide an item again, or lift his
    decision). The old term is taken back only where that lowers the evidence, as the peer
    gate takes its credits back (peer_evidence_changes): the floor may already have cut off a
    right answer's term, and taking it back in full would raise a long good record at once."""
    return min(-blind_term(before, gates), 0.0) + blind_term(after, gates)


def blind_evidence_add(evidence: float, change: float, gates: GateSettings) -> float:
    """The blind-check evidence after a batch of changes, floored at minus twice the
    threshold."""
    return max(-2.0 * blind_threshold(gates), evidence + change)


def blind_pause(evidence: float, seen: int, correct: int, gates: GateSettings) -> Pause | None:
    """Whether the blind-check evidence pauses the worker.

    A curator's decision on a contested call (an override, or making it a control) checks
    every label vote cast on it before: votes nobody could have known would be checked, unlike
    control items, which a worker who can tell them apart answers right while voting wrong
    elsewhere.
    The test is Wald's, right class_wrong of the time against gold_bar (a wrong answer adds
    1.50 nats, a right one takes 2.08 away), so it catches the worker who is nearly always
    wrong on the items curators settle, within 6 checks; with its own alpha
    (blind_false_pause) it pauses a worker at the bar at most 0.015 % of the time. Curators
    settle contested items (labeling.services.contested): where a worker with a good control
    record was paused for disagreeing with the crowd, so the checks fall where colluders and
    adversaries who spot controls pushed the calls."""
    threshold = blind_threshold(gates)
    if evidence < threshold:
        return None
    return Pause(
        reason=BLIND_REASON,
        detail=(
            f"Curators' checks: {correct} of {seen} label votes right on items a curator "
            f"decided after the vote. Evidence {evidence:.2f} nats (pause at {threshold:.2f}; "
            f"bar {gates.gold_bar:.0%})."
        ),
    )
