"""The platform's quality gates inside bench/consensus_live.py (pure numpy plus the gates'
own pure functions, labeling.crowd.gates).

Every answered task goes through ``record_task`` and ``pause_decision`` with the default
``GateSettings``, as the answer path does (labeling.services.answers): a label vote is one
task, a control item another (its known answer drawn from the crowd's class priors, answered
right as the worker's true matrix on control items says). Answers are taken in order within a
round: a worker paused part way through a round never cast his later votes of that round, and
his places in every item's queue go to the workers behind him. Each item's queue is widened
with a reserve of distinct workers (drawn apart from the main stream, so the first slots are
the ones ``--no-gates`` sees), and an item whose queue runs dry goes to review. The
peer-agreement gate runs where the credits are given (``peer_credit``), not per task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from consensus_crowds import COLLUDER, HONEST, KINDS, WorkerPool, draw_answers, draw_workers
from numpy.typing import NDArray

from labeling.crowd.gates import (
    ControlAnswer,
    GateSettings,
    LabelAnswer,
    WorkerRecord,
    blind_change,
    blind_evidence_add,
    blind_pause,
    gate_task,
    peer_evidence_changes,
    peer_thresholds,
)

RESERVE = 15
"""Extra queue slots per item for the places paused workers leave."""
SLOW = 5.0
"""Seconds per image of every simulated answer: the speed gate is not simulated."""
DEAD = -1
"""A queue slot with nobody in it."""


@dataclass
class Crew:
    """The gates' view of each worker: his record, whether and when he was paused."""

    records: list[WorkerRecord]
    paused: NDArray[np.bool_]
    paused_votes: NDArray[np.float64]  # label votes he had cast when paused; NaN: never
    cast: NDArray[np.int64]  # label votes cast
    positive_share: float  # P(a control item's known answer is yes)
    gold_right: NDArray[np.float64]  # (W, 2): P(right on a control) whose answer is no, yes
    rng: np.random.Generator
    gates: GateSettings
    peer_evidence: NDArray[np.float64]  # (W, 3): the peer-agreement gate's (PEER_TESTS), nats
    by_peers: NDArray[np.bool_]  # paused by the peer-agreement gate
    blind: NDArray[np.float64]  # (W, 3): blind checks seen, right, and their test's evidence
    by_blind: NDArray[np.bool_]  # paused by the blind-check test
    resumed: NDArray[np.int64]  # times a curator resumed him (resume_cleared)
    peer_gate: bool = True  # --no-peer-gate: that gate is not run
    suspects_answered_controls: bool = False  # a suspect must have answered a control
    resume_blind_clear: bool = True  # resume only with blind evidence at or below 0


def crew_for(pool: WorkerPool, priors: NDArray[np.float64], seed: int) -> Crew:
    """Nobody paused yet; the gates' own random stream (control answers' classes)."""
    n = pool.n_workers
    return Crew(
        records=[WorkerRecord() for _ in range(n)],
        paused=np.zeros(n, bool),
        paused_votes=np.full(n, np.nan),
        cast=np.zeros(n, np.int64),
        positive_share=float(priors[1]),
        gold_right=np.stack([pool.gold_confusions[:, 0, 0], pool.gold_confusions[:, 1, 1]], 1),
        rng=np.random.default_rng(seed + 20_000),
        gates=GateSettings(),
        peer_evidence=np.zeros((n, 3)),
        by_peers=np.zeros(n, bool),
        blind=np.zeros((n, 3)),
        by_blind=np.zeros(n, bool),
        resumed=np.zeros(n, np.int64),
    )


def _compact(workers: NDArray[np.int64], answers: NDArray[np.int64], drop: NDArray[np.bool_]):
    """Move the ``drop`` slots of each row to its end as DEAD ones, the others in order."""
    order = np.argsort(drop, axis=1, kind="stable")
    workers = np.take_along_axis(workers, order, axis=1)
    answers = np.take_along_axis(answers, order, axis=1)
    dead = np.take_along_axis(drop, order, axis=1)
    return np.where(dead, DEAD, workers), np.where(dead, 0, answers)


