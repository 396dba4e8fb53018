"""Failed-login limits kept in Django's cache, so that passwords cannot be guessed quickly.

Two counters per failure: one per (client address, username), which stops guessing one
account's password, and a looser one per address, which stops trying one password on many
accounts. A blocked client is refused before its password is checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest


@dataclass(frozen=True)
class LoginLimits:
    """Most failures allowed within ``window_s`` seconds before further tries are refused."""

    per_account: int = 10
    per_address: int = 50
    window_s: int = 300


LIMITS = LoginLimits()


def client_address(request: HttpRequest) -> str:
    """The peer address. Behind a proxy, the proxy must put the client's address there."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(request: HttpRequest, username: str) -> tuple[str, str]:
    address = client_address(request)
    account = hashlib.sha256(f"{address}\n{username.strip().lower()}".encode()).hexdigest()
    return f"login-fail:acct:{account}", f"login-fail:addr:{address}"


def login_blocked(request: HttpRequest, username: str, limits: LoginLimits = LIMITS) -> bool:
    """Whether this address has failed too often, for this username or overall."""
    account_key, address_key = _keys(request, username)
    counts = cache.get_many([account_key, address_key])
    return (
        counts.get(account_key, 0) >= limits.per_account
        or counts.get(address_key, 0) >= limits.per_address
    )


def login_failed(request: HttpRequest, username: str, limits: LoginLimits = LIMITS) -> None:
    """Count one failed login; the window starts at the first failure."""
    for key in _keys(request, username):
        cache.add(key, 0, timeout=limits.window_s)
        try:
            cache.incr(key)
        except ValueError:
            # The key expired between add and incr: this failure starts a new window.
            cache.set(key, 1, timeout=limits.window_s)
