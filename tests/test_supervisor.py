"""The demo's supervisor: restarts what dies (orphans first), stops everything on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from config.supervisor import Program, Supervisor

ROOT = Path(__file__).resolve().parents[1]


def _until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); /proc says what it is
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _in_thread(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.run, kwargs={"install_signals": False})
    thread.start()
    return thread


def test_a_killed_program_is_started_again_after_its_orphans_are_gone(tmp_path):
    port, log = _free_port(), tmp_path / "starts"
    # like gunicorn: the master forks a worker that holds the port
    argv = _script(
        tmp_path,
        "server.py",
        f"""
        import os, socket, time
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", {port}))
        listener.listen()
        if os.fork() == 0:
            with open({str(log)!r}, "a") as out:
                out.write(f"{{os.getpid()}}\\n")
            time.sleep(600)
        listener.close()
        time.sleep(600)
        """,
    )
    lines: list[str] = []
    supervisor = Supervisor([Program("web", argv)], grace=2, say=lines.append)
    thread = _in_thread(supervisor)
    try:
        _until(lambda: len(_pids(log)) == 1)
        master = supervisor.running[0].process
        assert master is not None
        os.kill(master.pid, signal.SIGKILL)  # the worker holding the port is orphaned

        _until(lambda: len(_pids(log)) == 2)  # the new master could bind the port again
        first, second = _pids(log)
        assert not _alive(first)
        assert _alive(second)
        assert lines == ["web exited with status -9; restarting in 0.5 s"]
    finally:
        supervisor.stop()
        thread.join(30)
    assert not thread.is_alive()
    _until(lambda: not any(_alive(pid) for pid in _pids(log)), 10)


def test_stopping_terminates_every_group_and_kills_what_ignores_sigterm(tmp_path):
    log = tmp_path / "pids"
    polite = _script(
        tmp_path,
        "polite.py",
        f"""
        import os, time
        with open({str(log)!r}, "a") as out:
            out.write(f"{{os.getpid()}}\\n")
        time.sleep(600)
        """,
    )
    stubborn = _script(
        tmp_path,
        "stubborn.py",
        f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open({str(log)!r}, "a") as out:
            out.write(f"{{os.getpid()}}\\n")
        time.sleep(600)
        """,
    )
    lines: list[str] = []
    supervisor = Supervisor(
        [Program("worker", polite), Program("training", stubborn)], grace=1, say=lines.append
    )
    thread = _in_thread(supervisor)
    _until(lambda: len(_pids(log)) == 2)
    supervisor.stop()
    thread.join(30)

    assert not thread.is_alive()
    _until(lambda: not any(_alive(pid) for pid in _pids(log)), 10)
    assert lines == ["stopping: worker, training", "killed after 1 s: training", "stopped"]


def test_a_program_that_keeps_dying_is_given_up_and_a_once_program_is_not_restarted(tmp_path):
    log = tmp_path / "runs"
    crashing = _script(
        tmp_path, "crash.py", f"open({str(log)!r}, 'a').write('x'); raise SystemExit(3)"
    )
    once = _script(tmp_path, "once.py", f"open({str(log)!r} + '.once', 'a').write('x')")
    lines: list[str] = []
    supervisor = Supervisor(
        [Program("web", crashing), Program("crowd", once, once=True)],
        burst=2,
        burst_seconds=60,
        say=lines.append,
    )
    thread = _in_thread(supervisor)
    _until(lambda: supervisor.running[0].given_up and supervisor.running[1].finished)
    supervisor.stop()
    thread.join(30)

    assert log.read_text() == "xxx"  # the first start and two restarts
    assert Path(f"{log}.once").read_text() == "x"
    assert lines[:2] == [
        "web exited with status 3; restarting in 0.5 s",
        "web exited with status 3; restarting in 1.0 s",
    ]
    assert lines[2] == (
        "web exited 3 times in 60 s (last status 3); not restarting it. Read its output "
        "above, fix it, and run make demo again."
    )


def test_ctrl_c_stops_everything_once(tmp_path):
    log = tmp_path / "pids"
    child = _script(
        tmp_path,
        "child.py",
        f"""
        import os, time
        with open({str(log)!r}, "a") as out:
            out.write(f"{{os.getpid()}}\\n")
        time.sleep(600)
        """,
    )
    code = (
        "from config.supervisor import Program, Supervisor\n"
        f"Supervisor([Program('a', {child!r}), Program('b', {child!r})], grace=5).run()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    _until(lambda: len(_pids(log)) == 2)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)  # a second Ctrl-C changes nothing
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0
    assert stderr.splitlines() == ["[supervisor] stopping: a, b", "[supervisor] stopped"]
    _until(lambda: not any(_alive(pid) for pid in _pids(log)), 10)


def test_demo_serve_refuses_bad_arguments():
    with pytest.raises(CommandError, match=r"--port must be between 1 and 65535\."):
        call_command("demo_serve", "--port", "0")
    with pytest.raises(CommandError, match="--crowd must be 0"):
        call_command("demo_serve", "--crowd", "-1")


def test_demo_programs_are_the_demos_processes(settings, tmp_path):
    from demo.management.commands.demo_serve import demo_programs

    settings.VAR_DIR = tmp_path
    programs = demo_programs(port=8123, crowd_seconds=30, bin_dir=Path("/v/bin"))

    assert [(p.name, p.once, p.delay) for p in programs] == [
        ("web", False, 0.0),
        ("worker", False, 0.0),
        ("training", False, 0.0),
        ("beat", False, 0.0),
        ("crowd", True, 8.0),
    ]
    assert programs[0].argv[:4] == ["/v/bin/gunicorn", "config.wsgi", "--bind", "127.0.0.1:8123"]
    assert programs[4].argv[-6:] == ["--workers", "10", "--seconds", "30", "--verbosity", "0"]
    assert programs[4].output == str(tmp_path / "demo-crowd.txt")
    assert [p.name for p in demo_programs(port=1, crowd_seconds=0, bin_dir=Path("/b"))] == [
        "web",
        "worker",
        "training",
        "beat",
    ]
