"""Dataset versions: frozen snapshots of the crowd's accepted labels.

An image goes into a version when exactly one of the chosen categories accepted it (an image
accepted for two would teach a single-label classifier two answers). Its split comes from its
sha256, not from chance, so an image stays in train or in validation in every later version and
error rates stay comparable as the set grows. Another part of the hash reserves a share of images
for the evaluation sets (labeling.evaluation_reserve, training.services.evaluation): no version
takes those.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from datasets.models import DatasetItem, DatasetVersion
from labeling.evaluation_reserve import reserved_for_evaluation
from labeling.models import Candidate, Category, ObjectBox, User


class DatasetTooSmall(ValueError):
    """Fewer than two classes have enough accepted images; the message says what is missing."""


def split_of(sha256: str, val_share: float) -> str:
    """ "val" for a stable ``val_share`` of images, chosen by the first 32 bits of the hash."""
    return "val" if int(sha256[:8], 16) / 2**32 < val_share else "train"


def accepted_labels_count() -> int:
    """Accepted candidates in the whole collection (the automatic retrain watches this)."""
    return Candidate.objects.filter(state=Candidate.State.ACCEPTED).count()


Label = tuple[int, int, str]  # (candidate id, category id, image sha256)


def _single_labels(
    categories: Iterable[Category] | None,
) -> tuple[dict[int, Label], Counter[str]]:
    """The images a version may take, by image id, with one accepted category each, and the
    images left out by reason (accepted for several categories, reserved for evaluation)."""
    accepted = Candidate.objects.filter(state=Candidate.State.ACCEPTED)
    if categories is not None:
        accepted = accepted.filter(category__in=list(categories))
    else:
        accepted = accepted.filter(category__archived_at__isnull=True)
    rows = list(accepted.values_list("id", "image_id", "category_id", "image__sha256"))
    by_image: dict[int, list[Label]] = defaultdict(list)
    for candidate_id, image_id, category_id, sha256 in rows:
        by_image[image_id].append((candidate_id, category_id, sha256))
    skipped: Counter[str] = Counter()
    single = {}
    for image_id, entries in by_image.items():
        if reserved_for_evaluation(entries[0][2]):
            skipped["reserved for evaluation"] += 1
        elif len(entries) > 1:
            skipped["accepted for several categories"] += 1
        else:
            single[image_id] = entries[0]
    return single, skipped


def snapshot_categories(
    categories: Iterable[Category] | None = None, *, min_per_class: int | None = None
) -> list[int]:
    """The ids of the categories dataset_snapshot would take, sorted (its class order)."""
    min_per_class = (
        settings.CROWDNET_TRAIN_MIN_PER_CLASS if min_per_class is None else min_per_class
    )
    sizes = Counter(category_id for _, category_id, _ in _single_labels(categories)[0].values())
    return sorted(c for c, n in sizes.items() if n >= min_per_class)


def dataset_snapshot(
    *,
    categories: Iterable[Category] | None = None,
    val_share: float | None = None,
    min_per_class: int | None = None,
    by: User | None = None,
) -> DatasetVersion:
    """Freeze the accepted labels of ``categories`` (when None, every category not archived)
    into a new version; writes the version and its items in one transaction. Images reserved
    for evaluation are left out (counted in ``skipped``). Raises DatasetTooSmall saying what
    to do."""
    val_share = settings.CROWDNET_TRAIN_VAL_SHARE if val_share is None else val_share
    min_per_class = (
        settings.CROWDNET_TRAIN_MIN_PER_CLASS if min_per_class is None else min_per_class
    )
    single, skipped = _single_labels(categories)
    sizes = Counter(category_id for _, category_id, _ in single.values())
    kept = sorted(c for c, n in sizes.items() if n >= min_per_class)
    small = {c: n for c, n in sizes.items() if n < min_per_class}
    if small:
        skipped["class with too few images"] += sum(small.values())
    if len(kept) < 2:
        raise DatasetTooSmall(
            f"A dataset needs at least two classes with {min_per_class} or more accepted "
            f"images each; {len(kept)} have that. Let the crowd label more, or lower "
            "CROWDNET_TRAIN_MIN_PER_CLASS."
        )
    categories_by_id = Category.objects.in_bulk(kept)
    classes = [
        {"id": c, "slug": categories_by_id[c].slug, "name": categories_by_id[c].name} for c in kept
    ]
    index = {c: i for i, c in enumerate(kept)}
    boxes: dict[int, list[list[float]]] = defaultdict(list)
    chosen = [entry[0] for entry in single.values() if entry[1] in index]
    for candidate_id, *coords in ObjectBox.objects.filter(candidate_id__in=chosen).values_list(
        "candidate_id", "x0", "y0", "x1", "y1"
    ):
        boxes[candidate_id].append(coords)
    counts = {"train": [0] * len(kept), "val": [0] * len(kept)}
    items = []
    for image_id, (candidate_id, category_id, sha256) in sorted(single.items()):
        if category_id not in index:
            continue
        split = split_of(sha256, val_share)
        counts[split][index[category_id]] += 1
        items.append(
            DatasetItem(
                image_id=image_id,
                label=index[category_id],
                split=split,
                boxes=boxes.get(candidate_id, []),
            )
        )
    for attempt in range(3):
        try:
            with transaction.atomic():
                number = (DatasetVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
                version = DatasetVersion.objects.create(
                    number=number,
                    created_by=by,
                    classes=classes,
                    counts=counts,
                    val_share=val_share,
                    images=len(items),
                    labels_at=accepted_labels_count(),
                    skipped=dict(skipped),
                )
                for item in items:
                    item.version = version
                DatasetItem.objects.bulk_create(items, batch_size=2000)
            return version
        except IntegrityError:
            if attempt == 2:
                raise  # someone else kept taking the number: surface it
    raise AssertionError("unreachable")
