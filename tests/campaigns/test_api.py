"""The campaign API: curators only for management, validation, query counts, the schema."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from tests.campaigns.conftest import open_campaign
from tests.factories import CategoryFactory

pytestmark = pytest.mark.django_db

CURATOR_ENDPOINTS = [
    ("get", "/api/campaigns/"),
    ("post", "/api/campaigns/"),
    ("get", "/api/campaigns/cats/"),
    ("get", "/api/campaigns/cats/summary/"),
    ("get", "/api/campaigns/cats/assignments/"),
    ("get", "/api/campaigns/cats/ledger/"),
    ("post", "/api/campaigns/cats/review/"),
    ("post", "/api/campaigns/cats/state/"),
    ("get", "/api/campaigns/cats/exports/mturk-review/"),
    ("get", "/api/campaigns/cats/exports/ledger/"),
]


@pytest.mark.parametrize(("method", "path"), CURATOR_ENDPOINTS)
def test_workers_get_403_and_strangers_401_on_the_curator_api(
    campaign, worker_api, api, method, path
):
    assert getattr(worker_api, method)(path, {}, format="json").status_code == 403
    assert getattr(api, method)(path, {}, format="json").status_code == 401
    assert Campaign.objects.get().state == "open"


def test_a_curator_opens_a_campaign(curator_api, category):
    response = curator_api.post(
        "/api/campaigns/",
        {
            "slug": "birds", "name": "Birds", "marketplace": "prolific", "categories": ["cat"],
            "kinds": ["verify", "grid"], "reward_cents": 8, "bonus_rule": "accuracy",
            "bonus_cents": 50, "bonus_threshold": "0.850", "tasks_per_assignment": 20,
            "cap_per_worker": 200,
            "completion_url": "https://app.prolific.com/submissions/complete?cc=ABC",
        },
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["link"] == "http://testserver/c/birds/"
    assert (body["state"], body["categories"], body["kinds"]) == (
        "open",
        ["cat"],
        ["verify", "grid"],
    )
    campaign = Campaign.objects.get(slug="birds")
    assert (campaign.reward_cents, str(campaign.bonus_threshold)) == (8, "0.850")
    assert campaign.created_by.username == "cora"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kinds": []}, "kinds"),
        ({"kinds": ["paint"]}, "kinds"),
        ({"categories": []}, "categories"),
        ({"categories": ["nope"]}, "categories"),
        ({"marketplace": "prolific"}, "completion_url"),
        ({"bonus_rule": "per_accepted"}, "bonus_cents"),
        ({"bonus_threshold": "1.5"}, "bonus_threshold"),
        ({"tasks_per_assignment": 0}, "tasks_per_assignment"),
        ({"reward_cents": -1}, "reward_cents"),
        ({"reward_cents": 1.5}, "reward_cents"),
    ],
)
def test_a_bad_campaign_is_400_naming_the_field_and_writes_nothing(
    curator_api, category, change, field
):
    data = {
        "slug": "dogs", "name": "Dogs", "marketplace": "mturk", "categories": ["cat"],
        "kinds": ["verify"], "reward_cents": 5, "tasks_per_assignment": 5, "cap_per_worker": 50,
    }  # fmt: skip

    response = curator_api.post("/api/campaigns/", {**data, **change}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Campaign.objects.exists()


def test_the_list_takes_a_fixed_number_of_queries(curator_api, curator, django_assert_num_queries):
    for n in range(5):
        open_campaign(curator, [CategoryFactory(slug=f"c{n}", name=f"c{n}")], slug=f"camp{n}")

    with django_assert_num_queries(3):  # count, campaigns, their categories
        response = curator_api.get("/api/campaigns/")

    assert response.json()["count"] == 5


def test_closing_a_campaign(curator_api, campaign):
    response = curator_api.post("/api/campaigns/cats/state/", {"state": "closed"}, format="json")

    assert response.status_code == 200
    assert Campaign.objects.get().state == "closed"


def test_the_schema_documents_the_campaign_api(curator_api):
    schema = curator_api.get("/api/schema/?format=json").json()

    paths = schema["paths"]
    assert {
        "/api/campaigns/", "/api/campaigns/{slug}/", "/api/campaigns/{slug}/summary/",
        "/api/campaigns/{slug}/ledger/", "/api/campaigns/{slug}/assignments/",
        "/api/campaigns/{slug}/review/", "/api/campaigns/{slug}/state/",
        "/api/campaigns/{slug}/exports/{name}/", "/api/campaigns/assignments/{uid}/next/",
    } <= set(paths)  # fmt: skip
    export = paths["/api/campaigns/{slug}/exports/{name}/"]["get"]
    assert list(export["responses"]["200"]["content"]) == ["text/csv"]
    assert schema["components"]["schemas"]["CampaignStateEnum"]["enum"] == ["open", "closed"]
