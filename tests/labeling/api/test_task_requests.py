"""The task endpoints' request handling made cheaper keeps DRF's behaviour: the answer body's
checks, content negotiation, CSRF for session callers, token callers, the limits in Redis."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from labeling.api.task_serializers import AnswerSerializer
from labeling.api.tasks import answer_fields
from labeling.models import MicroTask, Vote
from tests.factories import UserFactory, candidate_pool, worker_client

pytestmark = pytest.mark.django_db

ITEM = "7d3c1c8e-3b0a-4b8e-9a52-2f0c1f1f2a10"


@pytest.mark.parametrize(
    "body",
    [
        {"answers": [{"item": ITEM, "answer": "yes"}], "client_token": "abc"},
        {"answers": [{"item": ITEM, "answer": "yes"}]},
        {"answers": [], "client_token": "  padded  "},
        {"answers": [{"item": ITEM}], "client_token": "x" * 64},
        {"answers": [{"item": ITEM}], "client_token": " " + "x" * 64 + " "},
        {"answers": [{"item": ITEM}], "client_token": "   "},
        {"answers": [{"item": ITEM}], "client_token": "x" * 65},
        {"answers": [{"item": ITEM}], "client_token": 12},
        {"answers": [{"item": ITEM}], "client_token": None},
        {"answers": [{"item": ITEM}], "client_token": "café"},
        {"answers": [{"item": ITEM}], "client_token": "a\x00b"},
        {"answers": "yes"},
        {"answers": {"item": ITEM}},
        {"answers": [["yes"]]},
        {"answers": None},
        {"client_token": "abc"},
        {},
    ],
)
def test_answer_fields_take_what_the_serializer_takes_and_refuse_what_it_refuses(body):
    # given the serializer's verdict on a body
    serializer = AnswerSerializer(data=body)
    valid = serializer.is_valid()

    # when the view reads the body
    if valid:
        answers, token = answer_fields(body)
        # then it takes the answers as sent and the token as validated
        assert answers == body.get("answers")
        assert token == serializer.validated_data.get("client_token", "")
    else:
        with pytest.raises(ValidationError) as refused:
            answer_fields(body)
        # then it refuses with the serializer's exact errors
        assert refused.value.detail == serializer.errors


@pytest.mark.parametrize(
    ("accept", "query", "content_type"),
    [
        (None, "", "application/json"),
        ("*/*", "", "application/json"),
        ("application/json", "", "application/json"),
        ("text/html", "", "text/html; charset=utf-8"),
        ("*/*", "&format=api", "text/html; charset=utf-8"),
        ("application/json; indent=4", "", "application/json"),
    ],
)
def test_the_next_task_is_rendered_as_the_client_accepts(category, accept, query, content_type):
    # given a signed-in worker and nothing to do in a kind that has no work
    client, _ = worker_client("ann")
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}

    # when they ask for a verify task (there is none: 400 for a bad kind renders a body)
    response = client.get(f"/api/tasks/next/?kind=nope{query}", **headers)

    # then the body is JSON, or DRF's browsable page when HTML is asked for
    assert response.status_code == 400
    assert response["Content-Type"] == content_type
    if content_type == "application/json":
        assert response.json()["kind"][0].startswith("Unknown kind")
    # DRF's negotiation still reads the Accept header's parameters
    assert (b'\n    "kind"' in response.content) is ("indent=4" in (accept or ""))


def test_an_unacceptable_accept_header_is_406(category):
    client, _ = worker_client("ann")

    response = client.get("/api/tasks/next/?kind=verify", HTTP_ACCEPT="image/png")

    assert response.status_code == 406
    assert MicroTask.objects.count() == 0


def test_a_session_answer_without_the_csrf_token_is_refused(category, settings):
    # given a worker signed in by session in a browser that enforces CSRF, holding a task
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    candidate_pool(category, 2, seed=820)
    worker = UserFactory(username="ann", role="worker")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(worker)
    task = browser.get("/api/tasks/next/?kind=verify").json()
    body = {"answers": [{"item": task["items"][0]["id"], "answer": "yes"}]}

    # when it posts the answer without the CSRF token
    refused = browser.post(
        f"/api/tasks/{task['id']}/answer/", body, content_type="application/json"
    )

    # then DRF refuses it and nothing is written
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("CSRF Failed:")
    assert Vote.objects.count() == 0

    # and with the token from the CSRF cookie it goes through
    browser.get("/")  # any page sets the cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(
        f"/api/tasks/{task['id']}/answer/",
        body,
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert accepted.status_code == 201
    assert Vote.objects.count() == 1


def test_a_token_answer_needs_no_csrf_token(category, settings):
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    candidate_pool(category, 2, seed=830)
    worker = UserFactory(username="ann", role="worker")
    key = Token.objects.create(user=worker).key
    client = APIClient(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")
    task = client.get("/api/tasks/next/?kind=verify").json()

    response = client.post(
        f"/api/tasks/{task['id']}/answer/",
        {"answers": [{"item": task["items"][0]["id"], "answer": "no"}], "client_token": "t1"},
        format="json",
    )

    assert response.status_code == 201
    assert Vote.objects.get().worker_id == worker.pk


def test_anonymous_task_requests_are_401_and_write_nothing(category):
    candidate_pool(category, 1, seed=840)

    asked = Client().get("/api/tasks/next/?kind=verify")
    answered = Client().post(f"/api/tasks/{ITEM}/answer/", {}, content_type="application/json")

    assert (asked.status_code, answered.status_code) == (401, 401)
    assert asked["WWW-Authenticate"] == "Token"
    assert MicroTask.objects.count() == 0


def test_the_limit_refuses_with_drfs_retry_after_from_the_redis_window(
    category, settings, monkeypatch
):
    # given a limit of 2 answers an hour for the worker, counted in Redis
    if not hasattr(cache, "sliding_windows"):
        pytest.skip("the script runs on the Redis cache only")
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "tasks": "2/hour"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    client, ann = worker_client("ann")
    key = cache.make_and_validate_key(f"throttle_tasks_{ann.pk}:window")
    redis = cache._cache.get_client(None)

    # when the worker asks three times, the first request made 100 s ago
    assert client.get("/api/tasks/next/?kind=nope").status_code == 400
    oldest = float(redis.lindex(key, 0))
    redis.lset(key, 0, repr(oldest - 100))
    assert client.get("/api/tasks/next/?kind=nope").status_code == 400
    refused = client.get("/api/tasks/next/?kind=nope")

    # then the third is refused until the oldest leaves the hour, as DRF's wait() says
    assert refused.status_code == 429
    assert 3499 <= int(refused["Retry-After"]) <= 3500
    assert redis.llen(key) == 2
    assert 3599 <= redis.ttl(key) <= 3600
