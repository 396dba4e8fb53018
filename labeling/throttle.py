"""Failed-login limits kept in Django's cache, so that passwords cannot be guessed quickly.

Every way in (the login page, /admin/login/, POST /api/auth/token/) authenticates through
`labeling.authentication.ThrottledModelBackend`, which refuses a blocked client before its
password is checked and counts every failure here. Three counters per failure:

- per (client address, username): stops guessing one account's password from one place;
- per address: stops trying one password on many accounts;
- per username from anywhere, looser: stops spreading one account's guesses over many
  addresses. (Someone with many addresses can use it to lock an account out for a window:
  that is the price of not letting them guess.)

The client address is `client_address`; every throttle and lockout counts by its network,
`client_network` (an IPv6 host is handed a whole /64, so its addresses count as one).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@dataclass(frozen=True)
class LoginLimits:
    """Most failures allowed within ``window_s`` seconds before further tries are refused."""

    per_account: int = 10
    per_address: int = 50
    per_account_anywhere: int = 100
    window_s: int = 300


LIMITS = LoginLimits()


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or with CROWDNET_NUM_PROXIES = n trusted proxies in
    front, the n-th address from the right of X-Forwarded-For (each proxy appends the address
    it saw, so anything further left was written by the client and proves nothing)."""
    proxies = settings.CROWDNET_NUM_PROXIES
    if proxies:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def client_network(request: HttpRequest) -> str:
    """What limits count by: the client's IPv4 address (an IPv4-mapped IPv6 one as IPv4), or
    the /64 network of its IPv6 address, since one host may use any address in its /64;
    the address as given when it is not an IP address."""
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _keys(request: HttpRequest, username: str) -> tuple[str, str, str]:
    address = client_network(request)
    name = username.strip().lower()
    pair = hashlib.sha256(f"{address}\n{name}".encode()).hexdigest()
    account = hashlib.sha256(name.encode()).hexdigest()
    return f"login-fail:acct:{pair}", f"login-fail:addr:{address}", f"login-fail:name:{account}"


def login_blocked(request: HttpRequest, username: str, limits: LoginLimits = LIMITS) -> bool:
    """Whether this address failed too often (for this username or overall), or this
    username failed too often from anywhere."""
    pair_key, address_key, account_key = _keys(request, username)
    counts = cache.get_many([pair_key, address_key, account_key])
    return (
        counts.get(pair_key, 0) >= limits.per_account
        or counts.get(address_key, 0) >= limits.per_address
        or counts.get(account_key, 0) >= limits.per_account_anywhere
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


def refusal_minutes(limits: LoginLimits = LIMITS) -> int:
    """How long, in whole minutes, a blocked client should wait (the window, at least 1)."""
    return max(1, limits.window_s // 60)


def login_refused(request: HttpRequest) -> HttpResponse:
    """The HTML answer to a blocked login: 429 and how long to wait."""
    context = {"minutes": refusal_minutes()}
    return render(request, "registration/login_throttled.html", context, status=429)
