"""What the curators' training dashboards show, each read in a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Prefetch
from django.shortcuts import get_object_or_404
from django.urls import reverse

from training.ml.intervals import errors_of, wilson_interval
from training.models import EvaluationScore, TrainingRun, ValidationMistake

HEAT_LEVELS = 8  # a confusion cell's shade: 0 (none of its row) .. 8 (all of it); run.js


def evaluation_label(number: int, classes: int, images: int) -> str:
    """How pages name one evaluation set version: "evaluation v2 · 10 classes · 480 images"."""
    return f"evaluation v{number} · {classes} classes · {images} images"


def score_bands(images: int, top1_error: float, top5_error: float | None) -> dict[str, Any]:
    """A score's Wilson 95 % intervals, as fractions: top1_low/high, top5_low/high."""
    bands: dict[str, Any] = {}
    for name, rate in (("top1", top1_error), ("top5", top5_error)):
        low, high = (None, None)
        if rate is not None and images > 0:
            low, high = wilson_interval(errors_of(rate, images), images)
        bands |= {f"{name}_low": low, f"{name}_high": high}
    return bands


RUN_FIELDS = ("id", "backbone", "mode", "trigger", "finished_at", "current")


def _run_row(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The run part of a point or of an unscored run (finished_at as ISO 8601)."""
    run = {name: row[prefix + name] for name in RUN_FIELDS}
    return run | {
        "series": f"{run['backbone']} · {run['mode']}",
        "finished_at": run["finished_at"].isoformat(),
        "version": row[prefix + "version__number"],
        "labeled": row[prefix + "version__images"],
        "url": reverse("curate-training-run", args=[run["id"]]),
    }


def model_error_history() -> dict[str, Any]:
    """Comparable error over time, in two queries: every finished run's top-1 and top-5 error
    on each evaluation set version it was scored on, with Wilson 95 % bands from the set's
    size, one series per version (oldest first; points by labelled-set size, then date); and
    the finished runs never scored on one (listed, not plotted). Errors are fractions."""
    done = TrainingRun.Status.DONE
    scores = (
        EvaluationScore.objects.filter(run__status=done)
        .order_by(
            "evaluation__created_at",
            "evaluation_id",
            "run__version__images",
            "run__finished_at",
            "run_id",
        )
        .values(
            "evaluation_id",
            "evaluation__number",
            "evaluation__classes",
            "evaluation__images",
            "images",
            "top1_error",
            "top5_error",
            *(f"run__{name}" for name in RUN_FIELDS),
            "run__version__number",
            "run__version__images",
        )
    )
    series: dict[int, dict[str, Any]] = {}
    points = []
    for row in scores:
        evaluation = series.setdefault(
            row["evaluation_id"],
            {
                "id": row["evaluation_id"],
                "number": row["evaluation__number"],
                "images": row["evaluation__images"],
                "label": evaluation_label(
                    row["evaluation__number"],
                    len(row["evaluation__classes"]),
                    row["evaluation__images"],
                ),
                "points": 0,
            },
        )
        evaluation["points"] += 1
        points.append(
            _run_row(row, "run__")
            | {
                "evaluation": row["evaluation_id"],
                "evaluation_label": evaluation["label"],
                "images": row["images"],
                "top1_error": row["top1_error"],
                "top5_error": row["top5_error"],
                **score_bands(row["images"], row["top1_error"], row["top5_error"]),
            }
        )
    unscored = (
        TrainingRun.objects.filter(status=done)
        .exclude(Exists(EvaluationScore.objects.filter(run=OuterRef("pk"))))
        .order_by("finished_at", "id")
        .values(*RUN_FIELDS, "version__number", "version__images")
    )
    return {
        "series": list(series.values()),
        "points": points,
        "unscored": [_run_row(row) for row in unscored],
    }


def newest_scores() -> Prefetch:
    """Prefetch a list of runs' evaluation scores, the newest set first, with their set and
    without the per-image answers (one query for the page)."""
    return Prefetch(
        "scores",
        queryset=EvaluationScore.objects.select_related("evaluation")
        .defer("top1_correct", "top5_correct")
        .order_by("-evaluation__created_at", "-evaluation_id"),
    )


def run_evaluation(run: TrainingRun) -> dict[str, Any]:
    """A run's scores on evaluation sets (newest set first, with Wilson 95 % bands) and the
    promotion decisions taken on it (newest first), in two queries."""
    scores = []
    for score in run.scores.select_related("evaluation").order_by("-evaluation__created_at"):
        evaluation = score.evaluation
        scores.append(
            {
                "score": score,
                "label": evaluation_label(
                    evaluation.number, len(evaluation.classes), evaluation.images
                ),
                **score_bands(score.images, score.top1_error, score.top5_error),
            }
        )
    promotions = list(run.promotions.select_related("incumbent", "evaluation", "by"))
    for promotion in promotions:
        evaluation = promotion.evaluation
        promotion.evaluation_label = (  # type: ignore[attr-defined]
            evaluation_label(evaluation.number, len(evaluation.classes), evaluation.images)
            if evaluation
            else ""
        )
    return {"scores": scores, "promotions": promotions}


def run_detail(pk: int) -> TrainingRun:
    """One run with its version, epochs and most-wrong images (with their image rows) loaded,
    in three queries; 404 when there is no such run. The layer table is left unread."""
    return get_object_or_404(
        TrainingRun.objects.select_related("version", "created_by")
        .defer("architecture")
        .prefetch_related(
            "epochs",
            Prefetch("mistakes", queryset=ValidationMistake.objects.select_related("image")),
        ),
        pk=pk,
    )


def architecture_summary(architecture: dict[str, Any]) -> dict[str, Any]:
    """A stored layer table with its totals: parameters, trainable and frozen."""
    layers = architecture["layers"]
    total = sum(layer["params"] for layer in layers)
    trainable = sum(layer["params"] for layer in layers if layer["trains"])
    return {
        "image_size": architecture["image_size"],
        "parameters": total,
        "trainable": trainable,
        "frozen": total - trainable,
        "layers": layers,
    }
