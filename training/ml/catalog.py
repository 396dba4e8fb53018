"""What a run can be asked for, importable without torch.

The web process lists backbones and modes on its forms and checks a run's request against them;
importing torch for that cost 14 s per process on a cold start (`bench/first_request.py`).
`training.ml.backbones` builds exactly these names (tested).
"""

from __future__ import annotations

import hashlib
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


class CheckpointCorrupt(ValueError):
    """A checkpoint's bytes differ from the recorded sha256, or it is not our format."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
