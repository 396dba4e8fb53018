"""Beat tasks' services: orphan media sweep and stale import jobs."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import ImportJob
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


def test_stale_import_jobs_are_failed_with_a_message(category):
    stale = ImportJob.objects.create(source="url", category=category, status="running")
    ImportJob.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=3))
    fresh = ImportJob.objects.create(source="url", category=category, status="queued")
    done = ImportJob.objects.create(source="url", category=category, status="done")
    ImportJob.objects.filter(pk=done.pk).update(created_at=timezone.now() - timedelta(hours=3))

    assert import_jobs_fail_stale() == 1

    stale.refresh_from_db()
    assert (stale.status, stale.error) == (
        "failed",
        "The job did not finish in time; start the import again.",
    )
    assert ImportJob.objects.get(pk=fresh.pk).status == "queued"
    assert ImportJob.objects.get(pk=done.pk).status == "done"
