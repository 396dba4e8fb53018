"""Django's Redis cache, with one redis client per connection pool, that fails open.

Django builds a new ``redis.Redis`` for every cache operation, and redis-py fills a table of
several hundred response callbacks each time: with two throttles per worker request that was
four clients and some 1,300 dict writes a request. ``redis.Redis`` is thread-safe (it borrows a
connection from the pool for each command), so one per pool is enough.

The cache holds only throttle and lockout counters and short-lived locks: every answer lives in
PostgreSQL. So when Redis cannot be reached, the cache fails open instead of failing every
request: each operation goes to a memory cache of this process (limits then count per process,
which still stops a flood), the outage is logged once, and Redis is tried again after
CROWDNET_CACHE_RETRY_SECONDS. Connections time out quickly and are not retried inside
redis-py, so an unreachable Redis costs a request at most one short timeout, once per retry
period per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

log = logging.getLogger(__name__)
T = TypeVar("T")
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, servers: list[str], **options: Any) -> None:
        options.setdefault("socket_connect_timeout", 0.5)
        options.setdefault("socket_timeout", 1.0)
        options.setdefault("retry", Retry(NoBackoff(), 0))
        super().__init__(servers, **options)
        self._clients: dict[int | str, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client

    def set_many(self, data: dict[Any, Any], timeout: int | None) -> None:
        """Each key SET with its expiry in one pipeline, not in a MULTI/EXEC of MSET and one
        EXPIRE per key as Django's does: the same keys and expiries in one round trip,
        without the transaction (a cache needs none) or the extra commands."""
        pipeline = self.get_client(None, write=True).pipeline(transaction=False)
        for key, value in data.items():
            if timeout == 0:
                pipeline.delete(key)
            else:
                pipeline.set(key, self._serializer.dumps(value), ex=timeout)
        pipeline.execute()


class _Outage:
    """Whether this process treats Redis as down (shared by every thread's cache object)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_until = 0.0

    def skipping(self) -> bool:
        return time.monotonic() < self.down_until

    def started(self, location: str, error: Exception) -> None:
        retry = settings.CROWDNET_CACHE_RETRY_SECONDS
        with self.lock:
            first = self.down_until == 0.0
            self.down_until = time.monotonic() + retry
        if first:
            log.warning(
                "Redis cache at %s unreachable (%s): limits count in this process's memory "
                "until it is back; trying again every %s s",
                location,
                error,
                retry,
            )

    def ended(self, location: str) -> None:
        with self.lock:
            was_down, self.down_until = self.down_until != 0.0, 0.0
        if was_down:
            log.warning("Redis cache at %s reachable again", location)


SLIDING_WINDOWS = """
local now = tonumber(ARGV[1])
local result = {}
for i, key in ipairs(KEYS) do
  local duration = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  while true do
    local oldest = redis.call('LINDEX', key, -1)
    if oldest and tonumber(oldest) <= now - duration then
      redis.call('RPOP', key)
    else
      break
    end
  end
  local held = redis.call('LLEN', key)
  if held >= limit then
    result[i] = {held, redis.call('LINDEX', key, -1) or ''}
  else
    redis.call('LPUSH', key, ARGV[1])
    redis.call('EXPIRE', key, math.ceil(duration))
    result[i] = {-1, ''}
  end
end
return result
"""
"""DRF's sliding window (SimpleRateThrottle.allow_request) for several keys at once, on Redis
lists of request times, newest first: drop the times older than the window, refuse when the
list is full (returning its length and oldest time, for DRF's wait), else record ``now`` and
keep the key for one window. Atomic, so concurrent requests cannot overwrite each other's
counts as a read-then-write of a pickled list can."""

_OUTAGES: dict[str, _Outage] = {}
_OUTAGES_LOCK = threading.Lock()


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
        self._where = ",".join(self._servers)
        with _OUTAGES_LOCK:
            self._outage = _OUTAGES.setdefault(self._where, _Outage())
        # LocMemCache instances of one name share their storage: one per process.
        memory: dict[str, Any] = {
            key: params[key] for key in ("TIMEOUT", "KEY_PREFIX", "VERSION") if key in params
        }
        memory["OPTIONS"] = {"MAX_ENTRIES": 100_000}
        self._fallback = LocMemCache(f"redis-fallback:{self._where}", memory)

    def _either(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if not self._outage.skipping():
            try:
                result = getattr(super(), name)(*args, **kwargs)
            except UNREACHABLE as error:
                self._outage.started(self._where, error)
            else:
                if self._outage.down_until:
                    self._outage.ended(self._where)
                return result
        return getattr(self._fallback, name)(*args, **kwargs)

    def sliding_windows(
        self, windows: list[tuple[str, float, int]], now: float
    ) -> list[tuple[int, float | None]] | None:
        """Run SLIDING_WINDOWS over ``(key, seconds, limit)`` windows at time ``now`` in one
        round trip: per window (-1, None) when it let the request through, else (requests it
        holds, the oldest one's time). None while Redis is down: the caller counts in memory.
        """
        if self._outage.skipping():
            return None
        client = self._cache.get_client(None, write=True)
        script = self._cache._clients.get("sliding_windows")
        if script is None:
            script = self._cache._clients.setdefault(
                "sliding_windows", client.register_script(SLIDING_WINDOWS)
            )
        keys = [self.make_and_validate_key(f"{key}:window") for key, _, _ in windows]
        values: list[Any] = [repr(now)]
        for _, seconds, limit in windows:
            values += [seconds, limit]
        try:
            replies = script(keys=keys, args=values, client=client)
        except UNREACHABLE as error:
            self._outage.started(self._where, error)
            return None
        if self._outage.down_until:
            self._outage.ended(self._where)
        return [(int(held), float(oldest) if oldest else None) for held, oldest in replies]


def _fail_open(name: str) -> Callable[..., Any]:
    def method(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
        return self._either(name, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"``{name}`` on Redis, or on this process's memory while it is down."
    return method


for _name in (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "set_many",
    "delete_many",
    "clear",
):
    setattr(RedisCache, _name, _fail_open(_name))
