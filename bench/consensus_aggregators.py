"""Label aggregation: accuracy and wall time of our aggregators against crowd-kit's.

    .venv/bin/python bench/consensus_aggregators.py            # 20,000 and 200,000 items
    .venv/bin/python bench/consensus_aggregators.py --small    # 2,000 items, a quick check
    .venv/bin/python bench/consensus_aggregators.py --skip-mace  # no MACE (minutes at 1M votes)
    .venv/bin/python bench/consensus_aggregators.py --families   # every crowd family, 3 seeds
    .venv/bin/python bench/consensus_aggregators.py --families --seed 7 --seeds 5
    .venv/bin/python bench/consensus_aggregators.py --families --only inverters,adversaries

``--families`` scores majority vote, Dawid-Skene and one-coin Dawid-Skene (ours) against
crowd-kit's MajorityVote and DawidSkene on each crowd family of ``consensus_crowds.FAMILIES``
(sparse, rare classes, many classes with confusers, colluders, yes-clickers, inverters, ...),
on ``--seeds`` fresh crowds each: seeds ``--seed``, ``--seed`` + 1, ..., the first taken from
the clock unless given. It prints per family the mean accuracy over the seeds (non-gold
items), the worst per-seed margin of our Dawid-Skene over crowd-kit's and over our majority
vote (random ties; crowd-kit's breaks them by first appearance), and the recall of the rarest
class; the Bayes oracle uses the true matrices (for colluders their average one, so it is not
the optimum there).

Simulates a crowd (bench/consensus_crowds.py) of 300 workers on 5 classes: 15 % spammers
(half uniform, half always the same class), 10 % confusers (0 <-> 1 and 2 <-> 3), 3 %
adversaries (right on gold, wrong elsewhere), the rest honest with accuracy 0.55-0.95; 5 % of
items are gold; each item gets 5 votes from distinct workers. On each size it measures
accuracy against the truth on the non-gold items, and wall time, of:

- ours, in this process: majority vote, Dawid-Skene, one-coin Dawid-Skene, Dawid-Skene with
  the gold items clamped (time includes building ``Votes`` from the three arrays);
- crowd-kit, in a subprocess of a separate venv (``--crowdkit-python``; crowd-kit is not a
  project dependency): MajorityVote, DawidSkene, OneCoinDawidSkene, DawidSkene with
  ``true_labels`` and MACE (time is the ``fit_predict`` call only, not building the DataFrame);
- the Bayes oracle: posterior under the true confusion matrices and class priors.

Both Dawid-Skene implementations run with their default stopping rule, capped at 100 rounds:
ours stops when no posterior moves by 1e-6, crowd-kit's when the evidence lower bound per vote
rises by less than 1e-5 (``DawidSkene(n_iter=100, tol=1e-5)``, its defaults). One more row runs
ours with a looser ``tol=1e-3``, next to crowd-kit's default run. Ties in majority vote: ours
takes the lowest class (the most common one here) or, in its second row, a random one;
crowd-kit's goes by the order labels first appear in the data. MACE runs with crowd-kit's
defaults (10 restarts of 50 rounds) unless ``--mace-restarts`` / ``--mace-iter`` say otherwise.

Set up the crowd-kit venv once with::

    python3.11 -m venv /work/benchenv
    /work/benchenv/bin/pip install 'crowd-kit==1.4.2' 'scikit-learn<1.8' numpy pandas tqdm
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from consensus_crowds import FAMILIES, Crowd, describe, make_crowd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labeling.consensus.dawid_skene import dawid_skene, one_coin_dawid_skene  # noqa: E402
from labeling.consensus.majority import majority_vote  # noqa: E402
from labeling.consensus.result import AggregateResult  # noqa: E402
from labeling.consensus.votes import Votes  # noqa: E402

Outcome = tuple[np.ndarray, float, int]
"""(labels, seconds, EM rounds)."""
PRIORS = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
CROWD = {
    "n_workers": 300,
    "votes_per_item": 5,
    "gold_fraction": 0.05,
    "honest_accuracy": (0.55, 0.95),
    "confusers": 0.10,
    "random_spammers": 0.075,
    "constant_spammers": 0.075,
    "adversaries": 0.03,
    "confused_pairs": ((0, 1), (2, 3)),
    "confusion": 0.4,
}
CROWDKIT_METHODS = ("MajorityVote", "DawidSkene", "OneCoinDawidSkene", "DawidSkene+gold", "MACE")


def crowdkit_worker(args: argparse.Namespace) -> None:
    """Runs inside the crowd-kit venv: one method on the votes in ``args.votes``; writes
    labels, seconds and EM rounds to ``args.out``."""
    import pandas as pd
    from crowdkit.aggregation import MACE, DawidSkene, MajorityVote, OneCoinDawidSkene

    arrays = np.load(args.votes)
    data = pd.DataFrame(
        {"task": arrays["item"], "worker": arrays["worker"], "label": arrays["label"]}
    )
    n_items = int(arrays["n_items"])
    method = args.method
    extra: dict[str, object] = {}
    if method == "MajorityVote":
        model: object = MajorityVote()
    elif method == "DawidSkene":
        model = DawidSkene(n_iter=100, tol=1e-5)
    elif method == "OneCoinDawidSkene":
        model = OneCoinDawidSkene(n_iter=100, tol=1e-5)
    elif method == "DawidSkene+gold":
        model = DawidSkene(n_iter=100, tol=1e-5)
        extra["true_labels"] = pd.Series(arrays["gold_labels"], index=arrays["gold_items"])
    else:
        model = MACE(n_restarts=args.mace_restarts, n_iter=args.mace_iter, random_state=0)
    start = time.perf_counter()
    labels = model.fit_predict(data, **extra)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    history = getattr(model, "loss_history_", None)
    result = labels.reindex(range(n_items)).fillna(-1).to_numpy(dtype=np.int64)
    np.savez(args.out, labels=result, seconds=seconds, iterations=len(history or ()))


def crowdkit_family_worker(args: argparse.Namespace) -> None:
    """Runs inside the crowd-kit venv: MajorityVote and DawidSkene on ``args.votes``; writes
    both label arrays to ``args.out`` (one process per crowd: importing crowd-kit is slow)."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene, MajorityVote

    arrays = np.load(args.votes)
    data = pd.DataFrame(
        {"task": arrays["item"], "worker": arrays["worker"], "label": arrays["label"]}
    )
    n_items = int(arrays["n_items"])
    found = {}
    for name, model in (("MajorityVote", MajorityVote()), ("DawidSkene", DawidSkene(100, 1e-5))):
        labels = model.fit_predict(data)  # type: ignore[attr-defined]
        found[name] = labels.reindex(range(n_items)).fillna(-1).to_numpy(dtype=np.int64)
    np.savez(args.out, **found)


