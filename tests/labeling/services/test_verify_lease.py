"""The verify lease when its pick comes back with rows others have leased meanwhile."""

from __future__ import annotations

import pytest
from django.db import connection

from labeling.models import Candidate, TaskItem
from labeling.services import leases
from labeling.services.microtasks import task_assign, worker_profile
from tests.factories import UserFactory, candidate_pool

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the two-statement lease is PostgreSQL's; SQLite takes the ORM path")
    settings.CROWDNET_GOLD_RATE = 0.0


def _stale_pick(monkeypatch, rows: list[int], picks: list[int]) -> None:
    """The worker's state-and-pick returns ``rows`` (as a pick whose snapshot predates other
    workers' leases on them would); the later picks go on as they are, counted in ``picks``."""
    real_state, real_pick = leases.verify_state_pick, leases.verify_pick

    def stale(**kwargs):  # type: ignore[no-untyped-def]
        state = real_state(**kwargs)
        return leases.WorkerState(state.paused, state.pause_reason, state.open_tasks, rows)

    def counted(**kwargs):  # type: ignore[no-untyped-def]
        found = real_pick(**kwargs)
        picks.append(len(found))
        return found

    monkeypatch.setattr(leases, "verify_state_pick", stale)
    monkeypatch.setattr(leases, "verify_pick", counted)


def test_a_pick_of_rows_leased_meanwhile_picks_again_and_serves_a_free_item(category, monkeypatch):
    # given four items needing one vote, the first three leased by other workers, and a pick
    # that still returns those three (its snapshot predates their leases)
    pool = candidate_pool(category, 4, seed=1210)
    Candidate.objects.update(votes_needed=1)
    for n, candidate in enumerate(pool[:3]):
        other = UserFactory(username=f"other{n}")
        worker_profile(other)
        assert task_assign(worker=other, kind="verify").items.get().candidate_id == candidate.pk
    ann = UserFactory(username="ann")
    worker_profile(ann)
    picks: list[int] = []
    _stale_pick(monkeypatch, [c.pk for c in pool[:3]], picks)

    # when ann asks for a verify task
    task = task_assign(worker=ann, kind="verify")

    # then the lease found the three full, picked again (one free row) and served the fourth
    assert task is not None
    assert task.items.get().candidate_id == pool[3].pk
    assert picks == [1]
    assert TaskItem.objects.filter(candidate=pool[3]).count() == 1


def test_when_every_pick_finds_only_full_items_there_is_no_task(category, monkeypatch):
    # given two items needing one vote, both leased by other workers, and a stale pick
    pool = candidate_pool(category, 2, seed=1220)
    Candidate.objects.update(votes_needed=1)
    for n in range(2):
        other = UserFactory(username=f"other{n}")
        worker_profile(other)
        assert task_assign(worker=other, kind="verify") is not None
    ann = UserFactory(username="ann")
    worker_profile(ann)
    picks: list[int] = []
    _stale_pick(monkeypatch, [c.pk for c in pool], picks)

    # when ann asks for a verify task
    task = task_assign(worker=ann, kind="verify")

    # then the fresh pick finds nothing to lock and she gets none, with nothing leased to her
    assert task is None
    assert picks == [0]
    assert TaskItem.objects.filter(task__worker=ann).count() == 0


def test_a_pick_that_predates_the_workers_own_lease_never_leases_him_an_item_twice(
    category, monkeypatch
):
    # given ann holding a lease of the first item (her other request, which held her profile's
    # lock while this one's pick took its snapshot) and a pick that still offers it to her
    pool = candidate_pool(category, 2, seed=1230)
    ann = UserFactory(username="ann")
    worker_profile(ann)
    held = task_assign(worker=ann, kind="verify")
    assert held is not None and held.items.get().candidate_id == pool[0].pk
    picks: list[int] = []
    _stale_pick(monkeypatch, [pool[0].pk], picks)

    # when her second request leases
    task = task_assign(worker=ann, kind="verify")

    # then the lease sees her own lease, picks again and serves her the second item
    assert task is not None
    assert task.items.get().candidate_id == pool[1].pk
    assert picks == [1]
    assert TaskItem.objects.filter(task__worker=ann, candidate=pool[0]).count() == 1
