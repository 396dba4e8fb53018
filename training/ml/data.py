"""Images to normalised tensors for a backbone, and a Dataset and loader over labelled images.

Evaluation-style preprocessing, the same for training, validation and embedding (so cached
embeddings and a trained net see identical inputs): decode with Pillow (EXIF orientation
applied), resize the shorter side to ``round(size / crop_fraction)`` with an antialiased
bilinear filter, centre-crop ``size`` x ``size``, convert to the backbone's channel count and
normalise with its per-channel mean and std.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from training.ml.backbones import Backbone

ImageSource = str | os.PathLike[str] | bytes
CROP_FRACTION = 0.875  # ImageNet's evaluation habit: resize to 256, crop 224
_VERSION = "p1"  # bump when the pipeline changes what it outputs: it invalidates cached features


@dataclass(frozen=True)
class Preprocess:
    """Picklable image-to-tensor transform: PIL image -> float32 (channels, size, size)."""

    size: int
    resize: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return pixels_normalise(self.pixels(image), self.mean, self.std)

    def pixels(self, image: Image.Image) -> torch.Tensor:
        """Resized and centre-cropped, not yet normalised: uint8 (channels, size, size)."""
        image = image.convert("L" if self.channels == 1 else "RGB")
        width, height = image.size
        scale = self.resize / min(width, height)
        new_size = (max(self.size, round(width * scale)), max(self.size, round(height * scale)))
        image = image.resize(new_size, Image.Resampling.BILINEAR)
        left = (new_size[0] - self.size) // 2
        top = (new_size[1] - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        array = np.asarray(image, dtype=np.uint8).reshape(self.size, self.size, self.channels)
        return torch.from_numpy(array.transpose(2, 0, 1).copy())


def pixels_normalise(
    pixels: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """uint8 pixels (..., channels, height, width) to float32 ``(x / 255 - mean) / std``, on
    whatever device they are: the CPU in `Preprocess`, the GPU for batches decoded once."""
    channels = pixels.shape[-3]
    mean = torch.as_tensor(mean, dtype=torch.float32, device=pixels.device).reshape(channels, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=pixels.device).reshape(channels, 1, 1)
    return (pixels.to(torch.float32) / 255.0 - mean) / std


def preprocess_for(
    backbone: Backbone, size: int | None = None, crop_fraction: float = CROP_FRACTION
) -> Preprocess:
    """The transform feeding `backbone` square `size`-pixel inputs (default its input_size)."""
    size = backbone.input_size if size is None else size
    if size < backbone.min_size:
        raise ValueError(f"{backbone.name} needs inputs of at least {backbone.min_size} px")
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    channels = backbone.in_channels
    if channels not in (1, 3):
        raise ValueError(f"{backbone.name}: only 1 or 3 input channels, not {channels}")
    return Preprocess(
        size=size,
        resize=max(size, round(size / crop_fraction)),
        channels=channels,
        mean=tuple(backbone.mean[:channels]),
        std=tuple(backbone.std[:channels]),
    )


def preprocess_key(
    backbone: Backbone, size: int | None = None, crop_fraction: float = CROP_FRACTION
) -> str:
    """A short string naming everything that decides the tensors `preprocess_for` makes."""
    spec = preprocess_for(backbone, size, crop_fraction)
    numbers = ",".join(f"{value:.6g}" for value in (*spec.mean, *spec.std))
    digest = hashlib.sha256(numbers.encode()).hexdigest()[:8]
    return f"{_VERSION}-s{spec.size}-r{spec.resize}-c{spec.channels}-n{digest}"


def image_decode(source: ImageSource, draft: int | None = None) -> Image.Image:
    """Decode an image file path or its bytes, upright (EXIF orientation applied).

    `draft`: for JPEGs, let libjpeg decode at a reduced scale whose shorter side is still at
    least this many pixels (much faster on large photos).
    """
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else Path(source)) as image:
        if draft is not None and image.format == "JPEG":
            image.draft(None, (draft, draft))
        image.load()
        return ImageOps.exif_transpose(image)


class ImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """(image path or bytes, label) pairs -> (preprocessed tensor, label)."""

    def __init__(self, items: Sequence[tuple[ImageSource, int]], preprocess: Preprocess) -> None:
        self.items = list(items)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        source, label = self.items[index]
        image = image_decode(source, draft=self.preprocess.resize)
        return self.preprocess(image), int(label)


def _worker_seed(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def data_loader(
    dataset: Dataset[tuple[torch.Tensor, int]],
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader[tuple[torch.Tensor, int]]:
    """A loader whose order depends only on `seed` (its own generator, seeded workers)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=generator,
        worker_init_fn=_worker_seed if num_workers else None,
        persistent_workers=num_workers > 0,
    )


class PixelDataset(ImageDataset):
    """(image path or bytes, label) pairs -> (uint8 pixels, label, index): what
    `DecodedBatches` keeps."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:  # type: ignore[override]
        source, label = self.items[index]
        image = image_decode(source, draft=self.preprocess.resize)
        return self.preprocess.pixels(image), int(label), index


def decoded_bytes(count: int, preprocess: Preprocess) -> int:
    """Bytes `DecodedBatches` holds for `count` images."""
    return count * preprocess.channels * preprocess.size**2


class DecodedBatches:
    """Batches of images decoded once: the first pass decodes through a DataLoader (in
    `num_workers` processes) and yields each batch as it keeps it; later passes come from
    the kept uint8 pixels, on `device` (the GPU's memory, when training there), in a new
    seeded order each pass when `shuffle`. Batches are (uint8 pixels, labels): the training
    loop normalises them on the device (`pixels_normalise` with the backbone's mean and std).

    The first pass counts as done only when it was iterated to its end; one cut short (a
    cancelled run) is decoded again next time. Memory: `decoded_bytes`.
    """

    def __init__(
        self,
        items: Sequence[tuple[ImageSource, int]],
        preprocess: Preprocess,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        num_workers: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.count = len(items)
        size, channels = preprocess.size, preprocess.channels
        self.pixels = torch.empty(
            (self.count, channels, size, size), dtype=torch.uint8, device=self.device
        )
        self.labels = torch.tensor([int(label) for _, label in items], device=self.device)
        self.decoded = False
        self._first = data_loader(
            PixelDataset(items, preprocess),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            num_workers=num_workers,
            pin_memory=self.device.type == "cuda",
        )
        self._generator = torch.Generator().manual_seed(seed + 1)

    def __len__(self) -> int:
        return -(-self.count // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.decoded:
            yield from self._decode()
            return
        if self.shuffle:
            order = torch.randperm(self.count, generator=self._generator).to(self.device)
        else:
            order = torch.arange(self.count, device=self.device)
        for start in range(0, self.count, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.pixels[index], self.labels[index]

    def _decode(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for pixels, labels, index in self._first:
            pixels = pixels.to(self.device, non_blocking=True)
            self.pixels[index.to(self.device)] = pixels
            yield pixels, labels
        self.decoded = True
