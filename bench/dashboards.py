"""Dashboard benchmark: server time of each dashboard endpoint over a large project.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench \\
        .venv/bin/python bench/dashboards.py

Builds a throwaway PostgreSQL test database (``test_<name>``) and fills it in SQL
(generate_series): 100 categories, 100,000 images with one candidate each (60 % accepted, 15 %
rejected, 5 % in review, the rest open; a fifth of the accepted boxed), 500 workers with
profiles, 1,000,000 label votes (10 per candidate from 10 different workers, over the last
30 days in the order they arrived, as a live table has them), a model P(yes) on every
candidate (uniform, so about a fifth of the decided ones contradict it), a task item per vote
(a tenth of the candidates served as controls), 100 finished training runs over 10 dataset
versions, scored on two evaluation set versions (2,000 images: the older 49 runs; 5,000: all
100); the newest run
(the current model) gets what a finished run on 100 classes has: 30 epochs, per-class error,
a 100 x 100 confusion matrix, 48 most-wrong images and resnet18's layer table, for the run's
API, its layer-table API and its HTML page (with the heat map). Each endpoint is
requested `--repeat` times in this process through Django's test client as a signed-in
curator (server time: routing, the queries, JSON, no network), after one warm-up request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from bench.postgres import throwaway_database  # noqa: E402

ENDPOINTS = (
    "/api/training/model-error/",
    "/api/training/runs/{run}/",
    "/api/training/runs/{run}/architecture/",
    "/curate/training/runs/{run}/",
    "/api/progress/",
    "/api/crowd/",
    "/api/review/disagreements/",
)

SEED_SQL = [
    """INSERT INTO labeling_category (name, slug, definition, created_at)
       SELECT 'class ' || c, 'class-' || c, '', now() FROM generate_series(0, 99) c""",
    """INSERT INTO labeling_image (uid, file, thumbnail, train_copy, sha256, phash, phash256,
         phash_band0, phash_band1, phash_band2, phash_band3, phash_band4, width, height, format,
         byte_size, source, source_url, original_name, created_at, updated_at)
       SELECT gen_random_uuid(), 'b/' || i, 'b/' || i, 'b/' || i, md5(i::text) || md5((-i)::text),
         i, lpad(to_hex(i), 64, '0'), 0, 0, 0, 0, i, 64, 48, 'JPEG', 700, 'folder', '', '',
         now(), now()
       FROM generate_series(0, {images} - 1) i""",
    """INSERT INTO labeling_candidate (image_id, category_id, state, yes_votes, no_votes,
         unsure_votes, confidence, posterior, priority, votes_needed, box_state, created_at,
         updated_at, model_p)
       SELECT im.id, (SELECT min(id) FROM labeling_category) + (im.phash % 100),
         CASE WHEN im.phash % 20 < 12 THEN 'accepted' WHEN im.phash % 20 < 15 THEN 'rejected'
              WHEN im.phash % 20 < 16 THEN 'needs_review' ELSE 'open' END,
         7 - im.phash % 3, 3 + im.phash % 3 - 3, 0, 0.96, 0.96, 0, 10,
         CASE WHEN im.phash % 100 < 12 THEN 'done' ELSE 'none' END, now(), now(),
         (im.phash * 7919 % 1000) / 1000.0
       FROM labeling_image im""",
    """INSERT INTO labeling_user (password, is_superuser, username, first_name, last_name, email,
         is_staff, is_active, date_joined, role)
       SELECT '!', false, 'w' || w, '', '', '', false, true, now(), 'worker'
       FROM generate_series(0, 499) w""",
    """INSERT INTO labeling_workerprofile (user_id, answered_tasks, answered_items,
         seconds_total, streak, gold_seen, gold_correct, gold_evidence, gold_evidence_yes,
         gold_evidence_no, fast_evidence, paused, pause_reason, pause_detail, em_accuracy,
         spammer_score, label_votes, peer_yes_items, peer_yes_said_yes, peer_no_items,
         peer_no_said_no)
       SELECT id, 400, 2000, 2000 * (1.5 + id % 7 / 2.0), 0, 40, 30 + id % 10, 0, 0, 0, 0,
         id % 50 = 0, '', '', 0.6 + (id % 40) / 100.0, (id % 90) / 100.0, 2000, 0, 0, 0, 0
       FROM labeling_user WHERE role = 'worker'""",
    """INSERT INTO labeling_microtask (uid, worker_id, kind, category_id, status, issued_at,
         expires_at)
       SELECT gen_random_uuid(), id, 'verify', (SELECT min(id) FROM labeling_category),
         'answered', now(), now()
       FROM labeling_user WHERE role = 'worker'""",
    """INSERT INTO labeling_vote (worker_id, task_id, kind, question, candidate_id, answer,
         is_gold, counted, seconds, created_at)
       SELECT w.id, t.id, 'verify', 'label', c.id, CASE WHEN v % 4 = 0 THEN 'no' ELSE 'yes' END,
         false, true, 1.5 + (v % 7) / 2.0, now() - ((719 - v * 720 / {votes}) || ' hours')::interval
       FROM generate_series(0, {votes} - 1) v
       JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM labeling_candidate) c
         ON c.n = v % {images}
       JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM labeling_user
             WHERE role = 'worker') w
         ON w.n = ((v / {images}) * 50 + (v % {images}) % 50) % 500
       JOIN labeling_microtask t ON t.worker_id = w.id""",
    """INSERT INTO training_datasetversion (number, created_at, classes, counts, val_share,
         images, labels_at, skipped)
       SELECT n, now(), '[]'::jsonb, '{{}}'::jsonb, 0.2, n * 10000, 0, '{{}}'::jsonb
       FROM generate_series(1, 10) n""",
    """INSERT INTO training_trainingrun (version_id, backbone, weights, mode, params, trigger,
         status, active, cancel_requested, attempt, owner, sent_at, device, created_at,
         finished_at, top1_error, top5_error, checkpoint, checkpoint_sha256, current, error)
       SELECT (SELECT min(id) FROM training_datasetversion) + r % 10,
         CASE WHEN r % 2 = 0 THEN 'efficientnet_lite0' ELSE 'resnet18' END, 'imagenet',
         CASE WHEN r % 3 = 0 THEN 'fine_tune' ELSE 'feature_extraction' END, '{{}}'::jsonb,
         'schedule', 'done', NULL, false, 1, '', now(), 'cpu', now(),
         now() - (r || ' hours')::interval,
         0.4 - r / 400.0, 0.1 - r / 1200.0, '', '', r = 99, ''
       FROM generate_series(0, 99) r""",
    # every vote answered a task item; a tenth of the candidates were served as controls
    """INSERT INTO labeling_taskitem (uid, task_id, position, candidate_id, is_gold,
         control_answer, leased_until)
       SELECT gen_random_uuid(), task_id,
         row_number() OVER (PARTITION BY task_id ORDER BY id) - 1, candidate_id,
         candidate_id % 10 = 0, CASE WHEN candidate_id % 10 = 0 THEN true END, now()
       FROM labeling_vote""",
    # two evaluation set versions: v1 (2,000 images) scored the older half of the runs, v2
    # (5,000 images) every run
    """INSERT INTO training_evaluationset (category_key, number, created_at, classes, counts,
         images, note)
       SELECT 'all', n, now() - ((3 - n) || ' days')::interval, '[]'::jsonb, '[]'::jsonb,
         CASE WHEN n = 1 THEN 2000 ELSE 5000 END, ''
       FROM generate_series(1, 2) n""",
    """INSERT INTO training_evaluationscore (run_id, evaluation_id, created_at, images,
         top1_error, top5_error, top1_correct, top5_correct)
       SELECT r.id, e.id, now(), e.images, r.top1_error + 0.02, r.top5_error + 0.01,
         repeat('1', e.images), repeat('1', e.images)
       FROM training_trainingrun r CROSS JOIN training_evaluationset e
       WHERE e.number = 2 OR r.finished_at < now() - interval '50 hours'""",
]


def seed(images: int, votes: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in SEED_SQL:
            cursor.execute(statement.format(images=images, votes=votes))
        cursor.execute("ANALYZE")


def seed_run() -> int:
    """The newest run as a finished 100-class run has it; returns its id."""
    import random

    from labeling.models import Category, Image
    from training.ml.architecture import layer_table, table_data
    from training.ml.backbones import backbone_build
    from training.models import TrainingEpoch, TrainingRun, ValidationMistake

    rng = random.Random(0)
    run = TrainingRun.objects.select_related("version").get(current=True)
    classes = [{"id": c.pk, "slug": c.slug, "name": c.name} for c in Category.objects.all()]
    size = len(classes)
    version = run.version
    version.classes = classes
    version.counts = {"train": [800] * size, "val": [200] * size}
    version.save(update_fields=["classes", "counts"])
    confusion = [
        [150 + rng.randrange(40) if i == j else rng.randrange(3) for j in range(size)]
        for i in range(size)
    ]
    backbone = backbone_build("resnet18", size)
    run.architecture = {
        "image_size": 224,
        "layers": table_data(layer_table(backbone, "fine_tune", 224)),
    }
    run.per_class_error = [1 - row[i] / sum(row) for i, row in enumerate(confusion)]
    run.confusion = confusion
    run.best_epoch = 30
    run.save(update_fields=["architecture", "per_class_error", "confusion", "best_epoch"])
    TrainingEpoch.objects.bulk_create(
        TrainingEpoch(
            run=run,
            epoch=epoch,
            train_loss=3 / epoch,
            val_loss=3.2 / epoch,
            top1_error=0.5 / epoch**0.5,
            top5_error=0.2 / epoch**0.5,
            images_per_second=900.0,
            seconds=60.0,
        )
        for epoch in range(1, 31)
    )
    ValidationMistake.objects.bulk_create(
        ValidationMistake(
            run=run,
            rank=rank,
            image=image,
            label=rank % size,
            predicted=(rank + 1) % size,
            confidence=0.9,
            label_probability=rank / 1000,
        )
        for rank, image in enumerate(Image.objects.order_by("pk")[:48], start=1)
    )
    return run.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with throwaway_database():
        from django.test import Client

        started = time.perf_counter()
        seed(args.images, args.votes)
        took = time.perf_counter() - started
        run = seed_run()
        print(f"seeded {args.images:,} images, {args.votes:,} votes in {took:.0f} s")
        from labeling.models import User, Vote

        print(f"votes in the database: {Vote.objects.count():,}")
        curator = User.objects.create(username="bench-curator", role="curator")
        client = Client()
        client.force_login(curator)
        print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
        print("\n| endpoint | requests | p50 ms | p95 ms | max ms | bytes |")
        print("| --- | --- | --- | --- | --- | --- |")
        for path in (endpoint.format(run=run) for endpoint in ENDPOINTS):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            times = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - began) * 1000)
            times.sort()
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            print(
                f"| `{path}` | {len(times)} | {statistics.median(times):.0f} | {p95:.0f} | "
                f"{times[-1]:.0f} | {len(response.content):,} |",
                flush=True,
            )
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
