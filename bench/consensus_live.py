"""Live consensus before any batch re-run: precision of accepted labels, calibration, votes.

    .venv/bin/python bench/consensus_live.py             # 6 mixes x 3 fresh seeds
    .venv/bin/python bench/consensus_live.py --seeds 2   # quicker

Simulates the answer path as the platform runs it, with no Dawid-Skene run at all. Items come
in waves (20 per crowd); within a wave, every open item gets its next vote each round from
its own queue of distinct workers (bench/consensus_crowds.py draws who and what). Each vote is
weighted by its voter's live coins (labeling.consensus.live_coins): his control record (a
control item answered with probability 5 / 95 after each vote, counted in the votes; adversaries
and colluders answer controls right) worth at most ``--control-votes`` votes, plus his agreement
with the other votes on every item decided so far (vote_agreement, peer_counts). An item is
decided when P(yes) or P(no) reaches the threshold (once it has 3 votes, the platform's
votes_needed), goes to review at the cap; a vote teaches its worker only where the item's other
votes were at least PEER_CONFIDENCE sure, on decided items and those sent to review alike; a
worker whose votes stop carrying evidence has the decisions he voted on taken again with
today's coins (reopened ones get more votes). Decisions and credits are taken cautiously
(cautious_posteriors): a yes under the smaller, a no under the larger of the prior and the
share of yes among the decisions so far (--no-learnt-prior: the prior alone). Every answer
goes through the platform's quality gates (bench/live_gates.py: the answer path's own
labeling.crowd.gates.gate_task); a paused worker answers nothing more, the workers behind him
in each item's queue take his places, his votes weigh nothing from then on and the decisions
he voted on are taken again, as the platform does (--no-gates: nobody is ever paused). The
peer-agreement gate reads each batch of credits as the platform's peer_record_add does (one
floored addition per worker and decision, labeling.crowd.gates.peer_evidence_changes) and
pauses there (--no-peer-gate: the other gates only; --peer-trust: how sure a call is taken).
With --reviews K a curator settles, after each wave, up to K contested items (the top of the
list each time, as labeling.services.contested ranks them: decided by the crowd against the
label votes of workers the peer gate paused while their control record held, most such
workers first, then the oldest decision) with their truth, for good: every label vote on it is
a blind check (labeling.crowd.gates.blind_*: may pause its voter, whose decisions are then
taken again) and is credited anew with the curator's call as the crowd's; after the batch the
curator resumes the suspects whose peer evidence is back below every threshold (a resumed
worker does not get his places in the queues back: drop_paused gave them away).

Scored per crowd (an item the curator settled counts with his answer: curator reviews are
reported apart, with the accuracy over the other items; his calls are left out of the
calibration tables): precision of accepted labels (truth yes among accepted), accuracy over all
items (a review item takes the side its posterior favours, as in consensus_adaptive.py), votes
per item with control answers, against fixed 7 (majority of the first 7 votes, no controls) on
the same queues; and a calibration table: decided items by the confidence they were decided at,
against how often they were right; with the gates, who was paused (and by the peer gate)
after how many label votes, and how often the crowd's call on the credited votes was right at
each level of sureness (the peer gate's premise). Then where the votes go, per mix, and
Wald's minimum: the fewest votes per item any sequential rule needs to decide every item at
the threshold, knowing every worker's true coins (--true-coins runs the rule itself with
them).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from consensus_crowds import FAMILIES, HONEST, make_crowd
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from live_gates import (
    DEAD,
    Crew,
    blind_checks,
    control_answers,
    crew_for,
    drop_paused,
    gate_round,
    pause_cells,
    pauses,
    peer_credit,
    resume_cleared,
    review_cells,
    suspects,
    widened_queues,
)

from labeling.consensus.adaptive import (
    binary_posteriors,
    cautious_posteriors,
    decided_prior,
    vote_accuracies,
    vote_agreement,
)
from labeling.consensus.reliability import (
    PEER_CONFIDENCE,
    live_coins,
    newcomer_accuracy,
    peer_count_changes,
)
from labeling.crowd.gates import GateSettings

QUEUE_LENGTH = 15
"""Votes drawn per item: more than any cap tried."""
MIXES = (
    "adversaries 10% + spammers 20%, binary",
    "weak honest 0.55-0.75 + inverters 10%",
    "yes-clickers 10% + yes-biased 20%, weak honest",
    "binary colluders 15%, 30% yes",
    "rare binary 7%",
    "sparse binary 90% yes, 5 votes/item, 8/worker",
    "own crowd: honest 0.6-0.95 + spammers 15%, 60% yes",
)
OWN_CROWD: dict[str, object] = {
    "n_items": 5000,
    "n_workers": 300,
    "votes_per_item": QUEUE_LENGTH,
    "priors": np.array([0.4, 0.6]),
    "honest_accuracy": (0.6, 0.95),
    "random_spammers": 0.075,
    "constant_spammers": 0.075,
    "activity_sigma": 0.5,
}
"""The crowd bench/consensus_adaptive.py tunes on: 60 % yes, 15 % spammers."""
QUEUE = QUEUE_LENGTH
WAVES = 20
VOTES_NEEDED = 3
CONTROL_RATE = 0.05
BINS = (0.95, 0.97, 0.99, 0.995, 0.999, 1.0001)


@dataclass
class Live:
    """The state of one simulated live run."""

    truth: NDArray[np.int64]
    workers: NDArray[np.int64]  # (items, slots): the queues, DEAD where nobody is left
    answers: NDArray[np.int64]  # (items, slots), 1 yes
    first_workers: NDArray[np.int64]  # (items, QUEUE) the queues as drawn, for fixed 7
    first_answers: NDArray[np.int64]  # (items, QUEUE)
    gold_right: NDArray[np.float64]  # (n_workers,) P(right on a control)
    rng: np.random.Generator
    true_coins: NDArray[np.float64]  # (n_workers, 2) true (sensitivity, specificity) off controls
    honest: NDArray[np.bool_]  # (n_workers,)
    priors: NDArray[np.float64]  # (2,) P(no), P(yes)
    kind: NDArray[np.int64]  # (n_workers,) index into consensus_crowds.KINDS
    crew: Crew | None  # the gates' view of the workers; None: nobody is ever paused
    count: NDArray[np.int64] = field(init=False)
    state: NDArray[np.int8] = field(init=False)  # 0 open, 1 accepted, -1 rejected, 2 review
    p_yes: NDArray[np.float64] = field(init=False)
    decided_at: NDArray[np.float64] = field(init=False)
    gold: NDArray[np.float64] = field(init=False)  # (W, 2): seen, right
    peer: NDArray[np.float64] = field(init=False)  # (W, 4)
    credited: NDArray[np.float64] = field(init=False)  # (items, QUEUE) P(yes) credited, or NaN
    settled: NDArray[np.bool_] = field(init=False)  # decided by the curator, for good
    decided_step: NDArray[np.int64] = field(init=False)  # the round of its latest decision
    contested_seen: NDArray[np.bool_] = field(init=False)  # ever listed as contested
    controls: int = 0
    clock: int = 0  # rounds (step calls) so far
    reviews: int = 0  # items the curator settled
    overturned: int = 0  # of those, decided by the crowd against the truth

    def __post_init__(self) -> None:
        n, w = len(self.truth), len(self.gold_right)
        self.count = np.zeros(n, np.int64)
        self.state = np.zeros(n, np.int8)
        self.p_yes = np.full(n, 0.5)
        self.decided_at = np.full(n, np.nan)
        self.gold = np.zeros((w, 2))
        self.peer = np.zeros((w, 4))
        self.credited = np.full(self.workers.shape, np.nan)
        self.settled = np.zeros(n, bool)
        self.decided_step = np.zeros(n, np.int64)
        self.contested_seen = np.zeros(n, bool)


TRUE_COINS = False
"""--true-coins: weigh every vote by its worker's true coins (nothing learnt), to measure what
the rule would spend with a perfect worker estimate."""


def coins(live: Live, control_votes: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    sens, spec = (
        (live.true_coins[:, 0], live.true_coins[:, 1])
        if TRUE_COINS
        else learnt_coins(live, control_votes)
    )
    if live.crew is None:
        return sens, spec
    # a paused worker's votes weigh nothing (labeling.services.worker_coins)
    paused = live.crew.paused
    return np.where(paused, 0.5, sens), np.where(paused, 0.5, spec)


def learnt_coins(live: Live, control_votes: float) -> tuple[NDArray[np.float64], ...]:
    newcomer = newcomer_accuracy(live.gold[:, 1].sum(), live.gold[:, 0].sum())
    return live_coins(
        live.gold[:, 1], live.gold[:, 0], live.peer, strength=control_votes, newcomer=newcomer
    )


def sprt_votes(live: Live, threshold: float) -> float:
    """Wald's approximation of the fewest label votes per item, on average, that any sequential
    rule needs to decide every item with error 1 - threshold either way, from this crowd's
    votes weighted by the voters' true coins (a below-chance voter weighs nothing, as in the
    live rule): ln(t / (1 - t)) (2t - 1) over the expected evidence per vote, per true class.
    Voters are drawn as the queues drew them (first 7 slots)."""
    s, c = (np.clip(live.true_coins[:, i], 1e-3, 1 - 1e-3) for i in (0, 1))
    useful = s + c > 1
    kl_yes = s * np.log(s / (1 - c)) + (1 - s) * np.log((1 - s) / c)
    kl_no = c * np.log(c / (1 - s)) + (1 - c) * np.log((1 - c) / s)
    voters = live.first_workers[:, :7].ravel()
    per_vote = [float(np.mean(np.where(useful, kl, 0.0)[voters])) for kl in (kl_no, kl_yes)]
    goal = np.log(threshold / (1 - threshold)) * (2 * threshold - 1)
    return float(sum(prior * goal / d for prior, d in zip(live.priors, per_vote, strict=True)))


def votes_of(live: Live, items: NDArray[np.int64]) -> tuple[NDArray[np.int64], ...]:
    """Flat (row in ``items``, worker, answer) for the votes cast so far on ``items``."""
    mask = np.arange(live.workers.shape[1])[None, :] < live.count[items, None]
    rows = np.broadcast_to(np.arange(len(items))[:, None], mask.shape)[mask]
    return rows, live.workers[items][mask], live.answers[items][mask]


def posterior(
    live: Live, items: NDArray[np.int64], sens: NDArray, spec: NDArray, prior: float
) -> tuple[NDArray[np.float64], tuple[NDArray[np.int64], ...], NDArray[np.float64]]:
    """P(yes) of ``items`` from their votes so far, with the votes and their accuracies."""
    rows, w, a = votes_of(live, items)
    accuracy = vote_accuracies(a, sens[w], spec[w])
    return binary_posteriors(rows, a, accuracy, len(items), prior), (rows, w, a), accuracy


def step(live: Live, open_items: NDArray[np.int64], args: argparse.Namespace) -> None:
    """One more vote on each open item, its controls, then decide and learn."""
    live.clock += 1
    if live.crew is not None:
        dry = live.workers[open_items, live.count[open_items]] == DEAD
        live.state[open_items[dry]] = 2  # nobody left to ask: review
        open_items = open_items[~dry]
        if not open_items.size:
            return
    live.count[open_items] += 1
    voters = live.workers[open_items, live.count[open_items] - 1]
    control = live.rng.random(len(voters)) < CONTROL_RATE / (1 - CONTROL_RATE)
    who = voters[control]
    draws = live.rng.random(len(who))
    newly = np.zeros(len(live.gold_right), bool)
    if live.crew is None:
        right = draws < live.gold_right[who]
    else:
        newly = ~live.crew.paused
        positive, right = control_answers(live.crew, who, draws)
        said = live.answers[open_items, live.count[open_items] - 1]
        decided = int((live.state == 1).sum()), int((live.state == -1).sum())
        cast = gate_round(live.crew, voters, said, decided, control, positive, right)
        live.count[open_items[~cast]] -= 1  # voters paused earlier in the round
        answered = cast[control]
        who, right, control = who[answered], right[answered], control & cast
        live.workers, live.answers = drop_paused(
            live.workers, live.answers, live.count, live.crew.paused
        )
        newly &= live.crew.paused
    np.add.at(live.gold, (who, 0), 1.0)
    np.add.at(live.gold, (who, 1), right.astype(np.float64))
    live.controls += int(control.sum())
    sens, spec = coins(live, args.control_votes)
    before = sens + spec > 1
    neutral, _, _ = posterior(live, open_items, sens, spec, args.prior)
    live.p_yes[open_items] = neutral
    p = deciding(live, neutral, args)
    ready = live.count[open_items] >= VOTES_NEEDED
    accept = ready & (p >= args.threshold)
    reject = ready & (1 - p >= args.threshold)
    review = ~accept & ~reject & (live.count[open_items] >= args.cap)
    live.state[open_items[accept]] = 1
    live.state[open_items[reject]] = -1
    live.state[open_items[review]] = 2
    settled = accept | reject
    live.decided_at[open_items[settled]] = np.maximum(p, 1 - p)[settled]
    live.decided_step[open_items[settled]] = live.clock
    newly |= learn(
        live, open_items, settled | (False if args.decided_only else review), args, sens, spec
    )
    reopen_fallen(live, before, newly, args)
    if live.crew is not None:
        live.workers, live.answers = drop_paused(
            live.workers, live.answers, live.count, live.crew.paused
        )


def reopen_fallen(
    live: Live, before: NDArray[np.bool_], newly: NDArray[np.bool_], args: argparse.Namespace
) -> None:
    """Take again the decisions of the workers whose votes stopped carrying evidence (their
    coins useful ``before``) or who were paused just now (``newly``), and of those the new
    credits pause or discredit in turn."""
    for _ in range(10):  # a reopening's credits may pause more workers: their turn next
        sens, spec = coins(live, args.control_votes)
        fallen = np.flatnonzero((before & (sens + spec <= 1)) | newly)  # or paused just now
        if not fallen.size:
            break
        before = sens + spec > 1
        newly = reopen(live, fallen, sens, spec, args)


def contested(live: Live) -> NDArray[np.int64]:
    """Items the crowd decided (not settled by the curator) against a label vote of a worker
    the peer-agreement gate paused while his control record held (live_gates.suspects): most
    such workers first, then the oldest decision (labeling.services.contested)."""
    if live.crew is None:
        return np.zeros(0, np.int64)
    decided = np.flatnonzero(np.isin(live.state, (1, -1)) & ~live.settled)
    workers = live.workers[decided]
    cast = np.arange(workers.shape[1])[None, :] < live.count[decided, None]
    against = live.answers[decided] != (live.state[decided] == 1)[:, None]
    suspect = suspects(live.crew)[np.maximum(workers, 0)] & (workers != DEAD)
    contradictions = (cast & against & suspect).sum(axis=1)
    found = contradictions > 0
    items, contradictions = decided[found], contradictions[found]
    ranked: NDArray[np.int64] = items[
        np.lexsort((items, live.decided_step[items], -contradictions))
    ]
    return ranked


def settle(live: Live, item: int, args: argparse.Namespace) -> None:
    """The curator decides ``item`` with its truth, for good: his decision checks every label
    vote on it (blind_checks: may pause), credits them anew with his call as the crowd's (P(yes)
    1 or 0, replacing their credits as learn does: the peer gate may pause), then the
    decisions of whoever was paused or discredited are taken again."""
    crew = live.crew
    assert crew is not None
    sens, spec = coins(live, args.control_votes)
    truth = int(live.truth[item])
    live.overturned += int(live.state[item] != (1 if truth else -1))
    live.state[item] = 1 if truth else -1
    live.settled[item] = True
    live.decided_at[item] = np.nan  # not a decision of the crowd's: out of the calibration
    live.reviews += 1
    n, width = int(live.count[item]), live.workers.shape[1]
    w, a = live.workers[item, :n], live.answers[item, :n]
    newly = blind_checks(crew, w, a == truth)
    q = np.full(n, float(truth))
    flat = item * width + np.arange(n)
    old = np.take(live.credited, flat)
    live.peer += peer_count_changes(w, a, old, q, len(live.gold_right))
    np.put(live.credited, flat, q)
    newly |= peer_credit(crew, w, a, old, q)
    reopen_fallen(live, sens + spec > 1, newly, args)


def review(live: Live, args: argparse.Namespace) -> None:
    """After a wave: the curator settles up to --reviews contested items, the first of the
    list each time (a settlement changes it), then resumes the suspects it cleared."""
    if live.crew is None:
        return
    used = 0
    while True:
        listed = contested(live)
        live.contested_seen[listed] = True
        if not listed.size or used >= args.reviews:
            break
        settle(live, int(listed[0]), args)
        used += 1
    if args.reviews:
        resume_cleared(live.crew)
        live.workers, live.answers = drop_paused(
            live.workers, live.answers, live.count, live.crew.paused
        )


def deciding(live: Live, neutral: NDArray[np.float64], args: argparse.Namespace) -> NDArray:
    """P(yes) the decisions are taken on: ``neutral`` (under --prior), or with --learnt-prior
    its cautious_posteriors against the share of yes among the decisions so far."""
    if not args.learnt_prior:
        return neutral
    learnt = decided_prior((live.state == 1).sum(), np.isin(live.state, (1, -1)).sum())
    return cautious_posteriors(neutral, args.prior, learnt)


def learn(
    live: Live,
    items: NDArray[np.int64],
    on_items: NDArray[np.bool_],
    args: argparse.Namespace,
    sens: NDArray,
    spec: NDArray,
    withdrawn: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """Credit the votes on ``items[on_items]`` with what their items' other votes say, where
    those are sure; a vote credited at an earlier decision has that credit replaced, and on
    ``items[withdrawn]`` (back to open) taken back. Returns the workers the peer-agreement gate
    paused on these credits."""
    newly = np.zeros(len(live.gold_right), bool)
    taken = on_items if withdrawn is None else on_items | withdrawn
    if not taken.any():
        return newly
    rows, w, a = votes_of(live, items)
    accuracy = vote_accuracies(a, sens[w], spec[w])
    q = deciding(live, vote_agreement(rows, a, accuracy, len(items), args.prior), args)
    on = taken[rows]
    sure = np.maximum(q, 1 - q) >= args.peer_confidence
    q = np.where(on_items[rows] & sure, q, np.nan)
    width = live.workers.shape[1]
    slots = np.nonzero(np.arange(width)[None, :] < live.count[items, None])[1]
    flat = items[rows] * width + slots
    old = np.take(live.credited, flat)
    live.peer += peer_count_changes(w[on], a[on], old[on], q[on], len(live.gold_right))
    np.put(live.credited, flat[on], q[on])
    if live.crew is not None:
        newly = peer_credit(live.crew, w[on], a[on], old[on], q[on])
    return newly


def reopen(
    live: Live, fallen: NDArray[np.int64], sens: NDArray, spec: NDArray, args: argparse.Namespace
) -> NDArray[np.bool_]:
    """Decide again, with today's coins, every accepted or rejected item a fallen worker
    voted on, and credit its votes anew (taken back on those that go back to open; with
    --no-recredit, as before: only the items whose decision changed to another one are
    credited, the others keep their credits); returns the workers the peer-agreement gate
    paused on the new credits."""
    decided = np.flatnonzero(np.isin(live.state, (1, -1)) & ~live.settled)
    voted = (
        np.isin(live.workers[decided], fallen)
        & (np.arange(live.workers.shape[1])[None, :] < live.count[decided, None])
    ).any(axis=1)
    items = decided[voted]
    if not items.size:
        return np.zeros(len(live.gold_right), bool)
    neutral, _, _ = posterior(live, items, sens, spec, args.prior)
    live.p_yes[items] = neutral
    p = deciding(live, neutral, args)
    new = np.where(p >= args.threshold, 1, np.where(1 - p >= args.threshold, -1, 0))
    new = np.where((new == 0) & (live.count[items] >= args.cap), 2, new).astype(np.int8)
    changed = new != live.state[items]
    live.state[items] = new
    live.decided_at[items] = np.where(np.isin(new, (1, -1)), np.maximum(p, 1 - p), np.nan)
    live.decided_step[items[changed]] = live.clock
    if not args.recredit:
        return learn(live, items, changed & (new != 0), args, sens, spec)
    return learn(live, items, new != 0, args, sens, spec, withdrawn=new == 0)


def simulate(family: str, seed: int, args: argparse.Namespace) -> Live:
    spec = dict(FAMILIES.get(family) or OWN_CROWD)
    n_items = int(spec.pop("n_items"))
    n_workers = int(spec.pop("n_workers"))
    spec.pop("votes_per_item")
    priors = spec.pop("priors")
    crowd = make_crowd(seed, n_items, n_workers, QUEUE, priors, gold_fraction=0.0, **spec)  # type: ignore[arg-type]
    pool = crowd.pool
    gold_right = np.einsum("k,wkk->w", crowd.priors, pool.gold_confusions)
    first = crowd.worker.reshape(n_items, QUEUE), crowd.label.reshape(n_items, QUEUE)
    queues = widened_queues(seed, pool, crowd.truth, *first) if args.gates else first
    live = Live(
        truth=crowd.truth,
        workers=queues[0],
        answers=queues[1],
        first_workers=first[0],
        first_answers=first[1],
        gold_right=gold_right,
        rng=np.random.default_rng(seed + 10_000),
        true_coins=np.stack([pool.confusions[:, 1, 1], pool.confusions[:, 0, 0]], axis=1),
        honest=pool.kind == HONEST,
        priors=crowd.priors,
        kind=pool.kind,
        crew=crew_for(pool, crowd.priors, seed) if args.gates else None,
    )
    if live.crew is not None:
        live.crew.peer_gate = args.peer_gate
        live.crew.suspects_answered_controls = args.suspects_answered_controls
        live.crew.resume_blind_clear = not args.resume_any_blind
        live.crew.gates = replace(
            live.crew.gates, peer_trust=args.peer_trust, peer_false_pause=args.peer_false_pause
        )
    for wave in np.array_split(np.arange(n_items), WAVES):
        live.count[wave] = 0
        drain(live, int(wave[-1]), args)
        review(live, args)
        drain(live, int(wave[-1]), args)  # the items the reviews reopened
    return live


def drain(live: Live, last: int, args: argparse.Namespace) -> None:
    """Votes until no item up to ``last`` is open."""
    while True:
        open_items = np.flatnonzero(live.state == 0)
        open_items = open_items[open_items <= last]
        if not open_items.size:
            break
        step(live, open_items, args)


@dataclass(frozen=True)
class Score:
    precision: float
    accepted: int
    false_accepts: int
    accuracy: float
    votes: float
    fixed7: float
    review: float
    per_decided: float  # label votes per accepted or rejected item
    review_votes: float  # share of all label votes spent on items that went to review
    coin_bias: float  # honest workers' learnt (sens + spec) / 2 minus the truth, mean
    sprt: float  # sprt_votes at the threshold, label votes per item


def score(live: Live, threshold: float = 0.995, control_votes: float = 4.0) -> Score:
    accepted = live.state == 1
    decided = np.isin(live.state, (1, -1))
    learnt = learnt_coins(live, control_votes)
    known = live.honest & (live.peer[:, 0] + live.peer[:, 2] >= 5)  # judged on 5+ votes
    labels = np.where(live.state == 1, 1, np.where(live.state == -1, 0, live.p_yes >= 0.5))
    total = live.count.sum() + live.controls
    yes7 = live.first_answers[:, :7].sum(axis=1)
    return Score(
        precision=float(live.truth[accepted].mean()) if accepted.any() else float("nan"),
        accepted=int(accepted.sum()),
        false_accepts=int((accepted & (live.truth == 0)).sum()),
        accuracy=float((labels == live.truth).mean()),
        votes=float(total / len(live.truth)),
        fixed7=float(((2 * yes7 > 7) == live.truth).mean()),
        review=float((live.state == 2).mean()),
        per_decided=float(live.count[decided].mean()) if decided.any() else float("nan"),
        review_votes=float(live.count[live.state == 2].sum() / live.count.sum()),
        coin_bias=float(np.mean((sum(learnt) - live.true_coins.sum(axis=1))[known] / 2)),
        sprt=sprt_votes(live, threshold),
    )


def calibration(lives: list[Live]) -> list[tuple[str, int, float]]:
    """(bin, items, observed accuracy) over the decided items of ``lives``."""
    at = np.concatenate([lv.decided_at for lv in lives])
    right = np.concatenate([(lv.state == 1) == (lv.truth == 1) for lv in lives])
    rows = []
    for low, high in itertools.pairwise(BINS):
        inside = (at >= low) & (at < high)
        label = f"[{low}, {min(high, 1.0)}{']' if high > 1 else ')'}"
        rows.append((label, int(inside.sum()), float(right[inside].mean()) if inside.any() else 0))
    return rows


CREDIT_BINS = (0.9, 0.95, 0.99, 0.999, 1.0001)


def credit_calibration(lives: list[Live]) -> str:
    """The peer-agreement gate's premise, over the votes' final credits: the crowd's call (the
    side of the other votes' P(yes)) right at least as often as that P says, per bin."""
    cells = []
    q = np.concatenate([lv.credited.ravel() for lv in lives])
    truth = np.concatenate(
        [np.broadcast_to(lv.truth[:, None], lv.credited.shape).ravel() for lv in lives]
    )
    curator = np.concatenate(
        [np.broadcast_to(lv.settled[:, None], lv.credited.shape).ravel() for lv in lives]
    )
    keep = ~np.isnan(q) & ~curator  # the curator's calls are not the crowd's
    q, truth = q[keep], truth[keep]
    sure, right = np.maximum(q, 1 - q), (q > 0.5) == (truth == 1)
    for low, high in itertools.pairwise(CREDIT_BINS):
        inside = (sure >= low) & (sure < high)
        if inside.any():
            cells.append(f"{100 * right[inside].mean():.2f} % of {int(inside.sum())}")
        else:
            cells.append("none")
    return " | ".join(cells)


