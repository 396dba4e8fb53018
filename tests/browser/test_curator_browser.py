"""Curators' review, training and predict pages in real Chromium: clicks land in the
database, results show, and nothing breaks the content security policy."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from labeling.models import Candidate
from labeling.services.ingest import images_ingest
from tests.factories import CategoryFactory, UserFactory, image_bytes, promoted_lenet
from training.models import DatasetVersion, TrainingEpoch

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture
def curator(page: Page, log_in):
    UserFactory(username="cora", role="curator")
    return log_in


def test_a_curator_decides_an_item_from_the_review_queue(page: Page, curator):
    category = CategoryFactory(name="cat", slug="cat")
    images_ingest(
        files=[("a.jpg", image_bytes(61))], category=category, source="upload", uploader=None
    )
    candidate = Candidate.objects.get()
    Candidate.objects.update(state="needs_review", yes_votes=3, no_votes=4, posterior=0.3)
    curator("cora", "/curate/review/")

    expect(page.get_by_text("3 yes, 4 no; P(yes) 0.30")).to_be_visible()
    page.get_by_role("button", name="No", exact=True).click()

    expect(page.get_by_text(f"Item {candidate.pk} rejected.")).to_be_visible()
    expect(page.get_by_text("Nothing to review")).to_be_visible()
    candidate.refresh_from_db()
    assert (candidate.state, candidate.override) == ("rejected", False)
    assert page.problems() == []


def _version() -> DatasetVersion:
    cats, dogs = CategoryFactory(name="cat", slug="cat"), CategoryFactory(name="dog", slug="dog")
    return DatasetVersion.objects.create(
        number=1,
        classes=[{"id": c.pk, "slug": c.slug, "name": c.name} for c in (cats, dogs)],
        counts={"train": [4, 4], "val": [1, 1]},
        val_share=0.2,
        images=10,
    )


def test_a_curator_sees_the_curves_and_gets_a_prediction(page: Page, curator, tmp_path):
    run = promoted_lenet(_version(), tmp_path / "run.pt", top1_error=0.25, top5_error=0.0)
    for epoch, error in enumerate([0.5, 0.4, 0.25], start=1):
        TrainingEpoch.objects.create(
            run=run,
            epoch=epoch,
            train_loss=1 / epoch,
            val_loss=1.2 / epoch,
            top1_error=error,
            top5_error=0.0,
            images_per_second=100.0,
            seconds=1.0,
        )
    curator("cora", f"/curate/training/runs/{run.pk}/")

    charts = page.locator("svg[role=img]")
    expect(charts).to_have_count(2)
    assert page.locator("svg[role=img] polyline").count() >= 2
    download = page.get_by_role("link", name="Download")
    assert download.get_attribute("href") == f"/api/training/runs/{run.pk}/checkpoint/"

    page.goto("/curate/predict/")
    page.locator("#id_image").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": image_bytes(62)}
    )
    page.get_by_role("button", name="Predict").click()

    expect(page.locator(".prediction-list li")).to_have_count(2)
    names = page.locator(".prediction-name").all_inner_texts()
    assert sorted(names) == ["cat", "dog"]
    assert page.problems() == []
