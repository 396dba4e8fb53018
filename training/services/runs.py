"""Training runs: start, cancel, watch for dead workers, promote; and the automatic retrain.

One run at a time: a run is queued only when no other is queued or running. The run itself
(training.services.execute) claims its row, beats a heartbeat while it trains, and writes its
epochs as they end; a worker that dies leaves a stale heartbeat, which runs_fail_stale turns
into one retry and then a failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.models import DatasetVersion
from datasets.services.versions import (
    DatasetTooSmall,
    accepted_labels_count,
    dataset_snapshot,
)
from jobs.kinds import TRAINING
from jobs.services import job_cancel, job_enqueue_on_commit, job_sweep
from labeling.models import User
from training.ml.catalog import BACKBONES, MODES
from training.models import TrainingRun
from training.services.weights import weights_resolve

log = logging.getLogger(__name__)

ACTIVE = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
DEFAULT_PARAMS: dict[str, Any] = {
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "patience": 3,
    "seed": 0,
}


class RunBusy(Exception):
    """Another run is queued or running; ``run`` is that one."""

    def __init__(self, run: TrainingRun) -> None:
        super().__init__(f"Run {run.pk} is {run.status}; cancel it or wait for it to finish.")
        self.run = run


class RunInvalid(ValueError):
    """A run's settings are wrong; ``field`` names the one in error."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def params_clean(params: dict[str, Any] | None) -> dict[str, Any]:
    """The run's hyperparameters with defaults filled in (epochs and image size from the
    settings every way of starting a run shares); RunInvalid for a bad one."""
    cleaned = {
        "epochs": settings.CROWDNET_TRAIN_EPOCHS,
        **DEFAULT_PARAMS,
        "image_size": settings.CROWDNET_TRAIN_IMAGE_SIZE,
    }
    limits = {
        "epochs": (int, 1, 500),
        "batch_size": (int, 1, 1024),
        "lr": (float, 1e-7, 10.0),
        "weight_decay": (float, 0.0, 1.0),
        "patience": (int, 1, 500),
        "seed": (int, 0, 2**31 - 1),
        "image_size": (int, 16, 1024),
    }
    for name, value in (params or {}).items():
        if name not in limits:
            raise RunInvalid(name, f"Unknown setting; use {', '.join(sorted(limits))}.")
        kind, low, high = limits[name]
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise RunInvalid(name, f"Must be a number between {low} and {high}.") from None
        if isinstance(value, bool) or not low <= number <= high:
            raise RunInvalid(name, f"Must be a number between {low} and {high}.")
        cleaned[name] = number
    return cleaned


def run_create(
    *,
    version: DatasetVersion,
    backbone: str,
    weights: str = "imagenet",
    mode: str = TrainingRun.Mode.FEATURE_EXTRACTION,
    params: dict[str, Any] | None = None,
    by: User | None = None,
    trigger: str = TrainingRun.Trigger.MANUAL,
    enqueue: bool = True,
) -> TrainingRun:
    """Queue a run on a dataset version; writes the run and sends it to the training queue
    once the transaction commits. Raises RunInvalid or RunBusy."""
    if backbone not in BACKBONES:
        raise RunInvalid("backbone", f"Unknown backbone; use one of {', '.join(BACKBONES)}.")
    if mode not in MODES:
        raise RunInvalid("mode", f"Unknown mode; use one of {', '.join(MODES)}.")
    limit = TrainingRun._meta.get_field("weights").max_length
    if len(weights) > limit:
        raise RunInvalid(
            "weights",
            f"The starting weights are {len(weights)} characters long; at most {limit} are "
            "allowed.",
        )
    try:
        weights_resolve(weights)
    except ValueError as error:
        raise RunInvalid("weights", str(error)) from None
    cleaned = params_clean(params)
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                version=version,
                backbone=backbone,
                weights=weights,
                mode=mode,
                params=cleaned,
                created_by=by,
                trigger=trigger,
            )
            if enqueue:
                job_enqueue_on_commit(TRAINING, run.pk)
    except IntegrityError:  # the unique "active" flag: another run is queued or running
        busy = TrainingRun.objects.filter(active=True).first()
        if busy is None:
            raise
        raise RunBusy(busy) from None
    return run


