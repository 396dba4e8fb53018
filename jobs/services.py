"""The job pattern's writes: claim, heartbeat, finish, cancel, send and sweep. Every write an
attempt makes is conditional on the row still being running at that attempt with that owner,
so a worker the sweep gave up on can never overwrite what the next attempt did."""

from __future__ import annotations

import logging
import os
import posixpath
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from config.file_stores import StoredFile, stored_matching, stored_move
from jobs.kinds import KINDS, JobKind
from jobs.models import JobStatus

log = logging.getLogger(__name__)


class JobLost(Exception):
    """The job was taken away from this attempt (the sweep requeued or failed it)."""


class JobCancelled(Exception):
    """A cancel was asked for while the job ran."""


def worker_name() -> str:
    """This process as an owner: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    """What an attempt holds: the job at one attempt, by one owner."""

    kind: JobKind
    pk: int
    attempt: int
    owner: str

    def mine(self) -> QuerySet[Any]:
        """The row while it is still this attempt's."""
        return self.kind.model.objects.filter(
            pk=self.pk, status=JobStatus.RUNNING, attempt=self.attempt, owner=self.owner
        )


def job_claim(kind: JobKind, pk: int, **fields: Any) -> Claim | None:
    """Take a queued job (queued -> running, attempt + 1, owner, heartbeat now, plus
    ``fields``); None when it is not queued or a uniqueness rule forbids it running now. A
    message delivered twice claims once."""
    owner, now = worker_name(), timezone.now()
    try:
        with transaction.atomic():
            claimed = kind.model.objects.filter(pk=pk, status=JobStatus.QUEUED).update(
                status=JobStatus.RUNNING,
                attempt=F("attempt") + 1,
                owner=owner,
                heartbeat_at=now,
                **fields,
            )
            if not claimed:
                return None
            attempt = kind.model.objects.filter(pk=pk).values_list("attempt", flat=True).get()
    except IntegrityError:
        return None
    return Claim(kind, pk, attempt, owner)


def job_create_claimed(kind: JobKind, **fields: Any) -> Claim | None:
    """Insert a job already running at attempt 1 for this worker; None when a uniqueness rule
    (one running at a time) refuses it."""
    now = timezone.now()
    try:
        with transaction.atomic():
            row = kind.model.objects.create(
                status=JobStatus.RUNNING,
                attempt=1,
                owner=worker_name(),
                heartbeat_at=now,
                sent_at=now,
                **fields,
            )
    except IntegrityError:
        return None
    return Claim(kind, row.pk, 1, row.owner)


def job_heartbeat(claim: Claim) -> bool:
    """Refresh the heartbeat while the job is ours; False (nothing written) once it is not."""
    return bool(claim.mine().update(heartbeat_at=timezone.now()))


def job_cancel_requested(claim: Claim) -> bool:
    return bool(claim.mine().filter(cancel_requested=True).exists())


def job_still_ours(claim: Claim) -> bool:
    """Lock the row and say whether this attempt still owns it. Call inside a transaction and
    write the outcome in the same one: the sweep cannot take the job in between."""
    if claim.mine().select_for_update().exists():
        return True
    row = claim.kind.model.objects.filter(pk=claim.pk).values_list("status", "attempt").first()
    log.warning(
        "%s job %s: attempt %s ends, but the job is %s at attempt %s; its outcome is dropped",
        claim.kind.name,
        claim.pk,
        claim.attempt,
        *(row or ("gone", "-")),
    )
    return False


def job_finish(claim: Claim, status: str, **fields: Any) -> bool:
    """Put the job in a final state while it is still ours; False (nothing written) if not."""
    return bool(
        claim.mine().update(
            status=status, finished_at=timezone.now(), **claim.kind.final_fields, **fields
        )
    )


def job_publish(claim: Claim, partial: StoredFile, final: StoredFile) -> bool:
    """Move an attempt's output into place if the attempt still owns the job (call inside the
    transaction that writes the outcome: the row stays locked while it moves); else remove it.
    Returns whether it moved. On S3 the move is a copy, made only after the check."""
    if job_still_ours(claim):
        stored_move(partial, final)
        return True
    partial.delete()
    return False


def partial_path(final: StoredFile, attempt: int) -> StoredFile:
    """Where attempt ``attempt`` writes the file that becomes ``final`` (same store)."""
    return final.sibling(f"{posixpath.basename(final.name)}.attempt-{attempt}.partial")


