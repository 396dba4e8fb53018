"""Which starting weights a run may use: the built-in sources, or a checkpoint of one of this
project's own runs. A curator can name a run (``run:<id>``) or a file inside the checkpoint
store (CROWDNET_CHECKPOINT_DIR); any other path is refused before it is opened, with the same
message whether or not the file exists, so the setting cannot be used to probe the server.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from django.conf import settings

from training.ml.catalog import WeightsSpec, weights_parse
from training.models import TrainingRun

OUTSIDE_STORE = (
    "Starting weights from a file must be a checkpoint of one of this project's runs: use "
    "run:<id>, or checkpoint:<file> inside the checkpoint store."
)


def checkpoint_in_store(path: str) -> Path:
    """``path`` (absolute, or relative to CROWDNET_CHECKPOINT_DIR) with every symlink and
    ``..`` resolved; ValueError unless that lies inside the store. Reads no file."""
    root = Path(os.path.realpath(settings.CROWDNET_CHECKPOINT_DIR))
    resolved = Path(os.path.realpath(root / path))  # an absolute path replaces the root
    if resolved == root or not resolved.is_relative_to(root):
        raise ValueError(OUTSIDE_STORE)
    return resolved


def weights_resolve(text: str) -> WeightsSpec:
    """A run's weights setting as a spec; ValueError with a message fit for the curator.

    ``run:<id>`` is that finished run's recorded checkpoint and hash; ``checkpoint:<path>``
    must lie inside the checkpoint store (checked again when the run starts, in case a link
    changed since)."""
    text = text.strip()
    if text.startswith("run:"):
        ident = text.removeprefix("run:")
        run = (
            TrainingRun.objects.filter(pk=ident, status=TrainingRun.Status.DONE)
            .exclude(checkpoint="")
            .first()
            if ident.isdigit()
            else None
        )
        if run is None:
            raise ValueError(f"{text}: no finished run with a checkpoint has that id.")
        return WeightsSpec("checkpoint", run.checkpoint, run.checkpoint_sha256 or None)
    spec = weights_parse(text)
    if spec.source == "checkpoint":
        assert spec.path is not None
        return dataclasses.replace(spec, path=str(checkpoint_in_store(spec.path)))
    return spec
