"""Evaluation sets: images reserved by hash (never in a dataset version), what a set takes
(scrutinised, single-label, never trained on), how a new version only grows, the refusals, the
command and the API."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from datasets.models import DatasetItem, DatasetVersion
from datasets.services.versions import dataset_snapshot, split_of
from labeling.evaluation_reserve import reserved_for_evaluation
from labeling.models import Candidate, Category
from labeling.services.microtasks import gold_mark
from tests.factories import accepted_images
from training.models import EvaluationItem, EvaluationSet
from training.services.evaluation import EvaluationRefused, evaluation_freeze

pytestmark = pytest.mark.django_db

SCRUTINISED = {"state": "accepted", "yes_votes": 5, "confidence": 0.9995}
WAITING = {"state": "accepted", "yes_votes": 3, "confidence": 0.9995}


@pytest.fixture(autouse=True)
def _rules(settings):
    settings.CROWDNET_EVAL_SHARE = 1.0  # every image reserved: scrutiny decides alone
    settings.CROWDNET_EVAL_MIN_PER_CLASS = 3
    settings.CROWDNET_EVAL_MIN_VOTES = 5
    settings.CROWDNET_EVAL_MIN_CONFIDENCE = 0.999


def test_reservation_uses_other_bits_of_the_hash_than_the_split():
    below, above = "00000000" + "19999999" + "0" * 48, "ffffffff" + "1999999a" + "0" * 48
    assert reserved_for_evaluation(below, 0.1) is True  # 0x19999999 / 2**32 = 0.0999...
    assert reserved_for_evaluation(above, 0.1) is False
    # the split looks at the first 8 digits only: a reserved image may be "val" or "train"
    assert (split_of(below, 0.2), split_of("ffffffff" + "00000000" + "0" * 48, 0.2)) == (
        "val",
        "train",
    )
    assert reserved_for_evaluation("ffffffff" + "00000000" + "0" * 48, 0.1) is True


def test_a_dataset_version_leaves_reserved_images_out_and_they_ask_for_more_votes(settings):
    settings.CROWDNET_EVAL_SHARE = 0.5
    settings.CROWDNET_VOTES_PER_ITEM = 3
    cats = Category.objects.create(name="cat", slug="cat")
    dogs = Category.objects.create(name="dog", slug="dog")
    candidates = accepted_images(cats, 10, 100, state="accepted") + accepted_images(
        dogs, 10, 200, state="accepted"
    )
    reserved = {c.image_id for c in candidates if reserved_for_evaluation(c.image.sha256)}
    assert 0 < len(reserved) < 20  # the fixture has both kinds

    version = dataset_snapshot(min_per_class=1)

    taken = set(version.items.values_list("image_id", flat=True))
    assert taken == {c.image_id for c in candidates} - reserved
    assert version.skipped == {"reserved for evaluation": len(reserved)}
    assert version.images == 20 - len(reserved)
    assert {c.image_id: c.votes_needed for c in candidates} == {
        c.image_id: 5 if c.image_id in reserved else 3 for c in candidates
    }


@pytest.fixture
def pets():
    """cat and dog with every kind of reserved label; owl outside the set."""
    cats = Category.objects.create(name="cat", slug="cat")
    dogs = Category.objects.create(name="dog", slug="dog")
    owls = Category.objects.create(name="owl", slug="owl")
    found = {
        "cat_ok": accepted_images(cats, 4, 100, **SCRUTINISED),
        "cat_waiting": accepted_images(cats, 2, 200, **WAITING),
        "cat_unsure": accepted_images(cats, 1, 250, state="accepted", yes_votes=6, confidence=0.99),
        "dog_override": accepted_images(dogs, 2, 300, state="accepted", override=True),
        "dog_gold": accepted_images(dogs, 1, 400),
        "dog_ok": accepted_images(dogs, 1, 500, **SCRUTINISED),
        "dog_trained": accepted_images(dogs, 1, 600, **SCRUTINISED),
        "owl": accepted_images(owls, 3, 700, **SCRUTINISED),
    }
    gold_mark(candidate=found["dog_gold"][0], answer=True)  # a curator's control answer
    # an older version (before reservation) trained on one: it can never be a test image
    version = DatasetVersion.objects.create(
        number=1, classes=[], counts={}, val_share=0.2, images=1
    )
    DatasetItem.objects.create(
        version=version, image=found["dog_trained"][0].image, label=0, split="train"
    )
    # the first cat image is also accepted as a dog: two answers, so it stays out
    Candidate.objects.create(image=found["cat_ok"][0].image, category=dogs, **SCRUTINISED)
    return cats, dogs, found


def test_a_set_takes_scrutinised_single_label_images_never_trained_on(pets, curator):
    cats, dogs, found = pets

    evaluation = evaluation_freeze(categories=[dogs, cats], by=curator, note="First look.")

    assert (evaluation.number, evaluation.category_key) == (1, f"{cats.pk},{dogs.pk}")
    assert evaluation.classes == [
        {"id": cats.pk, "slug": "cat", "name": "cat"},
        {"id": dogs.pk, "slug": "dog", "name": "dog"},
    ]
    assert (evaluation.counts, evaluation.images, evaluation.created_by) == ([3, 4], 7, curator)
    expected = sorted(
        [(c.image_id, 0) for c in found["cat_ok"][1:]]
        + [(c.image_id, 1) for key in ("dog_override", "dog_gold", "dog_ok") for c in found[key]]
    )
    assert list(evaluation.items.values_list("image_id", "label")) == expected
    assert (
        evaluation.note
        == "First look. First version: 7 images. 3 reserved labels wait for scrutiny."
    )


def test_too_few_images_in_a_class_is_refused_saying_what_is_missing(pets, settings):
    cats, dogs, _ = pets
    settings.CROWDNET_EVAL_MIN_PER_CLASS = 4

    with pytest.raises(EvaluationRefused) as refused:
        evaluation_freeze(categories=[cats, dogs])

    assert str(refused.value) == (
        "An evaluation set needs 4 images per class (CROWDNET_EVAL_MIN_PER_CLASS): cat has 3 "
        "(3 more wait for scrutiny). Review reserved images as a curator, or wait for the "
        "crowd's votes."
    )
    assert (EvaluationSet.objects.count(), EvaluationItem.objects.count()) == (0, 0)


def test_a_new_version_keeps_every_image_but_those_a_curator_relabelled(pets):
    cats, dogs, found = pets
    first = evaluation_freeze(categories=[cats, dogs])
    before = list(first.items.values_list("image_id", "label"))
    relabelled = found["cat_ok"][1]
    Candidate.objects.filter(pk=relabelled.pk).update(state="rejected", override=False)
    Candidate.objects.filter(pk=found["cat_waiting"][0].pk).update(yes_votes=5)

    second = evaluation_freeze(categories=[cats, dogs], note="More votes came.")

    assert (second.number, second.counts, second.images) == (2, [3, 4], 7)
    kept = [row for row in before if row[0] != relabelled.image_id]
    assert list(second.items.values_list("image_id", "label")) == [
        *kept,
        (found["cat_waiting"][0].image_id, 0),
    ]
    assert second.note == (
        "More votes came. Kept 6 images of v1, added 1. Dropped 1 whose label changed since (a "
        "curator's decision or a re-aggregation) or that a dataset version now trains on. 2 "
        "reserved labels wait for scrutiny."
    )
    # the first version is history: it stays as it was
    assert list(first.items.values_list("image_id", "label")) == before

    with pytest.raises(EvaluationRefused) as refused:
        evaluation_freeze(categories=[cats, dogs])
    assert str(refused.value) == (
        "Evaluation set v2 for these categories already holds every eligible image; 2 reserved "
        "labels wait for scrutiny (a curator's review, or 5 votes at confidence 0.999)."
    )
    assert EvaluationSet.objects.count() == 2


def test_versions_are_numbered_per_category_set(pets):
    cats, dogs, _ = pets
    # another category set's versions count on their own
    EvaluationSet.objects.create(category_key="1", number=1, classes=[], counts=[], images=0)
    first = evaluation_freeze(categories=[cats, dogs])
    assert first.number == 1
    Candidate.objects.filter(category=cats, yes_votes=3).update(yes_votes=5)

    second = evaluation_freeze(categories=[cats, dogs])

    assert second.number == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_freezes_make_one_version_and_the_others_say_why_not():
    cats = Category.objects.create(name="cat", slug="cat")
    dogs = Category.objects.create(name="dog", slug="dog")
    accepted_images(cats, 3, 100, **SCRUTINISED)
    accepted_images(dogs, 3, 200, **SCRUTINISED)
    start = threading.Barrier(3)
    outcomes: list[object] = []

    def freeze() -> None:
        start.wait()
        try:
            outcomes.append(evaluation_freeze(categories=[cats.pk, dogs.pk]).number)
        except EvaluationRefused as refused:
            outcomes.append(str(refused).split(";")[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=freeze) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    refusal = "Evaluation set v1 for these categories already holds every eligible image"
    assert sorted(outcomes, key=str) == [1, refusal, refusal]
    assert list(EvaluationSet.objects.values_list("number", "images")) == [(1, 6)]


def test_the_default_categories_are_those_a_dataset_version_would_take(settings):
    settings.CROWDNET_TRAIN_MIN_PER_CLASS = 2
    cats = Category.objects.create(name="cat", slug="cat")
    accepted_images(cats, 3, 100, **SCRUTINISED)

    with pytest.raises(EvaluationRefused) as refused:
        evaluation_freeze()

    # with every image reserved, no category has images a version would take
    assert str(refused.value) == (
        "An evaluation set is made for the categories a dataset version would take: at least "
        "two with 2 accepted images each; 0 have that. Let the crowd label more."
    )


def test_the_command_freezes_and_says_why_it_cannot(pets, capsys):
    call_command("evaluation_freeze", "--categories", "cat", "dog", "--note", "By hand.")

    assert capsys.readouterr().out == (
        "evaluation set v1 for 2 categories: 7 images. By hand. First version: 7 images. "
        "3 reserved labels wait for scrutiny.\n"
    )
    with pytest.raises(CommandError, match="already holds every eligible image"):
        call_command("evaluation_freeze", "--categories", "cat", "dog")
    with pytest.raises(CommandError, match=r"No category with slug yak\."):
        call_command("evaluation_freeze", "--categories", "cat", "yak")


def test_workers_cannot_see_or_freeze_evaluation_sets(worker_api, pets):
    assert worker_api.get("/api/training/evaluations/").status_code == 403
    assert worker_api.post("/api/training/evaluations/", {}, format="json").status_code == 403
    assert EvaluationSet.objects.count() == 0


def test_curators_freeze_list_and_read_a_set_through_the_api(
    curator_api, pets, settings, django_assert_num_queries
):
    cats, dogs, _ = pets
    settings.CROWDNET_EVAL_MIN_PER_CLASS = 4
    body = {"categories": [cats.pk, dogs.pk], "note": "API."}

    refused = curator_api.post("/api/training/evaluations/", body, format="json")

    assert refused.status_code == 400
    assert refused.json()["detail"].startswith(
        "An evaluation set needs 4 images per class (CROWDNET_EVAL_MIN_PER_CLASS): cat has 3"
    )
    assert EvaluationSet.objects.count() == 0

    settings.CROWDNET_EVAL_MIN_PER_CLASS = 3
    made = curator_api.post("/api/training/evaluations/", body, format="json")
    EvaluationSet.objects.create(
        category_key="99999998,99999999", number=1, classes=[], counts=[], images=0
    )
    with django_assert_num_queries(2):  # count, page (with who made each)
        listed = curator_api.get("/api/training/evaluations/")
    one = curator_api.get(f"/api/training/evaluations/{made.json()['id']}/")

    assert made.status_code == 201
    assert {k: made.json()[k] for k in ("number", "created_by", "counts", "images")} == {
        "number": 1,
        "created_by": "cora",
        "counts": [3, 4],
        "images": 7,
    }
    # by category set (the key as text), newest version first
    assert [(row["category_key"], row["created_by"]) for row in listed.json()["results"]] == [
        (f"{cats.pk},{dogs.pk}", "cora"),
        ("99999998,99999999", None),
    ]
    assert one.status_code == 200
    assert (one.json()["waiting_for_scrutiny"], one.json()["scores"]) == (3, [])
    assert one.json()["category_key"] == f"{cats.pk},{dogs.pk}"