def partials_remove(final: StoredFile) -> int:
    """Remove every attempt's partial of ``final``; returns how many."""
    pattern = f"{posixpath.basename(final.name)}.attempt-*.partial"
    partials = stored_matching(final.sibling(""), pattern)
    for partial in partials:
        partial.delete()
    return len(partials)


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: ``changed`` False when the job had already ended."""

    changed: bool
    status: str
    message: str


def job_cancel(kind: JobKind, pk: int) -> CancelOutcome:
    """Cancel in any state: a queued job at once, a running one at its next heartbeat check;
    a finished one is left as it is (changed False, with a message)."""
    model, now = kind.model, timezone.now()
    with transaction.atomic():
        row = model.objects.select_for_update().get(pk=pk)
        if row.status == JobStatus.QUEUED:
            model.objects.filter(pk=pk).update(
                status=JobStatus.CANCELLED, finished_at=now, **kind.final_fields
            )
            return CancelOutcome(True, JobStatus.CANCELLED, "Cancelled before it started.")
        if row.status == JobStatus.RUNNING:
            model.objects.filter(pk=pk).update(cancel_requested=True)
            return CancelOutcome(True, JobStatus.RUNNING, "Asked to stop; it stops shortly.")
    return CancelOutcome(False, row.status, f"It is {row.get_status_display().lower()} already.")


def job_send(kind: JobKind, pk: int) -> bool:
    """Send the job's message; a broker that cannot be reached is logged, not raised: the
    job stays queued and the sweep sends it again after the grace period."""
    try:
        kind.send(pk)
    except Exception:
        log.warning("%s %s: message not sent; the sweep re-sends it", kind.name, pk, exc_info=True)
        return False
    return True


def job_enqueue_on_commit(kind: JobKind, pk: int) -> None:
    """Send the job's message once the transaction that wrote its row commits."""
    transaction.on_commit(lambda: job_send(kind, pk))


def _output(kind: JobKind, row: Any) -> StoredFile | None:
    return import_string(kind.output)(row) if kind.output else None


def _stale_one(kind: JobKind, pk: int, limit: Any) -> str | None:
    """Requeue (attempts left) or end one running job whose heartbeat is older than
    ``limit``; returns its new status, or None when it came back or someone else had it."""
    model, now = kind.model, timezone.now()
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk, status=JobStatus.RUNNING).first()
        if row is None or (row.heartbeat_at is not None and row.heartbeat_at >= limit):
            return None
        beat = row.heartbeat_at.isoformat(timespec="seconds") if row.heartbeat_at else "never"
        stopped = f"Attempt {row.attempt}: the worker stopped (last heartbeat {beat})"
        output = _output(kind, row)
        if output is not None:
            partials_remove(output)
        if row.cancel_requested:
            status, fields = JobStatus.CANCELLED, {"error": f"{stopped}; cancelled."}
        elif row.attempt < kind.max_attempts:
            status = JobStatus.QUEUED
            fields = {"error": f"{stopped}.", "owner": "", "sent_at": now}
            job_enqueue_on_commit(kind, pk)
        else:
            status = JobStatus.FAILED
            fields = {"error": f"{stopped} and the job had no attempts left."}
        if status != JobStatus.QUEUED:
            fields.update(finished_at=now, **kind.final_fields)
        model.objects.filter(pk=pk).update(status=status, **fields)
    log.warning("%s %s: stale heartbeat, now %s", kind.name, pk, status)
    return status


def job_sweep(kind: JobKind) -> list[int]:
    """One kind's sweep: running jobs silent past the stale period are requeued once (their
    message sent again) and then failed with a reason; queued jobs whose message is older
    than the grace period are sent again (the claim makes a duplicate harmless). Returns the
    ids it touched."""
    now = timezone.now()
    limit = now - timedelta(seconds=kind.stale_seconds)
    stale = kind.model.objects.filter(status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=limit) | Q(heartbeat_at__isnull=True)
    )
    touched = [pk for pk in stale.values_list("pk", flat=True) if _stale_one(kind, pk, limit)]
    grace = now - timedelta(seconds=settings.CROWDNET_JOBS_RESEND_GRACE_SECONDS)
    lost = kind.model.objects.filter(status=JobStatus.QUEUED, sent_at__lt=grace)
    for pk in lost.values_list("pk", flat=True):
        if kind.model.objects.filter(pk=pk, status=JobStatus.QUEUED, sent_at__lt=grace).update(
            sent_at=timezone.now()
        ):
            log.warning("%s %s: queued past the grace period; message sent again", kind.name, pk)
            job_send(kind, pk)
            touched.append(pk)
    return touched


def jobs_sweep() -> dict[str, list[int]]:
    """Sweep every job kind; returns the ids touched by kind."""
    return {kind.name: job_sweep(kind) for kind in KINDS}
