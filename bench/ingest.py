"""Ingestion benchmark: service throughput against a bare Pillow loop, and near-dup lookup cost.

    .venv/bin/python bench/ingest.py                      # 5,000 images; 100k and 1M hashes
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/ingest.py

Runs in a throwaway test database (``test_<name>``) and a temporary media folder, so it never
touches real data. Prints one figure per line.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "camera",
    "moon",
    "brick",
    "grass",
    "gravel",
    "cell",
)


def make_jpegs(folder: Path, count: int, seed: int = 7) -> list[Path]:
    """``count`` photo-like 640x480 JPEGs: random rotations and crops of scikit-image's sample
    photos, rescaled, flipped and tinted, at JPEG quality 80-92. Some crops overlap enough to
    be near-duplicates, as in real collections; the summary line says how many."""
    from PIL import Image, ImageEnhance, ImageOps
    from skimage import data as samples

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(getattr(samples, name)()).convert("RGB") for name in PHOTOS]
    paths = []
    for index in range(count):
        photo = photos[index % len(photos)]
        angle = rng.uniform(-30, 30)
        photo = photo.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False)
        width, height = photo.size
        crop_w = int(width * rng.uniform(0.3, 0.9))
        crop_h = min(height, int(crop_w * rng.uniform(0.6, 0.9)))
        x0, y0 = rng.integers(0, width - crop_w + 1), rng.integers(0, height - crop_h + 1)
        image = photo.crop((x0, y0, x0 + crop_w, y0 + crop_h)).resize((640, 480))
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.5, 1.5))
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
        path = folder / f"{index:05d}.jpg"
        image.save(path, "JPEG", quality=int(rng.integers(80, 93)))
        paths.append(path)
    return paths


def bare_pillow(paths: list[Path]) -> float:
    """Images per second for open + full decode, nothing else."""
    from PIL import Image

    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            image.load()
    return len(paths) / (time.perf_counter() - start)


def service_ingest(paths: list[Path]) -> tuple[float, str]:
    """Images per second through images_ingest (validation, hashes, derivatives, storage, rows)."""
    from labeling.models import Category
    from labeling.services.ingest import images_ingest

    category = Category.objects.create(name="bench", slug="bench")
    files = ((path.name, path.read_bytes()) for path in paths)
    start = time.perf_counter()
    report = images_ingest(files=files, category=category, source="folder", uploader=None)
    return len(paths) / (time.perf_counter() - start), report.summary()


def fill_index(total: int, rng: np.random.Generator) -> None:
    """Add synthetic image rows with random hashes until the table holds ``total`` rows."""
    from django.db import connection

    from labeling.ingest.dedup import hash_bands
    from labeling.models import Image

    missing = total - Image.objects.count()
    columns = [
        "uid",
        "file",
        "thumbnail",
        "train_copy",
        "sha256",
        "phash",
        "phash256",
        *[f"phash_band{i}" for i in range(5)],
        "width",
        "height",
        "format",
        "byte_size",
        "source",
        "source_url",
        "original_name",
        "created_at",
        "updated_at",
    ]
    table = Image._meta.db_table
    batch = 50_000
    for start in range(0, missing, batch):
        size = min(batch, missing - start)
        phashes = rng.integers(-(2**63), 2**63 - 1, size=size, dtype=np.int64)
        rows = []
        for phash in phashes.tolist():
            token = secrets.token_hex(32)
            rows.append(
                (
                    str(uuid.uuid4()),
                    "x",
                    "x",
                    "x",
                    token,
                    phash,
                    token,
                    *hash_bands(phash),
                    640,
                    480,
                    "JPEG",
                    1,
                    "folder",
                    "",
                    "",
                    "now()",
                    "now()",
                )
            )
        if connection.vendor == "postgresql":
            with (
                connection.cursor() as cursor,
                cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",  # noqa: S608 (table and columns are ours)
                    [(*row[:-2], "2026-01-01", "2026-01-01") for row in rows],
                )
    # What autovacuum does on a live table: statistics, and the visibility map that lets band
    # lookups stay index-only.
    with connection.cursor() as cursor:
        vacuum = "VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE"
        cursor.execute(f"{vacuum} {table}")


def lookup_cost(rng: np.random.Generator, queries: int) -> tuple[float, float, float]:
    """Milliseconds per near-duplicate lookup: mean, p50, p99 over random query hashes."""
    from labeling.ingest.dedup import Hashes
    from labeling.services.image_store import near_duplicate_find

    timings = []
    for phash in rng.integers(-(2**63), 2**63 - 1, size=queries, dtype=np.int64).tolist():
        hashes = Hashes(phash=phash, phash256=secrets.token_hex(32))
        start = time.perf_counter()
        near_duplicate_find(hashes, max_distance=4, confirm_bits=10)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return statistics.fmean(timings), timings[len(timings) // 2], timings[int(len(timings) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="JPEGs to ingest")
    parser.add_argument("--index-sizes", default="100000,1000000", help="hashes in the index")
    parser.add_argument("--queries", type=int, default=2000, help="lookups per index size")
    args = parser.parse_args()

    media = tempfile.mkdtemp(prefix="crowdnet-bench-media-")
    os.environ["CROWDNET_MEDIA_ROOT"] = media
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(f"machine: {platform.node()} {os.cpu_count()} cores, database {connection.vendor}")
        with tempfile.TemporaryDirectory(prefix="crowdnet-bench-") as folder:
            paths = make_jpegs(Path(folder), args.count)
            bare = bare_pillow(paths)
            rate, summary = service_ingest(paths)
        print(f"ingest: {args.count} 640x480 JPEGs: {summary}")
        print(f"bare Pillow open+decode: {bare:.1f} images/s")
        print(f"ingest service: {rate:.1f} images/s")
        print(f"ratio service/bare: {rate / bare:.2f}")
        rng = np.random.default_rng(2012)
        for size in [int(s) for s in args.index_sizes.split(",")]:
            start = time.perf_counter()
            fill_index(size, rng)
            filled = time.perf_counter() - start
            mean, p50, p99 = lookup_cost(rng, args.queries)
            print(
                f"near-dup lookup with {size:,} hashes: mean {mean:.3f} ms, p50 {p50:.3f} ms, "
                f"p99 {p99:.3f} ms (index filled in {filled:.0f} s)"
            )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
