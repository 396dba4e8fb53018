"""The box chain on an image the crowd accepted: "none present" contradicts the label, so it
stands only when independent workers agree; a coverage "yes" over no box never closes the
chain; drawers who disagree send the image to review; Progress counts each apart."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from rest_framework.test import APIClient

from labeling.models import Box, Candidate, ObjectBox, Vote
from labeling.services.consensus import review_queue
from labeling.services.ingest import images_ingest
from tests.factories import UserFactory, image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_BOX_NONE_VOTES = 2
    settings.CROWDNET_BOX_DRAW_CAP = 3


def _accepted(category, count: int = 1, start: int = 0) -> list[Candidate]:
    """``count`` 80x60 images the crowd accepted as ``category``, waiting to be drawn."""
    files = [
        (f"{start + i}.jpg", image_bytes(4000 + start + i, size=(80, 60))) for i in range(count)
    ]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    candidates = Candidate.objects.filter(category=category).order_by("id")[start:]
    Candidate.objects.filter(pk__in=[c.pk for c in candidates]).update(
        state="accepted", box_state="draw"
    )
    return list(candidates)


def _worker(username: str) -> APIClient:
    user = UserFactory(username=username, role="worker")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _do(client: APIClient, kind: str, answer: dict) -> dict:
    """Take the next task of ``kind`` and answer its one item with ``answer``."""
    response = client.get(f"/api/tasks/next/?kind={kind}")
    assert response.status_code == 200, response.status_code
    task = response.json()
    body = {"answers": [{"item": task["items"][0]["id"], **answer}], "client_token": kind}
    assert client.post(f"/api/tasks/{task['id']}/answer/", body, format="json").status_code == 201
    return task


def _stage(candidate: Candidate) -> str:
    return Candidate.objects.get(pk=candidate.pk).box_state


NONE = {"boxes": []}
BOX = {"boxes": [[10, 10, 40, 50]]}
YES, NO = {"answer": "yes"}, {"answer": "no"}


def test_one_none_present_then_a_coverage_yes_leaves_the_image_unboxed(category):
    [candidate] = _accepted(category)
    _do(_worker("ann"), "draw", NONE)

    assert _stage(candidate) == "draw"
    assert _worker("bob").get("/api/tasks/next/?kind=coverage").status_code == 204
    # an image already at the coverage check with no box (as the old chain left them)
    Candidate.objects.filter(pk=candidate.pk).update(box_state="coverage")
    _do(_worker("cy"), "coverage", YES)

    assert _stage(candidate) == "draw"
    assert ObjectBox.objects.count() == 0
    assert Box.objects.count() == 0


def test_two_independent_none_present_answers_confirm_it_and_it_is_not_boxed(category, curator_api):
    [candidate] = _accepted(category)
    ann = _worker("ann")
    _do(ann, "draw", NONE)

    assert ann.get("/api/tasks/next/?kind=draw").status_code == 204  # not twice by one worker
    _do(_worker("bob"), "draw", NONE)

    assert _stage(candidate) == "absent"
    [row] = curator_api.get("/api/progress/").json()["categories"]
    assert (row["boxed"], row["none_present"], row["awaiting_boxes"]) == (0, 1, 0)


def test_a_box_drawn_against_a_none_present_answer_goes_on_through_the_chain(category):
    [candidate] = _accepted(category)
    _do(_worker("ann"), "draw", NONE)
    _do(_worker("bob"), "draw", BOX)

    assert _stage(candidate) == "verify"
    _do(_worker("cy"), "verify_box", YES)
    assert _stage(candidate) == "coverage"
    _do(_worker("dee"), "coverage", YES)

    assert _stage(candidate) == "done"
    box = ObjectBox.objects.get()
    assert box.candidate_id == candidate.pk
    assert [box.x0, box.y0, box.x1, box.y1] == pytest.approx([10, 10, 40, 50])


def test_drawers_who_disagree_up_to_the_cap_send_the_image_to_review(
    category, client, curator, curator_api
):
    [candidate] = _accepted(category)
    _do(_worker("ann"), "draw", NONE)
    _do(_worker("bob"), "draw", BOX)
    _do(_worker("cy"), "verify_box", NO)  # the box is rejected: drawn again
    assert _stage(candidate) == "draw"
    _do(_worker("dee"), "draw", NONE)  # two say none, one drew: no agreement, cap reached

    assert _stage(candidate) == "review"
    assert list(review_queue()) == [Candidate.objects.get(pk=candidate.pk)]
    [item] = curator_api.get("/api/review/").json()["results"]
    assert (item["id"], item["state"], item["box_state"]) == (candidate.pk, "accepted", "review")
    client.force_login(curator)
    page = client.get("/curate/review/").content.decode()
    assert "the workers drawing boxes disagree: some found none" in page

    client.post(
        "/curate/review/", {"action": "decide", "candidate": candidate.pk, "accepted": "yes"}
    )

    assert (_stage(candidate), Candidate.objects.get(pk=candidate.pk).state) == ("draw", "accepted")
    assert list(review_queue()) == []


def test_progress_counts_boxed_none_present_waiting_and_disputed_apart(category, curator_api):
    images = _accepted(category, 6)
    stages = ["done", "absent", "absent", "draw", "coverage", "review"]
    for candidate, stage in zip(images, stages, strict=True):
        Candidate.objects.filter(pk=candidate.pk).update(box_state=stage)
    rejected = _accepted(category, 1, start=6)[0]
    Candidate.objects.filter(pk=rejected.pk).update(state="rejected", box_state="absent")

    [row] = curator_api.get("/api/progress/").json()["categories"]
    page = curator_api.get("/curate/progress/")

    assert {
        key: row[key]
        for key in ("accepted", "boxed", "none_present", "awaiting_boxes", "boxes_disputed")
    } == {"accepted": 6, "boxed": 1, "none_present": 2, "awaiting_boxes": 2, "boxes_disputed": 1}
    cells = "".join(f'<td class="num">{n}</td>' for n in (1, 2, 2, 1))  # boxed ... disputed
    assert cells in page.content.decode()
    assert '<th scope="col" class="num">Boxed</th>' in page.content.decode()


def test_the_migration_sends_images_closed_without_a_box_back_to_drawing(category):
    module = importlib.import_module("labeling.migrations.0011_box_none_present")
    images = _accepted(category, 5)
    drawer = UserFactory(username="drawer")
    stages = ["done", "done", "coverage", "coverage", "done"]
    for candidate, stage in zip(images, stages, strict=True):
        Candidate.objects.filter(pk=candidate.pk).update(box_state=stage)
    ObjectBox.objects.create(candidate=images[0], x0=1, y0=1, x1=20, y1=20, score=1.0, drawers=1)
    Box.objects.create(
        candidate=images[2], worker=drawer, x0=1, y0=1, x1=20, y1=20, state="accepted"
    )
    Candidate.objects.filter(pk=images[4].pk).update(state="rejected")

    module.reopen_unboxed(apps, None)

    assert [_stage(c) for c in images] == ["done", "draw", "coverage", "draw", "none"]
    assert Vote.objects.count() == 0
