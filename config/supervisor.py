"""A small process supervisor for `make demo`: web, workers and beat as one foreground job.

Each program runs in a process group of its own, so that what it forks (gunicorn's workers,
Celery's pool) goes with it. A program that dies is started again after a short pause, once
its whole group is gone: a gunicorn master killed with SIGKILL leaves workers holding the port,
and they are killed first. Restarts back off, and a program that keeps dying within seconds is
given up with a message rather than restarted forever. SIGINT or SIGTERM (Ctrl-C) stops
everything once: SIGTERM to every program (each stops its own children), up to ``grace``
seconds for their groups to leave, then SIGKILL for what remains (a training run cut short is
requeued by the stale-run sweep). Pure standard library: no Django.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Program:
    """A command to keep running; ``once``: run it to its end, never restart it; ``delay``:
    seconds after the start; ``output``: a file for its stdout and stderr (else the terminal)."""

    name: str
    argv: list[str]
    once: bool = False
    delay: float = 0.0
    output: str | None = None


@dataclass
class _Running:
    program: Program
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    given_up: bool = False
    finished: bool = False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


class Supervisor:
    """Start ``programs``, keep them running and stop them all on a signal or ``stop()``."""

    def __init__(
        self,
        programs: list[Program],
        *,
        grace: float = 10.0,
        burst: int = 5,
        burst_seconds: float = 60.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.running = [_Running(program) for program in programs]
        self.grace = grace
        self.burst, self.burst_seconds = burst, burst_seconds
        self.say = say or (lambda line: print(f"[supervisor] {line}", file=sys.stderr, flush=True))
        self._stopping = threading.Event()

    def _start(self, entry: _Running) -> None:
        if entry.program.output is None:
            entry.process = subprocess.Popen(entry.program.argv, start_new_session=True)
            return
        with open(entry.program.output, "wb") as output:
            entry.process = subprocess.Popen(
                entry.program.argv, start_new_session=True, stdout=output, stderr=output
            )

    def _reap_group(self, entry: _Running) -> None:
        """Kill whatever the dead program left in its group (orphaned workers) and wait."""
        assert entry.process is not None
        pgid = entry.process.pid
        _signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _check(self, entry: _Running) -> None:
        process = entry.process
        if process is None or entry.given_up or entry.finished:
            return
        code = process.poll()
        if code is None:
            return
        self._reap_group(entry)
        if entry.program.once:
            entry.finished = True
            return
        now = time.monotonic()
        entry.restarts = [t for t in entry.restarts if now - t < self.burst_seconds] + [now]
        if len(entry.restarts) > self.burst:
            entry.given_up = True
            self.say(
                f"{entry.program.name} exited {len(entry.restarts)} times in "
                f"{self.burst_seconds:.0f} s (last status {code}); not restarting it. "
                "Read its output above, fix it, and run make demo again."
            )
            return
        pause = min(5.0, 0.5 * 2 ** (len(entry.restarts) - 1))
        self.say(f"{entry.program.name} exited with status {code}; restarting in {pause:.1f} s")
        if not self._stopping.wait(pause):
            self._start(entry)

    def stop(self) -> None:
        """Ask every program to stop (once)."""
        self._stopping.set()

    def run(self, *, install_signals: bool = True) -> None:
        """Run until stopped; then terminate every group, SIGKILL after ``grace`` seconds."""
        if install_signals:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, lambda *_: self.stop())
        started = time.monotonic()
        pending = sorted(self.running, key=lambda entry: entry.program.delay)
        try:
            while not self._stopping.is_set():
                while pending and time.monotonic() - started >= pending[0].program.delay:
                    self._start(pending.pop(0))
                for entry in self.running:
                    self._check(entry)
                self._stopping.wait(0.2)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        groups = [e.process.pid for e in self.running if e.process is not None]
        self.say("stopping: " + ", ".join(e.program.name for e in self.running if e.process))
        for entry in self.running:
            if entry.process is not None and entry.process.poll() is None:
                # the leader only: Celery and gunicorn stop their own children in order
                entry.process.terminate()
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            for entry in self.running:
                if entry.process is not None:
                    entry.process.poll()  # reap a leader that left: its zombie counts as alive
            if not any(_group_alive(pgid) for pgid in groups):
                break
            time.sleep(0.1)
        stubborn = [pgid for pgid in groups if _group_alive(pgid)]
        for pgid in stubborn:
            _signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5  # SIGKILL lands at once, but not instantly
        while any(_group_alive(pgid) for pgid in stubborn) and time.monotonic() < deadline:
            time.sleep(0.05)
        for entry in self.running:
            if entry.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    entry.process.wait(timeout=5)
        if stubborn:
            names = [
                e.program.name for e in self.running if e.process and e.process.pid in stubborn
            ]
            self.say(f"killed after {self.grace:.0f} s: {', '.join(names)}")
        self.say("stopped")
