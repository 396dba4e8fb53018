"""Starting weights from a file come only from this project's runs: ``run:<id>`` or a file
inside the checkpoint store. Anything else is refused before it is read, with one message
that says nothing about the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.factories import constant_lenet, digits_version, promoted_lenet
from training.models import TrainingRun
from training.services.execute import run_execute
from training.services.weights import OUTSIDE_STORE

pytestmark = pytest.mark.django_db

SMALL = {"epochs": 1, "batch_size": 16, "lr": 0.003, "image_size": 32, "patience": 10}


@pytest.fixture
def store(settings, tmp_path) -> Path:
    root = tmp_path / "checkpoints"  # the checkpoint store (tests/conftest.py)
    root.mkdir()
    settings.CROWDNET_EMBEDDING_DIR = tmp_path / "embeddings"
    settings.CROWDNET_TRAIN_DEVICE = "cpu"
    settings.CROWDNET_TRAIN_THREADS = 1
    return root


@pytest.fixture
def outside(tmp_path) -> Path:
    secret = tmp_path / "secret.pt"
    secret.write_bytes(b"not for curators")
    return secret


def _post(curator_api, weights: str):
    data = {"version": 1, "backbone": "lenet5", "weights": weights, "mode": "full"}
    return curator_api.post("/api/training/runs/", data, format="json")


def _outside_cases(store: Path, outside: Path) -> list[str]:
    link = store / "link.pt"
    link.symlink_to(outside)
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()
    return [
        "checkpoint:/etc/passwd",
        f"checkpoint:{outside}",
        f"checkpoint:{outside}#{digest}",
        f"checkpoint:{outside.parent / 'missing.pt'}",
        "checkpoint:../secret.pt",
        f"checkpoint:{store}/../secret.pt",
        "checkpoint:link.pt",
        f"checkpoint:{link}",
        f"checkpoint:{store}",
    ]


def test_paths_outside_the_store_are_400_and_never_read(
    curator_api, store, outside, queued, monkeypatch
):
    digits_version()
    cases = _outside_cases(store, outside)
    opened: list[str] = []
    real_open = Path.open

    def watch(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", watch)

    answers = []
    for case in cases:
        response = _post(curator_api, case)
        answers.append((response.status_code, response.json()))

    assert answers == [(400, {"weights": [OUTSIDE_STORE]})] * len(cases)
    assert not [name for name in opened if "secret" in name or "passwd" in name]
    assert (TrainingRun.objects.count(), queued) == (0, [])


def test_a_run_stored_with_an_outside_path_fails_without_saying_anything_about_it(store, outside):
    """Rows written before the check are checked again when the run starts."""
    version = digits_version()
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()
    run = TrainingRun.objects.create(
        version=version,
        backbone="lenet5",
        weights=f"checkpoint:{outside}",
        mode="full",
        params=SMALL,
    )

    failed = run_execute(run.pk)

    assert (failed.status, failed.error) == ("failed", f"ValueError: {OUTSIDE_STORE}")
    assert digest not in failed.error


def test_a_runs_checkpoint_by_id_and_by_path_in_the_store_start_a_run(curator_api, store, queued):
    version = digits_version()
    earlier = promoted_lenet(version, "run-earlier.pt")
    results = []

    for weights in [
        f"run:{earlier.pk}",
        f"checkpoint:run-earlier.pt#{earlier.checkpoint_sha256}",
        # the absolute path inside the store that runs were given before the store had names
        f"checkpoint:{store}/run-earlier.pt#{earlier.checkpoint_sha256}",
    ]:
        response = _post(curator_api, weights)
        done = run_execute(response.json()["id"])
        results.append((response.status_code, done.status, done.error))

    assert results == [(201, "done", ""), (201, "done", ""), (201, "done", "")]


def test_an_unknown_run_id_is_400(curator_api, store, queued):
    digits_version()

    response = _post(curator_api, "run:999")

    assert response.status_code == 400
    assert response.json() == {
        "weights": ["run:999: no finished run with a checkpoint has that id."]
    }
    assert (TrainingRun.objects.count(), queued) == (0, [])


def test_weights_longer_than_a_run_can_store_are_400(curator_api, store, queued):
    digits_version()
    weights = "checkpoint:" + "deep/" * 60 + "run.pt"

    response = _post(curator_api, weights)

    assert response.status_code == 400
    assert response.json() == {
        "weights": ["The starting weights are 317 characters long; at most 300 are allowed."]
    }
    assert (TrainingRun.objects.count(), queued) == (0, [])


def test_a_checkpoint_named_without_its_hash_is_checked_against_the_runs_record(
    curator_api, store, queued
):
    """checkpoint:<name> without #sha256 is still checked before torch.load when a run records
    that file: a file swapped in the store (here another run's checkpoint) is refused."""
    version = digits_version()
    earlier = promoted_lenet(version, "run-earlier.pt")
    other = constant_lenet(version, "run-other.pt", 0)
    (store / "run-earlier.pt").write_bytes((store / "run-other.pt").read_bytes())

    response = _post(curator_api, "checkpoint:run-earlier.pt")
    done = run_execute(response.json()["id"])

    assert (response.status_code, done.status) == (201, "failed")
    assert done.error == (
        f"WeightsCorrupt: checkpoint {store / 'run-earlier.pt'} has sha256 "
        f"{other.checkpoint_sha256}, but {earlier.checkpoint_sha256} was recorded: the file was "
        "changed or damaged"
    )
