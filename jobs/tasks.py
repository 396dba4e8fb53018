"""The sweep, on the default queue (beat): thin, idempotent."""

from __future__ import annotations

from celery import shared_task

from jobs.services import jobs_sweep


@shared_task(name="jobs.tasks.jobs_sweep")
def jobs_sweep_task() -> dict[str, list[int]]:
    """Requeue or fail jobs whose worker died; re-send queued jobs whose message was lost."""
    return jobs_sweep()
