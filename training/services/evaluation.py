"""Evaluation sets: a frozen, versioned test set per category set, as ILSVRC had, and every
model's score on it.

Images are reserved by their sha256 (labeling.evaluation_reserve.reserved_for_evaluation): no
dataset version takes them, so no model trains on them. A set takes the reserved images whose
label got extra scrutiny (a curator's decision, or more votes at a higher confidence than
consensus asks), keeps every image of its previous version (it only grows) and changes only
when someone asks for a new version. Each score keeps the model's answer per image, so two
models can be compared on the same images (training.services.promotion).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F

from datasets.models import DatasetItem
from datasets.services.versions import snapshot_categories
from labeling.evaluation_reserve import reserved_for_evaluation
from labeling.models import Candidate, Category, User
from training.models import EvaluationItem, EvaluationScore, EvaluationSet, TrainingRun
from training.services.checkpoints import run_checkpoint_exists

log = logging.getLogger(__name__)


class EvaluationRefused(ValueError):
    """No new evaluation version can be made now; the message says what is missing."""


def category_key(category_ids: Iterable[int]) -> str:
    """The key of a category set: its ids, sorted, comma-separated."""
    return ",".join(str(c) for c in sorted(set(category_ids)))


def run_category_key(run: TrainingRun) -> str:
    """The key of the categories a run's dataset version trained on."""
    return category_key(c["id"] for c in run.version.classes)


def evaluation_current(key: str) -> EvaluationSet | None:
    """The highest evaluation version of a category set, or None."""
    return EvaluationSet.objects.filter(category_key=key).order_by("-number").first()


@dataclass(frozen=True)
class Reserved:
    """The reserved images' accepted labels among a category set."""

    accepted: dict[int, set[int]]  # image id -> categories it is accepted for
    scrutinised: set[int]  # image ids whose single label got extra scrutiny
    trained: set[int]  # image ids some dataset version has in its train split


def _reserved(category_ids: list[int], also: Iterable[int] = ()) -> Reserved:
    """Accepted labels of reserved images (and of the images in ``also``, whatever their
    hash: a previous version's items), with which passed scrutiny."""
    also = set(also)
    rows = Candidate.objects.filter(
        state=Candidate.State.ACCEPTED, category_id__in=category_ids
    ).values_list(
        "image_id",
        "category_id",
        "image__sha256",
        "override",
        "votes_cast",
        "confidence",
        "gold__answer",
    )
    accepted: dict[int, set[int]] = defaultdict(set)
    scrutiny: dict[int, bool] = {}
    min_votes = settings.CROWDNET_EVAL_MIN_VOTES
    min_confidence = settings.CROWDNET_EVAL_MIN_CONFIDENCE
    for image_id, category_id, sha256, override, votes, confidence, gold in rows.iterator(
        chunk_size=5000
    ):
        if image_id not in also and not reserved_for_evaluation(sha256):
            continue
        accepted[image_id].add(category_id)
        # a curator's override, or a control answer a curator gave
        by_curator = override is True or gold is True
        scrutiny[image_id] = by_curator or (votes >= min_votes and confidence >= min_confidence)
    trained = set(
        DatasetItem.objects.filter(split=DatasetItem.Split.TRAIN, image_id__in=list(accepted))
        .values_list("image_id", flat=True)
        .distinct()
    )
    scrutinised = {i for i, ok in scrutiny.items() if ok and len(accepted[i]) == 1}
    return Reserved(dict(accepted), scrutinised, trained)


def evaluation_waiting(category_ids: Iterable[int]) -> int:
    """How many reserved accepted labels of these categories wait for scrutiny (a curator's
    review, or the votes and confidence CROWDNET_EVAL_MIN_* ask for)."""
    ids = sorted(set(category_ids))
    return sum(_plan(ids, evaluation_current(category_key(ids)))[2].values())


def _category_ids(categories: Iterable[Category | int] | None) -> list[int]:
    if categories is None:
        ids = snapshot_categories()
        if len(ids) < 2:
            raise EvaluationRefused(
                "An evaluation set is made for the categories a dataset version would take: "
                f"at least two with {settings.CROWDNET_TRAIN_MIN_PER_CLASS} accepted images "
                f"each; {len(ids)} have that. Let the crowd label more."
            )
        return ids
    ids = sorted({c if isinstance(c, int) else c.pk for c in categories})
    if len(ids) < 2:
        raise EvaluationRefused("An evaluation set needs at least two categories.")
    return ids


def _too_small(classes: list[dict], counts: list[int], waiting: Counter[int]) -> str:
    need = settings.CROWDNET_EVAL_MIN_PER_CLASS
    short = [
        f"{c['slug']} has {n}"
        + (f" ({waiting[c['id']]} more wait for scrutiny)" if waiting[c["id"]] else "")
        for c, n in zip(classes, counts, strict=True)
        if n < need
    ]
    return (
        f"An evaluation set needs {need} images per class (CROWDNET_EVAL_MIN_PER_CLASS): "
        + "; ".join(short)
        + ". Review reserved images as a curator, or wait for the crowd's votes."
    )


