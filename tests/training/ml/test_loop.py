"""The training loop on real (tiny) data, metrics by hand, checkpoints byte for byte."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from training.ml.backbones import backbone_build
from training.ml.data import DecodedBatches, ImageDataset, data_loader, preprocess_for
from training.ml.loop import (
    CheckpointCorrupt,
    EpochStats,
    Mistake,
    TrainConfig,
    TrainingCancelled,
    checkpoint_read,
    checkpoint_save,
    device_resolve,
    metrics,
    mistakes_rank,
    train,
    train_head_on_features,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny nets run fastest on one thread; two threads fight over this machine's two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digits() -> list[tuple[bytes, int]]:
    """scikit-learn's 1,797 8x8 handwritten digits as PNG bytes (0-16 scaled to 0-255)."""
    data = load_digits()
    return [
        (_png(image), int(label)) for image, label in zip(data.images, data.target, strict=True)
    ]


def _loaders(items: list[tuple[bytes, int]], train_count: int, val_count: int):
    preprocess = preprocess_for(backbone_build("lenet5", 10))
    train_set = ImageDataset(items[:train_count], preprocess)
    val_set = ImageDataset(items[train_count : train_count + val_count], preprocess)
    return (
        data_loader(train_set, 32, shuffle=True, seed=0),
        data_loader(val_set, 128, shuffle=False),
    )


def test_metrics_match_a_hand_computed_example() -> None:
    # given six classes (so top-5 is a real top-5) and five examples
    logits = torch.tensor(
        [
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 0: right
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 1: wrong, ranked 2nd
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 5: wrong, ranked 6th (out of the top 5)
            [0.0, 0.1, 9.0, 0.0, 0.0, 0.0],  # label 2: right
            [0.5, 0.4, 0.3, 0.2, 7.0, 0.1],  # label 1: wrong (says 4), ranked 3rd
        ]
    )
    labels = torch.tensor([0, 1, 5, 2, 1])

    # when
    top1, top5, per_class, confusion = metrics(logits, labels, 6)

    # then
    assert top1 == 3 / 5
    assert top5 == 1 / 5
    assert per_class == [0.0, 1.0, 0.0, None, None, 1.0]
    assert confusion == [
        [1, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 1, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
    ]


def test_mistakes_rank_the_wrong_answers_by_the_probability_left_on_the_label() -> None:
    logits = torch.tensor(
        [
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 0: right, not a mistake
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 1: says 0
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 5: says 0
            [0.5, 0.4, 0.3, 0.2, 7.0, 0.1],  # label 1: says 4, almost sure
        ]
    )
    ramp = sum(math.exp(v) for v in range(6))
    peak = sum(math.exp(v) for v in (0.5, 0.4, 0.3, 0.2, 7.0, 0.1))

    ranked = mistakes_rank(logits, torch.tensor([0, 1, 5, 1]), limit=10)

    assert [(m.index, m.label, m.predicted) for m in ranked] == [(3, 1, 4), (2, 5, 0), (1, 1, 0)]
    assert ranked[0].label_probability == pytest.approx(math.exp(0.4) / peak, rel=1e-5)
    assert ranked[0].confidence == pytest.approx(math.exp(7.0) / peak, rel=1e-5)
    assert ranked[1].label_probability == pytest.approx(1 / ramp, rel=1e-5)
    assert ranked[2].confidence == pytest.approx(math.exp(5) / ramp, rel=1e-5)
    assert mistakes_rank(logits, torch.tensor([0, 1, 5, 1]), limit=1) == ranked[:1]
    assert mistakes_rank(logits, torch.tensor([0, 0, 0, 4]), limit=10) == []
    assert isinstance(ranked[0], Mistake)


def test_a_diverged_row_is_no_mistake_to_rank_and_only_the_lowest_are_kept() -> None:
    # given 300 wrong answers, two of them from a diverged net (NaN, inf)
    logits = torch.zeros(300, 3)
    logits[:, 1] = torch.linspace(1.0, 4.0, 300)  # says 1; the label 0 gets ever less
    logits[10, 0] = float("nan")
    logits[20, 2] = float("inf")

    ranked = mistakes_rank(logits, torch.zeros(300, dtype=torch.long), limit=5)

    assert [m.index for m in ranked] == [299, 298, 297, 296, 295]
    assert all(math.isfinite(m.confidence + m.label_probability) for m in ranked)
    assert len(mistakes_rank(logits, torch.zeros(300, dtype=torch.long), limit=400)) == 298


def test_metrics_with_fewer_than_five_classes_use_top_k_of_all_classes() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])

    top1, top5, per_class, _ = metrics(logits, torch.tensor([0, 0]), 3)

    assert (top1, top5, per_class) == (0.5, 0.0, [0.5, None, None])


