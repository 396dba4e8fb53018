"""Adaptive against fixed redundancy on binary verification: accuracy and votes per item.

    .venv/bin/python bench/consensus_adaptive.py            # 20,000 items
    .venv/bin/python bench/consensus_adaptive.py --small    # 2,000 items, a quick check

Simulates yes/no verification (bench/consensus_crowds.py): truth is yes for 60 % of items; a
pool of 300 workers, 85 % honest with accuracy uniform in [0.6, 0.95] and 15 % spammers (half
answer at random, half always the same). Every item has its own queue of distinct workers and
their answers, drawn once, so all rules see the same answers in the same order; the process
runs in rounds, every item still open getting its next vote each round, until its rule stops:

- fixed 3, 5, 7: majority of that many votes;
- table: ImageNet's dynamic consensus. A calibration sample (300 extra items, 10 votes each)
  fits ``fit_confidence_table``; ``decide`` then stops an item at the threshold or the cap;
- weighted: every worker first answers 10 gold questions; ``gold_accuracy`` (Beta(2, 1)
  posterior mean) is his accuracy, ``binary_posteriors`` (prior 0.5) weighs his votes by it,
  and ``allocate`` stops an item at the threshold or the cap.

Votes per item include the overhead: calibration votes for the table, gold answers for the
weighted rule, spread over the items. An item that reaches the cap undecided (REVIEW, a
curator's in the product) takes the side its posterior favours here; the review share is shown.
Thresholds and caps are swept on one simulated crowd; the most accurate setting there that
costs at most 70 % of fixed 7's votes, and a default setting, are then measured on 10 fresh
crowds (new workers, items and answers each), against fixed 7 on the same crowd.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from consensus_crowds import WorkerPool, draw_answers, draw_workers, make_pool
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labeling.consensus.adaptive import allocate, binary_posteriors
from labeling.consensus.decisions import ACCEPT, CONTINUE, REJECT, REVIEW
from labeling.consensus.dynamic import decide, fit_confidence_table
from labeling.consensus.reliability import gold_accuracy

PRIOR_YES = 0.6
N_WORKERS = 300
POOL = {
    "honest_accuracy": (0.6, 0.95),
    "random_spammers": 0.075,
    "constant_spammers": 0.075,
    "activity_sigma": 0.5,
}
QUEUE = 15
"""Votes drawn per item: more than any rule's cap."""
CALIBRATION_ITEMS = 300
CALIBRATION_VOTES = 10
GOLD_PER_WORKER = 10
THRESHOLDS = (0.9, 0.93, 0.95, 0.97, 0.99)
CAPS = (7, 10)


@dataclass(frozen=True)
class Queue:
    """Per item (rows): the truth (1 yes, 0 no), then its voters and their answers in order."""

    truth: NDArray[np.int64]
    workers: NDArray[np.int64]
    answers: NDArray[np.int64]


@dataclass(frozen=True)
class World:
    """One simulated crowd: the live items, the calibration sample and the gold test."""

    pool: WorkerPool
    live: Queue
    calibration: Queue
    gold_correct: NDArray[np.int64]


def make_queue(rng: np.random.Generator, pool: WorkerPool, n_items: int, length: int) -> Queue:
    truth = (rng.random(n_items) < PRIOR_YES).astype(np.int64)
    workers = draw_workers(rng, pool.activity, n_items, length)
    on_gold = np.zeros(workers.shape, dtype=bool)
    answers = draw_answers(
        rng, pool, workers, np.broadcast_to(truth[:, None], workers.shape), on_gold
    )
    return Queue(truth, workers, answers)


def make_world(seed: int, n_items: int) -> World:
    rng = np.random.default_rng(seed)
    pool = make_pool(rng, N_WORKERS, 2, **POOL)  # type: ignore[arg-type]
    live = make_queue(rng, pool, n_items, QUEUE)
    calibration = make_queue(rng, pool, CALIBRATION_ITEMS, CALIBRATION_VOTES)
    gold_truth = (rng.random((N_WORKERS, GOLD_PER_WORKER)) < PRIOR_YES).astype(np.int64)
    workers = np.broadcast_to(np.arange(N_WORKERS)[:, None], gold_truth.shape)
    gold_answers = draw_answers(rng, pool, workers, gold_truth, np.ones(gold_truth.shape, bool))
    return World(pool, live, calibration, (gold_answers == gold_truth).sum(axis=1))


