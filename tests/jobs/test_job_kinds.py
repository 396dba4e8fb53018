"""The job pattern as each kind uses it: consensus runs (one running at a time, a dead one
swept so the next proceeds), training runs (a lost or unsendable message), exports' cancel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from labeling.models import ConsensusRun
from labeling.services import reaggregation
from labeling.services.reaggregation import consensus_reaggregate, consensus_run_execute
from tests.factories import digits_version
from training.models import TrainingRun
from training.services import runs
from training.services.runs import run_cancel, run_create, runs_fail_stale

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Run ids sent to the training queue (only the hand-off to the broker is replaced)."""
    sent: list[int] = []
    monkeypatch.setattr(runs, "_enqueue", sent.append)
    return sent


def test_a_consensus_run_whose_worker_died_is_swept_and_the_next_one_proceeds(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given a consensus run left running by a killed worker
    sent: list[int] = []
    monkeypatch.setattr(reaggregation, "_enqueue", sent.append)
    settings.CROWDNET_CONSENSUS_STALE_SECONDS = 60
    dead = ConsensusRun.objects.create(
        status="running", attempt=1, owner="gone:1", heartbeat_at=timezone.now()
    )
    # while it beats, a scheduled run returns it and does nothing
    assert consensus_reaggregate() == dead
    assert ConsensusRun.objects.count() == 1

    # when its heartbeat is stale, the sweep queues it again (its message sent)
    ConsensusRun.objects.filter(pk=dead.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=61)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert reaggregation_sweep() == [dead.pk]
    assert (ConsensusRun.objects.get(pk=dead.pk).status, sent) == ("queued", [dead.pk])

    # then the next scheduled run proceeds, and the requeued one runs after it
    fresh = consensus_reaggregate()
    assert (fresh.pk != dead.pk, fresh.status, fresh.attempt) == (True, "done", 1)
    again = consensus_run_execute(dead.pk)
    assert (again.status, again.attempt) == ("done", 2)
    assert again.error.startswith("Attempt 1: the worker stopped (last heartbeat ")  # history


def reaggregation_sweep() -> list[int]:
    from jobs.kinds import CONSENSUS
    from jobs.services import job_sweep

    return job_sweep(CONSENSUS)


def test_a_requeued_consensus_run_gives_way_to_a_running_one():
    running = ConsensusRun.objects.create(status="running", attempt=1, heartbeat_at=timezone.now())
    requeued = ConsensusRun.objects.create(status="queued", attempt=1)

    outcome = consensus_run_execute(requeued.pk)

    assert (outcome.status, outcome.error) == (
        "cancelled",
        "Another consensus run was going; that one took its place.",
    )
    assert ConsensusRun.objects.get(pk=running.pk).status == "running"


def test_a_training_run_whose_message_was_lost_is_sent_again(queued, settings):
    # given a run queued while the broker lost its message (Redis restarted)
    settings.CROWDNET_JOBS_RESEND_GRACE_SECONDS = 300
    run = run_create(version=digits_version(), backbone="lenet5", weights="random", enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(sent_at=timezone.now() - timedelta(seconds=301))

    # when the sweep runs, it is sent again, once
    assert runs_fail_stale() == [run.pk]
    assert runs_fail_stale() == []
    assert queued == [run.pk]
    assert TrainingRun.objects.get(pk=run.pk).status == "queued"


def test_a_run_queued_while_the_broker_is_unreachable_is_kept_for_the_sweep(
    monkeypatch, django_capture_on_commit_callbacks, caplog
):
    # given a broker that refuses the message (the hand-off is what leaves the machine)
    def unreachable(run_id: int) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(runs, "_enqueue", unreachable)

    # when a run is queued, the caller is not failed: the run waits for the sweep
    with django_capture_on_commit_callbacks(execute=True):
        run = run_create(version=digits_version(), backbone="lenet5", weights="random")

    assert TrainingRun.objects.get(pk=run.pk).status == "queued"
    assert f"training {run.pk}: message not sent; the sweep re-sends it" in caplog.text


def test_cancelling_a_finished_run_changes_nothing(queued):
    run = run_create(version=digits_version(), backbone="lenet5", weights="random", enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status="done", active=None)

    after = run_cancel(run)

    assert (after.status, after.cancel_requested, after.finished_at) == ("done", False, None)


def test_an_import_job_is_cancelled_through_the_api_and_a_finished_one_is_refused(
    curator_api, category, curator
):
    from labeling.models import ImportJob

    queued = ImportJob.objects.create(source="url", category=category, created_by=curator)
    done = ImportJob.objects.create(source="url", category=category, status="done")

    response = curator_api.post(f"/api/imports/jobs/{queued.uid}/cancel/")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")

    response = curator_api.post(f"/api/imports/jobs/{done.uid}/cancel/")
    assert (response.status_code, response.json()) == (409, {"detail": "It is done already."})
    assert ImportJob.objects.get(pk=done.pk).status == "done"
