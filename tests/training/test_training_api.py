"""Curators' training API: dataset versions, runs, cancel, promote, predictions; workers and
strangers kept out."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.models import DatasetVersion
from labeling.models import Candidate, Category, Image
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes, layer_rows, promoted_lenet
from training.models import TrainingEpoch, TrainingRun, ValidationMistake
from training.services import runs
from training.services.runs import run_create

pytestmark = pytest.mark.django_db

CLASSES = [
    {"id": 1, "slug": "cat", "name": "Cat"},
    {"id": 2, "slug": "dog", "name": "Dog"},
]
PARAMS = {
    "epochs": 30,
    "batch_size": 32,
    "lr": 0.001,
    "weight_decay": 0.0001,
    "patience": 3,
    "seed": 0,
    "image_size": 96,
}


@pytest.fixture
def version() -> DatasetVersion:
    return DatasetVersion.objects.create(
        number=1,
        classes=CLASSES,
        counts={"train": [4, 4], "val": [1, 1]},
        val_share=0.2,
        images=10,
        labels_at=10,
        skipped={"class with too few images": 2},
    )


@pytest.fixture
def current(version, tmp_path) -> TrainingRun:
    return promoted_lenet(version, "run.pt", top1_error=0.25)


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def _accepted(name: str, count: int, seed: int) -> Category:
    category = Category.objects.create(name=name, slug=name.lower())
    files = [(f"{seed}-{i}.jpg", image_bytes(seed + i, size=(40, 32))) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    Candidate.objects.filter(category=category).update(state="accepted")
    return category


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/training/versions/"),
        ("post", "/api/training/versions/"),
        ("get", "/api/training/runs/"),
        ("post", "/api/training/runs/"),
        ("get", "/api/training/runs/{pk}/"),
        ("get", "/api/training/runs/{pk}/architecture/"),
        ("post", "/api/training/runs/{pk}/cancel/"),
        ("post", "/api/training/runs/{pk}/promote/"),
        ("post", "/api/training/predict/"),
    ],
)
def test_workers_and_strangers_are_kept_out(method, path, worker_api, api, version):
    run = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    url = path.format(pk=run.pk)

    worker = getattr(worker_api, method)(url)
    anonymous = getattr(api, method)(url)

    assert worker.status_code == 403
    assert worker.json() == {"detail": "Only curators can do this."}
    assert anonymous.status_code == 401
    run.refresh_from_db()
    assert (run.status, DatasetVersion.objects.count()) == ("queued", 1)


def test_versions_list_newest_first(curator_api, version, django_assert_num_queries):
    DatasetVersion.objects.create(
        number=2,
        classes=CLASSES,
        counts={"train": [5, 4], "val": [1, 2]},
        val_share=0.25,
        images=12,
    )

    with django_assert_num_queries(2):  # count, page
        response = curator_api.get("/api/training/versions/")

    assert response.status_code == 200
    body = response.json()
    assert [v["number"] for v in body["results"]] == [2, 1]
    first = body["results"][1]
    del first["created_at"]
    assert first == {
        "number": 1,
        "classes": CLASSES,
        "counts": {"train": [4, 4], "val": [1, 1]},
        "val_share": 0.2,
        "images": 10,
        "skipped": {"class with too few images": 2},
    }


def test_a_snapshot_of_chosen_categories_is_201(curator_api, curator, settings):
    settings.CROWDNET_TRAIN_MIN_PER_CLASS = 3
    cats, dogs = _accepted("Cat", 3, 100), _accepted("Dog", 4, 200)
    _accepted("Owl", 5, 300)

    response = curator_api.post(
        "/api/training/versions/",
        {"categories": [cats.pk, dogs.pk], "val_share": 0.5},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["number"], body["images"], body["val_share"]) == (1, 7, 0.5)
    assert body["classes"] == [
        {"id": cats.pk, "slug": "cat", "name": "Cat"},
        {"id": dogs.pk, "slug": "dog", "name": "Dog"},
    ]
    assert [sum(n) for n in zip(*body["counts"].values(), strict=True)] == [3, 4]
    assert DatasetVersion.objects.get().created_by == curator


def test_too_few_labels_for_a_snapshot_is_400_with_what_to_do(curator_api, settings):
    settings.CROWDNET_TRAIN_MIN_PER_CLASS = 3
    _accepted("Cat", 3, 100)

    response = curator_api.post("/api/training/versions/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "A dataset needs at least two classes with 3 or more accepted images each; "
        "1 have that. Let the crowd label more, or lower CROWDNET_TRAIN_MIN_PER_CLASS."
    }
    assert DatasetVersion.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"val_share": 0.95}, {"val_share": ["Ensure this value is less than or equal to 0.9."]}),
        (
            {"categories": [999999]},
            {"categories": ['Invalid pk "999999" - object does not exist.']},
        ),
    ],
)
def test_bad_snapshot_input_is_400(curator_api, data, errors):
    response = curator_api.post("/api/training/versions/", data, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert DatasetVersion.objects.count() == 0


def test_create_a_run_is_201_and_queued(
    curator_api, curator, version, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = curator_api.post(
            "/api/training/runs/",
            {"version": 1, "backbone": "lenet5", "weights": "random", "params": {"epochs": 3}},
            format="json",
        )

    assert response.status_code == 201
    run = TrainingRun.objects.get()
    assert queued == [run.pk]
    body = response.json()
    assert body["id"] == run.pk
    assert {k: body[k] for k in ("version", "backbone", "weights", "mode", "status")} == {
        "version": 1,
        "backbone": "lenet5",
        "weights": "random",
        "mode": "feature_extraction",
        "status": "queued",
    }
    assert body["params"] == {**PARAMS, "epochs": 3}
    assert (run.created_by, run.trigger) == (curator, "manual")


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"mode": "freeze"},
            {"mode": ["Unknown mode; use one of feature_extraction, fine_tune, full."]},
        ),
        ({"params": {"epochs": 0}}, {"epochs": ["Must be a number between 1 and 500."]}),
        (
            {"weights": "nonsense"},
            {
                "weights": [
                    "unknown weights 'nonsense': expected imagenet, lite0, random[:seed] or "
                    "checkpoint:/path/file.pt[#sha256]"
                ]
            },
        ),
        ({"backbone": ""}, {"backbone": ["This field may not be blank."]}),
    ],
)
def test_bad_run_settings_are_400_naming_the_field(curator_api, version, queued, changes, errors):
    data = {"version": 1, "backbone": "lenet5", "weights": "random", **changes}

    response = curator_api.post("/api/training/runs/", data, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert (TrainingRun.objects.count(), queued) == (0, [])


def test_a_second_run_is_409_and_an_unknown_version_404(curator_api, version, queued):
    first = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    data = {"version": 1, "backbone": "lenet5", "weights": "random"}

    busy = curator_api.post("/api/training/runs/", data, format="json")
    unknown = curator_api.post("/api/training/runs/", {**data, "version": 7}, format="json")

    assert busy.status_code == 409
    assert busy.json() == {
        "detail": f"Run {first.pk} is queued; cancel it or wait for it to finish."
    }
    assert unknown.status_code == 404
    assert list(TrainingRun.objects.all()) == [first]


def test_runs_list_newest_first_in_two_queries(curator_api, version, django_assert_num_queries):
    older = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    runs.run_finish(older, "failed", error="boom")
    newer = run_create(version=version, backbone="alexnet", weights="random", enqueue=False)

    with django_assert_num_queries(2):  # count, page with its versions
        response = curator_api.get("/api/training/runs/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["id"], r["backbone"], r["status"], r["version"]) for r in rows] == [
        (newer.pk, "alexnet", "queued", 1),
        (older.pk, "lenet5", "failed", 1),
    ]
    assert rows[1]["error"] == "boom"


def test_run_detail_has_epochs_class_names_and_confusion(
    curator_api, current, django_assert_num_queries
):
    TrainingRun.objects.filter(pk=current.pk).update(
        per_class_error=[0.5, None], confusion=[[1, 1], [0, 0]], best_epoch=2, top5_error=0.0
    )
    for epoch in (1, 2):
        TrainingEpoch.objects.create(
            run=current,
            epoch=epoch,
            train_loss=1.0 / epoch,
            val_loss=0.9 / epoch,
            top1_error=0.5 / epoch,
            top5_error=0.0,
            images_per_second=100.0 * epoch,
            seconds=2.5,
        )

    _accepted("Cat", 2, seed=40)
    images = list(Image.objects.order_by("pk"))
    for rank, (image, probability) in enumerate(zip(images, (0.125, 0.25), strict=True), 1):
        ValidationMistake.objects.create(
            run=current,
            rank=rank,
            image=image,
            label=0,
            predicted=1,
            confidence=1 - probability,
            label_probability=probability,
        )

    with django_assert_num_queries(3):  # run with its version, epochs, mistakes with images
        response = curator_api.get(f"/api/training/runs/{current.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["mistakes"] == [
        {
            "rank": rank,
            "image": str(image.uid),
            "thumbnail_url": f"/img/{image.uid}/thumb/",
            "image_url": f"/img/{image.uid}/original/",
            "label": 0,
            "predicted": 1,
            "confidence": 1 - probability,
            "label_probability": probability,
        }
        for rank, image, probability in ((1, images[0], 0.125), (2, images[1], 0.25))
    ]
    assert body["classes"] == ["Cat", "Dog"]
    assert body["per_class_error"] == [
        {"slug": "cat", "name": "Cat", "error": 0.5},
        {"slug": "dog", "name": "Dog", "error": None},
    ]
    assert body["confusion"] == [[1, 1], [0, 0]]
    assert (body["best_epoch"], body["top1_error"], body["current"]) == (2, 0.25, True)
    assert body["epochs"] == [
        {
            "epoch": 1,
            "train_loss": 1.0,
            "val_loss": 0.9,
            "top1_error": 0.5,
            "top5_error": 0.0,
            "images_per_second": 100.0,
            "seconds": 2.5,
        },
        {
            "epoch": 2,
            "train_loss": 0.5,
            "val_loss": 0.45,
            "top1_error": 0.25,
            "top5_error": 0.0,
            "images_per_second": 200.0,
            "seconds": 2.5,
        },
    ]
    assert curator_api.get("/api/training/runs/999999/").status_code == 404


def test_run_architecture_has_the_layers_and_their_totals(curator_api, current, version):
    layers = layer_rows()
    TrainingRun.objects.filter(pk=current.pk).update(
        architecture={"image_size": 32, "layers": layers}
    )
    queued = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)

    response = curator_api.get(f"/api/training/runs/{current.pk}/architecture/")
    missing = curator_api.get(f"/api/training/runs/{queued.pk}/architecture/")

    assert response.status_code == 200
    assert response.json() == {
        "image_size": 32,
        "parameters": 326,
        "trainable": 170,
        "frozen": 156,
        "layers": layers,
    }
    assert missing.status_code == 404
    assert missing.json() == {
        "detail": f"Run {queued.pk} has no layer table: it is written when a run starts training."
    }


def test_cancel_a_queued_run(curator_api, version):
    run = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)

    response = curator_api.post(f"/api/training/runs/{run.pk}/cancel/")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["status"]) == (run.pk, "cancelled")
    run.refresh_from_db()
    assert (run.status, run.active) == ("cancelled", None)


def test_promote_a_finished_run_and_refuse_an_unfinished_one(curator_api, version, current):
    TrainingRun.objects.filter(pk=current.pk).update(current=False)
    queued_run = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)

    refused = curator_api.post(f"/api/training/runs/{queued_run.pk}/promote/")
    promoted = curator_api.post(f"/api/training/runs/{current.pk}/promote/")

    assert refused.status_code == 400
    assert refused.json() == {"detail": "Only a finished run with a checkpoint can be promoted."}
    assert promoted.status_code == 200
    assert (promoted.json()["id"], promoted.json()["current"]) == (current.pk, True)
    assert list(TrainingRun.objects.filter(current=True)) == [current]


def test_predict_returns_the_current_models_classes_by_probability(curator_api, current):
    image = image_bytes(11, "PNG", size=(64, 48))

    response = curator_api.post(
        "/api/training/predict/", {"image": _upload("x.png", image)}, format="multipart"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["run"] == current.pk
    predictions = body["predictions"]
    assert sorted((p["slug"], p["name"]) for p in predictions) == [("cat", "Cat"), ("dog", "Dog")]
    probabilities = [p["probability"] for p in predictions]
    assert sum(probabilities) == pytest.approx(1.0)
    assert probabilities == sorted(probabilities, reverse=True)


def test_predict_refuses_a_non_image_and_a_missing_file(curator_api, current):
    text = curator_api.post(
        "/api/training/predict/",
        {"image": _upload("notes.png", b"just some text, not a picture")},
        format="multipart",
    )
    missing = curator_api.post("/api/training/predict/", {}, format="multipart")

    assert text.status_code == 400
    assert text.json() == {
        "image": [
            "looks like a text file; only raster images are accepted: "
            "JPEG, PNG, WebP, GIF, BMP, TIFF"
        ]
    }
    assert missing.status_code == 400
    assert missing.json() == {"image": ["No file was submitted."]}


def test_predict_refuses_a_file_over_the_limit_without_reading_it(curator_api, current, settings):
    settings.CROWDNET_MAX_IMAGE_BYTES = 100
    image = image_bytes(5, "PNG")

    response = curator_api.post(
        "/api/training/predict/", {"image": _upload("big.png", image)}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json() == {
        "image": [
            f"the file is {len(image):,} bytes, more than the limit of 100 bytes; "
            "resize or recompress it before uploading"
        ]
    }


def test_predict_without_a_current_model_is_409(curator_api):
    response = curator_api.post(
        "/api/training/predict/",
        {"image": _upload("x.png", image_bytes(3, "PNG"))},
        format="multipart",
    )

    assert response.status_code == 409
    assert response.json() == {
        "detail": "No model is current yet: promote a finished training run."
    }


def test_predict_with_a_missing_checkpoint_is_503(curator_api, current, tmp_path):
    (tmp_path / "checkpoints" / current.checkpoint).unlink()

    response = curator_api.post(
        "/api/training/predict/",
        {"image": _upload("x.png", image_bytes(3, "PNG"))},
        format="multipart",
    )

    assert response.status_code == 503
    assert response.json() == {
        "detail": "The current model's checkpoint cannot be read; promote another run or "
        "train a new one."
    }


def test_the_schema_documents_the_training_endpoints(curator_api):
    paths = curator_api.get("/api/schema/", {"format": "json"}).json()["paths"]

    assert set(paths["/api/training/runs/"]) == {"get", "post"}
    assert set(paths["/api/training/versions/"]) == {"get", "post"}
    assert "get" in paths["/api/training/runs/{id}/"]
    for action in ("cancel", "promote"):
        assert "post" in paths[f"/api/training/runs/{{id}}/{action}/"]
    predict = paths["/api/training/predict/"]["post"]["requestBody"]["content"]
    assert list(predict) == ["multipart/form-data"]


def test_a_checkpoint_downloads_only_while_it_matches_its_hash(
    curator_api, worker_api, current, tmp_path
):
    stored = tmp_path / "checkpoints" / current.checkpoint  # the checkpoint store, on disk
    url = f"/api/training/runs/{current.pk}/checkpoint/"

    response = curator_api.get(url)

    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == stored.read_bytes()
    assert response["X-Checkpoint-SHA256"] == current.checkpoint_sha256
    assert response["Content-Disposition"] == (
        f'attachment; filename="crowdnet-run-{current.pk}-lenet5.pt"'
    )
    assert worker_api.get(url).status_code == 403

    with stored.open("ab") as handle:  # damaged on disk
        handle.write(b"x")
    damaged = curator_api.get(url)
    assert damaged.status_code == 409
    assert damaged.json()["detail"].startswith("The checkpoint no longer matches")

    TrainingRun.objects.filter(pk=current.pk).update(checkpoint="")
    assert curator_api.get(url).json() == {"detail": "This run has no checkpoint."}
