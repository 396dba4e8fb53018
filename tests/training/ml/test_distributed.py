"""Data-parallel training: two gloo processes on the CPU follow the one-process run."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from training.ml.backbones import backbone_build
from training.ml.data import DecodedBatches, preprocess_for
from training.ml.distributed import KeptBatches, processes_for, train_distributed
from training.ml.loop import EpochStats, Shard, TrainConfig, TrainingCancelled, train


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def kept() -> tuple[KeptBatches, KeptBatches]:
    """250 + 100 of scikit-learn's digits, decoded once (a last training batch of 26 rows,
    and a validation batch of 100, so the split is uneven)."""
    data = load_digits()
    pairs = zip(data.images, data.target, strict=True)
    items = [(_png(image), int(label)) for image, label in pairs]
    preprocess = preprocess_for(backbone_build("lenet5", 10))
    return (
        KeptBatches.of(
            DecodedBatches(items[:250], preprocess, 32, shuffle=False),
            shuffle=True,
            batch_size=32,
            seed=5,
        ),
        KeptBatches.of(
            DecodedBatches(items[250:350], preprocess, 100, shuffle=False),
            shuffle=False,
            batch_size=100,
        ),
    )


def _fresh(kept: tuple[KeptBatches, KeptBatches]) -> tuple[KeptBatches, KeptBatches]:
    return tuple(k.to(torch.device("cpu")) for k in kept)  # type: ignore[return-value]


CONFIG = TrainConfig(mode="full", epochs=3, lr=1e-2, patience=None, device="cpu", seed=1)


def test_two_gloo_processes_train_the_net_one_process_trains(kept):
    torch.manual_seed(7)
    one = backbone_build("lenet5", 10)
    two = backbone_build("lenet5", 10)
    two.net.load_state_dict(one.net.state_dict())

    single = train(one, *_fresh(kept), CONFIG)
    epochs: list[EpochStats] = []
    double = train_distributed(
        two, *_fresh(kept), CONFIG, processes=2, on_epoch=epochs.append, poll_seconds=0.1
    )

    assert [e.epoch for e in epochs] == [1, 2, 3]
    for a, b in zip(single.epochs, epochs, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-4)
        assert b.val_loss == pytest.approx(a.val_loss, rel=1e-4)
        assert b.top1_error == a.top1_error
    assert (double.best_epoch, double.top1_error, double.confusion) == (
        single.best_epoch,
        single.top1_error,
        single.confusion,
    )
    for key, value in one.net.state_dict().items():
        torch.testing.assert_close(two.net.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    assert single.top1_error < 0.5  # it learnt something: the comparison is not of noise


def test_a_cancel_seen_by_the_caller_stops_every_process(kept):
    backbone = backbone_build("lenet5", 10)
    asked = threading.Event()

    def should_stop() -> bool:
        return asked.is_set()

    def on_epoch(stats: EpochStats) -> None:
        asked.set()  # cancel once the first epoch is in

    config = TrainConfig(mode="full", epochs=50, lr=1e-2, patience=None, device="cpu")
    with pytest.raises(TrainingCancelled, match="cancelled in epoch"):
        train_distributed(
            backbone,
            *_fresh(kept),
            config,
            processes=2,
            on_epoch=on_epoch,
            should_stop=should_stop,
            poll_seconds=0.05,
        )


def test_shard_splits_rows_and_weights_them_to_the_whole_batch():
    inputs, targets = torch.arange(10).reshape(5, 2), torch.arange(5)

    rows0 = Shard(0, 2).split(inputs, targets)
    rows1 = Shard(1, 2).split(inputs, targets)
    empty = Shard(3, 4).split(inputs[:2], targets[:2])

    assert rows0[1].tolist() == [0, 2, 4] and rows0[2] == pytest.approx(3 * 2 / 5)
    assert rows1[1].tolist() == [1, 3] and rows1[2] == pytest.approx(2 * 2 / 5)
    assert empty[1].tolist() == [0] and empty[2] == 0.0  # one row, weighing nothing


def test_kept_batches_repeat_their_order_per_pass_on_every_copy(kept):
    first, second = _fresh(kept)[0], _fresh(kept)[0]
    a = [labels.tolist() for _, labels in first]
    b = [labels.tolist() for _, labels in second]
    again = [labels.tolist() for _, labels in first]

    assert a == b  # two ranks walk the same global batches
    assert again != a  # a new order each pass
    assert sorted(x for batch in a for x in batch) == sorted(kept[0].labels.tolist())
    assert [len(x) for x in a] == [32] * 7 + [26]


def test_processes_for_counts_the_gpus_when_asked_for_zero():
    assert processes_for(3) == 3
    assert processes_for(0) == max(1, torch.cuda.device_count())
