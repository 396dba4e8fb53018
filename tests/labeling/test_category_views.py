"""Curators' category pages: list, create, edit, archive, restore, delete and import; workers
are refused, anonymous visitors sent to log in, and names are escaped."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import Candidate, Category
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db

PAGES = [
    "/curate/categories/",
    "/curate/categories/new/",
    "/curate/categories/import/",
    "/curate/categories/cat/edit/",
]


@pytest.mark.parametrize("url", PAGES)
def test_workers_are_refused_and_visitors_sent_to_log_in(url, client, worker, category):
    anonymous = client.get(url)
    client.force_login(worker)
    refused = client.get(url)
    refused_post = client.post("/curate/categories/cat/state/", {"action": "archive"})

    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/accounts/login/?next={url}"
    assert (refused.status_code, refused_post.status_code) == (403, 403)
    assert Category.objects.get().archived_at is None


def test_the_list_shows_the_tree_with_counts_and_escapes_names(client, curator):
    animal = Category.objects.create(name="animal", slug="animal")
    evil = Category.objects.create(name="<script>alert(1)</script>", slug="evil", parent=animal)
    images_ingest(files=[("a.jpg", image_bytes(1))], category=evil, source="upload", uploader=None)
    Candidate.objects.update(state="accepted")
    client.force_login(curator)

    page = client.get("/curate/categories/").content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a></td>" in page
    assert "<td>1</td>\n            <td>1</td>" in page  # one candidate, accepted


def test_a_curator_creates_a_category_under_a_parent(client, curator):
    Category.objects.create(name="animal", slug="animal")
    client.force_login(curator)

    response = client.post(
        "/curate/categories/new/",
        {
            "name": "tabby cat",
            "slug": "tabby-cat",
            "wnid": "n02123045",
            "definition": "a striped cat",
            "parent": "animal",
            "target_images": "500",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/curate/categories/tabby-cat/edit/"
    tabby = Category.objects.get(slug="tabby-cat")
    assert (tabby.name, tabby.wnid, tabby.parent.slug, tabby.target_images) == (
        "tabby cat",
        "n02123045",
        "animal",
        500,
    )


def test_a_bad_category_is_shown_with_its_errors_and_not_created(client, curator):
    client.force_login(curator)

    response = client.post(
        "/curate/categories/new/", {"name": "zz", "slug": "zz", "wnid": "../../../../tmp/zz"}
    )

    assert response.status_code == 200
    assert "Use a WordNet id such as n02123045." in response.content.decode()
    assert Category.objects.count() == 0


def test_the_edit_form_never_offers_the_category_or_its_descendants_as_parent(client, curator):
    animal = Category.objects.create(name="animal", slug="animal")
    Category.objects.create(name="cat", slug="cat", parent=animal)
    Category.objects.create(name="car", slug="car")
    client.force_login(curator)

    form = client.get("/curate/categories/animal/edit/").context["form"]
    refused = client.post(
        "/curate/categories/animal/edit/", {"name": "animal", "slug": "animal", "parent": "cat"}
    )
    moved = client.post(
        "/curate/categories/cat/edit/", {"name": "kitty", "slug": "cat", "parent": "car"}
    )

    assert [value for value, _ in form.fields["parent"].choices] == ["", "car"]
    assert refused.status_code == 200
    assert Category.objects.get(slug="animal").parent is None
    assert moved.status_code == 302
    cat = Category.objects.get(slug="cat")
    assert (cat.name, cat.parent.slug) == ("kitty", "car")


def test_archive_restore_and_delete_from_the_page(client, curator, category):
    images_ingest(
        files=[("a.jpg", image_bytes(2))], category=category, source="upload", uploader=None
    )
    Category.objects.create(name="empty", slug="empty")
    client.force_login(curator)

    client.post("/curate/categories/cat/state/", {"action": "archive"})
    archived = Category.objects.get(slug="cat").archived_at
    listing = client.get("/curate/categories/").content.decode()
    picker = client.get("/curate/upload/").context["form"].fields["category"]
    client.post("/curate/categories/cat/state/", {"action": "restore"})
    restored = Category.objects.get(slug="cat").archived_at
    client.post("/curate/categories/cat/state/", {"action": "delete"})
    client.post("/curate/categories/empty/state/", {"action": "delete"})

    assert archived is not None and restored is None
    assert "Restore cat" in listing
    assert [slug for slug, _ in picker.tree_choices()] == ["", "empty"]
    assert list(Category.objects.values_list("slug", flat=True)) == ["cat"]
    assert Category.objects.get().archived_at is not None  # it held a candidate
    assert Candidate.objects.count() == 1


def test_deleting_a_parent_from_the_page_says_why_and_changes_nothing(client, curator):
    animal = Category.objects.create(name="animal", slug="animal")
    Category.objects.create(name="cat", slug="cat", parent=animal)
    client.force_login(curator)

    response = client.post("/curate/categories/animal/state/", {"action": "delete"}, follow=True)

    assert "animal has 1 subcategory (cat): move them to another parent or delete them first." in (
        response.content.decode()
    )
    assert list(Category.objects.values_list("slug", "archived_at")) == [
        ("animal", None),
        ("cat", None),
    ]


def test_importing_a_csv_from_the_page_writes_all_or_lists_every_bad_line(client, curator):
    client.force_login(curator)
    bad = SimpleUploadedFile("bad.csv", b"wnid,name\n../x,x\nn00000001,<b>y</b>\nn00000001,z\n")
    good = SimpleUploadedFile(
        "good.csv", b"wnid,name,parent_wnid\nn02123045,tabby,n02121808\nn02121808,cat,\n"
    )

    refused = client.post("/curate/categories/import/", {"file": bad})
    done = client.post("/curate/categories/import/", {"file": good}, follow=True)

    page = refused.content.decode()
    assert refused.status_code == 400
    assert "<strong>line 2</strong>: wnid: Use a WordNet id such as n02123045." in page
    assert "<strong>line 4</strong>: wnid n00000001 is also on line 3" in page
    assert "<b>y</b>" not in page
    assert "good.csv: 2 categories created, 0 updated." in done.content.decode()
    assert sorted(Category.objects.values_list("slug", "parent__slug")) == [
        ("cat", None),
        ("tabby", "cat"),
    ]
