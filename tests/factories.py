"""factory_boy factories and real image bytes for tests."""

from __future__ import annotations

import io

import factory
import numpy as np
from PIL import Image as PILImage

from labeling.models import Category, User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.WORKER
    password = factory.django.Password(PASSWORD)


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    definition = "a thing to find in images"


def noise_image(seed: int, size: tuple[int, int] = (64, 48)) -> PILImage.Image:
    """A distinct RGB picture per seed: blocky noise, so perceptual hashes differ too."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))[: size[1], : size[0]]
    return PILImage.fromarray(pixels, "RGB")


def image_bytes(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (64, 48)) -> bytes:
    """Encoded bytes of noise_image(seed) in ``fmt``."""
    buffer = io.BytesIO()
    noise_image(seed, size).save(buffer, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def digits_version(digits: tuple[int, ...] = (0, 1), per_class: int = 40, val_share: float = 0.25):
    """scikit-learn's 8x8 digits (upscaled to 32x32 PNGs) of the given classes, ingested,
    accepted and frozen into a dataset version: a small real training set."""
    from sklearn.datasets import load_digits

    from labeling.models import Candidate
    from labeling.services.ingest import images_ingest
    from training.services.datasets import dataset_snapshot

    data = load_digits()
    for digit in digits:
        category = Category.objects.create(name=str(digit), slug=f"digit-{digit}")
        chosen = np.flatnonzero(digit == data.target)[:per_class]
        files = []
        for i in chosen:
            picture = PILImage.fromarray((data.images[i] * 255 / 16).astype(np.uint8)).resize(
                (32, 32)
            )
            buffer = io.BytesIO()
            picture.save(buffer, "PNG")
            files.append((f"{digit}-{i}.png", buffer.getvalue()))
        images_ingest(files=files, category=category, source="folder", uploader=None)
    Candidate.objects.update(state="accepted")
    return dataset_snapshot(val_share=val_share, min_per_class=5)


def promoted_lenet(version, path, **fields):
    """A real, tiny promoted model: LeNet-5 with random weights over the version's classes,
    saved at ``path``. The process-wide model cache is emptied first: test databases reuse ids.
    """
    from training.ml.backbones import backbone_build
    from training.ml.loop import checkpoint_save
    from training.models import TrainingRun
    from training.services import scoring

    scoring._cache.clear()
    classes = [c["slug"] for c in version.classes]
    sha256 = checkpoint_save(
        path, backbone_build("lenet5", len(classes)), len(classes), classes, {"image_size": 32}
    )
    return TrainingRun.objects.create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        status="done",
        active=None,
        current=True,
        checkpoint=str(path),
        checkpoint_sha256=sha256,
        **fields,
    )
