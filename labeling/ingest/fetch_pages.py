"""The batch side of fetching: many URLs at once, and the image URLs an HTML page names.

``fetch_many`` runs ``fetch.fetch`` (and so its SSRF rules) on worker threads with overall and
per-host limits; ``page_image_urls`` is pure parsing of a fetched page.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup, Tag

from labeling.ingest.fetch import Fetched, FetchPolicy, FetchRefused, PinnedPools, Resolver, fetch

Outcome = Fetched | FetchRefused

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif")
"""Lower-case path endings that make an ``<a href>`` count as a link to an image."""

IMAGE_META_KEYS = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"}
)
"""``<meta property|name>`` values whose ``content`` names the page's preview image."""

_DESCRIPTOR = re.compile(r"^(\d+(?:\.\d+)?)([wx])$")


def fetch_many(
    urls: Sequence[str],
    policy: FetchPolicy,
    *,
    resolver: Resolver | None = None,
    on_done: Callable[[str, Outcome], None] | None = None,
) -> list[tuple[str, Outcome]]:
    """Fetch ``urls`` on worker threads; return (url, Fetched or FetchRefused) in input order.

    At most ``policy.concurrency`` fetches run at once, at most ``per_host_concurrency`` per
    host name, and starts to one host are ``per_host_delay_s`` apart. ``on_done`` is called
    as each finishes, on a worker thread but never two at once. An unexpected exception (from
    ``on_done`` or a bug) stops new fetches and is re-raised here after the workers stop.
    """
    results: list[Outcome | None] = [None] * len(urls)
    schedule = _HostSchedule(urls, policy)
    callback_lock = threading.Lock()
    failures: list[Exception] = []

    def work(pools: PinnedPools) -> None:
        while (job := schedule.take()) is not None:
            index, host = job
            try:
                outcome = _outcome(urls[index], policy, resolver, pools)
                results[index] = outcome
                if on_done is not None:
                    with callback_lock:
                        on_done(urls[index], outcome)
            except Exception as exc:
                failures.append(exc)
                schedule.cancel()
            finally:
                schedule.release(host)

    with PinnedPools(policy) as pools:
        workers = [
            threading.Thread(target=work, args=(pools,), name=f"fetch-{n}", daemon=True)
            for n in range(min(policy.concurrency, len(urls)))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    if failures:
        raise failures[0]
    return [(url, _done(outcome)) for url, outcome in zip(urls, results, strict=True)]


def _outcome(
    url: str, policy: FetchPolicy, resolver: Resolver | None, pools: PinnedPools
) -> Outcome:
    """``fetch``'s result, with a refusal returned rather than raised."""
    try:
        return fetch(url, policy, resolver=resolver, pool=pools)
    except FetchRefused as refused:
        return refused


def _done(outcome: Outcome | None) -> Outcome:
    """A finished slot; every slot is filled once the workers ended without a failure."""
    assert outcome is not None
    return outcome


class _HostSchedule:
    """Hands out URL indexes so each host stays under its concurrency and start-gap limits."""

    def __init__(self, urls: Sequence[str], policy: FetchPolicy) -> None:
        self._per_host = policy.per_host_concurrency
        self._delay_s = policy.per_host_delay_s
        self._queues: dict[str, list[int]] = {}
        for index, url in enumerate(urls):
            self._queues.setdefault(_host_key(url), []).append(index)
        for queue in self._queues.values():
            queue.reverse()  # pop() from the end takes them in input order
        self._active: dict[str, int] = dict.fromkeys(self._queues, 0)
        self._next_start: dict[str, float] = dict.fromkeys(self._queues, 0.0)
        self._changed = threading.Condition()

    def take(self) -> tuple[int, str] | None:
        """Block until some host may start another fetch; ``None`` once nothing is left."""
        with self._changed:
            while self._queues:
                now = time.monotonic()
                wait_s: float | None = None
                for host, queue in self._queues.items():
                    if self._active[host] >= self._per_host:
                        continue
                    if self._next_start[host] > now:
                        gap = self._next_start[host] - now
                        wait_s = gap if wait_s is None else min(wait_s, gap)
                        continue
                    index = queue.pop()
                    if not queue:
                        del self._queues[host]
                    self._active[host] += 1
                    self._next_start[host] = now + self._delay_s
                    return index, host
                self._changed.wait(wait_s)
            return None

    def release(self, host: str) -> None:
        """Mark one fetch to ``host`` finished."""
        with self._changed:
            self._active[host] -= 1
            self._changed.notify_all()

    def cancel(self) -> None:
        """Drop every URL not yet handed out."""
        with self._changed:
            self._queues.clear()
            self._changed.notify_all()


def _host_key(url: str) -> str:
    """The lower-case host name politeness limits count against ("" when unparseable)."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def page_image_urls(html: bytes, base_url: str, *, limit: int = 500) -> list[str]:
    """Return up to ``limit`` absolute http(s) image URLs found in ``html``, in document order.

    Looks at ``<img src>``, the largest candidate of ``<img srcset>`` and ``<source srcset>``,
    ``<meta property="og:image">`` (and its ``og:image:url`` / ``twitter:image`` variants) and
    ``<a href>`` whose path ends in an image extension. Relative URLs resolve against the first
    ``<base href>`` (itself resolved against ``base_url``) or ``base_url``; fragments are dropped;
    anything that is not http(s) (``data:``, ``javascript:``, ``file:``) is skipped; each URL
    appears once, at its first position.
    """
    if limit <= 0:
        return []
    soup = BeautifulSoup(html, "html.parser")
    base = _document_base(soup, base_url)
    found: dict[str, None] = {}
    for tag in soup.find_all(["img", "source", "meta", "a"]):
        if not isinstance(tag, Tag):
            continue
        for raw in _candidates(tag):
            url = _absolute_http_url(base, raw)
            if url is None or (tag.name == "a" and not _looks_like_image(url)):
                continue
            found.setdefault(url, None)
            if len(found) >= limit:
                return list(found)
    return list(found)


def _candidates(tag: Tag) -> list[str]:
    """The raw (unresolved) URL strings one element offers, in attribute order."""
    if tag.name == "img":
        return [value for value in (_attr(tag, "src"), _srcset_largest(tag)) if value]
    if tag.name == "source":
        largest = _srcset_largest(tag)
        return [largest] if largest else []
    if tag.name == "meta":
        key = (_attr(tag, "property") or _attr(tag, "name") or "").lower()
        content = _attr(tag, "content")
        return [content] if key in IMAGE_META_KEYS and content else []
    href = _attr(tag, "href")
    return [href] if href else []


def _attr(tag: Tag, name: str) -> str | None:
    """A single-valued attribute, stripped; ``None`` when absent or empty."""
    value = tag.get(name)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _document_base(soup: BeautifulSoup, base_url: str) -> str:
    """The URL relative references resolve against: ``<base href>`` when it is http(s)."""
    base_tag = soup.find("base", href=True)
    if isinstance(base_tag, Tag):
        href = _attr(base_tag, "href")
        resolved = _absolute_http_url(base_url, href) if href else None
        if resolved is not None:
            return resolved
    return base_url


def _absolute_http_url(base: str, raw: str) -> str | None:
    """``raw`` resolved against ``base`` without its fragment, or ``None`` unless http(s)."""
    try:
        url = urldefrag(urljoin(base, raw)).url
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def _looks_like_image(url: str) -> bool:
    """Whether the URL's path (not its query) ends in a known image extension."""
    return urlsplit(url).path.lower().endswith(IMAGE_EXTENSIONS)


def _srcset_largest(tag: Tag) -> str | None:
    """The URL of the widest (``w``) or densest (``x``) candidate in ``srcset``; first on ties."""
    srcset = _attr(tag, "srcset")
    if srcset is None:
        return None
    best: tuple[int, float, str] | None = None
    for url, descriptor in _srcset_candidates(srcset):
        match = _DESCRIPTOR.match(descriptor) if descriptor else None
        if descriptor and match is None:
            continue
        is_width = match is not None and match.group(2) == "w"
        size = float(match.group(1)) if match is not None else 1.0
        rank = (int(is_width), size, url)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return best[2] if best is not None else None


def _srcset_candidates(srcset: str) -> list[tuple[str, str]]:
    """Split ``srcset`` into (url, descriptor) pairs the way the HTML standard does.

    A URL is a run of non-space characters (so it may contain commas); a URL ending in a comma
    has no descriptor; otherwise the descriptor runs to the next comma.
    """
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(srcset):
        while position < len(srcset) and (srcset[position].isspace() or srcset[position] == ","):
            position += 1
        start = position
        while position < len(srcset) and not srcset[position].isspace():
            position += 1
        url = srcset[start:position]
        if not url:
            break
        if url.endswith(","):
            pairs.append((url.rstrip(","), ""))
            continue
        end = srcset.find(",", position)
        end = len(srcset) if end == -1 else end
        pairs.append((url, srcset[position:end].strip().lower()))
        position = end + 1
    return pairs
