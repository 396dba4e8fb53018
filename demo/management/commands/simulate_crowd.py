"""manage.py simulate_crowd: simulated workers of a chosen mix drive the real HTTP API."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from campaigns.models import Campaign
from demo.models import DemoTruth
from demo.personas import mix_parse
from demo.services.simulation import (
    SimulationConfig,
    box_category_generate,
    server_check,
    simulation_run,
)
from labeling.models import ConsensusRun, TaskKind
from labeling.services.reaggregation import consensus_reaggregate


class Command(BaseCommand):
    help = (
        "Run a simulated crowd against a running CrowdNet over HTTP (honest workers, "
        "confusers, spammers, always-yes, too-fast clickers, adversaries) and score the "
        "consensus against the known truth of the demo data: live, as the answer path "
        "decided, and after a Dawid-Skene re-aggregation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The server to drive.")
        parser.add_argument("--workers", type=int, default=20, help="Simulated workers.")
        parser.add_argument(
            "--mix",
            default="honest=0.7,confuser=0.1,spammer=0.1,yes=0.05,adversary=0.05",
            help="Shares of worker kinds: honest, confuser, spammer, yes, fast, adversary.",
        )
        parser.add_argument(
            "--accuracy",
            default="0.8-0.95",
            help="Honest workers' accuracy range, drawn uniformly (LOW-HIGH).",
        )
        parser.add_argument(
            "--seconds-per-item",
            type=float,
            default=0.5,
            help="Time a worker spends per item (the too-fast gate pauses those under it).",
        )
        parser.add_argument("--seconds", type=float, default=60.0, help="How long to run.")
        parser.add_argument("--max-tasks", type=int, default=None, help="Stop after this many.")
        parser.add_argument("--kind", choices=TaskKind.values, default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--campaign",
            metavar="SLUG",
            default=None,
            help="Enter through this campaign's link as marketplace workers (sessions, "
            "assignments, completion codes) instead of with API tokens.",
        )
        parser.add_argument(
            "--generate-boxes",
            type=int,
            default=0,
            metavar="N",
            help="First add N generated images with known rectangles (for the draw task).",
        )
        parser.add_argument(
            "--no-reaggregate",
            action="store_true",
            help="Skip the Dawid-Skene re-aggregation after the crowd stops: the report then "
            "scores only the live decisions (without it, it scores them live and after).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            mix = mix_parse(options["mix"])
        except ValueError as error:
            raise CommandError(f"--mix: {error}") from None
        low, _, high = options["accuracy"].partition("-")
        try:
            accuracy = (float(low), float(high))
        except ValueError:
            raise CommandError("--accuracy: give a range such as 0.8-0.95.") from None
        if not 0.0 <= accuracy[0] <= accuracy[1] <= 1.0:
            raise CommandError("--accuracy: LOW-HIGH with 0 <= LOW <= HIGH <= 1.")
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        if not options["generate_boxes"] and not DemoTruth.objects.exists():
            raise CommandError(
                "No items with a known truth: run `manage.py load_demo` (or --generate-boxes N)."
            )
        if options["campaign"] and not Campaign.objects.filter(slug=options["campaign"]).exists():
            raise CommandError(f"--campaign: no campaign {options['campaign']!r}.")
        problem = server_check(options["url"].rstrip("/"))
        if problem:
            raise CommandError(f"{problem}: start it (make demo) or pass --url.")
        if options["generate_boxes"]:
            category = box_category_generate(count=options["generate_boxes"], seed=options["seed"])
            self.stdout.write(f"Added {options['generate_boxes']} images to {category.name}.")
        config = SimulationConfig(
            url=options["url"].rstrip("/"),
            workers=options["workers"],
            mix=mix,
            accuracy=accuracy,
            seconds_per_item=options["seconds_per_item"],
            seconds=options["seconds"],
            max_tasks=options["max_tasks"],
            kind=options["kind"],
            seed=options["seed"],
            campaign=options["campaign"],
        )
        after = None if options["no_reaggregate"] else self._reaggregate
        with tqdm(
            total=options["max_tasks"], unit="task", desc="crowd", disable=options["verbosity"] == 0
        ) as bar:

            def progress(answered: int) -> None:
                bar.update(answered - bar.n)

            report = simulation_run(config, after=after, progress=progress)
        for line in report.lines():
            self.stdout.write(line)

    def _reaggregate(self) -> None:
        run = consensus_reaggregate(trigger=ConsensusRun.Trigger.SIMULATOR)
        self.stdout.write(
            f"re-aggregation: {run.status}, {run.votes} votes, {run.iterations} iterations, "
            f"{run.changed} changed, {run.seconds:.2f} s"
        )
