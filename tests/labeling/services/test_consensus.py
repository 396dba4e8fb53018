"""Consensus as it runs in the platform: decisions after each answer, the review queue,
overrides, Dawid-Skene re-aggregation, box verification and fusion."""

from __future__ import annotations

import pytest
from django.utils import timezone

from labeling.models import (
    Box,
    Candidate,
    ConsensusRun,
    MicroTask,
    ObjectBox,
    Vote,
    WorkerProfile,
)
from labeling.services.answers import answer_submit
from labeling.services.consensus import (
    box_accepted,
    decision_override,
    objects_fuse,
    review_queue,
    worker_accuracies,
)
from labeling.services.microtasks import gold_mark, task_assign
from labeling.services.reaggregation import (
    PAUSE_DISAGREES,
    PAUSE_SPAMMER,
    consensus_reaggregate,
)
from tests.factories import UserFactory, candidate_pool

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_CONSENSUS_THRESHOLD = 0.95
    settings.CROWDNET_CONSENSUS_VOTE_CAP = 7
    settings.CROWDNET_CONSENSUS_PRIOR = 0.5


def _pool(category, count: int) -> list[Candidate]:
    return candidate_pool(category, count, seed=3000)


def _worker(name: str, *, gold_seen: int = 0, gold_correct: int = 0):
    user = UserFactory(username=name)
    WorkerProfile.objects.create(user=user, gold_seen=gold_seen, gold_correct=gold_correct)
    return user


def _verify(worker, answer: str) -> None:
    task = task_assign(worker=worker, kind="verify")
    assert task is not None
    answers = [{"item": str(item.uid), "answer": answer} for item in task.items.all()]
    answer_submit(worker=worker, task_uid=str(task.uid), answers=answers, client_token="")


def test_worker_accuracy_comes_from_gold_with_a_prior_until_the_model_knows_better():
    new = _worker("new")
    proven = _worker("proven", gold_seen=20, gold_correct=20)
    modelled = _worker("modelled", gold_seen=20, gold_correct=20)
    WorkerProfile.objects.filter(user=modelled).update(em_accuracy=0.8)

    accuracy = worker_accuracies([new.pk, proven.pk, modelled.pk])

    assert accuracy == {new.pk: 2 / 3, proven.pk: 22 / 23, modelled.pk: 0.8}


def test_two_proven_workers_who_agree_decide_an_item_and_open_it_for_boxes(category):
    # given one item that needs two votes and two workers who got all 20 gold questions right
    [candidate] = _pool(category, 1)
    Candidate.objects.update(votes_needed=2)
    first = _worker("a", gold_seen=20, gold_correct=20)
    second = _worker("b", gold_seen=20, gold_correct=20)

    # when the first says yes, the item is not decided yet: it waits for its second vote
    _verify(first, "yes")
    candidate.refresh_from_db()
    assert (candidate.state, candidate.posterior) == ("open", pytest.approx(22 / 23))

    # when the second says yes too
    _verify(second, "yes")

    # then P(yes) is (22/1)^2 to 1 and the item is accepted and goes to the drawers
    candidate.refresh_from_db()
    assert candidate.state == "accepted"
    assert candidate.posterior == pytest.approx(484 / 485)
    assert candidate.confidence == pytest.approx(484 / 485)
    assert (candidate.box_state, candidate.priority) == ("draw", 0)
    assert candidate.decided_at is not None


def test_an_undecided_item_asks_for_one_more_vote_then_goes_to_review_at_the_cap(
    category, settings
):
    # given new workers (each right 2 times in 3, as far as anyone knows) and a cap of 4
    settings.CROWDNET_CONSENSUS_VOTE_CAP = 4
    [candidate] = _pool(category, 1)
    workers = [_worker(f"w{i}") for i in range(4)]

    # when three answer yes, yes, no: odds 2 * 2 / 2 = 2, P(yes) = 2/3
    for worker, answer in zip(workers, ["yes", "yes", "no"], strict=False):
        _verify(worker, answer)

    # then the item stays in the pool for one more vote, ahead of items further from a decision
    candidate.refresh_from_db()
    assert (candidate.state, candidate.votes_cast, candidate.votes_needed) == ("open", 3, 4)
    assert candidate.posterior == pytest.approx(2 / 3)
    assert candidate.priority == 667

    # when the fourth says no, odds 1: still undecided, and the cap is reached
    _verify(workers[3], "no")

    # then a curator decides it
    candidate.refresh_from_db()
    assert (candidate.state, candidate.posterior) == ("needs_review", pytest.approx(0.5))
    assert list(review_queue()) == [candidate]
    assert task_assign(worker=_worker("late"), kind="verify") is None