@dataclass(frozen=True)
class Outcome:
    """What a rule did: accuracy, votes per item (overhead included), share sent to review."""

    accuracy: float
    votes: float
    overhead: float
    review: float


Step = Callable[[NDArray[np.int64], int], tuple[NDArray[np.int8], NDArray[np.float64]]]
"""(open items, votes each has) -> (decision codes, P(yes)) for those items."""


def run_rounds(queue: Queue, cap: int, step: Step, overhead_votes: int) -> Outcome:
    """Rounds of one more vote for every open item, until ``step`` stops each or ``cap``."""
    n_items = len(queue.truth)
    codes = np.full(n_items, CONTINUE, dtype=np.int8)
    p_yes = np.full(n_items, np.nan)
    count = np.zeros(n_items, dtype=np.int64)
    still_open = np.arange(n_items)
    for votes in range(1, cap + 1):
        count[still_open] = votes
        codes[still_open], p_yes[still_open] = step(still_open, votes)
        still_open = still_open[codes[still_open] == CONTINUE]
        if not still_open.size:
            break
    if (codes == CONTINUE).any():
        raise RuntimeError("a rule left items open at its cap")
    labels = np.where(codes == ACCEPT, 1, np.where(codes == REJECT, 0, p_yes >= 0.5))
    overhead = overhead_votes / n_items
    return Outcome(
        accuracy=float((labels == queue.truth).mean()),
        votes=float(count.mean()) + overhead,
        overhead=overhead,
        review=float((codes == REVIEW).mean()),
    )


def fixed_majority(queue: Queue, votes: int) -> Outcome:
    yes = queue.answers[:, :votes].sum(axis=1)
    labels = (2 * yes > votes).astype(np.int64)
    return Outcome(float((labels == queue.truth).mean()), float(votes), 0.0, 0.0)


def table_rule(world: World, threshold: float, cap: int) -> Outcome:
    """ImageNet's dynamic consensus with a table fitted on the calibration sample."""
    calibration_yes = world.calibration.answers.sum(axis=1)
    table = fit_confidence_table(
        calibration_yes, CALIBRATION_VOTES - calibration_yes, cap=CALIBRATION_VOTES
    )
    answers = world.live.answers

    def step(items: NDArray[np.int64], votes: int) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
        yes = answers[items, :votes].sum(axis=1)
        codes = decide(table, yes, votes - yes, threshold=threshold, cap=cap)
        return codes, table.table[yes, votes - yes]

    overhead = CALIBRATION_ITEMS * CALIBRATION_VOTES
    return run_rounds(world.live, cap, step, overhead)


def weighted_rule(world: World, threshold: float, cap: int) -> Outcome:
    """Votes weighted by gold-estimated accuracy; stop at the posterior threshold or cap."""
    accuracy = gold_accuracy(world.gold_correct, np.full(N_WORKERS, GOLD_PER_WORKER))
    answers, workers = world.live.answers, world.live.workers

    def step(items: NDArray[np.int64], votes: int) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
        seen = np.repeat(np.arange(len(items)), votes)
        posterior = binary_posteriors(
            seen,
            answers[items, :votes].ravel(),
            accuracy[workers[items, :votes]].ravel(),
            len(items),
            0.5,
        )
        codes, _priority = allocate(
            posterior, np.full(len(items), votes), threshold=threshold, cap=cap
        )
        return codes, posterior

    return run_rounds(world.live, cap, step, N_WORKERS * GOLD_PER_WORKER)


Rule = Callable[["World", float, int], Outcome]


def meets_target(outcome: Outcome, reference: Outcome) -> bool:
    """At least fixed 7's accuracy with at least 30 % fewer votes."""
    return outcome.accuracy >= reference.accuracy and outcome.votes <= 0.7 * reference.votes


