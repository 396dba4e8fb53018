"""The app's PostgreSQL connections run with the server settings config/settings.py asks for."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="server settings of PostgreSQL connections"
    ),
]


def _settings_print(expression: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Load config.settings in a fresh interpreter with ``env`` and print ``expression``."""
    return subprocess.run(
        [sys.executable, "-c", f"from config import settings; print(settings.{expression})"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _show(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_connections_run_without_jit_and_let_postgresql_keep_generic_plans():
    # given the default settings (CROWDNET_DB_JIT off, server-side binding on)
    # when a connection asks the server
    # then JIT compilation is off and PostgreSQL chooses between generic and custom plans
    assert (_show("jit"), _show("plan_cache_mode")) == ("off", "auto")


def test_the_verify_lease_is_parsed_by_psycopg_once_per_process(category, monkeypatch):
    # given psycopg's parser, counted, and the verify lease statement (over psycopg's own
    # 4 KiB limit for keeping a parse)
    from psycopg import _queries

    from labeling.services.leases import LEASE
    from tests.factories import candidate_pool, worker_client

    assert len(LEASE.encode()) > 4096
    parsed: list[bytes] = []
    uncached = _queries._query2pg_nocache

    def counting(query: bytes, encoding: str):  # type: ignore[no-untyped-def]
        parsed.append(query)
        return uncached(query, encoding)

    monkeypatch.setattr(_queries, "_query2pg_nocache", counting)
    candidate_pool(category, 3, seed=850)
    client, _ = worker_client("ann")

    # when the worker leases three tasks
    for _ in range(3):
        assert client.get("/api/tasks/next/?kind=verify").status_code == 200

    # then the lease statement never went through psycopg's uncached parser
    assert [query for query in parsed if query == LEASE.encode()] == []


def _assert_mode_refused(loaded, name: str) -> None:
    """The settings refused to load, naming ``name`` and the modes PostgreSQL knows."""
    assert loaded.returncode != 0
    assert (
        f"{name} must be force_custom_plan, auto or force_generic_plan, not 'generic'."
        in loaded.stderr
    )


@pytest.mark.parametrize(("mode", "refused"), [("force_custom_plan", False), ("generic", True)])
def test_the_plan_cache_mode_is_one_postgresql_knows(mode, refused):
    # given CROWDNET_DB_PLAN_CACHE_MODE set, when the settings load (a fresh interpreter)
    loaded = _settings_print(
        "DATABASES['default']['OPTIONS']['options']",
        {**os.environ, "CROWDNET_DB_PLAN_CACHE_MODE": mode},
    )
    # then PostgreSQL's own values pass to the server, anything else stops the start-up
    if refused:
        _assert_mode_refused(loaded, "CROWDNET_DB_PLAN_CACHE_MODE")
    else:
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.split() == ["-c", "jit=off", "-c", f"plan_cache_mode={mode}"]


@pytest.mark.parametrize(
    ("engine", "connections", "expected"),
    [
        (None, None, "force_generic_plan"),
        ("auto", None, "None"),
        ("force_custom_plan", None, "force_custom_plan"),
        (None, "force_generic_plan", "None"),
        ("generic", None, "refused"),
    ],
)
def test_the_task_engine_sets_its_own_plan_mode_only_where_it_differs(
    engine, connections, expected
):
    # given CROWDNET_DB_ENGINE_PLAN_CACHE_MODE and CROWDNET_DB_PLAN_CACHE_MODE set or not,
    # when the settings load (a fresh interpreter)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CROWDNET_DB_ENGINE_PLAN_CACHE_MODE", "CROWDNET_DB_PLAN_CACHE_MODE")
    }
    if engine is not None:
        env["CROWDNET_DB_ENGINE_PLAN_CACHE_MODE"] = engine
    if connections is not None:
        env["CROWDNET_DB_PLAN_CACHE_MODE"] = connections
    loaded = _settings_print("CROWDNET_DB_ENGINE_PLAN_CACHE_MODE", env)

    # then the engine's transactions set generic plans by default, nothing where the mode is
    # the connections' own, and an unknown mode stops the start-up saying what is allowed
    if expected == "refused":
        _assert_mode_refused(loaded, "CROWDNET_DB_ENGINE_PLAN_CACHE_MODE")
    else:
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.strip() == expected


def test_the_database_check_warns_where_autovacuum_is_off():
    # given the server's autovacuum setting (off on the project's CI machine, on by default
    # elsewhere)
    from labeling.checks import AUTOVACUUM_OFF, autovacuum_on

    setting = _show("autovacuum")

    # when the database checks run, and when they run for no database
    found = autovacuum_on(databases=["default"])

    # then a server without autovacuum gets one warning that says what to do; none otherwise
    if setting == "on":
        assert found == []
    else:
        [warning] = found
        assert warning.id == AUTOVACUUM_OFF
        assert warning.msg == "PostgreSQL runs with autovacuum off (database 'default')."
        assert "ANALYZE" in warning.hint
    assert autovacuum_on(databases=None) == []
