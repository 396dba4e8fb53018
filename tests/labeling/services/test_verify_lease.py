"""The verify lease when its pick comes back with rows others have leased meanwhile, and the
full-until hint that lets picks pass fully leased items by."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from labeling.crowd.gates import Pause
from labeling.models import Candidate, TaskItem
from labeling.services import leases
from labeling.services.microtasks import task_assign, worker_profile
from labeling.services.worker_coins import gate_pause
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


def _hint(candidate: Candidate) -> tuple[object, int | None]:
    candidate.refresh_from_db()
    return candidate.full_until, candidate.full_needed


def test_the_lease_that_takes_an_items_last_vote_notes_when_its_first_lease_ends(category):
    # given an item needing two votes and two workers
    [item] = candidate_pool(category, 1, seed=1240)
    Candidate.objects.update(votes_needed=2)
    bob, cy = UserFactory(username="bob"), UserFactory(username="cy")
    worker_profile(bob)
    worker_profile(cy)

    # when bob takes the first vote, then cy the last
    first = task_assign(worker=bob, kind="verify")
    after_first = _hint(item)
    second = task_assign(worker=cy, kind="verify")

    # then the first lease noted nothing (a vote was still free) and the second noted the end
    # of bob's lease (the earlier of the two) at two votes needed
    assert first is not None and second is not None
    assert after_first == (None, None)
    assert first.items.get().leased_until < second.items.get().leased_until
    assert _hint(item) == (first.items.get().leased_until, 2)


@pytest.mark.parametrize(
    ("until_seconds", "needed_noted", "passed_by"),
    [(60, 3, True), (-1, 3, False), (60, 2, False)],
    ids=["hint-in-force", "hint-ended", "hint-for-fewer-votes"],
)
def test_a_pick_passes_an_item_by_while_its_hint_is_in_force(
    category, until_seconds, needed_noted, passed_by
):
    # given two open items needing three votes, no lease on either, and a hint on the first
    # (one left behind: the pick trusts it without probing the leases)
    first, second = candidate_pool(category, 2, seed=1260)
    Candidate.objects.update(votes_needed=3)
    Candidate.objects.filter(pk=first.pk).update(
        full_until=timezone.now() + timedelta(seconds=until_seconds), full_needed=needed_noted
    )
    ann = UserFactory(username="ann")
    worker_profile(ann)

    # when ann asks for a verify task
    task = task_assign(worker=ann, kind="verify")

    # then a hint in force for the item's current vote need passes the first item by; an
    # ended one, or one noted at another vote need, is void
    assert task is not None
    assert task.items.get().candidate_id == (second.pk if passed_by else first.pk)


def test_a_pause_gives_the_items_back_with_their_hints_void(category):
    # given bob holding the last vote of an item (its hint noted) and cy, who has no task
    [item, other] = candidate_pool(category, 2, seed=1270)
    Candidate.objects.filter(pk=item.pk).update(votes_needed=1)
    Candidate.objects.filter(pk=other.pk).update(state="accepted")
    bob, cy = UserFactory(username="bob"), UserFactory(username="cy")
    worker_profile(bob)
    worker_profile(cy)
    assert task_assign(worker=bob, kind="verify") is not None
    assert _hint(item)[0] is not None

    # when a gate pauses bob
    gate_pause(bob.pk, Pause(reason="paused", detail="test"), timezone.now())

    # then his lease ended, the item's hint is void and cy is served the item at once
    assert _hint(item) == (None, None)
    task = task_assign(worker=cy, kind="verify")
    assert task is not None and task.items.get().candidate_id == item.pk
