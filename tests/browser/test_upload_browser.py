"""The upload page in real Chromium: picking, dropping, archives, keyboard, CSP, roles."""

from __future__ import annotations

import base64
import io
import os
import zipfile

import pytest
from playwright.sync_api import Page, expect

from labeling.models import Candidate, Image, ImportJob
from tests.factories import CategoryFactory, UserFactory, image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

TEXT_REASON = (
    "looks like a text file; only raster images are accepted: JPEG, PNG, WebP, GIF, BMP, TIFF"
)
EVIL_REASON = (
    "'../evil.png' climbs out of the archive with '..'; entries must use relative paths "
    "inside the archive, re-create the archive from the folder that holds the images"
)


@pytest.fixture
def curator_on_upload(page: Page, log_in) -> Page:
    UserFactory(username="cora", role="curator")
    CategoryFactory(name="cat", slug="cat")
    log_in("cora", "/curate/upload/")
    page.get_by_label("Category").select_option("cat")
    return page


def jpeg(name: str, seed: int) -> dict:
    return {"name": name, "mimeType": "image/jpeg", "buffer": image_bytes(seed)}


def report_rows(page: Page) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.locator("#report-rows tr").all()
    ]


def test_picked_files_are_uploaded_and_reported(curator_on_upload: Page):
    page = curator_on_upload
    notes = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"just some words\n"}

    page.locator("input[name=files]").set_input_files([jpeg("a.jpg", 1), jpeg("b.jpg", 2), notes])
    expect(page.locator("#file-list li")).to_have_count(3)
    expect(page.locator("#chosen-count")).to_contain_text("3 files ready")
    page.get_by_role("button", name="Upload", exact=True).click()

    expect(page.locator("#summary")).to_have_text("2 added, 0 duplicates, 1 rejected")
    assert report_rows(page) == [
        ["a.jpg", "added", ""],
        ["b.jpg", "added", ""],
        ["notes.txt", "rejected", TEXT_REASON],
    ]
    expect(page.locator("#file-list li")).to_have_count(0)
    assert Image.objects.count() == 2
    assert Candidate.objects.filter(category__slug="cat").count() == 2
    if os.environ.get("CROWDNET_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["CROWDNET_SCREENSHOTS"], "upload.png"))
    assert page.problems() == []


def test_dropped_files_are_listed_and_uploaded(curator_on_upload: Page):
    page = curator_on_upload
    files = [
        {
            "name": f"drop{seed}.jpg",
            "type": "image/jpeg",
            "b64": base64.b64encode(image_bytes(seed)).decode(),
        }
        for seed in (3, 4)
    ]
    transfer = page.evaluate_handle(
        """(files) => {
          const transfer = new DataTransfer();
          for (const file of files) {
            const bytes = Uint8Array.from(atob(file.b64), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], file.name, { type: file.type }));
          }
          return transfer;
        }""",
        files,
    )

    page.locator("#dropzone").dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(page.locator("#dropzone")).to_have_class("dropzone dragging")
    page.locator("#dropzone").dispatch_event("drop", {"dataTransfer": transfer})
    expect(page.locator("#file-list li .name")).to_have_text(["drop3.jpg", "drop4.jpg"])
    page.get_by_role("button", name="Upload", exact=True).click()

    expect(page.locator("#summary")).to_have_text("2 added, 0 duplicates, 0 rejected")
    assert Image.objects.count() == 2
    assert page.problems() == []


def test_archive_with_an_unsafe_entry(curator_on_upload: Page):
    page = curator_on_upload
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("one.jpg", image_bytes(5))
        archive.writestr("sub/two.jpg", image_bytes(6))
        archive.writestr("../evil.png", image_bytes(7, "PNG"))
    bundle = {"name": "bundle.zip", "mimeType": "application/zip", "buffer": buffer.getvalue()}

    page.locator("input[name=files]").set_input_files([bundle])
    page.get_by_role("button", name="Upload", exact=True).click()

    expect(page.locator("#summary")).to_have_text("2 added, 0 duplicates, 1 rejected")
    rows = report_rows(page)
    assert sorted(rows) == [
        ["bundle.zip:../evil.png", "rejected", EVIL_REASON],
        ["bundle.zip:one.jpg", "added", ""],
        ["bundle.zip:sub/two.jpg", "added", ""],
    ]
    assert Image.objects.count() == 2
    assert page.problems() == []


def test_keyboard_opens_the_file_picker(curator_on_upload: Page):
    page = curator_on_upload
    # Listening early turns on Playwright's chooser interception before any key is pressed;
    # turned on by expect_file_chooser alone, it can race the key press and miss the chooser.
    page.on("filechooser", lambda chooser: None)
    page.get_by_label("Category").focus()

    page.keyboard.press("Tab")
    expect(page.locator("#dropzone")).to_be_focused()
    with page.expect_file_chooser() as enter:
        page.keyboard.press("Enter")
    with page.expect_file_chooser() as space:
        page.keyboard.press(" ")

    assert enter.value.is_multiple()
    assert space.value.is_multiple()
    enter.value.set_files([jpeg("kbd.jpg", 8)])
    expect(page.locator("#file-list li .name")).to_have_text(["kbd.jpg"])
    assert page.problems() == []


def test_upload_without_files_says_what_to_do(curator_on_upload: Page):
    page = curator_on_upload

    page.get_by_role("button", name="Upload", exact=True).click()

    expect(page.locator("#upload-error")).to_have_text("Choose or drop at least one file.")
    expect(page.locator("#dropzone")).to_be_focused()
    assert Image.objects.count() == 0


def test_worker_sees_403_on_the_upload_page(page: Page, log_in):
    UserFactory(username="wendy", role="worker")
    log_in("wendy", "/")

    response = page.goto("/curate/upload/")

    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_role("link", name="Upload")).to_have_count(0)


def test_import_job_page_follows_the_job(page: Page, log_in):
    cora = UserFactory(username="cora", role="curator")
    job = ImportJob.objects.create(
        source="url", category=CategoryFactory(name="cat", slug="cat"), created_by=cora
    )
    log_in("cora", f"/curate/imports/{job.uid}/")
    expect(page.locator("#job-status")).to_have_text("Queued")
    expect(page.locator("#report")).to_be_hidden()

    ImportJob.objects.filter(pk=job.pk).update(
        status="done",
        added=1,
        rejected=1,
        report=[
            {"name": "https://example.com/a.jpg", "outcome": "added"},
            {"name": "<img src=x>", "outcome": "rejected", "reason": "not an image"},
        ],
    )

    expect(page.locator("#job-status")).to_have_text("Done")
    expect(page.locator("#summary")).to_have_text("1 added, 0 duplicates, 1 rejected")
    assert report_rows(page) == [
        ["https://example.com/a.jpg", "added", ""],
        ["<img src=x>", "rejected", "not an image"],
    ]
    expect(page.locator("#job-running")).to_be_hidden()
    assert page.problems() == []
