"""Beat tasks' services: orphan media sweep and stale import jobs."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import ImportJob
from labeling.services import imports
from labeling.services.imports import import_jobs_fail_stale
from labeling.services.ingest import image_ingest
from labeling.services.media import media_orphans_sweep
from tests.conftest import stored_files
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def test_sweep_removes_old_orphans_only(category, media_root):
    # given a stored image, an old orphan left by a killed process and a fresh orphan
    image_ingest(
        data=image_bytes(1), name="a.jpg", category=category, source="upload", uploader=None
    )
    kept = stored_files(media_root)
    old = media_root / "images" / "ab" / "cd" / "orphan.jpg"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    young = media_root / "thumbs" / "young.jpg"
    young.write_bytes(b"y")

    # when the sweep runs
    deleted = media_orphans_sweep()

    # then only the old orphan is gone
    assert deleted == 1
    assert stored_files(media_root) == sorted([*kept, "thumbs/young.jpg"])


def test_stale_import_jobs_are_retried_once_then_failed_with_a_message(
    category, settings, django_capture_on_commit_callbacks, monkeypatch
):
    # given an import job whose worker stopped beating long ago, and one beating now
    sent: list[int] = []
    monkeypatch.setattr(imports, "_enqueue", sent.append)
    settings.CROWDNET_IMPORT_STALE_SECONDS = 600
    old = timezone.now() - timedelta(hours=3)
    stale = ImportJob.objects.create(
        source="url", category=category, status="running", attempt=1, heartbeat_at=old
    )
    live = ImportJob.objects.create(
        source="url", category=category, status="running", attempt=1, heartbeat_at=timezone.now()
    )
    done = ImportJob.objects.create(source="url", category=category, status="done")

    # when the sweep runs, the stale one is queued again and its message sent
    with django_capture_on_commit_callbacks(execute=True):
        assert import_jobs_fail_stale() == 1
    stale.refresh_from_db()
    beat = old.isoformat(timespec="seconds")
    assert (stale.status, stale.owner, stale.error, sent) == (
        "queued",
        "",
        f"Attempt 1: the worker stopped (last heartbeat {beat}).",
        [stale.pk],
    )

    # and when its second attempt dies too, it is failed with the reason
    ImportJob.objects.filter(pk=stale.pk).update(status="running", attempt=2)
    assert import_jobs_fail_stale() == 1
    stale.refresh_from_db()
    assert (stale.status, stale.error) == (
        "failed",
        f"Attempt 2: the worker stopped (last heartbeat {beat}) and the job had no attempts left.",
    )
    assert stale.finished_at is not None
    assert ImportJob.objects.get(pk=live.pk).status == "running"
    assert ImportJob.objects.get(pk=done.pk).status == "done"
    assert sent == [stale.pk]
