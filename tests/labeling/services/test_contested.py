"""Contested calls: a curator's decision checks the votes cast before it (blind checks), pauses
those nearly always wrong on them, and gives the calls a captured crowd took back to the
workers the peer-agreement gate paused for contradicting it."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from labeling.crowd.gates import (
    BLIND_REASON,
    PEER_REASON,
    GateSettings,
    blind_change,
    blind_threshold,
    crossing_chance,
)
from labeling.models import PEER_PENDING, Candidate, Vote, WorkerProfile
from labeling.services.answers import answer_submit
from labeling.services.consensus import candidates_decide, decision_override
from labeling.services.contested import (
    checks_apply,
    contested_items,
    suspect_list,
)
from labeling.services.microtasks import gold_mark, task_assign
from labeling.tasks import commit_hooks_sweep
from tests.factories import (
    UserFactory,
    candidate_pool,
    label_votes_create,
    wait_until_a_query_waits_for_a_lock,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("live_rules")]

GATES = GateSettings()
WRONG, RIGHT = math.log(0.9 / 0.2), math.log(0.1 / 0.8)


def _worker(name: str, *, gold_seen: int, gold_correct: int):
    user = UserFactory(username=name)
    WorkerProfile.objects.create(user=user, gold_seen=gold_seen, gold_correct=gold_correct)
    return user


def _profile(user) -> WorkerProfile:
    return WorkerProfile.objects.get(user=user)


def _blind(user) -> tuple[int, int, float]:
    p = _profile(user)
    return p.blind_seen, p.blind_correct, round(p.blind_evidence, 4)


def test_blind_checks_cost_a_worker_at_the_bar_almost_nothing_of_the_one_percent():
    # a wrong answer adds 1.50 nats, a right one takes 2.08 away; six wrong in a row pause
    assert round(blind_threshold(GATES), 4) == round(math.log(1 / 0.0003), 4) == 8.1117
    assert blind_change(None, False, GATES) == pytest.approx(WRONG)
    assert blind_change(None, True, GATES) == pytest.approx(RIGHT)
    # taken back: only where that lowers the evidence (a right answer's term is not undone)
    assert blind_change(True, None, GATES) == 0.0
    assert blind_change(False, None, GATES) == pytest.approx(-WRONG)
    assert blind_change(True, False, GATES) == pytest.approx(WRONG)
    assert blind_change(False, True, GATES) == pytest.approx(-WRONG + RIGHT)
    # a worker right 80 % of the time on the checks is ever paused 0.0148 % of the time
    # (exact, floored as the gate floors; Wald's bound is the alpha, 0.03 %)
    steps = [(RIGHT, 0.8), (WRONG, 0.2)]
    assert round(100 * crossing_chance(steps, blind_threshold(GATES), 200), 4) == 0.0148


def _captured(category, django_capture_on_commit_callbacks):
    """20 items that all show the category; three colluders with perfect control records say
    no to every one, two honest workers (9 of 10 controls) say yes. The crowd rejects them all,
    and the peer gate pauses the two honest workers for contradicting it."""
    candidates = candidate_pool(category, 20, seed=5100)
    colluders = [_worker(f"c{i}", gold_seen=20, gold_correct=20) for i in range(3)]
    honest = [_worker(f"h{i}", gold_seen=10, gold_correct=9) for i in range(2)]
    answers = {w: [False] * 20 for w in colluders} | {w: [True] * 20 for w in honest}
    label_votes_create(candidates, answers)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        candidates_decide([c.pk for c in candidates])
    return candidates, colluders, honest


def test_a_captured_crowd_is_given_back_by_six_curator_decisions(
    category, curator, django_capture_on_commit_callbacks
):
    candidates, colluders, honest = _captured(category, django_capture_on_commit_callbacks)
    assert set(Candidate.objects.values_list("state", flat=True)) == {"rejected"}
    assert [(_profile(w).paused, _profile(w).pause_reason) for w in honest] == [
        (True, PEER_REASON)
    ] * 2
    assert not any(_profile(w).paused for w in colluders)
    # every item is contested by both paused honest workers, oldest decision first
    listed = list(contested_items())
    assert [(c.pk, c.contradictions) for c in listed] == [(c.pk, 2) for c in candidates]
    assert [(s.username, s.cleared) for s in suspect_list()] == [("h0", False), ("h1", False)]

    # when a curator accepts five of them: the colluders' checks are 0 of 5, not yet paused
    with django_capture_on_commit_callbacks(execute=True):
        for candidate in candidates[:5]:
            decision_override(candidate=candidate, accepted=True, by=curator)
    assert [_blind(w) for w in colluders] == [(5, 0, round(5 * WRONG, 4))] * 3
    assert not any(_profile(w).paused for w in colluders)
    assert [_blind(w) for w in honest] == [(5, 5, round(5 * RIGHT, 4))] * 2

    # and a sixth: 9.02 nats >= 8.11, the three are paused with the blind-check reason, and
    # their decisions are taken again without them: nobody unpaused has voted on the other 14,
    # which go back to the pool
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=candidates[5], accepted=True, by=curator)
    for colluder in colluders:
        profile = _profile(colluder)
        assert (profile.paused, profile.pause_reason) == (True, BLIND_REASON)
        assert profile.pause_detail == (
            "Curators' checks: 0 of 6 label votes right on items a curator decided after the "
            "vote. Evidence 9.02 nats (pause at 8.11; bar 80%)."
        )
    assert (
        list(Candidate.objects.order_by("id").values_list("state", flat=True))
        == ["accepted"] * 6 + ["open"] * 14
    )
    assert list(contested_items()) == []
    assert not Vote.objects.filter(blind_right__isnull=False, candidate__in=candidates[6:]).exists()
    # the peer evidence that paused the honest workers is gone (their disagreements were taken
    # back with the calls): the review page offers to resume them; the pause stands until a
    # curator does; then their votes carry the rest, which wait for the one more vote a
    # reopened item asks
    assert [(s.username, s.cleared) for s in suspect_list()] == [("h0", True), ("h1", True)]
    assert all(_profile(w).paused for w in honest)
    client = Client()
    client.force_login(curator)
    page = client.get("/curate/review/")
    assert page.status_code == 200
    assert page.content.decode().count(">Resume</button>") == 2
    for worker in honest:
        resumed = client.post("/curate/review/", {"action": "resume", "worker": worker.pk})
        assert resumed.status_code == 302
    assert not any(_profile(w).paused for w in honest)
    with django_capture_on_commit_callbacks(execute=True):
        candidates_decide([c.pk for c in candidates[6:]])
    rest = Candidate.objects.filter(pk__in=[c.pk for c in candidates[6:]])
    assert set(rest.values_list("state", "votes_needed")) == {("open", 6)}
    assert {round(p, 4) for p in rest.values_list("posterior", flat=True)} == {0.9738}


def test_checks_count_once_follow_a_changed_decision_and_are_taken_back_when_lifted(
    category, curator, django_capture_on_commit_callbacks
):
    candidates, colluders, honest = _captured(category, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=candidates[0], accepted=True, by=curator)
    assert Candidate.objects.get(pk=candidates[0].pk).blind_checked
    assert [_blind(w) for w in colluders + honest] == [(1, 0, round(WRONG, 4))] * 3 + [
        (1, 1, round(RIGHT, 4))
    ] * 2
    on_it = Vote.objects.filter(candidate=candidates[0])
    assert list(on_it.values_list("peer_p_yes", "peer_applied")) == [(1.0, 1.0)] * 5

    # applying again changes nothing
    assert checks_apply([candidates[0].pk]).votes == []
    assert _blind(colluders[0]) == (1, 0, round(WRONG, 4))

    # the curator changes his mind (no longer a contested call, still checked): each vote's
    # check moves, once
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=candidates[0], accepted=False, by=curator)
    assert _blind(colluders[0]) == (1, 1, round(WRONG - WRONG + RIGHT, 4))
    assert _blind(honest[0]) == (1, 0, round(RIGHT + WRONG, 4))
    assert list(on_it.values_list("peer_p_yes", flat=True)) == [0.0] * 5

    # and lifts it: the checks go, and only what lowers the evidence is taken back
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=candidates[0], accepted=None, by=curator)
    assert _blind(colluders[0]) == (0, 0, round(RIGHT, 4))
    assert _blind(honest[0]) == (0, 0, round(RIGHT + WRONG - WRONG, 4))
    assert (
        list(on_it.values_list("blind_right", "peer_p_yes", "peer_applied"))
        == [(None, None, None)] * 5
    )


def test_a_decision_on_an_item_nobody_contested_checks_nothing(
    category, curator, django_capture_on_commit_callbacks
):
    # the review queue's and the model's disagreements are where honest voters are wrong
    # most: a curator's decision there leaves the voters' records and credits alone
    [candidate] = candidate_pool(category, 1, seed=5200)
    said_yes, said_no = (_worker(n, gold_seen=10, gold_correct=9) for n in ("yes", "no"))
    label_votes_create([candidate], {said_yes: [True], said_no: [False]})
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=candidate, accepted=True, by=curator)
    stored = Candidate.objects.get(pk=candidate.pk)
    assert (stored.blind_checked, stored.checks_due) == (False, None)
    assert (_blind(said_yes), _blind(said_no)) == ((0, 0, 0.0), (0, 0, 0.0))
    assert list(Vote.objects.values_list("blind_right", "peer_p_yes")) == [(None, None)] * 2


def test_making_a_contested_call_a_control_checks_the_votes_cast_on_it_before(
    category, curator, django_capture_on_commit_callbacks
):
    candidates, colluders, honest = _captured(category, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        gold_mark(candidate=candidates[0], answer=True, by=curator)
    assert (_blind(colluders[0]), _blind(honest[0])) == (
        (1, 0, round(WRONG, 4)),
        (1, 1, round(RIGHT, 4)),
    )


def test_checks_a_killed_process_never_ran_are_done_by_the_sweep(
    category, curator, django_capture_on_commit_callbacks
):
    candidates, colluders, _ = _captured(category, django_capture_on_commit_callbacks)
    # the decision commits, its hook never runs (the process is killed)
    with django_capture_on_commit_callbacks(execute=False):
        decision_override(candidate=candidates[0], accepted=True, by=curator)
    assert _blind(colluders[0]) == (0, 0, 0.0)
    assert Candidate.objects.get(pk=candidates[0].pk).checks_due is not None

    commit_hooks_sweep.apply()  # within the grace: left to the hook
    assert _blind(colluders[0]) == (0, 0, 0.0)
    Candidate.objects.update(checks_due=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        commit_hooks_sweep.apply()
    assert _blind(colluders[0]) == (1, 0, round(WRONG, 4))
    assert Candidate.objects.get(pk=candidates[0].pk).checks_due is None
    on_it = Vote.objects.filter(candidate=candidates[0])
    assert list(on_it.values_list("peer_p_yes", "peer_applied")) == [(1.0, 1.0)] * 5


def test_curators_read_the_contested_calls_and_the_paused_workers_through_the_api(
    category, curator_api, django_capture_on_commit_callbacks
):
    candidates, _, honest = _captured(category, django_capture_on_commit_callbacks)
    listed = curator_api.get("/api/review/contested/")
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 20
    first = body["results"][0]
    assert (first["id"], first["state"], first["contradictions"]) == (
        candidates[0].pk,
        "rejected",
        2,
    )
    assert (first["yes_votes"], first["no_votes"]) == (2, 3)
    workers = curator_api.get("/api/review/contested/workers/")
    assert workers.status_code == 200
    assert workers.json() == [
        {
            "user_id": w.pk,
            "username": w.username,
            "gold_seen": 10,
            "gold_correct": 9,
            "blind_seen": 0,
            "blind_correct": 0,
            "cleared": False,
        }
        for w in honest
    ]


def test_the_curators_home_page_says_when_workers_with_good_control_records_were_paused(
    category, curator, django_capture_on_commit_callbacks
):
    client = Client()
    client.force_login(curator)
    assert "paused for disagreeing" not in client.get("/").content.decode()
    _captured(category, django_capture_on_commit_callbacks)
    page = client.get("/").content.decode()
    assert (
        "2 workers who answer check questions right were paused for disagreeing with the crowd."
        in page
    )
    assert 'href="/curate/review/#contested-title"' in page


@pytest.mark.django_db(transaction=True)
def test_an_answer_while_a_curator_settles_contested_calls_loses_nothing(
    category, curator, django_capture_on_commit_callbacks
):
    # given the captured crowd, and one more item a colluder holds a lease on
    if connection.vendor != "postgresql":
        pytest.skip("threads with their own connections and row locks: PostgreSQL")
    candidates, colluders, _ = _captured(category, _hooks_run_at_commit)
    candidate_pool(category, 1, seed=5500)
    colluder = colluders[0]
    task = task_assign(worker=colluder, kind="verify")
    assert task is not None
    before = _profile(colluder).answered_tasks
    locked, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_then_answer() -> None:  # his answer holds his profile's row meanwhile
        try:
            with transaction.atomic():
                WorkerProfile.objects.select_for_update().get(user=colluder)
                locked.set()
                go.wait()
                answers = [{"item": str(item.uid), "answer": "no"} for item in task.items.all()]
                answer_submit(worker=colluder, task_uid=str(task.uid), answers=answers)
        except BaseException as error:
            errors.append(error)
        finally:
            locked.set()
            connection.close()

    def settle_six() -> None:  # each decision's checks wait for the colluders' rows
        try:
            for candidate in candidates[:6]:
                decision_override(candidate=candidate, accepted=True, by=curator)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    holder, curating = (
        threading.Thread(target=hold_then_answer),
        threading.Thread(target=settle_six),
    )
    holder.start()
    locked.wait()
    # when the curator's first checks wait for the colluder's row and then his answer commits
    curating.start()
    wait_until_a_query_waits_for_a_lock("the checks")
    go.set()
    holder.join()
    curating.join()

    # then his answer's counters and all six checks stand, and the sixth paused him
    assert errors == []
    profile = _profile(colluder)
    assert profile.answered_tasks == before + 1
    assert (profile.blind_seen, profile.blind_correct) == (6, 0)
    assert profile.blind_evidence == pytest.approx(6 * WRONG)
    assert (profile.paused, profile.pause_reason) == (True, BLIND_REASON)
    assert Vote.objects.filter(worker=colluder, blind_right=False).count() == 6
    assert not Vote.objects.filter(PEER_PENDING).exists()
    assert not Candidate.objects.filter(checks_due__isnull=False).exists()


@contextlib.contextmanager
def _hooks_run_at_commit(execute: bool = True) -> Iterator[None]:
    """Outside a test's transaction, commit hooks run when their transaction commits."""
    yield


def test_a_suspect_is_cleared_only_where_his_blind_checks_do_not_speak_against_him():
    # the peer gate's evidence back under every threshold for both; one was wrong on the one
    # contested call a curator settled (a random spammer's kind of record), one never checked
    for name, blind in (("checked-wrong", WRONG), ("never-checked", 0.0)):
        WorkerProfile.objects.create(
            user=UserFactory(username=name),
            paused=True,
            pause_reason=PEER_REASON,
            blind_seen=int(blind > 0),
            blind_evidence=blind,
        )
    assert [(s.username, s.cleared) for s in suspect_list()] == [
        ("checked-wrong", False),
        ("never-checked", True),
    ]
