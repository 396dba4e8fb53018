"""The labeling page in real Chromium: every task kind, by mouse and by keyboard, down to the
votes and boxes in the database; the empty, expired and paused states; a phone-width layout."""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import Page, expect

from labeling.models import (
    Box,
    Candidate,
    Category,
    GoldAnswer,
    MicroTask,
    TaskItem,
    Vote,
    WorkerProfile,
)
from labeling.services.ingest import images_ingest
from tests.factories import CategoryFactory, UserFactory, image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

SIZE = (320, 240)  # image pixels of every test picture
KINDS = ["verify", "grid", "draw", "verify_box", "coverage"]
SHOWN = """(previous) => {
  const root = document.getElementById("label-app");
  return root.dataset.taskId && root.dataset.taskId !== previous
    && !root.classList.contains("is-busy");
}"""


@pytest.fixture(autouse=True)
def _crowd_settings(settings):
    """Browser clicks are fast and verify tasks carry no gold here."""
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0


@pytest.fixture(autouse=True)
def _settled(page: Page):
    """After each test, wait until the page has no request in flight (the app prefetches), so
    none reaches the live server after the test's database is flushed."""
    pending: set = set()
    page.on("request", lambda request: pending.add(request))
    page.on("requestfinished", lambda request: pending.discard(request))
    page.on("requestfailed", lambda request: pending.discard(request))
    yield
    quiet_since, deadline = None, time.monotonic() + 5
    while time.monotonic() < deadline:
        if pending:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.2:
            return
        page.wait_for_timeout(25)


@pytest.fixture
def cat(db) -> Category:
    return CategoryFactory(name="cat", slug="cat", definition="a small domesticated feline")


