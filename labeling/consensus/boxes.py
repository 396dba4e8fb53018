"""Boxes on one image from several workers, fused into one box per object.

Boxes are [x0, y0, x1, y1] in pixels, x0 <= x1 and y0 <= y1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class FusedBoxes:
    """One entry per cluster (object), in the order the clusters were started.

    ``boxes`` (C, 4): weighted mean of the members; ``scores`` (C,): members' weight over the
    weight of all workers who drew on the image; ``members``: input indices per cluster,
    ascending; ``n_workers`` (C,): members per cluster, each from a different worker."""

    boxes: NDArray[np.float64]
    scores: NDArray[np.float64]
    members: list[NDArray[np.int64]]
    n_workers: NDArray[np.int64]


def _as_boxes(values: ArrayLike, name: str) -> NDArray[np.float64]:
    boxes = np.asarray(values, dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {boxes.shape}")
    return boxes


def iou(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4).

    Shape (N, M); 0 where boxes do not overlap or both have zero area."""
    first, second = _as_boxes(a, "a"), _as_boxes(b, "b")
    low = np.maximum(first[:, None, :2], second[None, :, :2])
    high = np.minimum(first[:, None, 2:], second[None, :, 2:])
    intersection = np.prod(np.clip(high - low, 0.0, None), axis=2)
    area_a = np.prod(np.clip(first[:, 2:] - first[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(second[:, 2:] - second[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - intersection
    ratio: NDArray[np.float64] = np.divide(
        intersection, union, out=np.zeros_like(union), where=union > 0
    )
    return ratio


def fuse_boxes(
    boxes: ArrayLike,
    workers: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    iou_threshold: float = 0.5,
) -> FusedBoxes:
    """Cluster the boxes that workers drew on ONE image and fuse each cluster.

    Greedy, by weight descending (ties in input order): a box joins the cluster whose current
    fused box overlaps it most, if that IoU is >= ``iou_threshold`` and the cluster has no box
    from the same worker yet; otherwise it starts a cluster. Fused box: weight-weighted mean of
    the members' coordinates (weighted boxes fusion, Solovyev et al. 2019). Score: members'
    weight / the summed weight of the distinct workers on the image, a worker weighing his
    heaviest box; an object that every worker drew scores 1. ``weights`` default to 1 and must
    be positive. The loop runs over the boxes of one image, which are few."""
    coords = _as_boxes(boxes, "boxes")
    drawn_by = np.asarray(workers, dtype=np.int64).reshape(-1)
    weight = np.ones(len(coords)) if weights is None else np.asarray(weights, dtype=np.float64)
    if not len(coords) == len(drawn_by) == weight.size:
        raise ValueError("boxes, workers and weights must have one length")
    if weight.size and not (np.all(np.isfinite(weight)) and weight.min() > 0):
        raise ValueError("weights must be positive")
    weight = weight.reshape(-1)
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")

    sums = np.zeros((0, 4))
    mass = np.zeros(0)
    cluster_of = np.full(len(coords), -1, dtype=np.int64)
    for index in np.argsort(-weight, kind="stable"):
        overlap = iou(coords[index : index + 1], sums / mass[:, None])[0]
        overlap[cluster_of[(drawn_by == drawn_by[index]) & (cluster_of >= 0)]] = -1.0
        best = int(overlap.argmax()) if overlap.size else -1
        if best < 0 or overlap[best] < iou_threshold:
            best = len(mass)
            sums = np.vstack([sums, np.zeros((1, 4))])
            mass = np.append(mass, 0.0)
        sums[best] += weight[index] * coords[index]
        mass[best] += weight[index]
        cluster_of[index] = best

    worker_ids, worker_index = np.unique(drawn_by, return_inverse=True)
    worker_weight = np.zeros(len(worker_ids))
    np.maximum.at(worker_weight, worker_index, weight)
    sizes = np.bincount(cluster_of, minlength=len(mass)).astype(np.int64)
    by_cluster = np.argsort(cluster_of, kind="stable")
    members = np.split(by_cluster, np.cumsum(sizes)[:-1]) if len(mass) else []
    return FusedBoxes(
        boxes=sums / mass[:, None],
        scores=mass / worker_weight.sum() if len(mass) else np.zeros(0),
        members=[group.astype(np.int64) for group in members],
        n_workers=sizes,
    )
