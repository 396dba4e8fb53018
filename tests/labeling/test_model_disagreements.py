"""Decisions the current model contradicts: which items count and in what order, the JSON
endpoint, and the review page listing them for one-key decisions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Candidate, Category, GoldAnswer, MicroTask, TaskItem
from labeling.services.consensus import model_disagreements
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided() -> list[Candidate]:
    """Seven candidates of "owl": state, model_p and override as each case needs."""
    owl = Category.objects.create(name="owl", slug="owl")
    images_ingest(
        files=[(f"o{i}.jpg", image_bytes(200 + i)) for i in range(7)],
        category=owl,
        source="upload",
        uploader=None,
    )
    candidates = list(Candidate.objects.order_by("id"))
    cases = [
        ("accepted", 0.10, None),  # contradicted: gap 0.90
        ("accepted", 0.30, None),  # not enough
        ("rejected", 0.95, None),  # contradicted: gap 0.95
        ("rejected", 0.80, None),  # contradicted at the margin: gap 0.80
        ("rejected", 0.99, False),  # a curator settled it
        ("open", 0.01, None),  # not decided
        ("accepted", None, None),  # no model opinion
    ]
    for candidate, (state, model_p, override) in zip(candidates, cases, strict=True):
        Candidate.objects.filter(pk=candidate.pk).update(
            state=state, model_p=model_p, override=override, yes_votes=3
        )
    return candidates


def test_only_undecided_by_curators_and_strongly_contradicted_items_strongest_first(decided):
    assert list(model_disagreements()) == [decided[2], decided[0], decided[3]]
    assert list(model_disagreements(margin=0.05)) == [decided[2]]


def test_the_endpoint_lists_them_with_the_model_and_workers_are_kept_out(
    curator_api, worker_api, decided, django_assert_max_num_queries
):
    with django_assert_max_num_queries(3):
        data = curator_api.get("/api/review/disagreements/").json()

    assert [(r["id"], r["state"], r["model_p"]) for r in data["results"]] == [
        (decided[2].pk, "rejected", 0.95),
        (decided[0].pk, "accepted", 0.10),
        (decided[3].pk, "rejected", 0.80),
    ]
    assert worker_api.get("/api/review/disagreements/").status_code == 403


def test_the_review_page_lists_them_and_a_decision_settles_one(client, curator, decided):
    Candidate.objects.filter(pk=decided[3].pk).update(yes_votes=0)
    client.force_login(curator)

    page = client.get("/curate/review/").content.decode()
    client.post(
        "/curate/review/", {"action": "decide", "candidate": decided[2].pk, "accepted": "no"}
    )

    assert "3 decisions the model contradicts" in page
    assert "The crowd: accepted (3 yes, 0 no); the model: P(yes) 0.10" in page
    assert "The crowd: rejected without votes (imported or seeded); the model: P(yes) 0.80" in page
    assert page.index(f'data-candidate="{decided[2].pk}"') < page.index(
        f'data-candidate="{decided[0].pk}"'
    )
    assert list(model_disagreements()) == [decided[0], decided[3]]


def test_with_items_at_the_vote_cap_but_no_disagreement_the_page_says_why(client, curator, decided):
    Candidate.objects.filter(pk=decided[5].pk).update(state="needs_review")
    Candidate.objects.update(model_p=None)
    client.force_login(curator)

    page = client.get("/curate/review/").content.decode()

    assert "1 item to decide" in page
    assert "0 decisions the model contradicts" in page
    assert "No disagreement with the current model (or no current model yet" in page


def test_control_items_are_left_out_curated_gold_and_items_served_as_controls(
    decided, worker, client, curator
):
    # given two of the three contradicted decisions are control items: one with curated gold,
    # one the crowd decided that was served to a worker as a control
    GoldAnswer.objects.create(
        candidate=decided[2], category_id=decided[2].category_id, answer=False
    )
    later = timezone.now() + timedelta(minutes=10)
    task = MicroTask.objects.create(
        worker=worker, kind="verify", category=decided[0].category, expires_at=later
    )
    TaskItem.objects.create(
        task=task,
        position=0,
        candidate=decided[0],
        is_gold=True,
        control_answer=True,
        leased_until=later,
    )
    # an item merely served as a pool item stays listed
    TaskItem.objects.create(task=task, position=1, candidate=decided[3], leased_until=later)

    # then only the item that was never a control is listed, on the page too
    assert list(model_disagreements()) == [decided[3]]
    client.force_login(curator)
    page = client.get("/curate/review/").content.decode()
    assert "1 decision the model contradicts" in page
    assert f'data-candidate="{decided[3].pk}"' in page
    assert f'data-candidate="{decided[0].pk}"' not in page
    assert f'data-candidate="{decided[2].pk}"' not in page