def review_row(lives: list[Live]) -> str:
    """Reviews used (those that overturned the crowd's call), contested items found, contested
    left at the end (summed over ``lives``), accuracy over the items the curator did not settle
    (mean over ``lives``)."""
    left = sum(len(contested(lv)) for lv in lives)
    crowd = []
    for lv in lives:  # as score's accuracy: a review item takes the side its posterior favours
        labels = np.where(lv.state == 1, 1, np.where(lv.state == -1, 0, lv.p_yes >= 0.5))
        crowd.append(float((labels == lv.truth)[~lv.settled].mean()))
    return (
        f"{sum(lv.reviews for lv in lives)} ({sum(lv.overturned for lv in lives)}) "
        f"| {sum(int(lv.contested_seen.sum()) for lv in lives)} "
        f"| {left} | {100 * np.mean(crowd):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="fresh crowds per mix")
    parser.add_argument("--first-seed", type=int, default=2026)
    parser.add_argument("--threshold", type=float, default=0.995)
    parser.add_argument("--cap", type=int, default=10)
    parser.add_argument("--control-votes", type=float, default=4.0)
    parser.add_argument("--prior", type=float, default=0.5, help="P(yes) before any vote")
    parser.add_argument(
        "--peer-confidence",
        type=float,
        default=PEER_CONFIDENCE,
        help="learn from a vote only where the item's other votes were this sure",
    )
    parser.add_argument(
        "--decided-only",
        action="store_true",
        help="learn only from accepted or rejected items, not from those sent to review",
    )
    parser.add_argument(
        "--learnt-prior",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="decide under the prior or the share of yes among decisions so far, whichever "
        "asks more evidence (the platform's rule); --no-learnt-prior: the prior alone",
    )
    parser.add_argument(
        "--true-coins",
        action="store_true",
        help="weigh votes by the workers' true coins instead of the learnt ones",
    )
    parser.add_argument(
        "--gates",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take every answer through the platform's quality gates and pause workers as "
        "they do (labeling.crowd.gates); --no-gates: nobody is ever paused",
    )
    parser.add_argument(
        "--peer-gate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the peer-agreement gate with the others (--no-peer-gate: the gates without "
        "it; its evidence is still kept)",
    )
    parser.add_argument(
        "--recredit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="when a fallen worker's decisions are taken again, credit every vote on them anew "
        "and take back the credits of those that go back to open, as the platform does "
        "(--no-recredit: only those decided again otherwise, as before 2026-12-07)",
    )
    parser.add_argument(
        "--peer-trust",
        type=float,
        default=GateSettings().peer_trust,
        help="how sure the peer-agreement gate takes the crowd's call at most",
    )
    parser.add_argument(
        "--peer-false-pause",
        type=float,
        default=GateSettings().peer_false_pause,
        help="the peer-agreement gate's alpha (before 2026-12-07: 0.01, as the control tests')",
    )
    parser.add_argument(
        "--reviews",
        type=int,
        default=0,
        help="after each wave a curator settles up to this many contested items with their "
        "truth (blind checks on their votes, his call credited as the crowd's) and resumes the "
        "suspects it cleared (0: no curator)",
    )
    parser.add_argument(
        "--suspects-answered-controls",
        action="store_true",
        help="a contested item's suspect must have answered at least one control (as "
        "labeling.services.contested.suspects was first drafted), not only have control "
        "evidence at or below 0 (which a worker with no control answered has)",
    )
    parser.add_argument(
        "--resume-any-blind",
        action="store_true",
        help="the curator resumes a cleared suspect whatever his blind checks say (as first "
        "simulated); by default only with blind evidence at or below 0, as the platform's "
        "labeling.services.contested.suspect_list marks him cleared",
    )
    parser.add_argument(
        "--mix",
        default="",
        help="only the mixes whose name contains this (any of consensus_crowds.FAMILIES)",
    )
    args = parser.parse_args()
    if args.reviews and not args.gates:
        parser.error("--reviews needs the gates (a contested item needs a paused worker)")
    global TRUE_COINS
    TRUE_COINS = args.true_coins
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(
        f"threshold {args.threshold}, cap {args.cap}, prior {args.prior}, control votes "
        f"{args.control_votes}, peer confidence {args.peer_confidence}, learning from "
        f"{'decided items only' if args.decided_only else 'decided and review items'}, "
        f"{'true' if args.true_coins else 'learnt'} coins, "
        f"{'cautious learnt prior' if args.learnt_prior else 'fixed prior'}, "
        f"{'the platform gates' if args.gates else 'nobody paused'}"
        f"{'' if args.peer_gate or not args.gates else ' without the peer gate'}"
        f"{f', peer trust {args.peer_trust}' if args.peer_gate and args.gates else ''}"
        f"{f', peer alpha {args.peer_false_pause}' if args.peer_gate and args.gates else ''}"
        f"{'' if args.recredit else ', reopened decisions not credited anew'}, "
        f"{f'up to {args.reviews} curator reviews a wave, ' if args.reviews else ''}"
        f"{'suspects answered a control, ' if args.suspects_answered_controls else ''}"
        f"{'resumed whatever the blind checks, ' if args.reviews and args.resume_any_blind else ''}"
        f"seeds {seeds[0]}-{seeds[-1]}\n"
    )
    print(
        "| mix | accepted precision % (false / accepted) | accuracy % | fixed 7 % | votes / item "
        "| fewer than fixed 7 | review % | target |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    everything: list[Live] = []
    where: list[str] = []
    paused: list[str] = []
    credits: list[str] = []
    reviewed: list[str] = []
    chosen = [mix for mix in MIXES if args.mix in mix]
    if args.mix:  # a named family outside the default mixes, e.g. "colluders 30%"
        chosen += [mix for mix in FAMILIES if args.mix in mix and mix not in chosen]
    for family in chosen:
        lives = [simulate(family, seed, args) for seed in seeds]
        everything += lives
        if args.gates:
            p = pauses(
                [lv.crew for lv in lives],  # type: ignore[misc]
                [lv.kind for lv in lives],
                [lv.true_coins @ lv.priors[::-1] for lv in lives],
            )
            paused.append(f"| {family} | {pause_cells(p)} |")
            reviewed.append(f"| {family} | {review_row(lives)} | {review_cells(p)} |")
        credits.append(f"| {family} | {credit_calibration(lives)} |")
        s = [score(lv, args.threshold, args.control_votes) for lv in lives]
        where.append(
            f"| {family} | {np.mean([x.per_decided for x in s]):.2f} "
            f"| {100 * np.mean([x.review_votes for x in s]):.0f} % "
            f"| {np.mean([x.coin_bias for x in s]):+.3f} "
            f"| {np.mean([x.sprt for x in s]) / (1 - CONTROL_RATE):.2f} |"
        )
        false, accepted = sum(x.false_accepts for x in s), sum(x.accepted for x in s)
        accuracy = np.mean([x.accuracy for x in s])
        fixed7 = np.mean([x.fixed7 for x in s])
        votes = np.mean([x.votes for x in s])
        met = sum(x.accuracy >= x.fixed7 and x.votes <= 0.7 * 7 for x in s)
        print(
            f"| {family} | {100 * (1 - false / max(accepted, 1)):.2f} ({false} / {accepted}) "
            f"| {100 * accuracy:.2f} | {100 * fixed7:.2f} | {votes:.2f} "
            f"| {100 * (1 - votes / 7):.0f} % | {100 * np.mean([x.review for x in s]):.1f} "
            f"| {met} of {len(s)} |"
        )
        for label, n, observed in calibration(lives):
            print(f"|   decided at {label} | {n} items | {100 * observed:.2f} % right | | | | | |")
    print(
        "\nWhere the votes go: label votes per accepted or rejected item, share of label votes "
        "spent on items that went to review, honest workers' learnt coins minus their truth "
        "(mean of sensitivity and specificity, workers judged on 5+ votes), and Wald's minimum "
        f"votes per item (controls counted) to decide every item at {args.threshold} with "
        f"the true coins; fixed 7 less 30 % is 4.90.\n\n"
        "| mix | votes / decided item | votes on review items | honest coin bias "
        "| SPRT minimum votes / item |\n| --- | --- | --- | --- | --- |"
    )
    print("\n".join(where))
    if paused:
        print(
            "\nPaused by the gates, of the workers who cast a label vote: honest workers right "
            ">= 80 % of the time on label items, then every other kind (paused / workers, in "
            "brackets those paused by the peer-agreement gate; median / mean label votes cast "
            "before the pause over those paused).\n\n"
            "| mix | honest >= 0.8 paused | others |\n| --- | --- | --- |"
        )
        print("\n".join(paused))
    if reviewed:
        print(
            f"\nCurator reviews (up to {args.reviews} contested items a wave, {WAVES} waves), "
            "summed over the seeds: reviews used (in brackets those that overturned the crowd's "
            "call), distinct items found contested when the "
            "curator looked (after each wave and each settlement; with 0 reviews once a wave), "
            "those still contested and unsettled at the end; accuracy over the items the "
            "curator did not settle (as the accuracy above); then per kind, workers paused by "
            "the blind-check test (still paused at the end) / workers the curator resumed at "
            "least once.\n\n"
            "| mix | reviews | contested found | contested left | crowd's accuracy % "
            "| blind-paused / resumed |\n| --- | --- | --- | --- | --- | --- |"
        )
        print("\n".join(reviewed))
    print(
        "\nThe crowd's call on credited votes (the side of the item's other votes' P(yes)), "
        "right %, by how sure that P was:\n\n| mix | [0.9, 0.95) | [0.95, 0.99) "
        "| [0.99, 0.999) | [0.999, 1] |\n| --- | --- | --- | --- | --- |"
    )
    print("\n".join(credits))
    print(
        "\nCalibration over all mixes:\n\n| decided at P in | items | right % |\n"
        "| --- | --- | --- |"
    )
    for label, n, observed in calibration(everything):
        print(f"| {label} | {n} | {100 * observed:.2f} |")


if __name__ == "__main__":
    main()