def widened_queues(
    seed: int,
    pool: WorkerPool,
    truth: NDArray[np.int64],
    workers: NDArray[np.int64],
    answers: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The queues with RESERVE more slots each: distinct workers not already in the row,
    answering as the crowd does (colluders give the shared wrong label), DEAD where a reserve
    draw repeated one of the row."""
    rng = np.random.default_rng(seed + 30_000)
    extra = draw_workers(rng, pool.activity, len(truth), RESERVE)
    said = draw_answers(
        rng, pool, extra, np.broadcast_to(truth[:, None], extra.shape), np.zeros(extra.shape, bool)
    )
    said = np.where(pool.kind[extra] == COLLUDER, 1 - truth[:, None], said)
    repeat = (extra[:, :, None] == workers[:, None, :]).any(axis=2)
    extra, said = _compact(extra, said, repeat)
    return np.concatenate([workers, extra], axis=1), np.concatenate([answers, said], axis=1)


def control_answers(crew: Crew, who: NDArray[np.int64], draws: NDArray[np.float64]):
    """(known answer is yes, answered right) per control answered by ``who``; ``draws``
    (uniform, from the main stream) decide rightness, as without gates."""
    positive = crew.rng.random(len(who)) < crew.positive_share
    right = draws < crew.gold_right[who, positive.astype(np.int64)]
    return positive, right


def gate_round(
    crew: Crew,
    voters: NDArray[np.int64],
    said: NDArray[np.int64],
    decided: tuple[int, int],
    control: NDArray[np.bool_],
    positive: NDArray[np.bool_],
    right: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """Take this round's tasks through the gates, each worker's in order (a label vote, then
    the control that followed it, if any); returns, per vote, whether it was cast (its voter
    was not paused before it). ``said``: each vote's answer (1 yes); ``decided``: the crowd's
    (accepted, rejected) items so far; ``positive`` and ``right`` hold one entry per
    control."""
    kept = np.ones(len(voters), bool)
    control_of = np.full(len(voters), -1)
    control_of[control] = np.arange(int(control.sum()))
    order = np.argsort(voters, kind="stable")
    starts = np.flatnonzero(np.r_[True, voters[order][1:] != voters[order][:-1]])
    for begin, end in zip(starts.tolist(), [*starts[1:].tolist(), len(order)], strict=True):
        worker = int(voters[order[begin]])
        record = crew.records[worker]
        for vote in order[begin:end].tolist():
            if crew.paused[worker]:
                kept[vote] = False
                continue
            crew.cast[worker] += 1
            label = (LabelAnswer(bool(said[vote]), *decided),)
            record, pause = gate_task(
                record, seconds_per_item=SLOW, gold=[], gates=crew.gates, labels=label
            )
            c = int(control_of[vote])
            if pause is None and c >= 0:
                answer = ControlAnswer(positive=bool(positive[c]), right=bool(right[c]))
                record, pause = gate_task(
                    record, seconds_per_item=SLOW, gold=[answer], gates=crew.gates
                )
            if pause is not None:
                crew.paused[worker] = True
                crew.paused_votes[worker] = crew.cast[worker]
        crew.records[worker] = record
    return kept


def peer_credit(
    crew: Crew,
    worker: NDArray[np.int64],
    answers: NDArray[np.int64],
    old: NDArray[np.float64],
    new: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """The peer-agreement gate on a batch of credits moving from ``old`` to ``new`` (as the
    platform's peer_record_add takes one decision's credits: one floored addition per worker);
    returns who it paused just now."""
    n = len(crew.paused)
    change = peer_evidence_changes(worker, answers, old, new, n, crew.gates)
    touched = np.zeros(n, bool)
    touched[worker] = True
    pause = np.array(peer_thresholds(crew.gates))
    crew.peer_evidence = np.where(
        touched[:, None], np.maximum(-2 * pause, crew.peer_evidence + change), crew.peer_evidence
    )
    if not crew.peer_gate:
        return np.zeros(n, bool)
    newly = touched & ~crew.paused & (crew.peer_evidence >= pause).any(axis=1)
    crew.paused |= newly
    crew.by_peers |= newly
    crew.paused_votes[newly] = crew.cast[newly]
    return newly


def suspects(crew: Crew) -> NDArray[np.bool_]:
    """Workers the peer-agreement gate paused while their control record held (the control
    test's evidence at or below 0: the controls favour "at or above the bar"; with
    ``suspects_answered_controls``, and at least one control answered)."""
    control = np.array([record.gold_evidence for record in crew.records])
    held = control <= 0.0
    if crew.suspects_answered_controls:
        held &= np.array([record.gold_seen for record in crew.records]) > 0
    return crew.paused & crew.by_peers & held


def blind_checks(
    crew: Crew, worker: NDArray[np.int64], right: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """A curator's decision on one item checks its label votes (``right``: the vote agrees
    with it): each voter's blind record gains the check (labeling.crowd.gates.blind_change,
    blind_evidence_add) and blind_pause pauses him if it says so, as any pause (nothing
    happens to one already paused); returns who it paused just now."""
    newly = np.zeros(len(crew.paused), bool)
    for w, r in zip(worker.tolist(), right.tolist(), strict=True):
        seen, correct, evidence = crew.blind[w]
        evidence = blind_evidence_add(evidence, blind_change(None, bool(r), crew.gates), crew.gates)
        crew.blind[w] = seen + 1, correct + bool(r), evidence
        pause = blind_pause(evidence, int(seen + 1), int(correct + bool(r)), crew.gates)
        if pause is not None and not crew.paused[w]:
            crew.paused[w] = newly[w] = crew.by_blind[w] = True
            crew.paused_votes[w] = crew.cast[w]
    return newly


def resume_cleared(crew: Crew) -> NDArray[np.bool_]:
    """A curator resumes every worker the peer-agreement gate paused whose three peer
    evidences are all back below their thresholds and whose control record holds (control
    evidence at or below 0), and whose blind checks do not speak against him (evidence at or
    below 0; ``resume_blind_clear`` off: whatever they say, as first simulated), as
    labeling.services.microtasks.worker_resume does: unpaused, every gate's evidence back to 0
    (the control counts stay); returns them."""
    below = (crew.peer_evidence < np.array(peer_thresholds(crew.gates))).all(axis=1)
    back = suspects(crew) & below
    if crew.resume_blind_clear:
        back &= crew.blind[:, 2] <= 0.0
    for w in np.flatnonzero(back).tolist():
        record = crew.records[w]
        crew.records[w] = WorkerRecord(gold_seen=record.gold_seen, gold_correct=record.gold_correct)
    crew.peer_evidence[back] = 0.0
    crew.blind[back, 2] = 0.0
    crew.paused[back] = crew.by_peers[back] = False
    crew.paused_votes[back] = np.nan
    crew.resumed[back] += 1
    return back


def drop_paused(
    workers: NDArray[np.int64],
    answers: NDArray[np.int64],
    count: NDArray[np.int64],
    paused: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The queues without the paused workers' places still to come (those behind move up)."""
    ahead = np.arange(workers.shape[1])[None, :] >= count[:, None]
    drop = ahead & paused[np.maximum(workers, 0)] & (workers != DEAD)
    rows = np.flatnonzero(drop.any(axis=1))
    if rows.size:
        workers, answers = workers.copy(), answers.copy()
        workers[rows], answers[rows] = _compact(workers[rows], answers[rows], drop[rows])
    return workers, answers


