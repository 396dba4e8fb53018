"""The peer-agreement gate where the credits land (peer_record_add, on commit of another
worker's answer): targeted updates, so an answer, a curator's pause and the gate's own pause
committed around it all stand."""

from __future__ import annotations

import math
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from labeling.crowd.gates import PEER_REASON
from labeling.models import TaskItem, WorkerProfile
from labeling.services.answers import answer_submit
from labeling.services.microtasks import task_assign, worker_pause
from labeling.services.worker_coins import crowd_newcomer, peer_record_add
from tests.factories import (
    UserFactory,
    candidate_pool,
    wait_until_a_query_waits_for_a_lock,
    worker_client,
)

# what the answer path and curators write: none of it belongs to peer_record_add
LIVE_COLUMNS = (
    "answered_tasks",
    "answered_items",
    "gold_seen",
    "gold_correct",
    "fast_evidence",
    "paused",
    "pause_reason",
    "pause_detail",
)
PEER = (
    "peer_yes_items",
    "peer_yes_said_yes",
    "peer_no_items",
    "peer_no_said_no",
    "peer_evidence",
    "peer_evidence_yes",
    "peer_evidence_no",
)
HONEST = (2.0, 1.5, 1.0, 1.0, -0.8, -4.0, -2.0)
# 5 credits on items the crowd called yes, all contradicted: the coin test reaches 7.0 nats
CONTRARY = (5.0, 0.0, 0.0, 0.0, 7.0, 6.5, -1.0)


@pytest.fixture(autouse=True)
def _rules(settings):
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0


def _worker(name: str):
    user = UserFactory(username=name)
    WorkerProfile.objects.create(user=user, answered_tasks=10, answered_items=40)
    return user


def _row(user, fields) -> dict[str, object]:
    return WorkerProfile.objects.filter(user=user).values(*fields).get()


@pytest.mark.django_db
def test_credits_that_reach_the_gate_pause_the_worker_and_give_back_his_leases(category):
    # given a worker holding a leased task, with no peer record yet
    candidate_pool(category, 2, seed=6100)
    user = _worker("contrary")
    task = task_assign(worker=user, kind="verify")
    before = timezone.now()

    # when one decision's credits bring his coin test to 7.0 nats (pause at log(2 / 0.003) =
    # 6.50: the peer gate's own budget)
    reopen = peer_record_add({user.pk: CONTRARY})

    # then he is paused for it, told only the reason, his decisions are to be looked at again,
    # his lease is back in the pool, and the credits are there as added
    row = _row(user, (*LIVE_COLUMNS, *PEER, "paused_at"))
    assert reopen == [user.pk]
    assert (row["paused"], row["pause_reason"]) == (True, PEER_REASON)
    assert row["pause_detail"] == (
        "Crowd agreement: 0.0 of 5.0 credited label votes agreed with the crowd's call. "
        "Evidence (nats, pause at 6.50 / 7.20): all 7.00, yes items 6.50, no items -1.00 "
        "(bar 80%, call at most 95% sure)."
    )
    assert row["paused_at"] >= before
    assert tuple(row[name] for name in PEER) == CONTRARY
    assert (row["answered_tasks"], row["answered_items"]) == (10, 40)
    assert [item.leased_until <= timezone.now() for item in TaskItem.objects.filter(task=task)] == [
        True
    ]


@pytest.mark.django_db
def test_evidence_is_floored_at_twice_each_threshold_and_a_second_credit_adds_to_it(category):
    # given a worker whose record already holds one decision's honest credits
    user = _worker("steady")
    peer_record_add({user.pk: HONEST})

    # when a long run of agreement is credited at once
    assert peer_record_add({user.pk: (10.0, 10.0, 10.0, 10.0, -30.0, -30.0, -30.0)}) == []

    # then the counts add up and each test's evidence stops at its floor
    row = _row(user, PEER)
    assert tuple(row[name] for name in PEER) == (
        12.0,
        11.5,
        11.0,
        11.0,
        pytest.approx(-2 * math.log(2 / 0.003)),
        pytest.approx(-2 * math.log(4 / 0.003)),
        pytest.approx(-2 * math.log(4 / 0.003)),
    )
    assert _row(user, ("paused",)) == {"paused": False}


