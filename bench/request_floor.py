"""CPU per request of the task API's framework layers, in process: what any round trip costs
before a task is leased.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/request_floor.py

On a throwaway database seeded as ``bench/crowd_load.py`` seeds it (1,000 open candidates),
Django's test client sends ``--requests`` requests of each kind and reports this process's CPU
per request (time.process_time: the client's few microseconds included, PostgreSQL's and
Redis's work not): an anonymous GET (401 after DRF's dispatch), an authenticated GET refused at
validation (token lookup, both throttles, 400), and a real verify ``next`` followed by its
answer (the whole round trip).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from bench.crowd_load import FAST_SETTINGS, answers_for, seed  # noqa: E402
from bench.postgres import throwaway_database  # noqa: E402


def cpu_ms(call, requests: int) -> float:
    """Mean CPU ms of this process per call, after a 30-call warm-up."""
    for _ in range(30):
        call()
    started = time.process_time()
    for _ in range(requests):
        call()
    return (time.process_time() - started) / requests * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind")
    args = parser.parse_args()
    os.environ.update(FAST_SETTINGS)
    with throwaway_database():
        logging.disable(logging.WARNING)  # 400s and 401s would log each request
        from django.test import Client

        tokens = seed(1000 + 2 * args.requests, 2)
        worker = Client(HTTP_AUTHORIZATION=f"Token {tokens[0]}")
        anonymous = Client()

        def round_trip() -> None:
            task = worker.get("/api/tasks/next/?kind=verify").json()
            worker.post(
                f"/api/tasks/{task['id']}/answer/",
                {"answers": answers_for(task), "client_token": os.urandom(8).hex()},
                content_type="application/json",
            )

        rows = [
            ("anonymous GET /api/tasks/next/ (401)", lambda: anonymous.get("/api/tasks/next/")),
            (
                "token GET /api/tasks/next/?kind=nope (400)",
                lambda: worker.get("/api/tasks/next/?kind=nope"),
            ),
            ("verify next + answer (200, 200)", round_trip),
        ]
        print(f"{'request':<46} CPU ms per call")
        for label, call in rows:
            print(f"{label:<46} {cpu_ms(call, args.requests):7.2f}")
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
