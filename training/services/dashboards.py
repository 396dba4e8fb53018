"""What the curators' training dashboards show, read in one query each."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from training.models import TrainingRun


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
