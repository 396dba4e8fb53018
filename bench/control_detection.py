"""Can a worker tell control items from real ones? Detection AUC per feature an attacker sees.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/control_detection.py

Builds a throwaway database with the demo pool (MNIST digits at 28 px and the scikit-image
photos up to 512 px, 5 % curated gold) as a crowd half-way through would leave it: a share of
each pool already decided (at confidence 0.995, as the crowd decided it), and the curated gold
of every other digit category removed, so those categories take their control items from the
crowd's decisions. Simulated honest workers (right 90 % of the time) then take verify tasks in
turns through ``GET /api/tasks/next/?kind=verify`` and answer them through the API, with
Django's test client. For every served task the script records what the worker sees:

- category: the share of the worker's previous 10 tasks of another category;
- width, height of the served image, and its size change: |log(w h) - median over the last 10|;
- examples: how many example images the task carries;
- seconds: the response time of the GET.

It prints each feature's ROC AUC for telling control items from real ones (either direction:
max(AUC, 1 - AUC), 0.5 is chance) and a logistic regression on all of them, 5-fold
cross-validated. For the figures before a change, run this file from a checkout of the older
code: ``git archive <commit> | tar -x -C DIR; cp bench/control_detection.py DIR/bench/``, then
``cd DIR`` and the command above.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict, deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "CROWDNET_GATE_MIN_SECONDS_PER_ITEM": "0",
    "CROWDNET_THROTTLE_TASKS": "1000000/min",
    "CROWDNET_THROTTLE_TASKS_IP": "1000000/min",
    "CROWDNET_THROTTLE_USER": "1000000/min",
    "DJANGO_LOG_LEVEL": "ERROR",
}
FEATURES = ("category", "width", "height", "size change", "examples", "seconds")
HISTORY = 10


def build_pool(*, digits: int, decided: float, seed: int) -> None:
    """The demo pool with ``decided`` of every pool decided by an earlier crowd, and the
    curated gold of the odd digit categories removed."""
    from django.db import connection

    from demo.models import DemoTruth
    from demo.services.data import DIGIT_NAMES, demo_data_load
    from labeling.models import Candidate, GoldAnswer

    demo_data_load(limit=digits, seed=seed)
    rng = np.random.default_rng(seed)
    odd = [name for index, name in enumerate(DIGIT_NAMES) if index % 2]
    GoldAnswer.objects.filter(candidate__category__slug__in=odd).delete()
    Candidate.objects.filter(category__slug__in=odd, gold__isnull=True).update(
        state="open", confidence=0.0
    )
    truths = list(
        DemoTruth.objects.filter(candidate__gold__isnull=True).values_list(
            "candidate_id", "is_positive"
        )
    )
    chosen = [t for t in truths if rng.random() < decided]
    for state in (True, False):
        ids = [pk for pk, positive in chosen if positive is state]
        Candidate.objects.filter(pk__in=ids).update(
            state="accepted" if state else "rejected", confidence=0.995, posterior=0.995
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def serve(*, workers: int, tasks: int, accuracy: float, seed: int) -> list[dict]:
    """Workers take verify tasks in turns and answer them; one row of features per task."""
    from rest_framework.test import APIClient

    from demo.models import DemoTruth
    from labeling.models import GoldAnswer, TaskItem
    from tests.factories import UserFactory

    rng = np.random.default_rng(seed)
    clients = []
    for index in range(workers):
        client = APIClient()
        client.force_authenticate(UserFactory(username=f"bench{index}", role="worker"))
        clients.append(client)
    recent: dict[int, deque] = defaultdict(lambda: deque(maxlen=HISTORY))
    rows = []
    for turn in range(tasks):
        for index, client in enumerate(clients):
            started = time.perf_counter()
            response = client.get("/api/tasks/next/?kind=verify")
            seconds = time.perf_counter() - started
            if response.status_code != 200:
                continue
            task = response.json()
            [item] = task["items"]
            served = TaskItem.objects.select_related("candidate").get(uid=item["id"])
            past = recent[index]
            area = np.log(item["width"] * item["height"])
            rows.append(
                {
                    "control": served.is_gold,
                    "category": np.mean([c != task["category"]["id"] for c, _ in past])
                    if past
                    else 0.0,
                    "width": item["width"],
                    "height": item["height"],
                    "size change": abs(area - np.median([a for _, a in past])) if past else 0.0,
                    "examples": len(task["examples"]),
                    "seconds": seconds,
                    "turn": turn,
                }
            )
            past.append((task["category"]["id"], area))
            truth = DemoTruth.objects.filter(candidate_id=served.candidate_id).first()
            gold = GoldAnswer.objects.filter(candidate_id=served.candidate_id).first()
            positive = gold.answer if gold else truth.is_positive
            right = rng.random() < accuracy
            answer = "yes" if positive == right else "no"
            client.post(
                f"/api/tasks/{task['id']}/answer/",
                {"answers": [{"item": item["id"], "answer": answer}]},
                format="json",
            )
    return rows


def reencode_cost(sample: int = 200) -> tuple[float, float]:
    """What serving each worker re-encoded bytes costs: mean milliseconds to make one worker's
    copy of a stored training copy (decode, nudge a few pixels, encode as JPEG), on the largest
    ``sample`` images and on the whole mix of ``sample`` images."""
    import io

    from django.core.files.storage import default_storage
    from PIL import Image as PILImage

    from labeling.api import files
    from labeling.models import Image

    viewer_copy = getattr(files, "_viewer_copy", None)

    def mean_ms(images: list[Image]) -> float:
        spent = []
        for image in images:
            with default_storage.open(image.train_copy.name, "rb") as handle:
                data = handle.read()
            started = time.perf_counter()
            if viewer_copy is not None:
                viewer_copy(data, f"bench:{image.uid}")
            else:  # code from before per-worker copies: a plain re-encoding
                picture = PILImage.open(io.BytesIO(data)).convert("RGB")
                picture.putpixel((0, 0), (0, 0, 0))
                picture.save(io.BytesIO(), "JPEG", quality=90)
            spent.append(time.perf_counter() - started)
        return 1000 * float(np.mean(spent))

    largest = list(Image.objects.order_by("-width", "-height", "id")[:sample])
    mix = list(Image.objects.order_by("?")[:sample])
    return mean_ms(largest), mean_ms(mix)


def aucs(rows: list[dict]) -> dict[str, float]:
    """Each feature's AUC (either direction) and the cross-validated logistic regression's."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.array([row["control"] for row in rows], dtype=int)
    table = np.array([[row[f] for f in FEATURES] for row in rows], dtype=float)
    result = {}
    for column, name in enumerate(FEATURES):
        auc = roc_auc_score(labels, table[:, column])
        result[name] = max(auc, 1.0 - auc)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = cross_val_predict(model, table, labels, cv=folds, method="predict_proba")[:, 1]
    result["combined (logistic, 5-fold)"] = roc_auc_score(labels, scores)
    return result


