"""API tokens: one statement reads the token and its user; DRF's answers to bad ones."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _client(key: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {key}")


def test_a_token_signs_its_worker_in_with_one_statement(django_assert_num_queries):
    # given a worker with a token, and nothing to do
    worker = UserFactory(username="ann", role="worker")
    token = Token.objects.create(user=worker)

    # when they ask who they are: the token and its user, nothing else
    with django_assert_num_queries(1):
        response = _client(token.key).get("/api/me/")

    # then the request runs as them
    assert response.status_code == 200
    assert response.json()["username"] == "ann"


@pytest.mark.parametrize(
    ("active", "key", "detail"),
    [
        (True, "0" * 40, "Invalid token."),
        (False, None, "User inactive or deleted."),
    ],
)
def test_an_unknown_token_or_an_inactive_user_is_refused(active, key, detail):
    # given a worker's token, the worker maybe deactivated
    worker = UserFactory(username="ann", role="worker", is_active=active)
    token = Token.objects.create(user=worker)

    # when a request comes with that token or an unknown one
    response = _client(key or token.key).get("/api/tasks/next/?kind=verify")

    # then it is refused as DRF refuses it, with the scheme to use
    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response["WWW-Authenticate"] == "Token"
