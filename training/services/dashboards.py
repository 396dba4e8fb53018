"""What the curators' training dashboards show, each read in a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.urls import reverse

from training.models import TrainingRun, ValidationMistake

HEAT_LEVELS = 8  # a confusion cell's shade: 0 (none of its row) .. 8 (all of it); run.js


def model_error_history() -> dict[str, Any]:
    """Every finished run's top-1 and top-5 validation error with its date and labelled-set
    size, oldest first, grouped into one series per backbone and mode (one query)."""
    rows = (
        TrainingRun.objects.filter(status=TrainingRun.Status.DONE, top1_error__isnull=False)
        .order_by("finished_at", "id")
        .values(
            "id",
            "backbone",
            "mode",
            "finished_at",
            "top1_error",
            "top5_error",
            "current",
            "version__number",
            "version__images",
        )
    )
    runs, series = [], {}
    for row in rows:
        name = f"{row['backbone']} · {row['mode']}"
        series.setdefault(name, []).append(row["id"])
        runs.append(
            {
                "id": row["id"],
                "series": name,
                "backbone": row["backbone"],
                "mode": row["mode"],
                "finished_at": row["finished_at"].isoformat(),
                "version": row["version__number"],
                "labeled": row["version__images"],
                "top1_error": row["top1_error"],
                "top5_error": row["top5_error"],
                "current": row["current"],
                "url": reverse("curate-training-run", args=[row["id"]]),
            }
        )
    return {"runs": runs, "series": [{"name": k, "runs": v} for k, v in series.items()]}


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
