"""Training runs: validation, one at a time, cancel, promote, dead workers, the auto trigger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.models import DatasetVersion
from labeling.models import Candidate, Category
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes
from training.models import TrainingRun
from training.services import runs
from training.services.runs import (
    RunBusy,
    RunInvalid,
    run_cancel,
    run_create,
    run_create_on_snapshot,
    run_finish,
    run_promote,
    runs_fail_stale,
    training_auto,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def version() -> DatasetVersion:
    return DatasetVersion.objects.create(
        number=1,
        classes=[{"id": 1, "slug": "a", "name": "a"}, {"id": 2, "slug": "b", "name": "b"}],
        counts={"train": [4, 4], "val": [1, 1]},
        val_share=0.2,
        images=10,
        labels_at=10,
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"backbone": "resnet9000"}, "backbone", "Unknown backbone; use one of "),
        ({"mode": "freeze"}, "mode", "Unknown mode; use one of feature_extraction, fine_tune"),
        ({"weights": "nonsense"}, "weights", ""),
        ({"params": {"epochs": 0}}, "epochs", "Must be a number between 1 and 500."),
        ({"params": {"lr": "fast"}}, "lr", "Must be a number between 1e-07 and 10.0."),
        ({"params": {"momentum": 0.9}}, "momentum", "Unknown setting; use batch_size, epochs"),
    ],
)
def test_bad_settings_name_the_field(version, queued, changes, field, message):
    arguments = {"version": version, "backbone": "lenet5", "weights": "random", **changes}

    with pytest.raises(RunInvalid) as raised:
        run_create(**arguments)

    assert raised.value.field == field
    assert raised.value.message.startswith(message)
    assert TrainingRun.objects.count() == 0


def test_one_run_at_a_time_and_the_slot_frees_when_it_ends(
    version, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = run_create(version=version, backbone="lenet5", weights="random")
    assert queued == [first.pk]
    assert first.params == {
        "epochs": 30,
        "batch_size": 32,
        "lr": 0.001,
        "weight_decay": 0.0001,
        "patience": 3,
        "seed": 0,
        "image_size": 96,
    }

    with pytest.raises(RunBusy) as raised:
        run_create(version=version, backbone="resnet18", weights="random")
    assert str(raised.value) == f"Run {first.pk} is queued; cancel it or wait for it to finish."

    run_finish(first, TrainingRun.Status.DONE)
    second = run_create(version=version, backbone="resnet18", weights="random", enqueue=False)
    assert (second.status, second.active) == ("queued", True)
    first.refresh_from_db()
    assert (first.status, first.active, first.finished_at is not None) == ("done", None, True)


def test_cancel_stops_a_queued_run_now_and_a_running_one_at_its_next_batch(version, queued):
    queued_run = run_create(version=version, backbone="lenet5", weights="random")
    cancelled = run_cancel(queued_run)
    assert (cancelled.status, cancelled.active) == ("cancelled", None)

    running = run_create(version=version, backbone="lenet5", weights="random")
    TrainingRun.objects.filter(pk=running.pk).update(status="running")
    asked = run_cancel(running)
    assert (asked.status, asked.cancel_requested) == ("running", True)


def test_a_dead_worker_is_retried_once_then_failed(
    version, queued, settings, django_capture_on_commit_callbacks
):
    settings.CROWDNET_TRAIN_HEARTBEAT_STALE_SECONDS = 60
    settings.CROWDNET_TRAIN_MAX_ATTEMPTS = 2
    run = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    old = timezone.now() - timedelta(seconds=120)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", attempt=1, heartbeat_at=old)

    with django_capture_on_commit_callbacks(execute=True):
        assert runs_fail_stale() == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.active) == ("queued", True)
    assert (
        run.error
        == f"Attempt 1: the worker stopped (last heartbeat {old.isoformat(timespec='seconds')})."
    )
    assert queued == [run.pk]

    TrainingRun.objects.filter(pk=run.pk).update(status="running", attempt=2, heartbeat_at=old)
    assert runs_fail_stale() == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.active) == ("failed", None)
    assert run.error.endswith("and the job had no attempts left.")
    assert queued == [run.pk]

    # a run that is beating is left alone
    live = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    TrainingRun.objects.filter(pk=live.pk).update(status="running", heartbeat_at=timezone.now())
    assert runs_fail_stale() == []


def test_promote_only_finished_runs_and_keep_one_current(version, queued, monkeypatch):
    monkeypatch.setattr(runs, "_score_later", lambda: None)
    first = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    with pytest.raises(RunInvalid, match="Only a finished run with a checkpoint"):
        run_promote(first)
    run_finish(first, TrainingRun.Status.DONE, checkpoint="/x/run-1.pt", top1_error=0.2)
    first.refresh_from_db()
    second = run_create(version=version, backbone="lenet5", weights="random", enqueue=False)
    run_finish(second, TrainingRun.Status.DONE, checkpoint="/x/run-2.pt", top1_error=0.3)
    second.refresh_from_db()

    run_promote(first)  # the switch only; decisions: tests/training/test_promotion.py
    assert list(TrainingRun.objects.filter(current=True)) == [first]
    run_promote(second)
    assert list(TrainingRun.objects.filter(current=True)) == [second]


def _accepted(category: Category, count: int, seed: int) -> None:
    files = [(f"{seed}-{i}.jpg", image_bytes(seed + i, size=(40, 30))) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    Candidate.objects.filter(category=category).update(state="accepted")


def test_the_automatic_retrain_waits_for_new_labels_then_snapshots_and_queues(
    settings, queued, django_capture_on_commit_callbacks
):
    settings.CROWDNET_TRAIN_AUTO_NEW_LABELS = 10
    settings.CROWDNET_TRAIN_MIN_PER_CLASS = 3
    settings.CROWDNET_TRAIN_AUTO_BACKBONE = "lenet5"
    settings.CROWDNET_TRAIN_AUTO_WEIGHTS = "random"
    _accepted(Category.objects.create(name="a", slug="a"), 4, 500)
    assert training_auto().message == "4 new labels since the last version; waiting for 10."

    _accepted(Category.objects.create(name="b", slug="b"), 6, 600)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = training_auto()

    assert outcome.run is not None
    assert outcome.message == f"10 new labels: version 1, run {outcome.run.pk} queued."
    assert (outcome.run.trigger, outcome.run.backbone, outcome.run.params["epochs"]) == (
        "schedule",
        "lenet5",
        30,
    )
    assert queued == [outcome.run.pk]
    assert training_auto().message == "A run is going; nothing to do."
    assert DatasetVersion.objects.count() == 1
    run_finish(outcome.run, TrainingRun.Status.DONE)
    assert training_auto().message == "0 new labels since the last version; waiting for 10."


def test_every_way_of_starting_a_run_shares_one_epochs_setting(settings, version, queued):
    settings.CROWDNET_TRAIN_EPOCHS = 12
    from training.views import RunStartForm

    run = run_create(version=version, backbone="lenet5", weights="random")

    assert run.params["epochs"] == 12
    assert RunStartForm().fields["epochs"].initial == 12


def test_a_snapshot_run_refused_as_busy_writes_no_version(version, queued):
    # given a run holding the slot, and enough labels for a new version
    busy = run_create(version=version, backbone="lenet5", weights="random")
    _accepted(Category.objects.create(name="a", slug="a"), 6, 700)
    _accepted(Category.objects.create(name="b", slug="b"), 6, 800)

    with pytest.raises(RunBusy) as raised:
        run_create_on_snapshot(backbone="lenet5", weights="random")

    assert raised.value.run == busy
    assert list(DatasetVersion.objects.values_list("number", flat=True)) == [1]
    assert TrainingRun.objects.count() == 1


def test_a_snapshot_run_with_a_bad_setting_rolls_its_version_back(settings, version, queued):
    settings.CROWDNET_TRAIN_MIN_PER_CLASS = 3
    _accepted(Category.objects.create(name="a", slug="a"), 4, 900)
    _accepted(Category.objects.create(name="b", slug="b"), 4, 950)

    with pytest.raises(RunInvalid) as raised:
        run_create_on_snapshot(backbone="resnet9000", weights="random")

    assert raised.value.field == "backbone"
    assert list(DatasetVersion.objects.values_list("number", flat=True)) == [1]
    assert TrainingRun.objects.count() == 0
