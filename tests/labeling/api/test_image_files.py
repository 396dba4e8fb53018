"""Serving stored images by opaque id, and who may see which copy."""

from __future__ import annotations

import pytest

from labeling.services.ingest import image_ingest
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(category):
    data = image_bytes(1, "PNG", size=(300, 200))
    item = image_ingest(data=data, name="a.png", category=category, source="upload", uploader=None)
    return item.image_uid, data


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_curator_gets_the_original_with_safe_headers(client, curator, stored):
    uid, data = stored
    client.force_login(curator)

    response = client.get(f"/img/{uid}/original/")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert _body(response) == data


def test_worker_gets_derived_copies_but_not_the_original(client, worker, stored):
    uid, _ = stored
    client.force_login(worker)

    thumb = client.get(f"/img/{uid}/thumb/")
    train = client.get(f"/img/{uid}/train/")

    assert (thumb.status_code, thumb["Content-Type"]) == (200, "image/jpeg")
    assert _body(thumb)[:3] == b"\xff\xd8\xff"
    assert (train.status_code, train["Content-Type"]) == (200, "image/jpeg")
    assert client.get(f"/img/{uid}/original/").status_code == 404


def test_anonymous_is_sent_to_login_and_unknown_ids_are_404(client, worker, stored):
    uid, _ = stored

    response = client.get(f"/img/{uid}/thumb/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    client.force_login(worker)
    assert client.get("/img/00000000-0000-0000-0000-000000000000/thumb/").status_code == 404
    assert client.get(f"/img/{uid}/secret/").status_code == 404
