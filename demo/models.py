"""The demo's own data: what its images really show, which only the simulator and benchmarks
read. Its table keeps the name it had in labeling (labeling_demotruth)."""

from __future__ import annotations

from django.db import models


class DemoTruth(models.Model):
    """What the demo data really shows, for the crowd simulator and benchmarks only.

    Nothing a worker can reach reads this table: no API, page or serializer exposes it.
    """

    candidate = models.OneToOneField(
        "labeling.Candidate", on_delete=models.CASCADE, related_name="+"
    )
    is_positive = models.BooleanField()
    true_label = models.CharField(max_length=100)
    boxes = models.JSONField(
        default=list, blank=True, help_text="True object boxes [[x0, y0, x1, y1], ...], if known."
    )

    class Meta:
        db_table = "labeling_demotruth"

    def __str__(self) -> str:
        return f"{self.candidate_id}: {self.true_label}"
