"""A disk cache of trunk embeddings, so feature extraction embeds each image once.

An entry is keyed by (image sha256, backbone name, weights id, preprocess key); the last three
form the shard key, and each shard is one ``.npy`` file of a structured array, sorted by image
key, with fields ``key`` (ASCII, at most 64 bytes) and ``vector`` (float16 or float32,
feature_dim). The sorted keys are the index: lookups are a vectorised binary search on a
memory map, reading only the rows asked for.

Writers merge under an exclusive ``flock`` on a lock file beside the shard, write a temporary
file, fsync it and ``os.replace`` it over the shard, so readers (who take no lock) see the old
shard or the new one, never half a file, and two writing processes never lose each other's
entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from training.ml.backbones import Backbone
from training.ml.data import ImageDataset, ImageSource, data_loader, preprocess_for, preprocess_key
from training.ml.loop import TrainingCancelled, device_resolve

KEY_BYTES = 64  # a hex sha256


def shard_key(backbone_name: str, weights_id: str, preprocessing: str) -> str:
    """The shard an embedding belongs to: backbone name, weights id and preprocess key."""
    return f"{backbone_name}|{weights_id}|{preprocessing}"


class EmbeddingCache:
    """Embeddings on disk under `root`, one shard file per (backbone, weights, preprocessing).

    float32 by default: float16 halves the disk but cannot hold every trunk's features (a
    randomly initialised EfficientNet-Lite0 gives values near 1e-9, below float16's range).
    """

    def __init__(self, root: Path, dtype: type[np.floating] = np.float32) -> None:
        if np.dtype(dtype) not in (np.dtype(np.float16), np.dtype(np.float32)):
            raise ValueError("embeddings are stored as float16 or float32")
        self.root = Path(root)
        self.dtype = np.dtype(dtype)

    def shard_path(self, backbone_key: str) -> Path:
        """The shard's file: a readable slug of the key plus a hash of the exact key."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", backbone_key)[:120]
        digest = hashlib.sha256(backbone_key.encode()).hexdigest()[:12]
        return self.root / f"{slug}-{digest}.npy"

    def get_many(self, keys: Sequence[str], backbone_key: str) -> dict[str, np.ndarray]:
        """The cached float32 vectors of those `keys` that the shard holds."""
        path = self.shard_path(backbone_key)
        if not keys or not path.exists():
            return {}
        wanted = _key_array(keys)
        shard = np.load(path, mmap_mode="r", allow_pickle=False)
        stored = shard["key"]
        position = np.minimum(np.searchsorted(stored, wanted), len(stored) - 1)
        hits = np.flatnonzero(stored[position] == wanted)
        vectors = np.asarray(shard["vector"][position[hits]], dtype=np.float32)
        return {keys[i]: vectors[row] for row, i in enumerate(hits.tolist())}

    def put_many(self, keys: Sequence[str], backbone_key: str, vectors: np.ndarray) -> None:
        """Add or replace entries: `vectors[i]` (feature_dim,) is the embedding of `keys[i]`."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(f"need vectors (len(keys), dim), got {vectors.shape}")
        if not keys:
            return
        with np.errstate(over="ignore", under="ignore"):
            stored = vectors.astype(self.dtype)
        if not np.isfinite(stored).all():
            raise ValueError(f"embeddings overflow or are not finite as {self.dtype}")
        if np.any((stored == 0) & (vectors != 0)):
            raise ValueError(f"embeddings underflow to 0 as {self.dtype}: use float32")
        fresh = np.empty(len(keys), dtype=_record(self.dtype, vectors.shape[1]))
        fresh["key"] = _key_array(keys)
        fresh["vector"] = stored
        path = self.shard_path(backbone_key)
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(path.with_suffix(".lock")):
            if path.exists():
                old = np.load(path, allow_pickle=False)
                if old.dtype != fresh.dtype:
                    raise ValueError(f"{path} holds {old.dtype}, not {fresh.dtype}")
                fresh = np.concatenate([fresh, old])
            # np.unique keeps the first of equal keys (the new one) and sorts the result.
            _, first = np.unique(fresh["key"], return_index=True)
            _write_atomic(path, fresh[first])


def _key_array(keys: Sequence[str]) -> np.ndarray:
    encoded = [key.encode("ascii") for key in keys]
    if any(not key or len(key) > KEY_BYTES for key in encoded):
        raise ValueError(f"cache keys must be 1 to {KEY_BYTES} ASCII characters")
    return np.array(encoded, dtype=f"S{KEY_BYTES}")


def _record(dtype: np.dtype, dim: int) -> np.dtype:
    return np.dtype([("key", f"S{KEY_BYTES}"), ("vector", dtype, (dim,))])


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomic(path: Path, array: np.ndarray) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.save(file, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def embed(
    backbone: Backbone,
    items: Sequence[tuple[ImageSource, str]],
    cache: EmbeddingCache,
    *,
    weights_id: str,
    size: int | None = None,
    device: str = "auto",
    batch_size: int = 64,
    num_workers: int = 0,
    flush_every: int = 2048,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Trunk embeddings (len(items), feature_dim) float32 of (image path or bytes, sha256) items.

    Only images missing from `cache` go through the trunk (in eval mode, no grad, float32;
    channels_last on CUDA), and are stored every `flush_every` images so a cancelled run keeps
    its work. Returned vectors are rounded through the cache's dtype either way, so a cache hit
    and a fresh computation give identical numbers. `on_progress(done, to_compute)`.
    """
    key = shard_key(backbone.name, weights_id, preprocess_key(backbone, size))
    unique = list(dict.fromkeys(sha for _, sha in items))
    found = cache.get_many(unique, key)
    sources = {sha: source for source, sha in items}
    missing = [sha for sha in unique if sha not in found]
    if missing:
        found.update(
            _compute(
                backbone,
                [(sources[sha], sha) for sha in missing],
                cache,
                key,
                size=size,
                device=device_resolve(device),
                batch_size=batch_size,
                num_workers=num_workers,
                flush_every=flush_every,
                on_progress=on_progress,
                should_stop=should_stop,
            )
        )
    if not items:
        return np.zeros((0, backbone.feature_dim), dtype=np.float32)
    return np.stack([found[sha] for _, sha in items]).astype(np.float32)


