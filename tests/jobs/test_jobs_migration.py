"""The job-pattern migrations on a database with rows from before them: running jobs get
attempt 1 and a heartbeat the sweep can judge; queued ones count as sent when created; of
several consensus runs left running by killed workers, only the newest stays running (so the
one-running index can be built) and the others are failed with a reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("labeling", "0017_taskitem_control_index"), ("training", "0003_evaluation_sets")]
AFTER = [("labeling", "0018_jobs_pattern"), ("training", "0004_jobs_pattern")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_rows_from_before_the_job_pattern_keep_working():
    old = _migrate(BEFORE)
    try:
        hour_ago = timezone.now() - timedelta(hours=1)
        category = old.get_model("labeling", "Category").objects.create(name="cat", slug="cat")
        jobs = old.get_model("labeling", "ImportJob").objects
        running = jobs.create(source="url", category=category, status="running")
        jobs.filter(pk=running.pk).update(started_at=hour_ago)
        queued = jobs.create(source="url", category=category, status="queued")
        jobs.filter(pk=queued.pk).update(created_at=hour_ago)
        consensus = old.get_model("labeling", "ConsensusRun").objects
        killed = [consensus.create(status="running") for _ in range(3)]

        new = _migrate(AFTER)

        jobs = new.get_model("labeling", "ImportJob").objects
        running = jobs.get(pk=running.pk)
        assert (running.status, running.attempt, running.heartbeat_at) == ("running", 1, hour_ago)
        assert jobs.get(pk=queued.pk).sent_at == hour_ago
        consensus = new.get_model("labeling", "ConsensusRun").objects
        rows = list(consensus.order_by("pk").values_list("status", "attempt", "error"))
        assert rows == [
            ("failed", 1, "Its worker stopped before it finished."),
            ("failed", 1, "Its worker stopped before it finished."),
            ("running", 1, ""),
        ]
        assert consensus.get(pk=killed[-1].pk).heartbeat_at is not None
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
