"""A control (gold) row carries its candidate's category, so a grid reads only its own
category's gold: the migration backfills it, and every way gold is made or edited (the
service, the API, the admin's actions and form, the demo import) writes it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from labeling.models import Candidate, Category, GoldAnswer
from labeling.services.microtasks import gold_mark
from tests.factories import CategoryFactory, candidate_pool

BEFORE = [("labeling", "0025_peer_gate")]
AFTER = [("labeling", "0026_gold_category")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _in_sync() -> list[tuple[int, int, int]]:
    """Every gold row as (candidate, its category, the row's category)."""
    return list(
        GoldAnswer.objects.order_by("candidate_id").values_list(
            "candidate_id", "candidate__category_id", "category_id"
        )
    )


@pytest.mark.django_db(transaction=True)
def test_the_migration_copies_each_gold_rows_category_from_its_candidate():
    old = _migrate(BEFORE)
    try:
        categories = old.get_model("labeling", "Category").objects
        cat, dog = (categories.create(name=n, slug=n) for n in ("cat", "dog"))
        images = old.get_model("labeling", "Image").objects
        candidates = old.get_model("labeling", "Candidate").objects
        gold = old.get_model("labeling", "GoldAnswer").objects
        made = []
        for i, category in enumerate([cat, dog, dog]):
            image = images.create(
                sha256=f"{i:064}", phash=i, phash256="0" * 64, width=8, height=8, format="PNG",
                byte_size=1, source="upload", phash_band0=0, phash_band1=0, phash_band2=0,
                phash_band3=0, phash_band4=0,
            )  # fmt: skip
            candidate = candidates.create(image=image, category=category, state="accepted")
            gold.create(candidate=candidate, answer=i != 1)
            made.append((candidate.pk, category.pk, category.pk))

        new = _migrate(AFTER)

        rows = new.get_model("labeling", "GoldAnswer").objects.order_by("candidate_id")
        assert list(rows.values_list("candidate_id", "candidate__category_id", "category_id")) == (
            made
        )
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_gold_marked_through_the_service_and_the_api_carries_its_category(curator_api):
    # given candidates in two categories
    cat, dog = CategoryFactory(slug="cat"), CategoryFactory(slug="dog")
    cats, dogs = candidate_pool(cat, 2, seed=10), candidate_pool(dog, 2, seed=20)

    # when one of each is marked by the service and one by a curator through the API, and the
    # API marks the first again with the other answer
    gold_mark(candidate=cats[0], answer=True)
    gold_mark(candidate=dogs[0], answer=False)
    response = curator_api.post(f"/api/candidates/{dogs[1].pk}/gold/", {"answer": True})
    again = curator_api.post(f"/api/candidates/{cats[0].pk}/gold/", {"answer": False})

    # then every gold row has its candidate's category
    assert (response.status_code, again.status_code) == (201, 201)
    assert _in_sync() == [
        (cats[0].pk, cat.pk, cat.pk),
        (dogs[0].pk, dog.pk, dog.pk),
        (dogs[1].pk, dog.pk, dog.pk),
    ]
    assert GoldAnswer.objects.get(candidate=cats[0]).answer is False


@pytest.mark.django_db
def test_gold_made_and_edited_in_the_admin_carries_its_category(admin_client):
    # given candidates in two categories
    cat, dog = CategoryFactory(slug="cat"), CategoryFactory(slug="dog")
    cats, dogs = candidate_pool(cat, 2, seed=30), candidate_pool(dog, 1, seed=40)

    # when a curator marks one by the candidate list's action, adds one in the gold form, and
    # then moves that row to a candidate of the other category
    admin_client.post(
        "/admin/labeling/candidate/",
        {"action": "gold_yes", "_selected_action": [cats[0].pk]},
    )
    added = admin_client.post(
        "/admin/labeling/goldanswer/add/", {"candidate": cats[1].pk, "answer": "on"}
    )
    row = GoldAnswer.objects.get(candidate=cats[1])
    moved = admin_client.post(
        f"/admin/labeling/goldanswer/{row.pk}/change/", {"candidate": dogs[0].pk}
    )

    # then each row has its candidate's category, the moved one no longer marks its old
    # candidate, and its new candidate is decided by its answer (no: rejected)
    assert (added.status_code, moved.status_code) == (302, 302)
    assert _in_sync() == [(cats[0].pk, cat.pk, cat.pk), (dogs[0].pk, dog.pk, dog.pk)]
    assert Candidate.objects.get(pk=dogs[0].pk).state == Candidate.State.REJECTED


@pytest.mark.django_db
def test_gold_of_the_demo_import_carries_its_category(settings, tmp_path):
    settings.VAR_DIR = tmp_path

    # when the demo loads its digits, with gold in every digit category
    call_command("load_demo", "--limit", "100", "--no-photos", verbosity=0)

    # then every gold row has its candidate's category, across the ten digit categories
    rows = _in_sync()
    assert len(rows) == 10
    assert all(row_category == category for _, category, row_category in rows)
    assert len({category for _, category, _ in rows}) == len(
        Category.objects.filter(parent__slug="digit")
    )
