"""Dataset versions: what goes in, the stable split, the counts, and what is left out."""

from __future__ import annotations

import pytest

from datasets.models import DatasetItem, DatasetVersion
from datasets.services.versions import DatasetTooSmall, dataset_snapshot, split_of
from labeling.models import Candidate, Category, ObjectBox
from labeling.services.categories import category_archive
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def test_the_split_follows_the_hash_so_an_image_never_changes_sides():
    assert split_of("00000000" + "f" * 56, 0.2) == "val"
    assert split_of("33333333" + "0" * 56, 0.2) == "val"  # 0x33333333 / 2**32 = 0.19999...
    assert split_of("33333334" + "0" * 56, 0.2) == "train"
    assert split_of("ffffffff" + "0" * 56, 0.2) == "train"


def _accepted(category: Category, count: int, seed: int) -> list[Candidate]:
    files = [(f"{seed}-{i}.jpg", image_bytes(seed + i, size=(48, 40))) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    Candidate.objects.filter(category=category).update(state="accepted")
    return list(Candidate.objects.filter(category=category).order_by("id"))


def test_a_snapshot_freezes_single_label_images_with_counts_and_boxes(curator):
    cats = Category.objects.create(name="cat", slug="cat")
    dogs = Category.objects.create(name="dog", slug="dog")
    owls = Category.objects.create(name="owl", slug="owl")
    cat_items = _accepted(cats, 6, 100)
    _accepted(dogs, 5, 200)
    _accepted(owls, 2, 300)  # too few for a class
    # one cat image is also accepted as a dog: two answers for one image, so it stays out
    Candidate.objects.create(image=cat_items[0].image, category=dogs, state="accepted")
    ObjectBox.objects.create(candidate=cat_items[1], x0=1, y0=2, x1=30, y1=20, score=1.0, drawers=3)

    version = dataset_snapshot(val_share=0.5, min_per_class=5, by=curator)

    assert (version.number, version.created_by) == (1, curator)
    assert version.classes == [
        {"id": cats.pk, "slug": "cat", "name": "cat"},
        {"id": dogs.pk, "slug": "dog", "name": "dog"},
    ]
    assert version.skipped == {
        "accepted for several categories": 1,
        "class with too few images": 2,
    }
    assert (version.images, version.labels_at) == (10, 14)
    items = {item.image_id: item for item in version.items.select_related("image")}
    assert sorted(i.label for i in items.values()) == [0] * 5 + [1] * 5
    for item in items.values():
        assert item.split == split_of(item.image.sha256, 0.5)
    train = [sum(i.split == "train" and i.label == k for i in items.values()) for k in (0, 1)]
    val = [sum(i.split == "val" and i.label == k for i in items.values()) for k in (0, 1)]
    assert version.counts == {"train": train, "val": val}
    assert items[cat_items[1].image_id].boxes == [[1.0, 2.0, 30.0, 20.0]]

    # a second snapshot is the next number and puts every image on the same side
    again = dataset_snapshot(val_share=0.5, min_per_class=5)
    assert again.number == 2
    assert {i.image_id: i.split for i in again.items.all()} == {
        k: v.split for k, v in items.items()
    }
    assert DatasetItem.objects.count() == 20


def test_an_archived_category_stays_in_old_versions_and_out_of_new_ones():
    cats = Category.objects.create(name="cat", slug="cat")
    dogs = Category.objects.create(name="dog", slug="dog")
    owls = Category.objects.create(name="owl", slug="owl")
    for category, seed in ((cats, 500), (dogs, 600), (owls, 700)):
        _accepted(category, 3, seed)
    before = dataset_snapshot(min_per_class=3)

    category_archive(category=owls)
    after = dataset_snapshot(min_per_class=3)
    chosen = dataset_snapshot(categories=[cats, owls], min_per_class=3)

    assert [c["slug"] for c in before.classes] == ["cat", "dog", "owl"]
    assert before.items.count() == 9
    assert [c["slug"] for c in after.classes] == ["cat", "dog"]
    assert after.items.count() == 6
    assert after.skipped == {}
    # a curator who names an archived category still gets it
    assert [c["slug"] for c in chosen.classes] == ["cat", "owl"]


def test_too_few_classes_say_what_to_do():
    _accepted(Category.objects.create(name="cat", slug="cat"), 3, 400)

    with pytest.raises(DatasetTooSmall) as raised:
        dataset_snapshot(min_per_class=3)

    assert str(raised.value) == (
        "A dataset needs at least two classes with 3 or more accepted images each; 1 have "
        "that. Let the crowd label more, or lower CROWDNET_TRAIN_MIN_PER_CLASS."
    )
    assert DatasetVersion.objects.count() == 0