def run_crowdkit(
    python: str, votes_path: Path, method: str, args: argparse.Namespace
) -> Outcome | str:
    """(labels, seconds, EM rounds) from one crowd-kit method, or why there are none."""
    out = votes_path.with_name(f"{method}.npz")
    command = [
        python,
        str(Path(__file__).resolve()),
        "--crowdkit-worker",
        "--votes",
        str(votes_path),
        "--out",
        str(out),
        "--method",
        method,
        "--mace-restarts",
        str(args.mace_restarts),
        "--mace-iter",
        str(args.mace_iter),
    ]
    try:
        subprocess.run(command, check=True, timeout=args.crowdkit_timeout)
    except subprocess.TimeoutExpired:
        return f"over {args.crowdkit_timeout} s"
    except (subprocess.CalledProcessError, OSError) as error:
        return f"failed: {error}"
    result = np.load(out)
    return result["labels"], float(result["seconds"]), int(result["iterations"])


def crowd_votes(crowd: Crowd) -> Votes:
    """The crowd's votes as the aggregators take them."""
    return Votes.from_arrays(
        crowd.item,
        crowd.worker,
        crowd.label,
        n_items=crowd.n_items,
        n_workers=crowd.pool.n_workers,
        n_classes=crowd.pool.n_classes,
    )


def run_ours(crowd: Crowd) -> dict[str, Outcome]:
    """Our aggregators on the crowd's votes: name -> (labels, seconds, EM rounds)."""
    gold = (np.flatnonzero(crowd.gold), crowd.truth[crowd.gold])

    def votes() -> Votes:
        return crowd_votes(crowd)

    runs: dict[str, Callable[[], AggregateResult]] = {
        "majority": lambda: majority_vote(votes(), tie="lowest"),
        "majority, random ties": lambda: majority_vote(votes(), tie="random"),
        "Dawid-Skene": lambda: dawid_skene(votes()),
        "Dawid-Skene, tol 1e-3": lambda: dawid_skene(votes(), tol=1e-3),
        "one-coin DS": lambda: one_coin_dawid_skene(votes()),
        "DS + gold": lambda: dawid_skene(votes(), gold=gold),
    }
    results = {}
    for name, call in runs.items():
        start = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - start
        results[name] = (result.labels, seconds, result.iterations)
        print(f"  ours {name}: {seconds:.2f} s", flush=True)
    return results


