"""The three shared stores on S3, for real: moto's standalone S3 server on 127.0.0.1 is the
bucket, STORAGES is what settings.py makes of ``CROWDNET_STORAGE=s3``, and django-storages
talks HTTP to it through boto3. Ingest, a training run's checkpoint (saved, published only by
its owner, loaded as starting weights and for a prediction, downloaded) and an export archive
(built, downloaded through the API, swept, expired) all go through the bucket, and the
objects are checked with boto3 by key, size and content."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.utils import timezone
from moto.server import ThreadedMotoServer

from config.file_stores import store
from datasets.models import DatasetExport
from datasets.services import exports
from datasets.services.exports import export_build, export_create, exports_expire
from jobs.kinds import EXPORT
from jobs.services import job_claim, job_sweep
from labeling.models import Image
from labeling.services.media import media_orphans_sweep
from tests.factories import digits_version, image_bytes, photos_version
from training.models import TrainingRun
from training.services.execute import run_execute
from training.services.runs import run_create, run_promote
from training.services.weights import OUTSIDE_STORE

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
STORAGE_SETTINGS = (
    "CROWDNET_STORAGE",
    "CROWDNET_S3_",
    "CROWDNET_VAR_DIR",
    "CROWDNET_MEDIA_ROOT",
    "CROWDNET_CHECKPOINT_DIR",
    "CROWDNET_EXPORT_DIR",
)
SMALL = {"epochs": 1, "batch_size": 16, "lr": 0.003, "image_size": 32, "patience": 10}
# boto3 takes its credentials from here; nothing may reach past 127.0.0.1
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_PROXY": "127.0.0.1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with test credentials in the environment."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        yield f"http://{host}:{port}"
    server.stop()


def _storages_for(env: dict[str, str]) -> dict[str, Any]:
    """STORAGES as settings.py makes it from ``env`` (in a fresh interpreter), whatever
    storage settings this process's environment has."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(STORAGE_SETTINGS)}
    done = subprocess.run(
        [sys.executable, "-c", "import json, config.settings as s; print(json.dumps(s.STORAGES))"],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def s3_storages(endpoint) -> dict[str, Any]:
    return _storages_for(
        {
            "CROWDNET_STORAGE": "s3",
            "CROWDNET_S3_BUCKET": "crowdnet-test",
            "CROWDNET_S3_ENDPOINT_URL": endpoint,
            "CROWDNET_S3_REGION": REGION,
        }
    )


@pytest.fixture
def bucket(endpoint, s3_storages, settings, tmp_path) -> Any:
    """A fresh, empty bucket behind all three stores; returns it as a boto3 Bucket."""
    name = f"crowdnet-{uuid.uuid4().hex[:12]}"
    s3 = boto3.resource("s3", endpoint_url=endpoint, region_name=REGION)
    created = s3.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    stores = {
        alias: {**entry, "OPTIONS": {**entry["OPTIONS"], "bucket_name": name}}
        if alias != "staticfiles"
        else entry
        for alias, entry in s3_storages.items()
    }
    settings.STORAGES = stores  # setting_changed empties Django's cache of storages
    settings.CROWDNET_TRAIN_DEVICE = "cpu"
    settings.CROWDNET_TRAIN_THREADS = 1
    settings.CROWDNET_EMBEDDING_DIR = tmp_path / "embeddings"
    return created


def _objects(bucket, prefix: str = "") -> dict[str, int]:
    """Every object's key and size under ``prefix``."""
    return {item.key: item.size for item in bucket.objects.filter(Prefix=prefix)}


def _body(bucket, key: str) -> bytes:
    return bucket.Object(key).get()["Body"].read()


def test_settings_make_three_s3_stores_each_under_its_own_prefix(endpoint, s3_storages):
    assert {alias: entry["BACKEND"] for alias, entry in s3_storages.items()} == {
        "default": "storages.backends.s3.S3Storage",
        "checkpoints": "storages.backends.s3.S3Storage",
        "exports": "storages.backends.s3.S3Storage",
        "staticfiles": "whitenoise.storage.CompressedStaticFilesStorage",
    }
    assert s3_storages["checkpoints"]["OPTIONS"] == {
        "bucket_name": "crowdnet-test",
        "endpoint_url": endpoint,
        "region_name": REGION,
        "location": "checkpoints",
        "default_acl": None,
        "file_overwrite": True,
        "max_memory_size": 8 * 2**20,
    }
    locations = [s3_storages[alias]["OPTIONS"]["location"] for alias in ("default", "exports")]
    assert locations == ["media", "exports"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CROWDNET_STORAGE": "gcs"}, "CROWDNET_STORAGE='gcs': use filesystem"),
        ({"CROWDNET_STORAGE": "s3"}, "CROWDNET_STORAGE=s3 needs CROWDNET_S3_BUCKET."),
        (
            {
                "CROWDNET_STORAGE": "s3",
                "CROWDNET_S3_BUCKET": "b",
                "CROWDNET_S3_ENDPOINT_URL": "127.0.0.1:9000",
            },
            "CROWDNET_S3_ENDPOINT_URL='127.0.0.1:9000' is not an http(s) URL.",
        ),
        (
            {
                "CROWDNET_STORAGE": "s3",
                "CROWDNET_S3_BUCKET": "b",
                "CROWDNET_STORAGE_BACKEND": "storages.backends.s3.S3Storage",
            },
            "Set CROWDNET_STORAGE or the older CROWDNET_STORAGE_BACKEND, not both.",
        ),
    ],
)
def test_malformed_storage_settings_are_refused_at_start(env, message):
    with pytest.raises(subprocess.CalledProcessError) as refused:
        _storages_for(env)

    assert "ImproperlyConfigured" in refused.value.stderr
    assert message in refused.value.stderr


