"""End to end: a seeded simulated crowd labels the demo digits through a live server over HTTP,
a real Celery worker re-aggregates, and the consensus is scored against the known truth."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection

from demo.models import DemoTruth
from demo.services.data import demo_data_load
from demo.services.simulation import SimulationConfig, simulation_run
from labeling.models import Candidate, ConsensusRun
from labeling.tasks import consensus_reaggregate

pytestmark = pytest.mark.celery_worker

# The model's gates are under test; the control-item gates keep their defaults (an honest
# worker at 80 % or better is paused by them at most 1 % of the time, ever).
GATES = {
    "CROWDNET_GATE_SPAMMER_MIN_VOTES": "10",
    "CROWDNET_GATE_SPAMMER_MIN_PER_CLASS": "3",
}


@pytest.mark.django_db(transaction=True)
def test_a_seeded_crowd_labels_the_digits_right_and_the_spammers_are_caught(
    live_server, settings, worker_start: Callable[..., str]
):
    # given 140 digit candidates (30 % of each pool wrong, 10 % of it gold), a live server,
    # and a real worker that re-aggregates with the same gates
    if connection.vendor != "postgresql":
        pytest.skip("the live server, the crowd and the worker share one database: PostgreSQL")
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GATE_SPAMMER_MIN_VOTES = 10
    settings.CROWDNET_GATE_SPAMMER_MIN_PER_CLASS = 3
    settings.CROWDNET_CONSENSUS_THRESHOLD = 0.95
    settings.CROWDNET_CONSENSUS_VOTE_CAP = 7
    demo_data_load(limit=100, photos=False, gold_share=0.1, wrong_share=0.3, seed=4)
    queue = worker_start(**GATES)
    open_items = Candidate.objects.filter(state="open").count()

    # when ten workers, eight honest (85-95 % right) and two who always say yes, work until
    # the pool is empty, and the worker then re-aggregates every vote
    def reaggregate() -> None:
        run_id = consensus_reaggregate.apply_async(("simulator", None), queue=queue).get(
            timeout=120
        )
        assert ConsensusRun.objects.get(pk=run_id).status == "done"

    report = simulation_run(
        SimulationConfig(
            url=live_server.url,
            workers=10,
            mix={"honest": 0.8, "yes": 0.2},
            accuracy=(0.85, 0.95),
            seconds_per_item=0.0,
            seconds=240,
            patience=25,
            seed=1,
        ),
        after=reaggregate,
    )

    print("\n".join(report.lines()))

    # then every answer went through, most items were decided, the decisions match the
    # truth, and both always-yes workers are paused while no honest one is
    assert report.errors == []
    assert report.answered_tasks > 0
    assert report.decided + report.review + report.still_open == open_items
    # (the re-aggregation reopens items decided on the spammers' votes and the crowd comes back
    # for them; an item can still run out of workers who haven't answered it: a few stay open)
    assert report.decided >= 0.85 * open_items
    assert report.accuracy >= 0.95
    assert report.paused == {"honest": (0, 8), "yes": (2, 2)}
    # and the live score, taken before the first re-aggregation, covers the same items
    live = report.live
    assert live.decided + live.review + live.still_open == open_items
    assert DemoTruth.objects.count() == Candidate.objects.count() == 140
    # the crowd boxed the digits it accepted, close to their ink, and no image counts as boxed
    # without an object
    assert report.box_objects > 0
    assert report.box_mean_iou >= 0.7
    assert not Candidate.objects.filter(box_state="done", object_boxes__isnull=True).exists()
