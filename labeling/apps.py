from django.apps import AppConfig

LONGEST_CACHED_STATEMENT = 16_384
"""Bytes: psycopg keeps the parse of a statement up to this long (its own limit is 4 KiB)."""


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self) -> None:
        from labeling import checks  # noqa: F401 (registers the database checks)

        _parse_cache_raise()


def _parse_cache_raise() -> None:
    # psycopg caches the conversion of a statement's %(name)s placeholders only for
    # statements up to 4 KiB, against ORM-made INSERTs of every length; the verify lease
    # (labeling.services.leases.LEASE) is 5 KiB, so every lease ran psycopg's parser over
    # it again, a quarter of a millisecond of CPU per task. The limit is a module
    # constant, read on every call; where a psycopg version has none, nothing changes.
    from psycopg import _queries

    if getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", None) is not None:
        _queries.MAX_CACHED_STATEMENT_LENGTH = max(
            _queries.MAX_CACHED_STATEMENT_LENGTH, LONGEST_CACHED_STATEMENT
        )
