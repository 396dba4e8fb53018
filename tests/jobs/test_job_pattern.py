"""The job pattern on its own (jobs.services, jobs.beat), on import and export rows: claim,
heartbeat and finish only while ours, the sweep, lost messages, cancel, partial files."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from config.file_stores import StoredFile
from datasets.models import DatasetExport
from datasets.services import exports
from datasets.services.exports import export_create, export_output
from jobs.beat import JobBeat
from jobs.kinds import EXPORT, IMPORT
from jobs.services import (
    Claim,
    JobCancelled,
    JobLost,
    job_cancel,
    job_claim,
    job_finish,
    job_heartbeat,
    job_publish,
    job_sweep,
    partial_path,
    worker_name,
)
from labeling.models import ImportJob
from labeling.services import imports
from tests.factories import photos_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Import job ids whose message was sent (the hand-off to the broker is all that is
    replaced; tests/integration sends real messages to real workers)."""
    ids: list[int] = []
    monkeypatch.setattr(imports, "_enqueue", ids.append)
    return ids


def _job(category, **fields) -> ImportJob:
    return ImportJob.objects.create(source="url", category=category, params={"urls": []}, **fields)


def _taken_over(claim: Claim) -> None:
    """What the sweep and a second worker do to a silent attempt: requeue, claim again."""
    ImportJob.objects.filter(pk=claim.pk).update(status="queued", owner="")
    assert job_claim(IMPORT, claim.pk) is not None


def test_a_job_is_claimed_once(category):
    job = _job(category)

    first = job_claim(IMPORT, job.pk)
    second = job_claim(IMPORT, job.pk)

    assert first == Claim(IMPORT, job.pk, 1, worker_name())
    assert second is None
    job.refresh_from_db()
    assert (job.status, job.attempt, job.owner) == ("running", 1, worker_name())
    assert job.heartbeat_at is not None


def test_a_heartbeat_after_a_takeover_is_refused_and_writes_nothing(category):
    job = _job(category)
    claim = job_claim(IMPORT, job.pk)
    old = timezone.now() - timedelta(minutes=5)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=old)
    assert job_heartbeat(claim) is True
    assert ImportJob.objects.get(pk=job.pk).heartbeat_at > old

    _taken_over(claim)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=old)

    assert job_heartbeat(claim) is False
    assert ImportJob.objects.get(pk=job.pk).heartbeat_at == old


def test_a_finish_after_a_takeover_writes_nothing(category):
    job = _job(category)
    claim = job_claim(IMPORT, job.pk)
    _taken_over(claim)

    assert job_finish(claim, "done", added=7) is False

    job.refresh_from_db()
    assert (job.status, job.attempt, job.added, job.finished_at) == ("running", 2, 0, None)
    newer = Claim(IMPORT, job.pk, 2, worker_name())
    assert job_finish(newer, "done", added=7) is True
    job.refresh_from_db()
    assert (job.status, job.added) == ("done", 7)
    assert job.finished_at is not None


def test_the_sweep_requeues_a_silent_job_once_then_fails_it_with_the_reason(
    category, sent, settings, django_capture_on_commit_callbacks
):
    settings.CROWDNET_IMPORT_STALE_SECONDS = 60
    settings.CROWDNET_JOBS_MAX_ATTEMPTS = 2
    job = _job(category)
    claim = job_claim(IMPORT, job.pk)
    old = timezone.now() - timedelta(seconds=61)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=old)
    beat = old.isoformat(timespec="seconds")

    with django_capture_on_commit_callbacks(execute=True):
        assert job_sweep(IMPORT) == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.owner, job.error, sent) == (
        "queued",
        "",
        f"Attempt 1: the worker stopped (last heartbeat {beat}).",
        [job.pk],
    )
    assert job_heartbeat(claim) is False  # the silent attempt has lost it

    second = job_claim(IMPORT, job.pk)
    assert second is not None and second.attempt == 2
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert job_sweep(IMPORT) == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.error, sent) == (
        "failed",
        f"Attempt 2: the worker stopped (last heartbeat {beat}) and the job had no attempts left.",
        [job.pk],
    )
    assert job_sweep(IMPORT) == []  # nothing left to do


def test_a_beating_job_and_a_cancelled_silent_one_are_handled(category, sent, settings):
    settings.CROWDNET_IMPORT_STALE_SECONDS = 60
    live = _job(category)
    job_claim(IMPORT, live.pk)
    asked = _job(category)
    job_claim(IMPORT, asked.pk)
    old = timezone.now() - timedelta(seconds=120)
    ImportJob.objects.filter(pk=asked.pk).update(heartbeat_at=old, cancel_requested=True)

    assert job_sweep(IMPORT) == [asked.pk]

    assert ImportJob.objects.get(pk=live.pk).status == "running"
    asked.refresh_from_db()
    assert (asked.status, asked.error) == (
        "cancelled",
        f"Attempt 1: the worker stopped (last heartbeat {old.isoformat(timespec='seconds')}); "
        "cancelled.",
    )
    assert sent == []


