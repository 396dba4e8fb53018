"""Campaign links in real Chromium: an MTurk worker previews, accepts, labels an assignment
and submits it to a local stand-in for MTurk's externalSubmit; a Prolific participant does
the same and is redirected to the study's completion URL (the same stand-in)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Assignment, ExternalWorker
from campaigns.services.manage import campaign_create
from labeling.models import Candidate, Vote
from labeling.services.ingest import images_ingest
from tests.factories import CategoryFactory, UserFactory, image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

MTURK = {
    "workerId": "A1B2C3D4E5F6G7",
    "assignmentId": "3AAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
    "hitId": "3HHHHHHHHHHHHHHHHHHHHHHHHHHHH1",
}
PROLIFIC = {
    "PROLIFIC_PID": "5f8a1b2c3d4e5f6a7b8c9d0e",
    "STUDY_ID": "60a1b2c3d4e5f6a7b8c9d0e1",
    "SESSION_ID": "70b1c2d3e4f5a6b7c8d9e0f1",
}
SHOWN = """(previous) => {
  const root = document.getElementById("label-app");
  return root && root.dataset.taskId && root.dataset.taskId !== previous
    && !root.classList.contains("is-busy");
}"""


@dataclass
class StandIn:
    """A local stand-in for the marketplace: records each request it gets."""

    origin: str
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)


@pytest.fixture
def marketplace(settings) -> Iterator[StandIn]:
    seen: list[tuple[str, str, dict[str, list[str]]]] = []

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str, fields: dict[str, list[str]]) -> None:
            if urlsplit(self.path).path != "/favicon.ico":  # the browser's own
                seen.append((method, urlsplit(self.path).path, fields))
            body = b"<!doctype html><title>Marketplace</title><p>Received.</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply("GET", parse_qs(urlsplit(self.path).query))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self._reply("POST", parse_qs(self.rfile.read(length).decode()))

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    settings.CROWDNET_CAMPAIGN_SUBMIT_ORIGINS = [origin]
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0
    yield StandIn(origin, seen)
    server.shutdown()
    server.server_close()


def _campaign(**fields):
    category = CategoryFactory(name="cat", slug="cat", definition="a small domesticated feline")
    files = [(f"{i}.jpg", image_bytes(3000 + i, size=(320, 240))) for i in range(4)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    sample = Candidate.objects.filter(category=category).order_by("id").last()
    Candidate.objects.filter(pk=sample.pk).update(state="accepted")  # the preview's sample
    curator = UserFactory(username="cora", role="curator")
    values = {
        "slug": "cats", "name": "Cats", "marketplace": "mturk", "kinds": ["verify"],
        "reward_cents": 5, "tasks_per_assignment": 2, "cap_per_worker": 10,
    }  # fmt: skip
    values.update(fields)
    return campaign_create(created_by=curator, categories=[category], **values)


def _label_assignment(page: Page) -> None:
    """Answer the assignment's tasks (yes to each) until the completion page shows."""
    previous = ""
    for _ in range(2):
        page.wait_for_function(SHOWN, arg=previous)
        previous = page.locator("#label-app").get_attribute("data-task-id")
        page.get_by_role("button", name="Yes, there is a cat").click()
    page.wait_for_url("**/done/")


def _wait_for(requests: list, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(requests) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_an_mturk_worker_previews_accepts_labels_and_submits(page: Page, marketplace: StandIn):
    campaign = _campaign()
    submit = {"turkSubmitTo": marketplace.origin}

    # the preview: a sample, no account
    preview = {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": MTURK["hitId"], **submit}
    page.goto(f"/c/{campaign.slug}/?{urlencode(preview)}")
    expect(page.locator("#preview-note")).to_contain_text("This is a preview")
    expect(page.get_by_role("img", name="A sample image for cat")).to_be_visible()
    assert not ExternalWorker.objects.exists()

    # accepted: the worker labels the assignment's two tasks in the labeling app
    page.goto(f"/c/{campaign.slug}/?{urlencode({**MTURK, **submit})}")
    _label_assignment(page)
    assignment = Assignment.objects.get()
    assert Vote.objects.filter(worker=assignment.worker.user, answer="yes").count() == 2
    expect(page.locator("#completion-code")).to_have_text(assignment.completion_code)

    # finishing claims the code and shows the form that posts to externalSubmit
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("button", name="Submit HIT")).to_be_visible()
    assert page.problems() == []  # type: ignore[attr-defined]
    page.get_by_role("button", name="Submit HIT").click()
    _wait_for(marketplace.requests, 1)

    assert marketplace.requests == [
        (
            "POST",
            "/mturk/externalSubmit",
            {
                "assignmentId": [MTURK["assignmentId"]],
                "completion_code": [assignment.completion_code],
            },
        )
    ]
    assert Assignment.objects.get().state == "submitted"


def test_a_prolific_participant_labels_and_is_sent_back(page: Page, marketplace: StandIn):
    campaign = _campaign(
        slug="cats-prolific",
        marketplace="prolific",
        completion_url=f"{marketplace.origin}/submissions/complete?cc=C1234ABC",
    )

    page.goto(f"/c/{campaign.slug}/?{urlencode(PROLIFIC)}")
    _label_assignment(page)
    page.get_by_role("button", name="Finish and go back to Prolific").click()
    _wait_for(marketplace.requests, 1)

    assert marketplace.requests == [("GET", "/submissions/complete", {"cc": ["C1234ABC"]})]
    page.wait_for_url(f"{marketplace.origin}/submissions/complete?cc=C1234ABC")
    assignment = Assignment.objects.get()
    assert (assignment.worker.external_id, assignment.state) == (
        PROLIFIC["PROLIFIC_PID"],
        "submitted",
    )