def pictures(category: Category, count: int, start: int = 0) -> list[Candidate]:
    """``count`` new candidates in ``category``, each a distinct SIZE picture."""
    seed = 1000 * category.pk + start
    files = [(f"{start + i}.jpg", image_bytes(seed + i, size=SIZE)) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    return list(Candidate.objects.filter(category=category).order_by("id")[start:])


def boxed(category: Category, count: int, *, state: str) -> list[Candidate]:
    """Candidates in the box chain, each with one box by another worker (x 40-200, y 30-150)."""
    drawer = UserFactory(username="drawer")
    candidates = pictures(category, count)
    for candidate in candidates:
        Candidate.objects.filter(pk=candidate.pk).update(state="accepted", box_state=state)
        box_state = Box.State.PROPOSED if state == "verify" else Box.State.ACCEPTED
        Box.objects.create(
            candidate=candidate, worker=drawer, x0=40, y0=30, x1=200, y1=150, state=box_state
        )
    return candidates


def start(page: Page, log_in, kind: str = "") -> str:
    """Log ``wendy`` in, open the labeling page, and return the id of the task shown."""
    UserFactory(username="wendy", role="worker")
    log_in("wendy", f"/label/?kind={kind}" if kind else "/label/")
    return shown_after(page, "")


def shown_after(page: Page, previous: str) -> str:
    """Wait until a task other than ``previous`` is shown and ready; return its id."""
    page.wait_for_function(SHOWN, arg=previous)
    return page.locator("#label-app").get_attribute("data-task-id") or ""


def answer(page: Page, act) -> None:
    """Do ``act`` and wait for the answer's 201."""
    with page.expect_response(lambda r: "/answer/" in r.url) as response:
        act()
    assert response.value.status == 201


def items(task_id: str) -> list[TaskItem]:
    return list(TaskItem.objects.filter(task__uid=task_id).order_by("position"))


def votes() -> list[tuple]:
    """Every vote, tasks in the order they were leased, each task's in the order its pictures
    were shown (an answer inserts its votes in candidate id order)."""
    shown = {(i.task_id, i.candidate_id): i.position for i in TaskItem.objects.all()}
    rows = Vote.objects.values_list("task_id", "candidate_id", "kind", "answer")
    return [row[1:] for row in sorted(rows, key=lambda row: (row[0], shown[row[0], row[1]]))]


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("CROWDNET_SCREENSHOTS")
    if folder:
        page.wait_for_function("() => [...document.images].every((image) => image.complete)")
        page.screenshot(path=os.path.join(folder, f"label_{name}.png"), full_page=True)


def test_verify_by_click_and_by_key(page: Page, log_in, cat):
    pictures(cat, 2)
    fetched = []
    page.on("response", lambda r: fetched.append(r) if "/api/tasks/next/" in r.url else None)
    first = start(page, log_in, "verify")
    expect(page.locator("#task-prompt")).to_have_text("Is there a cat in this image?")
    expect(page.locator("#category-definition")).to_have_text("a small domesticated feline")
    screenshot(page, "verify")

    answer(page, lambda: page.get_by_role("button", name="Yes, there is a cat").click())
    second = shown_after(page, first)
    answer(page, lambda: page.keyboard.press("n"))

    # the second task was prefetched while the first was shown
    assert [r.json()["id"] for r in fetched[:2]] == [first, second]
    [a], [b] = items(first), items(second)
    assert votes() == [(a.candidate_id, "verify", "yes"), (b.candidate_id, "verify", "no")]
    expect(page.locator("#stat-tasks")).to_have_text("2")
    expect(page.locator("#stat-streak")).to_have_text("2")
    expect(page.locator("#task-prompt")).to_have_text("Nothing to do right now")
    assert page.problems() == []


def test_grid_by_click_and_by_key(page: Page, log_in, cat):
    candidates = pictures(cat, 18)
    for gold in candidates[:2]:
        GoldAnswer.objects.create(candidate=gold, category_id=gold.category_id, answer=True)
        Candidate.objects.filter(pk=gold.pk).update(state="accepted")
    first = start(page, log_in, "grid")
    expect(page.locator(".grid-cell")).to_have_count(9)
    screenshot(page, "grid")

    for n in (1, 2, 3):
        page.get_by_role("button", name=f"Picture {n}", exact=True).click()
    expect(page.locator(".grid-cell[aria-pressed=true]")).to_have_count(3)
    screenshot(page, "grid_selected")
    answer(page, lambda: page.get_by_role("button", name="Submit").click())
    second = shown_after(page, first)
    for key in ["1", "5", "9", "z"]:
        page.keyboard.press(key)
    expect(page.locator(".grid-cell[aria-pressed=true]")).to_have_count(2)
    answer(page, lambda: page.keyboard.press("Enter"))

    expected = [
        (item.candidate_id, "grid", "yes" if item.position in picked else "no")
        for task, picked in [(first, {0, 1, 2}), (second, {0, 4})]
        for item in items(task)
    ]
    assert votes() == expected
    assert page.problems() == []


def test_grids_go_on_in_another_category_once_one_has_no_unseen_control_item(
    page: Page, log_in, cat, settings
):
    settings.CROWDNET_GRID_SIZE = 3  # a control picture and two to label
    dog = CategoryFactory(name="dog", slug="dog", definition="a domesticated canine")
    for category in (cat, dog):
        control, *_ = pictures(category, 5)
        GoldAnswer.objects.create(candidate=control, category_id=control.category_id, answer=True)
        Candidate.objects.filter(pk=control.pk).update(state="accepted")
    Candidate.objects.filter(category=cat).update(priority=5)  # cats are asked first

    first = start(page, log_in, "grid")
    expect(page.locator("#category-name")).to_have_text("cat")
    answer(page, lambda: page.keyboard.press("Enter"))
    second = shown_after(page, first)
    expect(page.locator("#category-name")).to_have_text("dog")
    answer(page, lambda: page.keyboard.press("Enter"))

    expect(page.locator("#task-prompt")).to_have_text("Nothing to do right now")
    expect(page.locator("#state-empty")).to_contain_text(
        "You have done all the “Pick pictures” tasks available to you for now. "
        "Try another kind of task, or look again later."
    )
    expect(page.get_by_text("curators add pictures")).to_be_hidden()
    assert [MicroTask.objects.get(uid=uid).category.slug for uid in (first, second)] == [
        "cat",
        "dog",
    ]
    # every picture still waits for votes: the worker has only run out of control pictures
    assert Candidate.objects.filter(state="open").count() == 8
    assert Vote.objects.filter(worker__username="wendy").count() == 6
    page.get_by_role("link", name="Other kinds of task").click()
    page.wait_for_url("**/")
    assert page.problems() == []


def test_the_empty_page_says_when_there_is_no_work_yet(page: Page, log_in):
    UserFactory(username="wendy", role="worker")
    log_in("wendy", "/label/?kind=grid")

    expect(page.locator("#state-empty")).to_contain_text(
        "No “Pick pictures” task is waiting yet. New ones appear as curators add pictures"
    )
    expect(page.get_by_text("You have done all")).to_be_hidden()
    assert page.problems() == []


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at ``start`` and release at ``end``, both fractions of the picture's shown size."""
    area = page.locator(".label-overlay-draw").bounding_box()
    assert area is not None
    (fx0, fy0), (fx1, fy1) = start, end
    page.mouse.move(area["x"] + fx0 * area["width"], area["y"] + fy0 * area["height"])
    page.mouse.down()
    page.mouse.move(area["x"] + fx1 * area["width"], area["y"] + fy1 * area["height"], steps=6)
    page.mouse.up()


def pixels(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """A box given in fractions of the picture, in image pixels."""
    width, height = SIZE
    return [x0 * width, y0 * height, x1 * width, y1 * height]


def box_of(candidate_id: int) -> list[float]:
    box = Box.objects.get(candidate_id=candidate_id)
    return [box.x0, box.y0, box.x1, box.y1]


def test_draw_by_mouse_by_key_and_none_present(page: Page, log_in, cat):
    candidates = pictures(cat, 3)
    Candidate.objects.filter(pk__in=[c.pk for c in candidates]).update(
        state="accepted", box_state="draw"
    )
    boxes = page.locator(".draw-box")
    first = start(page, log_in, "draw")

    drag(page, (0.2, 0.25), (0.7, 0.8))  # a box, selected with its four handles
    expect(page.locator(".draw-box.selected .handle")).to_have_count(4)
    drag(page, (0.7, 0.8), (0.75, 0.9))  # its bottom-right handle: resized
    drag(page, (0.45, 0.55), (0.4, 0.5))  # its inside: moved up and left
    drag(page, (0.85, 0.1), (0.95, 0.3))  # a second box...
    expect(boxes).to_have_count(2)
    screenshot(page, "draw")
    page.get_by_role("button", name="Delete selected box").click()  # ...deleted
    expect(boxes).to_have_count(1)
    answer(page, lambda: page.get_by_role("button", name="Submit boxes").click())

    second = shown_after(page, first)
    page.keyboard.press("+")
    expect(page.locator(".zoom-level")).to_have_text("150%")
    drag(page, (0.55, 0.6), (0.15, 0.1))  # drawn from its bottom-right corner
    drag(page, (0.05, 0.65), (0.1, 0.75))
    page.keyboard.press("z")
    expect(boxes).to_have_count(1)
    answer(page, lambda: page.keyboard.press("Enter"))

    third = shown_after(page, second)
    answer(page, lambda: page.keyboard.press("0"))

    [a], [b], [c] = items(first), items(second), items(third)
    assert votes() == [
        (a.candidate_id, "draw", "yes"),
        (b.candidate_id, "draw", "yes"),
        (c.candidate_id, "draw", "no"),
    ]
    assert box_of(a.candidate_id) == pytest.approx(pixels(0.15, 0.2, 0.7, 0.85), abs=1.5)
    assert box_of(b.candidate_id) == pytest.approx(pixels(0.15, 0.1, 0.55, 0.6), abs=1.5)
    assert not Box.objects.filter(candidate_id=c.candidate_id).exists()
    assert page.problems() == []


def test_an_answer_lost_on_the_network_is_sent_again_with_the_same_token(page: Page, log_in, cat):
    pictures(cat, 1)
    sent: list[dict] = []

    def flaky(route) -> None:
        sent.append(route.request.post_data_json)
        if len(sent) == 1:
            route.abort()
        else:
            route.continue_()

    page.route(re.compile(r"/answer/(\?.*)?$"), flaky)
    first = start(page, log_in, "verify")

    answer(page, lambda: page.keyboard.press("y"))

    [task_item] = items(first)
    assert [body["client_token"] for body in sent] == [sent[0]["client_token"]] * 2
    assert len(sent[0]["client_token"]) == 36
    assert sent[1]["answers"] == [{"item": str(task_item.uid), "answer": "yes"}]
    assert votes() == [(task_item.candidate_id, "verify", "yes")]
    assert [p for p in page.problems() if "ERR_FAILED" not in p] == []


@pytest.mark.parametrize(
    ("kind", "stage", "yes_button"),
    [
        ("verify_box", "verify", "Yes, tight"),
        ("coverage", "coverage", "Yes, every cat is boxed"),
    ],
)
def test_box_questions_by_click_and_by_key(page: Page, log_in, cat, kind, stage, yes_button):
    boxed(cat, 2, state=stage)
    first = start(page, log_in, kind)
    expect(page.locator(".label-overlay .label-box")).to_have_count(1)
    screenshot(page, kind)

    answer(page, lambda: page.get_by_role("button", name=yes_button, exact=True).click())
    second = shown_after(page, first)
    answer(page, lambda: page.keyboard.press("n"))

    [a], [b] = items(first), items(second)
    assert votes() == [(a.candidate_id, kind, "yes"), (b.candidate_id, kind, "no")]
    if kind == "verify_box":
        assert list(Vote.objects.order_by("id").values_list("box_id", flat=True)) == [
            a.box_id,
            b.box_id,
        ]
    assert page.problems() == []


def test_empty_then_a_task_then_an_expired_lease(page: Page, log_in, cat):
    start_page = "/label/?kind=verify"
    UserFactory(username="wendy", role="worker")
    log_in("wendy", start_page)
    expect(page.locator("#task-prompt")).to_have_text("Nothing to do right now")
    expect(page.locator("#state-empty")).to_be_visible()

    pictures(cat, 2)
    page.get_by_role("button", name="Look again").click()
    first = shown_after(page, "")
    MicroTask.objects.filter(uid=first).update(expires_at="2000-01-01T00:00:00Z")
    with page.expect_response(lambda r: "/answer/" in r.url) as late:
        page.get_by_role("button", name="Yes, there is a cat").click()
    assert late.value.status == 409

    second = shown_after(page, first)
    expect(page.locator("#label-notice")).to_have_text(
        "This task's time ran out; ask for the next one. No harm done: here is the next one."
    )
    assert second != first
    assert Vote.objects.count() == 0
    assert [p for p in page.problems() if "409" not in p] == []


def test_paused_worker_sees_the_reason(page: Page, log_in, cat):
    pictures(cat, 1)
    wendy = UserFactory(username="wendy", role="worker")
    WorkerProfile.objects.create(user=wendy, paused=True, pause_reason="too many fast answers")

    log_in("wendy", "/label/")

    expect(page.locator("#task-prompt")).to_have_text("Your account is paused")
    expect(page.locator("#paused-reason")).to_have_text("too many fast answers")
    expect(page.locator("#label-work")).to_be_hidden()
    assert not TaskItem.objects.exists()


def test_every_kind_fits_a_phone(page: Page, log_in, cat):
    candidates = pictures(cat, 10)
    GoldAnswer.objects.create(
        candidate=candidates[0], category_id=candidates[0].category_id, answer=True
    )
    Candidate.objects.filter(pk=candidates[0].pk).update(state="accepted")
    dog = CategoryFactory(name="dog", slug="dog", definition="a domesticated canine")
    boxed(dog, 1, state="verify")
    Candidate.objects.filter(pk=pictures(dog, 1, start=1)[0].pk).update(
        state="accepted", box_state="draw"
    )
    coverage = boxed(CategoryFactory(name="bird", slug="bird"), 1, state="coverage")
    Box.objects.create(candidate=coverage[0], x0=210, y0=120, x1=300, y1=220, state="accepted")
    page.set_viewport_size({"width": 375, "height": 740})
    task = start(page, log_in, "verify")

    for kind in KINDS:
        if kind != "verify":
            page.goto(f"/label/?kind={kind}")
            task = shown_after(page, "")
        page.locator("#label-app").evaluate("(root) => root.scrollIntoView()")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, kind
        assert page.locator("#task-actions button").first.is_visible(), kind
        screenshot(page, f"{kind}_375")
    assert task
    assert page.problems() == []


def test_worker_home_leads_to_labeling(page: Page, log_in, cat):
    pictures(cat, 1)
    wendy = UserFactory(username="wendy", role="worker")
    WorkerProfile.objects.create(user=wendy, answered_tasks=3, answered_items=11, streak=2)
    log_in("wendy", "/")
    expect(page.locator("#stat-items")).to_have_text("11")
    screenshot(page, "home")

    page.get_by_role("link", name="Start labeling").click()
    page.wait_for_url("**/label/")
    expect(page.locator("#task-prompt")).to_have_text("Is there a cat in this image?")
    page.goto("/")
    page.get_by_role("link", name="Check a box").click()

    page.wait_for_url("**/label/?kind=verify_box")
    expect(page.locator("#task-prompt")).to_have_text("Nothing to do right now")
    assert page.problems() == []


def test_each_answer_brings_the_task_after_the_next_one(page: Page, log_in, cat):
    # given five pictures to verify
    pictures(cat, 5)
    asked, answered = [], []
    page.on("request", lambda r: asked.append(r.url) if "/api/tasks/next/" in r.url else None)
    page.on("request", lambda r: answered.append(r.url) if "/answer/" in r.url else None)

    # when the worker answers all five
    shown = [start(page, log_in, "verify")]
    for _ in range(4):
        answer(page, lambda: page.keyboard.press("y"))
        shown.append(shown_after(page, shown[-1]))
    answer(page, lambda: page.keyboard.press("y"))

    # then the page asked for the first task and its prefetch only: every answer brought the
    # task to show after the next one
    expect(page.locator("#task-prompt")).to_have_text("Nothing to do right now")
    assert len(asked) == 2
    assert [url.split("/answer/")[1] for url in answered] == ["?next=verify"] * 5
    assert len(set(shown)) == 5
    assert [vote[2] for vote in votes()] == ["yes"] * 5
    assert MicroTask.objects.filter(status="answered").count() == 5
    assert page.problems() == []
