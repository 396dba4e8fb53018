"""Dataset exports: one archive of a dataset version in one format, built by a job."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from datasets.models.versions import DatasetVersion
from jobs.models import Job


class DatasetExport(Job):
    """An export job (jobs.models.Job) and its archive. Only the curator who asked (or staff)
    may download it. Its states are the job states and one more: expired (archive deleted)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="exports")
    format = models.CharField(max_length=12)
    archive = models.CharField(max_length=4, default="zip")
    options = models.JSONField(default=dict)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataset_exports"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    images_total = models.PositiveIntegerField(default=0)
    images_done = models.PositiveIntegerField(default=0)
    images_written = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True, help_text="Name in the exports store.")
    byte_size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the whole archive.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "labeling_datasetexport"  # the table it had in labeling
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.format} export of v{self.version_id}"

    @property
    def progress(self) -> float:
        """Share of the version's images gone through, 0-1."""
        if self.status == self.Status.DONE:
            return 1.0
        return self.images_done / self.images_total if self.images_total else 0.0