def row(name: str, outcome: Outcome, reference: Outcome | None = None) -> str:
    cells = [
        name,
        f"{100 * outcome.accuracy:.2f}",
        f"{outcome.votes:.2f}",
        f"{outcome.overhead:.2f}",
        f"{100 * outcome.review:.1f}",
    ]
    if reference is not None:
        saved = 1.0 - outcome.votes / reference.votes
        cells += [f"{100 * saved:.0f} %", "met" if meets_target(outcome, reference) else "not met"]
    else:
        cells += ["", ""]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| rule | accuracy % | votes / item | of which overhead | review % | fewer votes than fixed 7 "
    "| target |\n| --- | --- | --- | --- | --- | --- | --- |"
)


def sweep(world: World) -> tuple[tuple[float, int], tuple[float, int]]:
    """Print the threshold x cap sweep; return, for each adaptive rule, the most accurate
    setting that costs at most 70 % of fixed 7's votes (the cheapest one if none does)."""
    reference = fixed_majority(world.live, 7)
    print(HEADER)
    print(row("fixed 7", reference))
    chosen = []
    for name, rule in (("table", table_rule), ("weighted", weighted_rule)):
        outcomes = {}
        for cap in CAPS:
            for threshold in THRESHOLDS:
                outcomes[threshold, cap] = outcome = rule(world, threshold, cap)
                print(row(f"{name}, threshold {threshold}, cap {cap}", outcome, reference))
        budget = [s for s, o in outcomes.items() if o.votes <= 0.7 * reference.votes]
        if budget:
            chosen.append(max(budget, key=lambda s: outcomes[s].accuracy))
        else:
            chosen.append(min(outcomes, key=lambda s: outcomes[s].votes))
    return chosen[0], chosen[1]


def evaluate(n_items: int, seeds: range, settings: list[tuple[str, Rule, float, int]]) -> None:
    """Print each rule's mean over fresh crowds and in how many of them it met the target."""
    results: dict[str, list[tuple[Outcome, Outcome]]] = {}
    for seed in seeds:
        world = make_world(seed, n_items)
        reference = fixed_majority(world.live, 7)
        for votes in (3, 5, 7):
            results.setdefault(f"fixed {votes}", []).append(
                (fixed_majority(world.live, votes), reference)
            )
        for name, rule, threshold, cap in settings:
            results.setdefault(name, []).append((rule(world, threshold, cap), reference))
    print(
        "| rule | accuracy % | votes / item | of which overhead | review % "
        "| accuracy - fixed 7 (points) | fewer votes than fixed 7 | target met |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, pairs in results.items():
        mean = {
            field: float(np.mean([getattr(o, field) for o, _ in pairs]))
            for field in ("accuracy", "votes", "overhead", "review")
        }
        gain = np.mean([o.accuracy - r.accuracy for o, r in pairs])
        saved = 1.0 - mean["votes"] / 7.0
        met = f"{sum(meets_target(o, r) for o, r in pairs)} of {len(pairs)} crowds"
        print(
            f"| {name} | {100 * mean['accuracy']:.2f} | {mean['votes']:.2f} "
            f"| {mean['overhead']:.2f} | {100 * mean['review']:.1f} | {100 * gain:+.2f} "
            f"| {100 * saved:.0f} % | {'' if name.startswith('fixed') else met} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="2,000 items, 3 test crowds")
    args = parser.parse_args()
    n_items = 2_000 if args.small else 20_000
    test_seeds = range(101, 104) if args.small else range(101, 111)
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(f"{n_items:,} live items, P(yes) {PRIOR_YES}, {N_WORKERS} workers, 15 % spammers")

    print("\nSweep on the tuning crowd (seed 1):\n")
    table_setting, weighted_setting = sweep(make_world(1, n_items))

    settings: list[tuple[str, Rule, float, int]] = []
    for name, rule, default, tuned in (
        ("table", table_rule, (0.95, 10), table_setting),
        ("weighted", weighted_rule, (0.95, 7), weighted_setting),
    ):
        for label, (threshold, cap) in [("default", default), ("tuned", tuned)]:
            if label == "default" or tuned != default:
                settings.append(
                    (f"{name}, {threshold} / cap {cap} ({label})", rule, threshold, cap)
                )
    print(f"\nMean over {len(test_seeds)} fresh crowds (seeds {test_seeds[0]}-{test_seeds[-1]}):\n")
    evaluate(n_items, test_seeds, settings)


if __name__ == "__main__":
    main()