def test_a_queued_job_whose_message_was_lost_is_sent_again_after_the_grace(
    category, sent, settings
):
    settings.CROWDNET_JOBS_RESEND_GRACE_SECONDS = 300
    lost = _job(category, sent_at=timezone.now() - timedelta(seconds=301))
    fresh = _job(category)  # sent just now: its message may well be on its way

    assert job_sweep(IMPORT) == [lost.pk]
    assert sent == [lost.pk]
    assert job_sweep(IMPORT) == []  # sent again just now: not again before the grace
    assert sent == [lost.pk]
    assert ImportJob.objects.get(pk=fresh.pk).status == "queued"

    # a duplicate delivery runs once: the first claim wins, the second finds it taken
    assert job_claim(IMPORT, lost.pk) is not None
    assert job_claim(IMPORT, lost.pk) is None


@pytest.mark.parametrize(
    ("status", "changed", "after", "flag", "message"),
    [
        ("queued", True, "cancelled", False, "Cancelled before it started."),
        ("running", True, "running", True, "Asked to stop; it stops shortly."),
        ("done", False, "done", False, "It is done already."),
        ("failed", False, "failed", False, "It is failed already."),
        ("cancelled", False, "cancelled", False, "It is cancelled already."),
    ],
)
def test_cancel_works_in_every_state(category, status, changed, after, flag, message):
    job = _job(category, status=status)

    outcome = job_cancel(IMPORT, job.pk)

    assert (outcome.changed, outcome.status, outcome.message) == (
        changed,
        "cancelled" if status == "queued" else status,
        message,
    )
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == (after, flag)
    assert (job.finished_at is not None) == (status == "queued")


def test_a_cancelled_queued_job_is_never_claimed(category):
    job = _job(category)
    job_cancel(IMPORT, job.pk)
    assert job_claim(IMPORT, job.pk) is None


def _put(stored: StoredFile, data: bytes) -> None:
    assert stored.storage.save(stored.name, ContentFile(data)) == stored.name


def test_only_the_owning_attempt_moves_its_output_into_place(curator, tmp_path):
    folder = tmp_path / "exports"  # the exports store (tests/conftest.py)
    export = export_create(by=curator, kind="csv", version=photos_version(), enqueue=False)
    final = export_output(export)
    claim = job_claim(EXPORT, export.pk)
    first = partial_path(final, claim.attempt)
    assert first == StoredFile("exports", f"{final.name}.attempt-1.partial")
    _put(first, b"attempt 1")

    # when the job was taken away, the old attempt's file is removed, not published
    DatasetExport.objects.filter(pk=export.pk).update(status="queued")
    newer = job_claim(EXPORT, export.pk)
    assert job_publish(claim, first, final) is False
    assert sorted(p.name for p in folder.iterdir()) == []

    # and the owner publishes its own
    second = partial_path(final, newer.attempt)
    _put(second, b"attempt 2")
    assert job_publish(newer, second, final) is True
    assert [p.name for p in folder.iterdir()] == [final.name]
    assert (folder / final.name).read_bytes() == b"attempt 2"


def test_the_sweep_removes_a_dead_attempts_partial_file(curator, settings, monkeypatch, tmp_path):
    monkeypatch.setattr(exports, "_enqueue", lambda pk: None)
    settings.CROWDNET_EXPORT_STALE_SECONDS = 60
    export = export_create(by=curator, kind="csv", version=photos_version(), enqueue=False)
    final = export_output(export)
    claim = job_claim(EXPORT, export.pk)
    _put(partial_path(final, claim.attempt), b"half an archive")
    _put(final.sibling("unrelated.zip"), b"kept")
    DatasetExport.objects.filter(pk=export.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=61)
    )

    assert job_sweep(EXPORT) == [export.pk]

    assert [p.name for p in (tmp_path / "exports").iterdir()] == ["unrelated.zip"]
    assert DatasetExport.objects.get(pk=export.pk).status == "queued"


def _wait(predicate, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_beats_and_stops_the_work_when_the_job_is_lost(category):
    # the thread has its own connection: the rows must be committed (transaction=True)
    job = _job(category)
    claim = job_claim(IMPORT, job.pk)
    old = timezone.now() - timedelta(minutes=5)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=old)

    with JobBeat(claim, interval=0.05) as beat:
        _wait(lambda: ImportJob.objects.get(pk=job.pk).heartbeat_at > old)
        beat.check()  # ours: no exception
        _taken_over(claim)
        _wait(beat.lost.is_set)
        with pytest.raises(JobLost):
            beat.check()
    assert beat.should_stop


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_sees_a_cancel(category):
    job = _job(category)
    claim = job_claim(IMPORT, job.pk)

    with JobBeat(claim, interval=0.05) as beat:
        assert job_cancel(IMPORT, job.pk).changed
        _wait(beat.cancelled.is_set)
        with pytest.raises(JobCancelled):
            beat.check()


def test_partial_names_are_per_attempt_beside_the_output_in_its_store():
    final = StoredFile("exports", "2026/a.zip")
    assert [partial_path(final, n) for n in (1, 2)] == [
        StoredFile("exports", "2026/a.zip.attempt-1.partial"),
        StoredFile("exports", "2026/a.zip.attempt-2.partial"),
    ]
