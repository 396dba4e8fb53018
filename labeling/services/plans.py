"""The task engine's plan mode: its transactions plan each statement once per connection.

A next or an answer runs a handful of hand-written statements whose planning costs more than
their execution (the verify lease plans in 2.5-3.7 ms and runs in under 0.8 ms; docs/
benchmarks.md, "The task engine on generic plans"). They inline the values whose skew matters
(states, kinds, questions), so a generic plan, made once per connection and again at every
ANALYZE of a table it reads, serves them as well as one made for each call's values.
PostgreSQL's own choice (plan_cache_mode auto) compares estimated costs and kept planning the
lease on every call. Other statements keep the connections' mode (CROWDNET_DB_PLAN_CACHE_MODE).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

MODES = {
    mode: f"SET LOCAL plan_cache_mode = {mode}"
    for mode in ("force_custom_plan", "auto", "force_generic_plan")
}


def engine_plans() -> None:
    """In the caller's transaction, on PostgreSQL: CROWDNET_DB_ENGINE_PLAN_CACHE_MODE until it
    ends (one statement; none where that mode is the connections' own)."""
    mode = settings.CROWDNET_DB_ENGINE_PLAN_CACHE_MODE
    if mode is None or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(MODES[mode])
