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