PAIRS: tuple[tuple[str | None, str | None], ...] = (
    ("majority", "MajorityVote"),
    ("majority, random ties", None),
    ("Dawid-Skene", "DawidSkene"),
    ("Dawid-Skene, tol 1e-3", "DawidSkene"),
    ("one-coin DS", "OneCoinDawidSkene"),
    ("DS + gold", "DawidSkene+gold"),
    (None, "MACE"),
)


def bench_size(n_items: int, seed: int, args: argparse.Namespace) -> list[str]:
    """Markdown table rows for one crowd size."""
    crowd = make_crowd(seed, n_items, priors=PRIORS, **CROWD)  # type: ignore[arg-type]
    scored = ~crowd.gold
    n_votes = len(crowd.item)
    print(f"\n{n_items:,} items, {n_votes:,} votes; workers: {describe(crowd.pool)}", flush=True)

    def accuracy(labels: np.ndarray) -> float:
        return float((labels[scored] == crowd.truth[scored]).mean())

    ours = run_ours(crowd)
    theirs: dict[str, Outcome | str] = {}
    if not args.skip_crowdkit:
        with tempfile.TemporaryDirectory() as folder:
            votes_path = Path(folder) / "votes.npz"
            np.savez(
                votes_path,
                item=crowd.item,
                worker=crowd.worker,
                label=crowd.label,
                n_items=n_items,
                gold_items=np.flatnonzero(crowd.gold),
                gold_labels=crowd.truth[crowd.gold],
            )
            for method in CROWDKIT_METHODS:
                if method == "MACE" and args.skip_mace:
                    continue
                theirs[method] = run_crowdkit(args.crowdkit_python, votes_path, method, args)
                outcome = theirs[method]
                shown = outcome if isinstance(outcome, str) else f"{outcome[1]:.2f} s"
                print(f"  crowd-kit {method}: {shown}", flush=True)

    rows = pair_rows(n_items, ours, theirs, accuracy)
    oracle = accuracy(crowd.oracle_posteriors().argmax(axis=1))
    rows.append(f"| {n_items:,} | Bayes oracle | {100 * oracle:.2f} |" + " |" * 7)
    return rows


