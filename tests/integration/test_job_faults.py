"""Fault runs of the job pattern on real Celery workers: for each job kind (import, export,
training run, consensus run) a worker is killed with SIGKILL while the job is blocked mid-way
(a table it reads is locked, as a stalled database or share would leave it), the sweep notices
the silent heartbeat, queues the job again and a second worker finishes it; and a queued
training run whose broker message was lost is sent again after the grace period."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from datasets.models import DatasetExport
from datasets.services import exports
from datasets.services.exports import export_create, export_output
from datasets.tasks import export_build_task
from jobs.kinds import CONSENSUS, EXPORT, IMPORT, TRAINING, JobKind
from jobs.services import job_sweep
from labeling.models import Category, ConsensusRun, ImportJob
from labeling.services import imports, reaggregation
from labeling.tasks import consensus_reaggregate, consensus_run_execute
from labeling.tasks import import_job_run as import_job_task
from tests.factories import digits_version, photos_version
from training.ml.loop import checkpoint_read
from training.models import TrainingRun
from training.services import runs
from training.services.runs import run_create
from training.tasks import run_train

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

FINAL = ("done", "failed", "cancelled")


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the worker processes share the database: PostgreSQL")


@pytest.fixture
def env(tmp_path: Path, settings) -> dict[str, str]:
    """Worker settings: a fast heartbeat, files under this test's folder."""
    settings.CROWDNET_EXPORT_DIR = tmp_path / "exports"
    settings.CROWDNET_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return {
        "CROWDNET_JOBS_HEARTBEAT_SECONDS": "0.5",
        "CROWDNET_EXPORT_DIR": str(tmp_path / "exports"),
        "CROWDNET_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "CROWDNET_TRAIN_DEVICE": "cpu",
        "CROWDNET_TRAIN_THREADS": "1",
    }


def _wait(predicate: Callable[[], object], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.2)


