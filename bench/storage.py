"""Shared-file round trips: the same export archive and checkpoint on the local disk
(FileSystemStorage) and on an S3 server (moto's standalone server on 127.0.0.1).

    .venv/bin/python bench/storage.py                 # needs the dev (or s3) extra: moto, boto3

Each round trip does what the platform does, through config.file_stores:

- **export**: an archive of ``--export-mb`` MB (random bytes, so nothing compresses) written
  locally as a job attempt's partial (``stored_write``: in place on disk, uploaded to S3),
  published under its final name (``stored_move``: a rename on disk, a server-side copy and a
  delete on S3), then downloaded as the API streams it (``storage.open``, 1 MiB reads).
- **checkpoint**: ``checkpoint_save`` of a real net (mobilenet_v3_small, about 6 MB; resnet18,
  about 45 MB; 10 classes) the same way, then loaded back as prediction and starting weights
  load it (``stored_read`` to a local file, sha256 check, ``torch.load(weights_only=True)``).

Save and load are timed apart; each figure is the median of ``--repeat`` round trips, in
seconds and MB/s (10^6 bytes). moto keeps objects in memory in its own process, so the S3
figures are the HTTP, signing and copying costs of the S3 path, not a network's.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
REGION = "eu-west-1"
CHECKPOINTS = (
    ("mobilenet_v3_small", "checkpoint, mobilenet_v3_small"),
    ("resnet18", "checkpoint, resnet18"),
)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in a process of its own on a free loopback port; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def stores(kind: str, folder: Path, endpoint: str, bucket: str) -> dict[str, Any]:
    """STORAGES for the checkpoint and export stores on ``kind`` (filesystem or s3)."""
    if kind == "filesystem":
        return {
            alias: {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(folder / alias)},
            }
            for alias in ("checkpoints", "exports")
        }
    return {
        alias: {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint,
                "region_name": REGION,
                "location": alias,
                "default_acl": None,
                "file_overwrite": True,
            },
        }
        for alias in ("checkpoints", "exports")
    }


def export_round_trip(megabytes: int, attempt: int) -> tuple[float, float, int]:
    """(save seconds, load seconds, bytes) of one archive through the exports store."""
    from config.file_stores import EXPORTS, StoredFile, stored_move, stored_write

    final = StoredFile(EXPORTS, f"bench-{megabytes}mb.zip")
    partial = final.sibling(f"{final.name}.attempt-{attempt}.partial")
    data = os.urandom(megabytes * 10**6)
    start = time.perf_counter()
    with stored_write(partial) as local, local.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    stored_move(partial, final)
    saved = time.perf_counter()
    size = 0
    with final.open() as archive:
        for block in iter(lambda: archive.read(2**20), b""):
            size += len(block)
    loaded = time.perf_counter()
    final.delete()
    return saved - start, loaded - saved, size


def checkpoint_round_trip(backbone: Any, attempt: int) -> tuple[float, float, int]:
    """(save seconds, load seconds, bytes) of one checkpoint through the checkpoint store."""
    from config.file_stores import CHECKPOINTS as STORE
    from config.file_stores import StoredFile, stored_move, stored_read, stored_write
    from training.ml.loop import checkpoint_read, checkpoint_save

    final = StoredFile(STORE, f"run-bench-{backbone.name}.pt")
    partial = final.sibling(f"{final.name}.attempt-{attempt}.partial")
    names = [f"class-{i}" for i in range(10)]
    start = time.perf_counter()
    with stored_write(partial) as local:
        sha256 = checkpoint_save(local, backbone, 10, names, {"image_size": 224})
    stored_move(partial, final)
    saved = time.perf_counter()
    with stored_read(final) as local:
        payload = checkpoint_read(local, sha256)
        size = local.stat().st_size
    loaded = time.perf_counter()
    assert payload["backbone"] == backbone.name
    final.delete()
    return saved - start, loaded - saved, size


def measure(trip: Callable[[int], tuple[float, float, int]], repeat: int) -> list[float]:
    """[median save s, median load s, bytes] over ``repeat`` round trips after one warm-up."""
    trip(0)
    runs = [trip(attempt) for attempt in range(1, repeat + 1)]
    return [
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        runs[0][2],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export-mb", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import boto3
    import django

    django.setup()
    import torch
    from django.test.utils import override_settings

    from training.ml.backbones import backbone_build

    torch.manual_seed(0)
    nets = [(backbone_build(name, 10), label) for name, label in CHECKPOINTS]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    rows = []
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as folder:
        s3 = boto3.resource("s3", endpoint_url=endpoint, region_name=REGION)
        s3.create_bucket(Bucket="bench", CreateBucketConfiguration={"LocationConstraint": REGION})
        for kind in ("filesystem", "s3"):
            with override_settings(STORAGES=stores(kind, Path(folder), endpoint, "bench")):
                for megabytes in args.export_mb:
                    label = f"export archive, {megabytes} MB"
                    figures = measure(lambda a, m=megabytes: export_round_trip(m, a), args.repeat)
                    rows.append((kind, label, *figures))
                for net, label in nets:
                    figures = measure(lambda a, n=net: checkpoint_round_trip(n, a), args.repeat)
                    rows.append((kind, label, *figures))
    print(f"median of {args.repeat} round trips; MB = 10^6 bytes")
    print(
        f"{'store':<11} {'file':<34} {'MB':>7} {'save s':>8} {'MB/s':>7} {'load s':>8} {'MB/s':>7}"
    )
    for kind, label, save, load, size in rows:
        mb = size / 10**6
        print(
            f"{kind:<11} {label:<34} {mb:>7.1f} {save:>8.3f} {mb / save:>7.0f} "
            f"{load:>8.3f} {mb / load:>7.0f}"
        )


if __name__ == "__main__":
    main()
