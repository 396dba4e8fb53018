"""The layer table from the conv / pool / parameter formulas, held against torch."""

from __future__ import annotations

from functools import cache

import pytest
import torch
from torch import nn

from training.ml.architecture import LayerRow, layer_table, table_check, table_text
from training.ml.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODES,
    Backbone,
    Net,
    backbone_build,
    backbone_names,
    frozen_eval,
    mode_apply,
    parameter_counts,
)


@cache
def _built(name: str) -> Backbone:
    return backbone_build(name, 5)


def _toy(trunk: nn.Module, feature_dim: int, in_channels: int = 3) -> Backbone:
    """A hand-made backbone around `trunk` (whose output must be (N, feature_dim))."""
    return Backbone(
        name="toy",
        net=Net(trunk, nn.Linear(feature_dim, 2)),
        head_key="fc",
        last_block=(),
        input_size=8,
        min_size=8,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        in_channels=in_channels,
        feature_dim=feature_dim,
    )


class _PaddedConv(nn.Conv2d):
    """A conv that pads its input before convolving: the plain conv formula misses that."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, (1, 1, 1, 1)))


def test_lenet5_rows_are_the_1998_layers():
    backbone = backbone_build("lenet5", 10)

    rows = layer_table(backbone, "full")

    table = [(r.name, r.kind, r.input_shape, r.output_shape, r.params) for r in rows]
    assert table == [
        ("trunk.c1", "Conv2d", (1, 32, 32), (6, 28, 28), 156),
        ("trunk.tanh1", "Tanh", (6, 28, 28), (6, 28, 28), 0),
        ("trunk.s2", "AvgPool2d", (6, 28, 28), (6, 14, 14), 0),
        ("trunk.c3", "Conv2d", (6, 14, 14), (16, 10, 10), 2_416),
        ("trunk.tanh3", "Tanh", (16, 10, 10), (16, 10, 10), 0),
        ("trunk.s4", "AvgPool2d", (16, 10, 10), (16, 5, 5), 0),
        ("trunk.c5", "Conv2d", (16, 5, 5), (120, 1, 1), 48_120),
        ("trunk.tanh5", "Tanh", (120, 1, 1), (120, 1, 1), 0),
        ("trunk.flatten", "Flatten", (120, 1, 1), (120,), 0),
        ("trunk.f6", "Linear", (120,), (84,), 10_164),
        ("trunk.tanh6", "Tanh", (84,), (84,), 0),
        ("head", "Linear", (84,), (10,), 850),
    ]
    assert [r.index for r in rows] == list(range(12))
    assert all(r.trainable for r in rows if r.params)
    table_check(backbone, "full")


def test_lenet5_table_text_ends_with_the_totals():
    backbone = backbone_build("lenet5", 10)

    text = table_text(layer_table(backbone, "feature_extraction"))

    lines = text.splitlines()
    assert lines[0].split() == ["#", "layer", "kind", "input", "output", "params", "trains"]
    assert lines[2].split() == ["0", "trunk.c1", "Conv2d", "1x32x32", "6x28x28", "156", "no"]
    assert lines[3].split() == ["1", "trunk.tanh1", "Tanh", "6x28x28", "6x28x28", "0"]
    assert lines[13].split() == ["11", "head", "Linear", "84", "10", "850", "yes"]
    assert lines[-3:] == ["parameters: 61,706", "trainable:  850", "frozen:     60,856"]


@pytest.mark.parametrize("name", backbone_names())
def test_formulas_match_torch_for_every_backbone(name):
    backbone = _built(name)
    # min_size, and an odd size that is no multiple of any stride: floors and ceils show.
    sizes = [32, 35] if name == "lenet5" else [backbone.min_size, 67]

    for size in sizes:
        table_check(backbone, "fine_tune", size)

    rows = layer_table(backbone, "fine_tune", sizes[-1])
    assert sum(r.params for r in rows) == sum(p.numel() for p in backbone.net.parameters())
    assert rows[-1].name == "head"
    assert rows[-1].output_shape == (5,)


def test_zfnet_maps_have_the_papers_sizes_at_224():
    backbone = _built("zfnet")

    rows = layer_table(backbone, "full", 224)

    spatial = [r.output_shape for r in rows if r.kind in {"Conv2d", "MaxPool2d"}]
    assert spatial == [
        (96, 110, 110),
        (96, 55, 55),
        (256, 26, 26),
        (256, 13, 13),
        (384, 13, 13),
        (384, 13, 13),
        (256, 13, 13),
        (256, 6, 6),
    ]


def test_alexnet_at_224_has_61100840_parameters_96_percent_fully_connected():
    backbone = backbone_build("alexnet", 1000)

    rows = layer_table(backbone, "full", 224)

    total = sum(r.params for r in rows)
    fully_connected = sum(r.params for r in rows if r.kind == "Linear")
    assert total == 61_100_840
    assert fully_connected == 37_752_832 + 16_781_312 + 4_097_000
    assert round(100 * fully_connected / total) == 96
    assert rows[0].output_shape == (64, 55, 55)


@pytest.mark.parametrize("mode", MODES)
def test_trainable_rows_add_up_to_the_mode_counts(mode):
    backbone = _built("resnet18")

    rows = layer_table(backbone, mode, 32)

    trainable = sum(r.params for r in rows if r.trainable)
    frozen = sum(r.params for r in rows if not r.trainable)
    assert (trainable, frozen) == parameter_counts(backbone, mode)
    trains = {r.name for r in rows if r.trainable}
    head_only = {"head"}
    layer4 = {r.name for r in rows if r.params and r.name.startswith("trunk.layer4.")}
    expected = {
        "feature_extraction": head_only,
        "fine_tune": head_only | layer4,
        "full": {r.name for r in rows if r.params},
    }
    assert trains == expected[mode]
    assert len(layer4) == 10  # 4 convs, 4 batch norms, the downsample conv and its norm


def test_layer_table_leaves_the_nets_modes_as_they_were():
    backbone = backbone_build("resnet18", 3)
    backbone.net.train()
    mode_apply(backbone, "fine_tune")
    frozen_eval(backbone, "fine_tune")
    before = {n: m.training for n, m in backbone.net.named_modules()}

    layer_table(backbone, "fine_tune", 16)

    assert {n: m.training for n, m in backbone.net.named_modules()} == before
    assert [p.requires_grad for p in backbone.net.head.parameters()] == [True, True]


def test_dilated_grouped_conv_and_ceil_mode_pool_follow_the_formulas():
    trunk = nn.Sequential(
        nn.Conv2d(4, 8, kernel_size=3, dilation=2, groups=2, bias=False),  # K_eff = 5
        nn.MaxPool2d(kernel_size=2, stride=2, padding=1, ceil_mode=True),
        nn.Flatten(),
    )
    backbone = _toy(trunk, feature_dim=8 * 3 * 3, in_channels=4)

    rows = layer_table(backbone, "full", 9)

    # conv: floor((9 - 5 + 0) / 1) + 1 = 5; params (3*3*4/2) * 8 = 144, no bias
    # pool: ceil((5 + 2 - 2) / 2) + 1 = 4, but the 4th window would start at 6 >= 5 + 1: 3
    assert [(r.kind, r.output_shape, r.params) for r in rows] == [
        ("Conv2d", (8, 5, 5), 144),
        ("MaxPool2d", (8, 3, 3), 0),
        ("Flatten", (72,), 0),
        ("Linear", (2,), 146),
    ]
    table_check(backbone, "full", 9)


def test_check_names_the_first_layer_where_shapes_disagree():
    trunk = nn.Sequential(
        nn.Conv2d(3, 4, kernel_size=3), _PaddedConv(4, 4, kernel_size=3), nn.Flatten()
    )
    backbone = _toy(trunk, feature_dim=4 * 6 * 6)

    with pytest.raises(ValueError) as error:
        table_check(backbone, "full", 8)

    assert str(error.value) == (
        "layer 1 trunk.1 (_PaddedConv): formula gives output (4, 4, 4), torch gives (4, 6, 6)"
    )


def test_check_catches_parameters_that_never_ran():
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, kernel_size=8)
            self.spare = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).flatten(1)

    backbone = _toy(Unused(), feature_dim=2)

    with pytest.raises(ValueError) as error:
        table_check(backbone, "full", 8)

    assert str(error.value) == (
        "the layers' parameters add up to 392, the net has 404: some module with parameters "
        "never ran"
    )


def test_a_layer_without_a_formula_is_named():
    trunk = nn.Sequential(nn.Conv2d(3, 4, kernel_size=1), nn.PixelShuffle(2), nn.Flatten())
    backbone = _toy(trunk, feature_dim=1 * 16 * 16)

    with pytest.raises(ValueError, match=r"^no formula for layer trunk.1 \(PixelShuffle\)$"):
        layer_table(backbone, "full", 8)


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValueError, match="choose one of: feature_extraction, fine_tune, full"):
        layer_table(_built("resnet18"), "linear_probe", 16)


def test_rows_are_frozen_dataclasses():
    row = layer_table(backbone_build("lenet5", 10), "full")[0]

    assert row == LayerRow(0, "trunk.c1", "Conv2d", (1, 32, 32), (6, 28, 28), 156, True)
    with pytest.raises(AttributeError):
        row.params = 0  # type: ignore[misc]
