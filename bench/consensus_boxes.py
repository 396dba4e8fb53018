"""Box fusion: how close fused boxes come to the true objects, against single drawings.

    .venv/bin/python bench/consensus_boxes.py            # 5,000 images
    .venv/bin/python bench/consensus_boxes.py --small    # 500 images, a quick check

Simulates 640x480 images with 1-3 true boxes each (sides 40-320 px, placed anywhere, so some
overlap) and a pool of 100 drawers, 20 % of them sloppy. Five distinct drawers draw every
object of an image. An honest drawer misses an object 2 % of the time and moves each edge by
N(0, 3 % of the box's side); a sloppy one misses 10 % and moves each edge by N(0, 15 %) and the
whole box by N(0, 10 %) per axis. Before real work every drawer draws 10 gold images; his
reliability is the mean IoU of those drawings with the truth (a missed object counts 0).

Reports the mean IoU with the truth of single drawings (all, honest, sloppy), and of the fused
boxes from ``fuse_boxes`` (IoU threshold 0.5) with equal weights and with the gold reliability
as weights: per true object, the best fused box on its image; recall at IoU 0.5 and 0.75;
fused boxes per true object and their precision at IoU 0.5, for all clusters and for the
clusters that reach a score of 0.5 (half the drawers' weight).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from consensus_crowds import draw_workers
from numpy.typing import NDArray
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labeling.consensus.boxes import fuse_boxes, iou

WIDTH, HEIGHT = 640, 480
N_DRAWERS = 100
SLOPPY = 0.2
PER_IMAGE = 5
GOLD_IMAGES = 10
MISS = {False: 0.02, True: 0.10}
EDGE_JITTER = {False: 0.03, True: 0.15}
SHIFT = {False: 0.0, True: 0.10}


@dataclass(frozen=True)
class Objects:
    """True boxes, one row each, with the image they are on (images numbered from 0)."""

    image: NDArray[np.int64]
    box: NDArray[np.float64]


@dataclass(frozen=True)
class Drawings:
    """One row per drawn box: the object it was meant for, its drawer and its coordinates."""

    target: NDArray[np.int64]
    worker: NDArray[np.int64]
    box: NDArray[np.float64]


def make_objects(rng: np.random.Generator, n_images: int) -> Objects:
    per_image = rng.integers(1, 4, size=n_images)
    image = np.repeat(np.arange(n_images, dtype=np.int64), per_image)
    size = rng.uniform(40, 320, size=(len(image), 2))
    size[:, 1] = np.minimum(size[:, 1], HEIGHT - 1)
    x0 = rng.uniform(0, WIDTH - size[:, 0])
    y0 = rng.uniform(0, HEIGHT - size[:, 1])
    return Objects(image, np.column_stack([x0, y0, x0 + size[:, 0], y0 + size[:, 1]]))


def draw(
    rng: np.random.Generator,
    objects: Objects,
    drawers: NDArray[np.int64],
    sloppy: NDArray[np.bool_],
) -> tuple[Drawings, NDArray[np.bool_]]:
    """Every drawer of an image (``drawers``: (n_images, k)) draws each of its objects.

    Returns the drawings and, per (object, drawer slot), whether the object was missed."""
    k = drawers.shape[1]
    target = np.repeat(np.arange(len(objects.image)), k)
    worker = drawers[objects.image].ravel()
    is_sloppy = sloppy[worker]
    truth = objects.box[target]
    side = np.tile(truth[:, 2:] - truth[:, :2], 2)
    edge = np.where(is_sloppy, EDGE_JITTER[True], EDGE_JITTER[False])[:, None]
    shift = np.where(is_sloppy, SHIFT[True], SHIFT[False])[:, None]
    moved = truth + rng.normal(size=truth.shape) * edge * side
    moved += np.tile(rng.normal(size=(len(truth), 2)), 2) * shift * side
    moved = np.column_stack(
        [
            np.minimum(moved[:, 0], moved[:, 2]),
            np.minimum(moved[:, 1], moved[:, 3]),
            np.maximum(moved[:, 0], moved[:, 2]),
            np.maximum(moved[:, 1], moved[:, 3]),
        ]
    )
    moved = np.clip(moved, 0, [WIDTH, HEIGHT, WIDTH, HEIGHT])
    missed = rng.random(len(target)) < np.where(is_sloppy, MISS[True], MISS[False])
    kept = ~missed
    return Drawings(target[kept], worker[kept], moved[kept]), missed


def paired_iou(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """IoU of a[i] with b[i], row by row."""
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    ratio: NDArray[np.float64] = np.divide(inter, union, out=np.zeros_like(union), where=union > 0)
    return ratio


def gold_reliability(rng: np.random.Generator, sloppy: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per drawer: mean IoU of his drawings of GOLD_IMAGES gold images (missed objects: 0)."""
    n = len(sloppy)
    gold = make_objects(rng, n * GOLD_IMAGES)
    drawers = np.repeat(np.arange(n, dtype=np.int64), GOLD_IMAGES)[:, None]
    drawings, missed = draw(rng, gold, drawers, sloppy)
    scores = np.zeros(len(gold.image))
    scores[~missed] = paired_iou(drawings.box, gold.box[drawings.target])
    owner = drawers[gold.image, 0]
    return np.bincount(owner, weights=scores, minlength=n) / np.bincount(owner, minlength=n)