def _compute(
    backbone: Backbone,
    items: list[tuple[ImageSource, str]],
    cache: EmbeddingCache,
    key: str,
    *,
    size: int | None,
    device: torch.device,
    batch_size: int,
    num_workers: int,
    flush_every: int,
    on_progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> dict[str, np.ndarray]:
    trunk = backbone.net.trunk
    was_training = trunk.training
    home = next(trunk.parameters()).device
    channels_last = device.type == "cuda"
    trunk.to(device).eval()
    if channels_last:
        trunk.to(memory_format=torch.channels_last)
    dataset = ImageDataset([(source, 0) for source, _ in items], preprocess_for(backbone, size))
    loader = data_loader(
        dataset, batch_size, shuffle=False, num_workers=num_workers, pin_memory=channels_last
    )
    computed: dict[str, np.ndarray] = {}
    pending_keys: list[str] = []
    pending: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for inputs, _ in loader:
                if should_stop is not None and should_stop():
                    raise TrainingCancelled(f"embedding cancelled after {len(computed)} images")
                inputs = inputs.to(device, non_blocking=True)
                if channels_last:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                vectors = trunk(inputs).float().cpu().numpy().astype(cache.dtype)
                batch_keys = [sha for _, sha in items[len(computed) : len(computed) + len(inputs)]]
                computed.update(zip(batch_keys, vectors.astype(np.float32), strict=True))
                pending_keys += batch_keys
                pending.append(vectors)
                if len(pending_keys) >= flush_every:
                    cache.put_many(pending_keys, key, np.concatenate(pending))
                    pending_keys, pending = [], []
                if on_progress is not None:
                    on_progress(len(computed), len(items))
    finally:
        if pending_keys:
            cache.put_many(pending_keys, key, np.concatenate(pending))
        trunk.to(home).train(was_training)
        if channels_last and home.type != "cuda":
            trunk.to(memory_format=torch.contiguous_format)
    return computed
