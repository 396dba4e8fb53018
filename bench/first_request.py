"""First-request benchmark: how long after gunicorn says "Listening" the first pages answer.

    .venv/bin/python bench/first_request.py [--runs 3] [--workers 2]

Each run starts `make demo`'s web command (gunicorn, 2 workers, embedded SQLite) on a fresh,
migrated state folder under a temporary directory, waits for gunicorn's "Listening at" line,
then times, from that line: the login page's first 200, a curator's first page after signing in
(the training page, which resolves every route), and the API's first answer to a token
(`GET /api/categories/`). A web worker loads Django and the routes on its first request, so
anything the routes import is paid here; torch alone took 14 s per process on a cold start.
Prints one line per run and the median. The page cache is warm after the first run: the first
run's figures are the cold ones where the machine has not read these files recently.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PASSWORD = "first-request-bench-1"  # noqa: S105 (a throwaway account in a temporary database)
SETUP = f"""
from labeling.models import User
User.objects.create_user("curator", password="{PASSWORD}", role="curator", is_staff=True)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(env: dict[str, str]) -> None:
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "shell", "-c", SETUP], cwd=ROOT, env=env, check=True)


def _wait_listening(server: subprocess.Popen[str]) -> float:
    assert server.stderr is not None
    for line in server.stderr:
        if "Listening at" in line:
            return time.perf_counter()
    raise RuntimeError("gunicorn exited before listening")


def _until_ok(url: str, opener: urllib.request.OpenerDirector, data: bytes | None = None) -> str:
    deadline = time.monotonic() + 300
    while True:
        try:
            with opener.open(url, data=data, timeout=300) as response:
                return str(response.read().decode())
        except (ConnectionError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _login(base: str, opener: urllib.request.OpenerDirector, page: str) -> None:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    form = {"username": "curator", "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
    request = urllib.request.Request(
        f"{base}/accounts/login/",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Referer": f"{base}/accounts/login/"},
    )
    opener.open(request, timeout=300).read()


def _api_token(base: str) -> str:
    body = json.dumps({"username": "curator", "password": PASSWORD}).encode()
    request = urllib.request.Request(
        f"{base}/api/auth/token/", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return str(json.load(response)["token"])


def run_once(workers: int) -> tuple[float, float, float]:
    """Seconds from "Listening" to the login page, a curator's page, and an API answer."""
    with tempfile.TemporaryDirectory(prefix="crowdnet-first-") as var:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env |= {"CROWDNET_VAR_DIR": var, "DJANGO_SETTINGS_MODULE": "config.settings"}
        _prepare(env)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        command = [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
        command += ["--workers", str(workers), "--timeout", "300"]
        server = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        try:
            listening = _wait_listening(server)
            opener = urllib.request.build_opener(
                urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
            )
            page = _until_ok(f"{base}/accounts/login/", opener)
            login_s = time.perf_counter() - listening
            _login(base, opener, page)
            _until_ok(f"{base}/curate/training/", opener)
            curator_s = time.perf_counter() - listening
            token = _api_token(base)
            api = urllib.request.Request(
                f"{base}/api/categories/", headers={"Authorization": f"Token {token}"}
            )
            urllib.request.urlopen(api, timeout=300).read()
            api_s = time.perf_counter() - listening
        finally:
            server.terminate()
            server.wait(timeout=60)
    return login_s, curator_s, api_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for number in range(1, args.runs + 1):
        row = run_once(args.workers)
        rows.append(row)
        print(
            f"run {number}: login page {row[0]:.2f} s, curator page {row[1]:.2f} s, "
            f"API {row[2]:.2f} s after Listening"
        )
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print(
        f"median of {args.runs}: login page {medians[0]:.2f} s, curator page {medians[1]:.2f} s, "
        f"API {medians[2]:.2f} s (target: first page within 5 s)"
    )


if __name__ == "__main__":
    main()
