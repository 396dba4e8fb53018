"""Re-aggregation against live writers: it writes only the columns it owns, so answers,
gate and curator pauses, overrides and live decisions committed while it runs all stand."""

from __future__ import annotations

import math
import threading

import pytest
from django.db import connection, transaction

import labeling.services.reaggregation as reaggregation
from labeling.crowd.gates import GateSettings, WorkerRecord, pause_decision
from labeling.models import Candidate, MicroTask, WorkerProfile
from labeling.services.answers import answer_submit
from labeling.services.consensus import decision_override
from labeling.services.ingest import images_ingest
from labeling.services.microtasks import gold_mark, task_assign, worker_pause
from labeling.services.reaggregation import PAUSE_SPAMMER, consensus_reaggregate
from tests.factories import (
    UserFactory,
    image_bytes,
    label_votes_create,
    wait_until_a_query_waits_for_a_lock,
)

# 24 crowd items, every third one a "no"; the first 4 are control items
TRUTH = [i % 3 != 0 for i in range(24)]
GOLD = 4
# what answers, gates and curators write: none of it belongs to the re-aggregation
LIVE_COLUMNS = (
    "answered_tasks",
    "answered_items",
    "seconds_total",
    "streak",
    "last_answer_at",
    "gold_seen",
    "gold_correct",
    "gold_evidence",
    "gold_evidence_yes",
    "gold_evidence_no",
    "fast_evidence",
    "paused",
    "pause_reason",
    "pause_detail",
    "paused_at",
)


