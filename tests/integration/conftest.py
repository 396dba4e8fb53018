"""A real Celery worker process for the integration tests, on a queue of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from tests.factories import image_bytes

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    """DATABASE_URL for the test database this process is using."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def worker_start(media_root: Path) -> Iterator[Callable[..., str]]:
    """Start a worker subprocess with extra environment (settings); returns its queue name.
    Its three file stores are this test's (tests/conftest.py), on the local disk."""
    processes: list[subprocess.Popen[bytes]] = []
    folders = {
        "CROWDNET_MEDIA_ROOT": str(media_root),
        "CROWDNET_CHECKPOINT_DIR": str(media_root.parent / "checkpoints"),
        "CROWDNET_EXPORT_DIR": str(media_root.parent / "exports"),
    }

    def start(**extra_env: str) -> str:
        queue = f"test-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, **folders, "PYTHONUNBUFFERED": "1"}
        env.setdefault("CELERY_TASK_ALWAYS_EAGER", "0")
        if connection.vendor == "postgresql":
            env["DATABASE_URL"] = _database_url()
        env["CROWDNET_FETCH_ALLOW_NETWORKS"] = "127.0.0.0/8"
        env.update(extra_env)
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool",
                    "solo",
                    "-Q",
                    queue,
                    "--loglevel",
                    "warning",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        return queue

    start.processes = processes  # type: ignore[attr-defined]  # for tests that kill one
    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def worker(worker_start: Callable[..., str]) -> str:
    """A worker with the settings everyone else has; yields its queue name."""
    return worker_start()


class _Images(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = image_bytes(int(self.path.strip("/").split(".")[0]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def image_site() -> Iterator[str]:
    """A site on loopback serving generated images at /<n>.jpg: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
