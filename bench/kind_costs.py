"""What one task round trip costs, per kind, in process: statements, rows read, CPU.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/kind_costs.py \\
        --pool 10000 --warm 60 --measured 60

Seeds a throwaway test database as bench/crowd_load.py does (``--pool`` open candidates in 5
categories, 500 curated gold items all in one of them, 100 workers), turns ``--boxes`` open
candidates (default: enough) into accepted images in each box stage (waiting for drawing, with
a proposed box, with an accepted box) and ``--gold`` more into curated gold spread over every
category. Then, kind by kind, it makes ``--warm`` round trips (``GET
/api/tasks/next/?kind=...`` then the answer, through Django's test client, workers in turn),
ANALYZE (the statistics autovacuum keeps for a running crowd) and ``--measured`` more, and
prints per round trip: statements Django sent for next and for the answer
(CaptureQueriesContext, on a separate ``--counted`` round trips), rows PostgreSQL read
(pg_stat_user_tables: rows read by sequential scans plus rows fetched through indexes; the
backend is closed before each reading, so its counters are flushed) and this process's CPU ms
(time.process_time: Django, DRF and the client; PostgreSQL's own work is not in it), for the
round trip and for the answer alone. The tables other than the pool start empty, so PostgreSQL
reads the small ones (tasks, votes, workers) by sequential scans where a live database would
probe an index: rows read count those scans too.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.crowd_load import FAST_SETTINGS, answers_for, seed  # noqa: E402
from bench.lease_rows import counters  # noqa: E402
from bench.postgres import throwaway_database  # noqa: E402

KINDS = ("verify", "grid", "draw", "verify_box", "coverage", "all")


def next_path(kind: str) -> str:
    """The next of ``kind``; "all" asks without a kind (the first kind in KIND_ORDER with
    work, as crowd_load's ``--kind all`` does)."""
    return "/api/tasks/next/" if kind == "all" else f"/api/tasks/next/?kind={kind}"


STAGES = [
    """CREATE TEMP TABLE staged AS SELECT id, ntile(3) OVER (ORDER BY id) AS stage FROM (
         SELECT id FROM labeling_candidate WHERE state = 'open' ORDER BY id DESC LIMIT %(n)s * 3
       ) last""",
    """UPDATE labeling_candidate c SET state = 'accepted', confidence = 0.99,
         box_state = (ARRAY['draw', 'verify', 'coverage'])[s.stage]
       FROM staged s WHERE s.id = c.id""",
    """INSERT INTO labeling_box (uid, candidate_id, worker_id, x0, y0, x1, y1, state, yes_votes,
         no_votes, created_at)
       SELECT gen_random_uuid(), s.id, NULL, 2, 2, 40, 30,
         CASE s.stage WHEN 2 THEN 'proposed' ELSE 'accepted' END, 0, 0, now()
       FROM staged s WHERE s.stage > 1""",
    "DROP TABLE staged",
]
"""``n`` accepted images in each box stage: waiting for drawing, with one proposed box (to
verify) and with one accepted box (to check for coverage); the last open candidates by id."""

EXTRA_GOLD = """
CREATE TEMP TABLE extra AS SELECT id, category_id FROM labeling_candidate WHERE state = 'open'
  ORDER BY id DESC OFFSET %(skip)s LIMIT %(n)s;
UPDATE labeling_candidate c SET state = CASE WHEN c.id %% 2 = 0 THEN 'accepted' ELSE 'rejected'
  END, confidence = 1.0 FROM extra e WHERE e.id = c.id;
INSERT INTO labeling_goldanswer (candidate_id, {column}answer, created_at)
  SELECT e.id, {value}e.id %% 2 = 0, now() FROM extra e;
DROP TABLE extra
"""
"""``n`` more curated gold items, spread over every category (open candidates taken from the
end, before the box stages' ``skip``); the category column where the schema has it."""


def round_trip(client, kind: str, n: int, answer_cpu: list[float] | None = None) -> bool:
    """One next + answer of ``kind``; whether a task was served (not a 204). The answer's own
    CPU seconds are appended to ``answer_cpu``."""
    response = client.get(next_path(kind))
    if response.status_code != 200:
        return False
    task = response.json()
    body = {"answers": answers_for(task), "client_token": f"k{n}"}
    started = time.process_time()
    client.post(f"/api/tasks/{task['id']}/answer/", body, format="json")
    if answer_cpu is not None:
        answer_cpu.append(time.process_time() - started)
    return True


def statements(clients: list, kind: str, count: int, start: int) -> tuple[float, float]:
    """Mean statements Django sends for next and for the answer, over ``count`` round trips."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    nexts, answers = [], []
    for n in range(start, start + count):
        client = clients[n % len(clients)]
        with CaptureQueriesContext(connection) as got:
            response = client.get(next_path(kind))
        if response.status_code != 200:
            continue
        nexts.append(len(got))
        task = response.json()
        body = {"answers": answers_for(task), "client_token": f"k{n}"}
        with CaptureQueriesContext(connection) as got:
            client.post(f"/api/tasks/{task['id']}/answer/", body, format="json")
        answers.append(len(got))
    if not nexts:
        return 0.0, 0.0
    return sum(nexts) / len(nexts), sum(answers) / len(answers)


def measure(clients: list, kind: str, args: argparse.Namespace, start: int) -> dict[str, float]:
    """Warm up, then measure ``kind``'s rows and CPU per round trip, then its statements."""
    from django.db import connection

    for n in range(start, start + args.warm):
        round_trip(clients[n % len(clients)], kind, n)
    start += args.warm
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # autovacuum's statistics of a running crowd, not the seed's
    before = counters()
    cpu = time.process_time()
    served, answer_cpu = 0, []
    for n in range(start, start + args.measured):
        served += round_trip(clients[n % len(clients)], kind, n, answer_cpu)
    cpu = time.process_time() - cpu
    after = counters()
    by_table = {
        name: (a[1] - b[1]) + (a[3] - b[3])
        for name, a in after.items()
        for b in [before.get(name, (0, 0, 0, 0))]
    }
    start += args.measured
    next_statements, answer_statements = statements(clients, kind, args.counted, start)
    return {
        "served": served,
        "rows": sum(by_table.values()) / max(1, served),
        "tables": {k: v / max(1, served) for k, v in by_table.items() if v},
        "cpu_ms": cpu / max(1, served) * 1000,
        "answer_cpu_ms": sum(answer_cpu) / max(1, len(answer_cpu)) * 1000,
        "next": next_statements,
        "answer": answer_statements,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=10_000, help="open candidates")
    parser.add_argument("--warm", type=int, default=60, help="unmeasured round trips per kind")
    parser.add_argument("--measured", type=int, default=60, help="measured round trips per kind")
    parser.add_argument(
        "--counted", type=int, default=10, help="round trips whose statements count"
    )
    parser.add_argument(
        "--boxes", type=int, default=None, help="images in each box stage (default: enough)"
    )
    parser.add_argument(
        "--gold", type=int, default=0, help="more curated gold, spread over every category"
    )
    parser.add_argument("--tables", action="store_true", help="rows read per table too")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated, in this order")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds {sorted(unknown)}; use {', '.join(KINDS)}")
    os.environ.update(FAST_SETTINGS)
    os.environ["CROWDNET_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="crowdnet-kinds-media-")
    random.seed(14)
    per_kind = args.warm + args.measured + args.counted
    boxes = 2 * per_kind if args.boxes is None else args.boxes
    with throwaway_database():
        logging.disable(logging.WARNING)
        from django.db import connection
        from rest_framework.test import APIClient

        from labeling.models import User

        started = time.perf_counter()
        seed(args.pool, 100)
        with connection.cursor() as cursor:
            for statement in STAGES:
                cursor.execute(statement, {"n": boxes})
            if args.gold:
                cursor.execute(
                    "SELECT 1 FROM information_schema.columns WHERE table_name = "
                    "'labeling_goldanswer' AND column_name = 'category_id'"
                )
                has = cursor.fetchone() is not None
                sql = EXTRA_GOLD.format(
                    column="category_id, " if has else "", value="e.category_id, " if has else ""
                )
                for statement in sql.split(";"):
                    cursor.execute(statement, {"n": args.gold, "skip": 3 * boxes})
            cursor.execute("ANALYZE")
        seeded = time.perf_counter() - started
        clients = []
        for user in User.objects.filter(username__startswith="bench").order_by("id"):
            client = APIClient()
            client.force_authenticate(user)
            clients.append(client)
        print(f"pool {args.pool:,} open, {boxes:,} images per box stage (seeded in {seeded:.0f} s)")
        header = ("kind", "served", "next stmts", "answer stmts", "rows read", "CPU ms", "answer")
        print("{:<11} {:>6} {:>10} {:>12} {:>10} {:>7} {:>7}".format(*header))
        start = 0
        for kind in kinds:
            row = measure(clients, kind, args, start)
            start += per_kind
            print(
                f"{kind:<11} {row['served']:>6.0f} {row['next']:>10.1f} {row['answer']:>12.1f} "
                f"{row['rows']:>10,.0f} {row['cpu_ms']:>7.1f} {row['answer_cpu_ms']:>7.1f}"
            )
            if args.tables:
                top = sorted(row["tables"].items(), key=lambda kv: -kv[1])[:6]
                print(
                    "    "
                    + ", ".join(
                        f"{name.removeprefix('labeling_')} {rows:,.0f}" for name, rows in top
                    )
                )
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
