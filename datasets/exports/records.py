"""What an export is made of: categories and labelled images, as plain frozen records."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from labeling.wordnet_ids import is_wnid

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in the exported image's pixels


@dataclass(frozen=True)
class ExportCategory:
    """One class of the export: `index` is its label (0-based, in the version's order)."""

    index: int
    slug: str
    name: str
    wnid: str = ""
    supercategory: str = ""

    def folder(self, naming: str) -> str:
        """Its folder name: the WordNet-style id when asked for and well formed, else the slug
        (an id of another shape, from before ids were checked, never names a folder)."""
        return self.wnid if naming == "wnid" and is_wnid(self.wnid) else self.slug


@dataclass(frozen=True)
class ExportImage:
    """One labelled image: where its bytes come from and what the crowd decided about it."""

    id: int
    sha256: str
    extension: str  # "jpg", "png"...
    width: int
    height: int
    split: str  # "train" or "val"
    label: int  # ExportCategory.index
    boxes: tuple[Box, ...]
    confidence: float
    yes_votes: int
    no_votes: int
    unsure_votes: int
    read: Callable[[], bytes]

    @property
    def stem(self) -> str:
        """A file name stem fixed by the content: the same image has it in every export."""
        return self.sha256[:24]

    @property
    def file_name(self) -> str:
        return f"{self.stem}.{self.extension}"


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def safe_name(name: str) -> bool:
    """Whether `name` can be a folder or file name in an archive: no separators, no dots
    first (so no '..'), no control characters."""
    return bool(_SAFE_NAME.match(name))
