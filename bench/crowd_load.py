"""Crowd load benchmark: simulated workers doing next + answer round trips over HTTP.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/crowd_load.py \\
        --workers 100 --pool 10000 --kind verify --seconds 60

Builds a throwaway test database (``test_<name>``) and seeds it in SQL (generate_series):
5 categories, ``--pool`` open candidates (3 votes each) on images of four sizes, and 500
curated gold items among the first 10,000 (control items for issue 12's lookup); worker
accounts with API tokens. It starts gunicorn (``--web-workers`` x gthread ``--threads``) on
it and drives it from one asyncio client (raw HTTP/1.1 keep-alive streams, one connection
per simulated worker): ``GET /api/tasks/next/`` then ``POST /api/tasks/<id>/answer/``, closed
loop, or with ``--think`` seconds (mean, exponential) between seeing a task and answering it;
with ``--protocol answer-next`` each answer asks for the next task (``?next=``) and the
next-task endpoint is asked only when an answer brought none (the labeling page's way).

It prints answered tasks/s, round-trip p50/p99 per endpoint, CPU ms per answer of the server
(the gunicorn process tree, and the PostgreSQL backends serving this database, sampled from
/proc), of the client itself, PostgreSQL rows read per answer (pg_stat_database: tuples
returned + fetched), queries per answer (pg_stat_statements when it is preloaded, and always
the count Django issues for one next + answer, in process), the load average, and the checks:
items over their vote need, duplicate votes, acknowledged answers missing from the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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
    # Simulated workers answer at random, so the gates would pause them all: they still run
    # on every answer (their cost is measured) but never reach a threshold.
    "CROWDNET_GATE_FALSE_PAUSE": "1e-300",
    "CROWDNET_GATE_PEER_FALSE_PAUSE": "1e-300",
    "DJANGO_LOG_LEVEL": "ERROR",
}
GOLD_SPACING = 20
"""Every 20th of the first 10,000 candidates is curated gold: 500 control items."""

SEED_SQL = [
    """INSERT INTO labeling_category (name, slug, definition, created_at)
       SELECT 'class ' || c, 'class-' || c, '', now() FROM generate_series(0, 4) c""",
    """INSERT INTO labeling_image (uid, file, thumbnail, train_copy, sha256, phash, phash256,
         phash_band0, phash_band1, phash_band2, phash_band3, phash_band4, width, height, format,
         byte_size, source, source_url, original_name, created_at, updated_at)
       SELECT gen_random_uuid(), 'b/' || i, 'b/' || i, 'b/' || i, md5(i::text) || md5((-i)::text),
         i, lpad(to_hex(i), 64, '0'), 0, 0, 0, 0, i, 64 + 32 * (i / 5 % 4), 48 + 24 * (i / 5 % 4),
         'JPEG', 700, 'folder', '', '', now(), now()
       FROM generate_series(0, {total} - 1) i""",
    """INSERT INTO labeling_candidate (image_id, category_id, state, yes_votes, no_votes,
         unsure_votes, confidence, posterior, priority, votes_needed, box_state, created_at,
         updated_at)
       SELECT im.id, (SELECT min(id) FROM labeling_category) + im.phash % 5,
         CASE WHEN im.phash < 10000 AND im.phash % {spacing} = 0
              THEN (CASE WHEN im.phash % 40 = 0 THEN 'accepted' ELSE 'rejected' END)
              ELSE 'open' END,
         0, 0, 0, CASE WHEN im.phash < 10000 AND im.phash % {spacing} = 0 THEN 1.0 ELSE 0.0 END,
         0.5, 0, 3, 'none', now(), now()
       FROM labeling_image im""",
    """INSERT INTO labeling_goldanswer (candidate_id, category_id, answer, created_at)
       SELECT id, category_id, state = 'accepted', now() FROM labeling_candidate
       WHERE state <> 'open'""",
]


def seed(pool: int, workers: int) -> list[str]:
    """``pool`` open candidates plus the gold, and ``workers`` accounts; returns their tokens."""
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from labeling.models import User, WorkerProfile

    gold = min(10_000, pool) // GOLD_SPACING
    with connection.cursor() as cursor:
        for statement in SEED_SQL:
            cursor.execute(statement.format(total=pool + gold, spacing=GOLD_SPACING))
    users = User.objects.bulk_create(
        User(username=f"bench{i}", role=User.Role.WORKER, password="!")  # noqa: S106 (unusable)
        for i in range(workers)
    )
    WorkerProfile.objects.bulk_create(WorkerProfile(user=u) for u in users)
    tokens = Token.objects.bulk_create(Token(user=u, key=os.urandom(20).hex()) for u in users)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum would have done on a live database
    return [t.key for t in tokens]


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


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened when the server closed it."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Token {self.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            try:
                self.writer.write(head.encode() + body)
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError):
                self.writer.close()
                self.writer = None
                if attempt == 1:  # a closed idle connection is retried once: answers carry
                    raise  # a client_token, so a repeated POST is replayed, never doubled
        raise ConnectionError("unreachable")

    async def _response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int((await self.reader.readline()).strip(), 16):
                body += await self.reader.readexactly(size + 2)
            await self.reader.readline()
        else:
            body = b""
        if headers.get("connection", "").lower() == "close" and self.writer is not None:
            self.writer.close()
            self.writer = None
        return status, body


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {"next": [], "answer": []}
        self.answered = self.acknowledged = self.empty = 0
        self.errors: list[str] = []
        self.recording = False


PROTOCOLS = ("two-step", "answer-next")
"""two-step: ``GET /api/tasks/next/`` then the answer, two requests per task; answer-next: each
answer asks for the next task (``?next=``) and the worker asks the next-task endpoint only when
an answer brought none, one request per task as the labeling page sends them."""


def task_paths(kind: str, protocol: str) -> tuple[str, str]:
    """The next-task path for ``kind`` (verify, or all: any kind), and the query an answer
    carries under ``protocol`` (``?next=...`` for answer-next, else none)."""
    verify = kind == "verify"
    path = "/api/tasks/next/" + ("?kind=verify" if verify else "")
    if protocol != "answer-next":
        return path, ""
    return path, "?next=" + ("verify" if verify else "any")


async def simulated_worker(
    port: int, token: str, kind: str, think: float, deadline: float, stats: Stats, protocol: str
) -> None:
    """next, (think), answer, until the deadline; latencies only while ``stats.recording``."""
    connection = Connection(port, token)
    path, query = task_paths(kind, protocol)
    await asyncio.sleep(random.random() * min(think, 3.0))  # the crowd does not arrive at once
    task = None
    while time.time() < deadline:
        if task is None:
            start = time.perf_counter()
            status, body = await connection.request("GET", path)
            if stats.recording:
                stats.latency["next"].append((time.perf_counter() - start) * 1000)
            if status == 204:
                stats.empty += 1
                await asyncio.sleep(0.05)
                continue
            if status != 200:
                stats.errors.append(f"next {status} {body[:200]!r}")
                await asyncio.sleep(0.05)
                continue
            task = json.loads(body)
        if think:
            await asyncio.sleep(random.expovariate(1 / think))
        payload = json.dumps({"answers": answers_for(task), "client_token": os.urandom(8).hex()})
        start = time.perf_counter()
        status, body = await connection.request(
            "POST", f"/api/tasks/{task['id']}/answer/{query}", payload.encode()
        )
        task = None
        if status == 201:
            stats.acknowledged += 1
            following = json.loads(body).get("next") if query else None
            if following and following["status"] == "task":
                task = following["task"]
        if stats.recording:
            stats.latency["answer"].append((time.perf_counter() - start) * 1000)
            stats.answered += status == 201
        if status not in (201, 409):
            stats.errors.append(f"answer {status} {body[:200]!r}")


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU of a changing set of processes: sampled every 0.2 s, each pid from when first seen
    (processes that exit between samples lose at most 0.2 s of their time)."""

    def __init__(self, pids_of) -> None:
        self.pids_of, self.first, self.last = pids_of, {}, {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, initial: bool = False) -> None:
        for pid in self.pids_of():
            seconds = cpu_seconds(pid)
            if seconds is not None:
                self.first.setdefault(pid, seconds if initial else 0.0)
                self.last[pid] = seconds

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self._sample()

    def start(self) -> None:
        self._sample(initial=True)
        self.thread.start()

    def seconds(self) -> float:
        self.stop.set()
        self.thread.join()
        self._sample()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


