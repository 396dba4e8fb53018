"""A real Celery worker process against the real broker (Redis in CI)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.db import connection

from config.celery import app as celery_app
from labeling.models import Category, Image, ImportJob
from labeling.tasks import import_job_run, ping

pytestmark = pytest.mark.celery_worker


def test_task_round_trips_through_a_real_worker(worker):
    # given a worker on its own queue, the broker from settings (Redis when REDIS_URL is set)
    assert celery_app.conf.broker_url == (django_settings.REDIS_URL or "filesystem://")

    # when a task is sent and its result awaited
    result = ping.apply_async(("hello",), queue=worker)

    # then the worker ran it and the result came back through the result backend
    assert result.get(timeout=60) == "pong:hello"


@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_scrape_job_against_the_shared_database(worker, media_root, image_site):
    # given a job in the real database and a site on loopback
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share: PostgreSQL")
    base = image_site
    category = Category.objects.create(name="cat", slug="cat")
    job = ImportJob.objects.create(
        source="url", category=category, params={"urls": [f"{base}/1.jpg", f"{base}/2.jpg"]}
    )

    # when the worker runs it, twice (a retry must change nothing)
    assert import_job_run.apply_async((job.pk,), queue=worker).get(timeout=120) == "done"
    assert import_job_run.apply_async((job.pk,), queue=worker).get(timeout=60) == "done"

    # then both images are stored once, with files where this test keeps media
    job.refresh_from_db()
    assert (job.status, job.added, job.duplicates, job.rejected) == ("done", 2, 0, 0)
    assert Image.objects.count() == 2
    assert len([p for p in media_root.rglob("*") if p.is_file()]) == 6
