"""Deleting a category never takes the crowd's work with it: one with data is archived (hidden
from the crowd and from new imports, every row kept, restorable), a parent answers 409 and
says why, and only an empty category really goes."""

from __future__ import annotations

import pytest
from django.db.models.deletion import ProtectedError
from rest_framework.test import APIClient

from labeling.models import (
    Box,
    Candidate,
    Category,
    GoldAnswer,
    Image,
    ImportJob,
    MicroTask,
    ObjectBox,
    TaskItem,
    TaskKind,
    Vote,
)
from labeling.services.ingest import images_ingest
from labeling.services.microtasks import gold_mark
from tests.factories import UserFactory, image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_crowd(settings):
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0  # verify tasks never pick the control item by chance


def _client(username: str) -> APIClient:
    user = UserFactory(username=username, role="worker")
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def cat_with_work(category) -> Category:
    """cat: six images; a control item, three open, one waiting for a drawing (with a proposed
    box from another worker), one waiting for a coverage check; one answered task, one job."""
    files = [(f"{i}.jpg", image_bytes(700 + i, size=(80, 60))) for i in range(6)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    gold, *_, drawing, covering = Candidate.objects.filter(category=category).order_by("id")
    gold_mark(candidate=gold, answer=True)
    Candidate.objects.filter(pk=drawing.pk).update(state="accepted", box_state="draw")
    Candidate.objects.filter(pk=covering.pk).update(state="accepted", box_state="coverage")
    drawer = UserFactory(username="drawer", role="worker")
    Box.objects.create(candidate=drawing, worker=drawer, x0=1, y0=1, x1=20, y1=20)
    voter = _client("voter")
    task = voter.get("/api/tasks/next/?kind=verify").json()
    answers = [{"item": item["id"], "answer": "yes"} for item in task["items"]]
    answered = voter.post(f"/api/tasks/{task['id']}/answer/", {"answers": answers}, format="json")
    assert answered.status_code == 201
    ImportJob.objects.create(source="url", category=category, params={"urls": []})
    return category


def _counts() -> dict[str, int]:
    models = [
        Category,
        Image,
        Candidate,
        GoldAnswer,
        Vote,
        Box,
        ObjectBox,
        MicroTask,
        TaskItem,
        ImportJob,
    ]
    return {model.__name__: model.objects.count() for model in models}


def test_deleting_a_category_with_crowd_data_archives_it_and_keeps_every_row(
    cat_with_work, curator_api
):
    before = _counts()

    response = curator_api.delete("/api/categories/cat/")

    assert response.status_code == 200
    cat_with_work.refresh_from_db()
    assert cat_with_work.archived_at is not None
    assert response.json()["archived_at"] is not None
    assert _counts() == before
    assert before == {
        "Category": 1,
        "Image": 6,
        "Candidate": 6,
        "GoldAnswer": 1,
        "Vote": 1,
        "Box": 1,
        "ObjectBox": 0,
        "MicroTask": 1,
        "TaskItem": 1,
        "ImportJob": 1,
    }


def test_the_crowd_gets_no_task_of_any_kind_for_an_archived_category_until_restored(
    cat_with_work, curator_api
):
    curator_api.delete("/api/categories/cat/")
    worker = _client("late")

    hidden = {kind: worker.get(f"/api/tasks/next/?kind={kind}").status_code for kind in TaskKind}
    restored = curator_api.post("/api/categories/cat/restore/")
    served = {kind: worker.get(f"/api/tasks/next/?kind={kind}").status_code for kind in TaskKind}

    assert hidden == dict.fromkeys(TaskKind, 204)
    assert restored.status_code == 200
    assert restored.json()["archived_at"] is None
    assert served == dict.fromkeys(TaskKind, 200)


def test_a_task_leased_before_archiving_is_not_handed_out_again(
    cat_with_work, curator_api, settings
):
    settings.CROWDNET_MAX_OPEN_TASKS = 1
    worker = _client("early")
    assert worker.get("/api/tasks/next/?kind=verify").status_code == 200

    curator_api.delete("/api/categories/cat/")

    assert worker.get("/api/tasks/next/?kind=verify").status_code == 204


def test_workers_and_import_pickers_no_longer_see_an_archived_category(
    cat_with_work, curator_api, worker_api
):
    curator_api.delete("/api/categories/cat/")

    listed = worker_api.get("/api/categories/").json()["results"]
    own = worker_api.get("/api/categories/cat/")
    curators = curator_api.get("/api/categories/").json()["results"]
    refused = curator_api.post(
        "/api/imports/scrape/",
        {"category": "cat", "urls": ["https://example.com/a.jpg"]},
        format="json",
    )

    assert (listed, own.status_code) == ([], 404)
    assert [c["slug"] for c in curators] == ["cat"]
    assert refused.status_code == 400
    assert refused.json() == {"category": ["Object with slug=cat does not exist."]}
    assert ImportJob.objects.count() == 1


def test_deleting_a_parent_answers_409_saying_why_and_changes_nothing(curator_api):
    animal = Category.objects.create(name="animal", slug="animal")
    Category.objects.create(name="cat", slug="cat", parent=animal)
    Category.objects.create(name="dog", slug="dog", parent=animal)

    response = curator_api.delete("/api/categories/animal/")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "animal has 2 subcategories (cat, dog): move them to another parent or "
        "delete them first."
    }
    assert list(Category.objects.values_list("slug", "archived_at")) == [
        ("animal", None),
        ("cat", None),
        ("dog", None),
    ]


def test_an_empty_category_is_really_deleted(category, curator_api, worker_api):
    forbidden = worker_api.delete("/api/categories/cat/")
    response = curator_api.delete("/api/categories/cat/")

    assert forbidden.status_code == 403
    assert response.status_code == 204
    assert Category.objects.count() == 0


def test_the_database_layer_refuses_to_cascade_crowd_data(cat_with_work):
    before = _counts()

    with pytest.raises(ProtectedError):
        cat_with_work.delete()

    assert _counts() == before
