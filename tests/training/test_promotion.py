"""Scoring on an evaluation set (classes matched by category id), promotion on the same images
(McNemar), the fallback on validation images, promotion by hand, re-scoring after a new version.

The models are real LeNet-5 nets whose head always ranks one class first (constant_lenet), so
every error below is known exactly."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from config.celery import app as celery_app
from datasets.models import DatasetItem, DatasetVersion
from labeling.models import Candidate, Category
from tests.factories import accepted_images, constant_lenet, digits_version
from training import tasks
from training.models import EvaluationScore, EvaluationSet, Promotion, TrainingRun
from training.services.evaluation import evaluation_freeze, evaluation_score
from training.services.execute import run_execute
from training.services.promotion import promotion_decide
from training.services.runs import run_create

pytestmark = pytest.mark.django_db

SCRUTINISED = {"state": "accepted", "yes_votes": 5, "confidence": 0.9995}


@pytest.fixture(autouse=True)
def _rules(settings, tmp_path):
    settings.CROWDNET_EVAL_SHARE = 1.0
    settings.CROWDNET_EVAL_MIN_PER_CLASS = 2
    settings.CROWDNET_PROMOTE_MARGIN = 0.0
    settings.CROWDNET_PROMOTE_ALPHA = 0.25
    settings.CROWDNET_EMBEDDING_DIR = tmp_path / "embeddings"
    settings.CROWDNET_TRAIN_DEVICE = "cpu"
    settings.CROWDNET_TRAIN_THREADS = 1


@pytest.fixture
def pets():
    """cat and dog, an evaluation set of 8 cats and 2 dogs, and a version over the two."""
    cats = Category.objects.create(name="cat", slug="cat")
    dogs = Category.objects.create(name="dog", slug="dog")
    accepted_images(cats, 8, 100, **SCRUTINISED)
    accepted_images(dogs, 2, 200, **SCRUTINISED)
    evaluation = evaluation_freeze(categories=[cats, dogs])
    return cats, dogs, evaluation, _version(1, cats, dogs)


def _version(number: int, *categories: Category) -> DatasetVersion:
    """A version over ``categories`` (in that class order) with no items of its own."""
    return DatasetVersion.objects.create(
        number=number,
        classes=[{"id": c.pk, "slug": c.slug, "name": c.name} for c in categories],
        counts={},
        val_share=0.2,
        images=0,
    )


def _run(version, tmp_path: Path, answer: int, name: str, **fields) -> TrainingRun:
    return constant_lenet(version, f"{name}.pt", answer, **fields)


def test_a_score_matches_classes_by_category_id_and_unknown_ones_are_wrong(pets, tmp_path):
    _, dogs, evaluation, _ = pets
    owls = Category.objects.create(name="owl", slug="owl")
    # the run's classes are [dog, owl]: index 0 is dog there, while the set's index 0 is cat
    other = _version(2, dogs, owls)
    says_dog = _run(other, tmp_path, 0, "dog")
    says_owl = _run(other, tmp_path, 1, "owl")

    dog = evaluation_score(says_dog, evaluation)
    owl = evaluation_score(says_owl, evaluation)

    assert (dog.images, dog.top1_error, dog.top5_error) == (10, 0.8, 0.8)
    assert (dog.top1_correct, dog.top5_correct) == ("0" * 8 + "11", "0" * 8 + "11")
    # top-5 is top-k with k = 2 classes: dog is always in it, cat (unknown to the run) never
    assert (owl.top1_error, owl.top5_error) == (1.0, 0.8)
    assert (owl.top1_correct, owl.top5_correct) == ("0" * 10, "0" * 8 + "11")
    assert evaluation_score(says_dog, evaluation).pk == dog.pk  # once per run and set
    assert EvaluationScore.objects.count() == 2


def test_a_run_on_an_easier_split_never_outranks_a_better_model(pets, tmp_path):
    _, _, evaluation, version = pets
    # its own validation split says 5 %; on the shared images it gets 8 of 10 wrong
    incumbent = _run(version, tmp_path, 0, "cat", top1_error=0.30, current=True)
    candidate = _run(version, tmp_path, 1, "dog", top1_error=0.05)

    promotion = promotion_decide(run=candidate)

    assert promotion.promoted is False
    assert (promotion.candidate_id, promotion.incumbent_id, promotion.evaluation_id) == (
        candidate.pk,
        incumbent.pk,
        evaluation.pk,
    )
    assert (promotion.candidate_top1_error, promotion.incumbent_top1_error) == (0.8, 0.2)
    assert (promotion.only_candidate_right, promotion.only_incumbent_right) == (2, 8)
    assert promotion.p_value == 1013 / 1024
    assert promotion.reason == (
        "Not promoted: no better than the current model; top-1 error 80.00 % "
        "against the current model's 20.00 % on the 10 images of evaluation set v1; right where "
        "the other is wrong on 2 images against 8, McNemar one-sided p = 0.989."
    )
    assert TrainingRun.objects.get(current=True).pk == incumbent.pk
    # both were scored on the same set at decision time
    assert set(EvaluationScore.objects.values_list("run_id", flat=True)) == {
        incumbent.pk,
        candidate.pk,
    }


def test_a_better_model_on_the_same_images_is_promoted_whatever_its_own_split_says(pets, tmp_path):
    _, _, _, version = pets
    incumbent = _run(version, tmp_path, 1, "dog", top1_error=0.05, current=True)
    candidate = _run(version, tmp_path, 0, "cat", top1_error=0.30, trigger="manual")

    promotion = promotion_decide(run=candidate)

    assert promotion.promoted is True
    assert (promotion.only_candidate_right, promotion.only_incumbent_right) == (8, 2)
    assert promotion.p_value == 56 / 1024
    assert promotion.reason.startswith("Promoted: 60.00 points better (margin 0) with p <= 0.25;")
    assert TrainingRun.objects.get(current=True).pk == candidate.pk
    assert incumbent.pk != candidate.pk


@pytest.mark.parametrize(
    ("margin", "alpha", "promoted", "verdict"),
    [
        (60.0, 0.25, True, "Promoted"),
        (60.1, 0.25, False, "Not promoted: 60.00 points better, short of the 60.1-point margin"),
        (0.0, 0.05, False, "Not promoted: 60.00 points better, but p > 0.05 (it may be chance)"),
    ],
)
def test_the_margin_and_the_confidence_both_must_hold(
    pets, tmp_path, settings, margin, alpha, promoted, verdict
):
    _, _, _, version = pets
    settings.CROWDNET_PROMOTE_MARGIN, settings.CROWDNET_PROMOTE_ALPHA = margin, alpha
    _run(version, tmp_path, 1, "dog", current=True)
    candidate = _run(version, tmp_path, 0, "cat")

    promotion = promotion_decide(run=candidate)

    assert (promotion.promoted, promotion.margin) == (promoted, margin)
    assert promotion.reason.startswith(verdict)


def test_a_tie_is_never_promoted(pets, tmp_path):
    _, _, _, version = pets
    incumbent = _run(version, tmp_path, 0, "one", current=True)
    candidate = _run(version, tmp_path, 0, "two")

    promotion = promotion_decide(run=candidate)

    assert (promotion.promoted, promotion.p_value) == (False, 1.0)
    assert TrainingRun.objects.get(current=True).pk == incumbent.pk


def test_with_no_current_model_the_run_is_promoted_and_that_is_recorded(pets, tmp_path):
    _, _, evaluation, version = pets
    run = _run(version, tmp_path, 0, "cat")

    promotion = promotion_decide(run=run)

    assert (promotion.promoted, promotion.incumbent, promotion.evaluation_id) == (
        True,
        None,
        evaluation.pk,
    )
    assert promotion.candidate_top1_error == 0.2
    assert promotion.reason == f"No model was current: run {run.pk} becomes the current model."
    assert TrainingRun.objects.get(current=True).pk == run.pk


def test_without_an_evaluation_set_both_models_predict_the_candidates_validationaccepted_images(
    tmp_path, settings
):
    settings.CROWDNET_EVAL_MIN_PER_CLASS = 50  # no set can be frozen
    cats = Category.objects.create(name="cat", slug="cat")
    dogs = Category.objects.create(name="dog", slug="dog")
    version = _version(1, cats, dogs)
    for label, candidate in enumerate(
        [*accepted_images(cats, 3, 100), *accepted_images(dogs, 1, 200)]
    ):
        DatasetItem.objects.create(
            version=version, image_id=candidate.image_id, label=min(label // 3, 1), split="val"
        )
    _run(version, tmp_path, 1, "dog", current=True)
    candidate = _run(version, tmp_path, 0, "cat")

    promotion = promotion_decide(run=candidate)

    assert (promotion.promoted, promotion.evaluation) == (False, None)
    assert (promotion.candidate_top1_error, promotion.incumbent_top1_error) == (0.25, 0.75)
    assert (promotion.only_candidate_right, promotion.only_incumbent_right) == (3, 1)
    assert promotion.p_value == 5 / 16
    assert promotion.reason == (
        "Not promoted: 50.00 points better, but p > 0.25 (it may be chance); top-1 error "
        "25.00 % against the current model's 75.00 % on the 4 validation images of version 1 "
        "(no evaluation set for these categories yet: both models predicted them now); right "
        "where the other is wrong on 3 images against 1, McNemar one-sided p = 0.312."
    )


def test_a_manual_run_that_finishes_is_scored_and_decided_like_any_other(settings, tmp_path):
    settings.CROWDNET_EVAL_SHARE = 0.0  # the version takes every image...
    version = digits_version(per_class=20)
    settings.CROWDNET_EVAL_SHARE = 1.0  # ...then all count as reserved, votes as scrutinised:
    Candidate.objects.update(yes_votes=5, confidence=0.9995)  # the set is the val images
    current = constant_lenet(version, "current.pt", 0, current=True)
    run = run_create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        params={"epochs": 1, "batch_size": 16, "image_size": 32},
        enqueue=False,
    )

    run = run_execute(run.pk)

    assert (run.status, run.trigger) == ("done", "manual")
    evaluation = EvaluationSet.objects.get()  # the first one, frozen when the run finished
    val = dict(version.items.filter(split="val").values_list("image_id", "label"))
    assert dict(evaluation.items.values_list("image_id", "label")) == val
    assert evaluation.note == (
        f"Frozen automatically when run {run.pk} finished. First version: {len(val)} images. "
        "0 reserved labels wait for scrutiny."
    )
    assert evaluation.scores.get(run=run).images == len(val)
    promotion = Promotion.objects.get()
    assert (promotion.candidate_id, promotion.incumbent_id, promotion.evaluation_id) == (
        run.pk,
        current.pk,
        evaluation.pk,
    )
    # the incumbent always says "0": wrong on every "1"
    assert promotion.incumbent_top1_error == list(val.values()).count(1) / len(val)
    assert run.current is promotion.promoted


def test_a_scoring_failure_never_fails_the_run(settings, tmp_path, caplog):
    settings.CROWDNET_EVAL_SHARE = 0.0
    version = digits_version(per_class=20)
    settings.CROWDNET_EVAL_SHARE = 1.0
    Candidate.objects.update(yes_votes=5, confidence=0.9995)
    zero = Category.objects.get(pk=version.classes[0]["id"])
    [extra] = accepted_images(zero, 1, 900, **SCRUTINISED)  # in the set, in no version
    evaluation_freeze(categories=[c["id"] for c in version.classes])
    default_storage.delete(extra.image.train_copy.name)  # its file went missing
    current = constant_lenet(version, "current.pt", 0, current=True)
    run = run_create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        params={"epochs": 1, "batch_size": 16, "image_size": 32},
        enqueue=False,
    )

    run = run_execute(run.pk)

    assert (run.status, run.current) == ("done", False)
    assert not EvaluationScore.objects.exists()
    assert f"run {run.pk}: not scored on an evaluation set" in caplog.text
    promotion = Promotion.objects.get()
    assert (promotion.incumbent_id, promotion.promoted) == (current.pk, False)
    assert promotion.reason.startswith(
        "Not promoted: the two models could not be compared (FileNotFoundError: "
    )


def test_a_curator_promotes_by_hand_and_the_figures_are_recorded(
    pets, tmp_path, curator, curator_api
):
    _, _, evaluation, version = pets
    incumbent = _run(version, tmp_path, 0, "cat", current=True)
    candidate = _run(version, tmp_path, 1, "dog")

    response = curator_api.post(f"/api/training/runs/{candidate.pk}/promote/")

    assert (response.status_code, response.json()["current"]) == (200, True)
    promotion = Promotion.objects.get()
    assert (promotion.by, promotion.promoted, promotion.incumbent_id) == (
        curator,
        True,
        incumbent.pk,
    )
    assert (promotion.evaluation_id, promotion.p_value) == (evaluation.pk, 1013 / 1024)
    assert promotion.reason == (
        "Promoted by hand by cora; top-1 error 80.00 % against the current model's 20.00 % on "
        "the 10 images of evaluation set v1; right where the other is wrong on 2 images against "
        "8, McNemar one-sided p = 0.989."
    )


def test_a_new_version_is_rescored_by_the_task_and_the_beat_catches_up(
    pets, tmp_path, caplog, settings, django_capture_on_commit_callbacks
):
    cats, dogs, first, version = pets
    settings.CROWDNET_EVAL_RESCORE_RUNS = 2
    now = timezone.now()
    current = _run(version, tmp_path, 0, "current", current=True, finished_at=now)
    older = _run(version, tmp_path, 1, "older", finished_at=now - timezone.timedelta(hours=3))
    oldest = _run(version, tmp_path, 1, "oldest", finished_at=now - timezone.timedelta(hours=4))
    gone = _run(version, tmp_path, 0, "gone", finished_at=now - timezone.timedelta(hours=1))
    (tmp_path / "checkpoints" / gone.checkpoint).unlink()
    accepted_images(dogs, 2, 300, **SCRUTINISED)

    with django_capture_on_commit_callbacks() as callbacks:
        second = evaluation_freeze(categories=[cats, dogs])
    assert (second.number, second.counts, len(callbacks)) == (2, [8, 4], 1)

    with caplog.at_level(logging.WARNING, logger="training.services.evaluation"):
        assert tasks.evaluation_rescore(second.pk) == 2

    scored = dict(second.scores.values_list("run_id", "top1_error"))
    assert scored == {current.pk: 4 / 12, older.pk: 8 / 12}  # the two most recent readable
    assert f"run {gone.pk}: checkpoint {gone.checkpoint} is gone" in caplog.text
    assert oldest.pk not in scored
    assert tasks.evaluation_rescore(second.pk) == 0  # idempotent
    # a score lost (a killed worker): the beat writes it again, on the newest version only
    second.scores.filter(run=older).delete()
    assert tasks.evaluations_catch_up() == 1
    assert set(second.scores.values_list("run_id", flat=True)) == {current.pk, older.pk}
    assert not first.scores.exists()


def test_rescoring_runs_on_the_training_worker_and_beat_catches_up():
    schedule = {v["task"]: v["schedule"] for v in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["training.tasks.evaluations_catch_up"] == 900.0
    celery_app.loader.import_default_modules()
    route = celery_app.amqp.router.route
    for name in ("training.tasks.evaluation_rescore", "training.tasks.evaluations_catch_up"):
        assert name in celery_app.tasks
        assert route({}, name)["queue"].name == "training"


def test_a_promotion_from_the_training_page_is_recorded_too(pets, tmp_path, client, curator):
    _, _, evaluation, version = pets
    incumbent = _run(version, tmp_path, 1, "dog", current=True)
    candidate = _run(version, tmp_path, 0, "cat")
    client.force_login(curator)

    page = client.post(
        reverse("curate-training"), {"action": "promote", "run": candidate.pk}, follow=True
    )

    assert f"Run {candidate.pk} is now the current model." in page.content.decode()
    promotion = Promotion.objects.get()
    assert (promotion.by, promotion.incumbent_id, promotion.evaluation_id) == (
        curator,
        incumbent.pk,
        evaluation.pk,
    )
    assert (promotion.only_candidate_right, promotion.only_incumbent_right) == (8, 2)


def test_beat_decides_the_newest_run_a_killed_worker_left_undecided(pets, tmp_path):
    # given a current model that calls everything a dog (8 of 10 wrong) and a newer finished
    # run, calling everything a cat, whose worker died before it decided the promotion
    _, _, evaluation, version = pets
    now = timezone.now()
    old = _run(version, tmp_path, 1, "old", current=True, finished_at=now)
    newer = _run(version, tmp_path, 0, "newer", finished_at=now + timedelta(seconds=1))

    # when beat's catch-up runs, twice
    tasks.evaluations_catch_up()
    tasks.evaluations_catch_up()

    # then the newer run was decided once, on the same images, and is the current model
    [decision] = Promotion.objects.filter(candidate=newer)
    assert (decision.promoted, decision.incumbent_id, decision.evaluation_id) == (
        True,
        old.pk,
        evaluation.pk,
    )
    assert (decision.only_candidate_right, decision.only_incumbent_right) == (8, 2)
    assert TrainingRun.objects.get(current=True) == newer
    assert not Promotion.objects.filter(candidate=old).exists()  # an older run stays undecided
