"""Control answers scored against a crowd's call that a curator overturns are scored again:
the vote's ``correct`` and its worker's control record come out as if the curator's answer had
been the control's answer when it was served; curated gold is never scored again."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from labeling.crowd.gates import GOLD_REASON, ControlAnswer, WorkerRecord, record_task
from labeling.models import Candidate, TaskItem, Vote, WorkerProfile
from labeling.services.consensus import decision_override
from labeling.services.contested import checks_apply, suspect_list
from labeling.services.microtasks import gold_mark, worker_resume
from labeling.services.worker_coins import gate_settings
from labeling.tasks import commit_hooks_sweep
from tests.factories import candidate_pool, worker_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _controls_served(settings):
    """Every verify task a control while one is left; decided items stand in at 0.99."""
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 1.0
    settings.CROWDNET_CONTROL_CONFIDENCE = 0.99


def _captured(category, standins: int, *, seed: int) -> tuple[Candidate, list[Candidate]]:
    """One open pool item, and ``standins`` items that all show the category which a captured
    crowd rejected confidently (no curated gold: they stand in as controls, answer no)."""
    pool, *decided = candidate_pool(category, 1 + standins, seed=seed)
    Candidate.objects.filter(pk__in=[c.pk for c in decided]).update(
        state="rejected", confidence=0.999
    )
    return pool, decided


def _answer(client, said: str) -> TaskItem:
    """Ask for a verify task and answer it ``said``; the item served."""
    task = client.get("/api/tasks/next/?kind=verify").json()
    [served] = task["items"]
    answered = client.post(
        f"/api/tasks/{task['id']}/answer/",
        {"answers": [{"item": served["id"], "answer": said}], "client_token": uuid.uuid4().hex},
        format="json",
    )
    assert answered.status_code == 201
    return TaskItem.objects.get(uid=served["id"])


def _record(user) -> tuple[int, int, float, float, float]:
    p = WorkerProfile.objects.get(user=user)
    return p.gold_seen, p.gold_correct, p.gold_evidence, p.gold_evidence_yes, p.gold_evidence_no


def _as_if(answers: list[tuple[bool, bool]]) -> tuple[int, int, float, float, float]:
    """The control record the answer path writes for these (known answer, right) controls,
    one task each, from a fresh record."""
    record = WorkerRecord()
    for positive, right in answers:
        record = record_task(
            record,
            seconds_per_item=1.0,
            gold=[ControlAnswer(positive, right)],
            gates=gate_settings(),
        )
    return (
        record.gold_seen,
        record.gold_correct,
        record.gold_evidence,
        record.gold_evidence_yes,
        record.gold_evidence_no,
    )


def test_an_override_rescores_the_stand_in_controls_and_lifting_it_restores_them(
    category, curator, django_capture_on_commit_callbacks
):
    # given a stand-in control the crowd got wrong: the honest worker's right "yes" is a miss,
    # the colluder's wrong "no" a hit
    _, [standin] = _captured(category, 1, seed=6100)
    honest_client, honest = worker_client("honest")
    colluder_client, colluder = worker_client("colluder")
    assert _answer(honest_client, "yes").candidate_id == standin.pk
    assert _answer(colluder_client, "no").candidate_id == standin.pk
    scored = {honest: _record(honest), colluder: _record(colluder)}
    assert scored == {honest: _as_if([(False, False)]), colluder: _as_if([(False, True)])}

    # when a curator overturns the call
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=standin, accepted=True, by=curator)

    # then both are scored against his answer, exactly as if it had been the control's
    votes = Vote.objects.filter(candidate=standin).order_by("worker__username")
    assert list(votes.values_list("worker__username", "correct")) == [
        ("colluder", False),
        ("honest", True),
    ]
    assert _record(honest) == _as_if([(True, True)])
    assert _record(colluder) == _as_if([(True, False)])
    assert Candidate.objects.get(pk=standin.pk).checks_due is None

    # and applying the checks again changes nothing
    again = checks_apply([standin.pk])
    assert (again.rescored, again.paused) == ([], [])
    assert (_record(honest), _record(colluder)) == (_as_if([(True, True)]), _as_if([(True, False)]))

    # when the curator lifts the override: both are scored as served again
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=standin, accepted=None, by=curator)
    assert {honest: _record(honest), colluder: _record(colluder)} == scored
    assert sorted(Vote.objects.filter(candidate=standin).values_list("correct", flat=True)) == [
        False,
        True,
    ]


def test_a_rescored_record_is_replayed_in_answer_order_not_patched_by_one_term(
    category, curator, django_capture_on_commit_callbacks
):
    # given the stand-in missed first, then nine curated "no" controls: six right, three wrong
    _, [standin, *others] = _captured(category, 10, seed=6200)
    Candidate.objects.filter(pk__in=[c.pk for c in others]).update(state="open", confidence=0)
    client, honest = worker_client("honest")
    assert _answer(client, "yes").candidate_id == standin.pk
    for candidate in others:
        gold_mark(candidate=candidate, answer=False, by=curator)
    said = ["no"] * 6 + ["yes"] * 3
    assert {_answer(client, answer).candidate_id for answer in said} == {c.pk for c in others}
    curated = [(False, True)] * 6 + [(False, False)] * 3
    assert _record(honest) == _as_if([(False, False), *curated])

    # when the curator accepts the stand-in
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=standin, accepted=True, by=curator)

    # then the no-items test reads six rights from 0 (the floor, -11.98, cuts the sixth) and
    # three misses: -7.47; taking the miss's +1.50 out of -6.46 would have left -7.97
    record = _record(honest)
    assert record == _as_if([(True, True), *curated])
    assert (record[1], round(record[4], 2)) == (7, -7.47)
    assert Vote.objects.filter(worker=honest, correct=True).count() == 7


def test_curated_gold_control_votes_are_never_rescored(
    category, curator, django_capture_on_commit_callbacks
):
    # given a worker who answered a curated gold control "no" (right by its gold)
    _, [item] = _captured(category, 1, seed=6300)
    gold_mark(candidate=item, answer=False, by=curator)
    client, worker = worker_client("ann")
    assert _answer(client, "no").candidate_id == item.pk
    before = _record(worker)

    # when a curator overrides the item the other way
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=item, accepted=True, by=curator)

    # then the gold vote and the record stand
    assert Vote.objects.get(worker=worker).correct is True
    assert _record(worker) == before == _as_if([(False, True)])


def test_making_a_stand_in_gold_rescores_the_votes_served_before(
    category, curator, django_capture_on_commit_callbacks
):
    # given the honest worker's miss on a stand-in
    _, [standin] = _captured(category, 1, seed=6400)
    client, honest = worker_client("honest")
    assert _answer(client, "yes").candidate_id == standin.pk

    # when a curator makes it a control with the answer yes
    with django_capture_on_commit_callbacks(execute=True):
        gold_mark(candidate=standin, answer=True, by=curator)

    # then his answer is scored against the gold answer
    assert Vote.objects.get(worker=honest).correct is True
    assert _record(honest) == _as_if([(True, True)])


def test_a_rescoring_a_killed_process_never_ran_is_done_by_the_sweep(
    category, curator, django_capture_on_commit_callbacks
):
    _, [standin] = _captured(category, 1, seed=6500)
    client, honest = worker_client("honest")
    _answer(client, "yes")
    # the decision commits, its hook never runs
    with django_capture_on_commit_callbacks(execute=False):
        decision_override(candidate=standin, accepted=True, by=curator)
    assert _record(honest) == _as_if([(False, False)])
    assert Candidate.objects.get(pk=standin.pk).checks_due is not None

    commit_hooks_sweep.apply()  # within the grace: left to the hook
    assert _record(honest) == _as_if([(False, False)])
    Candidate.objects.update(checks_due=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        commit_hooks_sweep.apply()
    assert _record(honest) == _as_if([(True, True)])
    assert Candidate.objects.get(pk=standin.pk).checks_due is None


def test_a_control_leased_before_the_decision_and_answered_after_is_rescored_by_the_sweep(
    category, curator, django_capture_on_commit_callbacks
):
    # given a worker holding a lease that serves the stand-in
    _, [standin] = _captured(category, 1, seed=6600)
    client, late = worker_client("late")
    task = client.get("/api/tasks/next/?kind=verify").json()
    [served] = task["items"]

    # when the curator overturns the call: nothing to score yet, and the checks stay due
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=standin, accepted=True, by=curator)
    assert Candidate.objects.get(pk=standin.pk).checks_due is not None

    # and the worker answers "yes" afterwards: scored against the answer it was served with
    answered = client.post(
        f"/api/tasks/{task['id']}/answer/",
        {"answers": [{"item": served["id"], "answer": "yes"}], "client_token": "late"},
        format="json",
    )
    assert answered.status_code == 201
    assert _record(late) == _as_if([(False, False)])

    # then the sweep scores it against the curator's
    Candidate.objects.update(checks_due=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        commit_hooks_sweep.apply()
    assert _record(late) == _as_if([(True, True)])
    assert Candidate.objects.get(pk=standin.pk).checks_due is None


def test_control_gate_pauses_move_with_the_rescoring_and_a_cleared_one_is_listed(
    category, curator, django_capture_on_commit_callbacks
):
    # given four stand-ins a captured crowd rejected: four misses pause the honest worker
    # (the no-items test: 4 x 1.50 = 6.02 nats >= 5.99), the colluder's four hits do not
    _, standins = _captured(category, 4, seed=6700)
    honest_client, honest = worker_client("honest")
    colluder_client, colluder = worker_client("colluder")
    for _ in standins:
        _answer(colluder_client, "no")
        _answer(honest_client, "yes")
    honest_profile = WorkerProfile.objects.get(user=honest)
    assert (honest_profile.paused, honest_profile.pause_reason) == (True, GOLD_REASON)
    assert WorkerProfile.objects.get(user=colluder).paused is False
    assert suspect_list() == []

    # when a curator accepts all four
    with django_capture_on_commit_callbacks(execute=True):
        for standin in standins:
            decision_override(candidate=standin, accepted=True, by=curator)

    # then the honest worker stays paused (curators resume) and is listed as cleared, and the
    # colluder's four misses on the yes items pause him by the control tests
    assert _record(honest) == _as_if([(True, True)] * 4)
    assert WorkerProfile.objects.get(user=honest).paused is True
    assert [(s.username, s.gold_correct, s.cleared) for s in suspect_list()] == [
        ("honest", 4, True)
    ]
    page = Client()
    page.force_login(curator)
    row = page.get("/curate/review/").content.decode().split('data-worker="honest"')[1]
    assert "4 of 4 right" in row.split("</tr>")[0]
    assert 'value="resume"' in row.split("</tr>")[0]
    assert _record(colluder) == _as_if([(True, False)] * 4)
    colluder_profile = WorkerProfile.objects.get(user=colluder)
    assert (colluder_profile.paused, colluder_profile.pause_reason) == (True, GOLD_REASON)
    assert colluder_profile.recheck_due is None  # his decisions were taken again at commit


def test_a_rescored_vote_from_before_a_resume_moves_the_counts_not_the_evidence(
    category, curator, django_capture_on_commit_callbacks
):
    # given the honest worker's miss on a stand-in, a curator's resume, and one more control
    # (a curated "no", answered right) since
    _, [standin, gold] = _captured(category, 2, seed=6800)
    Candidate.objects.filter(pk=gold.pk).update(state="open", confidence=0)
    client, honest = worker_client("honest")
    assert _answer(client, "yes").candidate_id == standin.pk
    worker_resume(profile=WorkerProfile.objects.get(user=honest))
    gold_mark(candidate=gold, answer=False, by=curator)
    assert _answer(client, "no").candidate_id == gold.pk
    since_resume = _as_if([(False, True)])[2:]
    assert _record(honest) == (2, 1, *since_resume)

    # when a curator accepts the stand-in: the count moves, the evidence since the resume not
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=standin, accepted=True, by=curator)
    assert _record(honest) == (2, 2, *since_resume)


def test_a_record_resumed_before_resumes_were_kept_moves_by_the_replays_difference(
    category, curator, django_capture_on_commit_callbacks
):
    # given two misses on stand-ins, then evidence set back to 0 with no resumed_at (a resume
    # before migration 0030), then nothing else
    _, standins = _captured(category, 2, seed=6900)
    client, honest = worker_client("honest")
    _answer(client, "yes")
    _answer(client, "yes")
    WorkerProfile.objects.filter(user=honest).update(
        gold_evidence=0.0, gold_evidence_yes=0.0, gold_evidence_no=0.0
    )

    # when a curator accepts one: the two replays (miss, miss) and (right on yes, miss)
    # differ by this much on each test, added to the stored 0
    with django_capture_on_commit_callbacks(execute=True):
        decision_override(candidate=standins[0], accepted=True, by=curator)
    scored_then, scored_now = _as_if([(False, False)] * 2), _as_if([(True, True), (False, False)])
    assert _record(honest) == (
        2,
        1,
        *(now - then for now, then in zip(scored_now[2:], scored_then[2:], strict=True)),
    )
