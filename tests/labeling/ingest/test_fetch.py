"""Safe fetching: SSRF rules, pinning, redirects, limits, batching and page parsing.

Every server is a real one on 127.0.0.1 (or 127.0.0.2 / ::1) started by the test. DNS is what
leaves the machine, so hostnames go through a fake resolver; a spy on ``socket.connect`` shows
when no connection was attempted at all.
"""

from __future__ import annotations

import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from labeling.ingest.fetch import Fetched, FetchPolicy, FetchRefused, fetch
from labeling.ingest.fetch_pages import fetch_many, page_image_urls

LOOPBACK = (ip_network("127.0.0.0/8"),)
IMAGE = b"\x89PNG\r\n\x1a\n-not-really-a-png"


@dataclass
class ServerState:
    """What a test server saw, and the knobs tests turn."""

    hits: list[dict[str, str]] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)
    hold_target: int = 1
    hold_expected: int = 1
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    completed: int = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        state = self.server.state
        with state.changed:
            state.hits.append(
                {"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
            )
            state.client_ports.append(self.client_address[1])
        parts = urlsplit(self.path)
        route = ROUTES.get(parts.path.split("/")[1], _not_found)
        route(self, parts.path, parse_qs(parts.query))

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)


def _image(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send(200, IMAGE, Content_Type="image/png")


def _echo(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send(200, handler.path.encode())


def _redirect(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send(int(query.get("status", ["302"])[0]), Location=query["to"][0])


def _chain(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    left = int(path.split("/")[2])
    if left == 0:
        handler.send(200, b"end of chain")
    else:
        handler.send(302, Location=f"/chain/{left - 1}")


def _loop(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send(302, Location="/loop")


def _status(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send(int(path.split("/")[2]), b"nope")


def _not_found(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send(404, b"not found")


def _slow(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.server.state.release.wait(5)
    handler.send(200, IMAGE)


def _drip(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(1000):
        if handler.server.state.release.wait(0.05):
            return
        handler.wfile.write(b"x")
        handler.wfile.flush()


def _big(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send(200, b"b" * 2048)


def _big_undeclared(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.close_connection = True
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    for _ in range(4):
        handler.wfile.write(b"b" * 512)


def _chunked(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for _ in range(4):
        handler.wfile.write(b"200\r\n" + b"b" * 512 + b"\r\n")
    handler.wfile.write(b"0\r\n\r\n")


def _gzip(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    handler.send(200, gzip.compress(b"\0" * 100_000), Content_Encoding="gzip")


def _hold(handler: Handler, path: str, query: dict[str, list[str]]) -> None:
    """Stay in flight until ``hold_target`` requests are (or every remaining one is)."""
    state, host = handler.server.state, handler.headers["Host"]
    with state.changed:
        for key in (host, "*"):
            state.in_flight[key] = state.in_flight.get(key, 0) + 1
            state.max_in_flight[key] = max(state.max_in_flight.get(key, 0), state.in_flight[key])
        state.changed.notify_all()
        state.changed.wait_for(
            lambda: (
                state.in_flight["*"]
                >= min(state.hold_target, state.hold_expected - state.completed)
            ),
            timeout=5,
        )
    time.sleep(0.05)  # long enough for a request over the limit to show up
    with state.changed:
        for key in (host, "*"):
            state.in_flight[key] -= 1
        state.completed += 1
        state.changed.notify_all()
    handler.send(200, IMAGE)


ROUTES: dict[str, Callable[[Handler, str, dict[str, list[str]]], None]] = {
    "image": _image,
    "echo": _echo,
    "redirect": _redirect,
    "chain": _chain,
    "loop": _loop,
    "status": _status,
    "slow": _slow,
    "drip": _drip,
    "big": _big,
    "big-undeclared": _big_undeclared,
    "chunked": _chunked,
    "gzip": _gzip,
    "hold": _hold,
}


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int = 0) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)
        self.state = ServerState()
        self.port = self.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


def _serve(server: Server) -> Iterator[Server]:
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve(Server("127.0.0.1"))


@pytest.fixture
def other_server(server: Server) -> Iterator[Server]:
    """A server on 127.0.0.2, same port: where a rebound or unpinned request would land."""
    yield from _serve(Server("127.0.0.2", server.port))


class FakeDNS:
    """Answers from a table; a host with several answers gives the next one on each call."""

    def __init__(self, **records: list[list[str]]) -> None:
        self.records = {host.replace("_", "."): answers for host, answers in records.items()}
        self.calls: list[tuple[str, int]] = []
        self.times: list[float] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        self.times.append(time.monotonic())
        answers = self.records.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[min(len(self.calls_for(host)), len(answers)) - 1]

    def calls_for(self, host: str) -> list[tuple[str, int]]:
        return [call for call in self.calls if call[0] == host]


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every address a socket connected to during the test (a spy: connections still happen)."""
    seen: list[object] = []
    real_connect = socket.socket.connect

    def spy(sock: socket.socket, address: object) -> None:
        seen.append(address)
        real_connect(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", spy)
    return seen


def attempt(url: str, policy: FetchPolicy) -> Fetched | FetchRefused:
    """``fetch``'s result, or its refusal."""
    try:
        return fetch(url, policy)
    except FetchRefused as refused:
        return refused


def refusal(url: str, policy: FetchPolicy, resolver: FakeDNS | None = None) -> FetchRefused:
    with pytest.raises(FetchRefused) as caught:
        fetch(url, policy, resolver=resolver or FakeDNS())
    return caught.value


# --- allowed fetches -------------------------------------------------------------------------


def test_fetch_returns_body_and_content_type_from_allowed_loopback(server: Server) -> None:
    # given a local server and a policy that allows loopback
    url = server.url("/image")
    # when
    fetched = fetch(url, FetchPolicy(allow_networks=LOOPBACK))
    # then
    assert fetched == Fetched(url=url, data=IMAGE, content_type="image/png")
    assert len(server.state.hits) == 1


def test_fetch_of_loopback_without_allow_list_is_refused_before_connecting(
    server: Server, connects: list[object]
) -> None:
    # given the same URL, but the default policy
    url = server.url("/image")
    # when
    refused = refusal(url, FetchPolicy())
    # then
    assert (refused.code, refused.message) == (
        "blocked_address",
        f"{url} points to 127.0.0.1, which is not a public address",
    )
    assert server.state.hits == []
    assert connects == []


def test_fetch_sends_host_header_of_the_url_and_connects_to_the_resolved_address(
    server: Server, connects: list[object]
) -> None:
    # given a host name that resolves to the local server
    dns = FakeDNS(images_test=[["127.0.0.1"]])
    url = server.url("/image", host="images.test")
    # when
    fetched = fetch(url, FetchPolicy(allow_networks=LOOPBACK), resolver=dns)
    # then
    assert fetched.data == IMAGE
    hit = server.state.hits[0]
    assert (hit["host"], hit["user-agent"], hit["accept-encoding"]) == (
        f"images.test:{server.port}",
        "CrowdNet/0.1 (+image import)",
        "identity",
    )
    assert connects == [("127.0.0.1", server.port)]
    assert dns.calls == [("images.test", server.port)]


@pytest.fixture
def ipv6_server() -> Iterator[Server]:
    try:
        live = Server("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    yield from _serve(live)


def test_fetch_over_ipv6_loopback_brackets_the_host_header(ipv6_server: Server) -> None:
    # given a server on ::1, allow-listed
    url = f"http://[::1]:{ipv6_server.port}/image"
    # when
    fetched = fetch(url, FetchPolicy(allow_networks=(ip_network("::1/128"),)))
    # then
    assert fetched.data == IMAGE
    assert ipv6_server.state.hits[0]["host"] == f"[::1]:{ipv6_server.port}"


def test_fetch_percent_encodes_the_request_target(server: Server) -> None:
    # given a URL with spaces, a NUL and a CR LF (which URL parsing drops) in its path
    url = server.url("/echo/a b\x00c\r\nX-Injected: 1?q=1 2")
    # when
    fetched = fetch(url, FetchPolicy(allow_networks=LOOPBACK))
    # then
    assert fetched.data == b"/echo/a%20b%00cX-Injected:%201?q=1%202"
    assert "x-injected" not in server.state.hits[0]


# --- SSRF: blocked addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address", "resolved"),
    [
        ("http://127.0.0.1/", "127.0.0.1", []),
        ("http://localhost/", "127.0.0.1", [("localhost", 80)]),
        ("http://10.0.0.1/", "10.0.0.1", []),
        ("http://172.16.0.1/", "172.16.0.1", []),
        ("http://192.168.1.1/", "192.168.1.1", []),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", []),
        ("http://100.64.0.1/", "100.64.0.1", []),
        ("http://0.0.0.0/", "0.0.0.0", []),  # noqa: S104 (a URL under test, not a bind)
        ("http://[::1]/", "::1", []),
        ("http://[fe80::1]/", "fe80::1", []),
        ("http://[fc00::1]/", "fc00::1", []),
        ("http://[fec0::1]/", "fec0::1", []),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1", []),
        ("http://[::ffff:10.0.0.1]:8080/", "::ffff:a00:1", []),
        ("http://[2002:7f00:1::]/", "2002:7f00:1::", []),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", []),
        ("http://2130706433/", "127.0.0.1", []),
        ("http://0x7f000001/", "127.0.0.1", []),
        ("http://0x7f.1/", "127.0.0.1", []),
        ("http://0177.0.0.1/", "127.0.0.1", []),
        ("http://127.1/", "127.0.0.1", []),
        ("http://127.0.0.1./", "127.0.0.1", []),
        ("http://224.0.0.1/", "224.0.0.1", []),
        ("http://240.0.0.1/", "240.0.0.1", []),
        ("http://255.255.255.255/", "255.255.255.255", []),
        ("https://mixed.test/", "10.1.2.3", [("mixed.test", 443)]),
    ],
)
def test_fetch_refuses_non_public_addresses_without_connecting(
    url: str, address: str, resolved: list[tuple[str, int]], connects: list[object]
) -> None:
    # given a resolver for the named hosts (mixed.test has one public, one private answer)
    dns = FakeDNS(localhost=[["127.0.0.1"]], mixed_test=[["8.8.8.8", "10.1.2.3"]])
    # when
    refused = refusal(url, FetchPolicy(), dns)
    # then
    assert (refused.code, str(refused)) == (
        "blocked_address",
        f"{url} points to {address}, which is not a public address",
    )
    assert dns.calls == resolved
    assert connects == []


def test_allow_list_never_admits_unspecified_or_multicast(connects: list[object]) -> None:
    # given an allow-list that covers everything
    everything = FetchPolicy(allow_networks=(ip_network("0.0.0.0/0"),))
    # when / then
    assert refusal("http://0.0.0.0/", everything).code == "blocked_address"
    assert refusal("http://224.0.0.1/", everything).code == "blocked_address"
    assert connects == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/a.jpg", "only http and https URLs can be fetched"),
        ("file:///etc/passwd", "only http and https URLs can be fetched"),
        ("gopher://example.com:70/_GET", "only http and https URLs can be fetched"),
        ("javascript:alert(1)", "only http and https URLs can be fetched"),
        ("data:image/png;base64,AAAA", "only http and https URLs can be fetched"),
        ("example.com/a.jpg", "only http and https URLs can be fetched"),
        ("http://user:pass@example.com/", "URLs with a user name or password are refused"),
        ("http://@example.com/", "URLs with a user name or password are refused"),
        ("http://example.com\\@127.0.0.1/", "URLs with a user name or password are refused"),
        ("http:///a.jpg", "the URL has no host"),
        ("http://", "the URL has no host"),
        ("http://example.com:0/", "port 0 is not a valid port"),
        ("http://example.com:99999/", "not a valid URL (Port out of range 0-65535)"),
        (
            "http://example.com:abc/",
            "not a valid URL (Port could not be cast to integer value as 'abc')",
        ),
        ("http://exa mple.com/", "'exa mple.com' is not a valid host name"),
        ("http://exa%6dple.com/", "'exa%6dple.com' is not a valid host name"),
        ("http://1.2.3.4.5/", "'1.2.3.4.5' is an ambiguous numeric host"),
        ("http://256.0.0.1/", "'256.0.0.1' is an ambiguous numeric host"),
        ("http://[fe80::1%25eth0]/", "IPv6 zone identifiers are refused"),
    ],
)
def test_fetch_refuses_bad_urls_before_resolving(
    url: str, message: str, connects: list[object]
) -> None:
    # given a resolver that would answer anything
    dns = FakeDNS(example_com=[["93.184.215.14"]])
    # when
    refused = refusal(url, FetchPolicy(), dns)
    # then
    assert (refused.code, refused.message) == ("bad_url", f"{url}: {message}")
    assert dns.calls == []
    assert connects == []


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ({}, "cannot resolve nowhere.test ([Errno -2] Name or service not known)"),
        ({"nowhere_test": [[]]}, "nowhere.test has no addresses"),
        (
            {"nowhere_test": [["not-an-ip"]]},
            "cannot resolve nowhere.test"
            " ('not-an-ip' does not appear to be an IPv4 or IPv6 address)",
        ),
    ],
)
def test_fetch_reports_unresolvable_hosts_as_dns(
    records: dict[str, list[list[str]]], message: str, connects: list[object]
) -> None:
    # given a resolver without a usable answer
    url = "http://nowhere.test/a.jpg"
    # when
    refused = refusal(url, FetchPolicy(), FakeDNS(**records))
    # then
    assert (refused.code, refused.message) == ("dns", f"{url}: {message}")
    assert connects == []


# --- SSRF: pinning and DNS rebinding ---------------------------------------------------------


def test_dns_rebinding_cannot_move_the_connection_off_the_checked_address(
    server: Server, other_server: Server
) -> None:
    # given a name that answers 127.0.0.1 (allowed) first and 127.0.0.2 (not allowed) after
    dns = FakeDNS(rebind_test=[["127.0.0.1"], ["127.0.0.2"]])
    policy = FetchPolicy(allow_networks=(ip_network("127.0.0.1/32"),))
    # when
    fetched = fetch(server.url("/image", host="rebind.test"), policy, resolver=dns)
    # then the request landed on the first answer's server, resolved exactly once
    assert fetched.data == IMAGE
    assert dns.calls == [("rebind.test", server.port)]
    assert [hit["host"] for hit in server.state.hits] == [f"rebind.test:{server.port}"]
    assert other_server.state.hits == []


def test_redirect_hop_is_resolved_again_and_a_rebound_answer_refused(
    server: Server, other_server: Server
) -> None:
    # given a redirect back to the same name, which now answers 127.0.0.2
    dns = FakeDNS(rebind_test=[["127.0.0.1"], ["127.0.0.2"]])
    policy = FetchPolicy(allow_networks=(ip_network("127.0.0.1/32"),))
    target = server.url("/image", host="rebind.test")
    url = server.url(f"/redirect?to={target}", host="rebind.test")
    # when
    refused = refusal(url, policy, dns)
    # then
    assert (refused.code, refused.message) == (
        "blocked_address",
        f"redirect 1 to {target} points to 127.0.0.2, which is not a public address",
    )
    assert dns.calls == [("rebind.test", server.port)] * 2
    assert len(server.state.hits) == 1
    assert other_server.state.hits == []


# --- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "blocked"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe"),
        ("http://2130706434:8080/admin", "127.0.0.2"),
        ("http://inside.test/", "10.0.0.7"),
    ],
)
def test_redirect_to_a_blocked_address_is_refused_naming_the_hop(
    server: Server, location: str, blocked: str, connects: list[object]
) -> None:
    # given a public-looking first hop (allow-listed as 127.0.0.1) that redirects inward
    dns = FakeDNS(inside_test=[["10.0.0.7"]])
    policy = FetchPolicy(allow_networks=(ip_network("127.0.0.1/32"),))
    url = server.url(f"/redirect?to={location}")
    # when
    refused = refusal(url, policy, dns)
    # then
    assert (refused.code, refused.message) == (
        "blocked_address",
        f"redirect 1 to {location} points to {blocked}, which is not a public address",
    )
    assert connects == [("127.0.0.1", server.port)]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_relative_redirect_is_followed_to_the_final_url(server: Server, status: int) -> None:
    # given a redirect with a relative Location
    url = server.url(f"/redirect?status={status}&to=/image")
    # when
    fetched = fetch(url, FetchPolicy(allow_networks=LOOPBACK))
    # then
    assert (fetched.url, fetched.data) == (server.url("/image"), IMAGE)
    paths = [hit["path"] for hit in server.state.hits]
    assert paths == [f"/redirect?status={status}&to=/image", "/image"]


@pytest.mark.parametrize(
    ("chain", "max_redirects", "code"),
    [(0, 0, None), (2, 2, None), (3, 2, "too_many_redirects"), (1, 0, "too_many_redirects")],
)
def test_max_redirects_is_enforced_exactly(
    server: Server, chain: int, max_redirects: int, code: str | None
) -> None:
    # given a chain of `chain` redirects
    url = server.url(f"/chain/{chain}")
    policy = FetchPolicy(allow_networks=LOOPBACK, max_redirects=max_redirects)
    # when
    outcome = attempt(url, policy)
    # then
    if code is None:
        assert outcome == Fetched(server.url("/chain/0"), b"end of chain", None)
    else:
        assert isinstance(outcome, FetchRefused)
        assert (outcome.code, outcome.message) == (
            code,
            f"{url}: more than {max_redirects} redirects",
        )


def test_redirect_loop_stops_after_max_redirects(server: Server) -> None:
    # given a URL that redirects to itself
    url = server.url("/loop")
    # when
    refused = refusal(url, FetchPolicy(allow_networks=LOOPBACK, max_redirects=5))
    # then
    assert (refused.code, refused.message) == (
        "too_many_redirects",
        f"{url}: more than 5 redirects",
    )
    assert len(server.state.hits) == 6


def test_redirect_to_another_scheme_is_a_bad_url(server: Server) -> None:
    # given a redirect to file://
    url = server.url("/redirect?to=file:///etc/passwd")
    # when
    refused = refusal(url, FetchPolicy(allow_networks=LOOPBACK))
    # then
    assert (refused.code, refused.message) == (
        "bad_url",
        "redirect 1 to file:///etc/passwd: only http and https URLs can be fetched",
    )


# --- limits and failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "max_bytes", "refused"),
    [
        ("/big", 1024, True),
        ("/big", 2048, False),
        ("/big-undeclared", 1024, True),
        ("/big-undeclared", 2048, False),
        ("/chunked", 2047, True),
        ("/chunked", 4096, False),
    ],
)
def test_body_cap_refuses_declared_and_streamed_oversize_bodies(
    server: Server, path: str, max_bytes: int, refused: bool
) -> None:
    # given a 2048-byte body with Content-Length, without it (read to close), and chunked
    url = server.url(path)
    policy = FetchPolicy(allow_networks=LOOPBACK, max_bytes=max_bytes)
    # when
    outcome = attempt(url, policy)
    # then
    if refused:
        assert isinstance(outcome, FetchRefused)
        assert (outcome.code, outcome.message) == (
            "too_large",
            f"{url}: larger than {max_bytes} bytes",
        )
    else:
        assert outcome == Fetched(url, b"b" * 2048, None)


def test_compressed_body_is_refused_not_decoded(server: Server) -> None:
    # given a server that gzips although identity was asked for (a 100 kB bomb in miniature)
    url = server.url("/gzip")
    # when
    refused = refusal(url, FetchPolicy(allow_networks=LOOPBACK))
    # then
    assert (refused.code, refused.message) == (
        "http_error",
        f"{url}: compressed body (gzip) sent although identity was asked",
    )
    assert server.state.hits[0]["accept-encoding"] == "identity"


@pytest.mark.parametrize("status", [400, 403, 404, 500, 503, 304, 302])
def test_error_statuses_are_http_errors_with_the_status(server: Server, status: int) -> None:
    # given a server answering `status` (the 302 without a Location)
    url = server.url(f"/status/{status}")
    # when
    refused = refusal(url, FetchPolicy(allow_networks=LOOPBACK))
    # then
    assert (refused.code, refused.message) == (
        "http_error",
        f"{url}: the server answered HTTP {status}",
    )


def test_slow_server_times_out(server: Server) -> None:
    # given a server that does not answer for 5 s
    url = server.url("/slow")
    # when
    refused = refusal(url, FetchPolicy(allow_networks=LOOPBACK, timeout_s=0.5))
    # then
    assert (refused.code, refused.message) == ("timeout", f"{url}: no answer within 0.5 s")


def test_slow_drip_is_cut_off_by_the_total_timeout(server: Server) -> None:
    # given a server that sends one byte every 50 ms, always within the per-read timeout
    url = server.url("/drip")
    policy = FetchPolicy(allow_networks=LOOPBACK, timeout_s=2.0, total_timeout_s=0.5)
    # when
    refused = refusal(url, policy)
    # then
    assert (refused.code, refused.message) == ("timeout", f"{url}: not finished within 0.5 s")


def test_closed_port_is_a_connection_refusal() -> None:
    # given a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/image"
    # when
    refused = refusal(url, FetchPolicy(allow_networks=LOOPBACK))
    # then
    assert refused.code == "connection"
    assert refused.message.startswith(f"{url}: cannot connect (")


# --- TLS: certificate and SNI checked against the name, not the pinned IP --------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for images.test (it is its own CA)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=images.test", "-keyout", str(key),
         "-out", str(cert), "-addext", "subjectAltName=DNS:images.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust our CA, as the system store would
    live = Server("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: live.state.sni.append(name)
    live.socket = context.wrap_socket(live.socket, server_side=True)
    yield from _serve(live)


def test_https_pins_the_ip_but_verifies_and_sends_sni_for_the_name(tls_server: Server) -> None:
    # given images.test resolving to the TLS server
    dns = FakeDNS(images_test=[["127.0.0.1"]])
    url = tls_server.url("/image", host="images.test", scheme="https")
    # when
    fetched = fetch(url, FetchPolicy(allow_networks=LOOPBACK), resolver=dns)
    # then
    assert fetched.data == IMAGE
    assert tls_server.state.sni == ["images.test"]
    assert tls_server.state.hits[0]["host"] == f"images.test:{tls_server.port}"


def test_https_certificate_for_another_name_is_refused(tls_server: Server) -> None:
    # given a name the certificate does not cover, resolving to the same server
    dns = FakeDNS(other_test=[["127.0.0.1"]])
    url = tls_server.url("/image", host="other.test", scheme="https")
    # when
    refused = refusal(url, FetchPolicy(allow_networks=LOOPBACK), dns)
    # then
    assert refused.code == "connection"
    assert "other.test" in refused.message
    assert tls_server.state.sni == ["other.test"]
    assert tls_server.state.hits == []


# --- fetch_many ------------------------------------------------------------------------------


def test_fetch_many_returns_outcomes_in_input_order_and_reports_each_once(
    server: Server,
) -> None:
    # given a mix of good, bad, missing, redirected and blocked URLs
    urls = [
        server.url("/image"),
        "ftp://example.com/a.jpg",
        server.url("/status/404"),
        server.url("/chain/1"),
        "http://10.0.0.1/",
        server.url("/image"),
    ]
    reported: list[tuple[str, str]] = []
    # when
    results = fetch_many(
        urls,
        FetchPolicy(allow_networks=LOOPBACK),
        resolver=FakeDNS(),
        on_done=lambda url, outcome: reported.append((url, type(outcome).__name__)),
    )
    # then
    summary = [
        (url, outcome.code if isinstance(outcome, FetchRefused) else outcome.data)
        for url, outcome in results
    ]
    assert summary == [
        (urls[0], IMAGE),
        (urls[1], "bad_url"),
        (urls[2], "http_error"),
        (urls[3], b"end of chain"),
        (urls[4], "blocked_address"),
        (urls[5], IMAGE),
    ]
    assert sorted(reported) == sorted(
        (url, "FetchRefused" if isinstance(o, FetchRefused) else "Fetched") for url, o in results
    )


def test_fetch_many_holds_one_host_to_per_host_concurrency(server: Server) -> None:
    # given six slow URLs on one host; each waits until two are in flight
    server.state.hold_target, server.state.hold_expected = 2, 6
    urls = [server.url(f"/hold/{n}") for n in range(6)]
    policy = FetchPolicy(allow_networks=LOOPBACK, concurrency=8, per_host_concurrency=2)
    # when
    results = fetch_many(urls, policy)
    # then
    assert [outcome for _, outcome in results] == [Fetched(url, IMAGE, None) for url in urls]
    assert server.state.max_in_flight["*"] == 2


def test_fetch_many_holds_all_hosts_to_overall_concurrency(server: Server) -> None:
    # given two URLs on each of three names for the same server
    server.state.hold_target, server.state.hold_expected = 3, 6
    dns = FakeDNS(a_test=[["127.0.0.1"]], b_test=[["127.0.0.1"]], c_test=[["127.0.0.1"]])
    urls = [server.url(f"/hold/{n}", host=f"{host}.test") for n in range(2) for host in "abc"]
    policy = FetchPolicy(allow_networks=LOOPBACK, concurrency=3, per_host_concurrency=1)
    # when
    results = fetch_many(urls, policy, resolver=dns)
    # then
    assert all(isinstance(outcome, Fetched) for _, outcome in results)
    assert server.state.max_in_flight == {
        "*": 3,
        f"a.test:{server.port}": 1,
        f"b.test:{server.port}": 1,
        f"c.test:{server.port}": 1,
    }


def test_fetch_many_spaces_starts_to_one_host(server: Server) -> None:
    # given three URLs on one host and a 0.2 s politeness gap
    dns = FakeDNS(polite_test=[["127.0.0.1"]])
    urls = [server.url(f"/image?n={n}", host="polite.test") for n in range(3)]
    policy = FetchPolicy(allow_networks=LOOPBACK, per_host_delay_s=0.2)
    started = time.monotonic()
    # when
    fetch_many(urls, policy, resolver=dns)
    # then the n-th fetch (which resolves first thing) began no sooner than n gaps in
    assert [resolved - started >= 0.2 * n for n, resolved in enumerate(dns.times)] == [True] * 3


def test_fetch_many_reuses_kept_alive_connections_per_pinned_address(server: Server) -> None:
    # given three URLs on one host fetched one at a time
    urls = [server.url(f"/image?n={n}") for n in range(3)]
    policy = FetchPolicy(allow_networks=LOOPBACK, concurrency=1)
    # when
    fetch_many(urls, policy)
    # then all three requests came over one connection
    assert len(set(server.state.client_ports)) == 1
    assert len(server.state.hits) == 3


def test_fetch_many_reraises_a_failing_callback(server: Server) -> None:
    # given a callback that fails
    def explode(url: str, outcome: Fetched | FetchRefused) -> None:
        raise RuntimeError(f"callback failed for {url}")

    # when / then
    with pytest.raises(RuntimeError, match="callback failed for"):
        fetch_many([server.url("/image")], FetchPolicy(allow_networks=LOOPBACK), on_done=explode)


def test_fetch_many_of_nothing_is_nothing() -> None:
    assert fetch_many([], FetchPolicy()) == []


# --- page_image_urls -------------------------------------------------------------------------

BASE = "https://site.test/gallery/index.html"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (b'<img src="a.jpg"><img src="/b.png">', [
            "https://site.test/gallery/a.jpg", "https://site.test/b.png"]),
        (b'<img src="small.jpg" srcset="small.jpg 320w, large.jpg 1280w, mid.jpg 640w">', [
            "https://site.test/gallery/small.jpg", "https://site.test/gallery/large.jpg"]),
        (b'<img srcset="one.jpg, two.jpg 2x, three.jpg 1.5x">', [
            "https://site.test/gallery/two.jpg"]),
        (b'<img srcset="https://cdn.test/w_100,h_100/c.jpg 100w,'
         b'https://cdn.test/w_900,h_900/c.jpg 900w">', [
            "https://cdn.test/w_900,h_900/c.jpg"]),
        (b'<picture><source srcset="p.webp 1x, p2.webp 2x"><img src="p.jpg"></picture>', [
            "https://site.test/gallery/p2.webp", "https://site.test/gallery/p.jpg"]),
        (b'<head><base href="https://cdn.test/img/"></head><img src="x.jpg">', [
            "https://cdn.test/img/x.jpg"]),
        (b'<base href="/static/"><img src="x.jpg">', ["https://site.test/static/x.jpg"]),
        (b'<meta property="og:image" content="https://site.test/og.jpg"><img src="/og.jpg#top">', [
            "https://site.test/og.jpg"]),
        (b'<a href="full.JPEG">big</a><a href="page.html">next</a><a href="i.png?s=2">s</a>', [
            "https://site.test/gallery/full.JPEG", "https://site.test/gallery/i.png?s=2"]),
        (b'<img src="data:image/png;base64,AAAA"><img src="javascript:alert(1)">'
         b'<img src="file:///etc/passwd"><img src="ftp://x.test/a.jpg"><img src="">', []),
        (b'<img src="a.jpg"><img src="./a.jpg"><a href="a.jpg">a</a>', [
            "https://site.test/gallery/a.jpg"]),
        (b"<img src='//other.test/x.gif'>", ["https://other.test/x.gif"]),
    ],
)  # fmt: skip
def test_page_image_urls_finds_images_in_document_order(html: bytes, expected: list[str]) -> None:
    assert page_image_urls(html, BASE) == expected


def test_page_image_urls_stops_at_the_limit() -> None:
    # given a page with ten images
    html = b"".join(b'<img src="%d.jpg">' % n for n in range(10))
    # when / then
    assert page_image_urls(html, BASE, limit=3) == [
        "https://site.test/gallery/0.jpg",
        "https://site.test/gallery/1.jpg",
        "https://site.test/gallery/2.jpg",
    ]
    assert page_image_urls(html, BASE, limit=0) == []
