"""Training on a real Celery worker: a short real run writes its epochs, errors and an atomic
checkpoint; a worker killed mid-run is noticed by its stale heartbeat and the run is retried on
another worker and finishes."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
from django.db import connection

from tests.factories import digits_version
from training.ml.loop import checkpoint_read
from training.models import TrainingRun
from training.services import runs
from training.services.runs import run_create, runs_fail_stale
from training.tasks import run_train

pytestmark = pytest.mark.celery_worker


@pytest.fixture
def version():
    """Zeros and ones from scikit-learn's digits, accepted, frozen into a version."""
    return digits_version()


def _wait(predicate: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.5)


@pytest.mark.django_db(transaction=True)
def test_a_real_run_on_a_real_worker_writes_epochs_errors_and_a_checkpoint(
    version, worker_start, settings, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process shares the database: PostgreSQL")
    env = {
        "CROWDNET_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "CROWDNET_TRAIN_DEVICE": "cpu",
        "CROWDNET_TRAIN_THREADS": "1",
    }
    queue = worker_start(**env)
    run = run_create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        params={"epochs": 4, "batch_size": 16, "lr": 0.003, "image_size": 32, "patience": 10},
        enqueue=False,
    )

    assert run_train.apply_async((run.pk,), queue=queue).get(timeout=300) == "done"

    run.refresh_from_db()
    assert (run.status, run.active, run.device, run.attempt) == ("done", None, "cpu", 1)
    assert list(run.epochs.values_list("epoch", flat=True)) == [1, 2, 3, 4]
    assert run.top1_error is not None and run.top1_error <= 0.2  # zeros and ones: easy
    assert len(run.per_class_error) == 2 and len(run.confusion) == 2
    assert sum(map(sum, run.confusion)) == sum(version.counts["val"])
    saved = checkpoint_read(tmp_path / "checkpoints" / f"run-{run.pk}.pt", run.checkpoint_sha256)
    assert (saved["backbone"], saved["num_classes"]) == ("lenet5", 2)
    assert saved["class_names"] == ["digit-0", "digit-1"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [
        f"run-{run.pk}.pt"
    ]  # no temp files left

    # a message delivered twice trains once
    assert run_train.apply_async((run.pk,), queue=queue).get(timeout=60) == "done"
    assert TrainingRun.objects.get(pk=run.pk).attempt == 1


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_is_noticed_and_the_run_finishes_on_another(
    version, worker_start, settings, tmp_path, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker processes share the database: PostgreSQL")
    env = {
        "CROWDNET_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "CROWDNET_TRAIN_DEVICE": "cpu",
        "CROWDNET_TRAIN_THREADS": "1",
    }
    first = worker_start(**env)
    run = run_create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        params={"epochs": 200, "batch_size": 8, "image_size": 32, "patience": 500},
        enqueue=False,
    )
    run_train.apply_async((run.pk,), queue=first)
    _wait(lambda: run.epochs.count() >= 1, 120)

    # when the worker dies mid-run (no chance to clean up) and its heartbeat goes stale
    worker_start.processes[0].send_signal(signal.SIGKILL)
    worker_start.processes[0].wait(timeout=30)
    settings.CROWDNET_TRAIN_HEARTBEAT_STALE_SECONDS = 10
    TrainingRun.objects.filter(pk=run.pk).update(params={**run.params, "epochs": 3})
    second = worker_start(**env)
    monkeypatch.setattr(
        runs, "_enqueue", lambda run_id: run_train.apply_async((run_id,), queue=second)
    )
    _wait(lambda: runs_fail_stale() == [run.pk], 60)

    # then it is queued again and the other worker trains it to the end
    _wait(lambda: TrainingRun.objects.get(pk=run.pk).status in ("done", "failed"), 300)
    run.refresh_from_db()
    assert (run.status, run.attempt) == ("done", 2)
    assert run.error.startswith("Attempt 1: the worker stopped (last heartbeat ")
    assert list(run.epochs.values_list("epoch", flat=True)) == [1, 2, 3]
    checkpoint_read(tmp_path / "checkpoints" / f"run-{run.pk}.pt", run.checkpoint_sha256)
