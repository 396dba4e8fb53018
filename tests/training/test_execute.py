"""run_execute in this process: a real small run end to end, the embedding cache across runs,
cancellation, and a failure that says why."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from django.db.models import F

from datasets.models import DatasetItem
from tests.factories import digits_version
from training.ml.backbones import backbone_build
from training.ml.loop import checkpoint_read
from training.models import TrainingRun
from training.services.execute import run_execute
from training.services.runs import run_create

pytestmark = pytest.mark.django_db

SMALL = {"epochs": 3, "batch_size": 16, "lr": 0.003, "image_size": 32, "patience": 10}


@pytest.fixture(autouse=True)
def _dirs(settings, tmp_path):
    settings.CROWDNET_EMBEDDING_DIR = tmp_path / "embeddings"
    settings.CROWDNET_TRAIN_DEVICE = "cpu"
    settings.CROWDNET_TRAIN_THREADS = 1


def _queued(version, mode: str, *, weights: str = "random", params=SMALL):
    """A LeNet-5 run on ``version``, queued but not sent: the test runs it here."""
    return run_create(
        version=version,
        backbone="lenet5",
        weights=weights,
        mode=mode,
        params=params,
        enqueue=False,
    )


def test_a_full_run_trains_writes_each_epoch_and_an_atomic_checkpoint(tmp_path):
    version = digits_version()
    run = _queued(version, "full")
    seen = []

    done = run_execute(run.pk, progress=lambda stats: seen.append(stats.epoch))

    assert (done.status, done.attempt, done.device, done.error) == ("done", 1, "cpu", "")
    assert seen == [1, 2, 3]
    assert list(done.epochs.values_list("epoch", flat=True)) == [1, 2, 3]
    assert done.top1_error <= 0.2
    assert done.best_epoch in (1, 2, 3)
    saved = checkpoint_read(tmp_path / "checkpoints" / f"run-{run.pk}.pt", done.checkpoint_sha256)
    assert saved["extra"]["version"] == version.number
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [f"run-{run.pk}.pt"]
    val = dict(
        DatasetItem.objects.filter(version=version, split="val").values_list("image_id", "label")
    )
    mistakes = done.mistakes.values_list("image_id", "label", "predicted")
    assert len(mistakes) == min(round(done.top1_error * len(val)), 48)
    assert all(val[image] == label != predicted for image, label, predicted in mistakes)
    # claimed once: running it again changes nothing
    assert run_execute(run.pk).attempt == 1


def test_a_finished_run_keeps_its_layer_table_and_the_images_it_gets_most_wrong(settings):
    version = digits_version()
    run = _queued(version, "feature_extraction", params={**SMALL, "epochs": 1})

    done = run_execute(run.pk)

    net = backbone_build("lenet5", len(version.classes)).net
    layers = done.architecture["layers"]
    assert done.architecture["image_size"] == 32
    assert [layer["name"] for layer in layers][-1] == "head"
    assert sum(layer["params"] for layer in layers) == sum(p.numel() for p in net.parameters())
    trainable = sum(layer["params"] for layer in layers if layer["trains"])
    assert trainable == sum(p.numel() for p in net.head.parameters())
    val = dict(
        DatasetItem.objects.filter(version=version, split="val").values_list("image_id", "label")
    )
    wrong = round(done.top1_error * len(val))
    mistakes = list(done.mistakes.all())
    assert len(mistakes) == min(wrong, 48) > 0
    assert [m.rank for m in mistakes] == list(range(1, len(mistakes) + 1))
    assert all(val[m.image_id] == m.label != m.predicted for m in mistakes)
    assert all(m.label_probability < m.confidence for m in mistakes)
    chances = [m.label_probability for m in mistakes]
    assert chances == sorted(chances)


def test_images_kept_decoded_or_decoded_every_epoch_train_the_same_first_epoch(settings, caplog):
    # given one version trained twice from the same seed: its decoded pixels kept (the
    # default), then with no room to keep them (decoded again every epoch)
    version = digits_version()
    runs, streamed = [], []
    for budget in (4096, 0):
        settings.CROWDNET_TRAIN_DECODED_MIB = budget
        caplog.clear()
        done = run_execute(_queued(version, "full").pk)
        assert done.status == "done", done.error
        runs.append(list(done.epochs.values_list("train_loss", "val_loss", "top1_error")))
        streamed.append("decoding every epoch" in caplog.text)

    # then the first epoch, where both decode in the loader's seeded order, is the same; later
    # ones shuffle with their own generators
    assert runs[0][0] == runs[1][0]
    assert len(runs[0]) == len(runs[1]) == 3
    assert streamed == [False, True]


@pytest.mark.parametrize("decoded_mib", [4096, 0], ids=["decoded once", "every epoch"])
def test_a_full_run_stores_the_validation_images_it_gets_wrong(settings, decoded_mib):
    # given four look-alike digits and one short epoch: a net that still errs
    settings.CROWDNET_TRAIN_DECODED_MIB = decoded_mib
    version = digits_version(digits=(3, 5, 8, 9), per_class=20)
    run = _queued(version, "full", params={**SMALL, "epochs": 1, "lr": 0.0005})

    done = run_execute(run.pk)

    # then each stored mistake is a validation image under its own label, answered otherwise
    val = dict(
        DatasetItem.objects.filter(version=version, split="val").values_list("image_id", "label")
    )
    mistakes = list(done.mistakes.values_list("image_id", "label", "predicted"))
    assert len(mistakes) == min(round(done.top1_error * len(val)), 48) > 0
    assert all(val[image] == label != predicted for image, label, predicted in mistakes)


def test_feature_extraction_embeds_each_image_once_across_runs(tmp_path):
    version = digits_version()
    first = _queued(version, "feature_extraction")
    assert run_execute(first.pk).status == "done"
    shards = {p: p.stat().st_mtime_ns for p in (tmp_path / "embeddings").rglob("*") if p.is_file()}
    assert shards

    second = _queued(version, "feature_extraction", params={**SMALL, "seed": 1})
    # "random" weights are built under a fixed seed: the same trunk, so the same embeddings
    assert run_execute(second.pk).status == "done"
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "embeddings").rglob("*") if p.is_file()}
    assert after == shards  # every embedding came from the cache: nothing was written


def test_a_host_without_the_embedding_cache_rebuilds_it_and_trains_the_same(tmp_path):
    """The cache is per training host (docs/architecture.md): a new host, or a folder
    removed, starts empty, embeds again and writes the same shards."""
    version = digits_version()
    first = run_execute(_queued(version, "feature_extraction").pk)
    folder = tmp_path / "embeddings"
    shards = {p.name: np.load(p) for p in folder.glob("*.npy")}
    shutil.rmtree(folder)

    again = run_execute(_queued(version, "feature_extraction").pk)

    assert (first.status, again.status) == ("done", "done")
    rebuilt = {p.name: np.load(p) for p in folder.glob("*.npy")}
    assert sorted(rebuilt) == sorted(shards) != []
    assert all(np.array_equal(rebuilt[name], shards[name]) for name in shards)
    assert again.top1_error == first.top1_error


def test_a_cancel_request_stops_the_run_and_a_bad_weights_choice_fails_with_the_reason():
    version = digits_version()
    run = _queued(version, "full")
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    assert run_execute(run.pk).status == "cancelled"

    bad = _queued(
        version,
        "full",
        weights="imagenet",
    )
    failed = run_execute(bad.pk)
    assert failed.status == "failed"
    assert failed.error.startswith("ValueError: ")
    assert "lenet5" in failed.error


def test_a_layer_table_that_cannot_be_made_leaves_the_run_training(monkeypatch, caplog):
    from training.services import execute

    def no_formula(*args, **kwargs):
        raise ValueError("no formula for layer x (Mystery)")

    monkeypatch.setattr(execute, "layer_table", no_formula)
    run = _queued(digits_version(), "feature_extraction", params={**SMALL, "epochs": 1})

    done = run_execute(run.pk)

    assert (done.status, done.architecture) == ("done", None)
    assert "no layer table for lenet5" in caplog.text


def test_an_attempt_taken_over_by_a_retry_leaves_the_outcome_to_the_retry(caplog, settings):
    # given a run whose heartbeat went stale mid-training: runs_fail_stale queued it again and
    # a second worker claimed it (attempt 2) while the first one, still alive, trains on
    run = _queued(digits_version(), "feature_extraction", params={**SMALL, "epochs": 1})

    def taken_over(stats):
        TrainingRun.objects.filter(pk=run.pk).update(attempt=F("attempt") + 1)

    done = run_execute(run.pk, progress=taken_over)

    # then the first attempt writes no outcome over the second one's
    assert (done.status, done.attempt, done.top1_error, done.checkpoint_sha256) == (
        "running",
        2,
        None,
        "",
    )
    assert not done.mistakes.exists()
    assert (
        f"training job {run.pk}: attempt 1 ends, but the job is running at attempt 2" in caplog.text
    )
    # and its checkpoint neither lands on run-N.pt nor lingers as a partial
    assert list(settings.CROWDNET_CHECKPOINT_DIR.glob(f"run-{run.pk}*")) == []


def test_a_run_trains_data_parallel_in_two_processes_as_in_one(settings):
    version = digits_version()
    runs = []
    for processes in (1, 2):
        settings.CROWDNET_TRAIN_PROCESSES = processes
        runs.append(run_execute(_queued(version, "full").pk))
    one, two = runs

    assert (two.status, two.error, two.device) == ("done", "", "cpu")
    assert list(two.epochs.values_list("epoch", flat=True)) == [1, 2, 3]
    assert two.top1_error <= 0.2
    saved = checkpoint_read(
        settings.CROWDNET_CHECKPOINT_DIR / two.checkpoint, two.checkpoint_sha256
    )
    assert saved["extra"]["run"] == two.pk
    # the same net, up to floating-point noise: both read the decoded images in one order
    assert two.top1_error == pytest.approx(one.top1_error, abs=0.03)
