"""manage.py scrape_images --category SLUG (--urls FILE | --page URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from labeling.ingest.fetch import FetchRefused
from labeling.models import Category, ImageSource
from labeling.services.imports import clean_urls, fetch_policy, page_urls, scrape
from labeling.services.ingest import IngestItem


class Command(BaseCommand):
    help = (
        "Fetch images from a list of URLs or from a web page's images into a category. "
        "Private, loopback and other internal addresses are refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--category", required=True, help="Slug of the category.")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--urls", type=Path, help="Text file with one image URL per line.")
        group.add_argument("--page", help="URL of an HTML page whose images to import.")
        parser.add_argument(
            "--show-rejected", action="store_true", help="List every rejected URL with its reason."
        )

    def _targets(self, options: dict[str, Any]) -> list[str]:
        if options["urls"] is not None:
            if not options["urls"].is_file():
                raise CommandError(f"{options['urls']} is not a file of URLs.")
            return clean_urls(options["urls"].read_text(errors="replace").splitlines())
        try:
            return page_urls(options["page"], fetch_policy())
        except FetchRefused as error:
            raise CommandError(f"Could not read the page: {error.message}") from None

    def handle(self, *args: Any, **options: Any) -> None:
        category = Category.objects.filter(slug=options["category"]).first()
        if category is None:
            raise CommandError(f"No category with slug {options['category']!r}; create it first.")
        if category.archived_at is not None:
            raise CommandError(
                f"Category {category.slug!r} is archived; restore it on the Categories page "
                "to import into it."
            )
        targets = self._targets(options)
        if not targets:
            raise CommandError("No image URLs to fetch.")
        quiet = options["verbosity"] == 0
        with tqdm(total=len(targets), unit="url", disable=quiet, desc="fetching") as bar:

            def progress(item: IngestItem) -> None:
                bar.update(1)

            report = scrape(
                category=category,
                uploader=None,
                urls=targets,
                source=ImageSource.PAGE if options["page"] else ImageSource.URL,
                progress=progress,
            )
        if options["show_rejected"] or options["verbosity"] >= 2:
            for item in report.items:
                if item.outcome == "rejected":
                    self.stderr.write(f"rejected {item.name}: {item.reason}")
        self.stdout.write(f"{len(targets)} URLs -> {category.slug}: {report.summary()}")
        if report.added + report.duplicates == 0:
            raise CommandError("Nothing could be imported; run with --show-rejected for reasons.")
