"""Preprocessing for a backbone: geometry, channels, normalisation, cache keys, loaders."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.ml.backbones import backbone_build
from training.ml.data import (
    DecodedBatches,
    ImageDataset,
    data_loader,
    decoded_bytes,
    image_decode,
    pixels_normalise,
    preprocess_for,
    preprocess_key,
)


def _encoded(image: Image.Image, image_format: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def test_rgb_image_becomes_a_normalised_square_tensor() -> None:
    # given a 64x48 image of one colour
    backbone = backbone_build("resnet18", 4)
    image = Image.new("RGB", (64, 48), (255, 0, 128))

    tensor = preprocess_for(backbone, 32)(image)

    assert tensor.shape == (3, 32, 32)
    assert tensor.dtype == torch.float32
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    for channel, value in enumerate(expected):
        assert torch.allclose(tensor[channel], torch.full((32, 32), value), atol=1e-5)


def test_grayscale_is_repeated_to_three_channels_and_colour_greyed_for_lenet() -> None:
    grey = Image.new("L", (40, 40), 200)
    colour = Image.new("RGB", (40, 40), (200, 200, 200))

    resnet = preprocess_for(backbone_build("resnet18", 4), 32)(grey)
    lenet = preprocess_for(backbone_build("lenet5", 4))(colour)

    assert resnet.shape == (3, 32, 32)
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    assert torch.allclose(resnet * std + mean, torch.full((3, 32, 32), 200 / 255), atol=1e-5)
    assert lenet.shape == (1, 32, 32)
    assert torch.allclose(lenet, torch.full((1, 32, 32), (200 / 255 - 0.5) / 0.5), atol=1e-5)


def test_shorter_side_is_resized_then_the_centre_is_cropped() -> None:
    # given a 100x50 image: black left half, white right half
    pixels = np.zeros((50, 100), dtype=np.uint8)
    pixels[:, 50:] = 255
    preprocess = preprocess_for(backbone_build("lenet5", 4))

    # when: shorter side 50 -> 37 (32 / 0.875), so 74x37, and the central 32x32 kept
    tensor = preprocess(Image.fromarray(pixels))[0]

    # then the black/white edge (x = 37 of 74) falls at crop column 16 (37 - 21)
    assert (preprocess.size, preprocess.resize) == (32, 37)
    assert torch.all(tensor[:, :15] == -1.0)
    assert torch.all(tensor[:, 17:] == 1.0)


def test_preprocess_key_names_everything_that_changes_the_tensors() -> None:
    resnet = backbone_build("resnet18", 4)
    keys = {
        preprocess_key(resnet),
        preprocess_key(resnet, 160),
        preprocess_key(resnet, 224, crop_fraction=1.0),
        preprocess_key(backbone_build("lenet5", 4)),
    }

    assert preprocess_key(resnet).startswith("p1-s224-r256-c3-n")
    assert preprocess_key(resnet) == preprocess_key(backbone_build("efficientnet_b0", 9))
    assert len(keys) == 4


def test_sizes_below_the_backbone_minimum_are_refused() -> None:
    with pytest.raises(ValueError, match="lenet5 needs inputs of at least 32 px"):
        preprocess_for(backbone_build("lenet5", 4), 16)


def test_dataset_decodes_paths_and_bytes_alike(tmp_path: Path) -> None:
    image = Image.fromarray(np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3))
    path = tmp_path / "a.png"
    image.save(path)
    dataset = ImageDataset(
        [(path, 2), (str(path), 3), (_encoded(image), 1)],
        preprocess_for(backbone_build("resnet18", 4), 32),
    )

    (first, label_a), (second, label_b), (third, label_c) = dataset[0], dataset[1], dataset[2]

    assert (len(dataset), label_a, label_b, label_c) == (3, 2, 3, 1)
    assert torch.equal(first, second) and torch.equal(first, third)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view

    assert image_decode(_encoded(image, "JPEG", exif=exif)).size == (20, 40)


def test_jpeg_draft_decodes_smaller_but_never_below_the_asked_size() -> None:
    photo = _encoded(Image.new("RGB", (800, 600), (10, 20, 30)), "JPEG")

    assert image_decode(photo, draft=256).size == (400, 300)
    assert image_decode(photo).size == (800, 600)


def test_loader_order_depends_only_on_the_seed() -> None:
    dataset = [(torch.zeros(1), label) for label in range(20)]

    def order(seed: int) -> list[int]:
        loader = data_loader(dataset, 5, shuffle=True, seed=seed)  # type: ignore[arg-type]
        return [label for _, labels in loader for label in labels.tolist()]

    assert order(3) == order(3)
    assert order(3) != order(4)
    assert sorted(order(3)) == list(range(20))


def _digit_items(count: int) -> list[tuple[bytes, int]]:
    """`count` images whose every pixel is its index (so a batch says which images it holds)."""
    return [(_encoded(Image.new("L", (20, 20), index)), index % 3) for index in range(count)]


def test_preprocess_is_its_pixels_normalised_bit_for_bit() -> None:
    backbone = backbone_build("resnet18", 4)
    image = Image.effect_mandelbrot((70, 50), (-2.0, -1.5, 1.0, 1.5), 50).convert("RGB")
    preprocess = preprocess_for(backbone, 32)

    pixels = preprocess.pixels(image)

    assert pixels.dtype == torch.uint8
    assert pixels.shape == (3, 32, 32)
    expected = (pixels.numpy().astype(np.float32) / 255.0 - np.float32(0.485)) / np.float32(0.229)
    assert torch.equal(preprocess(image)[0], torch.from_numpy(expected[0]))
    assert torch.equal(pixels_normalise(pixels, preprocess.mean, preprocess.std), preprocess(image))


def test_decoded_batches_decode_once_then_serve_the_kept_pixels_in_a_new_order() -> None:
    # given 10 images (pixel value = index) in batches of 4
    items = _digit_items(10)
    preprocess = preprocess_for(backbone_build("lenet5", 3), 32)
    batches = DecodedBatches(items, preprocess, 4, shuffle=True, seed=5)

    def epoch() -> list[tuple[list[int], list[int]]]:
        return [
            ([int(image[0, 0, 0]) for image in pixels], labels.tolist())
            for pixels, labels in batches
        ]

    # when three passes run
    first = epoch()
    assert batches.decoded is True
    batches._first = None  # type: ignore[assignment]  # a second decode would now fail
    second, third = epoch(), epoch()

    # then the first pass decoded every image once, later ones reuse the pixels, and every
    # pass holds each image once with its own label, in batches of 4, 4, 2
    for run in (first, second, third):
        assert [len(values) for values, _ in run] == [4, 4, 2]
        values = [v for batch, _ in run for v in batch]
        labels = [label for _, batch in run for label in batch]
        assert sorted(values) == list(range(10))
        assert labels == [v % 3 for v in values]
    assert len({tuple(v for batch, _ in run for v in batch) for run in (first, second, third)}) == 3
    assert len(batches) == 3
    assert decoded_bytes(10, preprocess) == 10 * 32 * 32
    assert torch.equal(batches.pixels[7], preprocess.pixels(image_decode(items[7][0])))


def test_decoded_batches_in_order_and_a_cut_pass_decodes_again() -> None:
    items = _digit_items(6)
    batches = DecodedBatches(
        items, preprocess_for(backbone_build("lenet5", 3), 32), 4, shuffle=False
    )

    for _ in batches:
        break  # a cancelled run stops in its first pass
    assert batches.decoded is False

    values = [int(image[0, 0, 0]) for pixels, _ in batches for image in pixels]
    again = [int(image[0, 0, 0]) for pixels, _ in batches for image in pixels]

    assert values == again == [0, 1, 2, 3, 4, 5]
    assert batches.decoded is True