@pytest.mark.django_db(transaction=True)
def test_an_answer_and_a_curators_pause_around_the_credits_all_stand(category):
    # given an honest worker (lowest id: his row is locked first) with a leased task, one whom
    # a curator is about to pause, and one whom the credits will pause
    if connection.vendor != "postgresql":
        pytest.skip("threads with their own connections and row locks: PostgreSQL")
    honest, looked_at, contrary = _worker("honest"), _worker("looked-at"), _worker("contrary")
    candidate_pool(category, 3, seed=6200)
    task = task_assign(worker=honest, kind="verify")
    locked, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    reopened: list[list[int]] = []

    def hold_then_answer() -> None:  # the honest worker's answer holds his row meanwhile
        try:
            with transaction.atomic():
                WorkerProfile.objects.select_for_update().get(user=honest)
                locked.set()
                go.wait()
                answers = [{"item": str(item.uid), "answer": "yes"} for item in task.items.all()]
                answer_submit(worker=honest, task_uid=str(task.uid), answers=answers)
        except BaseException as error:
            errors.append(error)
        finally:
            locked.set()
            connection.close()

    def credit() -> None:
        try:
            reopened.append(
                peer_record_add({honest.pk: HONEST, looked_at.pk: CONTRARY, contrary.pk: CONTRARY})
            )
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    holder, crediting = threading.Thread(target=hold_then_answer), threading.Thread(target=credit)
    holder.start()
    locked.wait()

    # when the credits wait for the honest worker's row, a curator pauses the second worker,
    # and then the honest worker's answer commits
    crediting.start()
    wait_until_a_query_waits_for_a_lock("peer_record_add")
    worker_pause(profile=WorkerProfile.objects.get(user=looked_at), reason="Curator: a look.")
    go.set()
    holder.join()
    crediting.join()

    # then the answer's counters stand beside the credits, the curator's pause keeps its
    # reason (the gate pauses only who is not paused yet), and the third worker is paused by
    # the gate; only he is newly cast out (the curator's pause had already taken the second
    # one's weight)
    assert errors == []
    assert reopened == [[contrary.pk]]
    assert _row(honest, LIVE_COLUMNS) == {
        "answered_tasks": 11,
        "answered_items": 41,
        "gold_seen": 0,
        "gold_correct": 0,
        "fast_evidence": pytest.approx(math.log(0.5 / 0.9)),  # one slow task
        "paused": False,
        "pause_reason": "",
        "pause_detail": "",
    }
    assert tuple(_row(honest, PEER).values()) == HONEST
    assert _row(looked_at, ("paused", "pause_reason", "pause_detail")) == {
        "paused": True,
        "pause_reason": "Curator: a look.",
        "pause_detail": "Paused by a curator.",
    }
    assert tuple(_row(looked_at, PEER).values()) == CONTRARY
    assert _row(contrary, ("paused", "pause_reason")) == {
        "paused": True,
        "pause_reason": PEER_REASON,
    }


@pytest.mark.django_db
def test_a_worker_paused_by_his_peers_sees_the_reason_and_nothing_of_the_evidence(category):
    # given a worker the peer gate has paused, with curators' evidence in pause_detail
    candidate_pool(category, 2, seed=6300)
    client, user = worker_client("contrary")
    WorkerProfile.objects.create(user=user, answered_tasks=10, answered_items=40)
    peer_record_add({user.pk: CONTRARY})
    assert WorkerProfile.objects.get(user=user).pause_detail.startswith("Crowd agreement")

    # when he asks for work, for his own record and for his home page
    refused = client.get("/api/tasks/next/?kind=verify")
    me = client.get("/api/me/")
    home = client.get("/")

    # then each tells him he is paused and why, and none holds the evidence, his agreement
    # counts or anything about other workers' votes
    assert (refused.status_code, refused.json()) == (
        403,
        {"detail": f"Your account is paused: {PEER_REASON}"},
    )
    assert me.status_code == 200
    assert set(me.json()) == {
        "id",
        "username",
        "email",
        "role",
        "is_curator",
        "is_active",
        "date_joined",
    }
    assert home.status_code == 200
    page = home.content.decode()
    assert PEER_REASON in page
    for text in (refused.content.decode(), me.content.decode(), page):
        for secret in ("Crowd agreement", "nats", "credited", "Evidence", "peer"):
            assert secret not in text


@pytest.mark.django_db
def test_with_the_peer_pauses_switched_off_the_evidence_lands_and_nobody_is_paused(
    category, settings
):
    # given the gate's automatic pauses switched off (a crowd a curator suspects is captured)
    settings.CROWDNET_GATE_PEER_PAUSES = False
    user = _worker("contrary")

    # when credits that would pause him land
    reopen = peer_record_add({user.pk: CONTRARY})

    # then his record holds them, for curators to read, and he keeps working; his decisions
    # are still looked at again, as they were before the gate, because his coins fell (five
    # contradictions and nothing else: his votes no longer carry evidence)
    assert reopen == [user.pk]
    assert tuple(_row(user, PEER).values()) == CONTRARY
    assert _row(user, ("paused", "pause_reason", "pause_detail")) == {
        "paused": False,
        "pause_reason": "",
        "pause_detail": "",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("workers", [1, 6])
def test_a_decisions_credits_cost_the_same_statements_for_one_worker_or_six(
    category, django_assert_num_queries, workers
):
    # given workers with a record each (a grid's decisions credit every voter on its cells),
    # and the crowd's control totals cached (as they are for a minute at a time)
    if connection.vendor != "postgresql":
        pytest.skip("one statement for every worker's credits is PostgreSQL's")
    users = [_worker(f"voter{i}") for i in range(workers)]
    crowd_newcomer()

    # when one decision's honest credits are added to their records: savepoint, the profiles
    # locked, every worker's counts and evidence in one update, the gate's catch, the records
    # read again, release
    with django_assert_num_queries(6):
        assert peer_record_add({user.pk: HONEST for user in users}) == []

    # then each record holds its credits
    rows = WorkerProfile.objects.filter(user__in=users).values_list(*PEER)
    assert list(rows) == [HONEST] * workers
