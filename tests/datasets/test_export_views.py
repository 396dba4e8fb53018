"""The exports page: workers are kept out, a bad choice is shown on the form, and a curator
cancels only their own exports."""

from __future__ import annotations

import pytest
from django.test import Client

from datasets.models import DatasetExport
from tests.factories import UserFactory, photos_version

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_workers_cannot_open_the_exports_page(worker):
    response = _client(worker).get("/curate/exports/")

    assert response.status_code == 403


def test_a_service_refusal_shows_on_the_form_and_writes_nothing(curator, monkeypatch):
    from datasets.services import exports

    monkeypatch.setattr(exports, "_enqueue", lambda export_id: None)
    version = photos_version()

    response = _client(curator).post(
        "/curate/exports/",
        {
            "version": version.number,
            "format": "imagefolder",
            "archive": "zip",
            "min_confidence": "0",
            "splits": ["train", "val"],
            "image_size": "original",
            "folder_naming": "slug",
        },
    )

    assert response.status_code == 200
    assert (
        "imagefolder is made of the images: it cannot leave them out." in response.content.decode()
    )
    assert DatasetExport.objects.count() == 0


def test_a_curator_cancels_their_own_export_only(curator):
    version = photos_version()
    mine = DatasetExport.objects.create(version=version, format="csv", requested_by=curator)
    other = UserFactory(username="otto", role="curator")
    theirs = DatasetExport.objects.create(version=version, format="csv", requested_by=other)
    client = _client(curator)

    cancelled = client.post("/curate/exports/", {"action": "cancel", "export": str(mine.uid)})
    refused = client.post("/curate/exports/", {"action": "cancel", "export": str(theirs.uid)})

    assert cancelled.status_code == 302 and refused.status_code == 404
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("cancelled", "queued")
    page = client.get("/curate/exports/").content.decode()
    assert page.count("data-export=") == 1


def test_an_annotation_import_from_the_page_lists_bad_records_or_lands(curator):
    from labeling.models import Candidate
    from tests.factories import image_bytes, zip_of

    client = _client(curator)
    bad = client.post(
        "/curate/exports/import/",
        {"archive": zip_of({"stray.jpg": image_bytes(1)}), "format": "imagefolder"},
    )
    good = client.post(
        "/curate/exports/import/",
        {"archive": zip_of({"owl/a.jpg": image_bytes(2)}), "format": "imagefolder"},
        follow=True,
    )

    assert bad.status_code == 400
    assert "<code>stray.jpg</code>: an image outside any class folder" in bad.content.decode()
    assert "Imported 1 images, 1 labels and 0 boxes." in good.content.decode()
    assert list(Candidate.objects.values_list("category__slug", "state")) == [("owl", "accepted")]


def _defaults(form) -> dict[str, object]:
    """What a browser posts for an untouched form: each field's initial value, else the first
    choice of a select; unticked boxes are left out."""
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if (
            value is None
            and getattr(field, "choices", None)
            and field.widget.input_type == "select"
        ):
            value = next(iter(field.choices))[0]
        if value is True:
            data[name] = "on"
        elif value is not None and value is not False and value != []:
            data[name] = value
    return data


def test_the_forms_default_choices_ask_for_a_new_snapshot_and_queue_it(
    curator, monkeypatch, django_capture_on_commit_callbacks
):
    from datasets.forms import ExportForm
    from datasets.services import exports
    from datasets.views import _version_choices

    sent: list[int] = []
    monkeypatch.setattr(exports, "_enqueue", sent.append)
    photos_version()
    data = _defaults(ExportForm(versions=_version_choices()))

    with django_capture_on_commit_callbacks(execute=True):
        response = _client(curator).post("/curate/exports/", data)

    assert data["version"] == ""
    assert response.status_code == 302
    export = DatasetExport.objects.get()
    assert (export.version.number, export.format, export.archive) == (2, "imagefolder", "zip")
    assert export.images_total == 18
    assert sent == [export.pk]