GROWING = "labeling_vote, labeling_taskitem, labeling_microtask, labeling_candidate"
"""The tables a run grows or rewrites, analysed again by ``--analyze-every``."""


class Analyzer:
    """ANALYZE the growing tables every ``every`` seconds on a connection of its own, as
    autovacuum's analyses keep a running server's statistics (and so its plans) current as a
    crowd grows its tables; its backend counts in PostgreSQL's CPU like the server's own."""

    def __init__(self, database_url: str, every: float) -> None:
        self.database_url, self.every, self.runs = database_url, every, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while not self.stop.wait(self.every):
                conn.execute(f"ANALYZE {GROWING}")
                self.runs += 1

    def start(self) -> None:
        if self.every > 0:
            self.thread.start()

    def close(self) -> int:
        """Stop; the number of analyses run."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        return self.runs


def database_counters(cursor, name: str) -> tuple[int, int | None]:
    """(tuples returned + fetched, statements run per pg_stat_statements or None)."""
    cursor.execute("SELECT pg_stat_clear_snapshot()")
    cursor.execute(
        "SELECT tup_returned + tup_fetched FROM pg_stat_database WHERE datname = %s", [name]
    )
    rows = cursor.fetchone()[0]
    try:
        cursor.execute(
            "SELECT sum(calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = %s",
            [name],
        )
        calls = int(cursor.fetchone()[0] or 0)
    except Exception:  # not preloaded on this server
        cursor.connection.rollback()
        calls = None
    return rows, calls


def serve(database_url: str, port: int, web_workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, **FAST_SETTINGS, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(web_workers), "--worker-class", "gthread", "--threads"]
    command += [str(threads), "--keep-alive", "30", "--worker-connections", "2000"]
    log = open(Path(tempfile.gettempdir()) / f"crowd_load_gunicorn_{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [*command, "--log-level", "warning"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    import urllib3

    for _ in range(100):
        try:
            urllib3.request("GET", f"http://127.0.0.1:{port}/accounts/login/", timeout=1)
            return process
        except urllib3.exceptions.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def checks(acknowledged: int) -> tuple[int, int, int]:
    """(items over their vote need, duplicate worker votes, acknowledged answers missing)."""
    from django.db.models import Count, F

    from labeling.models import Candidate, MicroTask, Vote

    over = Candidate.objects.filter(votes_cast__gt=F("votes_needed")).count()
    duplicates = (
        Vote.objects.values("worker", "candidate", "question", "box")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    answered = MicroTask.objects.filter(status=MicroTask.Status.ANSWERED).count()
    return over, duplicates, max(0, acknowledged - answered)


def queries_per_round_trip(username: str, kind: str, protocol: str, rounds: int = 30) -> float:
    """Statements Django sends per answered task, through the test client, in process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from labeling.models import User

    client = Client()
    client.force_login(User.objects.get(username=username))
    path, query = task_paths(kind, protocol)
    response = client.get(path)  # the first task (not counted: one per worker, not per task)
    task = response.json() if response.status_code == 200 else None
    with CaptureQueriesContext(connection) as captured:
        done = 0
        for _ in range(rounds):
            if task is None:
                response = client.get(path)
                if response.status_code != 200:
                    break
                task = response.json()
            answered = client.post(
                f"/api/tasks/{task['id']}/answer/{query}",
                {"answers": answers_for(task), "client_token": os.urandom(8).hex()},
                content_type="application/json",
            ).json()
            following = answered.get("next") or {}
            task = following.get("task") if following.get("status") == "task" else None
            done += 1
    return len(captured) / max(1, done)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