def test_lenet5_learns_the_digits(digits: list[tuple[bytes, int]]) -> None:
    # given 800 training and 300 validation digits upsampled to 32 px
    train_loader, val_loader = _loaders(digits, 800, 300)
    backbone = backbone_build("lenet5", 10)
    seen: list[EpochStats] = []
    config = TrainConfig(mode="full", epochs=5, lr=1e-2, patience=None, device="cpu")

    # when
    result = train(backbone, train_loader, val_loader, config, on_epoch=seen.append)

    # then: 5.7% error observed on this machine (30% after the first epoch)
    assert result.top1_error < 0.10
    assert result.top1_error == min(epoch.top1_error for epoch in result.epochs)
    assert result.top5_k == 5
    assert seen == result.epochs
    assert [epoch.epoch for epoch in result.epochs] == [1, 2, 3, 4, 5]
    assert result.device == "cpu"
    assert result.stopped_early is False
    assert sum(map(sum, result.confusion)) == 300
    assert len(result.per_class_error) == 10


def test_seeded_runs_repeat_and_feature_extraction_leaves_the_trunk_alone(
    digits: list[tuple[bytes, int]],
) -> None:
    config = TrainConfig(mode="feature_extraction", epochs=1, lr=1e-2, device="cpu")
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        backbone = backbone_build("lenet5", 10)
        trunk_before = {k: v.clone() for k, v in backbone.net.trunk.state_dict().items()}
        result = train(backbone, *_loaders(digits, 200, 100), config)
        for key, value in backbone.net.trunk.state_dict().items():
            assert torch.equal(value, trunk_before[key]), key
        runs.append((result.epochs[0].train_loss, result.epochs[0].val_loss, result.confusion))

    assert runs[0] == runs[1]


def test_decoded_uint8_batches_train_as_the_float_ones_do(
    digits: list[tuple[bytes, int]],
) -> None:
    # given the same 200 + 100 digits, in order, once as float tensors decoded every epoch and
    # once as uint8 pixels decoded once and normalised by the loop
    preprocess = preprocess_for(backbone_build("lenet5", 10))
    train_items, val_items = digits[:200], digits[200:300]
    floats = (
        data_loader(ImageDataset(train_items, preprocess), 32, shuffle=False),
        data_loader(ImageDataset(val_items, preprocess), 128, shuffle=False),
    )
    pixels = (
        DecodedBatches(train_items, preprocess, 32, shuffle=False),
        DecodedBatches(val_items, preprocess, 128, shuffle=False),
    )
    config = TrainConfig(mode="full", epochs=2, lr=1e-2, patience=None, device="cpu")

    # when each trains a net from the same seed
    runs = []
    for loaders in (floats, pixels):
        torch.manual_seed(3)
        result = train(backbone_build("lenet5", 10), *loaders, config)
        runs.append([(e.train_loss, e.val_loss, e.top1_error) for e in result.epochs])

    # then the losses and errors are the same, epoch for epoch
    assert runs[0] == runs[1]
    assert pixels[0].decoded and pixels[1].decoded


def test_early_stopping_after_one_epoch_without_improvement(
    digits: list[tuple[bytes, int]],
) -> None:
    # given a learning rate of 0: the validation error can never improve after epoch 1
    config = TrainConfig(mode="full", epochs=5, lr=0.0, weight_decay=0.0, patience=1, device="cpu")

    result = train(backbone_build("lenet5", 10), *_loaders(digits, 64, 64), config)

    assert [epoch.epoch for epoch in result.epochs] == [1, 2]
    assert result.epochs[0].top1_error == result.epochs[1].top1_error
    assert result.best_epoch == 1
    assert result.stopped_early is True


