"""The current model at work: top-5 predictions for a curator's image, and active learning
(scoring open candidates so the crowd is asked about the uncertain ones first).

Model scores steer the order of work and, when configured, how many votes a candidate waits
for; they never reach a worker (task bodies don't carry them) and never decide a label.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q

from datasets.models import DatasetItem
from labeling.evaluation_reserve import reserved_for_evaluation
from labeling.ingest.validation import ValidationLimits, validate_image
from labeling.models import Candidate
from training.ml.backbones import Backbone, backbone_build
from training.ml.data import Preprocess, image_decode, preprocess_for
from training.models import TrainingRun
from training.services.checkpoints import run_checkpoint_read
from training.services.runs import NoCurrentModel, current_model


@dataclass(frozen=True)
class LoadedModel:
    run_id: int
    sha256: str
    backbone: Backbone
    preprocess: Preprocess
    classes: list[dict]


_cache: dict[tuple[int, str], LoadedModel] = {}
_lock = threading.Lock()


def model_load(run: TrainingRun) -> LoadedModel:
    """The run's checkpoint as a ready net (hash-checked, weights_only), kept per process."""
    key = (run.pk, run.checkpoint_sha256)
    with _lock:
        if key not in _cache:
            saved = run_checkpoint_read(run)
            classes = run.version.classes
            backbone = backbone_build(run.backbone, len(classes))
            backbone.net.load_state_dict(saved["state_dict"])
            backbone.net.eval()
            size = saved["extra"].get("image_size") or backbone.input_size
            _cache.clear()  # one current model at a time is plenty
            _cache[key] = LoadedModel(
                run.pk, run.checkpoint_sha256, backbone, preprocess_for(backbone, size), classes
            )
        return _cache[key]


def _probabilities(model: LoadedModel, images: list) -> np.ndarray:
    batch = torch.stack([model.preprocess(image) for image in images])
    with torch.no_grad():
        return torch.softmax(model.backbone.net(batch), dim=1).numpy()


@dataclass(frozen=True)
class Prediction:
    slug: str
    name: str
    probability: float


def predict(data: bytes, *, top: int = 5) -> tuple[TrainingRun, list[Prediction]]:
    """The current model's top classes for an uploaded image. Raises ImageRejected for a bad
    upload (the same checks as ingestion) and NoCurrentModel when none is promoted."""
    limits = ValidationLimits(
        max_bytes=settings.CROWDNET_MAX_IMAGE_BYTES, max_pixels=settings.CROWDNET_MAX_IMAGE_PIXELS
    )
    image = validate_image(data, limits).image
    run = current_model()
    if run is None:
        raise NoCurrentModel("No model is current yet: promote a finished training run.")
    model = model_load(run)
    probabilities = _probabilities(model, [image])[0]
    order = np.argsort(-probabilities, kind="stable")[:top]
    return run, [
        Prediction(model.classes[i]["slug"], model.classes[i]["name"], float(probabilities[i]))
        for i in order
    ]


def candidates_score(*, batch_size: int = 64) -> int:
    """Score the current model's categories' candidates, open and decided: the model's
    P(category) goes to ``model_p``. Open ones steer the crowd: fresh candidates (no votes yet)
    get a priority that rises with the model's uncertainty; where CROWDNET_AL_CONFIDENT is set
    and the model is that sure either way, the candidate waits for CROWDNET_AL_VOTE_FLOOR votes
    instead of more. Decided ones only get the score, which puts those the model contradicts
    in the review queue: those a curator has not settled and the model did not train on (its
    validation images and later decisions), since a net's verdict on its own training images
    says little. Returns how many were scored."""
    run = current_model()
    if run is None:
        return 0
    model = model_load(run)
    index = {c["id"]: i for i, c in enumerate(model.classes)}
    open_, accepted, rejected = (
        Candidate.State.OPEN,
        Candidate.State.ACCEPTED,
        Candidate.State.REJECTED,
    )
    trained_on = DatasetItem.objects.filter(
        version_id=run.version_id, split=DatasetItem.Split.TRAIN
    ).values("image_id")
    decided = Q(state__in=[accepted, rejected], override__isnull=True) & ~Q(image_id__in=trained_on)
    rows = list(
        Candidate.objects.filter(category_id__in=list(index))
        .filter(Q(state=open_) | decided)
        .values_list(
            "id",
            "category_id",
            "image__train_copy",
            "state",
            "votes_cast",
            "votes_needed",
            "image__sha256",
        )
        .order_by("id")
    )
    confident, floor = settings.CROWDNET_AL_CONFIDENT, settings.CROWDNET_AL_VOTE_FLOOR
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        images = []
        for row in chunk:
            with default_storage.open(row[2], "rb") as handle:
                images.append(image_decode(handle.read()))
        probabilities = _probabilities(model, images)
        with transaction.atomic():
            for (pk, category_id, _, state, cast, needed, sha256), p_all in zip(
                chunk, probabilities, strict=True
            ):
                p = float(p_all[index[category_id]])
                fields: dict[str, object] = {"model_p": p}
                if state != open_:
                    # Only while it stays as decided when read.
                    Candidate.objects.filter(pk=pk, state=state).update(**fields)
                    continue
                if cast == 0:
                    fields["priority"] = round(100 * (1 - abs(2 * p - 1)))
                # never fewer votes on an image reserved for evaluation: it wants more
                sure = confident and max(p, 1 - p) >= confident
                if sure and needed > floor > cast and not reserved_for_evaluation(sha256):
                    fields["votes_needed"] = floor
                # Only while still open and unvoted-on as read: a concurrent answer wins.
                Candidate.objects.filter(pk=pk, state=open_, votes_cast=cast).update(**fields)
    return len(rows)
