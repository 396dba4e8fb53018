"""The live answer path learns each worker from agreement with the crowd: a worker who answers
control items right and everything else wrong stops deciding items within a few votes, and the
decisions his votes made are taken again without him."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from django.db.models import F

from labeling.crowd.gates import ONE_ANSWER_REASON, PEER_REASON, PEER_TESTS
from labeling.models import PEER_PENDING, Candidate, TaskItem, Vote, WorkerProfile
from labeling.services.answers import answer_submit
from labeling.services.category_priors import category_decided_priors
from labeling.services.consensus import candidates_decide, worker_decisions_reopen
from labeling.services.microtasks import task_assign, worker_pause
from labeling.services.worker_coins import informative, worker_coins
from labeling.tasks import commit_hooks_sweep
from tests.factories import UserFactory, candidate_pool, label_votes_create, worker_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("live_rules")]

DECIDED = ("accepted", "rejected")


def _pool(category, count: int) -> list[Candidate]:
    return candidate_pool(category, count, seed=5000)


def _worker(name: str, *, gold_seen: int, gold_correct: int):
    user = UserFactory(username=name)
    WorkerProfile.objects.create(user=user, gold_seen=gold_seen, gold_correct=gold_correct)
    return user


def _answer(worker, said_yes: bool, capture) -> int | None:
    """One verify task answered, its commit hooks run as they would in production; the
    candidate's id, or None when the pool has nothing for him."""
    task = task_assign(worker=worker, kind="verify")
    if task is None:
        return None
    [item] = task.items.all()
    answer = "yes" if said_yes(item.candidate_id) else "no"
    with capture(execute=True):
        answer_submit(
            worker=worker,
            task_uid=str(task.uid),
            answers=[{"item": str(item.uid), "answer": answer}],
            client_token="",
        )
    return item.candidate_id


def _answer_through_the_api(client, said_yes, capture) -> int | None:
    """The same through the worker API (GET the next task, POST its answer); None when the
    pool has nothing for him."""
    response = client.get("/api/tasks/next/?kind=verify")
    if response.status_code == 204:
        return None
    [item] = response.json()["items"]
    candidate_id = TaskItem.objects.get(uid=item["id"]).candidate_id
    answer = "yes" if said_yes(candidate_id) else "no"
    with capture(execute=True):
        posted = client.post(
            f"/api/tasks/{response.json()['id']}/answer/",
            {"answers": [{"item": item["id"], "answer": answer}], "client_token": ""},
            format="json",
        )
    assert posted.status_code == 201
    return candidate_id


def _states() -> dict[int, str]:
    return dict(Candidate.objects.values_list("id", "state"))


