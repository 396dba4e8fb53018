"""Closed-loop benchmark: a simulated crowd labels the demo digits while the automatic retrain
fires every K new labels; each run is scored on the frozen evaluation set and promoted only
when it beats the current model on the same images.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench \\
        .venv/bin/python bench/closed_loop.py --seconds 600 --every 150 --seed 7

Builds a throwaway PostgreSQL test database (``test_<name>``), loads ``--digits`` MNIST digits
(the demo's digit categories, a tenth of each pool wrong), lets the demo curator review the
images reserved for evaluation and freezes the evaluation set (as `make demo` does), serves the
real HTTP API from a thread and lets ``simulate_crowd``'s workers answer it for ``--seconds`` of
crowd time. Beside
the crowd, a trainer thread does what beat and the training worker do: every few seconds it
calls the automatic retrain check (a new dataset version and a run once ``--every`` labels
arrived), and runs the queued run in place (Celery eager), which scores it on the evaluation
set and decides its promotion. The report lists every run: labelled images, the evaluation
set it was scored on, top-1/top-5 error there with a 95 % Wilson band, its own validation
split's top-1 (not comparable across versions: for contrast), and the promotion decision with
McNemar's p; then draws the curve (error against labelled images) to ``--picture``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CROWDNET_DEMO_CROWD", "0")
from bench.postgres import throwaway_database  # noqa: E402


def wilson(errors: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson interval of an error rate measured on ``n`` images."""
    if n == 0:
        return 0.0, 1.0
    centre = (errors + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(errors * (1 - errors) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def trainer(stop: threading.Event, log: list[str], every: float) -> None:
    """Beat's automatic retrain check every ``every`` seconds; runs execute in this thread."""
    from django.db import connection

    from training.services.runs import training_auto

    try:
        while not stop.is_set():
            outcome = training_auto()
            if outcome.run is not None:
                log.append(f"{time.strftime('%H:%M:%S')} {outcome.message}")
            stop.wait(every)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="Crowd time.")
    parser.add_argument("--every", type=int, default=150, help="Retrain every K new labels.")
    parser.add_argument("--digits", type=int, default=2000, help="MNIST digits to load.")
    parser.add_argument("--workers", type=int, default=30)
    parser.add_argument("--mix", default="honest=0.75,confuser=0.1,spammer=0.1,adversary=0.05")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--kind",
        default="verify",
        help="The task kind the crowd answers (verify: the labels the loop trains on; "
        "'any' for every kind, boxes included).",
    )
    parser.add_argument("--picture", default=str(ROOT / "docs" / "closed_loop.png"))
    args = parser.parse_args()

    with throwaway_database():
        from django.conf import settings
        from django.test.testcases import LiveServerThread
        from django.test.utils import override_settings

        from config.celery import app
        from demo.personas import mix_parse
        from demo.services.data import demo_data_load, demo_evaluation_ensure
        from demo.services.simulation import SimulationConfig, simulation_run
        from labeling.models import User

        app.conf.task_always_eager = True  # the trainer thread is the training worker
        logging.getLogger("celery").setLevel(logging.WARNING)
        override = override_settings(
            CROWDNET_TRAIN_AUTO_NEW_LABELS=args.every,
            CROWDNET_TRAIN_AUTO_EPOCHS=args.epochs,
            CROWDNET_TRAIN_EPOCHS=args.epochs,
            ALLOWED_HOSTS=["*"],
            DEBUG=False,
        )
        override.enable()
        print(f"seed {args.seed}; loading {args.digits} digits ...", flush=True)
        started = time.monotonic()
        demo_data_load(limit=args.digits, wrong_share=0.1, photos=False, seed=args.seed)
        # as `make demo` does: the demo curator reviews the images reserved for evaluation
        # and the first evaluation set is frozen before any run, so every run meets one set
        curator = User.objects.create(username="loop-curator", role=User.Role.CURATOR)
        print(f"evaluation: {demo_evaluation_ensure(by=curator)}", flush=True)
        print(f"loaded in {time.monotonic() - started:.0f} s", flush=True)

        server = LiveServerThread("127.0.0.1", lambda handler: handler, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        url = f"http://127.0.0.1:{server.port}"

        stop, log = threading.Event(), []
        thread = threading.Thread(target=trainer, args=(stop, log, 5.0), daemon=True)
        thread.start()
        config = SimulationConfig(
            url=url,
            workers=args.workers,
            mix=mix_parse(args.mix),
            seconds=args.seconds,
            seed=args.seed,
            prefix="loop",
            kind=None if args.kind == "any" else args.kind,
        )
        crowd_started = time.monotonic()
        report = simulation_run(config)
        crowd_seconds = time.monotonic() - crowd_started
        stop.set()
        thread.join()
        # the last labels: one more check once the crowd stopped, run in this thread
        from training.services.runs import training_auto

        final = training_auto()
        if final.run is not None:
            log.append(f"after the crowd: {final.message}")
        server.terminate()
        for line in log:
            print(line)
        print(f"crowd: {crowd_seconds:.0f} s; " + "; ".join(report.lines()[:3]))
        rows = results()
        table(rows)
        picture(rows, Path(args.picture))
        override.disable()
        _ = settings


def results() -> list[dict]:
    """Every finished run with its evaluation scores and promotion decision."""
    from training.models import EvaluationScore, Promotion, TrainingRun

    rows = []
    for run in TrainingRun.objects.filter(status="done").select_related("version").order_by("id"):
        decision = Promotion.objects.filter(candidate=run, by__isnull=True).first()
        for score in EvaluationScore.objects.filter(run=run).select_related("evaluation"):
            rows.append(
                {
                    "run": run.pk,
                    "trigger": run.trigger,
                    "version": run.version.number,
                    "labelled": run.version.images,
                    "set": f"v{score.evaluation.number}",
                    "set_images": score.images,
                    "top1": score.top1_error,
                    "top5": score.top5_error,
                    "band": wilson(score.top1_error, score.images),
                    "val_top1": run.top1_error,
                    "promoted": None if decision is None else decision.promoted,
                    "p": None if decision is None else decision.p_value,
                    "current": run.current,
                }
            )
    return rows


def table(rows: list[dict]) -> None:
    print(
        f"{'run':>4} {'ver':>4} {'labelled':>8} {'set':>5} {'n':>5} {'top-1':>6} "
        f"{'95 % band':>13} {'top-5':>6} {'val top-1':>9} {'promoted':>9} {'p':>7}"
    )
    for row in rows:
        low, high = row["band"]
        p = "" if row["p"] is None else f"{row['p']:.3f}"
        promoted = {None: "", True: "yes", False: "no"}[row["promoted"]]
        val = "" if row["val_top1"] is None else f"{100 * row['val_top1']:.1f}"
        print(
            f"{row['run']:>4} {row['version']:>4} {row['labelled']:>8} {row['set']:>5} "
            f"{row['set_images']:>5} {100 * row['top1']:>5.1f}% "
            f"{100 * low:>5.1f}-{100 * high:>4.1f} % {100 * row['top5']:>5.1f}% {val:>9} "
            f"{promoted + (' *' if row['current'] else ''):>9} {p:>7}"
        )


def picture(rows: list[dict], path: Path) -> None:
    """Top-1 error on each evaluation set against labelled images, with its band; the
    validation-split figure dotted for contrast; promoted runs filled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        print("no scored runs: no picture")
        return
    figure, axes = plt.subplots(figsize=(7, 4), dpi=110)
    for name in sorted({row["set"] for row in rows}):
        mine = sorted((row for row in rows if row["set"] == name), key=lambda r: r["labelled"])
        x = [row["labelled"] for row in mine]
        y = [100 * row["top1"] for row in mine]
        axes.fill_between(
            x, [100 * r["band"][0] for r in mine], [100 * r["band"][1] for r in mine], alpha=0.2
        )
        axes.plot(x, y, marker="o", label=f"top-1, evaluation {name} ({mine[0]['set_images']})")
        for row in mine:
            if row["promoted"]:
                axes.plot(row["labelled"], 100 * row["top1"], "k*", markersize=9)
    val = sorted((r for r in rows if r["val_top1"] is not None), key=lambda r: r["labelled"])
    axes.plot(
        [r["labelled"] for r in val],
        [100 * r["val_top1"] for r in val],
        ":",
        color="grey",
        label="top-1 on the run's own validation split",
    )
    axes.set_xlabel("labelled images in the run's dataset version")
    axes.set_ylabel("top-1 error (%)")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8)
    axes.set_title("Closed loop: error on the frozen evaluation set (* promoted)", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    print(f"picture: {path}")


if __name__ == "__main__":
    main()
