"""Weights sources: parsing, the offline rules, hash checks, real Lite0 ImageNet weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image
from skimage.data import chelsea

from training.ml.backbones import Backbone, backbone_build
from training.ml.catalog import WeightsSpec, weights_parse
from training.ml.data import preprocess_for
from training.ml.loop import checkpoint_save, sha256_file
from training.ml.weights import (
    LITE0_SHA256,
    WeightsCorrupt,
    WeightsMismatch,
    WeightsUnavailable,
    hash_prefix_check,
    lite0_file,
    state_dict_into_trunk,
    weights_load,
)

DIGEST = "ab" * 32


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $TORCH_HOME: torch.hub.get_dir() is $TORCH_HOME/hub."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def _state(backbone: Backbone) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in backbone.net.state_dict().items()}


def _same(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("imagenet", WeightsSpec("imagenet")),
        (" lite0 ", WeightsSpec("lite0")),
        ("random", WeightsSpec("random", seed=0)),
        ("random:7", WeightsSpec("random", seed=7)),
        ("checkpoint:/runs/7/model.pt", WeightsSpec("checkpoint", path="/runs/7/model.pt")),
        (
            f"checkpoint:/runs/7/model.pt#{DIGEST.upper()}",
            WeightsSpec("checkpoint", path="/runs/7/model.pt", sha256=DIGEST),
        ),
    ],
)
def test_weights_parse_reads_every_source(text: str, spec: WeightsSpec) -> None:
    assert weights_parse(text) == spec
    assert weights_parse(spec.text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("imagenet21k", "unknown weights 'imagenet21k'"),
        ("checkpoint:", "need a path"),
        ("checkpoint:/a.pt#abc", "64 lowercase hex"),
        ("random:-1", "non-negative integer seed"),
    ],
)
def test_weights_parse_rejects_malformed_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        weights_parse(text)


def test_missing_imagenet_file_names_the_file_the_folder_and_the_url(torch_home: Path) -> None:
    backbone = backbone_build("resnet18", 4)
    before = _state(backbone)

    with pytest.raises(WeightsUnavailable) as raised:
        weights_load(backbone, WeightsSpec("imagenet"))

    message = str(raised.value)
    assert isinstance(raised.value, FileNotFoundError)
    assert f"Put the file resnet18-f37072fd.pth in the directory {torch_home}/hub/checkpoints" in (
        message
    )
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert not (torch_home / "hub").exists()  # nothing was fetched
    assert _same(_state(backbone), before)


def test_imagenet_file_whose_hash_does_not_match_its_name_is_corrupt(torch_home: Path) -> None:
    # given a resnet18-shaped state dict (random, not ImageNet) under torchvision's file name
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), folder / "resnet18-f37072fd.pth")
    backbone = backbone_build("resnet18", 4)
    before = _state(backbone)

    with pytest.raises(WeightsCorrupt, match="starting with f37072fd"):
        weights_load(backbone, WeightsSpec("imagenet"))

    assert _same(_state(backbone), before)


def test_hash_prefix_check_accepts_a_file_named_after_its_own_hash(tmp_path: Path) -> None:
    source = tmp_path / "weights.pth"
    torch.save({"w": torch.arange(4.0)}, source)
    digest = sha256_file(source)
    named = source.rename(tmp_path / f"tiny-{digest[:8]}.pth")

    assert hash_prefix_check(named) == digest


def test_an_imagenet_shaped_state_dict_fills_the_trunk_and_leaves_the_head() -> None:
    # given a torchvision resnet18 state dict: trunk keys plus the 1000-class fc.*
    original = torchvision.models.resnet18().state_dict()
    backbone = backbone_build("resnet18", 4)
    head_before = {k: v.clone() for k, v in backbone.net.head.state_dict().items()}

    state_dict_into_trunk(backbone, original, "resnet18 test file")

    trunk = backbone.net.trunk.state_dict()
    assert all(torch.equal(trunk[k], v) for k, v in original.items() if not k.startswith("fc."))
    assert _same(dict(backbone.net.head.state_dict()), head_before)


def test_googlenet_drops_the_auxiliary_classifiers_of_the_imagenet_file() -> None:
    original = torchvision.models.googlenet(aux_logits=True, init_weights=False).state_dict()
    assert any(key.startswith("aux1.") for key in original)

    state_dict_into_trunk(backbone_build("googlenet", 4), original, "googlenet test file")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("layer4.1.bn2.bias"), r"missing \['layer4.1.bn2.bias'\]"),
        (lambda s: s.update({"extra.weight": torch.zeros(1)}), r"unexpected \['extra.weight'\]"),
        (
            lambda s: s.update({"conv1.weight": torch.zeros(1)}),
            r"size mismatch \['conv1.weight \(1,\) vs \(64, 3, 7, 7\)'\]",
        ),
        (lambda s: [s.pop(k) for k in ("fc.weight", "fc.bias")], "no fc.\\* classifier keys"),
    ],
)
def test_a_state_dict_that_does_not_fit_the_trunk_is_refused(change, message: str) -> None:
    original = torchvision.models.resnet18().state_dict()
    change(original)
    backbone = backbone_build("resnet18", 4)
    before = _state(backbone)

    with pytest.raises(WeightsMismatch, match=message):
        state_dict_into_trunk(backbone, original, "test file")

    assert _same(_state(backbone), before)


@pytest.mark.parametrize("name", ["lenet5", "zfnet"])
def test_backbones_without_imagenet_weights_say_so(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} has no ImageNet weights in torchvision"):
        weights_load(backbone_build(name, 4), WeightsSpec("imagenet"))


def test_lite0_weights_are_only_for_efficientnet_lite0() -> None:
    with pytest.raises(ValueError, match="efficientnet_lite0 only, not lenet5"):
        weights_load(backbone_build("lenet5", 4), WeightsSpec("lite0"))


def test_real_lite0_imagenet_weights_see_an_egyptian_cat() -> None:
    # given the packaged EfficientNet-Lite0 ImageNet weights, with their 1000-class fc as head
    backbone = backbone_build("efficientnet_lite0", 1000)
    weights_id = weights_load(backbone, WeightsSpec("imagenet"))
    file_state = torch.load(lite0_file(), weights_only=True, map_location="cpu")
    backbone.net.head.load_state_dict(
        {"weight": file_state["_fc.weight"], "bias": file_state["_fc.bias"]}
    )
    image = preprocess_for(backbone, 224)(Image.fromarray(chelsea()))

    # when
    with torch.no_grad():
        top5 = backbone.net.eval()(image[None])[0].topk(5).indices.tolist()

    # then: 285 Egyptian cat (p 0.38 observed), then 281 tabby, 282 tiger cat
    assert weights_id == f"lite0:{LITE0_SHA256[:12]}"
    assert top5[:3] == [285, 281, 282]


def test_checkpoint_weights_load_with_their_hash_and_id(tmp_path: Path) -> None:
    trained = backbone_build("lenet5", 3)
    path = tmp_path / "run.pt"
    digest = checkpoint_save(path, trained, 3, ["a", "b", "c"], {})
    fresh = backbone_build("lenet5", 3)

    weights_id = weights_load(fresh, weights_parse(f"checkpoint:{path}#{digest}"))

    assert weights_id == f"checkpoint:{digest[:12]}"
    assert _same(_state(fresh), _state(trained))


@pytest.mark.parametrize(
    ("name", "classes", "error", "message"),
    [
        ("lenet5", 3, WeightsCorrupt, "was recorded"),
        ("resnet18", 3, WeightsMismatch, "is a lenet5, not a resnet18"),
        ("lenet5", 4, WeightsMismatch, "has 3 classes, the backbone has 4"),
    ],
)
def test_checkpoint_weights_that_do_not_fit_are_refused(
    tmp_path: Path, name: str, classes: int, error: type[Exception], message: str
) -> None:
    path = tmp_path / "run.pt"
    digest = checkpoint_save(path, backbone_build("lenet5", 3), 3, ["a", "b", "c"], {})
    recorded = DIGEST if error is WeightsCorrupt else digest
    backbone = backbone_build(name, classes)
    before = _state(backbone)

    with pytest.raises(error, match=message):
        weights_load(backbone, WeightsSpec("checkpoint", path=str(path), sha256=recorded))

    assert _same(_state(backbone), before)


def test_missing_checkpoint_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        weights_load(backbone_build("lenet5", 3), weights_parse(f"checkpoint:{tmp_path}/no.pt"))


def test_random_weights_repeat_for_a_seed() -> None:
    first, second, other = (backbone_build("lenet5", 3) for _ in range(3))

    ids = [
        weights_load(first, weights_parse("random:5")),
        weights_load(second, weights_parse("random:5")),
    ]
    weights_load(other, weights_parse("random:6"))

    assert ids == ["random:5", "random:5"]
    assert _same(_state(first), _state(second))
    assert not _same(_state(first), _state(other))
