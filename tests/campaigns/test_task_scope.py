"""task_assign's campaign hook: a TaskScope narrows every kind to its categories and kinds."""

from __future__ import annotations

import pytest

from labeling.models import Box, Candidate
from labeling.services.microtasks import gold_mark, task_assign
from labeling.services.task_scope import TaskScope
from tests.factories import CategoryFactory, UserFactory, candidate_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_categories(category):
    dog = CategoryFactory(name="dog", slug="dog")
    return category, dog


def test_label_kinds_serve_only_the_scope_categories(two_categories, settings):
    settings.CROWDNET_GRID_SIZE = 3
    cat, dog = two_categories
    dogs = candidate_pool(dog, 6, seed=1100)
    gold_mark(candidate=dogs[5], answer=True)
    worker = UserFactory(username="w1", role="worker")
    scope = TaskScope(categories=frozenset({cat.pk}), kinds=frozenset({"verify", "grid"}))

    assert task_assign(worker=worker, scope=scope) is None  # only dog work exists
    cats = candidate_pool(cat, 6, seed=1200)
    gold_mark(candidate=cats[5], answer=False)
    task = task_assign(worker=worker, scope=scope)

    assert task is not None
    assert task.kind == "grid" and task.category_id == cat.pk  # grid comes before verify
    assert {i.candidate.category_id for i in task.items.select_related("candidate")} == {cat.pk}


def test_box_kinds_and_kinds_outside_the_scope(two_categories):
    cat, dog = two_categories
    drawer = UserFactory(username="drawer", role="worker")
    for category, seed in ((cat, 1300), (dog, 1400)):
        [candidate] = candidate_pool(category, 1, seed=seed)
        Candidate.objects.filter(pk=candidate.pk).update(state="accepted", box_state="verify")
        Box.objects.create(candidate=candidate, worker=drawer, x0=1, y0=1, x1=20, y1=20)
    worker = UserFactory(username="w2", role="worker")

    only_verify = TaskScope(categories=frozenset({cat.pk, dog.pk}), kinds=frozenset({"verify"}))
    dog_boxes = TaskScope(categories=frozenset({dog.pk}), kinds=frozenset({"verify_box"}))

    assert task_assign(worker=worker, scope=only_verify) is None
    task = task_assign(worker=worker, scope=dog_boxes)
    assert (task.kind, task.category_id) == ("verify_box", dog.pk)
    # and an open task outside the scope is not handed back under it
    assert task_assign(worker=worker, scope=only_verify) is None