async def drive(args: argparse.Namespace, tokens: list[str], measure) -> tuple[Stats, float]:
    """Warm up, then record for ``args.seconds``; ``measure(start|stop)`` brackets the record."""
    stats = Stats()
    deadline = time.time() + args.warmup + args.seconds
    jobs = [
        asyncio.create_task(
            simulated_worker(
                args.port, token, args.kind, args.think, deadline, stats, args.protocol
            )
        )
        for token in tokens
    ]
    await asyncio.sleep(args.warmup)
    measure("start")
    stats.recording, began = True, time.perf_counter()
    await asyncio.gather(*jobs)
    elapsed = time.perf_counter() - began
    stats.recording = False
    measure("stop")
    return stats, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=100, help="simulated workers")
    parser.add_argument("--pool", type=int, default=10_000, help="open candidates")
    parser.add_argument("--kind", choices=["verify", "all"], default="verify")
    parser.add_argument("--think", type=float, default=0.0, help="mean think time, seconds")
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="two-step",
        help="two-step: next, then answer (two requests a task); answer-next: each answer "
        "brings the next task (?next=), as the labeling page asks",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="recorded run")
    parser.add_argument("--warmup", type=float, default=5.0, help="unrecorded start")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per process")
    parser.add_argument("--port", type=int, default=8931)
    parser.add_argument(
        "--analyze-after-warmup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ANALYZE again once the warm-up is over, as autovacuum does on a running crowd "
        "(--no-analyze-after-warmup: only the seed is analysed, with the task and vote tables "
        "empty, as on a server without autovacuum: `manage.py check --database default` "
        "warns of that)",
    )
    parser.add_argument(
        "--analyze-every",
        type=float,
        default=0.0,
        help="also ANALYZE the growing tables every this many seconds through the run, as "
        "autovacuum would on a server that has it (0: never; this bench's figures before "
        "2026-12-08 were taken without)",
    )
    args = parser.parse_args()

    for name, value in FAST_SETTINGS.items():
        os.environ[name] = value
    # The counters are read from inside the client's event loop, on purpose: a few ms, twice.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    os.environ["CROWDNET_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="crowdnet-load-media-")
    with throwaway_database() as database_url:
        from django.db import connection

        started = time.perf_counter()
        tokens = seed(args.pool, args.workers)
        print(
            f"seeded {args.pool:,} open candidates, {args.workers} workers in "
            f"{time.perf_counter() - started:.0f} s"
        )
        name = connection.settings_dict["NAME"]
        server = serve(database_url, args.port, args.web_workers, args.threads)
        gunicorn = CpuMeter(lambda: process_tree(server.pid))
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            own = cursor.fetchone()[0]

        def backends() -> list[int]:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [name])
                return [pid for (pid,) in cursor.fetchall() if pid != own]

        postgres = CpuMeter(backends)
        client_cpu = [0.0]
        marks: dict[str, tuple] = {}

        def measure(when: str) -> None:
            with connection.cursor() as cursor:
                if when == "start" and args.analyze_after_warmup:
                    cursor.execute("ANALYZE")  # as a running crowd's autovacuum would have
                marks[when] = database_counters(cursor, name)
            if when == "start":
                gunicorn.start()
                postgres.start()
                client_cpu[0] = time.process_time()
                marks["load"] = os.getloadavg()
            else:
                client_cpu[0] = time.process_time() - client_cpu[0]

        analyzer = Analyzer(database_url, args.analyze_every)
        analyzer.start()
        try:
            stats, elapsed = asyncio.run(drive(args, tokens, measure))
            web_seconds, db_seconds = gunicorn.seconds(), postgres.seconds()
            load_end = os.getloadavg()
        finally:
            analyses = analyzer.close()
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        over, duplicates, lost = checks(stats.acknowledged)
        answered = max(1, stats.answered)
        rows = (marks["stop"][0] - marks["start"][0]) / answered
        calls = marks["start"][1]
        print(
            f"machine: {os.uname().nodename}, {os.cpu_count()} cores; gunicorn "
            f"{args.web_workers}x{args.threads} gthread; {args.workers} workers "
            f"({args.kind}, think {args.think} s, {args.protocol}) from one asyncio client on "
            "the same machine; "
            f"load average {marks['load'][0]:.2f} at start, {load_end[0]:.2f} at end; "
            f"{analyses} ANALYZE runs (--analyze-every {args.analyze_every:g})"
        )
        print(f"answered: {stats.answered} in {elapsed:.1f} s = {stats.answered / elapsed:.1f}/s")
        for endpoint, values in stats.latency.items():
            print(
                f"{endpoint}: {len(values)} requests, p50 {percentile(values, 0.5):.1f} ms, "
                f"p99 {percentile(values, 0.99):.1f} ms"
            )
        both = stats.latency["next"] + stats.latency["answer"]
        print(
            f"round trip (either): p50 {percentile(both, 0.5):.1f} ms, "
            f"p99 {percentile(both, 0.99):.1f} ms"
        )
        print(
            f"server CPU per answer: {1000 * (web_seconds + db_seconds) / answered:.1f} ms "
            f"(gunicorn {1000 * web_seconds / answered:.1f}, PostgreSQL backends "
            f"{1000 * db_seconds / answered:.1f}); client {1000 * client_cpu[0] / answered:.1f}"
        )
        print(f"PostgreSQL rows read per answer: {rows:,.0f}")
        if calls is not None:
            print(f"statements per answer: {(marks['stop'][1] - calls) / answered:.1f}")
        print(f"204 (nothing to do): {stats.empty}; errors: {len(stats.errors)} {stats.errors[:3]}")
        print(
            f"items over their vote need: {over}; duplicate votes: {duplicates}; "
            f"acknowledged answers missing: {lost}"
        )
        print(
            f"queries per answered task (Django, in process): "
            f"{queries_per_round_trip('bench0', args.kind, args.protocol):.1f}"
        )


if __name__ == "__main__":
    main()
