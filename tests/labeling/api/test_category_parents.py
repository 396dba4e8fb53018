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
    assert response.json() == {"parent": ["Give a category by its slug."]}
    assert Category.objects.count() == 0


def _admin_made_loop() -> tuple[Category, Category]:
    """Two categories each the other's parent, as the admin could save them before."""
    a = Category.objects.create(name="a", slug="a")
    b = Category.objects.create(name="b", slug="b", parent=a)
    Category.objects.filter(pk=a.pk).update(parent=b)
    return a, b


LOOP = "That parent's own parents make a loop; give it another parent first."


@pytest.mark.timeout(20)
def test_a_parent_inside_a_loop_is_refused_without_hanging(curator_api, client, curator):
    _admin_made_loop()
    Category.objects.create(name="c", slug="c")
    client.force_login(curator)

    api = curator_api.patch("/api/categories/c/", {"parent": "a"}, format="json")
    page = client.post("/curate/categories/c/edit/", {"name": "c", "slug": "c", "parent": "a"})

    assert api.status_code == 400
    assert api.json() == {"parent": [LOOP]}
    assert page.status_code == 200
    assert page.context["form"].errors == {"parent": [LOOP]}
    assert Category.objects.get(slug="c").parent is None


@pytest.mark.timeout(20)
def test_the_admin_refuses_to_make_a_loop(admin_client):
    a = Category.objects.create(name="a", slug="a")
    Category.objects.create(name="b", slug="b", parent=a)

    response = admin_client.post(
        f"/admin/labeling/category/{a.pk}/change/",
        {
            "name": "a",
            "slug": "a",
            "wnid": "",
            "definition": "",
            "parent": Category.objects.get(slug="b").pk,
        },
    )

    assert response.status_code == 200
    assert "A category can&#x27;t be its own ancestor." in response.content.decode()
    assert Category.objects.get(slug="a").parent is None


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/categories/a%00b/"),
        ("post", "/api/categories/a%00b/restore/"),
        ("delete", "/api/categories/a%00b/"),
        ("patch", "/api/categories/a%00b/"),
    ],
)
def test_a_category_address_that_is_no_slug_is_a_404(curator_api, category, method, url):
    response = getattr(curator_api, method)(url)

    assert response.status_code == 404
    assert list(Category.objects.values_list("slug", "archived_at")) == [("cat", None)]
