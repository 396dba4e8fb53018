"""The import commands refuse an archived category, as the pages and the API do."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Image, ImportJob
from labeling.services.categories import category_archive
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db

MESSAGE = "Category 'cat' is archived; restore it on the Categories page to import into it."


def test_import_images_refuses_an_archived_category(category, tmp_path):
    (tmp_path / "a.jpg").write_bytes(image_bytes(1))
    category_archive(category=category)

    with pytest.raises(CommandError) as error:
        call_command("import_images", str(tmp_path), "--category", "cat", verbosity=0)

    assert str(error.value) == MESSAGE
    assert Image.objects.count() == 0


def test_scrape_images_refuses_an_archived_category(category):
    category_archive(category=category)

    with pytest.raises(CommandError) as error:
        call_command(
            "scrape_images", "--category", "cat", "--page", "https://example.com/", verbosity=0
        )

    assert str(error.value) == MESSAGE
    assert ImportJob.objects.count() == 0
