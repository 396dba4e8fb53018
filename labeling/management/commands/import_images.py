"""manage.py import_images PATH --category SLUG: a folder (recursively) or an archive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from labeling.ingest.archives import ArchiveRejected
from labeling.models import Category, User
from labeling.services.ingest import IngestItem, folder_files, path_ingest


class Command(BaseCommand):
    help = "Import images from a folder, a zip/tar archive or one image file into a category."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="Folder, .zip/.tar[.gz] archive or image.")
        parser.add_argument("--category", required=True, help="Slug of the category.")
        parser.add_argument("--user", help="Username recorded as uploader.")
        parser.add_argument(
            "--show-rejected", action="store_true", help="List every rejected file with its reason."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path} does not exist; give a folder, an archive or an image.")
        category = Category.objects.filter(slug=options["category"]).first()
        if category is None:
            slugs = ", ".join(Category.objects.values_list("slug", flat=True)[:20]) or "none yet"
            raise CommandError(
                f"No category with slug {options['category']!r}. Known: {slugs}. "
                "Create it on the Categories page, with import_categories or the API first."
            )
        if category.archived_at is not None:
            raise CommandError(
                f"Category {category.slug!r} is archived; restore it on the Categories page "
                "to import into it."
            )
        uploader = None
        if options["user"]:
            uploader = User.objects.filter(username=options["user"]).first()
            if uploader is None:
                raise CommandError(f"No user named {options['user']!r}.")
        total = len(folder_files(path)) if path.is_dir() else None
        quiet = options["verbosity"] == 0
        with tqdm(total=total, unit="img", disable=quiet, desc="importing") as bar:

            def progress(item: IngestItem) -> None:
                bar.update(1)

            try:
                report = path_ingest(
                    path=path, category=category, uploader=uploader, progress=progress
                )
            except ArchiveRejected as error:
                raise CommandError(f"{path.name}: {error.message}") from None
        if options["show_rejected"] or options["verbosity"] >= 2:
            for item in report.items:
                if item.outcome == "rejected":
                    self.stderr.write(f"rejected {item.name}: {item.reason}")
        self.stdout.write(f"{path.name} -> {category.slug}: {report.summary()}")
        if report.items and report.added + report.duplicates == 0:
            raise CommandError("Nothing could be imported; run with --show-rejected for reasons.")
        if not report.items:
            raise CommandError(f"No image files found in {path}; nothing was imported.")
