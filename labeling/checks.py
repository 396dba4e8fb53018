"""System checks of the database the task engine runs on (``manage.py check --database
default``; ``migrate`` runs them too)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import connections

AUTOVACUUM_OFF = "labeling.W001"


@checks.register(checks.Tags.database)
def autovacuum_on(databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn where PostgreSQL runs without autovacuum: the task engine's statements keep one
    plan per connection (labeling.services.plans), made again whenever ANALYZE refreshes a
    table's statistics; without it a plan made while a crowd's tables were empty stays, and
    reads whole tables as they grow."""
    found: list[checks.CheckMessage] = []
    for alias in databases or []:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('autovacuum')")
            (setting,) = cursor.fetchone()
        if setting != "on":
            found.append(
                checks.Warning(
                    f"PostgreSQL runs with autovacuum off (database {alias!r}).",
                    hint=(
                        "Turn it on (autovacuum = on in postgresql.conf), or run ANALYZE on a "
                        "schedule: the task engine's cached plans are made again only when "
                        "ANALYZE refreshes the statistics of the tables they read."
                    ),
                    id=AUTOVACUUM_OFF,
                )
            )
    return found
