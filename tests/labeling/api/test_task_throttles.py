"""The task endpoints' two limits (per worker, per client address), read and written with one
cache round trip each way: DRF's sliding windows, 429s and Retry-After all the same."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from labeling.models import MicroTask
from tests.factories import candidate_pool, worker_client

pytestmark = pytest.mark.django_db


def _window(key: str) -> int:
    """The requests a window holds: a Redis list (config.cache.SLIDING_WINDOWS), else DRF's
    pickled list in the cache."""
    if hasattr(cache, "sliding_windows"):
        redis = cache._cache.get_client(None)
        return redis.llen(cache.make_and_validate_key(f"{key}:window"))
    return len(cache.get(key))


@pytest.fixture
def rates(settings, monkeypatch):
    """Set the task rates (DRF copies them onto the class when it is defined: patch that)."""

    def set_rates(tasks: str, tasks_ip: str) -> None:
        patched = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}
        patched.update(tasks=tasks, tasks_ip=tasks_ip)
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", patched)

    return set_rates


def test_a_worker_past_his_rate_gets_429_and_when_to_come_back(category, settings, rates):
    # given a pool, a worker limit of 2 a minute and a loose address limit
    settings.CROWDNET_GOLD_RATE = 0.0
    candidate_pool(category, 4, seed=700)
    rates("2/min", "100/min")
    client, ann = worker_client("ann")

    # when the worker asks three times
    codes = [client.get("/api/tasks/next/?kind=verify").status_code for _ in range(3)]
    refused = client.get("/api/tasks/next/?kind=verify")

    # then the third and later are refused as DRF refuses them, and lease nothing
    assert codes == [200, 200, 429]
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Request was throttled. Expected available in ")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert MicroTask.objects.filter(worker=ann).count() == 2
    # each window counts what it let through: the worker's 2, the address's 4 (DRF counts a
    # request in every throttle that let it through, even when another refused it)
    assert _window(f"throttle_tasks_{ann.pk}") == 2
    assert _window("throttle_tasks_ip_127.0.0.1") == 4


def test_workers_behind_one_address_share_its_limit(category, settings, rates):
    # given a pool and an address limit of 3 a minute
    settings.CROWDNET_GOLD_RATE = 0.0
    candidate_pool(category, 4, seed=710)
    rates("100/min", "3/min")
    ann, _ = worker_client("ann")
    bob, _ = worker_client("bob")

    # when two workers from the same address ask twice each
    codes = [
        client.get("/api/tasks/next/?kind=verify").status_code for client in (ann, bob, ann, bob)
    ]

    # then the fourth request from that address is refused, whoever sends it
    assert codes == [200, 200, 200, 429]
    assert MicroTask.objects.count() == 3
