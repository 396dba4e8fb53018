"""The ImageNet backbones we fine-tune, split into a trunk and a new classifier head.

Pure PyTorch, never imports Django. Every net is built with random weights; ImageNet state dicts
are loaded elsewhere into `Net.trunk` with `strict=False` (the trunk keeps the original module
names, so the only unexpected keys are the old head's, `head_key.*`).

Modes (BACKGROUND "Transfer learning"): `feature_extraction` trains the head only, `fine_tune`
also the last conv block(s) of the trunk (at a lower learning rate), `full` everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torchvision
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from training.ml.catalog import BACKBONES, MODES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# LeNet-5 takes one grey channel scaled to about [-1, 1]: x' = (x - 0.5) / 0.5. Repeated to three
# entries so every backbone has the same tuple type; a single-channel pipeline uses entry 0.
LENET_MEAN = (0.5, 0.5, 0.5)
LENET_STD = (0.5, 0.5, 0.5)


class Net(nn.Module):
    """trunk (everything up to the new head, output (N, feature_dim)) followed by head."""

    def __init__(self, trunk: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.trunk(x))
        return logits


@dataclass
class Backbone:
    """A built net and what the training code needs to know about it.

    `head_key` is where the original classifier sat in the torchvision-style model; the trunk's
    state_dict keys are the original keys minus `head_key.*`. `last_block` holds trunk
    module-name prefixes of the last conv block(s) and of whatever lies between them and the
    head (for example AlexNet's and VGG's fully connected layers, GoogLeNet's dropout): the
    part unfrozen in `fine_tune`. Sizes are pixels of a square input; mean and std are per RGB
    channel on the [0, 1] scale.
    """

    name: str
    net: Net
    head_key: str
    last_block: tuple[str, ...]
    input_size: int
    min_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    in_channels: int
    feature_dim: int
    max_size: int | None = None  # largest input that runs, when there is one (LeNet-5: 35)

    def size_for(self, wanted: int | None) -> int:
        """The input size to use when ``wanted`` is asked for: within what the net takes."""
        size = max(wanted or self.input_size, self.min_size)
        return min(size, self.max_size) if self.max_size is not None else size


class LeNet5(nn.Module):
    """LeCun et al. 1998 on a 1x32x32 input: C1 6@5x5, S2, C3 16@5x5 (full connections), S4,
    C5 120@5x5 as a conv, F6 84, output K; tanh. S2/S4 are 2x2 average pools without the
    paper's trainable coefficients, so K=10 gives 61,706 parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, kernel_size=5)
        self.tanh1 = nn.Tanh()
        self.s2 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)
        self.tanh3 = nn.Tanh()
        self.s4 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)
        self.tanh5 = nn.Tanh()
        self.flatten = nn.Flatten()
        self.f6 = nn.Linear(120, 84)
        self.tanh6 = nn.Tanh()
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2(self.tanh1(self.c1(x)))
        x = self.s4(self.tanh3(self.c3(x)))
        x = self.flatten(self.tanh5(self.c5(x)))
        logits: torch.Tensor = self.output(self.tanh6(self.f6(x)))
        return logits