def report(rows: list[dict]) -> None:
    controls = [r for r in rows if r["control"]]
    real = [r for r in rows if not r["control"]]
    print(f"served {len(rows)} verify tasks: {len(controls)} control, {len(real)} real")
    for name in FEATURES:
        print(
            f"  mean {name:<12} control {np.mean([r[name] for r in controls]):8.3f}"
            f"   real {np.mean([r[name] for r in real]):8.3f}"
        )
    print(
        f"  median seconds  control {np.median([r['seconds'] for r in controls]) * 1000:8.2f} ms"
        f" real {np.median([r['seconds'] for r in real]) * 1000:8.2f} ms"
    )
    for name, auc in aucs(rows).items():
        print(f"AUC {name:<28} {auc:.3f}  {'ok' if auc <= 0.6 else 'ABOVE 0.6'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=1000, help="MNIST digits to load.")
    parser.add_argument("--decided", type=float, default=0.3, help="Share decided already.")
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--tasks", type=int, default=120, help="Verify tasks per worker.")
    parser.add_argument("--accuracy", type=float, default=0.9, help="The workers' accuracy.")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    args = parser.parse_args()
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    from bench.postgres import throwaway_database

    print(f"code: {ROOT}  seed {args.seed}")
    with throwaway_database():
        build_pool(digits=args.digits, decided=args.decided, seed=args.seed)
        rows = serve(workers=args.workers, tasks=args.tasks, accuracy=args.accuracy, seed=args.seed)
        largest, mix = reencode_cost()
    report(rows)
    print(f"re-encoding a served image: {largest:.2f} ms (largest), {mix:.2f} ms (mix)")


if __name__ == "__main__":
    main()