@contextmanager
def _table_locked(table: str) -> Iterator[None]:
    """Hold an exclusive lock on ``table`` from another connection: a job that reads it blocks
    there. On release, backends still waiting on a lock (the killed worker's) are cut first, as
    the server would once it noticed their client gone."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]
    ) as locker:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            locker.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            locker.rollback()


def _killed_mid_job(kind: JobKind, pk: Callable[[], int | None], worker_start) -> int:
    """Wait for the job to run and beat while blocked, then SIGKILL its worker; its id."""
    model = kind.model
    _wait(lambda: pk() is not None and model.objects.get(pk=pk()).status == "running")
    job_id = pk()
    assert job_id is not None
    first = model.objects.get(pk=job_id).heartbeat_at
    _wait(lambda: model.objects.get(pk=job_id).heartbeat_at > first)  # beats while blocked
    process = worker_start.processes[0]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert model.objects.get(pk=job_id).status == "running"  # nothing else noticed
    return job_id


def _recovered(kind: JobKind, job_id: int, settings) -> object:
    """Sweep until the silent job is queued again, then wait for the second worker."""
    setattr(settings, kind.stale_setting, 2)
    _wait(lambda: job_sweep(kind) == [job_id], 60)
    _wait(lambda: kind.model.objects.get(pk=job_id).status in FINAL, 300)
    job = kind.model.objects.get(pk=job_id)
    assert job.attempt == 2
    assert job.error.startswith("Attempt 1: the worker stopped (last heartbeat ")
    return job


def test_an_import_whose_worker_is_killed_is_finished_by_another(
    worker_start, env, settings, monkeypatch, image_site
):
    base = image_site
    category = Category.objects.create(name="cat", slug="cat")
    job = ImportJob.objects.create(
        source="url", category=category, params={"urls": [f"{base}/1.jpg", f"{base}/2.jpg"]}
    )
    first = worker_start(**env)

    with _table_locked("labeling_image"):
        import_job_task.apply_async((job.pk,), queue=first)
        _killed_mid_job(IMPORT, lambda: job.pk, worker_start)
    second = worker_start(**env)
    monkeypatch.setattr(
        imports, "_enqueue", lambda pk: import_job_task.apply_async((pk,), queue=second)
    )

    done = _recovered(IMPORT, job.pk, settings)
    assert (done.status, done.added + done.duplicates, done.rejected) == ("done", 2, 0)


def test_an_export_whose_worker_is_killed_is_built_by_another_without_leftovers(
    worker_start, env, settings, monkeypatch, curator
):
    export = export_create(by=curator, kind="csv", version=photos_version(), enqueue=False)
    first = worker_start(**env)

    with _table_locked("training_datasetitem"):
        export_build_task.apply_async((export.pk,), queue=first)
        _killed_mid_job(EXPORT, lambda: export.pk, worker_start)
        final = export_output(DatasetExport.objects.get(pk=export.pk))
        folder = settings.CROWDNET_EXPORT_DIR  # the workers' exports store
        assert [p.name for p in folder.iterdir()] == [f"{final.name}.attempt-1.partial"]
    second = worker_start(**env)
    monkeypatch.setattr(
        exports, "_enqueue", lambda pk: export_build_task.apply_async((pk,), queue=second)
    )

    done = _recovered(EXPORT, export.pk, settings)
    assert (done.status, done.images_done, done.file_name) == ("done", 18, final.name)
    assert [p.name for p in folder.iterdir()] == [final.name]  # no partial left


def test_a_training_run_killed_while_loading_images_is_trained_by_another(
    worker_start, env, settings, monkeypatch
):
    run = run_create(
        version=digits_version(),
        backbone="lenet5",
        weights="random",
        mode="full",
        params={"epochs": 2, "batch_size": 16, "image_size": 32},
        enqueue=False,
    )
    first = worker_start(**env)

    # blocked while it reads its images: the heartbeat thread keeps it alive until the kill
    with _table_locked("training_datasetitem"):
        run_train.apply_async((run.pk,), queue=first)
        _killed_mid_job(TRAINING, lambda: run.pk, worker_start)
    second = worker_start(**env)
    monkeypatch.setattr(runs, "_enqueue", lambda pk: run_train.apply_async((pk,), queue=second))

    done = _recovered(TRAINING, run.pk, settings)
    assert (done.status, done.active) == ("done", None)
    assert list(done.epochs.values_list("epoch", flat=True)) == [1, 2]
    folder = settings.CROWDNET_CHECKPOINT_DIR  # the workers' checkpoint store and this one's
    checkpoint_read(folder / done.checkpoint, done.checkpoint_sha256)
    assert [p.name for p in folder.iterdir()] == [f"run-{run.pk}.pt"]


def test_a_consensus_run_whose_worker_is_killed_is_run_again_and_the_next_proceeds(
    worker_start, env, settings, monkeypatch
):
    first = worker_start(**env)

    with _table_locked("labeling_vote"):
        consensus_reaggregate.apply_async(queue=first)
        killed = _killed_mid_job(
            CONSENSUS,
            lambda: ConsensusRun.objects.values_list("pk", flat=True).first(),
            worker_start,
        )
    second = worker_start(**env)
    monkeypatch.setattr(
        reaggregation,
        "_enqueue",
        lambda pk: consensus_run_execute.apply_async((pk,), queue=second),
    )

    done = _recovered(CONSENSUS, killed, settings)
    assert done.status == "done"
    # and the next scheduled run is not held back by the killed one
    after = consensus_reaggregate.apply_async(queue=second).get(timeout=120)
    assert ConsensusRun.objects.get(pk=after).status == "done"
    assert after != killed


def test_a_training_run_whose_message_is_lost_is_sent_again(
    worker_start, env, settings, monkeypatch
):
    # given a run queued to a broker that then lost the message (Redis restarted)
    version = digits_version()
    nowhere = f"lost-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(runs, "_enqueue", lambda pk: run_train.apply_async((pk,), queue=nowhere))
    run = run_create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        params={"epochs": 1, "batch_size": 16, "image_size": 32},
    )
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    assert broker.delete(nowhere) == 1  # the message was there, and now it is gone
    worker = worker_start(**env)
    monkeypatch.setattr(runs, "_enqueue", lambda pk: run_train.apply_async((pk,), queue=worker))

    # when the sweep runs past the grace period, it is sent again and trained once
    settings.CROWDNET_JOBS_RESEND_GRACE_SECONDS = 1
    _wait(lambda: job_sweep(TRAINING) == [run.pk], 60)
    _wait(lambda: TrainingRun.objects.get(pk=run.pk).status in FINAL, 300)
    run.refresh_from_db()
    assert (run.status, run.attempt, run.active, run.error) == ("done", 1, None, "")