def test_the_default_keeps_the_three_stores_in_their_folders(tmp_path):
    stores = _storages_for({"CROWDNET_VAR_DIR": str(tmp_path)})

    assert {alias: entry.get("OPTIONS") for alias, entry in stores.items()} == {
        "default": {"location": str(tmp_path / "media")},
        "checkpoints": {"location": str(tmp_path / "checkpoints")},
        "exports": {"location": str(tmp_path / "exports")},
        "staticfiles": None,
    }


def test_a_large_object_read_through_a_store_spools_to_disk_not_memory(bucket):
    """django-storages reads an object into a SpooledTemporaryFile that, with its default
    max_memory_size of 0, never rolls over: a multi-GB export download would sit in a web
    worker's memory."""
    body = b"x" * (8 * 2**20 + 1)
    bucket.put_object(Key="exports/big.zip", Body=body)

    with store("exports").open("big.zip", "rb") as opened:
        first = opened.read(4)
        spooled = opened.file

        assert (first, spooled._rolled) == (b"xxxx", True)


def test_an_uploaded_image_lands_in_the_bucket_and_orphans_are_swept(bucket, category, curator_api):
    data = image_bytes(3, "PNG")

    response = curator_api.post(
        "/api/imports/upload/",
        {"category": category.slug, "files": [SimpleUploadedFile("a.png", data, "image/png")]},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    image = Image.objects.get()
    names = [image.file.name, image.thumbnail.name, image.train_copy.name]
    stored = _objects(bucket)
    assert sorted(stored) == sorted(f"media/{name}" for name in names)
    assert stored[f"media/{image.file.name}"] == len(data)
    assert hashlib.sha256(_body(bucket, f"media/{image.file.name}")).hexdigest() == image.sha256
    assert store("default").open(image.train_copy.name).read() == _body(
        bucket, f"media/{image.train_copy.name}"
    )

    # a file no image refers to is found under its prefix and removed
    bucket.put_object(Key="media/thumbs/ff/ff/orphan.jpg", Body=b"left behind")
    assert media_orphans_sweep(grace=timedelta(0)) == 1
    assert sorted(_objects(bucket)) == sorted(f"media/{name}" for name in names)


def _queued_run() -> TrainingRun:
    """A tiny LeNet-5 run on the digits (ingested into the bucket), queued but not sent."""
    version = digits_version()
    return run_create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        params=SMALL,
        enqueue=False,
    )