def test_an_adversary_with_a_perfect_control_record_is_caught_paused_and_his_decisions_reopened(
    category, django_capture_on_commit_callbacks
):
    # given 40 items (seeded truth), six honest workers right 80 % of the time with a 9-of-10
    # control record, and an adversary who got all 20 controls right and answers the rest wrong
    rng = np.random.default_rng(3)
    candidates = _pool(category, 40)
    truth = {c.pk: bool(rng.random() < 0.5) for c in candidates}
    honest = [_worker(f"h{i}", gold_seen=10, gold_correct=9) for i in range(6)]
    client, adversary = worker_client("adversary")
    WorkerProfile.objects.create(user=adversary, gold_seen=20, gold_correct=20)

    def lies(pk: int) -> bool:
        return not truth[pk]

    def tells(pk: int) -> bool:
        return truth[pk] if rng.random() < 0.8 else not truth[pk]

    # when they answer in turn, the adversary first in every round (through the worker API)
    # while he may, until the pool is done
    ever_decided_wrong: set[int] = set()
    reopened: set[int] = set()
    before = _states()
    caught_after = paused_after = None
    for _ in range(200):
        answered = None
        if paused_after is None:
            answered = _answer_through_the_api(client, lies, django_capture_on_commit_callbacks)
        for worker in honest:
            answered = _answer(worker, tells, django_capture_on_commit_callbacks) or answered
        states = _states()
        reopened |= {pk for pk, s in states.items() if before[pk] in DECIDED and s != before[pk]}
        before = states
        ever_decided_wrong |= {
            pk for pk, s in states.items() if s in DECIDED and (s == "accepted") != truth[pk]
        }
        cast = Vote.objects.filter(worker=adversary, counted=True).count()
        if caught_after is None and not informative(*worker_coins([adversary.pk])[adversary.pk]):
            caught_after = cast
        if paused_after is None and WorkerProfile.objects.get(user=adversary).paused:
            paused_after = cast
        if answered is None:
            break

    # then the peer-agreement gate paused him after 11 label votes, 9 of them credited (his
    # coins had fallen at 11 before the gate existed); he is told the reason only, curators
    # get the evidence: the coin test, 9 disagreements of about 0.78 nats each, reached
    # log(2 / 0.003) (the gate's own budget)
    position = {c.pk: i for i, c in enumerate(candidates)}
    assert (caught_after, paused_after) == (11, 11)
    assert Vote.objects.filter(worker=adversary, counted=True).count() == 11
    profile = WorkerProfile.objects.get(user=adversary)
    assert profile.pause_reason == PEER_REASON
    refused = client.get("/api/tasks/next/?kind=verify")
    assert (refused.status_code, refused.json()) == (
        403,
        {"detail": f"Your account is paused: {PEER_REASON}"},
    )
    assert profile.pause_detail == (
        "Crowd agreement: 0.2 of 9.0 credited label votes agreed with the crowd's call. "
        "Evidence (nats, pause at 6.50 / 7.20): all 6.96, yes items 6.60, no items 5.31 "
        "(bar 80%, call at most 95% sure)."
    )
    # and the item he had pushed to a wrong decision was taken again; no decided item changed
    # state otherwise (honest decisions stand) and none stays wrong; four items the six honest
    # workers split on wait for a seventh vote that only he could still give (three while
    # reopening took back no credits: the honest workers' coins kept the adversary's calls)
    assert sorted(position[pk] for pk in ever_decided_wrong) == [0]
    assert sorted(position[pk] for pk in reopened) == [0]
    states = _states()
    assert not {pk for pk, s in states.items() if s in DECIDED and (s == "accepted") != truth[pk]}
    assert Counter(states.values()) == {
        "accepted": 16,
        "rejected": 17,
        "needs_review": 3,
        "open": 4,
    }


def test_reopening_takes_again_only_the_decisions_a_discredited_worker_carried(category):
    # given an adversary with a perfect control record and two honest workers right on 10 of 10
    # controls, and three items they decided together: the first only thanks to the adversary,
    # the second with the honest pair on his side, the third settled by a curator
    first, second, third = _pool(category, 3)
    adversary = _worker("adversary", gold_seen=20, gold_correct=20)
    honest = [_worker(f"h{i}", gold_seen=10, gold_correct=10) for i in range(2)]
    label_votes_create(
        [first, second, third],
        {
            adversary: [True, True, True],
            honest[0]: [True, True, False],
            honest[1]: [False, True, True],
        },
    )
    Candidate.objects.update(state="accepted", posterior=0.99, votes_needed=3)
    Candidate.objects.filter(pk=third.pk).update(override=True)
    # when the crowd has outvoted the adversary on 12 items of each class
    WorkerProfile.objects.filter(user=adversary).update(
        peer_yes_items=12.0, peer_yes_said_yes=0.0, peer_no_items=12.0, peer_no_said_no=0.0
    )
    changed = worker_decisions_reopen(worker_id=adversary.pk)

    # then the first item is open again and waits for a fourth vote (one yes, one no of equal
    # weight: P(yes) 1/2); the second stands on the honest pair (odds 12 * 12); the curator's
    # stands untouched
    assert changed == 1
    rows = {
        c.pk: (c.state, c.votes_needed, c.decided_at, round(c.posterior, 6))
        for c in Candidate.objects.all()
    }
    assert rows == {
        first.pk: ("open", 4, None, 0.5),
        second.pk: ("accepted", 3, None, round(144 / 145, 6)),
        third.pk: ("accepted", 3, None, 0.99),
    }
    assert worker_decisions_reopen(worker_id=adversary.pk) == 0


def _peer(worker) -> tuple[float, ...]:
    fields = ("peer_yes_items", "peer_yes_said_yes", "peer_no_items", "peer_no_said_no")
    row = WorkerProfile.objects.filter(user=worker).values_list(*fields).get()
    return tuple(round(value, 6) for value in row)


