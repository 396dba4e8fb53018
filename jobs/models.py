"""The job row every background job kind shares (abstract: each kind keeps its own table)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    """A job's life: queued -> running -> done | failed | cancelled (running -> queued again
    when the sweep retries a job whose worker died)."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """State, attempt and owner of one background job. ``attempt`` counts claims; ``owner`` is
    the claiming worker (host:pid); ``heartbeat_at`` is refreshed by that attempt while it
    works; ``sent_at`` is when its broker message was last sent (the sweep re-sends a queued
    job whose message is older than its kind's grace)."""

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempt = models.PositiveSmallIntegerField(default=0)
    owner = models.CharField(max_length=120, blank=True, help_text="host:pid of the attempt.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(default=timezone.now, help_text="Its message last sent.")
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        abstract = True
