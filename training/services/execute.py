"""Running one training run: claim it, train, write epochs and a checkpoint, finish it.

Called by the Celery task on the training queue (and by ``manage.py train --now``). The run's
row is claimed with a conditional update, so a message delivered twice trains once. While it
trains, each epoch is written as it ends and the heartbeat is refreshed; a cancel request is
seen between two batches.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from config.file_stores import StoredFile, stored_write
from datasets.models import DatasetItem
from jobs.beat import JobBeat
from jobs.kinds import TRAINING
from jobs.services import (
    Claim,
    JobCancelled,
    JobLost,
    job_cancel_requested,
    job_claim,
    job_heartbeat,
    job_publish,
    job_still_ours,
    partial_path,
)
from training.ml.architecture import layer_table, table_data
from training.ml.backbones import Backbone, backbone_build
from training.ml.data import (
    DecodedBatches,
    ImageDataset,
    data_loader,
    decoded_bytes,
    preprocess_for,
    preprocess_key,
)
from training.ml.distributed import KeptBatches, processes_for, train_distributed
from training.ml.embeddings import EmbeddingCache, embed
from training.ml.loop import (
    Batches,
    EpochStats,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
    checkpoint_save,
    device_resolve,
    train,
    train_head_on_features,
)
from training.models import TrainingEpoch, TrainingRun, ValidationMistake
from training.services.checkpoints import checkpoint_stored
from training.services.evaluation import run_evaluation_score
from training.services.promotion import promotion_decide
from training.services.runs import run_finish
from training.services.weights import weights_load_stored, weights_resolve

log = logging.getLogger(__name__)


Item = tuple[bytes, int, str]


def _items(run: TrainingRun) -> tuple[list[Item], list[Item], list[int]]:
    """(image bytes, label, sha256) for the train and validation splits, read through the
    storage API (the training copies: shorter side 256), and the validation images' ids in
    the same order."""
    train_items: list[Item] = []
    val_items: list[Item] = []
    val_ids: list[int] = []
    rows = (
        DatasetItem.objects.filter(version=run.version)
        .order_by("pk")
        .values_list("image_id", "image__train_copy", "image__sha256", "label", "split")
    )
    for image_id, name, sha256, label, split in rows.iterator(chunk_size=2000):
        with default_storage.open(name, "rb") as handle:
            entry = (handle.read(), label, sha256)
        if split == DatasetItem.Split.VAL:
            val_items.append(entry)
            val_ids.append(image_id)
        else:
            train_items.append(entry)
    return train_items, val_items, val_ids


def checkpoint_output(run: TrainingRun) -> StoredFile:
    """Where a run's checkpoint goes once whole, in the checkpoint store (its attempts write
    beside it, see jobs)."""
    return checkpoint_stored(f"run-{run.pk}.pt")


def _finite(value: float) -> float | None:
    """None for NaN and infinity: SQLite cannot store NaN, JSON cannot carry either."""
    return value if math.isfinite(value) else None


def _epoch_writer(
    claim: Claim, progress: Callable[[EpochStats], None] | None
) -> Callable[[EpochStats], None]:
    def write(stats: EpochStats) -> None:
        if not job_heartbeat(claim):  # taken away: the curve is the newer attempt's now
            raise JobLost(f"run {claim.pk} was taken away")
        if job_cancel_requested(claim):
            raise JobCancelled
        TrainingEpoch.objects.update_or_create(
            run_id=claim.pk,
            epoch=stats.epoch,
            defaults={
                "train_loss": _finite(stats.train_loss),
                "val_loss": _finite(stats.val_loss),
                "top1_error": stats.top1_error,
                "top5_error": stats.top5_error,
                "images_per_second": stats.images_per_second,
                "seconds": stats.seconds,
            },
        )
        if progress is not None:
            progress(stats)

    return write


def _train(
    run: TrainingRun,
    backbone: Backbone,
    weights_id: str,
    config: TrainConfig,
    on_epoch: Callable[[EpochStats], None],
    should_stop: Callable[[], bool],
) -> tuple[TrainResult, list[int]]:
    """The run's result and its validation images' ids, in the order `Mistake.index` counts."""
    size = config.image_size or backbone.input_size
    train_items, val_items, val_ids = _items(run)
    if not train_items or not val_items:
        raise ValueError(
            f"Version {run.version.number} has {len(train_items)} training and "
            f"{len(val_items)} validation images; both splits need some."
        )
    if run.mode == TrainingRun.Mode.FEATURE_EXTRACTION:
        # The trunk is frozen: embed each image once (cached across runs) and train the head.
        cache = EmbeddingCache(settings.CROWDNET_EMBEDDING_DIR)

        def features(items: list[Item]) -> np.ndarray:
            return embed(
                backbone,
                [(data, sha256) for data, _, sha256 in items],
                cache,
                weights_id=weights_id,
                size=size,
                device=config.device,
                batch_size=config.batch_size,
                should_stop=should_stop,
            )

        head_state, result = train_head_on_features(
            features(train_items),
            np.array([label for _, label, _ in train_items]),
            features(val_items),
            np.array([label for _, label, _ in val_items]),
            len(run.version.classes),
            config,
            on_epoch=on_epoch,
            should_stop=should_stop,
        )
        backbone.net.head.load_state_dict(head_state)
        return result, val_ids
    loaders = _loaders(train_items, val_items, backbone, size, config)
    processes = processes_for(settings.CROWDNET_TRAIN_PROCESSES)
    if processes > 1:
        # decoded once here, shared with one process per GPU (training.ml.distributed)
        batch, seed = config.batch_size, config.seed
        kept = (
            KeptBatches.of(loaders[0], shuffle=True, batch_size=batch, seed=seed),
            KeptBatches.of(loaders[1], shuffle=False, batch_size=batch),
        )
        result = train_distributed(
            backbone,
            *kept,
            config,
            processes=processes,
            on_epoch=on_epoch,
            should_stop=should_stop,
        )
        return result, val_ids
    result = train(backbone, *loaders, config, on_epoch=on_epoch, should_stop=should_stop)
    return result, val_ids


def _loaders(
    train_items: list[Item],
    val_items: list[Item],
    backbone: Backbone,
    size: int,
    config: TrainConfig,
) -> list[Batches]:
    """Batches decoded once and kept (on the training device) while they fit in
    CROWDNET_TRAIN_DECODED_MIB, else decoded again every epoch."""
    preprocess = preprocess_for(backbone, size)
    splits = [
        ([(data, label) for data, label, _ in items], shuffle)
        for items, shuffle in ((train_items, True), (val_items, False))
    ]
    kept = decoded_bytes(len(train_items) + len(val_items), preprocess)
    workers = settings.CROWDNET_TRAIN_LOADER_WORKERS
    if kept <= settings.CROWDNET_TRAIN_DECODED_MIB * 2**20:
        device = device_resolve(config.device)
        return [
            DecodedBatches(
                pairs,
                preprocess,
                config.batch_size,
                shuffle=shuffle,
                seed=config.seed,
                num_workers=workers,
                device=device,
            )
            for pairs, shuffle in splits
        ]
    log.info(
        "%d MiB of decoded images would pass CROWDNET_TRAIN_DECODED_MIB: decoding every epoch",
        kept // 2**20,
    )
    return [
        data_loader(
            ImageDataset(pairs, preprocess),
            config.batch_size,
            shuffle=shuffle,
            seed=config.seed,
            num_workers=workers,
        )
        for pairs, shuffle in splits
    ]


def _architecture(backbone: Backbone, mode: str, size: int) -> dict[str, Any] | None:
    """The layer table for the run page, or None (logged) where it cannot be made (a layer
    the formulas lack): the table is for people to read and must never fail the run."""
    try:
        return {"image_size": size, "layers": table_data(layer_table(backbone, mode, size))}
    except Exception:
        log.warning("no layer table for %s", backbone.name, exc_info=True)
        return None


def _mistakes_write(run: TrainingRun, result: TrainResult, val_ids: list[int]) -> None:
    """The best epoch's most-wrong validation images, replacing any an earlier try wrote."""
    ValidationMistake.objects.filter(run=run).delete()
    finite = [m for m in result.mistakes if math.isfinite(m.confidence + m.label_probability)]
    ValidationMistake.objects.bulk_create(
        ValidationMistake(
            run=run,
            rank=rank,
            image_id=val_ids[mistake.index],
            label=mistake.label,
            predicted=mistake.predicted,
            confidence=mistake.confidence,
            label_probability=mistake.label_probability,
        )
        for rank, mistake in enumerate(finite, start=1)
    )


