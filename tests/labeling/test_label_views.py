"""The labeling page and the worker home: who may open them, what they show."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import WorkerProfile

pytestmark = pytest.mark.django_db

SCRIPT_TAG = '<script type="module" src="/static/js/label/app.js"></script>'
KIND_LINKS = [f'href="/label/?kind={kind}"' for kind in ["verify", "grid", "draw"]] + [
    'href="/label/?kind=verify_box"',
    'href="/label/?kind=coverage"',
]


@pytest.fixture
def worker_client(client, worker):
    client.force_login(worker)
    return client


def test_label_page_sends_the_anonymous_to_log_in(client):
    response = client.get("/label/?kind=grid")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/label/%3Fkind%3Dgrid"


def test_label_page_renders_the_app_for_a_worker(worker_client):
    response = worker_client.get(reverse("label"))

    html = response.content.decode()
    assert reverse("label") == "/label/"
    assert response.status_code == 200
    assert SCRIPT_TAG in html
    assert 'data-next-url="/api/tasks/next/"' in html
    assert 'data-answer-url="/api/tasks/00000000-0000-0000-0000-000000000000/answer/"' in html
    assert 'data-kind=""' in html
    assert '<dd id="stat-tasks">0</dd>' in html
    assert "style=" not in html
    assert "<style" not in html


@pytest.mark.parametrize(
    ("query", "kind"),
    [("?kind=grid", "grid"), ("?kind=verify_box", "verify_box"), ("?kind=paint", "")],
)
def test_label_page_passes_a_known_kind_only(worker_client, query, kind):
    response = worker_client.get(f"/label/{query}")

    assert response.status_code == 200
    assert response.context["kind"] == kind
    assert f'data-kind="{kind}"' in response.content.decode()


def test_curators_may_label_too(client, curator):
    client.force_login(curator)

    response = client.get("/label/")

    assert response.status_code == 200
    assert SCRIPT_TAG in response.content.decode()


def test_worker_home_without_a_profile_shows_zeros_and_the_start_link(worker_client):
    response = worker_client.get(reverse("home"))

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["stats"] == {
        "answered_tasks": 0,
        "answered_items": 0,
        "streak": 0,
        "paused": False,
        "pause_reason": "",
    }
    assert '<a class="button-start" href="/label/">Start labeling</a>' in html
    for link in KIND_LINKS:
        assert link in html
    assert not WorkerProfile.objects.exists()


def test_worker_home_shows_the_counts_from_the_profile(worker_client, worker):
    WorkerProfile.objects.create(user=worker, answered_tasks=12, answered_items=57, streak=4)

    response = worker_client.get(reverse("home"))

    html = response.content.decode()
    assert '<dd id="stat-tasks">12</dd>' in html
    assert '<dd id="stat-items">57</dd>' in html
    assert '<dd id="stat-streak">4</dd>' in html
    assert "Start labeling" in html


def test_paused_worker_sees_the_reason_instead_of_the_start_link(worker_client, worker):
    reason = "3 control answers in a row were wrong <b>really</b>"
    WorkerProfile.objects.create(
        user=worker, answered_tasks=7, answered_items=30, paused=True, pause_reason=reason
    )

    response = worker_client.get(reverse("home"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Your account is paused" in html
    assert "<p>3 control answers in a row were wrong &lt;b&gt;really&lt;/b&gt;</p>" in html
    assert "Start labeling" not in html
    assert 'href="/label/' not in html
    assert '<dd id="stat-tasks">7</dd>' in html


def test_curator_sees_a_paused_worker_and_resumes_them(client, curator, worker):
    from labeling.models import WorkerProfile

    WorkerProfile.objects.create(
        user=worker, paused=True, pause_reason="3 check questions in a row were wrong."
    )
    client.force_login(curator)

    page = client.get("/curate/workers/").content.decode()
    assert "<strong>Paused:</strong> 3 check questions in a row were wrong." in page
    assert "Resume wendy" in page

    response = client.post("/curate/workers/", {"action": "resume", "worker": worker.pk})

    assert response.status_code == 302
    profile = WorkerProfile.objects.get(user=worker)
    assert (profile.paused, profile.pause_reason) == (False, "")
