"""Entry through a campaign link: new and returning workers, MTurk's preview, paused workers,
malformed or hostile ids, and links that try to reach someone else's account."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from campaigns.models import Assignment, ExternalWorker
from labeling.models import User
from labeling.services.microtasks import worker_pause, worker_profile
from tests.campaigns.conftest import (
    MTURK_WORKER,
    PROLIFIC_PID,
    enter,
    mturk_params,
    open_campaign,
    prolific_params,
)
from tests.factories import PASSWORD, UserFactory, candidate_pool

pytestmark = pytest.mark.django_db


def _signed_in(client: Client) -> User | None:
    user_id = client.session.get(SESSION_KEY)
    return User.objects.get(pk=user_id) if user_id else None


def test_a_new_mturk_worker_gets_a_fresh_account_and_a_new_session(campaign, curator):
    # given a browser that already holds a session (a curator signed in on it)
    client = Client()
    client.force_login(curator)
    old_key = client.session.session_key

    # when a worker arrives with ExternalQuestion parameters
    _, response = enter(campaign, mturk_params(), client)

    # then one binding to a new worker account, one assignment, and a rotated session
    binding = ExternalWorker.objects.get()
    assignment = Assignment.objects.get()
    assert (binding.marketplace, binding.external_id) == ("mturk", MTURK_WORKER)
    user = binding.user
    assert user.username.startswith("mturk-") and user.username != MTURK_WORKER
    assert (user.role, user.has_usable_password(), user.is_curator) == ("worker", False, False)
    assert (assignment.external_id, assignment.group_id, assignment.submit_to) == (
        "3AAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
        "3HHHHHHHHHHHHHHHHHHHHHHHHHHHH1",
        "https://www.mturk.com",
    )
    assert response.status_code == 302
    assert response["Location"] == f"/c/cats/a/{assignment.uid}/"
    assert client.session.session_key != old_key
    assert _signed_in(client) == user


def test_a_returning_worker_is_the_same_account_and_a_reload_the_same_assignment(campaign):
    enter(campaign, mturk_params())
    enter(campaign, mturk_params())  # the HIT page reloaded
    enter(campaign, mturk_params(assignment="3AAAAAAAAAAAAAAAAAAAAAAAAAAAA2"))

    assert ExternalWorker.objects.count() == 1
    assert User.objects.filter(role="worker").count() == 1
    assert list(Assignment.objects.values_list("external_id", flat=True)) == [
        "3AAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
        "3AAAAAAAAAAAAAAAAAAAAAAAAAAAA2",
    ]
    assert len({a.worker_id for a in Assignment.objects.all()}) == 1


def test_prolific_entry_binds_the_participant(prolific):
    client, response = enter(prolific, prolific_params())

    binding = ExternalWorker.objects.get()
    assert (binding.marketplace, binding.external_id) == ("prolific", PROLIFIC_PID)
    assert binding.user.username.startswith("prolific-")
    assignment = Assignment.objects.get()
    assert (assignment.external_id, assignment.group_id) == (
        "70b1c2d3e4f5a6b7c8d9e0f1",
        "60a1b2c3d4e5f6a7b8c9d0e1",
    )
    assert response["Location"] == f"/c/cats-prolific/a/{assignment.uid}/"
    assert _signed_in(client) == binding.user


def test_the_preview_shows_a_sample_and_makes_nothing(campaign, category, curator):
    # given an accepted item to show as the sample
    [sample] = candidate_pool(category, 1, seed=700)
    sample.state = "accepted"
    sample.save(update_fields=["state"])
    params = {
        "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE",
        "hitId": "3HHHHHHHHHHHHHHHHHHHHHHHHHHHH1",
    }

    client, response = enter(campaign, params)

    assert response.status_code == 200
    body = response.content.decode()
    assert "This is a preview" in body
    assert "Is there a cat in this image?" in body
    assert f"/img/{sample.image.uid}/thumb/?sig=" in body
    assert response["Content-Security-Policy"].count("frame-ancestors https://www.mturk.com") == 1
    assert _signed_in(client) is None
    assert (ExternalWorker.objects.count(), Assignment.objects.count()) == (0, 0)
    assert User.objects.count() == 1  # the curator
    # and the preview accepts no answers: no method but GET, no session for the task API
    assert client.post(f"/c/{campaign.slug}/", params).status_code == 405
    assert client.get("/api/tasks/next/").status_code in (401, 403)


def test_a_paused_worker_cannot_reenter(campaign):
    enter(campaign, mturk_params())
    profile = worker_profile(ExternalWorker.objects.get().user)
    worker_pause(profile=profile, reason="Too many wrong answers.")

    client, response = enter(campaign, mturk_params(assignment="3AAAAAAAAAAAAAAAAAAAAAAAAAAAA2"))

    assert response.status_code == 403
    assert "Your account is paused: Too many wrong answers." in response.content.decode()
    assert _signed_in(client) is None
    assert Assignment.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"workerId": "a1b2c3d4e5f6g7"}, "workerId"),  # lower case
        ({"workerId": "A1B2<script>"}, "workerId"),
        ({"workerId": "A1B2"}, "workerId"),  # too short
        ({"workerId": "A1B2C3D4E5F6G7\n"}, "workerId"),
        ({"workerId": "\uff211B2C3D4E5F6G7"}, "workerId"),  # a full-width A
        ({"workerId": "A" * 65}, "workerId"),
        ({"workerId": ""}, "workerId"),
        ({"assignmentId": "../../admin"}, "assignmentId"),
        ({"hitId": "3HHH HHHHHHHHHHHHH"}, "hitId"),
        ({"turkSubmitTo": "https://evil.example"}, "turkSubmitTo"),
        ({"turkSubmitTo": "https://www.mturk.com.evil.example"}, "turkSubmitTo"),
        ({"turkSubmitTo": "https://www.mturk.com@evil.example"}, "turkSubmitTo"),
        ({"turkSubmitTo": "http://www.mturk.com"}, "turkSubmitTo"),
        ({"turkSubmitTo": "https://www.mturk.com/mturk/externalSubmit?x=1"}, "turkSubmitTo"),
        ({"turkSubmitTo": "javascript:alert(1)"}, "turkSubmitTo"),
    ],
)
def test_malformed_or_hostile_mturk_parameters_are_refused(campaign, change, problem):
    client, response = enter(campaign, {**mturk_params(), **change})

    assert response.status_code == 400
    assert problem in response.content.decode()
    assert (ExternalWorker.objects.count(), Assignment.objects.count()) == (0, 0)
    assert User.objects.filter(role="worker").count() == 0
    assert _signed_in(client) is None


@pytest.mark.parametrize(
    "change",
    [
        {"PROLIFIC_PID": "5F8A1B2C3D4E5F6A7B8C9D0E"},  # upper case
        {"PROLIFIC_PID": "5f8a1b2c3d4e5f6a7b8c9d0"},  # 23 digits
        {"PROLIFIC_PID": "cora"},
        {"SESSION_ID": "x" * 24},
        {"STUDY_ID": ""},
    ],
)
def test_malformed_prolific_parameters_are_refused(prolific, change):
    _, response = enter(prolific, {**prolific_params(), **change})

    assert response.status_code == 400
    assert (ExternalWorker.objects.count(), Assignment.objects.count()) == (0, 0)


def test_a_link_naming_an_existing_username_cannot_take_that_account(campaign, curator):
    # given accounts whose usernames are what an attacker puts in the link
    victim = UserFactory(username=MTURK_WORKER, role="worker")
    prolific_victim = UserFactory(username=PROLIFIC_PID, role="curator")

    client, response = enter(campaign, mturk_params())
    other = open_campaign(
        curator,
        list(campaign.categories.all()),
        slug="p",
        marketplace="prolific",
        completion_url="https://app.prolific.com/submissions/complete?cc=X",
    )
    client2, _ = enter(other, prolific_params())

    # then each link gets its own new account, never the existing one
    assert response.status_code == 302
    assert _signed_in(client) not in (victim, prolific_victim, None)
    assert _signed_in(client2) not in (victim, prolific_victim, None)
    assert not ExternalWorker.objects.filter(user__in=[victim, prolific_victim]).exists()
    victim.refresh_from_db()
    assert victim.check_password(PASSWORD)


def test_an_assignment_id_of_another_worker_is_refused(campaign):
    enter(campaign, mturk_params())

    client, response = enter(campaign, mturk_params(worker="A9Z9Z9Z9Z9Z9Z9"))

    assert response.status_code == 409
    assert "belongs to another worker" in response.content.decode()
    assert Assignment.objects.count() == ExternalWorker.objects.count() == 1
    assert _signed_in(client) is None


def test_a_closed_campaign_and_a_worker_at_the_cap_are_refused(campaign, curator, category):
    from campaigns.services.manage import campaign_state_set
    from tests.campaigns.conftest import work_through

    candidate_pool(category, 3, seed=710)
    capped = open_campaign(curator, [category], slug="capped", cap_per_worker=1)
    client, response = enter(capped, mturk_params())
    uid = response["Location"].split("/")[-2]
    assert work_through(client, uid) == 1  # the cap ends the assignment after one task

    _, again = enter(capped, mturk_params(assignment="3AAAAAAAAAAAAAAAAAAAAAAAAAAAA2"))
    campaign_state_set(campaign=campaign, state="closed")
    _, closed = enter(campaign, mturk_params(worker="A9Z9Z9Z9Z9Z9Z9"))

    assert again.status_code == 403
    assert "the most tasks this campaign allows" in again.content.decode()
    assert closed.status_code == 403
    assert "closed" in closed.content.decode()
    assert Assignment.objects.count() == 1


def test_arrivals_are_rate_limited_per_address(campaign, monkeypatch):
    from campaigns.views import CampaignThrottle

    monkeypatch.setattr(CampaignThrottle, "THROTTLE_RATES", {"campaign": "2/min"})
    enter(campaign, mturk_params())
    enter(campaign, mturk_params(assignment="3AAAAAAAAAAAAAAAAAAAAAAAAAAAA2"))

    client, response = enter(campaign, mturk_params(assignment="3AAAAAAAAAAAAAAAAAAAAAAAAAAAA3"))

    assert response.status_code == 429
    assert Assignment.objects.count() == 2
    assert _signed_in(client) is None


def test_a_prolific_campaign_bound_to_a_study_refuses_other_studies(prolific):
    prolific.prolific_study_id = "0123456789abcdef01234567"
    prolific.save(update_fields=["prolific_study_id"])

    _, other = enter(prolific, prolific_params())
    _, own = enter(prolific, {**prolific_params(), "STUDY_ID": "0123456789abcdef01234567"})

    assert other.status_code == 400
    assert "another Prolific study" in other.content.decode()
    assert own.status_code == 302
    assert ExternalWorker.objects.count() == Assignment.objects.count() == 1
