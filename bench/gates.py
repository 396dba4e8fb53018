"""Quality gates: how often honest workers get paused, and how soon bad ones do.

    .venv/bin/python bench/gates.py            # 1,000 workers per family and stream
    .venv/bin/python bench/gates.py --small    # 200, a quick check

Simulated workers answer tasks at the live control rate and every answer goes through the pure
gate functions (labeling.crowd.gates: record_task, pause_decision) with the default settings.
Two task streams, as the task API serves them: verify tasks (one image; a control item with
probability CROWDNET_GOLD_RATE = 0.1, otherwise one label vote) and 3x3 grids (one control cell,
round(9 x 0.1), and 8 label votes per task). Control items' known answer is yes for half of
them, or for 90 % where said (yes-clickers need a set of controls with both answers).

Families (fresh seeds each run): honest (accuracy uniform 0.80-0.95, the same on yes and no
controls), honest at exactly the bar (0.80), weak honest (0.55-0.75), random spammers (0.5),
yes-clickers (right exactly on the yes controls), adversaries who answer controls right (and
real items wrong: no control gate can see them), always-wrong. Reported: share paused within
200 and 1,000 tasks, and label votes cast until the pause (median, 90th percentile, over the
workers paused within 1,000 tasks). "before" is the old rule (3 control misses in a row, or
under 70 % after 10) on the same answers. The exact chance that a worker at the bar is ever
paused within N control answers comes from dynamic programming over the same step function.

The speed gate is checked the same way: tasks under the time floor, at a share per worker.

The peer-agreement gate (peer_vote_evidence, peer_thresholds) on a stream of label votes, each
credited at once with the crowd's call on its item (P(yes) 0.99 or 0.01, right ``--call-right``
of the time; pools 50 % and 90 % yes): the pace it can reach, since live a vote is credited only
once its item is decided, without him, at least 0.9 sure (bench/consensus_live.py measures it
in the live simulation). Families answer label items as their controls, except adversaries,
who answer every label item wrong; the exact false-pause rate at the bar comes from dynamic
programming over the gate's own steps, in each test's worst case.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labeling.consensus import Votes, dawid_skene
from labeling.consensus.reliability import em_accuracy, own_confusions, spammer_score
from labeling.crowd.gates import (
    ControlAnswer,
    GateSettings,
    WorkerRecord,
    blind_threshold,
    crossing_chance,
    gold_thresholds,
    pause_decision,
    peer_thresholds,
    peer_vote_evidence,
    record_task,
)

GATES = GateSettings()
GOLD_RATE = 0.1
GRID_LABELS = 8  # 9 cells, one of them a control
HORIZONS = (200, 1000)
SLOW, FAST = 5.0, 0.1  # seconds per item


@dataclass(frozen=True)
class Family:
    """How a worker of this family answers a control item: P(right | known answer yes / no)."""

    name: str
    right: Callable[[np.random.Generator], tuple[float, float]]
    yes_share: float = 0.5


def _uniform(low: float, high: float) -> Callable[[np.random.Generator], tuple[float, float]]:
    def draw(rng: np.random.Generator) -> tuple[float, float]:
        accuracy = float(rng.uniform(low, high))
        return accuracy, accuracy

    return draw


FAMILIES = [
    Family("honest 0.80-0.95", _uniform(0.80, 0.95)),
    Family("honest at the bar 0.80", _uniform(0.80, 0.80)),
    Family("weak honest 0.55-0.75", _uniform(0.55, 0.75)),
    Family("random spammer", _uniform(0.5, 0.5)),
    Family("yes-clicker, controls 50 % yes", lambda rng: (1.0, 0.0)),
    Family("yes-clicker, controls 90 % yes", lambda rng: (1.0, 0.0), yes_share=0.9),
    Family("adversary (controls right)", _uniform(1.0, 1.0)),
    Family("always wrong", _uniform(0.0, 0.0)),
]


def _old_rule(rights: list[bool]) -> bool:
    """The gate this replaces: 3 misses in a row, or under 70 % after at least 10."""
    streak = 0
    for right in rights:
        streak = 0 if right else streak + 1
        if streak >= 3:
            return True
    return len(rights) >= 10 and sum(rights) / len(rights) < 0.7


def _worker(family: Family, stream: str, rng: np.random.Generator) -> tuple[int | None, ...]:
    """One worker over 1,000 tasks: (task of the new gate's pause, label votes cast by then,
    task of the old rule's pause); None where it never paused."""
    on_yes, on_no = family.right(rng)
    record, votes, rights = WorkerRecord(), 0, []
    paused_at = votes_at = old_at = None
    for task in range(1, HORIZONS[-1] + 1):
        if stream == "verify" and rng.random() >= GOLD_RATE:
            votes += 1
            continue
        votes += GRID_LABELS if stream == "grid" else 0
        positive = bool(rng.random() < family.yes_share)
        right = bool(rng.random() < (on_yes if positive else on_no))
        rights.append(right)
        if old_at is None and _old_rule(rights):
            old_at = task
        if paused_at is None:
            control = ControlAnswer(positive=positive, right=right)
            record = record_task(record, seconds_per_item=SLOW, gold=[control], gates=GATES)
            if pause_decision(record, GATES) is not None:
                paused_at, votes_at = task, votes
        if paused_at is not None and old_at is not None:
            break
    return paused_at, votes_at, old_at


def _share(tasks: list[int | None], horizon: int) -> float:
    return 100.0 * sum(t is not None and t <= horizon for t in tasks) / len(tasks)


def _votes(votes: list[int | None]) -> str:
    seen = [v for v in votes if v is not None]
    if not seen:
        return "never"
    return f"{np.median(seen):.0f} / {np.percentile(seen, 90):.0f}"


def control_gate(workers: int, seed: int) -> None:
    print("Control-item gate: % paused within 200 / 1,000 tasks (before: the old rule);")
    print("label votes cast until the pause, median / 90th percentile")
    for stream in ("verify", "grid"):
        print(f"\n  {stream} stream")
        print(
            f"  {'family':32} {'new 200':>8} {'new 1000':>9} {'old 200':>8} {'old 1000':>9}  votes"
        )
        for index, family in enumerate(FAMILIES):
            rng = np.random.default_rng([seed, index, stream == "grid"])
            runs = [_worker(family, stream, rng) for _ in range(workers)]
            new = [r[0] for r in runs]
            old = [r[2] for r in runs]
            print(
                f"  {family.name:32} {_share(new, 200):7.1f}% {_share(new, 1000):8.1f}% "
                f"{_share(old, 200):7.1f}% {_share(old, 1000):8.1f}%  "
                f"{_votes([r[1] for r in runs])}"
            )


def _exact_crossing(right: float, *, bad: float, alpha: float, steps: int) -> float:
    """P(one of the gate's floored SPRT sums reaches log(1 / alpha) within ``steps`` answers),
    for a worker right with probability ``right`` on each; exact, over the reachable sums."""
    good = GATES.gold_bar
    outcomes = [
        (math.log(bad / good), right),
        (math.log((1 - bad) / (1 - good)), 1 - right),
    ]
    return crossing_chance(outcomes, math.log(1 / alpha), steps)


def worst_case() -> None:
    print("\nExact: a worker right 80 % of the time (the bar), paused within N control answers")
    pooled, per_class = gold_thresholds(GATES)
    print(f"  thresholds {pooled:.2f} nats (all controls), {per_class:.2f} (each kind)")
    for steps in (200, 1000):
        all_controls = _exact_crossing(
            0.8, bad=GATES.gold_chance, alpha=GATES.false_pause / 2, steps=steps
        )
        each_kind = _exact_crossing(
            0.8, bad=GATES.class_wrong, alpha=GATES.false_pause / 4, steps=steps // 2
        )
        print(
            f"  N = {steps:4}: all controls {100 * all_controls:.2f} %, each kind (N/2 each) "
            f"{100 * each_kind:.2f} %, together at most "
            f"{100 * (all_controls + 2 * each_kind):.2f} %"
        )


def speed_gate(workers: int, seed: int) -> None:
    print("\nSpeed gate: % paused within 200 / 1,000 tasks (before: 3 of the last 10 tasks)")
    rng = np.random.default_rng([seed, 99])
    for share in (0.02, 0.05, 0.1, 0.5, 1.0):
        new, old = [], []
        for _ in range(workers):
            fast = rng.random(HORIZONS[-1]) < share
            record, at = WorkerRecord(), None
            for task, is_fast in enumerate(fast, start=1):
                seconds = FAST if is_fast else SLOW
                record = record_task(record, seconds_per_item=seconds, gold=[], gates=GATES)
                if pause_decision(record, GATES) is not None:
                    at = task
                    break
            new.append(at)
            window = np.convolve(fast, np.ones(10, dtype=int))[: len(fast)]
            hits = np.flatnonzero(window >= 3)
            old.append(int(hits[0]) + 1 if len(hits) else None)
        print(
            f"  fast on {share:4.0%} of tasks: new {_share(new, 200):5.1f}% / "
            f"{_share(new, 1000):5.1f}%, before {_share(old, 200):5.1f}% / "
            f"{_share(old, 1000):5.1f}%"
            + (
                f", paused at task {np.median([t for t in new if t]):.0f} (median)"
                if any(new)
                else ""
            )
        )


DS_ITEMS, DS_HONEST, DS_REDUNDANCY = 600, 15, 3
DS_CHECKS = (10, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300)


def _ds_paused(votes: Votes, worker: int) -> bool:
    """The re-aggregation's gate (labeling.services.reaggregation) on one worker, defaults: at
    least 30 label votes and 10 (in expectation) on items of each class, then, on the matrix
    of his own votes, a spammer score under 0.05 or an accuracy under 0.5."""
    result = dawid_skene(votes, smoothing=1.0)
    mine = votes.worker == worker
    evidence = result.posteriors[votes.item[mine]].sum(axis=0)
    if mine.sum() < 30 or evidence.min() < 10:
        return False
    own = own_confusions(votes, result.posteriors)
    spam = spammer_score(own)[worker]
    accuracy = em_accuracy(own, result.class_priors)[worker]
    return bool(spam < 0.05 or accuracy < 0.5)


def _ds_trial(kind: str, prior: float, rng: np.random.Generator) -> int | None:
    """Label votes one bad worker casts, among 15 honest ones (0.80-0.95, 3 votes per item on
    600 items), before a Dawid-Skene run would pause him (checked at DS_CHECKS)."""
    truth = rng.random(DS_ITEMS) < prior
    accuracy = rng.uniform(0.8, 0.95, DS_HONEST)
    items = np.repeat(np.arange(DS_ITEMS), DS_REDUNDANCY)
    workers = np.concatenate([rng.choice(DS_HONEST, DS_REDUNDANCY, replace=False) for _ in truth])
    right = rng.random(len(items)) < accuracy[workers]
    labels = np.where(right, truth[items], ~truth[items])
    mine = rng.permutation(DS_ITEMS)[: DS_CHECKS[-1]]
    answers = {
        "random spammer": rng.random(len(mine)) < 0.5,
        "always wrong": ~truth[mine],
        "yes-clicker": np.ones(len(mine), dtype=bool),
    }[kind]
    for n in DS_CHECKS:
        votes = Votes.from_arrays(
            np.concatenate([items, mine[:n]]),
            np.concatenate([workers, np.full(n, DS_HONEST)]),
            np.concatenate([labels, answers[:n]]).astype(np.int64),
            n_items=DS_ITEMS,
            n_workers=DS_HONEST + 1,
            n_classes=2,
        )
        if _ds_paused(votes, DS_HONEST):
            return n
    return None


def model_gate(trials: int, seed: int) -> None:
    print(
        "\nDawid-Skene gate (at its next run, every 15 min): label votes a bad worker had cast "
        "when a run would pause him, median / 90th percentile (never: not by 300)"
    )
    rng = np.random.default_rng([seed, 7])
    for prior in (0.5, 0.9):
        for kind in ("random spammer", "always wrong", "yes-clicker"):
            when = [_ds_trial(kind, prior, rng) for _ in range(trials)]
            caught = [n for n in when if n is not None]
            shown = (
                f"{np.median(caught):.0f} / {np.percentile(caught, 90):.0f}" if caught else "never"
            )
            print(
                f"  pool {prior:.0%} yes, {kind:15}: {shown}, "
                f"{100 * len(caught) / trials:.0f} % paused by 300"
            )


PEER_VOTES = 1000


def _floored_first_crossing(steps: np.ndarray, threshold: float) -> np.ndarray:
    """(workers,) the first vote (1-based) at which the floored sum of ``steps`` (workers,
    votes) reaches ``threshold``, 0 where never: the floor at -2 threshold is Lindley's
    recursion, S_n = C_n + max(0, -2 threshold - min_k<=n C_k) from S_0 = 0."""
    total = np.cumsum(steps, axis=1)
    lowest = np.minimum.accumulate(np.minimum(total, 0.0), axis=1)
    floored = total + np.maximum(0.0, -2.0 * threshold - lowest)
    hit = floored >= threshold
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)