def test_a_curators_override_wins_over_later_aggregation_and_can_be_lifted(category, curator):
    [candidate] = _pool(category, 1)
    Candidate.objects.update(votes_needed=2)
    for name in ("a", "b"):
        _verify(_worker(name, gold_seen=20, gold_correct=20), "yes")
    candidate.refresh_from_db()
    assert candidate.state == "accepted"

    decision_override(candidate=candidate, accepted=False, by=curator)
    consensus_reaggregate(trigger="manual")

    candidate.refresh_from_db()
    assert (candidate.state, candidate.override, candidate.override_by) == (
        "rejected",
        False,
        curator,
    )
    assert candidate.confidence == 1.0

    decision_override(candidate=candidate, accepted=None, by=curator)
    candidate.refresh_from_db()
    assert (candidate.state, candidate.override, candidate.votes_needed) == ("open", None, 3)


def _answered_task(worker, category, kind: str) -> MicroTask:
    return MicroTask.objects.create(
        worker=worker, kind=kind, category=category, status="answered", expires_at=timezone.now()
    )


def _crowd_votes(candidates, truth, workers, answer_of) -> None:
    votes = []
    for worker in workers:
        task = _answered_task(worker, candidates[0].category, "verify")
        for i, candidate in enumerate(candidates):
            said_yes = answer_of(worker, i, truth[i])
            votes.append(
                Vote(
                    worker=worker,
                    task=task,
                    kind="verify",
                    question="label",
                    candidate=candidate,
                    answer="yes" if said_yes else "no",
                    is_gold=hasattr(candidate, "gold"),
                    counted=not hasattr(candidate, "gold"),
                    seconds=2.0,
                )
            )
    Vote.objects.bulk_create(votes)
    for candidate in candidates:
        yes = sum(v.answer == "yes" for v in votes if v.candidate_id == candidate.pk and v.counted)
        no = sum(v.answer == "no" for v in votes if v.candidate_id == candidate.pk and v.counted)
        Candidate.objects.filter(pk=candidate.pk).update(yes_votes=yes, no_votes=no)


def test_reaggregation_learns_each_worker_decides_items_and_pauses_a_spammer(category, settings):
    # given 24 items (4 of them gold), four honest workers who each get one item wrong, a
    # worker who always says yes and one who answers gold right and the rest wrong, everyone
    # answering everything
    settings.CROWDNET_GATE_SPAMMER_MIN_VOTES = 10
    settings.CROWDNET_GATE_SPAMMER_MIN_PER_CLASS = 5  # 8 of the 24 items are negatives
    candidates = _pool(category, 24)
    truth = [i % 3 != 0 for i in range(24)]
    for i in range(4):
        gold_mark(candidate=candidates[i], answer=truth[i])
    candidates = list(Candidate.objects.filter(category=category).order_by("id"))
    honest = [_worker(f"honest{i}") for i in range(4)]
    spammer = _worker("always-yes")
    adversary = _worker("adversary")

    def answer_of(worker, i, true):
        if worker == spammer:
            return True
        if worker == adversary:
            return true if i < 4 else not true
        slip = honest.index(worker) * 5 + 4  # each honest worker errs once, on its own item
        return (not true) if i == slip else true

    _crowd_votes(candidates, truth, [*honest, spammer, adversary], answer_of)
    Candidate.objects.filter(gold__isnull=True).update(state="open", votes_needed=5)

    # when the re-aggregation runs
    run = consensus_reaggregate(trigger="manual")

    # then it saw every vote and decided every non-gold item as the truth has it
    assert (run.status, run.trigger, run.warm_start) == ("done", "manual", False)
    assert (run.items, run.votes, run.workers) == (24, 144, 6)
    states = dict(Candidate.objects.values_list("id", "state"))
    assert [states[c.pk] for c in candidates[4:]] == [
        "accepted" if t else "rejected" for t in truth[4:]
    ]
    assert run.changed == 20
    # and the spammer scores far below the honest workers and is paused with the reason
    profiles = {p.user_id: p for p in WorkerProfile.objects.all()}
    assert max(profiles[spammer.pk].spammer_score, 0) < 0.05
    assert min(profiles[w.pk].spammer_score for w in honest) > 0.5
    assert min(profiles[w.pk].em_accuracy for w in honest) > 0.85  # smoothed: 24 votes each
    assert (profiles[spammer.pk].paused, profiles[spammer.pk].pause_reason) == (
        True,
        PAUSE_SPAMMER,
    )
    assert profiles[adversary.pk].em_accuracy < 0.5
    assert (profiles[adversary.pk].paused, profiles[adversary.pk].pause_reason) == (
        True,
        PAUSE_DISAGREES,
    )
    assert not any(profiles[w.pk].paused for w in honest)
    assert profiles[spammer.pk].label_votes == 24

    # and a second run starts from the first one's worker matrices and changes nothing
    again = consensus_reaggregate()
    assert (again.status, again.warm_start, again.changed) == ("done", True, 0)
    assert again.iterations <= run.iterations
    assert ConsensusRun.objects.count() == 2


