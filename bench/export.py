"""Export benchmark: a generated version of 100,000 images with boxes exported to COCO, CSV and
ImageFolder, each in a fresh process: seconds, images/s and peak memory at 10,000 and 100,000.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdnet_bench .venv/bin/python bench/export.py

Builds a throwaway test database (``test_<name>``) and a temporary media folder: 100
categories (10 parents of 10), N tiny JPEG files (32x24, unique bytes) written straight to
storage with their Image rows, accepted candidates with votes and confidence, one or two
fused boxes on each image, and two frozen versions (the first 10,000 images, and all). Each
export runs `export_stream` in a child process writing a zip to a temporary file; peak RSS is
that child's VmHWM (its Python, Django, models and libraries included). COCO and CSV are the
index files alone (``include_images`` false); ImageFolder carries every image file, in a zip
and in a tar.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from bench.postgres import throwaway_database  # noqa: E402

CASES = (
    ("coco", {"include_images": False}),
    ("csv", {"include_images": False}),
    ("imagefolder", {}),
    ("imagefolder", {"archive": "tar"}),
)


def seed(count: int, small: int) -> None:
    """Categories, `count` images with candidates and boxes, versions 1 (`small`) and 2 (all)."""
    from django.conf import settings
    from PIL import Image as PILImage

    from datasets.models import DatasetItem, DatasetVersion
    from datasets.services.versions import split_of
    from labeling.models import Candidate, Category, Image, ObjectBox

    parents = [Category.objects.create(name=f"group {g}", slug=f"group-{g}") for g in range(10)]
    categories = [
        Category.objects.create(
            name=f"class {c}", slug=f"class-{c}", wnid=f"n{c:08d}", parent=parents[c // 10]
        )
        for c in range(100)
    ]
    buffer = io.BytesIO()
    PILImage.new("RGB", (32, 24), (90, 140, 200)).save(buffer, "JPEG", quality=80)
    base = buffer.getvalue()
    folder = Path(settings.MEDIA_ROOT) / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, count, 10_000):
        rows = []
        for i in range(start, min(count, start + 10_000)):
            data = base + i.to_bytes(8, "big")  # bytes after the end marker: unique, still a JPEG
            name = f"bench/{i:07d}.jpg"
            (folder / f"{i:07d}.jpg").write_bytes(data)
            rows.append(
                Image(
                    file=name,
                    thumbnail=name,
                    train_copy=name,
                    sha256=hashlib.sha256(data).hexdigest(),
                    phash=i,
                    phash256=f"{i:064x}",
                    phash_band0=0,
                    phash_band1=0,
                    phash_band2=0,
                    phash_band3=0,
                    phash_band4=i,
                    width=32,
                    height=24,
                    format="JPEG",
                    byte_size=len(data),
                    source="folder",
                )
            )
        images = Image.objects.bulk_create(rows, batch_size=2000)
        candidates = Candidate.objects.bulk_create(
            [
                Candidate(
                    image=image,
                    category=categories[image.phash % 100],
                    state="accepted",
                    yes_votes=3,
                    no_votes=image.phash % 2,
                    confidence=0.9 + (image.phash % 10) / 100,
                )
                for image in images
            ],
            batch_size=2000,
        )
        ObjectBox.objects.bulk_create(
            [
                ObjectBox(
                    candidate=c, x0=1.0 + k, y0=2.0, x1=20.5 + k, y1=22.0, score=1.0, drawers=3
                )
                for c in candidates
                for k in range(1 + c.image.phash % 2)
            ],
            batch_size=5000,
        )
    classes = [{"id": c.pk, "slug": c.slug, "name": c.name} for c in categories]
    index = {c.pk: i for i, c in enumerate(categories)}
    boxes: dict[int, list[list[float]]] = {}
    for image_id, *coords in ObjectBox.objects.values_list(
        "candidate__image_id", "x0", "y0", "x1", "y1"
    ):
        boxes.setdefault(image_id, []).append(coords)
    rows = list(
        Candidate.objects.order_by("image_id").values_list(
            "image_id", "category_id", "image__sha256"
        )
    )
    for number, size in ((1, small), (2, count)):
        version = DatasetVersion.objects.create(
            number=number,
            classes=classes,
            counts={"train": [], "val": []},
            val_share=0.1,
            images=size,
        )
        DatasetItem.objects.bulk_create(
            [
                DatasetItem(
                    version=version,
                    image_id=image_id,
                    label=index[category_id],
                    split=split_of(sha256, 0.1),
                    boxes=boxes.get(image_id, []),
                )
                for image_id, category_id, sha256 in rows[:size]
            ],
            batch_size=5000,
        )


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB. /proc's VmHWM starts afresh at exec, where
    getrusage's ru_maxrss keeps the parent's size at the fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, number: int, options: str, out: str) -> None:
    """One export in this process; prints its figures as JSON."""
    import django

    django.setup()
    from datasets.models import DatasetVersion
    from datasets.services.exports import export_options_parse, export_selection, export_stream

    selection = export_selection(
        DatasetVersion.objects.get(number=number), export_options_parse(json.loads(options))
    )
    started = time.perf_counter()
    with open(out, "wb") as stream:
        written = export_stream(selection, kind, stream)
    seconds = time.perf_counter() - started
    peak = peak_rss_mib()
    print(
        json.dumps(
            {"images": written, "seconds": seconds, "bytes": os.path.getsize(out), "rss": peak}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--child", nargs=4, metavar=("KIND", "VERSION", "OPTIONS", "OUT"))
    args = parser.parse_args()
    if args.child:
        kind, number, options, out = args.child
        return child(kind, int(number), options, out)

    media = tempfile.mkdtemp(prefix="crowdnet-export-media-")
    os.environ["CROWDNET_MEDIA_ROOT"] = media
    try:
        with throwaway_database() as database_url:
            env = {**os.environ, "DATABASE_URL": database_url, "CROWDNET_MEDIA_ROOT": media}
            started = time.perf_counter()
            seed(args.images, args.small)
            print(
                f"seeded {args.images:,} images in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
            print("\n| format | images | seconds | images/s | archive MB | peak RSS MB |")
            print("| --- | --- | --- | --- | --- | --- |")
            with tempfile.TemporaryDirectory(prefix="crowdnet-export-out-") as folder:
                for kind, options in CASES:
                    for number in (1, 2):
                        archive = options.get("archive", "zip")
                        out = str(Path(folder) / f"{kind}-{number}.{archive}")
                        result = subprocess.run(
                            [
                                sys.executable,
                                __file__,
                                "--child",
                                kind,
                                str(number),
                                json.dumps(options),
                                out,
                            ],
                            env=env,
                            capture_output=True,
                            text=True,
                            check=True,
                        )
                        r = json.loads(result.stdout.strip().splitlines()[-1])
                        os.unlink(out)
                        files = "" if "include_images" in options else ", with images"
                        print(
                            f"| {kind}, {archive}{files} | {r['images']:,} | "
                            f"{r['seconds']:.1f} | {r['images'] / r['seconds']:,.0f} | "
                            f"{r['bytes'] / 2**20:,.1f} | {r['rss']:,.0f} |",
                            flush=True,
                        )
            print(f"load average {os.getloadavg()[0]:.2f}")
    finally:
        subprocess.run(["rm", "-rf", media], check=False)


if __name__ == "__main__":
    main()
