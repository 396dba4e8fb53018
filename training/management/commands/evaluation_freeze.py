"""manage.py evaluation_freeze: a new version of a category set's evaluation set."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Category
from training.services.evaluation import EvaluationRefused, evaluation_freeze


class Command(BaseCommand):
    help = (
        "Freeze a new evaluation version: the previous version's images plus the reserved "
        "images whose labels passed scrutiny since. The current model and recent runs are "
        "re-scored on it by the training worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--categories",
            nargs="+",
            metavar="SLUG",
            help="Category slugs (default: the categories a dataset version would take).",
        )
        parser.add_argument("--note", default="", help="Why this version is made, in words.")

    def handle(self, *args: Any, **options: Any) -> None:
        categories = None
        if options["categories"]:
            slugs = options["categories"]
            categories = list(Category.objects.filter(slug__in=slugs))
            missing = sorted(set(slugs) - {c.slug for c in categories})
            if missing:
                raise CommandError(f"No category with slug {', '.join(missing)}.")
        try:
            evaluation = evaluation_freeze(categories=categories, note=options["note"])
        except EvaluationRefused as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"evaluation set v{evaluation.number} for {len(evaluation.classes)} categories: "
            f"{evaluation.images} images. {evaluation.note}"
        )
