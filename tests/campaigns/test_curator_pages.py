"""The curators' campaign pages: list and open, detail with summary and downloads, review."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns.models import Campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator_client(curator) -> Client:
    client = Client()
    client.force_login(curator)
    return client


def test_a_curator_opens_a_campaign_from_the_form(curator_client, category):
    response = curator_client.post(
        "/curate/campaigns/",
        {
            "name": "Cats", "slug": "cats", "marketplace": "mturk", "categories": [category.pk],
            "kinds": ["verify", "grid"], "reward_cents": "5", "bonus_rule": "none",
            "bonus_cents": "0", "bonus_threshold": "0", "tasks_per_assignment": "10",
            "cap_per_worker": "100", "completion_url": "",
        },
    )  # fmt: skip

    assert response.status_code == 302
    assert response["Location"] == "/curate/campaigns/cats/"
    campaign = Campaign.objects.get()
    assert (campaign.kinds, list(campaign.categories.all())) == (["verify", "grid"], [category])
    page = curator_client.get("/curate/campaigns/cats/").content.decode()
    assert "http://testserver/c/cats/" in page
    assert 'href="/api/campaigns/cats/exports/mturk-review/"' in page
    assert 'href="/api/campaigns/cats/exports/prolific-bonus/"' not in page
    assert "Cats" in curator_client.get("/curate/campaigns/").content.decode()


def test_a_prolific_campaign_without_its_completion_url_is_refused(curator_client, category):
    response = curator_client.post(
        "/curate/campaigns/",
        {
            "name": "P", "slug": "p", "marketplace": "prolific", "categories": [category.pk],
            "kinds": ["verify"], "reward_cents": "5", "bonus_rule": "none", "bonus_cents": "0",
            "bonus_threshold": "0", "tasks_per_assignment": "1", "cap_per_worker": "1",
        },
    )  # fmt: skip

    assert response.status_code == 200
    assert "A Prolific campaign needs its completion URL." in response.content.decode()
    assert not Campaign.objects.exists()


def test_review_and_close_from_the_page(curator_client, campaign):
    reviewed = curator_client.post("/curate/campaigns/cats/", {"action": "review"}, follow=True)
    closed = curator_client.post("/curate/campaigns/cats/", {"action": "closed"}, follow=True)

    assert "Reviewed: 0 approved, 0 rejected." in reviewed.content.decode()
    assert "The campaign is closed." in closed.content.decode()
    assert Campaign.objects.get().state == "closed"


def test_workers_cannot_open_the_pages(worker, campaign):
    client = Client()
    client.force_login(worker)

    assert client.get("/curate/campaigns/").status_code == 403
    assert client.get("/curate/campaigns/cats/").status_code == 403
    assert client.post("/curate/campaigns/cats/", {"action": "closed"}).status_code == 403
    assert Campaign.objects.get().state == "open"