def run_execute(
    run_id: int, *, progress: Callable[[EpochStats], None] | None = None
) -> TrainingRun:
    """Train a queued run to its end; writes epochs, the checkpoint and the outcome. A run
    that is not queued (already taken, finished or cancelled) is returned untouched. The
    heartbeat beats in a thread from the claim on (loading images and weights included); the
    epochs, the checkpoint and the outcome are written only while this attempt owns the run."""
    claim = job_claim(TRAINING, run_id, started_at=timezone.now())
    run = TrainingRun.objects.select_related("version").get(pk=run_id)
    if claim is None:
        return run
    beat = JobBeat(claim).start()
    TrainingEpoch.objects.filter(run=run).delete()  # a retry starts its curve over
    params = run.params
    final = checkpoint_output(run)
    partial = partial_path(final, claim.attempt)
    try:
        classes = run.version.classes
        backbone = backbone_build(run.backbone, len(classes))
        weights_id = weights_load_stored(backbone, weights_resolve(run.weights))
        size = backbone.size_for(params.get("image_size"))
        if settings.CROWDNET_TRAIN_THREADS:
            torch.set_num_threads(settings.CROWDNET_TRAIN_THREADS)
        config = TrainConfig(
            mode=run.mode,
            epochs=params["epochs"],
            batch_size=params["batch_size"],
            lr=params["lr"],
            weight_decay=params["weight_decay"],
            seed=params["seed"],
            patience=params["patience"],
            device=settings.CROWDNET_TRAIN_DEVICE,
            image_size=size,
        )
        device = str(device_resolve(config.device))
        claim.mine().update(device=device, architecture=_architecture(backbone, run.mode, size))
        beat.check()
        result, val_ids = _train(
            run,
            backbone,
            weights_id,
            config,
            _epoch_writer(claim, progress),
            lambda: beat.should_stop,
        )
        with stored_write(partial) as local:  # uploaded when not on this host's disk
            sha256 = checkpoint_save(
                local,
                backbone,
                len(classes),
                [c["slug"] for c in classes],
                {
                    "run": run.pk,
                    "version": run.version.number,
                    "weights": weights_id,
                    "image_size": size,
                    "preprocess": preprocess_key(backbone, size),
                },
            )
        with transaction.atomic():
            if job_publish(claim, partial, final):
                _mistakes_write(run, result, val_ids)
                run_finish(
                    run,
                    TrainingRun.Status.DONE,
                    device=result.device,
                    top1_error=result.top1_error,
                    top5_error=result.top5_error,
                    per_class_error=result.per_class_error,
                    confusion=result.confusion,
                    best_epoch=result.best_epoch,
                    checkpoint=final.name,
                    checkpoint_sha256=sha256,
                )
    except (TrainingCancelled, JobCancelled, JobLost):
        with transaction.atomic():
            if not beat.lost.is_set() and job_still_ours(claim):
                run_finish(run, TrainingRun.Status.CANCELLED)
    except Exception as error:
        log.exception("training run %s failed", run.pk)
        with transaction.atomic():
            if job_still_ours(claim):
                run_finish(run, TrainingRun.Status.FAILED, error=f"{type(error).__name__}: {error}")
    finally:
        beat.stop()
        partial.delete()
    run.refresh_from_db()
    if run.status == TrainingRun.Status.DONE:
        _evaluate_and_decide(run)
        run.refresh_from_db()
    return run


def _evaluate_and_decide(run: TrainingRun) -> None:
    """Score a finished run on its categories' evaluation set, then decide its promotion.
    Neither ever fails the run: a failure is logged (and the catch-up beat scores it later)."""
    try:
        run_evaluation_score(run)
    except Exception:
        log.exception("run %s: not scored on an evaluation set", run.pk)
    if not settings.CROWDNET_TRAIN_AUTO_PROMOTE:
        return
    try:
        promotion = promotion_decide(run=run)
    except Exception:
        log.exception("run %s: no promotion decision", run.pk)
    else:
        log.info("run %s: %s", run.pk, promotion.reason)
