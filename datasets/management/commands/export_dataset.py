"""manage.py export_dataset: a dataset version written to an archive in one format."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from datasets.exports.formats import FORMATS, SPLITS
from datasets.models import DatasetVersion
from datasets.services.exports import (
    ExportRequestError,
    export_options_parse,
    export_selection,
    export_stream,
)
from datasets.services.versions import DatasetTooSmall, dataset_snapshot


class Command(BaseCommand):
    help = (
        "Export a dataset version (the newest, or --version N, or --snapshot for a new one) "
        "in one format to an archive at --out, written to a temporary file and moved into "
        "place when whole. The same version and options give the same bytes every time."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # --version names a dataset version here, in place of Django's "print its version"
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, type=Path, help="The archive to write.")
        parser.add_argument("--version", type=int, help="Version number (default: the newest).")
        parser.add_argument("--snapshot", action="store_true", help="Take a new version first.")
        parser.add_argument(
            "--archive",
            choices=("zip", "tar"),
            default=None,
            help="zip or tar (default: from --out's suffix, else zip).",
        )
        parser.add_argument("--categories", help="Comma-separated category slugs to keep.")
        parser.add_argument("--subtree", help="Keep this category's class and its descendants.")
        parser.add_argument("--min-confidence", type=float, default=0.0)
        parser.add_argument("--splits", default=",".join(SPLITS), help="train,val (default).")
        parser.add_argument("--image-size", choices=("original", "training"), default="original")
        parser.add_argument("--no-images", action="store_true", help="Index files only.")
        parser.add_argument("--folder-naming", choices=("slug", "wnid"), default="slug")
        parser.add_argument(
            "--shard-size", type=int, default=1000, help="WebDataset samples a shard."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a folder: create it, or write elsewhere.")
        archive = options["archive"] or ("tar" if out.suffix == ".tar" else "zip")
        raw = {
            "archive": archive,
            "categories": options["categories"].split(",") if options["categories"] else None,
            "subtree": options["subtree"],
            "min_confidence": options["min_confidence"],
            "splits": [s for s in options["splits"].split(",") if s],
            "image_size": options["image_size"],
            "include_images": not options["no_images"],
            "folder_naming": options["folder_naming"],
            "shard_size": options["shard_size"],
        }
        try:
            version = self._version(options)
            selection = export_selection(version, export_options_parse(raw))
        except (ExportRequestError, DatasetTooSmall) as error:
            raise CommandError(str(error)) from None
        total = selection.items().count()
        handle, temporary = tempfile.mkstemp(
            dir=out.parent, prefix=f".{out.name}.", suffix=".partial"
        )
        try:
            with (
                os.fdopen(handle, "wb") as stream,
                tqdm(total=total, unit="img", desc=options["format"]) as bar,
            ):

                def advance(done: int, _written: int) -> None:
                    bar.update(done - bar.n)

                written = export_stream(selection, options["format"], stream, on_image=advance)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, out)
        except ValueError as error:
            os.unlink(temporary)
            raise CommandError(str(error)) from None
        except BaseException:
            os.unlink(temporary)
            raise
        self.stdout.write(
            f"version {version.number}: {written} of {total} images as {options['format']} "
            f"in {out} ({out.stat().st_size:,} bytes)"
        )

    def _version(self, options: dict[str, Any]) -> DatasetVersion:
        if options["snapshot"]:
            return dataset_snapshot()
        versions = DatasetVersion.objects.all()
        if options["version"] is not None:
            version = versions.filter(number=options["version"]).first()
            if version is None:
                raise CommandError(
                    f"There is no dataset version {options['version']}; see manage.py train --list."
                )
            return version
        version = versions.order_by("-number").first()
        if version is None:
            raise CommandError("There is no dataset version yet: pass --snapshot to take one.")
        return version
