"""The curators' review page: the queue, decisions that override the crowd, a run on demand."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.celery import app as celery_app
from labeling.models import Candidate, Category, ConsensusRun
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(category) -> list[Candidate]:
    files = [(f"{i}.jpg", image_bytes(8100 + i, size=(40, 30))) for i in range(3)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    candidates = list(Candidate.objects.order_by("id"))
    Candidate.objects.filter(pk__in=[c.pk for c in candidates[:2]]).update(
        state="needs_review", yes_votes=4, no_votes=3, posterior=0.61
    )
    return candidates[:2]


def test_the_queue_shows_each_item_with_its_tally_and_escapes_names(client, curator, queue):
    Category.objects.update(name="<b>cat</b>")
    client.force_login(curator)

    page = client.get(reverse("curate-review")).content.decode()

    assert "2 items to decide" in page
    assert page.count("4 yes, 3 no; P(yes) 0.61") == 2
    assert f'src="/img/{queue[0].image.uid}/thumb/"' in page
    assert "&lt;b&gt;cat&lt;/b&gt;?" in page and "<b>cat</b>" not in page
    assert "No re-aggregation has run yet." in page


def test_a_decision_overrides_the_crowd_and_leaves_the_queue(client, curator, queue):
    client.force_login(curator)

    response = client.post(
        reverse("curate-review"),
        {"action": "decide", "candidate": queue[0].pk, "accepted": "no", "page": "1"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/curate/review/?page=1"
    decided = Candidate.objects.get(pk=queue[0].pk)
    assert (decided.state, decided.override, decided.override_by) == ("rejected", False, curator)
    page = client.get(response["Location"]).content.decode()
    assert f"Item {queue[0].pk} rejected." in page
    assert "1 item to decide" in page


def test_run_consensus_now_queues_a_run(
    client, curator, queue, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    client.force_login(curator)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("curate-review"), {"action": "reaggregate"})

    assert response.status_code == 302
    run = ConsensusRun.objects.get()
    assert (run.trigger, run.status, run.requested_by) == ("manual", "done", curator)
    page = client.get(reverse("curate-review")).content.decode()
    assert "Last re-aggregation: done" in page