def _plan(
    ids: list[int], previous: EvaluationSet | None
) -> tuple[list[tuple[int, int]], dict[str, int], Counter[int]]:
    """The new version's (image id, category id) in item order, what changed, and the labels
    still waiting for scrutiny per category."""
    old = list(previous.items.order_by("id").values_list("image_id", "label")) if previous else []
    old_classes = previous.classes if previous else []
    reserved = _reserved(ids, (image_id for image_id, _ in old))
    items, dropped = [], 0
    for image_id, label in old:
        category_id = old_classes[label]["id"]
        if reserved.accepted.get(image_id) == {category_id} and image_id not in reserved.trained:
            items.append((image_id, category_id))
        else:
            dropped += 1
    taken = {image_id for image_id, _ in old}
    added = [
        (image_id, next(iter(reserved.accepted[image_id])))
        for image_id in sorted(reserved.scrutinised - reserved.trained - taken)
    ]
    waiting: Counter[int] = Counter(
        next(iter(cats))
        for image_id, cats in reserved.accepted.items()
        if len(cats) == 1 and image_id not in reserved.scrutinised | reserved.trained | taken
    )
    changes = {"kept": len(items), "added": len(added), "dropped": dropped}
    return items + added, changes, waiting


def _note(note: str, previous: EvaluationSet | None, changes: dict[str, int], waiting: int) -> str:
    parts = [note.strip()] if note.strip() else []
    if previous:
        parts.append(
            f"Kept {changes['kept']} images of v{previous.number}, added {changes['added']}."
        )
        if changes["dropped"]:
            parts.append(
                f"Dropped {changes['dropped']} whose label changed since (a curator's decision "
                "or a re-aggregation) or that a dataset version now trains on."
            )
    else:
        parts.append(f"First version: {changes['added']} images.")
    parts.append(f"{waiting} reserved labels wait for scrutiny.")
    return " ".join(parts)


def evaluation_freeze(
    *, categories: Iterable[Category | int] | None = None, by: User | None = None, note: str = ""
) -> EvaluationSet:
    """Freeze a new evaluation version for a category set (by default the categories
    dataset_snapshot would take): the previous version's images plus the newly eligible ones.
    Writes the set and its items in one transaction and, once committed, queues the
    re-scoring of the current model and recent runs. Raises EvaluationRefused saying what is
    missing (too few images in a class, or nothing new)."""
    ids = _category_ids(categories)
    key = category_key(ids)
    categories_by_id = Category.objects.in_bulk(ids)
    classes = [
        {"id": c, "slug": categories_by_id[c].slug, "name": categories_by_id[c].name} for c in ids
    ]
    index = {c: i for i, c in enumerate(ids)}
    for attempt in range(3):
        try:
            with transaction.atomic():
                previous = evaluation_current(key)
                chosen, changes, waiting = _plan(ids, previous)
                counts = [0] * len(ids)
                for _, category_id in chosen:
                    counts[index[category_id]] += 1
                if previous and not changes["added"] and not changes["dropped"]:
                    raise EvaluationRefused(
                        f"Evaluation set v{previous.number} for these categories already holds "
                        f"every eligible image; {sum(waiting.values())} reserved labels wait "
                        "for scrutiny (a curator's review, or "
                        f"{settings.CROWDNET_EVAL_MIN_VOTES} votes at confidence "
                        f"{settings.CROWDNET_EVAL_MIN_CONFIDENCE})."
                    )
                if min(counts) < settings.CROWDNET_EVAL_MIN_PER_CLASS:
                    raise EvaluationRefused(_too_small(classes, counts, waiting))
                evaluation = EvaluationSet.objects.create(
                    category_key=key,
                    number=(previous.number if previous else 0) + 1,
                    created_by=by,
                    classes=classes,
                    counts=counts,
                    images=len(chosen),
                    note=_note(note, previous, changes, sum(waiting.values())),
                )
                EvaluationItem.objects.bulk_create(
                    [
                        EvaluationItem(evaluation=evaluation, image_id=i, label=index[c])
                        for i, c in chosen
                    ],
                    batch_size=2000,
                )
                transaction.on_commit(lambda pk=evaluation.pk: _rescore_later(pk))
            return evaluation
        except IntegrityError:
            if attempt == 2:
                raise  # someone else kept taking the number: surface it
    raise AssertionError("unreachable")


def _rescore_later(evaluation_id: int) -> None:
    from training.tasks import evaluation_rescore

    evaluation_rescore.delay(evaluation_id)


