"""What cleaning the stored original costs: CPU time of `validate_image` per format, and of the
rewrite step alone (cutting data after the end, comments, GPS, markup in metadata).

    .venv/bin/python bench/originals.py [--count 200] [--seed N]

For each accepted format it makes `--count` 640x480 photo-like files from scikit-image's sample
photos (random crops, a random tint; a seed from the clock unless given), each carrying EXIF
with a GPS block where the format holds EXIF and 200 bytes of script appended after the end,
and times, in CPU seconds of this process (so other load on the machine counts less):
`validate_image` as ingestion calls it, and the part of it that writes the stored original
(`rewritten_original` for JPEG, PNG, WebP and GIF; `reencoded_original` on the decoded frame
for BMP and TIFF). It also checks that no stored original keeps the script or the GPS block.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, TiffImagePlugin
from skimage import data as samples

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from labeling.ingest.originals import (  # noqa: E402
    REENCODED,
    reencoded_original,
    rewritten_original,
)
from labeling.ingest.validation import ValidationLimits, validate_image  # noqa: E402

PAYLOAD = b"<script>alert(document.cookie)</script>" * 5
LIMITS = ValidationLimits(max_bytes=25 * 1024 * 1024, max_pixels=40_000_000)
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
GPS_IFD = ExifTags.IFD.GPSInfo
GPS = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}


def _photos(count: int, rng: np.random.Generator) -> list[Image.Image]:
    sources = [samples.astronaut(), samples.chelsea(), samples.coffee(), samples.rocket()]
    photos = []
    for _ in range(count):
        source = sources[int(rng.integers(len(sources)))]
        height, width = source.shape[:2]
        top, left = int(rng.integers(0, height - 240)), int(rng.integers(0, width - 320))
        crop = Image.fromarray(source[top : top + 240, left : left + 320]).resize((640, 480))
        tint = rng.uniform(0.8, 1.2, size=3)
        pixels = np.clip(np.asarray(crop, dtype=np.float32) * tint, 0, 255).astype(np.uint8)
        photos.append(Image.fromarray(pixels))
    return photos


def _encoded(photo: Image.Image, fmt: str) -> bytes:
    """The photo in ``fmt`` with a camera make and a GPS block where the format holds EXIF,
    and the payload appended."""
    options: dict[str, object] = {}
    if fmt == "TIFF":
        tags = TiffImagePlugin.ImageFileDirectory_v2()
        tags[ExifTags.Base.Make] = "CrowdNet bench"
        tags[GPS_IFD] = dict(GPS)
        options["tiffinfo"] = tags
    elif fmt in ("JPEG", "PNG", "WEBP"):
        exif = Image.Exif()
        exif[ExifTags.Base.Make] = "CrowdNet bench"
        exif.get_ifd(GPS_IFD).update(GPS)
        options["exif"] = exif
    buffer = io.BytesIO()
    (photo.convert("P") if fmt == "GIF" else photo).save(buffer, fmt, **options)
    return buffer.getvalue() + PAYLOAD


def _cpu_ms(step: Callable[[bytes], object], files: list[bytes]) -> list[float]:
    times = []
    for data in files:
        start = time.process_time()
        step(data)
        times.append((time.process_time() - start) * 1000)
    return times


def _rewrite_step(fmt: str) -> Callable[[bytes], object]:
    if fmt not in REENCODED:
        return lambda data: rewritten_original(data, fmt, keep_gps=False)

    def reencode(data: bytes) -> bytes:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return reencoded_original(image, fmt, keep_gps=False)

    return reencode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    photos = _photos(args.count, np.random.default_rng(seed))
    print(f"seed {seed}, {args.count} files per format, 640x480, {len(PAYLOAD)} bytes appended")
    print("| format | mean file KiB | validate_image ms | rewrite ms | rewrite share | clean |")
    print("| --- | --- | --- | --- | --- | --- |")
    for fmt in FORMATS:
        files = [_encoded(photo, fmt) for photo in photos]
        validate = _cpu_ms(lambda data: validate_image(data, LIMITS), files)
        rewrite = _cpu_ms(_rewrite_step(fmt), files)
        stored = [validate_image(data, LIMITS).original for data in files[:20]]
        clean = all(b"<script" not in s and not _gps_of(s) for s in stored)
        mean_validate, mean_rewrite = statistics.mean(validate), statistics.mean(rewrite)
        print(
            f"| {fmt} | {statistics.mean(map(len, files)) / 1024:,.0f} | {mean_validate:.2f} "
            f"| {mean_rewrite:.2f} | {mean_rewrite / mean_validate:.0%} | {clean} |"
        )


def _gps_of(stored: bytes) -> dict[int, object]:
    """The stored file's GPS block, empty when it has none."""
    with Image.open(io.BytesIO(stored)) as image:
        return dict(image.getexif().get_ifd(GPS_IFD))


if __name__ == "__main__":
    main()
