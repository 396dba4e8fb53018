"""The crowd simulator enters through a campaign link: sessions, assignments, codes."""

from __future__ import annotations

import pytest

from campaigns.models import Assignment, AssignmentTask, ExternalWorker
from demo.services.simulation import SimulationConfig, simulation_run
from labeling.models import MicroTask
from tests.campaigns.conftest import open_campaign
from tests.factories import candidate_pool


@pytest.mark.django_db(transaction=True)
def test_simulated_workers_work_assignments_through_the_campaign_link(
    live_server, curator, category, settings
):
    # given a pool of 12 items (3 votes each) and a campaign of 2 tasks an assignment
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0
    candidate_pool(category, 12, seed=960)
    open_campaign(curator, [category], tasks_per_assignment=2, cap_per_worker=100)

    # when two simulated workers work until the pool is empty
    report = simulation_run(
        SimulationConfig(
            url=live_server.url, workers=2, seconds=60, seconds_per_item=0.0,
            patience=3, seed=1, campaign="cats",
        )
    )  # fmt: skip

    # then they were bound to their marketplace ids, every answer was under an assignment,
    # and every finished assignment of two tasks had its code claimed
    assert report.errors == []
    assert sorted(ExternalWorker.objects.values_list("external_id", flat=True)) == [
        "ASIM0001000000",
        "ASIM0001000001",
    ]
    answered = MicroTask.objects.filter(status="answered")
    # (at most 12 items x 2 workers; an item the first vote decides takes one)
    assert 12 <= answered.count() == report.answered_tasks <= 24
    assert AssignmentTask.objects.filter(task__in=answered).count() == answered.count()
    submitted = Assignment.objects.filter(state="submitted")
    assert submitted.count() >= answered.count() // 2 - 2
    for assignment in submitted:
        assert assignment.tasks.filter(task__status="answered").count() in (1, 2)
    assert Assignment.objects.exclude(state__in=["submitted", "finished", "working"]).count() == 0