def test_should_stop_cancels_between_batches(digits: list[tuple[bytes, int]]) -> None:
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) == 3

    seen: list[EpochStats] = []
    config = TrainConfig(mode="full", epochs=3, device="cpu")
    with pytest.raises(TrainingCancelled):
        train(
            backbone_build("lenet5", 10),
            *_loaders(digits, 200, 50),
            config,
            on_epoch=seen.append,
            should_stop=should_stop,
        )

    assert len(asked) == 3
    assert seen == []


def test_linear_head_on_features_separates_clusters_and_fits_the_backbone_head() -> None:
    # given three well separated clusters in the 84-d feature space of LeNet-5's trunk
    rng = np.random.default_rng(0)
    centres = rng.normal(0.0, 3.0, size=(3, 84))
    labels = np.repeat(np.arange(3), 60)
    features = (centres[labels] + rng.normal(0.0, 1.0, size=(180, 84))).astype(np.float32)
    config = TrainConfig(mode="feature_extraction", epochs=20, lr=1e-2, device="cpu")

    # when
    state, result = train_head_on_features(
        features[::2], labels[::2], features[1::2], labels[1::2], 3, config
    )

    # then
    assert result.top1_error == 0.0
    assert result.top5_k == 3
    backbone = backbone_build("lenet5", 3)
    backbone.net.head.load_state_dict(state)
    with torch.no_grad():
        predicted = backbone.net.head(torch.from_numpy(features[1::2])).argmax(1)
    assert predicted.tolist() == labels[1::2].tolist()


@pytest.mark.parametrize(("feature_batch_size", "batches"), [(32, 4), (256, 1), (100, 1), (99, 2)])
def test_a_head_on_features_takes_batches_of_feature_batch_size(
    feature_batch_size: int, batches: int
) -> None:
    # given 100 training features, one epoch, and a check asked once a batch
    rng = np.random.default_rng(1)
    features = rng.normal(size=(120, 8)).astype(np.float32)
    labels = np.arange(120) % 2
    config = TrainConfig(
        mode="feature_extraction", epochs=1, feature_batch_size=feature_batch_size, device="cpu"
    )
    asked: list[int] = []

    train_head_on_features(
        features[:100],
        labels[:100],
        features[100:],
        labels[100:],
        2,
        config,
        should_stop=lambda: bool(asked.append(1)),
    )

    assert len(asked) == batches


def test_checkpoint_round_trips_and_its_hash_is_checked(tmp_path: Path) -> None:
    backbone = backbone_build("lenet5", 3)
    path = tmp_path / "runs" / "run-7.pt"

    digest = checkpoint_save(path, backbone, 3, ["cat", "dog", "fox"], {"run": 7, "lr": 0.01})
    payload = checkpoint_read(path, expected_sha256=digest)

    assert payload["sha256"] == digest
    assert (payload["backbone"], payload["num_classes"]) == ("lenet5", 3)
    assert payload["class_names"] == ["cat", "dog", "fox"]
    assert payload["extra"] == {"run": 7, "lr": 0.01}
    for key, value in backbone.net.state_dict().items():
        assert torch.equal(payload["state_dict"][key], value), key
    assert sorted(p.name for p in path.parent.iterdir()) == ["run-7.pt"]

    # when one byte is flipped
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(CheckpointCorrupt, match=digest):
        checkpoint_read(path, expected_sha256=digest)


def test_checkpoint_refuses_extras_it_could_not_load_back(tmp_path: Path) -> None:
    backbone = backbone_build("lenet5", 3)
    folder = tmp_path / "checkpoints"

    with pytest.raises(TypeError, match="PosixPath"):
        checkpoint_save(folder / "c.pt", backbone, 3, ["a", "b", "c"], {"p": tmp_path})
    with pytest.raises(ValueError, match="must agree"):
        checkpoint_save(folder / "c.pt", backbone, 2, ["a", "b"], {})

    assert not folder.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no usable CUDA GPU"):
        device_resolve("cuda")
    assert device_resolve("auto") == torch.device("cpu")


def test_config_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown mode 'frozen'"):
        TrainConfig(mode="frozen")