class ZFNet(nn.Module):
    """Zeiler & Fergus 2013 in torchvision's AlexNet layout (features / avgpool / classifier).

    AlexNet with a 7x7 stride-2 first conv and a stride-2 second conv; the paper's filter
    counts 96, 256, 384, 384, 256 and its map sizes at 224 (110, 55, 26, 13, 13, 13, 6). Like
    torchvision's AlexNet it leaves out the local response normalisation.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=7, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            nn.Conv2d(96, 256, kernel_size=5, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        logits: torch.Tensor = self.classifier(torch.flatten(x, 1))
        return logits


@dataclass(frozen=True)
class _Spec:
    make: Callable[[], nn.Module]  # the whole model with its original 1000-class head
    head_key: str
    last_block: tuple[str, ...]
    min_size: int
    input_size: int = 224
    max_size: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    in_channels: int = 3


def _googlenet() -> nn.Module:
    # transform_input=True as torchvision sets it with its ImageNet weights (ported from
    # TensorFlow): the net itself maps ImageNet-normalised RGB to the (x - 0.5) / 0.5 it was
    # trained on, so every backbone takes the same normalisation. No parameters, no keys.
    model: nn.Module = torchvision.models.googlenet(
        weights=None, aux_logits=False, transform_input=True, init_weights=True
    )
    return model


def _efficientnet_lite0() -> nn.Module:
    # image_size=None picks the package's dynamic TF-"SAME" padding, right at any input size
    # (its static padding is computed once for 224 px). Same state_dict keys either way.
    model: nn.Module = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    return model


# min_size: the smallest square input the whole net runs on, found by trying each size.
_SPECS: dict[str, _Spec] = {
    "lenet5": _Spec(
        make=LeNet5,
        head_key="output",
        last_block=("c5", "f6"),
        min_size=32,  # C5 must come out 1x1 for F6: runs at 32 to 35 px only
        input_size=32,
        max_size=35,
        mean=LENET_MEAN,
        std=LENET_STD,
        in_channels=1,
    ),
    "alexnet": _Spec(
        make=lambda: torchvision.models.alexnet(weights=None),
        head_key="classifier.6",
        last_block=("features.6", "features.8", "features.10", "classifier"),
        min_size=63,
    ),
    "zfnet": _Spec(
        make=ZFNet,
        head_key="classifier.6",
        last_block=("features.6", "features.8", "features.10", "classifier"),
        min_size=63,
    ),
    "vgg11": _Spec(
        make=lambda: torchvision.models.vgg11(weights=None),
        head_key="classifier.6",
        last_block=("features.16", "features.18", "classifier"),
        min_size=32,
    ),
    "vgg16": _Spec(
        make=lambda: torchvision.models.vgg16(weights=None),
        head_key="classifier.6",
        last_block=("features.24", "features.26", "features.28", "classifier"),
        min_size=32,
    ),
    "googlenet": _Spec(
        make=_googlenet,
        head_key="fc",
        last_block=("inception5a", "inception5b", "dropout"),
        min_size=15,
    ),
    "resnet18": _Spec(
        make=lambda: torchvision.models.resnet18(weights=None),
        head_key="fc",
        last_block=("layer4",),
        min_size=1,
    ),
    "resnet50": _Spec(
        make=lambda: torchvision.models.resnet50(weights=None),
        head_key="fc",
        last_block=("layer4",),
        min_size=1,
    ),
    "mobilenet_v3_small": _Spec(
        make=lambda: torchvision.models.mobilenet_v3_small(weights=None),
        head_key="classifier.3",
        last_block=("features.11", "features.12", "classifier"),
        min_size=1,
    ),
    "efficientnet_b0": _Spec(
        make=lambda: torchvision.models.efficientnet_b0(weights=None),
        head_key="classifier.1",
        last_block=("features.7", "features.8", "classifier"),
        min_size=1,
    ),
    "efficientnet_lite0": _Spec(
        make=_efficientnet_lite0,
        head_key="_fc",
        last_block=("_blocks.15", "_conv_head", "_bn1", "_dropout"),
        min_size=1,
    ),
}


def backbone_names() -> list[str]:
    """The known backbone names, in a fixed order (oldest architectures first)."""
    return list(BACKBONES)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")


def backbone_build(name: str, num_classes: int) -> Backbone:
    """A randomly initialised backbone with a new linear head of `num_classes` outputs."""
    spec = _SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(_SPECS)}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    trunk = spec.make()
    old_head = trunk.get_submodule(spec.head_key)
    if not isinstance(old_head, nn.Linear):
        raise TypeError(f"{name}: {spec.head_key} is {type(old_head).__name__}, not Linear")
    parent_key, _, child = spec.head_key.rpartition(".")
    trunk.get_submodule(parent_key).register_module(child, nn.Identity())
    feature_dim = old_head.in_features
    return Backbone(
        name=name,
        net=Net(trunk, nn.Linear(feature_dim, num_classes)),
        head_key=spec.head_key,
        last_block=spec.last_block,
        input_size=spec.input_size,
        min_size=spec.min_size,
        mean=spec.mean,
        std=spec.std,
        in_channels=spec.in_channels,
        feature_dim=feature_dim,
        max_size=spec.max_size,
    )


def _in_prefixes(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _unfrozen_prefixes(backbone: Backbone, mode: str) -> tuple[str, ...]:
    """Trunk module-name prefixes that train in `mode` ("" stands for the whole trunk)."""
    _check_mode(mode)
    if mode == "full":
        return ("",)
    if mode == "fine_tune":
        return backbone.last_block
    return ()


def _trunk_trains(name: str, prefixes: tuple[str, ...]) -> bool:
    return prefixes == ("",) or _in_prefixes(name, prefixes)


def _trainable_params(backbone: Backbone, mode: str) -> Iterator[tuple[str, nn.Parameter, bool]]:
    """(name, parameter, trainable in `mode`) for every parameter, trunk first."""
    prefixes = _unfrozen_prefixes(backbone, mode)
    for name, param in backbone.net.trunk.named_parameters():
        yield f"trunk.{name}", param, _trunk_trains(name, prefixes)
    for name, param in backbone.net.head.named_parameters():
        yield f"head.{name}", param, True


def trainable_map(backbone: Backbone, mode: str) -> dict[str, bool]:
    """Whether each parameter of `backbone.net` (by its name there) trains in `mode`."""
    return {name: trains for name, _, trains in _trainable_params(backbone, mode)}


def mode_apply(backbone: Backbone, mode: str) -> None:
    """Set requires_grad on every parameter: head only, last block(s) + head, or all."""
    for _, param, trainable in _trainable_params(backbone, mode):
        param.requires_grad_(trainable)


def frozen_eval(backbone: Backbone, mode: str) -> None:
    """Call after `net.train()`: put every module in the frozen part of the trunk into eval mode.

    BatchNorm there stops updating its running statistics; Dropout, stochastic depth and
    EfficientNet-Lite's drop-connect switch off, so frozen features stay deterministic.
    """
    prefixes = _unfrozen_prefixes(backbone, mode)
    trunk = backbone.net.trunk
    if prefixes == ("",):
        return
    if not prefixes:
        trunk.train(False)
        return
    for name, module in trunk.named_modules():
        # Skip the training block(s) and their ancestors: train(False) recurses into children.
        if not name or _trunk_trains(name, prefixes):
            continue
        if any(_in_prefixes(p, (name,)) for p in prefixes):
            continue
        module.train(False)


def param_groups(
    backbone: Backbone, mode: str, lr: float, backbone_lr_scale: float = 0.1
) -> list[dict[str, object]]:
    """Optimizer parameter groups: the head at `lr`, the trainable trunk at lr * scale.

    Only parameters that train in `mode`; the trunk group is left out when it would be empty.
    """
    trunk: list[nn.Parameter] = []
    head: list[nn.Parameter] = []
    for name, param, trainable in _trainable_params(backbone, mode):
        if trainable:
            (head if name.startswith("head.") else trunk).append(param)
    groups: list[dict[str, object]] = [{"name": "head", "params": head, "lr": lr}]
    if trunk:
        groups.append({"name": "trunk", "params": trunk, "lr": lr * backbone_lr_scale})
    return groups


def parameter_counts(backbone: Backbone, mode: str) -> tuple[int, int]:
    """(trainable, frozen) parameter counts in `mode`, without touching requires_grad."""
    trainable = frozen = 0
    for _, param, trains in _trainable_params(backbone, mode):
        if trains:
            trainable += param.numel()
        else:
            frozen += param.numel()
    return trainable, frozen