def _peer_family(family: Family, share: float, call_right: float, workers: int, seed: int):
    """Label votes until the peer gate pauses each worker (0: never within PEER_VOTES)."""
    rng = np.random.default_rng(seed)
    rights = np.array([family.right(rng) for _ in range(workers)])  # (on yes, on no)
    if family.name.startswith("adversary"):
        rights[:] = 0.0
    truth = rng.random((workers, PEER_VOTES)) < share
    on_truth = np.where(truth, rights[:, :1], rights[:, 1:])
    said = np.where(rng.random(truth.shape) < on_truth, truth, ~truth)
    call = np.where(rng.random(truth.shape) < call_right, truth, ~truth)
    q = np.where(call, 0.99, 0.01)
    evidence = peer_vote_evidence(said.ravel(), q.ravel(), GATES).reshape(workers, PEER_VOTES, 3)
    firsts = [
        _floored_first_crossing(evidence[:, :, k], threshold)
        for k, threshold in enumerate(peer_thresholds(GATES))
    ]
    stacked = np.stack([np.where(f > 0, f, PEER_VOTES + 1) for f in firsts], axis=1).min(axis=1)
    return np.where(stacked <= PEER_VOTES, stacked, 0)


def peer_gate(workers: int, seed: int, call_right: float) -> None:
    print(
        f"\nPeer-agreement gate, every label vote credited at once, the crowd's call right "
        f"{call_right:.0%} of the time: % paused within 200 / 1,000 label votes; votes until "
        "the pause, median / 90th percentile"
    )
    for share in (0.5, 0.9):
        print(f"\n  pool {share:.0%} yes")
        for index, family in enumerate(FAMILIES):
            if family.name.startswith("yes-clicker, controls 90"):
                continue  # the same worker as above on label items
            when = _peer_family(
                family, share, call_right, workers, seed + 7919 * index + int(share * 10)
            )
            paused = when[when > 0]
            shown = (
                f"{np.median(paused):.0f} / {np.percentile(paused, 90):.0f}"
                if paused.size
                else "never"
            )
            name = family.name.split(",")[0].replace(" (controls right)", "")
            print(
                f"  {name:32} {100 * np.mean((when > 0) & (when <= 200)):5.1f}% "
                f"{100 * np.mean(when > 0):5.1f}%  {shown}"
            )


