"""Crowd load benchmark: simulated workers doing next + answer round trips over HTTP.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/crowd_load.py

Builds a throwaway test database (``test_<name>``) with generated images in candidate pools
(5 % gold), starts gunicorn on it, runs ``--workers`` client threads for ``--seconds`` against
the real API with token auth, then checks that no item got more votes than it needed and
prints throughput, per-endpoint latency and a profile of the hottest path.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from bench.postgres import throwaway_database  # noqa: E402

FAST_SETTINGS = {
    "CROWDNET_GATE_MIN_SECONDS_PER_ITEM": "0",
    "CROWDNET_THROTTLE_TASKS": "1000000/min",
    "CROWDNET_THROTTLE_TASKS_IP": "1000000/min",
    "CROWDNET_THROTTLE_USER": "1000000/min",
    # Simulated workers answer at random, so the gold gates would pause them all.
    "CROWDNET_GATE_FALSE_PAUSE": "1e-300",
    "DJANGO_LOG_LEVEL": "ERROR",
}


def seed(items: int, workers: int) -> list[str]:
    """Categories, ``items`` candidates (5 % gold) and worker tokens; returns the tokens."""
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from labeling.models import Candidate, Category
    from labeling.services.ingest import images_ingest
    from labeling.services.microtasks import gold_mark
    from tests.factories import UserFactory, image_bytes

    per_category = items // 5
    for index in range(5):
        category = Category.objects.create(name=f"class {index}", slug=f"class-{index}")
        files = [
            (f"{index}-{i}.jpg", image_bytes(index * 100_000 + i, size=(64, 48)))
            for i in range(per_category)
        ]
        images_ingest(files=files, category=category, source="folder", uploader=None)
    for candidate in Candidate.objects.order_by("?")[: items // 20]:
        gold_mark(candidate=candidate, answer=True)
    tokens = []
    for index in range(workers):
        user = UserFactory(username=f"bench{index}")
        tokens.append(Token.objects.create(user=user).key)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum would have done on a live database
    return tokens


def answers_for(task: dict) -> list[dict]:
    """A plausible answer for any kind."""
    items = task["items"]
    if task["kind"] == "grid":
        return [{"item": i["id"], "selected": random.random() < 0.5} for i in items]
    if task["kind"] == "draw":
        return [
            {"item": i["id"], "boxes": [[1, 1, i["width"] - 1, i["height"] - 1]]} for i in items
        ]
    return [{"item": i["id"], "answer": random.choice(["yes", "no"])} for i in items]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = {"next": [], "answer": []}
        self.answered = 0
        self.empty = 0
        self.errors: list[str] = []

    def add(self, endpoint: str, seconds: float) -> None:
        with self.lock:
            self.latency[endpoint].append(seconds * 1000)

    def merge(self, other: dict) -> None:
        for endpoint, values in other["latency"].items():
            self.latency[endpoint].extend(values)
        self.answered += other["answered"]
        self.empty += other["empty"]
        self.errors.extend(other["errors"])


def client_loop(base: str, token: str, deadline: float, stats: Stats) -> None:
    """One simulated worker: next, answer, repeat until the deadline."""
    import urllib3

    http = urllib3.PoolManager(maxsize=1, retries=False, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    while time.time() < deadline:
        start = time.perf_counter()
        response = http.request("GET", f"{base}/api/tasks/next/", headers=headers)
        stats.add("next", time.perf_counter() - start)
        if response.status == 204:
            with stats.lock:
                stats.empty += 1
            time.sleep(0.05)
            continue
        if response.status != 200:
            stats.errors.append(f"next {response.status} {response.data[:200]!r}")
            continue
        task = json.loads(response.data)
        body = json.dumps({"answers": answers_for(task), "client_token": os.urandom(8).hex()})
        start = time.perf_counter()
        response = http.request(
            "POST", f"{base}/api/tasks/{task['id']}/answer/", body=body, headers=headers
        )
        stats.add("answer", time.perf_counter() - start)
        if response.status == 201:
            with stats.lock:
                stats.answered += 1
        elif response.status != 409:
            stats.errors.append(f"answer {response.status} {response.data[:200]!r}")


def client_process(base: str, tokens: list[str], deadline: float) -> dict:
    """A share of the simulated workers, as threads of one client process (the GIL of a single
    client process would otherwise be the bottleneck being measured)."""
    stats = Stats()
    threads = [
        threading.Thread(target=client_loop, args=(base, token, deadline, stats))
        for token in tokens
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "latency": stats.latency,
        "answered": stats.answered,
        "empty": stats.empty,
        "errors": stats.errors,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def serve(database_url: str, port: int, web_workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **FAST_SETTINGS, "DATABASE_URL": database_url}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(web_workers),
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    import urllib3

    for _ in range(100):
        try:
            urllib3.request(
                "GET", f"http://127.0.0.1:{port}/accounts/login/", timeout=1, retries=False
            )
            return process
        except urllib3.exceptions.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def check_votes() -> tuple[int, int]:
    """(items over their vote need, duplicate worker votes on one question); both must be 0."""
    from django.db.models import Count, F

    from labeling.models import Candidate, Vote

    over = Candidate.objects.filter(votes_cast__gt=F("votes_needed")).count()
    duplicates = (
        Vote.objects.values("worker", "candidate", "question", "box")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    return over, duplicates


def profile_hot_path(token_user: str, rounds: int) -> str:
    """cProfile of next + answer through Django's test client, top functions by own time."""
    from django.test import Client

    from labeling.models import User

    client = Client()
    client.force_login(User.objects.get(username=token_user))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(rounds):
        response = client.get("/api/tasks/next/")
        if response.status_code != 200:
            break
        task = response.json()
        client.post(
            f"/api/tasks/{task['id']}/answer/",
            {"answers": answers_for(task), "client_token": os.urandom(8).hex()},
            content_type="application/json",
        )
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=100, help="simulated workers (threads)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--items", type=int, default=20_000, help="candidates in the pools")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn processes")
    parser.add_argument("--port", type=int, default=8931)
    parser.add_argument(
        "--client-processes", type=int, default=4, help="processes the client threads share"
    )
    args = parser.parse_args()

    for name, value in FAST_SETTINGS.items():
        os.environ[name] = value
    os.environ["CROWDNET_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="crowdnet-load-media-")
    with throwaway_database() as database_url:
        from django.conf import settings

        started = time.perf_counter()
        tokens = seed(args.items, args.workers)
        took = time.perf_counter() - started
        print(f"seeded {args.items} candidates and {args.workers} workers in {took:.0f} s")
        server = serve(database_url, args.port, args.web_workers)
        stats = Stats()
        base = f"http://127.0.0.1:{args.port}"
        shares = [tokens[i :: args.client_processes] for i in range(args.client_processes)]
        began = time.perf_counter()
        deadline = time.time() + args.seconds
        with multiprocessing.get_context("spawn").Pool(args.client_processes) as pool:
            for result in pool.starmap(client_process, [(base, s, deadline) for s in shares]):
                stats.merge(result)
        elapsed = time.perf_counter() - began
        server.terminate()
        server.wait(timeout=30)
        over, duplicates = check_votes()
        cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[1]
        print(
            f"machine: {os.uname().nodename} {os.cpu_count()} cores; gunicorn "
            f"{args.web_workers}x4 threads; {args.workers} client threads in "
            f"{args.client_processes} processes on the same machine; "
            f"cache {cache}"
        )
        rate = stats.answered / elapsed
        print(f"answered tasks: {stats.answered} in {elapsed:.1f} s = {rate:.1f} tasks/s")
        for endpoint, values in stats.latency.items():
            p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
            mean = statistics.fmean(values or [0])
            print(
                f"{endpoint}: {len(values)} requests, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                f"mean {mean:.1f} ms"
            )
        print(f"204 (nothing to do): {stats.empty}; errors: {len(stats.errors)} {stats.errors[:3]}")
        print(f"items over their vote need: {over}; duplicate votes: {duplicates}")
        print("hottest path (cProfile of 200 next+answer round trips, in-process):")
        print(profile_hot_path("bench0", 200))


if __name__ == "__main__":
    main()
