"""A throwaway PostgreSQL database for a benchmark: Django's test database (``test_<name>``)
beside the one DATABASE_URL names, migrated, and dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def throwaway_database() -> Iterator[str]:
    """Set Django up, create the test database and yield its URL (for servers or children
    the benchmark starts); drop it on the way out. Refuses anything but PostgreSQL."""
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    if connection.vendor != "postgresql":
        raise SystemExit("Run this against PostgreSQL: set DATABASE_URL.")
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    db = connection.settings_dict
    try:
        yield f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
