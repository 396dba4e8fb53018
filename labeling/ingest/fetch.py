"""Fetching user-supplied http(s) URLs without becoming a proxy into our own network (SSRF).

The rules, learned from Label Studio's and CVAT's advisories (CVE-2022-36551, CVE-2023-47116,
CVE-2024-37164):

* Each hop's host is resolved exactly once; if ANY answer is not a public unicast address
  (loopback, private, link-local, CGNAT, multicast, reserved, unspecified, or an IPv6 address
  embedding such an IPv4 one) the hop is refused, unless the address is inside
  ``FetchPolicy.allow_networks``. IP literals, including ``2130706433`` and ``0x7f.1``, are
  normalised the way resolvers read them and checked the same way.
* The connection is pinned to the checked address (the pool's host IS that address) while the
  ``Host`` header, TLS SNI and certificate check use the URL's name, so DNS rebinding between
  check and connect cannot reach anything else.
* Redirects are followed by hand; every hop is re-parsed, re-resolved, re-checked, re-pinned.
* No proxies, no credentials in URLs, only the URL's own port.
* Bodies stream with a byte cap (a larger Content-Length is refused before reading). We ask
  for ``identity`` encoding and refuse any compressed body instead of decoding it: images are
  compressed already, and no decoder then stands between a gzip bomb and our memory.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
"""(host, port) -> IP address strings; raises ``OSError`` when the name cannot be resolved."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
"""Most bytes asked of the socket per read."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for fetching; times are seconds, sizes bytes."""

    timeout_s: float = 10.0
    """Connect timeout, and longest wait for any single read, per request."""
    max_bytes: int = 20 * 1024 * 1024
    """Largest body accepted; a larger Content-Length is refused before the body is read."""
    max_redirects: int = 5
    concurrency: int = 8
    """Simultaneous fetches in ``fetch_many`` overall."""
    per_host_concurrency: int = 2
    """Simultaneous fetches in ``fetch_many`` to one host name (politeness)."""
    per_host_delay_s: float = 0.0
    """Least time between the starts of two fetches to one host name in ``fetch_many``."""
    allow_networks: tuple[IPNetwork, ...] = ()
    """Networks permitted even when private or loopback (tests, intranets)."""
    user_agent: str = "CrowdNet/0.1 (+image import)"
    total_timeout_s: float = 120.0
    """Wall-clock limit on one whole fetch, redirects and body included (stops slow drips)."""

    def __post_init__(self) -> None:
        if min(self.concurrency, self.per_host_concurrency, self.max_bytes) < 1:
            raise ValueError("concurrency, per_host_concurrency and max_bytes must be >= 1")
        if self.max_redirects < 0 or self.per_host_delay_s < 0:
            raise ValueError("max_redirects and per_host_delay_s must be >= 0")
        if self.timeout_s <= 0 or self.total_timeout_s <= 0:
            raise ValueError("timeout_s and total_timeout_s must be > 0")