def _peer_exact(test: int, agree: float, steps: int) -> float:
    """P(peer test ``test`` reaches its threshold within ``steps`` credits) for a worker who
    agrees with every credit's call (0.99, taken at 0.95) with probability ``agree``."""
    p_yes = 0.01 if test == 2 else 0.99
    agree_yes = 0 if test == 2 else 1
    ratio = peer_vote_evidence([agree_yes, 1 - agree_yes], [p_yes] * 2, GATES)[:, test]
    outcomes = [(float(ratio[0]), agree), (float(ratio[1]), 1 - agree)]
    return crossing_chance(outcomes, peer_thresholds(GATES)[test], steps)


def peer_worst_case() -> None:
    trust = GATES.peer_trust
    coin_agree = trust * GATES.gold_bar + (1 - trust) * (1 - GATES.gold_bar)
    kind_agree = trust * GATES.gold_bar
    print(
        "\nExact, the peer gate's worst cases: a worker at the bar, every call right exactly "
        f"{trust:.0%} of the time (so he agrees {coin_agree:.2f} of the time; for a kind's "
        f"test, right {GATES.gold_bar:.0%} on that kind and always on the other: "
        f"{kind_agree:.2f}), paused within N credits"
    )
    for steps in (200, 1000):
        coin = _peer_exact(0, coin_agree, steps)
        kind = _peer_exact(1, kind_agree, steps)
        print(
            f"  N = {steps:4}: coin test {100 * coin:.3f} %, each kind's {100 * kind:.3f} %, "
            f"together at most {100 * (coin + 2 * kind):.3f} %"
        )


