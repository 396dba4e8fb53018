"""A campaign's scope on task serving: the one hook the campaigns app has into the task engine.

`task_assign(scope=...)` sets it for the lease; the ORM pools narrow their live rows with
`in_scope`. The two-statement verify and grid leases (leases.py, grid_leases.py) know no
scope, so a scoped lease takes the pools.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db.models import Q


@dataclass(frozen=True)
class TaskScope:
    """Serve only these categories (ids) and task kinds: a campaign's (campaigns app)."""

    categories: frozenset[int]
    kinds: frozenset[str]


_SCOPE: ContextVar[TaskScope | None] = ContextVar("task_scope", default=None)


@contextmanager
def scoped(scope: TaskScope | None) -> Iterator[None]:
    token = _SCOPE.set(scope)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def in_scope(live: Q, path: str = "category_id") -> Q:
    """``live`` narrowed to the current TaskScope's categories (through ``path``), if any."""
    scope = _SCOPE.get()
    return live if scope is None else live & Q(**{f"{path}__in": scope.categories})