def test_a_run_saves_its_checkpoint_in_the_bucket_and_it_is_loaded_back(bucket, curator_api):
    run = _queued_run()
    version = run.version

    done = run_execute(run.pk)

    assert (done.status, done.error, done.checkpoint) == ("done", "", f"run-{run.pk}.pt")
    key = f"checkpoints/run-{run.pk}.pt"
    saved = _body(bucket, key)
    assert _objects(bucket, "checkpoints/") == {key: len(saved)}  # no partial left
    assert hashlib.sha256(saved).hexdigest() == done.checkpoint_sha256
    images = len(_objects(bucket, "media/train/"))
    assert images == 80  # the digits were ingested into the bucket and trained from there

    # starting weights by run and by name are read back from the bucket
    later = []
    for weights in (f"run:{run.pk}", f"checkpoint:run-{run.pk}.pt#{done.checkpoint_sha256}"):
        response = curator_api.post(
            "/api/training/runs/",
            {"version": version.number, "backbone": "lenet5", "weights": weights, "mode": "full"},
            format="json",
        )
        assert response.status_code == 201, response.content
        later.append(run_execute(response.json()["id"]))
    assert [(r.status, r.error) for r in later] == [("done", ""), ("done", "")]
    refused = curator_api.post(
        "/api/training/runs/",
        {"version": 1, "backbone": "lenet5", "weights": "checkpoint:../media/x.pt"},
        format="json",
    )
    assert (refused.status_code, refused.json()) == (400, {"weights": [OUTSIDE_STORE]})

    # the promoted model predicts from the bucket's checkpoint
    run_promote(done)
    prediction = curator_api.post(
        "/api/training/predict/",
        {"image": SimpleUploadedFile("x.png", image_bytes(5, "PNG"), "image/png")},
        format="multipart",
    )
    assert prediction.status_code == 200, prediction.content
    assert prediction.json()["run"] == done.pk
    assert sorted(p["slug"] for p in prediction.json()["predictions"]) == ["digit-0", "digit-1"]

    # and downloads as the very object in the bucket
    download = curator_api.get(f"/api/training/runs/{done.pk}/checkpoint/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == saved
    assert download["X-Checkpoint-SHA256"] == done.checkpoint_sha256


def test_an_attempt_that_lost_its_run_publishes_nothing_in_the_bucket(bucket):
    run = _queued_run()

    def taken_over(stats) -> None:
        TrainingRun.objects.filter(pk=run.pk).update(attempt=F("attempt") + 1)

    lost = run_execute(run.pk, progress=taken_over)

    assert (lost.status, lost.attempt, lost.checkpoint) == ("running", 2, "")
    assert _objects(bucket, "checkpoints/") == {}


def test_an_export_is_built_into_the_bucket_downloads_through_the_api_and_expires(
    bucket, curator, curator_api, monkeypatch
):
    export = export_create(by=curator, kind="csv", version=photos_version(), enqueue=False)

    done = export_build(export.pk)

    assert (done.status, done.error) == ("done", "")
    key = f"exports/{done.file_name}"
    archive = _body(bucket, key)
    assert _objects(bucket, "exports/") == {key: done.byte_size}  # no partial left
    assert hashlib.sha256(archive).hexdigest() == done.sha256
    response = curator_api.get(f"/api/exports/{done.uid}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == archive
    assert response["X-Content-SHA256"] == done.sha256

    DatasetExport.objects.filter(pk=done.pk).update(expires_at=timezone.now())
    assert exports_expire() == 1
    assert _objects(bucket, "exports/") == {}


def test_the_sweep_removes_a_dead_attempts_partial_from_the_bucket(
    bucket, curator, settings, monkeypatch
):
    monkeypatch.setattr(exports, "_enqueue", lambda pk: None)
    settings.CROWDNET_EXPORT_STALE_SECONDS = 60
    export = export_create(by=curator, kind="csv", version=photos_version(), enqueue=False)
    claim = job_claim(EXPORT, export.pk)
    final = exports.export_output(export)
    bucket.put_object(Key=f"exports/{final.name}.attempt-{claim.attempt}.partial", Body=b"half")
    bucket.put_object(Key="exports/unrelated.zip", Body=b"kept")
    DatasetExport.objects.filter(pk=export.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=61)
    )

    assert job_sweep(EXPORT) == [export.pk]

    assert _objects(bucket, "exports/") == {"exports/unrelated.zip": 4}