@dataclass(frozen=True)
class FusionScore:
    mean_iou: float
    recall_50: float
    recall_75: float
    boxes_per_object: float
    precision: float
    kept_recall_50: float
    kept_boxes_per_object: float
    kept_precision: float


def fuse_all(
    objects: Objects, drawings: Drawings, n_images: int, weights: NDArray[np.float64] | None
) -> FusionScore:
    """Fuse each image's drawings and score the fused boxes against its true objects."""
    image_of = objects.image[drawings.target]
    order = np.argsort(image_of, kind="stable")
    starts = np.searchsorted(image_of[order], np.arange(n_images + 1))
    object_starts = np.searchsorted(objects.image, np.arange(n_images + 1))
    best = np.zeros(len(objects.image))
    kept_best = np.zeros(len(objects.image))
    fused_count = kept_count = fused_hits = kept_hits = 0
    for image in range(n_images):
        rows = order[starts[image] : starts[image + 1]]
        truth = objects.box[object_starts[image] : object_starts[image + 1]]
        if not len(rows):
            continue
        worker = drawings.worker[rows]
        fused = fuse_boxes(drawings.box[rows], worker, None if weights is None else weights[worker])
        overlap = iou(truth, fused.boxes)
        kept = fused.scores >= 0.5
        best[object_starts[image] : object_starts[image + 1]] = overlap.max(axis=1)
        kept_best[object_starts[image] : object_starts[image + 1]] = overlap[:, kept].max(
            axis=1, initial=0.0
        )
        fused_count += len(fused.scores)
        kept_count += int(kept.sum())
        hits = overlap.max(axis=0) >= 0.5
        fused_hits += int(hits.sum())
        kept_hits += int(hits[kept].sum())
    n_objects = len(objects.image)
    return FusionScore(
        mean_iou=float(best.mean()),
        recall_50=float((best >= 0.5).mean()),
        recall_75=float((best >= 0.75).mean()),
        boxes_per_object=fused_count / n_objects,
        precision=fused_hits / max(fused_count, 1),
        kept_recall_50=float((kept_best >= 0.5).mean()),
        kept_boxes_per_object=kept_count / n_objects,
        kept_precision=kept_hits / max(kept_count, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="500 images")
    args = parser.parse_args()
    n_images = 500 if args.small else 5_000
    rng = np.random.default_rng(20261126)
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, numpy {np.__version__}")

    sloppy = np.zeros(N_DRAWERS, dtype=bool)
    sloppy[rng.choice(N_DRAWERS, size=round(SLOPPY * N_DRAWERS), replace=False)] = True
    reliability = gold_reliability(rng, sloppy)
    objects = make_objects(rng, n_images)
    drawers = draw_workers(rng, np.full(N_DRAWERS, 1.0 / N_DRAWERS), n_images, PER_IMAGE)
    drawings, _missed = draw(rng, objects, drawers, sloppy)
    single = paired_iou(drawings.box, objects.box[drawings.target])
    by_sloppy = sloppy[drawings.worker]
    print(
        f"{n_images:,} images, {len(objects.image):,} objects, {len(drawings.target):,} drawings;"
        f" gold reliability: honest {reliability[~sloppy].mean():.3f}, "
        f"sloppy {reliability[sloppy].mean():.3f}\n"
    )

    print("| drawings | mean IoU with truth | IoU >= 0.5 | IoU >= 0.75 |")
    print("| --- | --- | --- | --- |")
    for name, mask in (("all", slice(None)), ("honest", ~by_sloppy), ("sloppy", by_sloppy)):
        values = single[mask]
        print(
            f"| single, {name} | {values.mean():.3f} | {100 * (values >= 0.5).mean():.1f} % "
            f"| {100 * (values >= 0.75).mean():.1f} % |"
        )

    print(
        "\n| fusion weights | mean IoU of best fused box | recall @0.5 | recall @0.75 "
        "| fused boxes / object | precision @0.5 | score >= 0.5: recall @0.5 "
        "| boxes / object | precision @0.5 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    # fuse_boxes wants positive weights; a drawer who missed every gold object scores 0.
    variants = {"equal": None, "gold reliability": np.maximum(reliability, 0.01)}
    for name, weights in tqdm(variants.items(), desc="fusing", leave=False):
        score = fuse_all(objects, drawings, n_images, weights)
        print(
            f"| {name} | {score.mean_iou:.3f} | {100 * score.recall_50:.1f} % "
            f"| {100 * score.recall_75:.1f} % | {score.boxes_per_object:.2f} "
            f"| {100 * score.precision:.1f} % | {100 * score.kept_recall_50:.1f} % "
            f"| {score.kept_boxes_per_object:.2f} | {100 * score.kept_precision:.1f} % |"
        )


if __name__ == "__main__":
    main()