class FetchRefused(Exception):
    """A URL we would not or could not fetch; ``code`` is one of the documented short codes.

    Codes: bad_url, blocked_address, dns, timeout, too_large, too_many_redirects, http_error,
    connection.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"FetchRefused({self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class Fetched:
    """A fetched body; ``url`` is the final URL after redirects."""

    url: str
    data: bytes
    content_type: str | None
    """As the server said it; informational only, callers sniff the bytes."""


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the operating system's resolver (``socket.getaddrinfo``)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class _Target:
    """One parsed, validated hop; ``host`` is ASCII lower case, or the literal IP's text."""

    url: str
    where: str
    scheme: str
    host: str
    port: int
    literal: IPAddress | None
    request_path: str

    @property
    def host_header(self) -> str:
        """``Host`` header value: the URL's host, with the port only when not the default."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == _DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"


def _parse_url(url: str, hop: int) -> _Target:
    """Validate ``url`` for hop ``hop`` (0 is the URL asked for); raise bad_url otherwise."""
    where = url if hop == 0 else f"redirect {hop} to {url}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchRefused("bad_url", f"{where}: not a valid URL ({exc})") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise FetchRefused("bad_url", f"{where}: only http and https URLs can be fetched")
    if "@" in parts.netloc:
        raise FetchRefused("bad_url", f"{where}: URLs with a user name or password are refused")
    if not parts.hostname:
        raise FetchRefused("bad_url", f"{where}: the URL has no host")
    if port == 0:
        raise FetchRefused("bad_url", f"{where}: port 0 is not a valid port")
    host, literal = _parse_host(parts.hostname, parts.netloc.startswith("["), where)
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
    query = "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=~") if parts.query else ""
    port = port or _DEFAULT_PORTS[parts.scheme]
    return _Target(url, where, parts.scheme, host, port, literal, path + query)


def _parse_host(hostname: str, bracketed: bool, where: str) -> tuple[str, IPAddress | None]:
    """Canonical host text and, for IP literals in any spelling, the address it denotes."""
    if bracketed:
        try:
            address6 = ipaddress.IPv6Address(hostname)
        except ValueError:
            raise FetchRefused("bad_url", f"{where}: {hostname!r} is not an IPv6 address") from None
        if address6.scope_id:
            raise FetchRefused("bad_url", f"{where}: IPv6 zone identifiers are refused")
        return str(address6), address6
    try:
        name = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise FetchRefused("bad_url", f"{where}: {hostname!r} is not a valid host name") from None
    if not _HOSTNAME.fullmatch(name):
        raise FetchRefused("bad_url", f"{where}: {hostname!r} is not a valid host name")
    if not _NUMERIC_LABEL.fullmatch(name.rstrip(".").rsplit(".", 1)[-1]):
        return name, None
    # A name ending in a number is an IPv4 address to resolvers and browsers (decimal, octal,
    # hex, short forms); read it the same way, and refuse what they could disagree about.
    try:
        address = ipaddress.IPv4Address(socket.inet_aton(name.rstrip(".")))
    except OSError:
        raise FetchRefused(
            "bad_url", f"{where}: {hostname!r} is an ambiguous numeric host"
        ) from None
    return str(address), address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4, Teredo or NAT64 address would reach."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is globally routable unicast (and so safe to fetch from)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
        if address.is_site_local:
            return False
    special = address.is_private or address.is_loopback or address.is_link_local
    special = special or address.is_multicast or address.is_reserved or address.is_unspecified
    return address.is_global and not special


def _permitted(address: IPAddress, policy: FetchPolicy) -> bool:
    """Public, or inside the allow-list; never unspecified or multicast."""
    if address.is_unspecified or address.is_multicast:
        return False
    return any(address in net for net in policy.allow_networks) or is_public_address(address)


def _checked_addresses(target: _Target, policy: FetchPolicy, resolver: Resolver) -> list[str]:
    """Resolve ``target`` once and return its addresses, all permitted; raise otherwise."""
    if target.literal is not None:
        addresses: list[IPAddress] = [target.literal]
    else:
        try:
            answers = resolver(target.host, target.port)
            addresses = [ipaddress.ip_address(answer) for answer in answers]
        except (OSError, ValueError) as exc:
            raise FetchRefused(
                "dns", f"{target.where}: cannot resolve {target.host} ({exc})"
            ) from None
        if not addresses:
            raise FetchRefused("dns", f"{target.where}: {target.host} has no addresses")
    for address in addresses:
        if not _permitted(address, policy):
            message = f"{target.where} points to {address}, which is not a public address"
            raise FetchRefused("blocked_address", message)
    return list(dict.fromkeys(str(address) for address in addresses))


class PinnedPools:
    """Thread-safe cache of urllib3 connection pools, each pinned to one checked address.

    The key includes the address and the TLS name, so a kept-alive connection is only ever
    reused for the address that was checked for the current hop. Close it when done.
    """

    def __init__(self, policy: FetchPolicy) -> None:
        self._policy = policy
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def get(
        self, scheme: str, address: str, port: int, hostname: str
    ) -> urllib3.HTTPConnectionPool:
        """The pool connecting to ``address``:``port``, verifying TLS against ``hostname``."""
        key = (scheme, address, port, hostname)
        with self._lock:
            if key not in self._pools:
                self._pools[key] = self._new_pool(*key)
            return self._pools[key]

    def _new_pool(
        self, scheme: str, address: str, port: int, hostname: str
    ) -> urllib3.HTTPConnectionPool:
        """A pool whose host IS the checked address: urllib3 never resolves anything."""
        timeout = urllib3.Timeout(connect=self._policy.timeout_s, read=self._policy.timeout_s)
        size = self._policy.per_host_concurrency
        if scheme == "https":
            return urllib3.HTTPSConnectionPool(
                address,
                port,
                timeout=timeout,
                maxsize=size,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                server_hostname=hostname,  # SNI and certificate name: the URL's, not the IP
                assert_hostname=hostname,
            )
        return urllib3.HTTPConnectionPool(
            address, port, timeout=timeout, maxsize=size, retries=False
        )

    def close(self) -> None:
        """Close every pool and its idle connections."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def __enter__(self) -> PinnedPools:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def fetch(
    url: str,
    policy: FetchPolicy,
    *,
    resolver: Resolver | None = None,
    pool: PinnedPools | None = None,
) -> Fetched:
    """GET ``url`` under ``policy``'s SSRF rules and limits; raise ``FetchRefused`` otherwise.

    ``resolver`` defaults to the system resolver; ``pool`` (made with the same policy) shares
    kept-alive connections between calls, as ``fetch_many`` does; without it they close here.
    """
    pools = pool if pool is not None else PinnedPools(policy)
    deadline = time.monotonic() + policy.total_timeout_s
    try:
        return _follow(url, policy, resolver or system_resolver, pools, deadline)
    finally:
        if pool is None:
            pools.close()


