"""Checkpoints in the checkpoint store (``STORAGES["checkpoints"]``, config.file_stores).

A run records its checkpoint's name in the store (``run-N.pt``) and its sha256. Every reader
(prediction, scoring, starting weights, the download) goes through the store and checks the
hash before ``torch.load(..., weights_only=True)``. Rows written before the store kept
an absolute path under CROWDNET_CHECKPOINT_DIR; their file name is their name in the store.
"""

from __future__ import annotations

import posixpath
from typing import Any

from config.file_stores import CHECKPOINTS, StoredFile, stored_read
from training.models import TrainingRun


def checkpoint_stored(name: str) -> StoredFile:
    """The file called ``name`` in the checkpoint store."""
    return StoredFile(CHECKPOINTS, name)


def run_checkpoint(run: TrainingRun) -> StoredFile | None:
    """The run's checkpoint in the store, or None when it records none."""
    if not run.checkpoint:
        return None
    name = run.checkpoint
    if posixpath.isabs(name):  # recorded as a path before checkpoints went through the store
        name = posixpath.basename(name)
    return checkpoint_stored(name)


def run_checkpoint_exists(run: TrainingRun) -> bool:
    """Whether the run records a checkpoint and the store still has it."""
    stored = run_checkpoint(run)
    return stored is not None and stored.exists()


def run_checkpoint_read(run: TrainingRun) -> dict[str, Any]:
    """The run's checkpoint, hash-checked against the recorded sha256 and loaded with
    ``weights_only=True`` (training.ml.loop.checkpoint_read); FileNotFoundError when gone."""
    from training.ml.loop import checkpoint_read  # torch: only where a model is loaded

    stored = run_checkpoint(run)
    if stored is None:
        raise FileNotFoundError(f"run {run.pk} has no checkpoint")
    with stored_read(stored) as path:
        return checkpoint_read(path, run.checkpoint_sha256 or None)
