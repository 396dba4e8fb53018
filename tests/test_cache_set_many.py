"""The Redis cache's set_many: every key with its expiry, in one pipeline."""

from __future__ import annotations

import pytest
from django.core.cache import cache, caches

from config.cache import RedisCache


@pytest.fixture(autouse=True)
def _redis() -> None:
    if not isinstance(caches["default"], RedisCache):
        pytest.skip("the Redis cache is CI's (REDIS_URL)")


def _ttl(key: str) -> int:
    return cache._cache.get_client(None).ttl(cache.make_and_validate_key(key))


def test_set_many_stores_every_key_with_its_expiry():
    cache.set_many({"a": [1.5, 2.5], "b": {"x": 1}}, 60)

    assert cache.get_many(["a", "b"]) == {"a": [1.5, 2.5], "b": {"x": 1}}
    assert 55 <= _ttl("a") <= 60
    assert 55 <= _ttl("b") <= 60


def test_set_many_without_a_timeout_keeps_the_keys_and_with_zero_drops_them():
    cache.set_many({"kept": 1, "dropped": 2}, None)
    assert (_ttl("kept"), _ttl("dropped")) == (-1, -1)  # no expiry

    cache.set_many({"dropped": 3}, 0)

    assert cache.get_many(["kept", "dropped"]) == {"kept": 1}