def _follow(
    url: str, policy: FetchPolicy, resolver: Resolver, pools: PinnedPools, deadline: float
) -> Fetched:
    """Fetch hop after hop, re-checking each redirect target from scratch."""
    target = _parse_url(url, 0)
    for hop in range(policy.max_redirects + 1):
        response = _open(target, policy, resolver, pools, deadline)
        try:
            location = _redirect_location(response, target)
            if location is None:
                data = _read_body(response, target, policy, deadline)
                response.release_conn()  # read to the end: the connection can be reused
                content_type = response.headers.get("Content-Type")
                return Fetched(url=target.url, data=data, content_type=content_type)
        finally:
            response.close()  # closes the connection too, unless released above
            response.release_conn()
        try:
            next_url = urljoin(target.url, location)
        except ValueError:
            next_url = location
        target = _parse_url(next_url, hop + 1)
    raise FetchRefused("too_many_redirects", f"{url}: more than {policy.max_redirects} redirects")


def _open(
    target: _Target, policy: FetchPolicy, resolver: Resolver, pools: PinnedPools, deadline: float
) -> urllib3.BaseHTTPResponse:
    """Send one hop's GET to its checked addresses in resolver order; return the response."""
    addresses = _checked_addresses(target, policy, resolver)
    headers = {
        "Host": target.host_header,
        "User-Agent": policy.user_agent,
        "Accept": "image/*,text/html;q=0.8,*/*;q=0.5",
        "Accept-Encoding": "identity",
    }
    for index, address in enumerate(addresses):
        _check_deadline(target, policy, deadline)
        pool = pools.get(target.scheme, address, target.port, target.host)
        try:
            return pool.urlopen(
                "GET",
                target.request_path,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                release_conn=False,
            )
        except HTTPError as exc:
            # Only a refused connection moves on to the next (already checked) address.
            if not isinstance(exc, NewConnectionError) or index == len(addresses) - 1:
                raise _refusal(exc, target, policy) from None
    raise AssertionError("unreachable: _checked_addresses never returns an empty list")


def _redirect_location(response: urllib3.BaseHTTPResponse, target: _Target) -> str | None:
    """The Location of a redirect, ``None`` for a success; raise http_error otherwise."""
    location = response.headers.get("Location")
    if response.status in REDIRECT_STATUSES and location:
        return location
    if response.status >= 300:
        message = f"{target.where}: the server answered HTTP {response.status}"
        raise FetchRefused("http_error", message)
    return None


def _read_body(
    response: urllib3.BaseHTTPResponse, target: _Target, policy: FetchPolicy, deadline: float
) -> bytes:
    """Stream the body, refusing it once it passes ``max_bytes`` or arrives compressed."""
    too_large = FetchRefused("too_large", f"{target.where}: larger than {policy.max_bytes} bytes")
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise too_large
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", ""):
        message = f"{target.where}: compressed body ({encoding}) sent although identity was asked"
        raise FetchRefused("http_error", message)
    body = bytearray()
    try:
        while chunk := response.read1(CHUNK_BYTES, decode_content=False):
            body += chunk
            if len(body) > policy.max_bytes:
                raise too_large
            _check_deadline(target, policy, deadline)
    except HTTPError as exc:
        raise _refusal(exc, target, policy) from None
    return bytes(body)


def _check_deadline(target: _Target, policy: FetchPolicy, deadline: float) -> None:
    """Raise timeout once the whole fetch has run past ``total_timeout_s``."""
    if time.monotonic() > deadline:
        message = f"{target.where}: not finished within {policy.total_timeout_s} s"
        raise FetchRefused("timeout", message)


def _refusal(exc: Exception, target: _Target, policy: FetchPolicy) -> FetchRefused:
    """Translate a urllib3 failure into the matching ``FetchRefused``."""
    if isinstance(exc, NewConnectionError):
        return FetchRefused("connection", f"{target.where}: cannot connect ({exc})")
    if isinstance(exc, Urllib3TimeoutError):
        return FetchRefused("timeout", f"{target.where}: no answer within {policy.timeout_s} s")
    return FetchRefused("connection", f"{target.where}: connection failed ({exc})")