def blind_worst_case() -> None:
    print(
        "\nExact, the blind-check test (a curator's later decision on an item checks the votes "
        "cast on it): a worker right 80 % of the time on the checks, paused within N checks"
    )
    for steps in (20, 200):
        chance = _exact_crossing(
            0.8, bad=GATES.class_wrong, alpha=GATES.blind_false_pause, steps=steps
        )
        print(f"  N = {steps:4}: {100 * chance:.4f} % (threshold {blind_threshold(GATES):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="200 workers per family")
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    parser.add_argument(
        "--call-right",
        type=float,
        default=0.98,
        help="how often the crowd's call on a credited item is right (peer-agreement gate)",
    )
    parser.add_argument("--peer-only", action="store_true", help="only the peer-agreement gate")
    args = parser.parse_args()
    workers = 200 if args.small else 1000
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, seed {args.seed}")
    print(f"{workers} workers per family and stream, {HORIZONS[-1]} tasks each\n")
    peer_gate(workers, args.seed, args.call_right)
    peer_worst_case()
    blind_worst_case()
    if args.peer_only:
        return
    control_gate(workers, args.seed)
    worst_case()
    speed_gate(workers, args.seed)
    model_gate(20 if args.small else 60, args.seed)


if __name__ == "__main__":
    main()
