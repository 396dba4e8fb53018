"""Campaign fixtures: a pool to label, campaigns opened through the real service, and the
marketplace parameters a worker arrives with."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from campaigns.models import Campaign
from campaigns.services.manage import campaign_create

MTURK_WORKER = "A1B2C3D4E5F6G7"
PROLIFIC_PID = "5f8a1b2c3d4e5f6a7b8c9d0e"
PROLIFIC_STUDY = "60a1b2c3d4e5f6a7b8c9d0e1"


@pytest.fixture(autouse=True)
def _no_speed_gate(settings):
    """Test clients answer in milliseconds; only the gate's own test keeps the floor."""
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0


def open_campaign(curator, categories, **fields: Any) -> Campaign:
    values: dict[str, Any] = {
        "slug": "cats",
        "name": "Cats on MTurk",
        "marketplace": "mturk",
        "kinds": ["verify"],
        "reward_cents": 5,
        "tasks_per_assignment": 2,
        "cap_per_worker": 10,
    }
    values.update(fields)
    return campaign_create(created_by=curator, categories=categories, **values)


@pytest.fixture
def campaign(curator, category) -> Campaign:
    return open_campaign(curator, [category])


@pytest.fixture
def prolific(curator, category) -> Campaign:
    return open_campaign(
        curator,
        [category],
        slug="cats-prolific",
        name="Cats on Prolific",
        marketplace="prolific",
        completion_url="https://app.prolific.com/submissions/complete?cc=C1234ABC",
    )


def mturk_params(
    worker: str = MTURK_WORKER,
    assignment: str = "3AAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
    hit: str = "3HHHHHHHHHHHHHHHHHHHHHHHHHHHH1",
    submit_to: str = "https://www.mturk.com",
) -> dict[str, str]:
    return {"workerId": worker, "assignmentId": assignment, "hitId": hit, "turkSubmitTo": submit_to}


def prolific_params(
    pid: str = PROLIFIC_PID, session: str = "70b1c2d3e4f5a6b7c8d9e0f1"
) -> dict[str, str]:
    return {"PROLIFIC_PID": pid, "STUDY_ID": PROLIFIC_STUDY, "SESSION_ID": session}


def enter(campaign: Campaign, params: dict[str, str], client: Client | None = None):
    """A browser arriving at the campaign link; returns (client, response)."""
    client = client or Client()
    return client, client.get(f"/c/{campaign.slug}/", params)


def answer_all(client: Client, task: dict, value: str = "yes", token: str = "t"):
    answers = [{"item": item["id"], "answer": value} for item in task["items"]]
    return client.post(
        f"/api/tasks/{task['id']}/answer/",
        {"answers": answers, "client_token": token},
        content_type="application/json",
    )


def work_through(client: Client, uid: str, value: str = "yes") -> int:
    """Answer every task the assignment serves until it says finished; returns how many."""
    done = 0
    while True:
        response = client.get(f"/api/campaigns/assignments/{uid}/next/")
        if response.status_code == 204:
            assert response["Crowdnet-Empty-Reason"] == "finished"
            return done
        assert response.status_code == 200, response.content
        assert answer_all(client, response.json(), value, token=f"t{done}").status_code == 201
        done += 1