@pytest.fixture(autouse=True)
def _rules(settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_CONSENSUS_THRESHOLD = 0.95
    settings.CROWDNET_CONSENSUS_VOTE_CAP = 6
    settings.CROWDNET_CONSENSUS_PRIOR = 0.5
    settings.CROWDNET_GATE_SPAMMER_MIN_VOTES = 10
    settings.CROWDNET_GATE_SPAMMER_MIN_PER_CLASS = 5  # 8 of the 24 items are "no"
    # every answer is "too fast": each adds log(0.5 / 0.1) = 1.61 nats of speed evidence, and
    # at a 5 % false-pause budget the gate pauses at log(20) = 3.0, so on the second answer
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 1000.0
    settings.CROWDNET_GATE_FALSE_PAUSE = 0.05


def _worker(name: str):
    user = UserFactory(username=name)
    WorkerProfile.objects.create(
        user=user, answered_tasks=10, answered_items=40, seconds_total=100.0
    )
    return user


def _crowd(category, honest: list, spammer, adversary) -> list[Candidate]:
    """24 items (4 gold) that everyone answered: honest workers right, the spammer always yes,
    the adversary right on gold and wrong on the rest; each item wants its 5 votes."""
    files = [(f"{i}.jpg", image_bytes(7000 + i, size=(80, 60))) for i in range(len(TRUTH))]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    candidates = list(Candidate.objects.filter(category=category).order_by("id"))
    for candidate, true in zip(candidates[:GOLD], TRUTH, strict=False):
        gold_mark(candidate=candidate, answer=true)
    answers = {worker: TRUTH for worker in honest}
    answers[spammer] = [True] * len(TRUTH)
    answers[adversary] = [t if i < GOLD else not t for i, t in enumerate(TRUTH)]
    label_votes_create(candidates, answers, gold=GOLD)
    Candidate.objects.filter(pk__in=[c.pk for c in candidates[GOLD:]]).update(votes_needed=5)
    return candidates


def _live(user) -> dict[str, object]:
    return WorkerProfile.objects.filter(user=user).values(*LIVE_COLUMNS).get()


def _answer(worker, task: MicroTask, answer: str) -> None:
    answers = [{"item": str(item.uid), "answer": answer} for item in task.items.all()]
    answer_submit(worker=worker, task_uid=str(task.uid), answers=answers, client_token="")


@pytest.mark.django_db(transaction=True)
def test_answers_and_pauses_committed_during_a_run_all_stand(category, curator):
    # given a crowd the model knows (three honest workers, an always-yes spammer and an
    # adversary it would pause), fresh items in the pool, and leased tasks for x and y
    if connection.vendor != "postgresql":
        pytest.skip("threads with their own connections and row locks: PostgreSQL")
    x, y, w = _worker("x"), _worker("y"), _worker("w")  # x has the lowest id: written first
    spammer, adversary = _worker("spammer"), _worker("adversary")
    _crowd(category, [x, y, w], spammer, adversary)
    files = [(f"new{i}.jpg", image_bytes(7100 + i, size=(80, 60))) for i in range(4)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    task_x = task_assign(worker=x, kind="verify")
    tasks_y = [task_assign(worker=y, kind="verify") for _ in range(2)]
    locked, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    after: dict[str, dict] = {}
    runs = []

    def hold_x_then_answer() -> None:  # x's answer holds x's row while the run waits for it
        try:
            with transaction.atomic():
                WorkerProfile.objects.select_for_update().get(user=x)
                locked.set()
                go.wait()
                _answer(x, task_x, "yes")
                after["x"] = _live(x)
        except BaseException as error:
            errors.append(error)
        finally:
            locked.set()
            connection.close()

    def reaggregate() -> None:
        try:
            runs.append(consensus_reaggregate(trigger="manual"))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    holder, run = threading.Thread(target=hold_x_then_answer), threading.Thread(target=reaggregate)
    holder.start()
    locked.wait()

    # when the run has read every profile it will write and waits to write x's, y answers
    # twice (the second answer trips the speed gate), a curator pauses the adversary, and
    # then x's own answer commits
    run.start()
    wait_until_a_query_waits_for_a_lock("the re-aggregation")
    for task in tasks_y:
        _answer(y, task, "no")
    worker_pause(profile=WorkerProfile.objects.get(user=adversary), reason="Curator: a look.")
    after["y"], after["adversary"] = _live(y), _live(adversary)
    go.set()
    holder.join()
    run.join()

    # then the run finished, and every counter and pause written meanwhile is there
    assert errors == []
    assert runs[0].status == "done"
    assert _live(x) == after["x"]
    assert _live(y) == after["y"]
    assert _live(adversary) == after["adversary"]
    assert (after["x"]["answered_tasks"], after["x"]["answered_items"]) == (11, 41)
    assert (after["x"]["fast_evidence"], after["x"]["paused"]) == (
        pytest.approx(math.log(5)),
        False,
    )
    assert (after["y"]["answered_tasks"], after["y"]["answered_items"]) == (12, 42)
    fast = pause_decision(
        WorkerRecord(fast_evidence=2 * math.log(5)),
        GateSettings(min_seconds_per_item=1000.0, false_pause=0.05),
    )
    assert fast is not None
    assert (after["y"]["paused"], after["y"]["pause_reason"]) == (True, fast.reason)
    assert (after["adversary"]["paused"], after["adversary"]["pause_reason"]) == (
        True,
        "Curator: a look.",
    )
    # and the run wrote its own columns for everyone, pausing only the spammer it caught
    profiles = {p.user_id: p for p in WorkerProfile.objects.all()}
    assert [profiles[u.pk].label_votes for u in (x, y, w, spammer, adversary)] == [24] * 5
    assert min(profiles[u.pk].em_accuracy for u in (x, y, w)) > 0.85
    assert profiles[adversary.pk].em_accuracy < 0.5
    assert (profiles[spammer.pk].paused, profiles[spammer.pk].pause_reason) == (
        True,
        PAUSE_SPAMMER,
    )
    assert (profiles[w.pk].paused, profiles[w.pk].answered_tasks) == (False, 10)


@pytest.mark.django_db
def test_a_live_decision_an_override_and_a_new_control_item_during_a_run_stand(
    category, curator, monkeypatch
):
    # given the same crowd: item `live` still wants a sixth vote (the cap), `overridden` and
    # `control` were rejected live though the crowd's honest workers say yes, and `plain`
    # waits for the run to decide it
    honest = [_worker(name) for name in ("a", "b", "c")]
    candidates = _crowd(category, honest, _worker("spammer"), _worker("adversary"))
    live, overridden, control, plain = candidates[4], candidates[5], candidates[7], candidates[8]
    Candidate.objects.filter(pk=live.pk).update(votes_needed=6)
    Candidate.objects.filter(pk__in=[overridden.pk, control.pk]).update(state="rejected")
    latecomer = UserFactory(username="late")
    task = task_assign(worker=latecomer, kind="verify")
    assert [item.candidate_id for item in task.items.all()] == [live.pk]
    fit = reaggregation.dawid_skene
    seen: dict[str, dict] = {}
    columns = ("state", "posterior", "confidence", "votes_needed", "decided_at", "override")

    # when, while the run fits its model on the votes it read, the sixth vote on `live`
    # arrives (live consensus sends it to review at the cap), a curator confirms the
    # rejection of `overridden`, and `control` becomes a control item whose answer is "no"
    def fit_while_the_crowd_works(*args, **kwargs):
        result = fit(*args, **kwargs)
        _answer(latecomer, task, "yes")
        decision_override(candidate=overridden, accepted=False, by=curator)
        gold_mark(candidate=control, answer=False, by=curator)
        seen.update({c.pk: Candidate.objects.values(*columns).get(pk=c.pk) for c in candidates[4:]})
        return result

    monkeypatch.setattr(reaggregation, "dawid_skene", fit_while_the_crowd_works)
    run = consensus_reaggregate(trigger="manual")

    # then those three rows are as the live path and the curator left them
    assert run.status == "done"
    assert Candidate.objects.values(*columns).get(pk=live.pk) == seen[live.pk]
    assert (seen[live.pk]["state"], seen[live.pk]["votes_needed"]) == ("needs_review", 6)
    # odds 16 under the prior 1/2, judged as a yes under the category's share of yes among
    # its decisions then (2 accepted of 6, Beta(1, 1): 3/8, odds 3/5): odds 48/5
    assert seen[live.pk]["posterior"] == pytest.approx(48 / 53)
    assert Candidate.objects.values(*columns).get(pk=overridden.pk) == seen[overridden.pk]
    assert (seen[overridden.pk]["state"], seen[overridden.pk]["override"]) == ("rejected", False)
    assert Candidate.objects.values(*columns).get(pk=control.pk) == seen[control.pk]
    assert seen[control.pk]["state"] == "rejected"
    # and the run decided every other item as the truth has it
    states = dict(Candidate.objects.values_list("id", "state"))
    others = [i for i in range(GOLD, 24) if candidates[i] not in (live, overridden, control)]
    assert [states[candidates[i].pk] for i in others] == [
        "accepted" if TRUTH[i] else "rejected" for i in others
    ]
    assert states[plain.pk] == "accepted"
    assert run.changed == len(others)
