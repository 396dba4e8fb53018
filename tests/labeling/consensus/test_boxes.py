"""Box IoU and weighted boxes fusion on one image."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus import fuse_boxes, iou


def test_iou_exact_values():
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    b = np.array(
        [
            [0.0, 0.0, 2.0, 2.0],  # identical: 1
            [5.0, 5.0, 6.0, 6.0],  # disjoint: 0
            [1.0, 0.0, 3.0, 2.0],  # shifted by half: 2 / (4 + 4 - 2)
            [0.0, 0.0, 1.0, 2.0],  # left half inside: 2 / 4
            [2.0, 0.0, 4.0, 2.0],  # touching edges: 0
            [1.0, 1.0, 1.0, 1.0],  # a point: 0
        ]
    )

    np.testing.assert_allclose(iou(a, b), [[1.0, 0.0, 1 / 3, 0.5, 0.0, 0.0]], rtol=1e-15)


def test_iou_is_all_pairs_and_handles_empty_arrays():
    a = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]])

    np.testing.assert_allclose(iou(a, a), [[1.0, 1 / 3], [1 / 3, 1.0]], rtol=1e-15)
    assert iou(np.zeros((0, 4)), a).shape == (0, 2)
    assert iou(a, []).shape == (2, 0)


def test_iou_refuses_other_shapes():
    with pytest.raises(ValueError, match=r"b must have shape \(N, 4\), got \(2, 3\)"):
        iou(np.zeros((1, 4)), np.zeros((2, 3)))


# three workers around one object, a fourth far away
BOXES = np.array(
    [
        [10.0, 10.0, 50.0, 50.0],
        [12.0, 10.0, 52.0, 50.0],
        [8.0, 12.0, 48.0, 52.0],
        [100.0, 100.0, 140.0, 140.0],
    ]
)


def test_three_workers_fuse_and_an_outlier_stands_alone():
    fused = fuse_boxes(BOXES, [0, 1, 2, 3])

    np.testing.assert_allclose(
        fused.boxes, [[10.0, 32 / 3, 50.0, 152 / 3], [100.0, 100.0, 140.0, 140.0]], rtol=1e-14
    )
    np.testing.assert_allclose(fused.scores, [0.75, 0.25], rtol=1e-15)
    assert [members.tolist() for members in fused.members] == [[0, 1, 2], [3]]
    np.testing.assert_array_equal(fused.n_workers, [3, 1])


def test_weights_order_the_clusters_and_weigh_the_coordinates():
    fused = fuse_boxes(BOXES, [0, 1, 2, 3], [1.0, 2.0, 1.0, 1.0])

    # (1 * box0 + 2 * box1 + 1 * box2) / 4; scores over the workers' total weight 5
    np.testing.assert_allclose(
        fused.boxes, [[10.5, 10.5, 50.5, 50.5], [100.0, 100.0, 140.0, 140.0]], rtol=1e-14
    )
    np.testing.assert_allclose(fused.scores, [0.8, 0.2], rtol=1e-15)
    assert [members.tolist() for members in fused.members] == [[0, 1, 2], [3]]


def test_boxes_from_the_same_worker_are_never_merged():
    box = [10.0, 10.0, 50.0, 50.0]

    fused = fuse_boxes([box, box, box], [0, 0, 1])

    assert [members.tolist() for members in fused.members] == [[0, 2], [1]]
    np.testing.assert_allclose(fused.scores, [1.0, 0.5], rtol=1e-15)
    np.testing.assert_array_equal(fused.n_workers, [2, 1])


def test_iou_threshold_decides_whether_boxes_join():
    boxes = [[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]]  # IoU 1/3

    assert len(fuse_boxes(boxes, [0, 1]).members) == 2
    assert len(fuse_boxes(boxes, [0, 1], iou_threshold=0.3).members) == 1


def test_no_boxes_fuse_to_nothing():
    fused = fuse_boxes(np.zeros((0, 4)), [])

    assert fused.boxes.shape == (0, 4)
    assert fused.scores.shape == (0,)
    assert fused.members == []
    assert fused.n_workers.shape == (0,)


@pytest.mark.parametrize(
    ("workers", "weights", "threshold", "message"),
    [
        ([0, 1, 2], None, 0.5, "boxes, workers and weights must have one length"),
        ([0, 1, 2, 3], [1.0, 0.0, 1.0, 1.0], 0.5, "weights must be positive"),
        ([0, 1, 2, 3], None, 0.0, r"iou_threshold must be in \(0, 1\], got 0.0"),
    ],
)
def test_fuse_boxes_refuses_bad_input(workers, weights, threshold, message):
    with pytest.raises(ValueError, match=message):
        fuse_boxes(BOXES, workers, weights, iou_threshold=threshold)