def run_answers(run: TrainingRun, rows: list[tuple[str, int]]) -> tuple[str, str]:
    """The run's top-1 and top-5 answers ('1' right, '0' wrong) on (training copy, category
    id) rows. Labels go to the run's classes by category id: a category the run does not know
    is always wrong. Top-5 is top-k with k = min(5, the run's classes)."""
    # torch only here: the web imports this module for freezing and counting (no model)
    from training.ml.data import image_decode
    from training.services.scoring import _probabilities, model_load

    model = model_load(run)
    index = {c["id"]: i for i, c in enumerate(model.classes)}
    k = min(5, len(model.classes))
    top1, top5 = [], []
    for start in range(0, len(rows), 64):
        chunk = rows[start : start + 64]
        images = []
        for name, _ in chunk:
            with default_storage.open(name, "rb") as handle:
                images.append(image_decode(handle.read()))
        ranked = np.argsort(-_probabilities(model, images), axis=1, kind="stable")[:, :k]
        for (_, category_id), order in zip(chunk, ranked, strict=True):
            target = index.get(category_id)
            top1.append("1" if target is not None and order[0] == target else "0")
            top5.append("1" if target is not None and target in order else "0")
    return "".join(top1), "".join(top5)


def evaluation_score(run: TrainingRun, evaluation: EvaluationSet) -> EvaluationScore:
    """The run's score on the set: read if there is one, else predicted and written (once per
    run and set, whoever writes first). Raises what loading the checkpoint raises."""
    existing = EvaluationScore.objects.filter(run=run, evaluation=evaluation).first()
    if existing is not None:
        return existing
    rows = [
        (name, evaluation.classes[label]["id"])
        for name, label in evaluation.items.order_by("id").values_list("image__train_copy", "label")
    ]
    top1, top5 = run_answers(run, rows)
    images = len(rows)
    score, _ = EvaluationScore.objects.get_or_create(
        run=run,
        evaluation=evaluation,
        defaults={
            "images": images,
            "top1_error": top1.count("0") / images if images else 0.0,
            "top5_error": top5.count("0") / images if images else 0.0,
            "top1_correct": top1,
            "top5_correct": top5,
        },
    )
    return score


def evaluation_for_run(run: TrainingRun) -> EvaluationSet | None:
    """The current evaluation set of the run's categories; when there is none yet, the first
    one is frozen if the eligible images allow it (later versions only by a curator)."""
    key = run_category_key(run)
    current = evaluation_current(key)
    if current is not None:
        return current
    try:
        return evaluation_freeze(
            categories=[c["id"] for c in run.version.classes],
            note=f"Frozen automatically when run {run.pk} finished.",
        )
    except EvaluationRefused as refused:
        log.info("run %s: no evaluation set for its categories yet: %s", run.pk, refused)
        return None


def run_evaluation_score(run: TrainingRun) -> EvaluationScore | None:
    """Score a finished run on the current evaluation set of its categories (freezing the
    first one when it can); None when there is no set."""
    evaluation = evaluation_for_run(run)
    return evaluation_score(run, evaluation) if evaluation is not None else None


def _recent_runs(key: str) -> list[TrainingRun]:
    """The current model (when it is of these categories) and the CROWDNET_EVAL_RESCORE_RUNS
    most recent finished runs of a category set."""
    runs: list[TrainingRun] = []
    finished = (
        TrainingRun.objects.filter(status=TrainingRun.Status.DONE)
        .exclude(checkpoint="")
        .select_related("version")
        .order_by("-current", F("finished_at").desc(nulls_last=True), "-id")
    )
    wanted = settings.CROWDNET_EVAL_RESCORE_RUNS
    for run in finished.iterator(chunk_size=200):
        if run_category_key(run) != key:
            continue
        if run.current or len([r for r in runs if not r.current]) < wanted:
            runs.append(run)
        if len([r for r in runs if not r.current]) >= wanted:
            break
    return runs


def evaluation_rescore(evaluation: EvaluationSet) -> int:
    """Score the current model and the recent runs of the set's categories on it where a
    score is missing; a run whose checkpoint is gone or unreadable is skipped with a log line.
    Writes EvaluationScore rows; returns how many it wrote. Idempotent."""
    written = 0
    for run in _recent_runs(evaluation.category_key):
        if EvaluationScore.objects.filter(run=run, evaluation=evaluation).exists():
            continue
        if not run_checkpoint_exists(run):
            log.warning(
                "run %s: checkpoint %s is gone; not scored on %s",
                run.pk,
                run.checkpoint,
                evaluation,
            )
            continue
        try:
            evaluation_score(run, evaluation)
        except Exception:
            log.exception("run %s could not be scored on %s", run.pk, evaluation)
            continue
        written += 1
    return written


def evaluations_catch_up() -> int:
    """Re-score on every category set's current evaluation version whatever a lost message
    or a killed worker left unscored; returns how many scores it wrote."""
    keys = EvaluationSet.objects.values_list("category_key", flat=True).distinct()
    written = 0
    for key in sorted(set(keys)):
        current = evaluation_current(key)
        if current is not None:
            written += evaluation_rescore(current)
    return written