@dataclass(frozen=True)
class Pauses:
    """Per kind of worker (consensus_crowds.KINDS, honest split at a true accuracy of 0.8):
    workers who cast a label vote, those of them paused, and the label votes each paused one
    had cast when paused."""

    workers: dict[str, int]
    paused: dict[str, int]
    votes: dict[str, list[float]]
    by_peers: dict[str, int]
    by_blind: dict[str, int]  # of the paused, those the blind-check test paused
    resumed: dict[str, int]  # workers a curator resumed at least once (paused or not now)


def pauses(crews: list[Crew], kinds: list[NDArray[np.int64]], accuracy: list[NDArray]) -> Pauses:
    """Pauses over several crowds of one mix; ``accuracy``: each worker's true P(right) on
    label items under the crowd's class priors."""
    workers: dict[str, int] = {}
    paused: dict[str, int] = {}
    votes: dict[str, list[float]] = {}
    by_peers: dict[str, int] = {}
    by_blind: dict[str, int] = {}
    resumed: dict[str, int] = {}
    for crew, kind, right in zip(crews, kinds, accuracy, strict=True):
        names = np.array(KINDS, dtype=object)[kind]
        names = np.where(
            kind == HONEST, np.where(right >= 0.8, "honest >= 0.8", "honest < 0.8"), names
        )
        voted = crew.cast > 0
        for name in np.unique(names[voted]).tolist():
            these = voted & (names == name)
            workers[name] = workers.get(name, 0) + int(these.sum())
            paused[name] = paused.get(name, 0) + int((these & crew.paused).sum())
            by_peers[name] = by_peers.get(name, 0) + int((these & crew.by_peers).sum())
            caught = these & crew.paused & crew.by_blind
            by_blind[name] = by_blind.get(name, 0) + int(caught.sum())
            resumed[name] = resumed.get(name, 0) + int((these & (crew.resumed > 0)).sum())
            votes.setdefault(name, []).extend(crew.paused_votes[these & crew.paused].tolist())
    return Pauses(workers, paused, votes, by_peers, by_blind, resumed)


def pause_cells(p: Pauses) -> str:
    """Honest workers >= 0.8 paused (by the peer gate), then each other kind: paused / workers
    (by the peer gate), median and mean label votes before the pause."""
    honest = "honest >= 0.8"
    n, stopped = p.workers.get(honest, 0), p.paused.get(honest, 0)
    first = (
        f"{100 * stopped / n:.2f} % ({stopped} / {n}, peer gate {p.by_peers[honest]})"
        if n
        else "none"
    )
    rest = []
    for name in sorted(p.workers):
        if name == honest:
            continue
        votes = p.votes.get(name)
        when = f", {np.median(votes):.0f} / {np.mean(votes):.0f} votes" if votes else ""
        rest.append(f"{name} {p.paused[name]} / {p.workers[name]} ({p.by_peers[name]}){when}")
    return f"{first} | {'; '.join(rest)}"


def review_cells(p: Pauses) -> str:
    """Per kind, workers the blind-check test paused (still paused at the end), then workers a
    curator resumed: ``name blind / resumed`` over the kinds where either happened."""
    cells = [
        f"{name} {p.by_blind[name]} / {p.resumed[name]}"
        for name in sorted(p.workers)
        if p.by_blind[name] or p.resumed[name]
    ]
    return "; ".join(cells) or "none"
