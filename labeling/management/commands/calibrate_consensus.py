"""manage.py calibrate_consensus: ImageNet's confidence tables, per category."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Category
from labeling.services.confidence_tables import calibration_sample_mark, confidence_table_fit


class Command(BaseCommand):
    help = (
        "ImageNet's dynamic consensus, in two steps: --sample N marks N open candidates per "
        "category to get --votes votes each; once the crowd has answered them, --fit learns "
        "each category's table of P(good | yes and no votes). Set "
        "CROWDNET_CONSENSUS_RULE=imagenet to decide with the tables."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--category", action="append", help="Slug; all when omitted.")
        parser.add_argument("--sample", type=int, default=0, help="Mark N candidates each.")
        parser.add_argument("--votes", type=int, default=10, help="Votes for each marked one.")
        parser.add_argument("--fit", action="store_true", help="Fit and store the tables.")
        parser.add_argument("--cap", type=int, default=10, help="The table's vote cap.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["sample"] and not options["fit"]:
            raise CommandError("Nothing to do: give --sample N, --fit, or both.")
        if options["sample"] < 0 or not 2 <= options["votes"] <= 50:
            raise CommandError("--sample must be positive and --votes between 2 and 50.")
        if not 1 <= options["cap"] <= options["votes"]:
            raise CommandError("--cap must be between 1 and --votes.")
        categories = Category.objects.order_by("slug")
        if options["category"]:
            categories = categories.filter(slug__in=options["category"])
            missing = set(options["category"]) - set(categories.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"No such category: {', '.join(sorted(missing))}.")
        failed = []
        for category in categories:
            if options["sample"]:
                marked = calibration_sample_mark(
                    category=category,
                    size=options["sample"],
                    votes=options["votes"],
                    seed=options["seed"],
                )
                self.stdout.write(f"{category.slug}: {marked} candidates marked for calibration")
            if options["fit"]:
                try:
                    table = confidence_table_fit(category=category, cap=options["cap"])
                except ValueError as error:
                    failed.append(category.slug)
                    self.stderr.write(f"{category.slug}: {error}")
                    continue
                self.stdout.write(
                    f"{category.slug}: table from {table.calibration_items} items, "
                    f"prior {table.prior:.2f}; P(good) after {table.cap} yes and no no: "
                    f"{table.table[table.cap][0]}"
                )
        if failed:
            raise CommandError(f"No table for {', '.join(failed)}: see above.")