def pair_rows(
    n_items: int,
    ours: dict[str, Outcome],
    theirs: dict[str, Outcome | str],
    accuracy: Callable[[np.ndarray], float],
) -> list[str]:
    """One Markdown row per (ours, crowd-kit) pair: accuracy, seconds, rounds, speed-ups."""
    rows = []
    for ours_name, their_name in PAIRS:
        cells = [f"{n_items:,}", f"{ours_name or '-'} / {their_name or '-'}"]
        mine = ours[ours_name] if ours_name else None
        other = theirs.get(their_name, "not run") if their_name else None
        for outcome in (mine, other):
            if isinstance(outcome, tuple):
                labels, seconds, rounds = outcome
                cells += [f"{100 * accuracy(labels):.2f}", f"{seconds:.2f}", str(rounds or "")]
            else:
                cells += [outcome or "", "", ""]
        if isinstance(mine, tuple) and isinstance(other, tuple):
            cells.append(f"{other[1] / mine[1]:.1f}x")
            rounds_run = mine[2] and other[2]
            per_round = (other[1] / other[2]) / (mine[1] / mine[2]) if rounds_run else None
            cells.append(f"{per_round:.1f}x" if per_round else "")
        else:
            cells += ["", ""]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def family_seed(crowd: Crowd, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Labels per method (ours and, unless skipped, crowd-kit's) on one crowd."""
    votes = crowd_votes(crowd)
    found = {
        "majority": majority_vote(votes, tie="random", rng=np.random.default_rng(0)).labels,
        "DS": dawid_skene(votes).labels,
        "one-coin": one_coin_dawid_skene(votes).labels,
        "oracle": crowd.oracle_posteriors().argmax(axis=1),
    }
    if args.skip_crowdkit:
        return found
    with tempfile.TemporaryDirectory() as folder:
        votes_path, out = Path(folder) / "votes.npz", Path(folder) / "out.npz"
        np.savez(
            votes_path,
            item=crowd.item,
            worker=crowd.worker,
            label=crowd.label,
            n_items=crowd.n_items,
        )
        command = [args.crowdkit_python, str(Path(__file__).resolve()), "--crowdkit-family"]
        command += ["--votes", str(votes_path), "--out", str(out)]
        subprocess.run(command, check=True, timeout=args.crowdkit_timeout)
        theirs = np.load(out)
        found["ck majority"], found["ck DS"] = theirs["MajorityVote"], theirs["DawidSkene"]
    return found


def bench_families(args: argparse.Namespace) -> None:
    """One Markdown row per crowd family, over ``args.seeds`` seeds from ``args.seed``."""
    seeds = [args.seed + offset for offset in range(args.seeds)]
    print(f"seeds: {seeds}")
    columns = ("majority", "DS", "one-coin", "ck majority", "ck DS", "oracle")
    print(
        "\n| family | votes/worker | "
        + " | ".join(f"{c} %" for c in columns)
        + " | DS - ck DS, worst seed | DS - majority, worst seed"
        + " | rarest-class recall DS / ck DS / oracle |"
    )
    print("| --- " * (len(columns) + 5) + "|")
    wanted = [part for part in args.only.split(",") if part]
    for name, family in FAMILIES.items():
        if wanted and not any(part in name for part in wanted):
            continue
        options = dict(family)
        n_items = int(options.pop("n_items"))  # type: ignore[call-overload]
        scores: dict[str, list[float]] = {}
        recall: dict[str, list[float]] = {}
        per_worker = []
        for seed in seeds:
            crowd = make_crowd(seed, n_items, **options)  # type: ignore[arg-type]
            scored = ~crowd.gold
            rarest = scored & (crowd.truth == int(np.argmin(crowd.priors)))
            per_worker.append(len(crowd.item) / np.unique(crowd.worker).size)
            for method, labels in family_seed(crowd, args).items():
                right = labels == crowd.truth
                scores.setdefault(method, []).append(100 * float(right[scored].mean()))
                recall.setdefault(method, []).append(100 * float(right[rarest].mean()))
        cells = [name, f"{np.mean(per_worker):.1f}"]
        cells += [f"{np.mean(scores[c]):.2f}" if c in scores else "" for c in columns]
        for other in ("ck DS", "majority"):
            gaps = np.subtract(scores["DS"], scores.get(other, [np.nan]))
            cells.append(f"{gaps.min():+.2f}")
        shown = [f"{np.mean(recall[m]):.1f}" if m in recall else "-" for m in ("DS", "ck DS")]
        cells.append(" / ".join([*shown, f"{np.mean(recall['oracle']):.1f}"]))
        print("| " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="one crowd of 2,000 items")
    parser.add_argument("--crowdkit-python", default="/work/benchenv/bin/python")
    parser.add_argument("--crowdkit-timeout", type=int, default=3600, help="seconds per method")
    parser.add_argument("--skip-crowdkit", action="store_true")
    parser.add_argument("--skip-mace", action="store_true", help="leave out crowd-kit's MACE")
    parser.add_argument("--mace-restarts", type=int, default=10, help="crowd-kit's default: 10")
    parser.add_argument("--mace-iter", type=int, default=50, help="crowd-kit's default: 50")
    parser.add_argument("--families", action="store_true", help="score every crowd family")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="first family seed")
    parser.add_argument("--seeds", type=int, default=3, help="crowds per family")
    parser.add_argument(
        "--only", default="", help="families whose name contains one of these (comma-separated)"
    )
    parser.add_argument("--crowdkit-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--crowdkit-family", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--votes", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.crowdkit_worker:
        crowdkit_worker(args)
        return
    if args.crowdkit_family:
        crowdkit_family_worker(args)
        return

    print(f"machine: {platform.node()}, {os.cpu_count()} cores, numpy {np.__version__}")
    if not args.skip_crowdkit and not Path(args.crowdkit_python).exists():
        print(f"no {args.crowdkit_python}: crowd-kit skipped (see this script's docstring)")
        args.skip_crowdkit = True
    if args.families:
        bench_families(args)
        return
    sizes = [2_000] if args.small else [20_000, 200_000]
    rows = []
    for index, n_items in enumerate(sizes):
        rows += bench_size(n_items, seed=20261126 + index, args=args)
    print(
        "\n| items | ours / crowd-kit | ours acc % | ours s | ours rounds "
        "| crowd-kit acc % | crowd-kit s | crowd-kit rounds | crowd-kit s / ours s "
        "| same, per round |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
