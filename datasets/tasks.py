"""Thin Celery tasks for exports: take ids, call one service. Idempotent and safe to retry."""

from __future__ import annotations

from celery import shared_task

from datasets.services import exports


@shared_task(name="datasets.tasks.export_build", acks_late=True, soft_time_limit=4 * 3600)
def export_build_task(export_id: int) -> str:
    """Build one dataset export's archive; one already taken or finished is left alone."""
    return exports.export_build(export_id).status


@shared_task(name="datasets.tasks.exports_expire")
def exports_expire() -> int:
    """Delete export archives past their retention period."""
    return exports.exports_expire()
