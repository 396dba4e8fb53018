"""A Redis outage costs the crowd nothing: the cache fails open to each process's memory."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from config import cache as cache_module
from labeling.models import Candidate, Vote
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, which the test may stop and start again."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [shutil.which("redis-server") or "redis-server", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def keys(self) -> list[bytes]:
        return sorted(redis.Redis(port=self.port).keys("*"))


@pytest.fixture
def private_redis(settings) -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    location = f"redis://127.0.0.1:{server.port}/0"
    settings.CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": location}}
    settings.CROWDNET_CACHE_RETRY_SECONDS = 1
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0
    yield server
    if server.process and server.process.poll() is None:
        server.stop()
    cache_module._OUTAGES.clear()


def _answer_one(client) -> int:
    """One next-and-answer round trip; the status of the answer (or of next, if it fails)."""
    task = client.get("/api/tasks/next/?kind=verify")
    if task.status_code != 200:
        return task.status_code
    body = task.json()
    answers = [{"item": item["id"], "answer": "yes"} for item in body["items"]]
    reply = client.post(
        f"/api/tasks/{body['id']}/answer/",
        {"answers": answers, "client_token": f"t{body['id']}"},
        format="json",
    )
    return reply.status_code


def test_answers_go_on_while_redis_is_down_and_redis_is_used_again_after(
    private_redis, category, worker_api, caplog
):
    files = [(f"{i}.jpg", image_bytes(3000 + i, size=(40, 30))) for i in range(6)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    caplog.set_level(logging.WARNING, logger="config.cache")

    assert _answer_one(worker_api) == 201
    assert private_redis.keys() != []  # the throttles counted in Redis

    private_redis.stop()
    statuses = [_answer_one(worker_api) for _ in range(3)]

    assert statuses == [201, 201, 201]
    assert Vote.objects.count() == 4
    assert Candidate.objects.filter(votes_cast=1).count() == 4
    outage = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage) == 1  # logged once, not once a request
    assert f"127.0.0.1:{private_redis.port}" in outage[0]

    private_redis.start()  # empty again: it keeps nothing on disk
    time.sleep(1.1)
    assert _answer_one(worker_api) == 201
    assert private_redis.keys() != []
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_login_limits_still_count_during_an_outage(private_redis, client, worker):
    from labeling.throttle import LIMITS

    private_redis.stop()
    for _ in range(LIMITS.per_account):
        response = client.post("/accounts/login/", {"username": worker.username, "password": "x"})
        assert response.status_code == 200
    response = client.post("/accounts/login/", {"username": worker.username, "password": "x"})
    assert response.status_code == 429


def test_an_unreachable_host_costs_one_short_timeout_per_retry_period(settings):
    # 192.0.2.1 (TEST-NET-1) is never routed: connects hang until the timeout
    settings.CACHES = {
        "default": {"BACKEND": "config.cache.RedisCache", "LOCATION": "redis://192.0.2.1:6379/0"}
    }
    settings.CROWDNET_CACHE_RETRY_SECONDS = 60
    from django.core.cache import cache

    try:
        assert cache.add("k", 1) is True  # went to memory after one failed connect
        assert cache.incr("k") == 2
        assert cache.get_many(["k", "missing"]) == {"k": 2}
        assert cache_module._OUTAGES["redis://192.0.2.1:6379/0"].skipping() is True
    finally:
        cache_module._OUTAGES.clear()


def test_the_task_limit_counts_in_memory_while_redis_is_down(
    private_redis, category, worker_api, monkeypatch, settings
):
    # given a limit of 3 task requests a minute for the worker, and Redis stopped
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "tasks": "3/min"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    assert worker_api.get("/api/tasks/next/?kind=nope").status_code == 400  # 1, in Redis
    private_redis.stop()

    # when the worker asks four more times
    codes = [worker_api.get("/api/tasks/next/?kind=nope").status_code for _ in range(4)]

    # then this process's memory counts them (from zero) and refuses past the limit
    assert codes == [400, 400, 400, 429]
