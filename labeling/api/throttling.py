"""DRF's throttles, keyed on the same client address as the login limits."""

from __future__ import annotations

from typing import Any

from rest_framework import throttling
from rest_framework.request import Request

from labeling.throttle import client_network


class ClientAddressMixin:
    """Identify anonymous clients by `labeling.throttle.client_network`: the client address,
    trusting X-Forwarded-For only as far as CROWDNET_NUM_PROXIES says, or its IPv6 /64."""

    def get_ident(self, request: Request) -> str:
        return client_network(request)


class UserRateThrottle(ClientAddressMixin, throttling.UserRateThrottle):
    """Per signed-in user, or per address for anonymous requests."""


class AnonRateThrottle(ClientAddressMixin, throttling.AnonRateThrottle):
    """Per address, anonymous requests only."""


class ScopedRateThrottle(ClientAddressMixin, throttling.ScopedRateThrottle):
    """Per user (or address) and the view's ``throttle_scope``."""


class AddressRateThrottle(ClientAddressMixin, throttling.SimpleRateThrottle):
    """Per client address, whoever is signed in; subclasses set ``scope``."""

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class BatchedThrottlesMixin:
    """An APIView whose rate throttles are checked and counted together, where DRF makes two
    cache round trips per throttle: on Redis one script call for all of them
    (config.cache.SLIDING_WINDOWS, the request times in a Redis list per window), elsewhere
    and while Redis is down one read and one write of pickled lists in Django's cache, which
    then counts in each process's memory (config.cache). The arithmetic, the 429 and its
    Retry-After are DRF's (SimpleRateThrottle's sliding window)."""

    def check_throttles(self, request: Request) -> None:
        throttles = self.get_throttles()  # type: ignore[attr-defined]
        if not throttles or not all(
            isinstance(t, throttling.SimpleRateThrottle) and t.cache is throttles[0].cache
            for t in throttles
        ):
            super().check_throttles(request)  # type: ignore[misc]
            return
        keyed = []
        for throttle in throttles:
            if isinstance(throttle, throttling.ScopedRateThrottle):
                # its rate comes from the view, as ScopedRateThrottle.allow_request reads it
                throttle.scope = getattr(self, throttle.scope_attr, None)
                if not throttle.scope:
                    continue
                throttle.rate = throttle.get_rate()
                throttle.num_requests, throttle.duration = throttle.parse_rate(throttle.rate)
            if throttle.rate is None:
                continue
            throttle.key = throttle.get_cache_key(request, self)
            if throttle.key is not None:
                keyed.append(throttle)
        if not keyed:
            return
        cache = keyed[0].cache
        now = keyed[0].timer()
        windows = getattr(cache, "sliding_windows", None)
        held = None
        if windows is not None:
            held = windows([(t.key, t.duration, t.num_requests) for t in keyed], now)
        if held is None:
            waits = _windows_in_cache(cache, keyed, now)
        else:
            waits = []
            for throttle, (count, oldest) in zip(keyed, held, strict=True):
                if count >= 0:  # refused: DRF's wait() over the window's length and oldest
                    throttle.now = now
                    throttle.history = [oldest] * count if oldest is not None else []
                    waits.append(throttle.wait())
        if waits:
            durations = [wait for wait in waits if wait is not None]
            self.throttled(request, max(durations, default=None))  # type: ignore[attr-defined]


def _windows_in_cache(
    cache: Any, keyed: list[throttling.SimpleRateThrottle], now: float
) -> list[float | None]:
    """The windows as pickled lists in Django's cache (a cache without ``sliding_windows``,
    or Redis's memory fallback while it is down): one read of them all, one write per
    window length. The waits of the throttles that refused."""
    histories = cache.get_many([t.key for t in keyed])
    writes: dict[int, dict[str, list[float]]] = {}
    waits = []
    for throttle in keyed:
        throttle.now = now
        throttle.history = histories.setdefault(throttle.key, [])
        while throttle.history and throttle.history[-1] <= now - throttle.duration:
            throttle.history.pop()
        if len(throttle.history) >= throttle.num_requests:
            waits.append(throttle.wait())
            continue
        throttle.history.insert(0, now)
        writes.setdefault(throttle.duration, {})[throttle.key] = throttle.history
    for duration, values in writes.items():
        cache.set_many(values, duration)
    return waits
