"""The crowd simulator's bookkeeping: a clean slate for its workers on every run, and a report
that scores the live decisions before any re-aggregation and counts only real pauses."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from demo.models import DemoTruth
from demo.personas import personas_draw
from demo.services.simulation import SimulationConfig, simulated_workers_create, simulation_run
from labeling.models import Candidate, TaskItem, WorkerProfile
from labeling.services.microtasks import gold_mark, task_assign
from labeling.services.reaggregation import (
    PAUSE_SPAMMER,
    consensus_reaggregate,
    model_gate_reason,
)
from tests.factories import UserFactory, candidate_pool, label_votes_create

pytestmark = pytest.mark.django_db

CLOSED = "http://127.0.0.1:9"  # the discard port: the simulated workers stop at once
FRESH = {
    "answered_tasks": 0,
    "answered_items": 0,
    "seconds_total": 0.0,
    "streak": 0,
    "last_answer_at": None,
    "gold_seen": 0,
    "gold_correct": 0,
    "gold_evidence": 0.0,
    "gold_evidence_yes": 0.0,
    "gold_evidence_no": 0.0,
    "fast_evidence": 0.0,
    "said_yes_evidence": 0.0,
    "said_no_evidence": 0.0,
    "peer_evidence": 0.0,
    "peer_evidence_yes": 0.0,
    "peer_evidence_no": 0.0,
    "paused": False,
    "pause_reason": "",
    "pause_detail": "",
    "paused_at": None,
    "em_accuracy": None,
    "spammer_score": None,
    "confusion": None,
    "label_votes": 0,
    "peer_yes_items": 0.0,
    "peer_yes_said_yes": 0.0,
    "peer_no_items": 0.0,
    "peer_no_said_no": 0.0,
}


@pytest.fixture(autouse=True)
def _rules(settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_CONSENSUS_THRESHOLD = 0.95
    settings.CROWDNET_CONSENSUS_VOTE_CAP = 7
    settings.CROWDNET_CONSENSUS_PRIOR = 0.5
    settings.CROWDNET_GATE_SPAMMER_MIN_VOTES = 10
    settings.CROWDNET_GATE_SPAMMER_MIN_PER_CLASS = 5


def _pool(category, count: int) -> list[Candidate]:
    return candidate_pool(category, count, seed=8000)


def test_a_second_run_starts_its_workers_from_a_clean_slate(category):
    # given sim-0 as an earlier run left it: counters, a control-item record, the model's
    # estimates, a pause, and a task still leased
    [(user, token)] = simulated_workers_create(1, "sim")
    _pool(category, 1)
    task = task_assign(worker=user, kind="verify")
    now = timezone.now()
    WorkerProfile.objects.filter(user=user).update(
        answered_tasks=7,
        answered_items=30,
        seconds_total=12.5,
        streak=4,
        last_answer_at=now,
        gold_seen=12,
        gold_correct=3,
        gold_evidence=3.5,
        gold_evidence_yes=-1.0,
        gold_evidence_no=2.0,
        fast_evidence=1.6,
        said_yes_evidence=4.2,
        said_no_evidence=-3.0,
        peer_evidence=2.5,
        peer_evidence_yes=-1.5,
        peer_evidence_no=0.5,
        paused=True,
        pause_reason="Your answers to check questions were below the required accuracy.",
        pause_detail="Control items: 3 of 12 right.",
        paused_at=now,
        em_accuracy=0.3,
        spammer_score=0.01,
        confusion=[[0.5, 0.5], [0.5, 0.5]],
        label_votes=40,
        peer_yes_items=9.5,
        peer_yes_said_yes=1.5,
        peer_no_items=3.0,
        peer_no_said_no=0.5,
    )

    # when the next run creates its workers
    again = simulated_workers_create(1, "sim")

    # then it is the same account and token, with every profile column as new, and the
    # lease given back to the pool
    assert again == [(user, token)]
    assert WorkerProfile.objects.filter(user=user).values(*FRESH).get() == FRESH
    task.refresh_from_db()
    assert task.expires_at <= timezone.now()
    assert all(i.leased_until <= timezone.now() for i in TaskItem.objects.filter(task=task))
    assert task_assign(worker=user, kind="verify").pk != task.pk


CONFIG = SimulationConfig(url=CLOSED, workers=5, mix={"honest": 0.6, "yes": 0.4}, seconds=5, seed=3)


def _earlier_crowd(category) -> dict[str, list]:
    """The simulated workers' votes from before: 24 items (4 gold, every third one a "no"),
    three honest workers and an always-yes one answered all, a second always-yes one only
    three; the live path accepted all 20 non-gold items."""
    personas = personas_draw(
        CONFIG.workers,
        CONFIG.mix,
        accuracy=CONFIG.accuracy,
        seconds_per_item=CONFIG.seconds_per_item,
        rng=np.random.default_rng(CONFIG.seed),
    )
    users = [UserFactory(username=f"sim-{i}") for i in range(CONFIG.workers)]
    honest = [u for u, p in zip(users, personas, strict=True) if p.kind == "honest"]
    yes = [u for u, p in zip(users, personas, strict=True) if p.kind == "yes"]
    candidates = _pool(category, 24)
    truth = [i % 3 != 0 for i in range(24)]
    for candidate, true in zip(candidates, truth, strict=True):
        DemoTruth.objects.create(candidate=candidate, is_positive=true, true_label="x")
    for candidate, true in zip(candidates[:4], truth, strict=False):
        gold_mark(candidate=candidate, answer=true)
    answers = {worker: truth for worker in honest}
    answers.update({yes[0]: [True] * 24, yes[1]: [True] * 3})
    label_votes_create(candidates, answers, gold=4)
    Candidate.objects.filter(pk__in=[c.pk for c in candidates[4:]]).update(
        votes_needed=4, state="accepted"
    )
    return {"honest": honest, "yes": yes}


def test_the_report_scores_live_decisions_then_after_the_reaggregation(category):
    # given the earlier crowd's votes, with every non-gold item accepted live (6 of the 20
    # are "no" items: wrong)
    kinds = _earlier_crowd(category)

    # when a run's crowd stops and the re-aggregation follows
    report = simulation_run(CONFIG, after=lambda: consensus_reaggregate(trigger="simulator"))

    # then the live score is the answer path's: 14 of 20 right, all 20 accepted, nobody paused
    live = report.live
    assert (live.decided, live.correct, live.accepted, live.accepted_right) == (20, 14, 20, 14)
    assert (live.rejected, live.rejected_wrong, live.review, live.still_open) == (0, 0, 0, 0)
    assert live.paused == {"honest": (0, 3), "yes": (0, 2)}
    assert (live.accuracy, live.precision) == (0.7, 0.7)
    # and after the re-aggregation every item is right and the always-yes worker it knows is
    # paused, the one it saw three votes from is not
    after = report.reaggregated
    assert (after.decided, after.correct, after.accepted, after.accepted_right) == (20, 20, 14, 14)
    assert (after.rejected, after.rejected_wrong) == (6, 0)
    assert after.paused == {"honest": (0, 3), "yes": (1, 2)}
    assert report.paused == after.paused
    assert report.batch_runs_live == 0
    profiles = {p.user_id: p for p in WorkerProfile.objects.all()}
    known, unseen = (profiles[u.pk] for u in kinds["yes"])
    assert (known.paused, known.pause_reason) == (True, PAUSE_SPAMMER)
    # (three votes: the model reads him like the average worker, so not paused)
    assert model_gate_reason(unseen.spammer_score, unseen.em_accuracy) == ""
    assert unseen.paused is False
    assert report.lines()[1:7] == [
        "live, before any re-aggregation: label accuracy 0.700 (14/20) decided items; "
        "precision of accepted 0.700 (14/20); rejections wrong 0/0",
        "live, before any re-aggregation: votes per decided item 4.00; review queue 0; "
        "still open 0",
        "live, before any re-aggregation: workers paused, by kind: honest 0/3, yes 0/2",
        "after re-aggregation: label accuracy 1.000 (20/20) decided items; "
        "precision of accepted 1.000 (14/14); rejections wrong 0/6",
        "after re-aggregation: votes per decided item 4.00; review queue 0; still open 0",
        "after re-aggregation: workers paused, by kind: honest 0/3, yes 1/2",
    ]


def test_without_a_reaggregation_the_report_is_the_live_score_alone(category):
    _earlier_crowd(category)

    report = simulation_run(CONFIG, after=None)

    assert report.reaggregated is None
    assert (report.live.decided, report.live.correct) == (20, 14)
    assert report.final == report.live
    assert [line.split(":")[0] for line in report.lines()] == [
        "answered tasks",
        *["live, before any re-aggregation"] * 3,
        "boxes",
        "errors",
    ]
