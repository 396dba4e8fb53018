"""manage.py demo_serve: web, both Celery workers, beat and the simulated crowd, supervised."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.supervisor import Program, Supervisor


def demo_programs(*, port: int, crowd_seconds: int, bin_dir: Path) -> list[Program]:
    """What `make demo` runs: gunicorn, the default and training workers, beat and, for
    ``crowd_seconds`` > 0, a simulated crowd once the web server is up."""
    python = str(bin_dir / "python")
    web = [str(bin_dir / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    web += ["--workers", "2", "--timeout", "120", "--access-logfile", "-"]
    celery = [str(bin_dir / "celery"), "-A", "config"]
    worker = [*celery, "worker", "-Q", "default", "-n", "default@%h", "--concurrency", "1"]
    training = [*celery, "worker", "-Q", "training", "-n", "training@%h", "--concurrency", "1"]
    training += ["--prefetch-multiplier", "1"]
    quiet = ["--loglevel", "warning"]
    programs = [
        Program("web", web),
        Program("worker", worker + quiet),
        Program("training", training + quiet),
        Program("beat", [*celery, "beat", *quiet]),
    ]
    if crowd_seconds:
        report = Path(settings.VAR_DIR) / "demo-crowd.txt"
        crowd = [python, "manage.py", "simulate_crowd", "--url", f"http://127.0.0.1:{port}"]
        crowd += ["--workers", "10", "--seconds", str(crowd_seconds), "--verbosity", "0"]
        programs.append(Program("crowd", crowd, once=True, delay=8.0, output=str(report)))
    return programs


class Command(BaseCommand):
    help = (
        "Run the demo's processes (web, default and training Celery workers, beat, and the "
        "simulated crowd) in the foreground: restart any that dies, stop all on Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--crowd", type=int, default=0, metavar="SECONDS", help="Simulated crowd time."
        )
        parser.add_argument(
            "--grace", type=float, default=10.0, help="Seconds to stop before SIGKILL."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["port"] <= 65535:
            raise CommandError("--port must be between 1 and 65535.")
        if options["crowd"] < 0:
            raise CommandError("--crowd must be 0 (no crowd) or more seconds.")
        bin_dir = Path(sys.executable).parent
        programs = demo_programs(
            port=options["port"], crowd_seconds=options["crowd"], bin_dir=bin_dir
        )
        Supervisor(programs, grace=options["grace"]).run()
