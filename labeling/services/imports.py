"""Import jobs: scraping URL lists and pages in the background, with a report per item."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.beat import JobBeat
from jobs.kinds import IMPORT
from jobs.services import (
    CancelOutcome,
    JobCancelled,
    JobLost,
    job_cancel,
    job_claim,
    job_enqueue_on_commit,
    job_finish,
    job_sweep,
)
from labeling.ingest.fetch import FetchPolicy, FetchRefused, fetch
from labeling.ingest.fetch_pages import fetch_many, page_image_urls
from labeling.ingest.pipeline import Rejection
from labeling.models import Category, ImageSource, ImportJob, User
from labeling.services.ingest import IngestReport, Progress, Source, images_ingest

log = logging.getLogger(__name__)

FETCH_CHUNK = 32
HTML_MARKERS = (b"<html", b"<!doctype html", b"<head", b"<body", b"<img")


def fetch_policy() -> FetchPolicy:
    """Fetch limits from settings."""
    return FetchPolicy(
        timeout_s=settings.CROWDNET_FETCH_TIMEOUT_S,
        max_bytes=settings.CROWDNET_FETCH_MAX_BYTES,
        max_redirects=settings.CROWDNET_FETCH_MAX_REDIRECTS,
        concurrency=settings.CROWDNET_FETCH_CONCURRENCY,
        per_host_concurrency=settings.CROWDNET_FETCH_PER_HOST,
        per_host_delay_s=settings.CROWDNET_FETCH_PER_HOST_DELAY_S,
        allow_networks=settings.CROWDNET_FETCH_ALLOW_NETWORKS,
    )


def clean_urls(urls: Sequence[str]) -> list[str]:
    """Stripped, de-duplicated URLs in order; blank lines and # comments dropped."""
    seen: dict[str, None] = {}
    for raw in urls:
        url = raw.strip()
        if url and not url.startswith("#"):
            seen.setdefault(url, None)
    return list(seen)


def fetched_sources(urls: Sequence[str], policy: FetchPolicy) -> Iterator[Source]:
    """Download ``urls`` in chunks (bounded memory) as ingest sources or rejections."""
    for start in range(0, len(urls), FETCH_CHUNK):
        for url, result in fetch_many(urls[start : start + FETCH_CHUNK], policy):
            if isinstance(result, FetchRefused):
                yield Rejection(name=url, code=result.code, message=result.message)
            else:
                yield (url, result.data, result.url)


def page_urls(page_url: str, policy: FetchPolicy) -> list[str]:
    """The image URLs an HTML page shows; raises FetchRefused when the page can't be used."""
    page = fetch(page_url, policy)
    head = page.data[:4096].lower()
    if not any(marker in head for marker in HTML_MARKERS):
        raise FetchRefused("not_html", f"{page_url} did not return an HTML page.")
    return page_image_urls(page.data, page.url, limit=settings.CROWDNET_FETCH_MAX_URLS)


def scrape(
    *,
    category: Category,
    uploader: User | None,
    urls: Sequence[str],
    source: str = ImageSource.URL,
    progress: Progress | None = None,
) -> IngestReport:
    """Fetch images from ``urls`` (at most CROWDNET_FETCH_MAX_URLS) into ``category``."""
    targets = clean_urls(urls)[: settings.CROWDNET_FETCH_MAX_URLS]
    return images_ingest(
        files=fetched_sources(targets, fetch_policy()),
        category=category,
        source=source,
        uploader=uploader,
        progress=progress,
    )


def scrape_job_create(
    *, category: Category, created_by: User, urls: Sequence[str] = (), page_url: str = ""
) -> ImportJob:
    """Record a scrape job and send it to a worker once the row is committed; writes one job."""
    source = ImageSource.PAGE if page_url else ImageSource.URL
    params = {"page_url": page_url} if page_url else {"urls": clean_urls(urls)}
    with transaction.atomic():
        job = ImportJob.objects.create(
            source=source, category=category, created_by=created_by, params=params
        )
        job_enqueue_on_commit(IMPORT, job.pk)
    return job


def _enqueue(job_id: int) -> None:
    from labeling.tasks import import_job_run

    import_job_run.delay(job_id)


def import_job_run(job_id: int) -> ImportJob:
    """Run a queued scrape job and store its report. Claimed first (a message delivered twice
    runs once); beats a heartbeat throughout; a cancel is seen between two items; the outcome
    is written only while this attempt still owns the job."""
    claim = job_claim(IMPORT, job_id, started_at=timezone.now())
    job = ImportJob.objects.select_related("category", "created_by").get(pk=job_id)
    if claim is None:
        return job
    outcome: dict[str, object] = {}
    with JobBeat(claim) as beat:
        try:
            page_url = job.params.get("page_url", "")
            urls = page_urls(page_url, fetch_policy()) if page_url else job.params.get("urls", [])
            beat.check()
            report = scrape(
                category=job.category,
                uploader=job.created_by,
                urls=urls,
                source=job.source,
                progress=lambda item: beat.check(),
            )
        except JobLost:
            log.warning("import job %s was taken from this worker; it stops", job.pk)
        except JobCancelled:
            outcome = {"status": ImportJob.Status.CANCELLED}
        except FetchRefused as error:
            outcome = {"status": ImportJob.Status.FAILED, "error": error.message}
        except Exception as error:
            log.exception("import job %s failed", job.pk)
            outcome = {"status": ImportJob.Status.FAILED, "error": f"unexpected error: {error}"}
        else:
            outcome = {
                "status": ImportJob.Status.DONE,
                "added": report.added,
                "duplicates": report.duplicates,
                "rejected": report.rejected,
                "report": [item.as_dict() for item in report.items],
            }
    if outcome:
        job_finish(claim, **outcome)  # type: ignore[arg-type]
    job.refresh_from_db()
    return job


def import_job_cancel(*, job: ImportJob) -> CancelOutcome:
    """Cancel a scrape job in any state (a finished one is left as it is)."""
    return job_cancel(IMPORT, job.pk)


def import_jobs_fail_stale() -> int:
    """The sweep, for import jobs only (kept for schedules that still name it)."""
    return len(job_sweep(IMPORT))
