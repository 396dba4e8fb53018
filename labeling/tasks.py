"""Thin Celery tasks: take ids, call one service. Idempotent and safe to retry."""

from __future__ import annotations

from celery import shared_task

from labeling.models import ConsensusRun
from labeling.services import consensus, imports, media, reaggregation


@shared_task(name="labeling.tasks.ping")
def ping(value: str) -> str:
    """Echo, for checking that a worker is up and the broker round-trips."""
    return f"pong:{value}"


@shared_task(name="labeling.tasks.import_job_run", acks_late=True, soft_time_limit=3600)
def import_job_run(job_id: int) -> str:
    """Run one scrape job; a finished job is not run again."""
    return imports.import_job_run(job_id).status


@shared_task(name="labeling.tasks.media_orphans_sweep")
def media_orphans_sweep() -> int:
    """Delete stored files that no image refers to."""
    return media.media_orphans_sweep()


@shared_task(name="labeling.tasks.import_jobs_fail_stale")
def import_jobs_fail_stale() -> int:
    """The job sweep for import jobs only (jobs.tasks.jobs_sweep does every kind)."""
    return imports.import_jobs_fail_stale()


@shared_task(name="labeling.tasks.consensus_reaggregate", soft_time_limit=3600)
def consensus_reaggregate(
    trigger: str = ConsensusRun.Trigger.SCHEDULE, user_id: int | None = None
) -> int:
    """Re-run Dawid-Skene over every label vote and apply it; returns the run's id."""
    from labeling.models import User

    by = User.objects.filter(pk=user_id).first() if user_id is not None else None
    return reaggregation.consensus_reaggregate(trigger=trigger, by=by).pk


@shared_task(name="labeling.tasks.consensus_run_execute", acks_late=True, soft_time_limit=3600)
def consensus_run_execute(run_id: int) -> str:
    """Run a consensus run the sweep queued again; one already taken or finished is left."""
    return reaggregation.consensus_run_execute(run_id).status


@shared_task(name="labeling.tasks.commit_hooks_sweep")
def commit_hooks_sweep() -> int:
    """Do what answers' and pauses' commit hooks left undone when a process was killed:
    pending peer credits, due rechecks of a worker's decisions; safe beside live answers."""
    return consensus.commit_hooks_sweep()
