"""Rows PostgreSQL reads per task round trip, by table, in process (no server, no client).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/lease_rows.py \\
        --kind grid --pool 10000 --warm 300 --measured 40

Seeds a throwaway test database as bench/crowd_load.py does (``--pool`` open candidates in 5
categories, 500 curated gold items, 100 workers), makes ``--warm`` round trips
(``GET /api/tasks/next/?kind=...`` then the answer, through Django's test client, workers in
turn), then ``--measured`` more, and prints what pg_stat_user_tables counted for those: per
table, sequential scans, rows read by them, index scans and rows fetched through indexes,
per round trip. The backend is closed before each reading, so its counters are flushed.
``--draw N`` first turns N open candidates into accepted images waiting for boxes, for the
box kinds (draw, then verify_box and coverage on the boxes drawn in the warm-up).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.crowd_load import FAST_SETTINGS, answers_for, seed  # noqa: E402
from bench.postgres import throwaway_database  # noqa: E402

DRAW = """UPDATE labeling_candidate SET state = 'accepted', confidence = 0.99, box_state = 'draw'
  WHERE id IN (SELECT id FROM labeling_candidate WHERE state = 'open' ORDER BY id LIMIT %s)"""
"""Open candidates turned into accepted images waiting for boxes (draw, then box checks)."""

COUNTERS = """SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0),
  coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables"""


def counters() -> dict[str, tuple[int, ...]]:
    """Per table: (seq scans, rows they read, index scans, rows fetched by index), flushed."""
    from django.db import connection

    connection.close()  # a backend flushes its counters when it ends
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.6)")  # the closed backend's report lands first
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(COUNTERS)
        return {name: tuple(values) for name, *values in cursor.fetchall()}


def round_trips(users: list, kind: str, count: int, start: int) -> int:
    """``count`` next + answer round trips, workers in turn (``kind`` "": any kind); how many
    got a task."""
    from rest_framework.test import APIClient

    served = 0
    for n in range(start, start + count):
        client = APIClient()
        client.force_authenticate(users[n % len(users)])
        response = client.get(f"/api/tasks/next/?kind={kind}")
        if response.status_code != 200:
            continue
        task = response.json()
        body = {"answers": answers_for(task), "client_token": f"r{n}"}
        client.post(f"/api/tasks/{task['id']}/answer/", body, format="json")
        served += 1
    return served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", default="grid", help="task kind asked for")
    parser.add_argument("--pool", type=int, default=10_000, help="open candidates")
    parser.add_argument("--warm", type=int, default=300, help="unmeasured round trips first")
    parser.add_argument(
        "--warm-kind", default=None, help="kind asked for in the warm-up (--kind; '' for any)"
    )
    parser.add_argument("--measured", type=int, default=40, help="measured round trips")
    parser.add_argument(
        "--draw", type=int, default=0, help="pool items accepted and waiting for boxes first"
    )
    args = parser.parse_args()
    for name, value in FAST_SETTINGS.items():
        os.environ[name] = value
    os.environ["CROWDNET_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="crowdnet-rows-media-")
    random.seed(14)
    with throwaway_database():
        from labeling.models import User

        seed(args.pool, 100)
        if args.draw:
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(DRAW, [args.draw])
        users = list(User.objects.filter(username__startswith="bench").order_by("id"))
        warm_kind = args.kind if args.warm_kind is None else args.warm_kind
        round_trips(users, warm_kind, args.warm, 0)
        before = counters()
        served = round_trips(users, args.kind, args.measured, args.warm)
        after = counters()
        print(f"{args.kind}: {served} of {args.measured} round trips served, pool {args.pool:,}")
        print("table: seq scans, rows seq-read, index scans, rows index-fetched (per round trip)")
        total = 0.0
        for name in sorted(after):
            delta = [a - b for a, b in zip(after[name], before.get(name, (0,) * 4), strict=True)]
            if any(delta):
                per = [d / max(1, served) for d in delta]
                total += per[1] + per[3]
                print(f"  {name}: {per[0]:.1f}, {per[1]:,.0f}, {per[2]:.1f}, {per[3]:,.0f}")
        print(f"rows read per round trip (seq + index): {total:,.0f}")


if __name__ == "__main__":
    main()
