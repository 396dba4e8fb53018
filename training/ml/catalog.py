"""What a run can be asked for, importable without torch.

The web process lists backbones and modes on its forms and checks a run's request (backbone,
mode, starting weights) against them; importing torch for that cost 14 s per process on a cold
start (`bench/first_request.py`). `training.ml.backbones` builds exactly these names (tested),
`training.ml.weights` loads what a `WeightsSpec` names.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

MODES = ("feature_extraction", "fine_tune", "full")
# Oldest architectures first: the order forms and `manage.py train --backbone` offer them.
BACKBONES = (
    "lenet5",
    "alexnet",
    "zfnet",
    "vgg11",
    "vgg16",
    "googlenet",
    "resnet18",
    "resnet50",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "efficientnet_lite0",
)

# Where a run's starting weights come from (loaded by `training.ml.weights`).
SOURCES = ("imagenet", "lite0", "checkpoint", "random")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CheckpointCorrupt(ValueError):
    """A checkpoint's bytes differ from the recorded sha256, or it is not our format."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsSpec:
    """Where to take starting weights from; ``seed`` only matters for ``random``."""

    source: str
    path: str | None = None
    sha256: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown weights source {self.source!r}; expected one of {SOURCES}")
        if self.source == "checkpoint" and not self.path:
            raise ValueError("a checkpoint weights spec needs a path")
        if self.sha256 is not None and not _SHA256.match(self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")

    @property
    def text(self) -> str:
        """The spec written the way `weights_parse` reads it."""
        if self.source == "checkpoint":
            return f"checkpoint:{self.path}" + (f"#{self.sha256}" if self.sha256 else "")
        if self.source == "random" and self.seed:
            return f"random:{self.seed}"
        return self.source


def weights_parse(text: str) -> WeightsSpec:
    """Read "imagenet", "lite0", "random[:seed]" or "checkpoint:/path/file.pt[#sha256]"."""
    text = text.strip()
    if text in ("imagenet", "lite0", "random"):
        return WeightsSpec(source=text)
    if text.startswith("random:"):
        seed = text.removeprefix("random:")
        if not seed.isdigit():
            raise ValueError(f"random weights take a non-negative integer seed, got {seed!r}")
        return WeightsSpec(source="random", seed=int(seed))
    if text.startswith("checkpoint:"):
        path, _, digest = text.removeprefix("checkpoint:").partition("#")
        if not path:
            raise ValueError("checkpoint weights need a path: checkpoint:/path/file.pt[#sha256]")
        return WeightsSpec(source="checkpoint", path=path, sha256=digest.lower() or None)
    raise ValueError(
        f"unknown weights {text!r}: expected imagenet, lite0, random[:seed] or "
        "checkpoint:/path/file.pt[#sha256]"
    )
