"""Active learning with the current model: scores, priorities, fewer votes where it is sure,
and none of it reaching a worker. Also the schedule that drives training."""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings

from config.celery import app as celery_app
from datasets.models import DatasetItem, DatasetVersion
from labeling.models import Candidate, Category
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes, promoted_lenet
from training.services.scoring import candidates_score

pytestmark = pytest.mark.django_db


@pytest.fixture
def current(tmp_path):
    """A promoted LeNet-5 run over two categories (random weights: the scores are real
    outputs of a real net, not a trained one)."""
    cats = Category.objects.create(name="cat", slug="cat")
    dogs = Category.objects.create(name="dog", slug="dog")
    version = DatasetVersion.objects.create(
        number=1,
        classes=[{"id": c.pk, "slug": c.slug, "name": c.name} for c in (cats, dogs)],
        counts={"train": [1, 1], "val": [1, 1]},
        val_share=0.2,
        images=4,
    )
    promoted_lenet(version, "run.pt")
    files = [(f"{i}.png", image_bytes(1200 + i, size=(40, 40))) for i in range(4)]
    images_ingest(files=files, category=cats, source="upload", uploader=None)
    return cats


def test_open_candidates_get_model_scores_and_uncertain_fresh_ones_come_first(current, settings):
    settings.CROWDNET_AL_CONFIDENT = 0.0
    Candidate.objects.filter(pk=Candidate.objects.order_by("id").last().pk).update(yes_votes=1)

    assert candidates_score() == 4

    for candidate in Candidate.objects.order_by("id"):
        assert 0.0 <= candidate.model_p <= 1.0
        if candidate.votes_cast == 0:
            assert candidate.priority == round(100 * (1 - abs(2 * candidate.model_p - 1)))
        else:
            assert candidate.priority == 0  # in the crowd's hands already: left as it was
        assert candidate.votes_needed == 3


def test_decided_candidates_get_a_score_only_and_curators_decisions_none(current, settings):
    settings.CROWDNET_AL_CONFIDENT = 0.5  # every open one would wait for the floor only
    first, second, third, fourth = Candidate.objects.order_by("id")
    Candidate.objects.filter(pk=first.pk).update(state="accepted", yes_votes=3, votes_needed=3)
    Candidate.objects.filter(pk=second.pk).update(state="rejected", no_votes=3)
    Candidate.objects.filter(pk=third.pk).update(state="accepted", override=True)
    Candidate.objects.filter(pk=fourth.pk).update(state="needs_review")
    # an accepted image the model trained on gets no score: its verdict there says little
    images_ingest(
        files=[("t.png", image_bytes(1300, size=(40, 40)))],
        category=current,
        source="upload",
        uploader=None,
    )
    trained_on = Candidate.objects.order_by("id").last()
    Candidate.objects.filter(pk=trained_on.pk).update(state="accepted")
    DatasetItem.objects.create(
        version=DatasetVersion.objects.get(), image=trained_on.image, label=0, split="train"
    )

    assert candidates_score() == 2

    scored = {c.pk: c for c in Candidate.objects.all()}
    assert 0.0 <= scored[first.pk].model_p <= 1.0
    assert 0.0 <= scored[second.pk].model_p <= 1.0
    assert (scored[third.pk].model_p, scored[fourth.pk].model_p) == (None, None)
    assert [scored[pk].priority for pk in (first.pk, second.pk)] == [0, 0]
    assert [scored[pk].votes_needed for pk in (first.pk, second.pk)] == [3, 3]
    assert [scored[pk].state for pk in (first.pk, second.pk)] == ["accepted", "rejected"]
    assert scored[trained_on.pk].model_p is None


def test_where_the_model_is_sure_the_item_waits_for_the_floor_only(current, settings):
    settings.CROWDNET_AL_CONFIDENT = 0.5  # every score is at least this sure one way
    settings.CROWDNET_AL_VOTE_FLOOR = 2

    candidates_score()

    assert set(Candidate.objects.values_list("votes_needed", flat=True)) == {2}


def test_workers_never_see_model_scores(current, worker_api, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    candidates_score()

    response = worker_api.get("/api/tasks/next/?kind=verify")

    assert response.status_code == 200
    body = json.dumps(response.json())
    assert "model" not in body and "priority" not in body and "votes" not in body


def test_the_schedule_and_the_queues():
    schedule = {v["task"]: v["schedule"] for v in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["training.tasks.training_auto"] == 300.0
    assert schedule["jobs.tasks.jobs_sweep"] == 60.0
    celery_app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    assert {
        "training.tasks.run_train",
        "training.tasks.training_auto",
        "jobs.tasks.jobs_sweep",
    } <= set(celery_app.tasks)
    route = celery_app.amqp.router.route
    assert route({}, "training.tasks.run_train")["queue"].name == "training"
    assert route({}, "training.tasks.candidates_score")["queue"].name == "training"
    assert route({}, "jobs.tasks.jobs_sweep")["queue"].name == "default"
    assert route({}, "training.tasks.training_auto")["queue"].name == "default"
