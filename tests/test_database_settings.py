"""The app's PostgreSQL connections run with the server settings config/settings.py asks for."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="server settings of PostgreSQL connections"
    ),
]


def _show(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_connections_run_without_jit_and_plan_each_statement_for_its_values():
    # given the default settings (CROWDNET_DB_JIT off, server-side binding on)
    # when a connection asks the server
    # then JIT compilation is off and prepared statements are still planned per run
    assert (_show("jit"), _show("plan_cache_mode")) == ("off", "force_custom_plan")