def run_create_on_snapshot(
    *,
    backbone: str,
    by: User | None = None,
    trigger: str = TrainingRun.Trigger.MANUAL,
    enqueue: bool = True,
    **run: Any,
) -> TrainingRun:
    """Take a new dataset version and queue a run on it, all or nothing: writes the version,
    its items and the run in one transaction, so a refused run (RunBusy, RunInvalid) leaves no
    version behind to reset the automatic retrain's label count. Raises those or
    DatasetTooSmall."""
    busy = TrainingRun.objects.filter(active=True).first()
    if busy is not None:  # refused before the snapshot's work; the transaction covers a race
        raise RunBusy(busy)
    with transaction.atomic():
        version = dataset_snapshot(by=by)
        return run_create(
            version=version, backbone=backbone, by=by, trigger=trigger, enqueue=enqueue, **run
        )


def run_finish(run: TrainingRun, status: str, **fields: Any) -> None:
    """Put a run in a final state (done, failed, cancelled) and free the one-run slot."""
    now = timezone.now()
    started = run.started_at or now
    TrainingRun.objects.filter(pk=run.pk).update(
        status=status,
        active=None,
        finished_at=now,
        seconds=(now - started).total_seconds(),
        **fields,
    )


def _enqueue(run_id: int) -> None:
    from training.tasks import run_train

    run_train.delay(run_id)


def run_cancel(run: TrainingRun) -> TrainingRun:
    """Stop a run: a queued one at once, a running one at its next batch; a finished one is
    left as it is. Writes the run."""
    job_cancel(TRAINING, run.pk)
    run.refresh_from_db()
    return run


def run_promote(run: TrainingRun) -> TrainingRun:
    """Make a finished run the current model (the one that predicts and scores candidates).
    The switch only: decisions go through training.services.promotion, which records them."""
    if run.status != TrainingRun.Status.DONE or not run.checkpoint:
        raise RunInvalid("run", "Only a finished run with a checkpoint can be promoted.")
    with transaction.atomic():
        TrainingRun.objects.filter(current=True).exclude(pk=run.pk).update(current=False)
        TrainingRun.objects.filter(pk=run.pk).update(current=True)
        transaction.on_commit(_score_later)
    run.refresh_from_db()
    return run


def _score_later() -> None:
    from training.tasks import candidates_score

    candidates_score.delay()


class NoCurrentModel(LookupError):
    """No run has been promoted yet."""


def current_model() -> TrainingRun | None:
    """The promoted run, or None."""
    return TrainingRun.objects.filter(current=True).first()


def runs_fail_stale() -> list[int]:
    """The job sweep for training runs (jobs.services.job_sweep): runs whose worker stopped
    beating are retried once (queued again), then failed; queued runs whose message was lost
    are sent again. Returns the ids it touched."""
    return job_sweep(TRAINING)


@dataclass(frozen=True)
class AutoOutcome:
    """What the automatic retrain check did, in words, and the run it queued if any."""

    message: str
    run: TrainingRun | None = None


def training_auto() -> AutoOutcome:
    """Snapshot a version and queue a run when enough labels arrived since the last version
    and no run is going. Idempotent: a second call right after finds the new version."""
    if TrainingRun.objects.filter(status__in=ACTIVE).exists():
        return AutoOutcome("A run is going; nothing to do.")
    last = DatasetVersion.objects.first()
    now = accepted_labels_count()
    new = now - (last.labels_at if last else 0)
    if new < settings.CROWDNET_TRAIN_AUTO_NEW_LABELS:
        return AutoOutcome(
            f"{new} new labels since the last version; waiting for "
            f"{settings.CROWDNET_TRAIN_AUTO_NEW_LABELS}."
        )
    try:
        run = run_create_on_snapshot(
            backbone=settings.CROWDNET_TRAIN_AUTO_BACKBONE,
            weights=settings.CROWDNET_TRAIN_AUTO_WEIGHTS,
            mode=settings.CROWDNET_TRAIN_AUTO_MODE,
            trigger=TrainingRun.Trigger.SCHEDULE,
        )
    except DatasetTooSmall as error:
        return AutoOutcome(str(error))
    except RunBusy as busy:
        return AutoOutcome(f"Run {busy.run.pk} started meanwhile; nothing to do.")
    return AutoOutcome(f"{new} new labels: version {run.version.number}, run {run.pk} queued.", run)
