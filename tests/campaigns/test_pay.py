"""Pay: the review (approve, or reject on a gate's evidence with its reason), the ledger it
writes, the campaign summary and the marketplace CSV files, checked against the answers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from campaigns.models import Assignment, Campaign, LedgerEntry
from campaigns.services.pay import AssignmentRecord, bonus_cents, campaign_review
from labeling.models import Candidate, TaskItem
from labeling.services.consensus import decision_override
from labeling.services.microtasks import gold_mark, worker_pause, worker_profile
from tests.campaigns.conftest import MTURK_WORKER, answer_all, enter, mturk_params, open_campaign
from tests.factories import candidate_pool

pytestmark = pytest.mark.django_db

BOB = "A9Z9Z9Z9Z9Z9Z9"
A1, B1, H1 = (
    "3AAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
    "3BBBBBBBBBBBBBBBBBBBBBBBBBBBB1",
    "3HHHHHHHHHHHHHHHHHHHHHHHHHHHH1",
)


def _arrive(campaign, params) -> tuple[Client, str]:
    client, response = enter(campaign, params)
    assert response.status_code == 302
    return client, response["Location"].split("/")[-2]


def _grid(client: Client, uid: str, *, pool: bool, control_right: bool) -> None:
    """Answer one grid: every pool cell ``pool``; the control cell right or wrong."""
    task = client.get(f"/api/campaigns/assignments/{uid}/next/").json()
    cells = {str(i.uid): i for i in TaskItem.objects.filter(task__uid=task["id"])}
    answers = []
    for item in task["items"]:
        cell = cells[item["id"]]
        selected = cell.control_answer == control_right if cell.is_gold else pool
        answers.append({"item": item["id"], "selected": selected})
    response = client.post(
        f"/api/tasks/{task['id']}/answer/",
        {"answers": answers, "client_token": "g"},
        content_type="application/json",
    )
    assert response.status_code == 201


def _claim(client: Client, slug: str, uid: str) -> None:
    assert client.get(f"/api/campaigns/assignments/{uid}/next/").status_code == 204
    code = Assignment.objects.get(uid=uid).completion_code
    assert client.post(f"/c/{slug}/a/{uid}/claim/", {"code": code}).status_code in (200, 302)


def test_ledger_summary_and_csv_follow_the_answers(curator, category, curator_api, settings):
    # given a grid campaign (two pool cells and one control cell a grid), 5 c a task and
    # 2 c a accepted answer, over four open items and two control items
    settings.CROWDNET_GRID_SIZE = 3
    pool = candidate_pool(category, 6, seed=900)
    gold_mark(candidate=pool[4], answer=True)
    gold_mark(candidate=pool[5], answer=False)
    campaign = open_campaign(
        curator, [category], kinds=["grid"], tasks_per_assignment=1,
        bonus_rule="per_accepted", bonus_cents=2,
    )  # fmt: skip
    alice, a_uid = _arrive(campaign, mturk_params())
    bob, b_uid = _arrive(campaign, mturk_params(worker=BOB, assignment=B1))

    # when Alice selects both pool cells and gets the control right, Bob selects neither and
    # gets it wrong (so his answers don't count), both claim, and a curator decides the two
    # items: the first accepted, the second rejected
    _grid(alice, a_uid, pool=True, control_right=True)
    _grid(bob, b_uid, pool=False, control_right=False)
    _claim(alice, "cats", a_uid)
    _claim(bob, "cats", b_uid)
    voted = sorted(
        TaskItem.objects.filter(
            task__worker__external_worker__external_id=MTURK_WORKER, is_gold=False
        ).values_list("candidate_id", flat=True)
    )
    assert len(voted) == 2
    first, second = (Candidate.objects.get(pk=pk) for pk in voted)
    decision_override(candidate=first, accepted=True, by=curator)
    decision_override(candidate=second, accepted=False, by=curator)
    review = campaign_review(campaign=campaign)

    # then both are approved; Alice earns 5 + 2 (one accepted answer), Bob 5
    assert (review.approved, review.rejected) == (2, 0)
    entries = list(
        LedgerEntry.objects.order_by("id").values_list(
            "worker__external_id", "kind", "amount_cents", "tasks", "accepted_answers",
            "control_seen", "control_correct", "note",
        )
    )  # fmt: skip
    assert entries == [
        (MTURK_WORKER, "base", 5, 1, 1, 1, 1, "1 tasks at 5 c"),
        (MTURK_WORKER, "bonus", 2, 1, 1, 1, 1, "1 accepted answers"),
        (BOB, "base", 5, 1, 0, 1, 0, "1 tasks at 5 c"),
    ]
    summary = curator_api.get("/api/campaigns/cats/summary/").json()
    assert summary == {
        "assignments": {"working": 0, "finished": 0, "submitted": 0, "approved": 2, "rejected": 0},
        "tasks_answered": 2,
        "base_cents": 10,
        "bonus_cents": 2,
        "spent_cents": 12,
        "accepted_labels": 1,
        "cents_per_accepted_label": "12.00",
        "workers": [
            {"external_id": MTURK_WORKER, "username": summary["workers"][0]["username"],
             "assignments": 1, "tasks": 1, "base_cents": 5, "bonus_cents": 2, "total_cents": 7},
            {"external_id": BOB, "username": summary["workers"][1]["username"],
             "assignments": 1, "tasks": 1, "base_cents": 5, "bonus_cents": 0, "total_cents": 5},
        ],
    }  # fmt: skip
    bonus_id = LedgerEntry.objects.get(kind="bonus").pk
    assert _csv(curator_api, "mturk-review") == (
        "AssignmentId,HITId,WorkerId,Approve,Reject\n"
        f"{A1},{H1},{MTURK_WORKER},x,\n"
        f"{B1},{H1},{BOB},x,\n"
    )
    assert _csv(curator_api, "mturk-bonus") == (
        "WorkerId,AssignmentId,BonusAmount,Reason,UniqueRequestToken\n"
        f"{MTURK_WORKER},{A1},0.02,Cats on MTurk: 1 accepted answers,crowdnet-{bonus_id}\n"
    )
    ledger = curator_api.get("/api/campaigns/cats/ledger/").json()
    assert [(e["worker"], e["kind"], e["amount"]) for e in ledger["results"]] == [
        (MTURK_WORKER, "base", "0.05"),
        (MTURK_WORKER, "bonus", "0.02"),
        (BOB, "base", "0.05"),
    ]
    # and a second review pays nobody twice
    assert campaign_review(campaign=campaign) == type(review)(0, 0)
    assert LedgerEntry.objects.count() == 3


def _csv(client, name: str) -> str:
    response = client.get(f"/api/campaigns/cats/exports/{name}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    return response.content.decode()


def test_a_gate_pause_rejects_with_its_reason_and_a_curator_pause_does_not(
    curator, category, curator_api, settings
):
    # given a verify campaign of one task an assignment, and a speed floor nobody meets: the
    # speed gate pauses a worker at the third fast task (3 x ln 5 = 4.83 >= ln 100 = 4.61)
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 1000.0
    candidate_pool(category, 6, seed=920)
    campaign = open_campaign(curator, [category], tasks_per_assignment=1)
    fast, uids = None, []
    for n in (1, 2, 3):
        fast, uid = _arrive(campaign, mturk_params(assignment=f"3AAAAAAAAAAAAAAAAAAAAAAAAAAAA{n}"))
        task = fast.get(f"/api/campaigns/assignments/{uid}/next/").json()
        assert answer_all(fast, task, token=f"t{n}").status_code == 201
        uids.append(uid)
        if n < 3:
            _claim(fast, "cats", uid)
    assert fast.get(f"/api/campaigns/assignments/{uids[2]}/next/").status_code == 403
    calm, calm_uid = _arrive(campaign, mturk_params(worker=BOB, assignment=B1))
    assert (
        answer_all(
            calm, calm.get(f"/api/campaigns/assignments/{calm_uid}/next/").json()
        ).status_code
        == 201
    )
    _claim(calm, "cats", calm_uid)
    worker_pause(
        profile=worker_profile(Assignment.objects.get(uid=calm_uid).worker.user), reason="Checking."
    )

    response = curator_api.post("/api/campaigns/cats/review/")

    # then the paused-by-gate worker's two submitted assignments are rejected with the gate's
    # reason and evidence, the unfinished third is left alone, and the curator's pause alone
    # rejects nothing
    assert response.json() == {"approved": 1, "rejected": 2}
    rows = list(
        Assignment.objects.order_by("id").values_list("external_id", "state", "reject_reason")
    )
    assert [row[:2] for row in rows] == [
        ("3AAAAAAAAAAAAAAAAAAAAAAAAAAAA1", "rejected"),
        ("3AAAAAAAAAAAAAAAAAAAAAAAAAAAA2", "rejected"),
        ("3AAAAAAAAAAAAAAAAAAAAAAAAAAAA3", "working"),
        (B1, "approved"),
    ]
    reason = rows[0][2]
    assert reason.startswith(
        "Too many of your recent tasks were answered faster than 1000 s per image."
    )
    assert "Speed evidence 4.83 nats reached 4.61" in reason
    assert list(LedgerEntry.objects.values_list("worker__external_id", "amount_cents")) == [
        (BOB, 5)
    ]
    lines = _csv(curator_api, "mturk-review").splitlines()
    assert lines[0] == "AssignmentId,HITId,WorkerId,Approve,Reject"
    assert lines[1].startswith(f"3AAAAAAAAAAAAAAAAAAAAAAAAAAAA1,{H1},{MTURK_WORKER},,Too many")
    assert lines[3] == f"{B1},{H1},{BOB},x,"
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("seen", "right", "expected"),
    [(5, 4, 30), (5, 5, 30), (5, 3, 0), (0, 0, 0), (3, 2, 0)],
)
def test_the_accuracy_rule_pays_at_or_above_the_threshold(seen, right, expected):
    campaign = Campaign(bonus_rule="accuracy", bonus_cents=30, bonus_threshold=Decimal("0.8"))

    amount, _ = bonus_cents(
        campaign, AssignmentRecord(tasks=5, accepted=0, control_seen=seen, control_correct=right)
    )

    assert amount == expected


def test_prolific_exports(curator, category, curator_api):
    from tests.campaigns.conftest import prolific_params

    candidate_pool(category, 2, seed=940)
    campaign = open_campaign(
        curator, [category], slug="p", marketplace="prolific", tasks_per_assignment=1,
        bonus_rule="per_accepted", bonus_cents=25,
        completion_url="https://app.prolific.com/submissions/complete?cc=C1",
    )  # fmt: skip
    client, uid = _arrive(campaign, prolific_params())
    task = client.get(f"/api/campaigns/assignments/{uid}/next/").json()
    assert answer_all(client, task).status_code == 201
    _claim(client, "p", uid)
    [item] = TaskItem.objects.filter(task__uid=task["id"])
    decision_override(candidate=item.candidate, accepted=True, by=curator)
    campaign_review(campaign=campaign)

    review = curator_api.get("/api/campaigns/p/exports/prolific-review/").content.decode()
    bonus = curator_api.get("/api/campaigns/p/exports/prolific-bonus/").content.decode()

    assert review == (
        "participant_id,session_id,decision,reason\n"
        "5f8a1b2c3d4e5f6a7b8c9d0e,70b1c2d3e4f5a6b7c8d9e0f1,APPROVE,\n"
    )
    assert bonus == "5f8a1b2c3d4e5f6a7b8c9d0e,0.25\n"
