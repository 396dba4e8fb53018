"""Scraping through the API and the command: real HTTP on loopback, SSRF refusals."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command

from config.celery import app as celery_app
from labeling.models import Image, ImageArrival, ImportJob
from tests.conftest import stored_files
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


class Site(BaseHTTPRequestHandler):
    """A tiny image site: two images, a page showing them, one missing file."""

    files: dict[str, tuple[str, bytes]] = {}

    def do_GET(self) -> None:
        if self.path not in self.files:
            self.send_error(404)
            return
        content_type, body = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    Site.files = {
        "/a.jpg": ("image/jpeg", image_bytes(50)),
        "/b.png": ("text/plain", image_bytes(51, "PNG")),  # wrong type: content is sniffed
        "/fake.jpg": ("image/jpeg", b"<html>not an image</html>"),
        "/gallery.html": (
            "text/html",
            b'<html><body><img src="a.jpg"><img srcset="b.png 2x"><img src="/nope.jpg">'
            b"</body></html>",
        ),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_scrape_job_fetches_urls_and_reports_each(
    settings, site, curator_api, category, eager_celery, django_capture_on_commit_callbacks
):
    # given loopback explicitly allowed (as an intranet would be)
    settings.CROWDNET_FETCH_ALLOW_NETWORKS = LOOPBACK
    urls = [f"{site}/a.jpg", f"{site}/b.png", f"{site}/fake.jpg", f"{site}/missing.jpg"]

    # when a curator starts a scrape of four URLs
    with django_capture_on_commit_callbacks(execute=True):
        response = curator_api.post(
            "/api/imports/scrape/", {"category": "cat", "urls": urls}, format="json"
        )

    # then the job is accepted, runs, and reports every URL
    assert response.status_code == 202
    uid = response.json()["uid"]
    job = curator_api.get(f"/api/imports/jobs/{uid}/").json()
    assert (job["status"], job["added"], job["duplicates"], job["rejected"]) == ("done", 2, 0, 2)
    assert [(i["name"], i["outcome"]) for i in job["report"]] == [
        (urls[0], "added"),
        (urls[1], "added"),
        (urls[2], "rejected"),
        (urls[3], "rejected"),
    ]
    assert "404" in job["report"][3]["reason"]
    assert sorted(Image.objects.values_list("source_url", flat=True)) == urls[:2]
    assert set(Image.objects.values_list("source", flat=True)) == {"url"}


def test_scrape_job_from_a_page_takes_its_images(
    settings, site, curator_api, category, eager_celery, django_capture_on_commit_callbacks
):
    settings.CROWDNET_FETCH_ALLOW_NETWORKS = LOOPBACK

    with django_capture_on_commit_callbacks(execute=True):
        response = curator_api.post(
            "/api/imports/scrape/",
            {"category": "cat", "page_url": f"{site}/gallery.html"},
            format="json",
        )

    job = ImportJob.objects.get(uid=response.json()["uid"])
    assert (job.status, job.added, job.rejected) == ("done", 2, 1)
    assert [row["name"] for row in job.report] == [
        f"{site}/a.jpg",
        f"{site}/b.png",
        f"{site}/nope.jpg",
    ]
    assert set(Image.objects.values_list("source", flat=True)) == {"page"}


def test_scrape_refuses_loopback_without_the_allow_list(
    settings,
    site,
    curator_api,
    category,
    eager_celery,
    django_capture_on_commit_callbacks,
    media_root,
):
    # given no allow-list: loopback is an internal address
    settings.CROWDNET_FETCH_ALLOW_NETWORKS = ()

    with django_capture_on_commit_callbacks(execute=True):
        response = curator_api.post(
            "/api/imports/scrape/", {"category": "cat", "urls": [f"{site}/a.jpg"]}, format="json"
        )

    job = ImportJob.objects.get(uid=response.json()["uid"])
    assert (job.status, job.added, job.rejected) == ("done", 0, 1)
    assert "127.0.0.1" in job.report[0]["reason"]
    assert Image.objects.count() == 0
    assert stored_files(media_root) == []


def test_scrape_page_that_is_internal_fails_the_job(
    settings, site, curator_api, category, eager_celery, django_capture_on_commit_callbacks
):
    settings.CROWDNET_FETCH_ALLOW_NETWORKS = ()

    with django_capture_on_commit_callbacks(execute=True):
        response = curator_api.post(
            "/api/imports/scrape/",
            {"category": "cat", "page_url": f"{site}/gallery.html"},
            format="json",
        )

    job = ImportJob.objects.get(uid=response.json()["uid"])
    assert job.status == "failed"
    assert "127.0.0.1" in job.error
    assert Image.objects.count() == 0


def test_scrape_command_reads_a_url_file(settings, site, category, tmp_path, capsys):
    settings.CROWDNET_FETCH_ALLOW_NETWORKS = LOOPBACK
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# cats\n{site}/a.jpg\n\n{site}/a.jpg\n{site}/missing.jpg\n")

    call_command("scrape_images", "--category", "cat", "--urls", str(listing), verbosity=0)

    assert capsys.readouterr().out == "2 URLs -> cat: 1 added, 0 duplicates, 1 rejected\n"
    assert ImageArrival.objects.get().source_url == f"{site}/a.jpg"


def test_scrape_command_page(settings, site, category, capsys):
    settings.CROWDNET_FETCH_ALLOW_NETWORKS = LOOPBACK

    call_command(
        "scrape_images", "--category", "cat", "--page", f"{site}/gallery.html", verbosity=0
    )

    assert capsys.readouterr().out == "3 URLs -> cat: 2 added, 0 duplicates, 1 rejected\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--category", "nope", "--page", "http://example.com/"], "No category with slug 'nope'"),
        (["--category", "cat", "--urls", "/no/such/file"], "/no/such/file is not a file of URLs."),
        (["--category", "cat", "--page", "http://127.0.0.1:9/"], "Could not read the page:"),
    ],
)
def test_scrape_command_errors(args, message, category):
    with pytest.raises(CommandError, match=message):
        call_command("scrape_images", *args, verbosity=0)
    assert Image.objects.count() == 0
