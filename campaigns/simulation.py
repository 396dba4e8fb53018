"""The crowd simulator's way in through a campaign link (``simulate_crowd --campaign SLUG``):
each simulated worker is a marketplace worker with a fixed external id who arrives at the
link as a browser does (a session cookie and a CSRF token, no API token), works its
assignment, claims the completion code, and arrives again with the next assignment id."""

from __future__ import annotations

import re
import time

import urllib3

from campaigns.models import Campaign, Marketplace
from campaigns.services.entry import external_worker_bind
from labeling.models import User

SANDBOX = "https://workersandbox.mturk.com"
CODE = re.compile(r'id="completion-code"[^>]*>([A-Z0-9]+)<')


def sim_worker_id(marketplace: str, seed: int, index: int) -> str:
    """The simulated worker's marketplace id, valid for the marketplace's pattern."""
    if marketplace == Marketplace.MTURK:
        return f"ASIM{seed % 10_000:04d}{index:06d}"
    return f"{seed % 2**32:08x}{index:08x}{0:08x}"


def _assignment_id(marketplace: str, seed: int, index: int, n: int) -> str:
    if marketplace == Marketplace.MTURK:
        return f"3SIM{seed % 10_000:04d}{index:06d}{n:08d}{time.time_ns() % 10**8:08d}"
    return f"{seed % 2**32:08x}{index:08x}{(time.time_ns() + n) % 2**32:08x}"


def campaign_workers_bind(slug: str, count: int, seed: int) -> list[User]:
    """The accounts the simulated workers will be given at the link (bound on first use,
    as entry binds them); writes the bindings and accounts that are new."""
    marketplace = Campaign.objects.get(slug=slug).marketplace
    return [
        external_worker_bind(
            marketplace=marketplace, external_id=sim_worker_id(marketplace, seed, i)
        ).user
        for i in range(count)
    ]


def _cookies(response: urllib3.BaseHTTPResponse, jar: dict[str, str]) -> None:
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]


class CampaignVisitor:
    """One simulated marketplace worker's session at the campaign link."""

    def __init__(self, http: urllib3.PoolManager, url: str, slug: str, seed: int, index: int):
        self.http, self.url, self.slug, self.seed, self.index = http, url, slug, seed, index
        self.marketplace = Campaign.objects.get(slug=slug).marketplace
        self.jar: dict[str, str] = {}
        self.assignment = ""
        self.entries = 0

    @property
    def headers(self) -> dict[str, str]:
        """What the labeling app sends: the session, the CSRF token, JSON."""
        return {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items()),
            "X-CSRFToken": self.jar.get("csrftoken", ""),
            "Origin": self.url,
            "Content-Type": "application/json",
        }

    @property
    def next_url(self) -> str:
        return f"{self.url}/api/campaigns/assignments/{self.assignment}/next/"

    def _params(self) -> dict[str, str]:
        worker = sim_worker_id(self.marketplace, self.seed, self.index)
        assignment = _assignment_id(self.marketplace, self.seed, self.index, self.entries)
        if self.marketplace == Marketplace.MTURK:
            return {
                "workerId": worker,
                "assignmentId": assignment,
                "hitId": f"3SIMHIT{self.seed % 10_000:04d}",
                "turkSubmitTo": SANDBOX,
            }
        return {"PROLIFIC_PID": worker, "STUDY_ID": f"{self.seed:024x}", "SESSION_ID": assignment}

    def enter(self, deadline: float) -> bool:
        """Arrive with a new assignment id; waits out the entry rate limit until
        ``deadline``. False when refused (paused, at the cap, campaign closed)."""
        self.entries += 1
        params = self._params()
        while time.monotonic() < deadline:
            response = self.http.request(
                "GET", f"{self.url}/c/{self.slug}/", fields=params, redirect=False,
                headers={"Cookie": self.headers["Cookie"]},
            )  # fmt: skip
            if response.status == 429:
                time.sleep(1.0)
                continue
            if response.status != 302:
                return False
            _cookies(response, self.jar)
            location = response.headers["Location"]
            self.assignment = location.rstrip("/").rsplit("/", 1)[1]
            page = self.http.request("GET", f"{self.url}{location}", headers=self.headers)
            _cookies(page, self.jar)
            return True
        return False

    def finish(self, deadline: float) -> bool:
        """Claim the finished assignment's code, then arrive with the next assignment."""
        done = f"{self.url}/c/{self.slug}/a/{self.assignment}/"
        page = self.http.request("GET", f"{done}done/", headers=self.headers)
        found = CODE.search(page.data.decode())
        if found is None:
            return False
        self.http.request(
            "POST", f"{done}claim/",
            fields={"code": found.group(1), "csrfmiddlewaretoken": self.jar.get("csrftoken", "")},
            encode_multipart=False, redirect=False,
            headers={k: v for k, v in self.headers.items() if k != "Content-Type"},
        )  # fmt: skip
        return self.enter(deadline)