def test_reaggregation_with_no_votes_is_a_finished_empty_run():
    run = consensus_reaggregate()
    assert (run.status, run.items, run.votes, run.error) == ("done", 0, 0, "")


def _box(candidate, worker, coords, state="accepted") -> Box:
    x0, y0, x1, y1 = coords
    return Box.objects.create(
        candidate=candidate, worker=worker, x0=x0, y0=y0, x1=x1, y1=y1, state=state
    )


def test_box_verification_weighs_each_checker_by_reliability(category):
    [candidate] = _pool(category, 1)
    box = _box(candidate, _worker("drawer"), (10, 10, 50, 40), state="proposed")
    proven = _worker("proven", gold_seen=30, gold_correct=30)
    new = _worker("new")
    for worker, answer in ((proven, "no"), (new, "yes")):
        Vote.objects.create(
            worker=worker,
            task=_answered_task(worker, category, "verify_box"),
            kind="verify_box",
            question="box",
            candidate=candidate,
            box=box,
            answer=answer,
            seconds=2.0,
        )

    # one proven "no" outweighs one unknown "yes"
    assert box_accepted(box) is False


def test_boxes_of_several_drawers_are_fused_into_one_object_each(category):
    [candidate] = _pool(category, 1)
    drawers = [_worker(f"d{i}", gold_seen=8, gold_correct=7) for i in range(3)]  # 9/11 each
    _box(candidate, drawers[0], (10, 10, 30, 30))
    _box(candidate, drawers[1], (12, 10, 32, 30))
    _box(candidate, drawers[2], (11, 12, 31, 32))
    _box(candidate, drawers[2], (60, 40, 75, 55))  # a second object only one drawer saw

    objects = objects_fuse(candidate.pk)

    assert len(objects) == 2
    first, second = sorted(objects, key=lambda o: o.x0)
    assert [first.x0, first.y0, first.x1, first.y1] == pytest.approx([11, 32 / 3, 31, 92 / 3])
    assert (first.drawers, first.score) == (3, pytest.approx(1.0))
    assert [second.x0, second.y0, second.x1, second.y1] == [60, 40, 75, 55]
    assert (second.drawers, second.score) == (1, pytest.approx(1 / 3))
    # fusing again replaces, never duplicates
    objects_fuse(candidate.pk)
    assert ObjectBox.objects.filter(candidate=candidate).count() == 2


def test_only_one_reaggregation_runs_at_a_time():
    # given a run in progress
    running = ConsensusRun.objects.create(trigger="schedule", status="running")

    # when another is asked for, it is that one, and nothing new is written
    assert consensus_reaggregate(trigger="manual") == running
    assert ConsensusRun.objects.count() == 1

    # and once it has ended, runs go ahead
    ConsensusRun.objects.filter(pk=running.pk).update(status="failed")
    assert consensus_reaggregate(trigger="manual").status == "done"


def test_nobody_is_paused_on_a_class_they_have_hardly_seen(category, settings):
    # given a mostly-positive pool: 11 yes items and 1 no, four workers answering all of it
    # right, and one who always says yes
    settings.CROWDNET_GATE_SPAMMER_MIN_VOTES = 5
    settings.CROWDNET_GATE_SPAMMER_MIN_PER_CLASS = 5
    settings.CROWDNET_GATE_SPAMMER_SCORE = 0.1
    candidates = _pool(category, 12)
    truth = [i != 0 for i in range(12)]
    honest = [_worker(f"h{i}") for i in range(4)]
    always = _worker("always-yes")
    _crowd_votes(candidates, truth, [*honest, always], lambda w, i, t: True if w == always else t)

    # when the re-aggregation runs
    consensus_reaggregate()

    # then no one is paused: each saw about one "no" item, too few to judge a "no" row by,
    # and the model, shrinking that row towards the crowd's, reads him like the crowd
    assert not WorkerProfile.objects.filter(paused=True).exists()
    assert WorkerProfile.objects.get(user=always).spammer_score > 0.1

    # and without the per-class minimum he is judged on his own votes, and paused
    settings.CROWDNET_GATE_SPAMMER_MIN_PER_CLASS = 0
    consensus_reaggregate()
    assert list(WorkerProfile.objects.filter(paused=True).values_list("user", flat=True)) == [
        always.pk
    ]
