"""The heartbeat of a running attempt, in a thread of its own from the moment it claims the
job, so the job looks alive while the work blocks (loading images and weights, a slow fetch,
a long query) and is known dead as soon as it stops."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from django.conf import settings
from django.db import connections

from jobs.services import Claim, JobCancelled, JobLost, job_cancel_requested, job_heartbeat

log = logging.getLogger(__name__)


class JobBeat:
    """``with JobBeat(claim) as beat:`` beats every CROWDNET_JOBS_HEARTBEAT_SECONDS until the
    block ends. The work calls ``beat.check()`` between units: it raises JobLost once the
    job was taken away and JobCancelled once a cancel was asked for."""

    def __init__(self, claim: Claim, interval: float | None = None) -> None:
        self.claim = claim
        self.interval = interval or settings.CROWDNET_JOBS_HEARTBEAT_SECONDS
        self.lost = threading.Event()
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat {claim.kind.name} {claim.pk}", daemon=True
        )

    def __enter__(self) -> JobBeat:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> JobBeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        # Bounded: a beat blocked on a lock (only inside a test's transaction) must not hang
        # the attempt; a late beat writes nothing once the job has ended.
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not job_heartbeat(self.claim):
                        self.lost.set()
                        return
                    if job_cancel_requested(self.claim):
                        self.cancelled.set()
                except Exception:  # a database hiccup: try again at the next beat
                    log.warning("%s %s: heartbeat failed", self.claim.kind.name, self.claim.pk)
        finally:
            connections.close_all()  # this thread's own connections

    @property
    def should_stop(self) -> bool:
        return self.lost.is_set() or self.cancelled.is_set()

    def check(self) -> None:
        """Raise JobLost or JobCancelled when the work must stop."""
        if self.lost.is_set():
            raise JobLost(f"{self.claim.kind.name} {self.claim.pk} was taken away")
        if self.cancelled.is_set():
            raise JobCancelled
