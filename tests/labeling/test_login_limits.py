"""One failed-login limit for every way in: the login page, /admin/login/ and the API token,
keyed by account and by the real client address."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token

from labeling.throttle import LIMITS, client_address, client_network
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

WAIT = "Too many failed logins for this account from your network. Wait 5 minutes, then try again."


@pytest.fixture
def staff(db):
    return UserFactory(username="sam", role="curator", is_staff=True, is_superuser=True)


def _token(api, username: str, password: str, **headers: str):
    return api.post(
        "/api/auth/token/", {"username": username, "password": password}, format="json", **headers
    )


def test_admin_login_refuses_the_right_password_after_60_wrong_ones(client, staff):
    codes = [
        client.post("/admin/login/", {"username": "sam", "password": "wrong"}).status_code
        for _ in range(60)
    ]

    last = client.post("/admin/login/", {"username": "sam", "password": PASSWORD})

    assert codes == [200] * LIMITS.per_account + [429] * (60 - LIMITS.per_account)
    assert last.status_code == 429
    assert "Too many failed logins" in last.content.decode()
    assert "_auth_user_id" not in client.session
    staff.refresh_from_db()
    assert staff.last_login is None


def test_a_lock_from_the_login_page_refuses_the_api_token(client, api, curator):
    for _ in range(LIMITS.per_account):
        client.post(reverse("login"), {"username": "cora", "password": "wrong"})

    response = _token(api, "cora", PASSWORD)

    assert response.status_code == 429
    assert response.json() == {"detail": WAIT}
    assert not Token.objects.exists()


def test_api_token_failures_count_toward_the_lock(client, api, curator):
    codes = [_token(api, "cora", "wrong").status_code for _ in range(LIMITS.per_account)]

    page = client.post(reverse("login"), {"username": "cora", "password": PASSWORD})
    admin = client.post("/admin/login/", {"username": "cora", "password": PASSWORD})

    assert codes == [400] * LIMITS.per_account
    assert (page.status_code, admin.status_code) == (429, 429)
    assert "_auth_user_id" not in client.session


def test_a_locked_account_gets_no_token_even_through_the_backend(rf, curator):
    """Even a view that forgot the check is refused: the backend checks first."""
    from django.contrib.auth import authenticate

    request = rf.post("/anything/")
    for _ in range(LIMITS.per_account):
        assert authenticate(request, username="cora", password="wrong") is None

    assert authenticate(request, username="cora", password=PASSWORD) is None
    assert authenticate(rf.post("/x/", REMOTE_ADDR="10.9.9.9"), username="cora", password=PASSWORD)


def test_rotating_x_forwarded_for_does_not_escape_the_lock(api, curator):
    codes = [
        _token(api, "cora", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(LIMITS.per_account + 1)
    ]

    assert codes == [400] * LIMITS.per_account + [429]


def test_rotating_x_forwarded_for_does_not_escape_the_api_throttle(api):
    """Other usernames each time, so only DRF's login throttle (20/min) can stop them."""
    codes = [
        _token(api, f"user{n}", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(25)
    ]

    assert codes == [400] * 20 + [429] * 5


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.7", "192.0.2.1"),
        (0, "", "192.0.2.1"),
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "203.0.113.7", "203.0.113.7"),
        (1, "", "192.0.2.1"),
    ],
)
def test_client_address_trusts_only_the_configured_proxies(settings, proxies, forwarded, expected):
    settings.CROWDNET_NUM_PROXIES = proxies
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", **headers)

    assert client_address(request) == expected


def test_behind_one_proxy_the_last_hop_is_the_client(settings, api, curator):
    settings.CROWDNET_NUM_PROXIES = 1
    for n in range(LIMITS.per_account):
        _token(api, "cora", "wrong", HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 203.0.113.7")

    same_client = _token(api, "cora", PASSWORD, HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.7")
    other_client = _token(api, "cora", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.8")

    assert same_client.status_code == 429
    assert other_client.status_code == 200
    assert other_client.json() == {"token": Token.objects.get(user=curator).key}


def test_one_account_guessed_from_many_addresses_is_locked_for_every_address(client, curator):
    for n in range(LIMITS.per_account_anywhere):
        client.post(
            reverse("login"),
            {"username": "cora", "password": "wrong"},
            REMOTE_ADDR=f"10.0.{n // 250}.{n % 250 + 1}",
        )

    fresh = client.post(
        reverse("login"), {"username": "cora", "password": PASSWORD}, REMOTE_ADDR="192.0.2.99"
    )

    assert fresh.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("body", [[], "cora", 7])
def test_a_token_request_that_is_not_an_object_is_400(api, body):
    response = api.post("/api/auth/token/", body, format="json")

    assert response.status_code == 400
    assert not Token.objects.exists()


def test_one_ipv6_network_counts_as_one_address(client, curator):
    """A host is given a whole /64: each failure from another address in it, for another
    account, still counts toward one address limit."""
    codes = [
        client.post(
            reverse("login"),
            {"username": f"user{n}", "password": "wrong"},
            REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}",
        ).status_code
        for n in range(LIMITS.per_address + 1)
    ]

    fresh = client.post(
        reverse("login"),
        {"username": "cora", "password": PASSWORD},
        REMOTE_ADDR="2001:db8:1:2:ffff::1",
    )
    elsewhere = client.post(
        reverse("login"), {"username": "cora", "password": PASSWORD}, REMOTE_ADDR="2001:db8:1:3::1"
    )

    assert codes == [200] * LIMITS.per_address + [429]
    assert fresh.status_code == 429
    assert elsewhere.status_code == 302


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("unknown", "unknown"),
    ],
)
def test_client_network_groups_an_ipv6_host(address, key):
    request = RequestFactory().get("/", REMOTE_ADDR=address)

    assert client_network(request) == key
