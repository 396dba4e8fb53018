"""Task images for API clients: the task API gives signed, expiring image URLs that a token
client can load without a session, for the worker who holds the task only."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage
from rest_framework.test import APIClient

from labeling.api.image_urls import image_url_sign
from labeling.models import Candidate
from labeling.services.ingest import images_ingest
from tests.factories import PASSWORD, UserFactory, image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _pool(settings, category):
    settings.CROWDNET_GOLD_RATE = 0.0
    files = [(f"{i}.jpg", image_bytes(2000 + i, size=(80, 60))) for i in range(3)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    example = Candidate.objects.order_by("id").first()
    Candidate.objects.filter(pk=example.pk).update(state=Candidate.State.ACCEPTED)


def _token_client(username: str) -> APIClient:
    UserFactory(username=username, role="worker")
    client = APIClient()
    token = client.post(
        "/api/auth/token/", {"username": username, "password": PASSWORD}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"), dtype=float)


def _task(username: str = "tess") -> dict:
    return _token_client(username).get("/api/tasks/next/?kind=verify").json()


def test_a_token_client_loads_its_task_images_by_url_alone():
    task = _task()
    [item] = task["items"]
    [example] = task["examples"]
    anonymous = APIClient()  # no session, no token: the URL is enough

    image = anonymous.get(item["image_url"])
    thumb = anonymous.get(example)

    candidate = Candidate.objects.get(task_items__uid=item["id"])
    assert (image.status_code, image["Content-Type"]) == (200, "image/jpeg")
    stored = default_storage.open(candidate.image.train_copy.name).read()
    assert _pixels(_body(image)).shape == _pixels(stored).shape == (60, 80, 3)
    assert (thumb.status_code, thumb["Content-Type"]) == (200, "image/jpeg")


def test_a_token_in_the_header_loads_its_own_task_image_and_no_other():
    client = _token_client("tess")
    [item] = client.get("/api/tasks/next/?kind=verify").json()["items"]
    other = _task("olga")["items"][0]
    bare = item["image_url"].split("?")[0]

    assert client.get(bare).status_code == 200
    assert client.get(other["image_url"].split("?")[0]).status_code == 404
    assert client.get(other["image_url"]).status_code == 404  # signed-in: judged as itself


def test_an_expired_link_is_403(settings, monkeypatch):
    settings.CROWDNET_IMAGE_URL_SECONDS = 60
    [item] = _task()["items"]
    later = time.time() + 61
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)

    response = APIClient().get(item["image_url"])

    assert response.status_code == 403
    assert response.content == (
        b"This image link is invalid or has expired; ask the API for the task again."
    )


def _forged(url: str) -> list[str]:
    path, sig = url.split("?sig=")
    user, stamp, mac = sig.split("%3A")
    return [
        f"{path}?sig={user}%3A{stamp}%3A{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{path}?sig={int(user) + 1}%3A{stamp}%3A{mac}",
        f"{path}?sig=",
        f"{path}?sig={user}",
    ]


def test_forged_links_are_403_and_never_a_login_redirect():
    task = _task()
    [item] = task["items"]
    moved = task["examples"][0].split("?")[0] + "?" + item["image_url"].split("?")[1]

    codes = [APIClient().get(url).status_code for url in [*_forged(item["image_url"]), moved]]

    assert codes == [403] * 5


def test_a_link_signed_for_another_user_is_404():
    [item] = _task()["items"]
    olga = UserFactory(username="olga", role="worker")
    url = image_url_sign(item["image_url"].split("?")[0], olga.pk)

    assert APIClient().get(url).status_code == 404


def test_a_bad_token_is_401_not_a_redirect():
    [item] = _task()["items"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    response = client.get(item["image_url"].split("?")[0])

    assert response.status_code == 401


def test_a_browser_without_a_session_or_link_still_goes_to_the_login_page():
    [item] = _task()["items"]

    response = APIClient().get(item["image_url"].split("?")[0])

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/img/task/")


def test_each_worker_gets_bytes_of_their_own_for_an_image_the_same_every_time():
    # given two workers holding the same image (it needs three votes)
    [mine] = _task("tess")["items"]
    [theirs] = _task("olga")["items"]
    candidate = Candidate.objects.get(task_items__uid=mine["id"])
    assert Candidate.objects.get(task_items__uid=theirs["id"]) == candidate

    # when each loads it (one of them twice)
    first, again, other = (
        _body(APIClient().get(item["image_url"])) for item in [mine, mine, theirs]
    )

    # then the copies differ in bytes and in the pixels of a few JPEG blocks only (two 2x2
    # squares, each inside at most four 16x16 blocks), and each one is stable
    stored = default_storage.open(candidate.image.train_copy.name).read()
    assert first == again
    assert len({first, other, stored}) == 3
    changed = int((np.abs(_pixels(first) - _pixels(other)).max(axis=2) > 0).sum())
    assert 0 < changed <= 2 * 4 * 16 * 16
