"""Curators' review, training and predict pages in real Chromium: clicks land in the
database, results show, and nothing breaks the content security policy."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from datasets.models import DatasetVersion
from labeling.models import Candidate, Image
from labeling.services.ingest import images_ingest
from tests.factories import (
    CategoryFactory,
    UserFactory,
    epoch_add,
    image_bytes,
    layer_rows,
    promoted_lenet,
)
from training.models import TrainingRun, ValidationMistake
from training.services.runs import run_create

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
    expect(page.get_by_text("Nothing at the vote cap")).to_be_visible()
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


CURVES = """() => ["chart-errors", "chart-losses"].map((id) =>
    Chart.getChart(document.getElementById(id)).data.datasets.map((d) =>
        [d.label, d.data.map((p) => [p.x, Math.round(p.y * 1000) / 1000])]))"""


def test_a_live_run_page_follows_its_epochs_then_shows_the_results(page: Page, curator, screenshot):
    version = _version()
    run = run_create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        params={"epochs": 3},
        enqueue=False,
    )
    curator("cora", f"/curate/training/runs/{run.pk}/")
    expect(page.get_by_text("No epoch has finished yet")).to_be_visible()
    page.evaluate("window.__samePage = true")

    # the run starts and its first epoch ends: the hidden charts appear, drawn
    TrainingRun.objects.filter(pk=run.pk).update(status="running", device="cpu")
    epoch_add(run, 1, 0.5)
    expect(page.locator("[data-role=status]")).to_have_text("Running")
    expect(page.locator("#chart-errors")).to_be_visible()
    assert page.locator("#chart-errors").bounding_box()["width"] > 300
    expect(page.get_by_text("No epoch has finished yet")).to_be_hidden()
    assert page.evaluate(CURVES) == [
        [["top-1 error", [[1, 50]]], ["top-5 error", [[1, 0]]]],
        [["training loss", [[1, 1]]], ["validation loss", [[1, 1.2]]]],
    ]
    epoch_add(run, 2, 0.25)
    page.wait_for_function(
        "() => Chart.getChart(document.getElementById('chart-errors')).data.datasets[0]"
        ".data.length === 2"
    )
    assert page.evaluate(CURVES)[0][0] == ["top-1 error", [[1, 50], [2, 25]]]
    assert page.evaluate("window.__samePage") is True  # no reload
    expect(page.locator("[data-role=epochs-done]")).to_have_text("2 of 3")
    expect(page.locator("[data-role=epoch-rows] tr")).to_have_count(2)

    # when the run finishes, the page reloads once with what only a finished run has
    images_ingest(
        files=[(f"{i}.jpg", image_bytes(80 + i)) for i in range(2)],
        category=CategoryFactory(name="pets", slug="pets"),
        source="upload",
        uploader=None,
    )
    images = list(Image.objects.order_by("pk"))
    for rank, (image, chance) in enumerate(zip(images, (0.1, 0.3), strict=True), start=1):
        ValidationMistake.objects.create(
            run=run,
            rank=rank,
            image=image,
            label=rank - 1,
            predicted=2 - rank,
            confidence=1 - chance,
            label_probability=chance,
        )
    TrainingRun.objects.filter(pk=run.pk).update(
        status="done",
        active=None,
        top1_error=0.25,
        top5_error=0.0,
        best_epoch=2,
        per_class_error=[0.0, 0.5],
        confusion=[[1, 0], [1, 1]],
        architecture={
            "image_size": 32,
            "layers": layer_rows(),
        },
    )
    expect(page.locator("#confusion")).to_be_visible(timeout=15_000)

    cells = page.locator("#confusion td").evaluate_all(
        "(tds) => tds.map((td) => [Number(td.dataset.count), td.className])"
    )
    assert cells == [
        [1, "num heat-8 confusion-hit"],
        [0, "num heat-0"],
        [1, "num heat-4"],
        [1, "num heat-4 confusion-hit"],
    ]
    titles = page.locator("#confusion td").evaluate_all("(tds) => tds.map((td) => td.title)")
    assert titles[2] == "dog as cat: 1 of 2 (50%)"
    expect(page.locator("#confusion thead th")).to_have_text(["True \\ predicted", "cat", "dog"])
    classes = page.evaluate(
        """() => { const chart = Chart.getChart(document.getElementById("chart-classes"));
            return [chart.data.labels, chart.data.datasets[0].data]; }"""
    )
    assert classes == [["dog", "cat"], [50, 0]]
    shown = page.locator("#mistakes li").evaluate_all("(lis) => lis.map((li) => li.dataset.image)")
    assert shown == [str(image.uid) for image in images]
    expect(page.locator("#mistakes li").first).to_contain_text("cat 10.0 %")
    expect(page.locator("[data-role=parameters]")).to_have_text("326")
    expect(page.locator("[data-role=status]")).to_have_text("Done")
    assert page.evaluate(CURVES)[0][0] == ["top-1 error", [[1, 50], [2, 25]]]
    screenshot("training-run")
    assert page.problems() == []


def test_a_live_run_page_stops_following_a_run_that_is_gone(page: Page, curator):
    run = run_create(version=_version(), backbone="lenet5", weights="random", enqueue=False)
    curator("cora", f"/curate/training/runs/{run.pk}/")
    expect(page.locator("[data-role=live-hint]")).to_contain_text("The curves below follow")

    TrainingRun.objects.filter(pk=run.pk).delete()

    expect(page.locator("[data-role=live-hint]")).to_have_text(
        "This run is gone; the page no longer follows it."
    )
    assert [p for p in page.problems() if "404" not in p] == []


def test_a_curator_downloads_a_checkpoint_and_gets_a_prediction(page: Page, curator, tmp_path):
    run = promoted_lenet(_version(), "run.pt", top1_error=0.25, top5_error=0.0)
    curator("cora", f"/curate/training/runs/{run.pk}/")

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


def test_a_curator_exports_a_version_and_downloads_it(
    page: Page, curator, monkeypatch, settings, tmp_path
):
    import hashlib

    from datasets.models import DatasetExport
    from datasets.services import exports
    from tests.factories import photos_version

    settings.CROWDNET_EXPORT_DIR = tmp_path / "exports"
    sent: list[int] = []
    monkeypatch.setattr(exports, "_enqueue", sent.append)
    version = photos_version()
    curator("cora", "/curate/exports/")

    page.get_by_label("Dataset version").select_option(str(version.number))
    page.get_by_label("Format").select_option("coco")
    page.get_by_text("Options").click()
    page.get_by_label("car").check()
    page.get_by_role("button", name="Export").click()

    expect(
        page.get_by_text(f"Exporting 6 images of version {version.number} as coco.")
    ).to_be_visible()
    row = page.locator("#exports tr[data-export]")
    expect(row.locator("[data-role=status]")).to_have_text("Queued")
    # the worker's part, here: the page follows the job on its own
    exports.export_build(sent[0])
    expect(row.locator("[data-role=status]")).to_have_text("Done")
    expect(row.locator("[data-role=written]")).to_have_text("6")
    with page.expect_download() as download:
        row.get_by_role("link", name="Download").click()
    export = DatasetExport.objects.get()
    data = Path(download.value.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == export.sha256
    assert export.options["categories"] == ["car"]
    assert page.problems() == []


def test_the_exports_forms_defaults_snapshot_the_accepted_labels_and_queue_a_job(
    page: Page, curator, monkeypatch
):
    from datasets.models import DatasetExport
    from datasets.services import exports
    from tests.factories import photos_version

    sent: list[int] = []
    monkeypatch.setattr(exports, "_enqueue", sent.append)
    photos_version()
    curator("cora", "/curate/exports/")

    expect(page.get_by_label("Dataset version")).to_have_value("")
    page.get_by_role("button", name="Export").click()

    expect(page.get_by_text("Exporting 18 images of version 2 as imagefolder.")).to_be_visible()
    expect(page.locator("#exports tr[data-export] [data-role=status]")).to_have_text("Queued")
    export = DatasetExport.objects.get()
    assert (export.version.number, export.format, sent) == (2, "imagefolder", [export.pk])
    assert page.get_by_text("This field is required.").count() == 0
    assert page.problems() == []


def test_labeling_progress_charts_match_the_database(page: Page, curator, screenshot):
    from labeling.models import Candidate
    from tests.factories import progress_seed

    progress_seed(UserFactory(username="wendy", role="worker"))
    curator("cora", "/curate/progress/")

    charts = page.evaluate(
        """() => ["states-chart", "hourly-chart"].map((id) => {
            const chart = Chart.getChart(document.getElementById(id));
            return {labels: chart.data.labels,
                    sets: chart.data.datasets.map((d) => [d.label, d.data])}; })"""
    )

    states, hourly = charts
    assert states["labels"] == ["cat", "dog", "owl"]
    for label, key in (
        ("accepted", "accepted"),
        ("in review", "needs_review"),
        ("open", "open"),
        ("rejected", "rejected"),
    ):
        counts = [
            Candidate.objects.filter(category__name=n, state=key).count() for n in states["labels"]
        ]
        assert dict(states["sets"])[label] == counts
    bars = hourly["sets"][0][1]
    assert [point["y"] for point in bars if point["y"]] == [3, 2]
    hours = [point["x"] for point in bars if point["y"]]
    assert hours[1] - hours[0] == 2 * 3600 * 1000  # the bars stand two hours apart
    assert len(bars) == 73  # every hour of the 72-hour window, empty ones as zeros
    assert [b["x"] - a["x"] for a, b in itertools.pairwise(bars)] == [3600 * 1000] * 72
    expect(page.locator("#progress-table tr[data-slug=cat] progress")).to_have_attribute(
        "value", "0.5000"
    )
    screenshot("labeling-progress")
    assert page.problems() == []


def test_crowd_quality_histograms_match_the_records_and_a_worker_is_paused(
    page: Page, curator, screenshot
):
    from labeling.models import WorkerProfile

    for name, correct, estimated in (("ann", 9, 0.95), ("bob", 8, 0.82), ("cy", 3, 0.41)):
        WorkerProfile.objects.create(
            user=UserFactory(username=name, role="worker"),
            gold_seen=10,
            gold_correct=correct,
            em_accuracy=estimated,
        )
    curator("cora", "/curate/crowd/")

    counts = page.evaluate(
        """() => ["gold-chart", "em-chart"].map((id) =>
            Chart.getChart(document.getElementById(id)).data.datasets[0].data)"""
    )

    assert counts == [[0, 0, 0, 1, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 0, 0, 0, 1, 1]]
    screenshot("crowd-quality")
    row = page.locator("#crowd-table tr[data-worker=cy]")
    row.get_by_label("Reason to pause cy").fill("Most control items wrong.")
    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("cy is paused.")).to_be_visible()
    expect(page.locator("#crowd-table tr[data-worker=cy]")).to_contain_text(
        "Most control items wrong."
    )
    assert WorkerProfile.objects.get(user__username="cy").paused is True
    assert page.problems() == []


def test_one_key_press_decides_the_first_item_to_review(page: Page, curator, screenshot):
    category = CategoryFactory(name="owl", slug="owl")
    images_ingest(
        files=[("a.jpg", image_bytes(71))], category=category, source="upload", uploader=None
    )
    Candidate.objects.update(state="accepted", yes_votes=3, model_p=0.04)
    candidate = Candidate.objects.get()
    curator("cora", "/curate/review/")

    expect(page.get_by_text("1 decision the model contradicts")).to_be_visible()
    screenshot("review")
    page.keyboard.press("n")

    expect(page.get_by_text(f"Item {candidate.pk} rejected.")).to_be_visible()
    candidate.refresh_from_db()
    assert (candidate.state, candidate.override) == ("rejected", False)
    assert page.problems() == []
