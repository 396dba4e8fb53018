"""manage.py train: a version picked by --version, a run trained here with --now, and clear
errors."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tests.factories import digits_version
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _dirs(settings, tmp_path):
    settings.CROWDNET_CHECKPOINT_DIR = tmp_path / "checkpoints"
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
