"""Import jobs: scraping URL lists and pages in the background, with a report per item."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

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
    """Record a scrape job and enqueue it once the row is committed; writes one job."""
    from labeling.tasks import import_job_run

    source = ImageSource.PAGE if page_url else ImageSource.URL
    params = {"page_url": page_url} if page_url else {"urls": clean_urls(urls)}
    with transaction.atomic():
        job = ImportJob.objects.create(
            source=source, category=category, created_by=created_by, params=params
        )
        transaction.on_commit(lambda: import_job_run.delay(job.pk))
    return job


def import_job_run(job_id: int) -> ImportJob:
    """Run a queued scrape job and store its report; a finished job is left as it is."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
            return job
        job.status, job.started_at = ImportJob.Status.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at"])
    try:
        page_url = job.params.get("page_url", "")
        urls = page_urls(page_url, fetch_policy()) if page_url else job.params.get("urls", [])
        report = scrape(
            category=job.category, uploader=job.created_by, urls=urls, source=job.source
        )
    except FetchRefused as error:
        job.status, job.error = ImportJob.Status.FAILED, error.message
    except Exception as error:
        log.exception("import job %s failed", job.pk)
        job.status, job.error = ImportJob.Status.FAILED, f"unexpected error: {error}"
    else:
        job.status = ImportJob.Status.DONE
        job.added, job.duplicates, job.rejected = report.added, report.duplicates, report.rejected
        job.report = [item.as_dict() for item in report.items]
    job.finished_at = timezone.now()
    job.save()
    return job


def import_jobs_fail_stale(*, older_than: timedelta = timedelta(hours=2)) -> int:
    """Mark jobs stuck in queued/running for too long as failed; returns how many."""
    return ImportJob.objects.filter(
        status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING],
        created_at__lt=timezone.now() - older_than,
    ).update(
        status=ImportJob.Status.FAILED,
        error="The job did not finish in time; start the import again.",
        finished_at=timezone.now(),
    )
