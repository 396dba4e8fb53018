"""manage.py import_annotations: an archive of images and annotations (COCO, VOC, YOLO,
ImageFolder, Label Studio) in, as categories, images, labels and boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from datasets.exports.annotations import IMPORT_FORMATS
from datasets.services.annotation_imports import annotations_import
from labeling.management.rejections import rejected_whole


class Command(BaseCommand):
    help = (
        "Import an archive (zip or tar) of images and annotation files. Every record is "
        "checked first: with any error nothing is written and each bad record is listed. "
        "Labels come in accepted, or with --prefill open for the crowd to verify."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path)
        parser.add_argument("--format", required=True, choices=IMPORT_FORMATS)
        parser.add_argument(
            "--prefill", action="store_true", help="Labels for the crowd to verify."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["archive"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file: give the path of a zip or tar archive.")
        report = annotations_import(
            source=path, kind=options["format"], by=None, prefill=options["prefill"]
        )
        if not report.ok:
            raise rejected_whole([f"{e.record}: {e.message}" for e in report.errors], "record")
        created = ", ".join(report.categories_created) or "none"
        self.stdout.write(
            f"{report.images} images, {report.labels} labels, {report.boxes} boxes imported; "
            f"new categories: {created}"
        )
