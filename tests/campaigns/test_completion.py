"""Work under an assignment and its completion: the campaign's scope and size, the code that
is issued once and claimed once by its own worker, and the way back to each marketplace."""

from __future__ import annotations

import re

import pytest

from campaigns.models import Assignment, AssignmentTask
from labeling.models import MicroTask, TaskItem
from tests.campaigns.conftest import (
    enter,
    mturk_params,
    open_campaign,
    prolific_params,
    work_through,
)
from tests.factories import CategoryFactory, candidate_pool

pytestmark = pytest.mark.django_db


def _arrive(campaign, params):
    client, response = enter(campaign, params)
    assert response.status_code == 302
    return client, response["Location"].split("/")[-2]


def test_tasks_come_from_the_campaign_categories_and_kinds_only(curator, category):
    # given open items in two categories, and a campaign over one of them, verify only
    dog = CategoryFactory(name="dog", slug="dog")
    candidate_pool(dog, 4, seed=800)
    candidate_pool(category, 4, seed=810)
    campaign = open_campaign(curator, [category], tasks_per_assignment=3)
    client, uid = _arrive(campaign, mturk_params())

    # when the worker works the assignment through
    assert work_through(client, uid) == 3

    # then every task was a verify task about the campaign's category, linked to the assignment
    tasks = MicroTask.objects.filter(worker__external_worker__isnull=False)
    assert sorted(set(tasks.values_list("kind", "category__slug"))) == [("verify", "cat")]
    assert AssignmentTask.objects.filter(assignment__uid=uid).count() == 3
    assert set(
        TaskItem.objects.filter(task__in=tasks).values_list("candidate__category__slug", flat=True)
    ) == {"cat"}
    # and the general pool still serves the dog items to anyone else
    assert tasks.filter(status="answered").count() == 3


def test_the_prefetch_never_leases_past_the_end_of_the_assignment(campaign, category):
    candidate_pool(category, 5, seed=820)
    client, uid = _arrive(campaign, mturk_params())  # two tasks an assignment

    first = client.get(f"/api/campaigns/assignments/{uid}/next/").json()
    second = client.get(f"/api/campaigns/assignments/{uid}/next/").json()  # the prefetch
    third = client.get(f"/api/campaigns/assignments/{uid}/next/").json()

    assert first["id"] != second["id"]
    assert third["id"] == first["id"]  # both tasks it needs are held: the oldest again
    assert AssignmentTask.objects.count() == 2


def test_the_code_is_issued_once_done_and_claimed_once_by_its_worker(campaign, category):
    candidate_pool(category, 6, seed=830)
    alice, a_uid = _arrive(campaign, mturk_params())
    bob, b_uid = _arrive(
        campaign,
        mturk_params(worker="A9Z9Z9Z9Z9Z9Z9", assignment="3BBBBBBBBBBBBBBBBBBBBBBBBBBBB1"),
    )
    # no code before the work is done
    assert alice.post(f"/c/cats/a/{a_uid}/claim/", {"code": ""}).status_code == 409
    assert alice.get(f"/c/cats/a/{a_uid}/done/")["Location"] == f"/c/cats/a/{a_uid}/"

    assert work_through(alice, a_uid) == 2
    assert work_through(bob, b_uid) == 2
    a = Assignment.objects.get(uid=a_uid)
    b = Assignment.objects.get(uid=b_uid)
    assert a.state == b.state == "finished"
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{12}", a.completion_code)
    assert a.completion_code != b.completion_code
    page = alice.get(f"/c/cats/a/{a_uid}/done/")
    assert a.completion_code in page.content.decode()

    # another worker can't claim it: not by its assignment, nor with it on their own
    assert bob.post(f"/c/cats/a/{a_uid}/claim/", {"code": a.completion_code}).status_code == 404
    wrong = bob.post(f"/c/cats/a/{b_uid}/claim/", {"code": a.completion_code})
    assert wrong.status_code == 409
    assert "not this assignment&#x27;s completion code" in wrong.content.decode()
    assert list(Assignment.objects.order_by("id").values_list("state", flat=True)) == [
        "finished",
        "finished",
    ]

    # its worker claims it once: the form that posts to MTurk's externalSubmit
    claimed = alice.post(f"/c/cats/a/{a_uid}/claim/", {"code": a.completion_code.lower()})
    assert claimed.status_code == 200
    body = claimed.content.decode()
    assert (
        '<form id="external-submit" method="post" action="https://www.mturk.com/mturk/externalSubmit">'
        in body
    )
    assert (
        '<input type="hidden" name="assignmentId" value="3AAAAAAAAAAAAAAAAAAAAAAAAAAAA1">' in body
    )
    assert f'<input type="hidden" name="completion_code" value="{a.completion_code}">' in body
    assert "form-action 'self' https://www.mturk.com" in claimed["Content-Security-Policy"]
    assert "<script" not in body.split("</head>")[1]
    a.refresh_from_db()
    assert a.state == "submitted" and a.submitted_at is not None

    again = alice.post(f"/c/cats/a/{a_uid}/claim/", {"code": a.completion_code})
    assert again.status_code == 409
    assert "already used" in again.content.decode()
    # the page can still be opened again to resend the form, without a second claim
    assert "externalSubmit" in alice.get(f"/c/cats/a/{a_uid}/done/").content.decode()
    # and a finished assignment serves no more tasks
    assert (
        alice.get(f"/api/campaigns/assignments/{a_uid}/next/")["Crowdnet-Empty-Reason"]
        == "finished"
    )


def test_a_prolific_claim_redirects_to_the_completion_url(prolific, category):
    candidate_pool(category, 3, seed=840)
    client, uid = _arrive(prolific, prolific_params())
    assert work_through(client, uid) == 2
    code = Assignment.objects.get(uid=uid).completion_code

    done = client.get(f"/c/cats-prolific/a/{uid}/done/")
    response = client.post(f"/c/cats-prolific/a/{uid}/claim/", {"code": code})

    assert "form-action 'self' https://app.prolific.com" in done["Content-Security-Policy"]
    assert response.status_code == 302
    assert response["Location"] == "https://app.prolific.com/submissions/complete?cc=C1234ABC"
    assert Assignment.objects.get(uid=uid).state == "submitted"


def test_an_assignment_finishes_early_when_the_pool_runs_dry(campaign, category):
    candidate_pool(category, 1, seed=850)
    client, uid = _arrive(campaign, mturk_params())

    assert work_through(client, uid) == 1

    assert Assignment.objects.get(uid=uid).state == "finished"


def test_someone_elses_assignment_is_not_found(campaign, category, worker_api):
    candidate_pool(category, 2, seed=860)
    _, uid = _arrive(campaign, mturk_params())

    assert worker_api.get(f"/api/campaigns/assignments/{uid}/next/").status_code == 404
    assert worker_api.get(f"/c/cats/a/{uid}/").status_code == 404
    assert MicroTask.objects.count() == 0
