"""Accounts through the API: tokens, workers, invitations, and the API's documentation."""

from __future__ import annotations

import pytest

from labeling.models import Category, Invitation, User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_token_login_then_token_auth(api, curator):
    response = api.post(
        "/api/auth/token/", {"username": "cora", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]

    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = api.get("/api/me/").json()

    assert (me["username"], me["role"], me["is_curator"]) == ("cora", "curator", True)


def test_wrong_password_gets_no_token(api, curator):
    response = api.post("/api/auth/token/", {"username": "cora", "password": "nope"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}


def test_token_endpoint_is_rate_limited(settings, monkeypatch, api, curator):
    # DRF copies the rates onto the throttle class when it is defined: patch the class (undone
    # after the test) rather than the settings, or the 3/min leaks into later tests.
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "3/min"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    codes = [
        api.post(
            "/api/auth/token/", {"username": "cora", "password": "x"}, format="json"
        ).status_code
        for _ in range(4)
    ]

    assert codes == [400, 400, 400, 429]


def test_curator_creates_a_worker(curator_api):
    response = curator_api.post(
        "/api/workers/", {"username": "newbie", "password": "a-long-enough-pass-31"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["role"] == "worker"
    assert User.objects.get(username="newbie").check_password("a-long-enough-pass-31")


def test_weak_password_is_refused_and_nothing_is_created(curator_api):
    response = curator_api.post(
        "/api/workers/", {"username": "newbie", "password": "123"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "password": [
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
            "This password is entirely numeric.",
        ]
    }
    assert not User.objects.filter(username="newbie").exists()


def test_workers_cannot_create_accounts_or_invite(worker_api):
    assert (
        worker_api.post(
            "/api/workers/", {"username": "x", "password": "a-long-enough-pass-31"}, format="json"
        ).status_code
        == 403
    )
    assert worker_api.post("/api/invitations/", {"note": "x"}, format="json").status_code == 403
    assert worker_api.get("/api/workers/").status_code == 403
    assert User.objects.count() == 1
    assert Invitation.objects.count() == 0


def test_invitation_link_carries_a_token_that_is_not_stored(curator_api):
    response = curator_api.post("/api/invitations/", {"note": "for Ann"}, format="json")

    assert response.status_code == 201
    url = response.json()["url"]
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert url == f"http://testserver/accounts/invite/{token}/"
    assert not Invitation.objects.filter(token=token).exists()
    assert Invitation.objects.get().note == "for Ann"


def test_categories_workers_read_curators_write(worker_api, curator_api):
    parent = curator_api.post(
        "/api/categories/", {"name": "animal", "slug": "animal"}, format="json"
    )
    assert parent.status_code == 201
    created = curator_api.post(
        "/api/categories/",
        {"name": "tabby", "slug": "tabby", "wnid": "n02123045", "parent": "animal"},
        format="json",
    )
    assert created.status_code == 201

    assert worker_api.get("/api/categories/tabby/").json()["parent"] == "animal"
    assert (
        worker_api.post("/api/categories/", {"name": "x", "slug": "x"}, format="json").status_code
        == 403
    )
    assert Category.objects.count() == 2


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (
            {"name": "a", "slug": "a", "wnid": "12345"},
            {"wnid": ["Use a WordNet id such as n02123045."]},
        ),
        (
            {"name": "a", "slug": "has space"},
            {
                "slug": [
                    'Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.'
                ]
            },
        ),
    ],
)
def test_category_input_is_validated(payload, error, curator_api):
    response = curator_api.post("/api/categories/", payload, format="json")

    assert response.status_code == 400
    assert response.json() == error
    assert Category.objects.count() == 0


def test_category_cannot_become_its_own_ancestor(curator_api):
    curator_api.post("/api/categories/", {"name": "a", "slug": "a"}, format="json")
    curator_api.post("/api/categories/", {"name": "b", "slug": "b", "parent": "a"}, format="json")

    response = curator_api.patch("/api/categories/a/", {"parent": "b"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"parent": ["A category can't be its own ancestor."]}
    assert Category.objects.get(slug="a").parent is None


def test_schema_documents_the_import_endpoints(curator_api):
    response = curator_api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/imports/upload/", "/api/imports/archive/", "/api/imports/scrape/"]:
        assert "post" in paths[path]
    upload = paths["/api/imports/upload/"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]


def test_swagger_ui_is_served_without_any_cdn(client, curator):
    client.force_login(curator)

    page = client.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    for cdn in ["cdn.jsdelivr.net", "unpkg.com", "cdnjs"]:
        assert cdn not in html
    assert "<script>" not in html  # the start-up script is a file, so the CSP holds
    assert "<style>" not in html  # and so is the page's style
    assert "/static/css/swagger.css" in html
    assert (
        "'unsafe-inline'"
        not in page["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    )


def test_redoc_is_not_served(client, curator):
    """It needs inline styles and Google's web fonts; Swagger UI documents the same schema."""
    client.force_login(curator)

    assert client.get("/api/redoc/").status_code == 404


def test_api_docs_need_a_login(client):
    assert client.get("/api/schema/").status_code in (401, 403)