def test_a_reopened_item_decided_again_credits_each_vote_once(
    category, django_capture_on_commit_callbacks
):
    # given an adversary with a perfect control record (coins 22/23) and four honest workers
    # right on 10 of 10 controls (12/13), and one item the adversary and h0 call yes and h1 no:
    # accepted at odds 22, h1 credited with what the other two said (odds 22 * 12: P 264/265)
    [item] = _pool(category, 1)
    adversary = _worker("adversary", gold_seen=20, gold_correct=20)
    honest = [_worker(f"h{i}", gold_seen=10, gold_correct=10) for i in range(4)]
    label_votes_create([item], {adversary: [True], honest[0]: [True], honest[1]: [False]})
    with django_capture_on_commit_callbacks(execute=True):
        assert candidates_decide([item.pk]) == 1
    assert Candidate.objects.get(pk=item.pk).state == "accepted"
    assert _peer(honest[1]) == (round(264 / 265, 6), 0.0, round(1 / 265, 6), round(1 / 265, 6))

    # when the adversary is found out, the item reopens (P(yes) 0.77 without him; the credits
    # it gave are taken back, so h1's coins are 12/13 again), and h2 and h3 say yes, which
    # decides it again
    WorkerProfile.objects.filter(user=adversary).update(
        peer_yes_items=12.0, peer_yes_said_yes=0.0, peer_no_items=12.0, peer_no_said_no=0.0
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert worker_decisions_reopen(worker_id=adversary.pk) == 1
    assert Candidate.objects.get(pk=item.pk).state == "open"
    assert _peer(honest[1]) == (0.0, 0.0, 0.0, 0.0)
    label_votes_create([item], {honest[2]: [True], honest[3]: [True]})
    Candidate.objects.filter(pk=item.pk).update(yes_votes=4, no_votes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert candidates_decide([item.pk]) == 1

    # then the item is accepted again and h1's record holds his vote once, with what the
    # other votes say now (h0, h2 and h3 yes, the adversary weightless: odds 12 ** 3), not the
    # first decision's credit on top of it
    assert Candidate.objects.get(pk=item.pk).state == "accepted"
    assert _peer(honest[1]) == (
        round(1728 / 1729, 6),
        0.0,
        round(1 / 1729, 6),
        round(1 / 1729, 6),
    )


def _evidence(worker) -> tuple[float, ...]:
    row = WorkerProfile.objects.filter(user=worker).values_list(*PEER_TESTS).get()
    return tuple(round(value, 6) for value in row)


def test_an_item_reopened_without_a_discredited_worker_withdraws_the_credits_it_gave(
    category, django_capture_on_commit_callbacks
):
    # given the item of the test above: accepted on the adversary's and h0's yes, h1 credited
    # for his no against P(yes) 264/265 (taken 0.95 sure by the peer gate)
    [item] = _pool(category, 1)
    adversary = _worker("adversary", gold_seen=20, gold_correct=20)
    honest = [_worker(f"h{i}", gold_seen=10, gold_correct=10) for i in range(2)]
    label_votes_create([item], {adversary: [True], honest[0]: [True], honest[1]: [False]})
    with django_capture_on_commit_callbacks(execute=True):
        assert candidates_decide([item.pk]) == 1
    contradicted = _evidence(honest[1])
    assert contradicted == (
        round(math.log(0.5 / (1 - 0.95 * 0.8 - 0.05 * 0.2)), 6),  # a coin, against the bar
        round(math.log((1 - 0.95 * 0.1) / (1 - 0.95 * 0.8)), 6),  # the crowd called yes
        0.0,
    )

    # when the adversary is found out and the item goes back to open (P(yes) 0.77 without him)
    WorkerProfile.objects.filter(user=adversary).update(
        peer_yes_items=12.0, peer_yes_said_yes=0.0, peer_no_items=12.0, peer_no_said_no=0.0
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert worker_decisions_reopen(worker_id=adversary.pk) == 1
    assert Candidate.objects.get(pk=item.pk).state == "open"

    # then the call he was credited against is gone, and so are its counts and evidence: no
    # vote on the item keeps a credit while it waits for its next decision
    assert _peer(honest[1]) == (0.0, 0.0, 0.0, 0.0)
    assert _evidence(honest[1]) == (0.0, 0.0, 0.0)
    assert list(Vote.objects.filter(candidate=item).values_list("peer_p_yes", flat=True)) == [
        None,
        None,
        None,
    ]


def test_a_decision_that_stands_without_a_discredited_worker_is_credited_anew(
    category, django_capture_on_commit_callbacks
):
    # given an item the adversary and two honest workers call yes and a third honest one no:
    # accepted, and h2 credited for his no against the others' odds 22 * 12 * 12
    [item] = _pool(category, 1)
    adversary = _worker("adversary", gold_seen=20, gold_correct=20)
    honest = [_worker(f"h{i}", gold_seen=10, gold_correct=10) for i in range(3)]
    label_votes_create(
        [item], {adversary: [True], honest[0]: [True], honest[1]: [True], honest[2]: [False]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert candidates_decide([item.pk]) == 1
    first = 22 * 144
    assert _peer(honest[2]) == (
        round(first / (first + 1), 6),
        0.0,
        round(1 / (first + 1), 6),
        round(1 / (first + 1), 6),
    )

    # when the adversary is found out: the item stands on h0's and h1's yes
    WorkerProfile.objects.filter(user=adversary).update(
        peer_yes_items=12.0, peer_yes_said_yes=0.0, peer_no_items=12.0, peer_no_said_no=0.0
    )
    coins = worker_coins([adversary.pk, honest[0].pk, honest[1].pk])
    assert not informative(*coins[adversary.pk])
    odds = math.prod(s / (1 - c) for s, c in (coins[honest[0].pk], coins[honest[1].pk]))
    with django_capture_on_commit_callbacks(execute=True):
        assert worker_decisions_reopen(worker_id=adversary.pk) == 0
    assert Candidate.objects.get(pk=item.pk).state == "accepted"

    # then h2's vote is credited with what the others say now: the adversary weightless, h0
    # and h1 at their coins now (each yes odds 10.8 after this item's first credit, 116.6
    # together), not with the call the adversary had made surer
    assert round(odds, 1) == 116.6
    assert _peer(honest[2]) == (0.991499, 0.0, 0.008501, 0.008501)
    assert _peer(honest[2]) == tuple(
        round(v, 6) for v in (odds / (odds + 1), 0.0, 1 / (odds + 1), 1 / (odds + 1))
    )
    assert Vote.objects.get(candidate=item, worker=honest[2]).peer_p_yes == pytest.approx(
        odds / (odds + 1), rel=1e-9
    )


@pytest.mark.parametrize(
    ("rejected", "state", "votes_needed", "posterior"),
    [
        # no decision yet in the category: P(yes) learnt 1/2, the prior stands (odds 12 ** 3)
        (0, "accepted", 3, 1728 / 1729),
        # 9 of 9 decisions no: P(yes) learnt 1/11 (odds 1/10), so the yes is judged at odds
        # 172.8 (P 0.9942 < 0.995) and the item waits for a fourth vote
        (9, "open", 4, 1728 / 1738),
    ],
)
def test_a_category_whose_decisions_are_mostly_no_asks_more_evidence_for_a_yes(
    category, settings, rejected, state, votes_needed, posterior
):
    # given a category with `rejected` rejected items, and an item three workers right on 10
    # of 10 controls (coins 12/13) call yes, at the platform's threshold 0.995
    settings.CROWDNET_CONSENSUS_THRESHOLD = 0.995
    *others, item = _pool(category, 10)
    Candidate.objects.filter(pk__in=[c.pk for c in others[:rejected]]).update(state="rejected")
    workers = [_worker(f"w{i}", gold_seen=10, gold_correct=10) for i in range(3)]
    label_votes_create([item], {worker: [True] for worker in workers})

    # when the live path decides it
    decided = candidates_decide([item.pk])

    # then it is accepted only where the category's decisions leave yes plausible
    row = Candidate.objects.get(pk=item.pk)
    assert (decided, row.state, row.votes_needed) == (int(state == "accepted"), state, votes_needed)
    assert row.posterior == pytest.approx(posterior, rel=1e-9)
    assert Candidate.objects.filter(state="rejected").count() == rejected


def test_a_category_past_the_count_cap_has_its_prior_learnt_from_capped_counts(category):
    # given 6 rejected and 2 accepted candidates
    candidates = _pool(category, 8)
    Candidate.objects.filter(pk__in=[c.pk for c in candidates[:6]]).update(state="rejected")
    Candidate.objects.filter(pk__in=[c.pk for c in candidates[6:]]).update(state="accepted")

    # when the prior is learnt with at most 4 decisions counted per side, then it counts 2
    # accepted of 2 + 4: (2 + 1) / (6 + 2); under the default cap, 2 of 8: (2 + 1) / (8 + 2)
    assert category_decided_priors({category.pk}, cap=4) == {category.pk: 3 / 8}
    assert category_decided_priors({category.pk}) == {category.pk: 3 / 10}


def _carried(decided: Candidate, name: str):
    """``decided`` accepted on the yes of a worker with a perfect control record (coins 22/23)
    against two honest ones right on 10 of 10 controls (12/13) who split (odds 22); the
    worker."""
    carrier = _worker(name, gold_seen=20, gold_correct=20)
    honest = [_worker(f"h{i}", gold_seen=10, gold_correct=10) for i in range(2)]
    label_votes_create([decided], {carrier: [True], honest[0]: [True], honest[1]: [False]})
    Candidate.objects.filter(pk=decided.pk).update(state="accepted", votes_needed=3)
    return carrier


def test_a_worker_paused_by_a_gate_weighs_nothing_and_his_decisions_are_taken_again(
    category, settings, django_capture_on_commit_callbacks
):
    # given an item accepted on one worker's vote (_carried), and one more open item; the
    # worker's speed evidence is one fast task short of a pause
    # (3.5 nats + log(0.5 / 0.1) = 5.11 >= log(100) = 4.61)
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 1000.0  # every answer is fast
    decided, _ = _pool(category, 2)
    fast = _carried(decided, "fast")
    WorkerProfile.objects.filter(user=fast).update(fast_evidence=3.5)

    # when he answers the open item too fast and the gate pauses him
    answered = _answer(fast, lambda pk: True, django_capture_on_commit_callbacks)

    # then his coins read as a coin's, and the accepted item, which stood on his vote, is open
    # again (one yes against one no of equal weight: P(yes) 1/2), waiting for a fourth vote
    assert answered != decided.pk
    assert WorkerProfile.objects.get(user=fast).paused is True
    assert worker_coins([fast.pk]) == {fast.pk: (0.5, 0.5)}
    row = Candidate.objects.get(pk=decided.pk)
    assert (row.state, row.votes_needed, row.decided_at, row.posterior) == ("open", 4, None, 0.5)


def test_a_worker_paused_by_a_curator_has_his_decisions_taken_again(
    category, django_capture_on_commit_callbacks
):
    # given an item accepted on one worker's vote
    [decided] = _pool(category, 1)
    carrier = _carried(decided, "carrier")

    # when a curator pauses him
    with django_capture_on_commit_callbacks(execute=True):
        worker_pause(profile=WorkerProfile.objects.get(user=carrier), reason="A look.")

    # then the item is open again without his weight
    row = Candidate.objects.get(pk=decided.pk)
    assert (row.state, row.votes_needed, row.posterior) == ("open", 4, 0.5)


def test_the_answer_path_pauses_a_worker_who_says_yes_whatever_the_crowd_decides(
    category, django_capture_on_commit_callbacks
):
    # given a category with 10 rejected items (the share of yes taken as 1/2), and a worker
    # one "yes" short of the one-answer gate: 5.1 + log(0.95 / 0.75) = 5.34 >= log(200) = 5.30
    candidates = _pool(category, 12)
    Candidate.objects.filter(pk__in=[c.pk for c in candidates[:10]]).update(state="rejected")
    clicker = _worker("clicker", gold_seen=0, gold_correct=0)
    WorkerProfile.objects.filter(user=clicker).update(said_yes_evidence=5.1)

    # when he says yes once more
    _answer(clicker, lambda pk: True, django_capture_on_commit_callbacks)

    # then he is paused for it; his "no" evidence is untouched (the share of no, 11/12 plus
    # two deviations, is capped at 1: no test)
    profile = WorkerProfile.objects.get(user=clicker)
    assert (profile.paused, profile.pause_reason) == (True, ONE_ANSWER_REASON)
    assert profile.said_yes_evidence == pytest.approx(5.1 + math.log(0.95 / 0.75))
    assert profile.said_no_evidence == 0.0


def test_a_newcomer_in_a_weak_crowd_reads_as_right_as_the_crowd():
    # given a crowd whose control record is 60 of 100 right, and a worker with none of his own
    _worker("w0", gold_seen=60, gold_correct=30)
    _worker("w1", gold_seen=40, gold_correct=30)
    newcomer = _worker("new", gold_seen=0, gold_correct=0)

    # then a newcomer's coins are (60 + 2) / (100 + 3), not 2/3, and a worker with no profile
    # at all reads the same
    stranger = UserFactory(username="stranger")
    coins = worker_coins([newcomer.pk, stranger.pk])
    assert coins[newcomer.pk] == pytest.approx((62 / 103, 62 / 103), rel=1e-12)
    assert coins[stranger.pk] == pytest.approx((62 / 103, 62 / 103), rel=1e-12)


def _credited(worker) -> tuple[float, ...]:
    fields = ("peer_yes_items", "peer_yes_said_yes", "peer_no_items", "peer_no_said_no")
    return WorkerProfile.objects.filter(user=worker).values_list(*fields, *PEER_TESTS).get()


def test_credits_a_killed_process_never_added_are_added_once_by_the_sweep(
    category, django_capture_on_commit_callbacks, settings
):
    # given the decision of the test above (h1 credited with P(yes) 264/265 from the others)
    # made twice: on one item whose answer's commit hook runs, and on another whose process is
    # killed once the answer commits, before its hook runs
    first, second = _pool(category, 2)
    adversary = _worker("adversary", gold_seen=20, gold_correct=20)
    honest = [_worker(f"h{i}", gold_seen=10, gold_correct=10) for i in range(2)]
    said = {adversary: [True, True], honest[0]: [True, True], honest[1]: [False, False]}
    label_votes_create([first, second], said)
    with django_capture_on_commit_callbacks(execute=True):
        assert candidates_decide([first.pk]) == 1
    once = _credited(honest[1])
    with django_capture_on_commit_callbacks(execute=False) as lost:
        assert candidates_decide([second.pk]) == 1
    assert len(lost) == 1
    assert _credited(honest[1]) == once
    assert list(Vote.objects.filter(PEER_PENDING).values_list("worker_id", "candidate_id")) == [
        (honest[1].pk, second.pk)
    ]

    # when beat's sweep runs, twice
    with django_capture_on_commit_callbacks(execute=True):
        commit_hooks_sweep()
        commit_hooks_sweep()

    # then h1's record holds the second credit exactly once: twice the first's counts and
    # evidence (no floor reached), and nothing is left pending
    twice = tuple(2 * value for value in once)
    assert _credited(honest[1]) == twice
    assert tuple(round(value, 6) for value in once[:4]) == (
        round(264 / 265, 6),
        0.0,
        round(1 / 265, 6),
        round(1 / 265, 6),
    )
    assert not Vote.objects.filter(PEER_PENDING).exists()

    # and the lost hook, run late after all, adds nothing; beat runs the sweep every five
    # minutes
    with django_capture_on_commit_callbacks(execute=True):
        lost[0]()
    assert _credited(honest[1]) == twice
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["labeling.tasks.commit_hooks_sweep"] == 300.0


@pytest.mark.parametrize("paused_by", ["curator", "gate"])
def test_a_pause_whose_commit_hook_never_ran_has_its_decisions_taken_again_by_the_sweep(
    paused_by, category, settings, django_capture_on_commit_callbacks
):
    # given an item accepted on one worker's vote, and that worker paused by a curator or by
    # the speed gate (as above), the process killed once the pause commits, before its hook
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 1000.0
    decided, _ = _pool(category, 2)
    carrier = _carried(decided, "carrier")
    WorkerProfile.objects.filter(user=carrier).update(fast_evidence=3.5)
    with django_capture_on_commit_callbacks(execute=False) as lost:
        if paused_by == "curator":
            worker_pause(profile=WorkerProfile.objects.get(user=carrier), reason="A look.")
        else:
            task = task_assign(worker=carrier, kind="verify")
            [item] = task.items.all()
            answer_submit(
                worker=carrier,
                task_uid=str(task.uid),
                answers=[{"item": str(item.uid), "answer": "yes"}],
                client_token="",
            )
    assert lost and WorkerProfile.objects.get(user=carrier).paused is True
    assert Candidate.objects.get(pk=decided.pk).state == "accepted"

    # when beat's sweep runs within the grace minute, then once it has passed
    with django_capture_on_commit_callbacks(execute=True):
        commit_hooks_sweep()
    early = Candidate.objects.get(pk=decided.pk).state
    WorkerProfile.objects.filter(user=carrier).update(
        recheck_due=F("recheck_due") - timedelta(minutes=2)
    )
    with django_capture_on_commit_callbacks(execute=True):
        commit_hooks_sweep()

    # then the first leaves the recheck to the hook, the second takes the decision again
    # without his weight, and nothing more is due
    row = Candidate.objects.get(pk=decided.pk)
    assert (early, row.state, row.votes_needed, row.posterior) == ("accepted", "open", 4, 0.5)
    assert WorkerProfile.objects.get(user=carrier).recheck_due is None
