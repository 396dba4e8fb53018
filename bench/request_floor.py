"""CPU per request of the task API, in process: what a round trip's framework layers and each
half of a verify round trip cost this process, and how many statements each half sends.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/request_floor.py

On a throwaway database seeded as ``bench/crowd_load.py`` seeds it (1,000 open candidates plus
the gold), Django's test client sends ``--requests`` requests of each kind and reports this
process's CPU per request (time.process_time: the client's few microseconds included,
PostgreSQL's and Redis's work not): an anonymous GET (401 after DRF's dispatch), an
authenticated GET refused at validation (token lookup, both throttles, 400), and verify round
trips, ``GET /api/tasks/next/?kind=verify`` then its answer, by ``--workers`` workers in turn
(three votes decide an item, so with three or more the answers run consensus and peer credit
as a crowd's do), timed per half. Then the statements Django sends for one next and one
answer (CaptureQueriesContext: BEGIN and COMMIT included).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from bench.crowd_load import FAST_SETTINGS, answers_for, seed  # noqa: E402
from bench.postgres import throwaway_database  # noqa: E402


def cpu_ms(call: Callable[[], object], requests: int) -> float:
    """Mean CPU ms of this process per call, after a 30-call warm-up."""
    for _ in range(30):
        call()
    started = time.process_time()
    for _ in range(requests):
        call()
    return (time.process_time() - started) / requests * 1000


class RoundTrips:
    """Verify round trips by several workers in turn, CPU timed per half."""

    def __init__(self, clients: list) -> None:
        self.clients, self.turn = clients, 0
        self.next_s = self.answer_s = 0.0
        self.count = 0

    def __call__(self) -> None:
        worker = self.clients[self.turn % len(self.clients)]
        self.turn += 1
        started = time.process_time()
        task = worker.get("/api/tasks/next/?kind=verify").json()
        asked = time.process_time()
        reply = worker.post(
            f"/api/tasks/{task['id']}/answer/",
            {"answers": answers_for(task), "client_token": os.urandom(8).hex()},
            content_type="application/json",
        )
        if reply.status_code != 201:
            raise SystemExit(f"answer refused: {reply.status_code} {reply.content[:200]!r}")
        self.next_s += asked - started
        self.answer_s += time.process_time() - asked
        self.count += 1

    def reset(self) -> None:
        self.next_s = self.answer_s = 0.0
        self.count = 0


def statements(clients: list) -> tuple[int, int]:
    """Statements Django sends for one verify next, and for its answer."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    worker = clients[0]
    with CaptureQueriesContext(connection) as asked:
        task = worker.get("/api/tasks/next/?kind=verify").json()
    with CaptureQueriesContext(connection) as answered:
        worker.post(
            f"/api/tasks/{task['id']}/answer/",
            {"answers": answers_for(task), "client_token": os.urandom(8).hex()},
            content_type="application/json",
        )
    return len(asked), len(answered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind")
    parser.add_argument("--workers", type=int, default=4, help="workers taking turns")
    args = parser.parse_args()
    if args.requests < 1 or args.workers < 1:
        raise SystemExit("--requests and --workers must be at least 1")
    os.environ.update(FAST_SETTINGS)
    with throwaway_database():
        logging.disable(logging.WARNING)  # 400s and 401s would log each request
        from django.test import Client

        tokens = seed(1000 + 2 * args.requests, args.workers)
        clients = [Client(HTTP_AUTHORIZATION=f"Token {token}") for token in tokens]
        anonymous = Client()
        trips = RoundTrips(clients)

        rows = [
            ("anonymous GET /api/tasks/next/ (401)", lambda: anonymous.get("/api/tasks/next/")),
            (
                "token GET /api/tasks/next/?kind=nope (400)",
                lambda: clients[0].get("/api/tasks/next/?kind=nope"),
            ),
        ]
        print(f"{'request':<46} CPU ms per call")
        for label, call in rows:
            print(f"{label:<46} {cpu_ms(call, args.requests):7.2f}")
        for _ in range(30):  # warm-up, as cpu_ms does
            trips()
        trips.reset()
        started = time.process_time()
        for _ in range(args.requests):
            trips()
        trip_ms = (time.process_time() - started) / args.requests * 1000
        next_ms = trips.next_s / trips.count * 1000
        answer_ms = trips.answer_s / trips.count * 1000
        print(f"{'verify next (200)':<46} {next_ms:7.2f}")
        print(f"{'verify answer (201)':<46} {answer_ms:7.2f}")
        print(f"{'verify next + answer':<46} {trip_ms:7.2f}  ({args.workers} workers in turn)")
        asked, answered = statements(clients)
        print(f"statements: next {asked}, answer {answered}, round trip {asked + answered}")
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
