"""Curators' training pages: runs and versions, one run's curves and tables, predictions."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets.models import DatasetVersion
from jobs.kinds import TRAINING
from jobs.services import job_claim
from labeling.models import Candidate, Category, Image
from labeling.services.ingest import images_ingest
from tests.factories import epoch_add, image_bytes, layer_rows, promoted_lenet
from training.ml.loop import EpochStats
from training.models import TrainingEpoch, TrainingRun, ValidationMistake
from training.services.execute import _epoch_writer
from training.services.runs import run_create, run_finish

pytestmark = pytest.mark.django_db

PAGES = [
    ("get", "curate-training", []),
    ("post", "curate-training", []),
    ("get", "curate-training-run", ["pk"]),
    ("get", "curate-predict", []),
    ("post", "curate-predict", []),
]


@pytest.fixture
def version() -> DatasetVersion:
    return DatasetVersion.objects.create(
        number=1,
        classes=[
            {"id": 1, "slug": "cat", "name": "<b>Cat</b>"},
            {"id": 2, "slug": "dog", "name": "Dog"},
        ],
        counts={"train": [4, 4], "val": [2, 3]},
        val_share=0.2,
        images=13,
        labels_at=13,
    )


@pytest.fixture
def current(version, tmp_path) -> TrainingRun:
    return promoted_lenet(version, "run.pt", top1_error=0.25, top5_error=0.0)


@pytest.mark.parametrize(("method", "name", "args"), PAGES)
def test_workers_get_403_and_strangers_the_login_page(client, worker, version, method, name, args):
    run = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    url = reverse(name, args=[run.pk for _ in args])

    data = {"action": "snapshot"} if method == "post" else None
    anonymous = getattr(client, method)(url, data)
    client.force_login(worker)
    refused = getattr(client, method)(url, data)

    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/accounts/login/?next={url}"
    assert refused.status_code == 403
    assert DatasetVersion.objects.count() == 1


def test_the_page_shows_the_current_model_versions_and_runs(client, curator, version, current):
    failed = run_create(version=version, backbone="alexnet", weights="random", enqueue=False)
    run_finish(failed, "failed", error="boom")
    going = run_create(version=version, backbone="resnet18", weights="random", enqueue=False)
    TrainingRun.objects.filter(pk=going.pk).update(device="cuda:0")
    client.force_login(curator)

    page = client.get(reverse("curate-training")).content.decode()

    assert f'<a href="/curate/training/runs/{current.pk}/">Run {current.pk}</a>' in page
    assert "<dt>Dataset</dt><dd>v1, 2 classes</dd>" in page
    assert "<dt>Top-1 error, validation split</dt><dd>25.0\N{NO-BREAK SPACE}%</dd>" in page
    assert "13 images in 2 classes (&lt;b&gt;Cat&lt;/b&gt;, Dog)" in page
    assert "<b>Cat</b>" not in page
    assert '<option value="1">v1: 13 images in 2 classes</option>' in page
    assert '<option value="lenet5">lenet5</option>' in page
    assert 'name="weights" value="imagenet"' in page
    assert page.count('<span class="badge badge-') == 4  # 3 statuses and "current"
    assert '<span class="badge badge-running">' not in page
    assert "<td>cuda:0</td>" in page
    assert f"Cancel run {going.pk}</button>" in page
    assert f"Promote run {current.pk}" not in page  # it is already the current one
    assert f"Cancel run {failed.pk}" not in page and f"Promote run {failed.pk}" not in page


def test_start_a_run_and_land_on_its_page(
    client, curator, version, queued, django_capture_on_commit_callbacks
):
    client.force_login(curator)
    form = {
        "action": "start",
        "version": "1",
        "backbone": "lenet5",
        "weights": "random",
        "mode": "full",
        "epochs": "4",
        "image_size": "32",
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("curate-training"), form)

    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/curate/training/runs/{run.pk}/"
    assert queued == [run.pk]
    assert (run.backbone, run.weights, run.mode, run.created_by) == (
        "lenet5",
        "random",
        "full",
        curator,
    )
    assert (run.params["epochs"], run.params["image_size"]) == (4, 32)
    page = client.get(response["Location"]).content.decode()
    assert f"Run {run.pk} queued." in page
    assert 'data-live="true"' in page
    assert "No epoch has finished yet;" in page


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (
            {"weights": "nonsense"},
            "unknown weights &#x27;nonsense&#x27;: expected imagenet, lite0, random[:seed] or "
            "checkpoint:/path/file.pt[#sha256]",
        ),
        ({"epochs": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"backbone": "resnet9000"}, "Select a valid choice. resnet9000 is not one of the"),
    ],
)
def test_bad_settings_show_on_the_form(client, curator, version, queued, changes, error):
    client.force_login(curator)
    form = {"action": "start", "version": "1", "backbone": "lenet5", "weights": "random"}
    form |= {"mode": "full", "epochs": "4", "image_size": "32", **changes}

    response = client.post(reverse("curate-training"), form)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert (TrainingRun.objects.count(), queued) == (0, [])


def test_a_second_run_is_refused_while_one_is_queued(client, curator, version, queued):
    first = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    client.force_login(curator)
    form = {"action": "start", "version": "1", "backbone": "lenet5", "weights": "random"}
    form |= {"mode": "full", "epochs": "4", "image_size": "32"}

    response = client.post(reverse("curate-training"), form)

    assert response.status_code == 200
    page = response.content.decode()
    assert f"Run {first.pk} is queued; cancel it or wait for it to finish." in page
    assert list(TrainingRun.objects.all()) == [first]


def _accepted(name: str, count: int, seed: int) -> None:
    category = Category.objects.create(name=name, slug=name.lower())
    files = [(f"{seed}-{i}.jpg", image_bytes(seed + i, size=(40, 32))) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    Candidate.objects.filter(category=category).update(state="accepted")


def test_new_dataset_version_and_too_few_labels(client, curator, settings):
    settings.CROWDNET_TRAIN_MIN_PER_CLASS = 3
    client.force_login(curator)
    _accepted("Cat", 3, 100)

    refused = client.post(reverse("curate-training"), {"action": "snapshot"}, follow=True)
    _accepted("Dog", 4, 200)
    made = client.post(reverse("curate-training"), {"action": "snapshot"}, follow=True)

    assert "1 have that. Let the crowd label more" in refused.content.decode()
    assert "Dataset version 1: 7 images in 2 classes." in made.content.decode()
    assert DatasetVersion.objects.get().created_by == curator


def test_cancel_and_promote_from_the_pages(client, curator, version, current):
    TrainingRun.objects.filter(pk=current.pk).update(current=False)
    run = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    client.force_login(curator)
    url = reverse("curate-training")

    too_early = client.post(url, {"action": "promote", "run": run.pk}, follow=True)
    cancelled = client.post(url, {"action": "cancel", "run": run.pk, "back": "run"})
    run_page = client.get(cancelled["Location"]).content.decode()
    promoted = client.post(url, {"action": "promote", "run": current.pk}, follow=True)
    missing = client.post(url, {"action": "cancel", "run": "nope"})

    assert "Only a finished run with a checkpoint can be promoted." in too_early.content.decode()
    assert cancelled["Location"] == f"/curate/training/runs/{run.pk}/"
    assert f"Run {run.pk} cancelled." in run_page
    assert f"Run {current.pk} is now the current model." in promoted.content.decode()
    assert missing.status_code == 400
    run.refresh_from_db()
    assert (run.status, list(TrainingRun.objects.filter(current=True))) == ("cancelled", [current])


def _mistake_image() -> Image:
    category = Category.objects.create(name="Cat", slug="cat")
    images_ingest(
        files=[("m.jpg", image_bytes(7))], category=category, source="upload", uploader=None
    )
    return Image.objects.get()


def test_the_run_page_feeds_its_charts_the_runs_json_and_escapes_class_names(
    client, curator, current, django_assert_max_num_queries
):
    TrainingRun.objects.filter(pk=current.pk).update(
        per_class_error=[0.5, None],
        confusion=[[1, 1], [0, 3]],
        best_epoch=3,
        architecture={
            "image_size": 32,
            "layers": layer_rows(),
        },
    )
    for epoch in (1, 2, 3):
        epoch_add(current, epoch, 0.6 / epoch)
    image = _mistake_image()
    ValidationMistake.objects.create(
        run=current,
        rank=1,
        image=image,
        label=0,
        predicted=1,
        confidence=0.9,
        label_probability=0.1,
    )
    client.force_login(curator)

    with django_assert_max_num_queries(8):
        page = client.get(reverse("curate-training-run", args=[current.pk])).content.decode()

    data = json.loads(
        re.search(
            r'<script id="run-data" type="application/json">(.*?)</script>', page, re.S
        ).group(1)
    )
    assert [e["top1_error"] for e in data["epochs"]] == [0.6 / n for n in (1, 2, 3)]
    assert data["per_class_error"][0] == {"slug": "cat", "name": "<b>Cat</b>", "error": 0.5}
    assert data["mistakes"][0]["image"] == str(image.uid)
    assert '<canvas id="chart-errors"' in page and '<canvas id="chart-classes"' in page
    assert '<meta http-equiv="refresh"' not in page
    cat_row = '<th scope="row">&lt;b&gt;Cat&lt;/b&gt;</th><td class="num">2</td>'
    assert cat_row + '<td class="num">50.0\N{NO-BREAK SPACE}%</td>' in page
    assert '<th scope="row">Dog</th><td class="num">3</td><td class="num">—</td>' in page
    assert data["confusion"] == [[1, 1], [0, 3]]
    assert data["classes"] == ["<b>Cat</b>", "Dog"]
    assert '<table class="compact row-heads confusion heat-map" id="confusion">' in page
    assert (
        'Label</dt><dd>&lt;b&gt;Cat&lt;/b&gt; <span class="hint">10.0\N{NO-BREAK SPACE}%</span>'
        in page
    )
    assert 'Model</dt><dd>Dog <span class="hint">90.0\N{NO-BREAK SPACE}%</span>' in page
    assert '<dd data-role="parameters">326</dd>' in page
    assert '<dd data-role="trainable">170</dd>' in page
    assert '<dd data-role="frozen">156</dd>' in page
    times = " \N{MULTIPLICATION SIGN} "
    conv = f'<td class="nowrap">6{times}28{times}28</td><td class="num">156</td><td>frozen</td>'
    assert conv in page
    assert "<b>Cat</b>" not in page


def test_a_live_run_page_says_it_follows_the_run_and_a_queued_one_has_no_layers_yet(
    client, curator, version
):
    run = run_create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        params={"epochs": 4},
        by=curator,
        enqueue=False,
    )
    client.force_login(curator)

    page = client.get(reverse("curate-training-run", args=[run.pk])).content.decode()

    assert 'data-live="true"' in page
    assert "0 of 4" in page
    assert "No epoch has finished yet" in page
    assert "The layer table is written when the run starts training." in page
    assert "Images the model gets most wrong" not in page


def test_a_finished_run_without_mistakes_says_whether_it_had_any(client, curator, current):
    client.force_login(curator)
    url = reverse("curate-training-run", args=[current.pk])

    older = client.get(url).content.decode()
    TrainingRun.objects.filter(pk=current.pk).update(top1_error=0.0)
    perfect = client.get(url).content.decode()

    assert "Not recorded for this run" in older and "every validation image right" not in older
    assert "The model gets every validation image right at its best epoch." in perfect


def test_a_diverged_loss_is_stored_and_shown_as_none(client, curator, current):
    TrainingRun.objects.filter(pk=current.pk).update(status="queued")
    write = _epoch_writer(job_claim(TRAINING, current.pk), None)  # as a running attempt writes
    write(EpochStats(1, float("nan"), float("inf"), 0.5, 0.0, 10.0, 1.0))
    TrainingRun.objects.filter(pk=current.pk).update(status="done")
    client.force_login(curator)

    page = client.get(reverse("curate-training-run", args=[current.pk])).content.decode()
    api = client.get(f"/api/training/runs/{current.pk}/").json()

    stored = TrainingEpoch.objects.values_list("train_loss", "val_loss", "top1_error").get()
    raw = re.search(r'<script id="run-data" type="application/json">(.*?)</script>', page, re.S)
    epoch = json.loads(raw.group(1))["epochs"][0]
    assert stored == (None, None, 0.5)
    assert (epoch["train_loss"], epoch["val_loss"], epoch["top1_error"]) == (None, None, 0.5)
    assert (api["epochs"][0]["train_loss"], api["epochs"][0]["val_loss"]) == (None, None)
    assert '<th scope="row">1</th><td class="num">—</td><td class="num">—</td>' in page


def test_predict_shows_the_top_classes_as_meters(client, curator, current):
    client.force_login(curator)
    upload = SimpleUploadedFile("photo.png", image_bytes(11, "PNG"), content_type="image/png")

    page = client.post(reverse("curate-predict"), {"image": upload}).content.decode()

    assert "Top 2 for photo.png" in page
    values = [float(v) for v in re.findall(r'<meter min="0" max="1" value="([0-9.]+)"', page)]
    assert len(values) == 2
    assert sum(values) == pytest.approx(1.0, abs=1e-3)
    assert values == sorted(values, reverse=True)
    assert "&lt;b&gt;Cat&lt;/b&gt;" in page and "<b>Cat</b>" not in page


def test_predict_shows_why_an_upload_is_refused_or_no_model_answers(client, curator, version):
    client.force_login(curator)
    text = SimpleUploadedFile("notes.png", b"just some text", content_type="image/png")
    picture = SimpleUploadedFile("photo.png", image_bytes(3, "PNG"), content_type="image/png")

    refused = client.post(reverse("curate-predict"), {"image": text}).content.decode()
    no_model = client.post(reverse("curate-predict"), {"image": picture}).content.decode()

    assert "Looks like a text file; only raster images are accepted: JPEG, PNG" in refused
    assert "No model is current yet: promote a finished training run." in no_model
    assert "<meter" not in refused + no_model
    page = client.get(reverse("curate-predict")).content.decode()
    assert 'accept="image/*"' in page
