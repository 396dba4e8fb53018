"""conftest refuses to run CI on the embedded defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_without_postgresql_is_refused():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["CI"] = "true"

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_ci_guard.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 4
    assert "CI must run on PostgreSQL: set DATABASE_URL (see .ci/run)." in result.stderr


def test_the_suites_cache_is_never_the_brokers_redis_database():
    from django.conf import settings
    from django.core.cache import cache

    broker = os.environ.get("REDIS_URL", "")
    if not broker.startswith("redis://"):  # the embedded defaults: a file cache, apart anyway
        assert settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache")
        assert settings.CELERY_BROKER_URL == "filesystem://"
        return
    number = int(broker.rsplit("/", 1)[1] or 0)
    own = f"{broker.rsplit('/', 1)[0]}/{(number + 1) % 16}"
    assert settings.CACHES["default"]["LOCATION"] == own
    assert os.environ["REDIS_CACHE_URL"] == own
    assert cache._servers == [own]
    assert broker == settings.CELERY_BROKER_URL
