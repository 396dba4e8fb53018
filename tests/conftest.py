"""Shared fixtures. CI must run on the real services: PostgreSQL and Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories import CategoryFactory, UserFactory


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI", "").lower() == "true":
        if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
            raise pytest.UsageError("CI must run on PostgreSQL: set DATABASE_URL (see .ci/run).")
        if not os.environ.get("REDIS_URL", "").startswith("redis://"):
            raise pytest.UsageError("CI must run with Redis: set REDIS_URL (see .ci/run).")
    _own_cache_database()


def _own_cache_database() -> None:
    """The suite's cache gets a Redis database of its own, next to the broker's, so the
    cache.clear() around every test never flushes Celery's queues and results. Children (the
    integration tests' Celery workers) inherit it through REDIS_CACHE_URL."""
    from urllib.parse import urlsplit, urlunsplit

    from django.conf import settings

    broker = os.environ.get("REDIS_URL", "")
    if not broker.startswith("redis://") or os.environ.get("REDIS_CACHE_URL"):
        return
    parts = urlsplit(broker)
    number = int(parts.path.strip("/") or 0)
    own = urlunsplit(parts._replace(path=f"/{(number + 1) % 16}"))
    os.environ["REDIS_CACHE_URL"] = own
    default = {**settings.CACHES["default"], "LOCATION": own}
    settings.CACHES = {**settings.CACHES, "default": default}


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Iterator[Path]:
    """Every test keeps its files in its own folders: media in ``tmp_path / "media"`` (made
    empty), checkpoints and exports in ``tmp_path / "checkpoints"`` and ``"exports"``, the
    three stores of config.file_stores on the local disk."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.CROWDNET_CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.CROWDNET_EXPORT_DIR = tmp_path / "exports"
    folders = {"default": root, "checkpoints": tmp_path / "checkpoints"}
    folders["exports"] = tmp_path / "exports"
    settings.STORAGES = {
        **settings.STORAGES,
        **{
            alias: {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(folder)},
            }
            for alias, folder in folders.items()
        },
    }
    yield root


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """PBKDF2 costs 0.3 s a login here; tests don't need its strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_reserved_images(settings) -> None:
    """No image is reserved for evaluation sets unless a test asks for it (the tests of
    training.services.evaluation do): other tests' fixtures count every accepted image."""
    settings.CROWDNET_EVAL_SHARE = 0.0


@pytest.fixture(autouse=True)
def _fresh_cache(settings) -> Iterator[None]:
    """Throttle counters and other cached state never leak between tests; the answer path
    reads each category's decided counts afresh (tests of the reuse set the seconds)."""
    from django.core.cache import cache

    from labeling.services.category_priors import counts_forget

    settings.CROWDNET_PRIOR_COUNTS_SECONDS = 0.0
    cache.clear()
    counts_forget()
    yield
    cache.clear()
    counts_forget()


@pytest.fixture
def curator(db):
    return UserFactory(username="cora", role="curator")


@pytest.fixture
def worker(db):
    return UserFactory(username="wendy", role="worker")


@pytest.fixture
def category(db):
    return CategoryFactory(name="cat", slug="cat", definition="a small domesticated feline")


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def curator_api(curator) -> APIClient:
    client = APIClient()
    client.force_login(curator)  # a session too, for the plain Django views (images)
    client.force_authenticate(curator)
    return client


@pytest.fixture
def worker_api(worker) -> APIClient:
    client = APIClient()
    client.force_login(worker)
    client.force_authenticate(worker)
    return client


def stored_files(root: Path) -> list[str]:
    """Every file under the media root, relative and sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
