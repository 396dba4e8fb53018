"""manage.py import_categories FILE: a CSV or a JSON list of synsets becomes categories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.management.rejections import rejected_whole
from labeling.services.category_imports import MAX_BYTES, categories_import


class Command(BaseCommand):
    help = (
        "Create or update categories from a CSV (columns wnid,name,definition,parent_wnid,"
        "target_images; a header row names them) or a JSON list of synsets with the same keys. "
        "Every row is checked first: with any error nothing is written and each bad row is "
        "listed with its line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file: give the path of a CSV or JSON file.")
        if path.stat().st_size > MAX_BYTES:
            raise CommandError(f"{path} is larger than {MAX_BYTES:,} bytes: split it.")
        report = categories_import(data=path.read_bytes(), name=path.name)
        if not report.ok:
            raise rejected_whole([str(error) for error in report.errors], "row")
        self.stdout.write(f"{path.name}: {report.summary()}")
