"""manage.py train: dataset versions and training runs from the command line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from datasets.models import DatasetVersion
from datasets.services.versions import DatasetTooSmall
from training.ml.catalog import BACKBONES, MODES
from training.ml.loop import EpochStats
from training.models import TrainingRun
from training.services.execute import run_execute
from training.services.promotion import promotion_by_hand
from training.services.runs import (
    RunBusy,
    RunInvalid,
    run_cancel,
    run_create,
    run_create_on_snapshot,
)


class Command(BaseCommand):
    help = (
        "Train a backbone on a dataset version of the crowd's accepted labels. Queues the run "
        "for the training worker, or with --now trains here with a progress bar. Also "
        "--list, --cancel RUN and --promote RUN."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # --version names a dataset version here, in place of Django's "print its version"
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--snapshot", action="store_true", help="Take a new version first.")
        parser.add_argument("--version", type=int, help="Version number (default: the newest).")
        parser.add_argument("--backbone", default="efficientnet_lite0", choices=BACKBONES)
        parser.add_argument(
            "--weights",
            default="imagenet",
            help="imagenet, random, run:<id> or checkpoint:<name in the checkpoint store>.",
        )
        parser.add_argument(
            "--mode", default=TrainingRun.Mode.FEATURE_EXTRACTION.value, choices=MODES
        )
        parser.add_argument(
            "--epochs", type=int, default=None, help="Default: CROWDNET_TRAIN_EPOCHS."
        )
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--lr", type=float, default=1e-3)
        parser.add_argument("--image-size", type=int, default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--now", action="store_true", help="Train in this process.")
        parser.add_argument("--list", action="store_true", help="List versions and runs.")
        parser.add_argument("--cancel", type=int, metavar="RUN")
        parser.add_argument("--promote", type=int, metavar="RUN")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            return self._list()
        if options["cancel"] is not None:
            run = run_cancel(self._run(options["cancel"]))
            self.stdout.write(
                f"run {run.pk}: {run.status}, cancel requested: {run.cancel_requested}"
            )
            return None
        if options["promote"] is not None:
            try:
                promotion = promotion_by_hand(run=self._run(options["promote"]), by=None)
            except RunInvalid as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"run {promotion.candidate_id} is now the current model.")
            return None
        run = self._create(options)
        version = run.version
        if not options["now"]:
            self.stdout.write(f"run {run.pk} queued on version {version.number}.")
            return None
        with tqdm(total=run.params["epochs"], unit="epoch", desc=f"run {run.pk}") as bar:

            def progress(stats: EpochStats) -> None:
                bar.set_postfix(
                    top1=f"{stats.top1_error:.3f}", img_s=f"{stats.images_per_second:.0f}"
                )
                bar.update(1)

            run = run_execute(run.pk, progress=progress)
        if run.status != TrainingRun.Status.DONE:
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")
        self.stdout.write(
            f"run {run.pk} done on {run.device}: top-1 error {run.top1_error:.4f}, top-5 error "
            f"{run.top5_error:.4f}, best epoch {run.best_epoch}; checkpoint {run.checkpoint}"
        )
        return None

    def _create(self, options: dict[str, Any]) -> TrainingRun:
        """The queued run, on a new version with --snapshot (taken in the same transaction,
        so a refused run leaves no version behind)."""
        params = {
            "batch_size": options["batch_size"],
            "lr": options["lr"],
            "seed": options["seed"],
        }
        if options["epochs"] is not None:
            params["epochs"] = options["epochs"]
        if options["image_size"]:
            params["image_size"] = options["image_size"]
        run_settings: dict[str, Any] = {
            "backbone": options["backbone"],
            "weights": options["weights"],
            "mode": options["mode"],
            "params": params,
            "enqueue": not options["now"],
        }
        try:
            if options["snapshot"]:
                run = run_create_on_snapshot(**run_settings)
                self.stdout.write(
                    f"version {run.version.number}: {run.version.images} images in "
                    f"{len(run.version.classes)} classes"
                )
            else:
                run = run_create(version=self._version(options), **run_settings)
        except DatasetTooSmall as error:
            raise CommandError(str(error)) from None
        except RunInvalid as error:
            raise CommandError(f"--{error.field.replace('_', '-')}: {error.message}") from None
        except RunBusy as busy:
            raise CommandError(str(busy)) from None
        return run

    def _run(self, pk: int) -> TrainingRun:
        run = TrainingRun.objects.filter(pk=pk).first()
        if run is None:
            raise CommandError(f"No run {pk}; see --list.")
        return run

    def _version(self, options: dict[str, Any]) -> DatasetVersion:
        versions = DatasetVersion.objects.all()
        if options["version"] is not None:
            versions = versions.filter(number=options["version"])
        version = versions.first()
        if version is None:
            raise CommandError("No such dataset version: take one with --snapshot.")
        return version

    def _list(self) -> None:
        for version in DatasetVersion.objects.all()[:10]:
            self.stdout.write(
                f"version {version.number}: {version.images} images, "
                f"{len(version.classes)} classes, {version.created_at:%Y-%m-%d %H:%M}"
            )
        for run in TrainingRun.objects.select_related("version")[:20]:
            error = f"{run.top1_error:.4f}" if run.top1_error is not None else "-"
            current = " (current)" if run.current else ""
            self.stdout.write(
                f"run {run.pk}: v{run.version.number} {run.backbone} {run.mode} {run.weights} "
                f"{run.status}{current}, top-1 error {error}"
            )
