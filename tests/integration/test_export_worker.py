"""A dataset export built by a real Celery worker, followed over the API to its download."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from django.db import connection
from rest_framework.test import APIClient

from datasets.models import DatasetExport
from datasets.services.exports import export_create
from datasets.tasks import export_build_task
from tests.factories import photos_version

pytestmark = pytest.mark.celery_worker


@pytest.mark.django_db(transaction=True)
def test_a_worker_builds_the_export_and_its_curator_downloads_it(
    curator, worker_start, settings, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process shares the database: PostgreSQL")
    settings.CROWDNET_EXPORT_DIR = tmp_path / "exports"
    queue = worker_start(CROWDNET_EXPORT_DIR=str(tmp_path / "exports"))
    version = photos_version()
    export = export_create(by=curator, kind="coco", version=version, enqueue=False)

    assert export_build_task.apply_async((export.pk,), queue=queue).get(timeout=120) == "done"
    # a second delivery of the same message builds nothing again
    assert export_build_task.apply_async((export.pk,), queue=queue).get(timeout=60) == "done"

    export.refresh_from_db()
    client = APIClient()
    client.force_authenticate(curator)
    body = b"".join(client.get(f"/api/exports/{export.uid}/download/").streaming_content)
    assert hashlib.sha256(body).hexdigest() == export.sha256
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
    assert len([n for n in names if n.startswith("images/")]) == 18
    assert DatasetExport.objects.get().images_written == 18
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [export.file_name]
