"""Security settings read from the environment: HSTS follows the HTTPS redirect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PRINT = (
    "import json, config.settings as s; "
    "print(json.dumps([s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS]))"
)


def _settings_with(env: dict[str, str]) -> list:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_HSTS")}
    base.pop("DJANGO_SSL_REDIRECT", None)
    done = subprocess.run(
        [sys.executable, "-c", PRINT],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, [0, False]),
        ({"DJANGO_SSL_REDIRECT": "1"}, [31_536_000, False]),
        ({"DJANGO_SSL_REDIRECT": "1", "DJANGO_HSTS_SECONDS": "600"}, [600, False]),
        ({"DJANGO_SSL_REDIRECT": "1", "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "1"}, [31_536_000, True]),
        ({"DJANGO_SSL_REDIRECT": "1", "DJANGO_HSTS_SECONDS": "0"}, [0, False]),
    ],
)
def test_hsts_is_on_for_a_year_once_https_is_enforced(env, expected):
    assert _settings_with(env) == expected


@pytest.mark.django_db
def test_https_responses_carry_the_hsts_header(settings, client):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True

    response = client.get("/accounts/login/", secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_the_compose_stack_trusts_the_one_proxy_in_front_of_it():
    """Behind a proxy with CROWDNET_NUM_PROXIES=0 every client has the proxy's address, so
    one client's failed logins would block everyone's."""
    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())

    web = compose["services"]["web"]

    assert web["ports"] == ["127.0.0.1:${CROWDNET_PORT:-8000}:8000"]
    assert web["environment"]["CROWDNET_NUM_PROXIES"] == "${CROWDNET_NUM_PROXIES:-1}"
