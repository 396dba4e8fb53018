"""Which starting weights a run may use: the built-in sources, or a checkpoint of one of this
project's own runs. A curator can name a run (``run:<id>``) or a file inside the checkpoint
store (``STORAGES["checkpoints"]``) by its name there (or, as before the store had names, by
its absolute path under CROWDNET_CHECKPOINT_DIR); any other absolute name, one that climbs out
with ``..`` or (on disk) a link that leads out is refused before anything is opened, with the
same message whether or not the file exists, so the setting cannot be used to probe the server.
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import TYPE_CHECKING

from django.conf import settings

from config.file_stores import StoredFile, name_is_safe, stored_read
from training.ml.catalog import WeightsSpec, weights_parse
from training.models import TrainingRun
from training.services.checkpoints import checkpoint_stored, run_checkpoint

if TYPE_CHECKING:
    from training.ml.backbones import Backbone

OUTSIDE_STORE = (
    "Starting weights from a file must be a checkpoint of one of this project's runs: use "
    "run:<id>, or checkpoint:<file> inside the checkpoint store."
)


def _legacy_name(name: str) -> str:
    """An absolute path under CROWDNET_CHECKPOINT_DIR (how a run named a file in the store
    before the store had names) as its name in the store; any other name as it is."""
    if not posixpath.isabs(name):
        return name
    root = posixpath.normpath(str(settings.CROWDNET_CHECKPOINT_DIR))
    path = posixpath.normpath(name)
    return path.removeprefix(root + "/") if path.startswith(root + "/") else name


def checkpoint_in_store(name: str) -> StoredFile:
    """The file called ``name`` in the checkpoint store (or at that absolute path under
    CROWDNET_CHECKPOINT_DIR); ValueError unless the name is relative and stays inside the
    store (config.file_stores.name_is_safe). Reads no file."""
    stored = checkpoint_stored(_legacy_name(name))
    if not name_is_safe(stored):
        raise ValueError(OUTSIDE_STORE)
    return stored


def weights_resolve(text: str) -> WeightsSpec:
    """A run's weights setting as a spec; ValueError with a message fit for the curator.

    ``run:<id>`` is that finished run's recorded checkpoint and hash; ``checkpoint:<name>``
    must name a file inside the checkpoint store (checked again when the run starts, in case
    a link changed since), and without ``#sha256`` takes the hash a run recorded for it, if
    any. The spec's path is the name in the store."""
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
        stored = run_checkpoint(run) if run is not None else None
        if stored is None:
            raise ValueError(f"{text}: no finished run with a checkpoint has that id.")
        return WeightsSpec("checkpoint", stored.name, run.checkpoint_sha256 or None)
    spec = weights_parse(text)
    if spec.source == "checkpoint":
        assert spec.path is not None
        name = checkpoint_in_store(spec.path).name
        return dataclasses.replace(spec, path=name, sha256=spec.sha256 or _recorded_sha256(name))
    return spec


def _recorded_sha256(name: str) -> str | None:
    """The sha256 a run recorded for the checkpoint called ``name`` in the store (under its
    name, or the absolute path runs recorded before the store had names), or None."""
    legacy = posixpath.join(str(settings.CROWDNET_CHECKPOINT_DIR), name)
    recorded = (
        TrainingRun.objects.filter(checkpoint__in=[name, legacy])
        .exclude(checkpoint_sha256="")
        .order_by("-pk")
        .values_list("checkpoint_sha256", flat=True)
        .first()
    )
    return recorded or None


def weights_load_stored(backbone: Backbone, spec: WeightsSpec) -> str:
    """training.ml.weights.weights_load for a resolved spec: a checkpoint is read through the
    checkpoint store (a local copy of an S3 object), its name checked again first."""
    from training.ml.weights import WeightsUnavailable, weights_load  # torch: trainers only

    if spec.source != "checkpoint":
        return weights_load(backbone, spec)
    assert spec.path is not None
    stored = checkpoint_in_store(spec.path)
    if not stored.exists():
        raise WeightsUnavailable(f"checkpoint {stored.name} does not exist")
    with stored_read(stored) as path:
        return weights_load(backbone, dataclasses.replace(spec, path=str(path)))
