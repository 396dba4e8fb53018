"""The embedding cache: exact hits, only misses computed, atomic shards, concurrent writers."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.ml.backbones import Backbone, backbone_build
from training.ml.data import image_decode, preprocess_for
from training.ml.embeddings import EmbeddingCache, embed, shard_key
from training.ml.loop import TrainingCancelled

SHARD = shard_key("lenet5", "random:0", "p1-s32-r37-c1-n00000000")


def _image(seed: int) -> tuple[bytes, str]:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(40, 40), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def _counting(backbone: Backbone) -> list[int]:
    """Images through the trunk, one entry per forward call."""
    calls: list[int] = []
    backbone.net.trunk.register_forward_hook(lambda _m, inputs, _o: calls.append(len(inputs[0])))
    return calls


def test_put_then_get_returns_stored_vectors_and_only_known_keys(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache", dtype=np.float16)
    vectors = np.array([[1.0, 2.0], [3.0, 4.0], [0.1, 5.0]], dtype=np.float32)

    cache.put_many(["c" * 64, "a" * 64, "b" * 64], SHARD, vectors)
    cache.put_many(["a" * 64], SHARD, np.array([[9.0, 9.0]]))
    found = cache.get_many(["a" * 64, "d" * 64, "b" * 64], SHARD)

    assert sorted(found) == ["a" * 64, "b" * 64]
    assert found["a" * 64].tolist() == [9.0, 9.0]
    assert found["b" * 64].tolist() == np.float16([0.1, 5.0]).astype(np.float32).tolist()
    assert cache.get_many(["a" * 64], shard_key("lenet5", "random:1", "p1")) == {}
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".lock", ".npy"]


def test_float16_refuses_vectors_it_would_zero(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache", dtype=np.float16)

    with pytest.raises(ValueError, match="underflow"):
        cache.put_many(["a" * 64], SHARD, np.array([[1e-9, 1.0]]))
    with pytest.raises(ValueError, match="overflow"):
        cache.put_many(["a" * 64], SHARD, np.array([[1e6, 1.0]]))

    assert not (tmp_path / "cache").exists()


def test_two_writers_at_once_lose_nothing(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache")

    def writer(offset: int) -> None:
        for batch in range(5):
            keys = [f"{offset}-{batch}-{i}" for i in range(10)]
            cache.put_many(keys, SHARD, np.full((10, 3), offset, dtype=np.float32))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    keys = [f"{n}-{b}-{i}" for n in range(4) for b in range(5) for i in range(10)]
    found = cache.get_many(keys, SHARD)
    assert len(found) == 200
    assert all(found[key][0] == float(key.split("-")[0]) for key in keys)
    assert not [p for p in (tmp_path / "cache").iterdir() if p.suffix == ".tmp"]


def test_embed_computes_only_what_the_cache_lacks(tmp_path: Path) -> None:
    # given five images, one of them twice
    backbone = backbone_build("lenet5", 10)
    calls = _counting(backbone)
    cache = EmbeddingCache(tmp_path / "cache")
    items = [_image(seed) for seed in range(5)]

    # when embedded twice
    first = embed(backbone, [*items, items[0]], cache, weights_id="random:0", batch_size=2)
    computed_first = sum(calls)
    second = embed(backbone, items, cache, weights_id="random:0", batch_size=2)

    # then the second time nothing went through the trunk, and the numbers are the same
    assert first.shape == (6, 84)
    assert first.dtype == np.float32
    assert computed_first == 5
    assert sum(calls) == 5
    assert np.array_equal(first[:5], second)
    assert np.array_equal(first[5], first[0])
    assert backbone.net.trunk.training is True

    # when one new image joins, only it is computed
    embed(backbone, [*items, _image(99)], cache, weights_id="random:0")
    assert calls[-1] == 1 and sum(calls) == 6

    # when the weights id or the input size changes, everything misses
    embed(backbone, items, cache, weights_id="random:1")
    assert sum(calls) == 11
    embed(backbone, items, cache, weights_id="random:0", size=34)
    assert sum(calls) == 16


def test_embed_matches_the_trunk_in_eval_mode(tmp_path: Path) -> None:
    backbone = backbone_build("lenet5", 10)
    data, sha = _image(7)

    cache = EmbeddingCache(tmp_path)
    vector = embed(backbone, [(data, sha)], cache, weights_id="x", device="cpu")

    tensor = preprocess_for(backbone)(image_decode(data))[None]
    with torch.no_grad():
        expected = backbone.net.trunk.eval()(tensor).numpy()
    assert np.allclose(vector, expected, atol=1e-6)


def test_cancelled_embedding_keeps_what_it_computed(tmp_path: Path) -> None:
    backbone = backbone_build("lenet5", 10)
    cache = EmbeddingCache(tmp_path / "cache")
    items = [_image(seed) for seed in range(4)]
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) == 2

    with pytest.raises(TrainingCancelled):
        embed(backbone, items, cache, weights_id="random:0", batch_size=2, should_stop=should_stop)

    # then the first batch of two was stored: only the other two are computed now
    calls = _counting(backbone)
    embed(backbone, items, cache, weights_id="random:0", batch_size=2)
    assert calls == [2]
