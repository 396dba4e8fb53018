"""manage.py train: a version picked by --version, a run trained here with --now, and clear
errors."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from datasets.models import DatasetVersion
from tests.factories import digits_version
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _dirs(settings, tmp_path):
    settings.CROWDNET_TRAIN_DEVICE = "cpu"
    settings.CROWDNET_TRAIN_THREADS = 1


def _train(*arguments: str) -> str:
    out = io.StringIO()
    call_command("train", *arguments, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_run_on_the_version_asked_for_trains_here(queued):
    first = digits_version()
    second = digits_version(digits=(2, 3))
    assert (first.number, second.number) == (1, 2)

    output = _train(
        "--version",
        "1",
        "--backbone",
        "lenet5",
        "--weights",
        "random",
        "--mode",
        "full",
        "--epochs",
        "2",
        "--image-size",
        "32",
        "--now",
    )

    run = TrainingRun.objects.get()
    assert (run.version, run.status, run.epochs.count()) == (first, "done", 2)
    assert output.startswith(f"run {run.pk} done on cpu: top-1 error {run.top1_error:.4f}")
    assert queued == []
    listed = _train("--list")
    assert listed.splitlines()[0].startswith("version 2: ")
    assert f"run {run.pk}" in listed


def test_a_queued_run_and_the_errors_that_say_what_to_fix(
    queued, django_capture_on_commit_callbacks
):
    digits_version()

    with django_capture_on_commit_callbacks(execute=True):
        output = _train("--backbone", "lenet5", "--weights", "random")

    run = TrainingRun.objects.get()
    assert output == f"run {run.pk} queued on version 1.\n"
    assert queued == [run.pk]
    with pytest.raises(CommandError, match="No such dataset version: take one with --snapshot"):
        _train("--version", "9")
    with pytest.raises(CommandError, match="No run 99; see --list"):
        _train("--cancel", "99")


def test_a_refused_snapshot_run_leaves_no_version_behind(queued):
    # given a version and a run that holds the one-run slot
    first = digits_version()
    busy = TrainingRun.objects.create(
        version=first, backbone="lenet5", weights="random", mode="full"
    )

    # when the command is asked for a new version and a run on it
    with pytest.raises(CommandError, match=f"Run {busy.pk} is queued; cancel it or wait"):
        _train("--snapshot", "--backbone", "lenet5", "--weights", "random")

    # then nothing was written: the automatic retrain still counts from version 1
    assert list(DatasetVersion.objects.values_list("number", flat=True)) == [1]
    assert list(TrainingRun.objects.values_list("pk", flat=True)) == [busy.pk]
    assert queued == []


def test_a_snapshot_run_with_bad_settings_rolls_its_version_back(queued):
    digits_version()

    with pytest.raises(CommandError, match=r"--epochs: Must be a number between 1 and 500\."):
        _train("--snapshot", "--backbone", "lenet5", "--weights", "random", "--epochs", "0")

    assert list(DatasetVersion.objects.values_list("number", flat=True)) == [1]
    assert TrainingRun.objects.count() == 0
    assert queued == []


def test_snapshot_and_run_in_one_go_and_the_shared_epochs_default(
    settings, queued, django_capture_on_commit_callbacks
):
    settings.CROWDNET_TRAIN_EPOCHS = 7
    digits_version()

    with django_capture_on_commit_callbacks(execute=True):
        output = _train("--snapshot", "--backbone", "lenet5", "--weights", "random")

    run = TrainingRun.objects.get()
    assert output == (f"version 2: 80 images in 2 classes\nrun {run.pk} queued on version 2.\n")
    assert (run.version.number, run.params["epochs"], queued) == (2, 7, [run.pk])
