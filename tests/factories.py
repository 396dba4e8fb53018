"""factory_boy factories and real image bytes for tests."""

from __future__ import annotations

import io

import factory
import numpy as np
from PIL import Image as PILImage
from rest_framework.test import APIClient

from labeling.models import Candidate, Category, User
from labeling.services.ingest import images_ingest

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

    from datasets.services.versions import dataset_snapshot
    from labeling.models import Candidate
    from labeling.services.ingest import images_ingest

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


def promoted_lenet(version, name: str, **fields):
    """A real, tiny promoted model: LeNet-5 with random weights over the version's classes,
    saved as ``name`` in the checkpoint store. The process-wide model cache is emptied first:
    test databases reuse ids."""
    return _lenet_run(version, name, None, current=True, **fields)


def constant_lenet(version, name: str, answer: int, **fields):
    """A real, tiny finished run whose answers are known: LeNet-5 whose head always ranks
    class ``answer`` (an index into the version's classes) first, then the others in index
    order. Not current unless ``current=True`` is passed."""
    return _lenet_run(version, name, answer, **fields)


def _lenet_run(version, name: str, answer: int | None, **fields):
    import torch

    from config.file_stores import stored_write
    from training.ml.backbones import backbone_build
    from training.ml.loop import checkpoint_save
    from training.models import TrainingRun
    from training.services import scoring
    from training.services.checkpoints import checkpoint_stored

    scoring._cache.clear()
    classes = [c["slug"] for c in version.classes]
    backbone = backbone_build("lenet5", len(classes))
    if answer is not None:
        with torch.no_grad():
            backbone.net.head.weight.zero_()
            backbone.net.head.bias.copy_(-torch.arange(len(classes), dtype=torch.float32))
            backbone.net.head.bias[answer] = 10.0
    with stored_write(checkpoint_stored(name)) as path:
        sha256 = checkpoint_save(path, backbone, len(classes), classes, {"image_size": 32})
    return TrainingRun.objects.create(
        version=version,
        backbone="lenet5",
        weights="random",
        mode="full",
        status="done",
        active=None,
        checkpoint=name,
        checkpoint_sha256=sha256,
        **fields,
    )


def photos_version(per_class: int = 6, val_share: float = 0.34):
    """A small version with a hierarchy and boxes: "cat" and "dog" under "animal", and "car";
    noise photos ingested (64x48 JPEGs, the cars 400x300), accepted with votes and
    confidence, two boxes on the first cat and one on the first car, then frozen."""
    from datasets.services.versions import dataset_snapshot
    from labeling.models import Candidate, ObjectBox
    from labeling.services.ingest import images_ingest

    animal = Category.objects.create(name="animal", slug="animal", wnid="n00015388")
    classes = [
        Category.objects.create(name="cat", slug="cat", wnid="n02121808", parent=animal),
        Category.objects.create(name="dog", slug="dog", parent=animal),
        Category.objects.create(name="car", slug="car", wnid="n02958343"),
    ]
    for offset, category in enumerate(classes):
        size = (400, 300) if category.slug == "car" else (64, 48)
        files = [
            (f"{category.slug}-{i}.jpg", image_bytes(100 * offset + i, size=size))
            for i in range(per_class)
        ]
        images_ingest(files=files, category=category, source="folder", uploader=None)
    for number, candidate in enumerate(Candidate.objects.order_by("id")):
        candidate.state = "accepted"
        candidate.yes_votes, candidate.no_votes = 3 + number % 3, number % 2
        candidate.confidence = 0.80 + (number % 5) / 25
        candidate.save()
    first_cat = Candidate.objects.filter(category=classes[0]).order_by("id").first()
    first_car = Candidate.objects.filter(category=classes[2]).order_by("id").first()
    for candidate, coords in (
        (first_cat, (4.0, 6.0, 30.0, 40.0)),
        (first_cat, (32.5, 10.0, 60.0, 47.0)),
        (first_car, (0.0, 0.0, 400.0, 300.0)),
    ):
        ObjectBox.objects.create(
            candidate=candidate,
            x0=coords[0],
            y0=coords[1],
            x1=coords[2],
            y1=coords[3],
            score=1.0,
            drawers=3,
        )
    return dataset_snapshot(val_share=val_share, min_per_class=2)


def run_history():
    """Finished runs over three versions (100, 400, 900 images) for two backbones, one of
    them current, plus a failed and a running one that dashboards leave out."""
    from datetime import UTC, datetime, timedelta

    from datasets.models import DatasetVersion
    from training.models import TrainingRun

    versions = [
        DatasetVersion.objects.create(number=n, classes=[], counts={}, val_share=0.2, images=images)
        for n, images in ((1, 100), (2, 400), (3, 900))
    ]
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    rows = [
        (0, "efficientnet_lite0", "feature_extraction", 0.30, 0.10, False),
        (1, "efficientnet_lite0", "feature_extraction", 0.20, 0.05, False),
        (2, "efficientnet_lite0", "feature_extraction", 0.12, 0.02, True),
        (1, "resnet18", "fine_tune", 0.25, 0.08, False),
        (2, "resnet18", "fine_tune", 0.15, 0.04, False),
    ]
    runs = []
    for day, (version, backbone, mode, top1, top5, current) in enumerate(rows):
        runs.append(
            TrainingRun.objects.create(
                version=versions[version],
                backbone=backbone,
                weights="imagenet",
                mode=mode,
                status="done",
                active=None,
                current=current,
                top1_error=top1,
                top5_error=top5,
                finished_at=start + timedelta(days=day),
            )
        )
    TrainingRun.objects.create(
        version=versions[2],
        backbone="resnet18",
        weights="imagenet",
        mode="full",
        status="failed",
        active=None,
        error="boom",
    )
    TrainingRun.objects.create(
        version=versions[2],
        backbone="resnet18",
        weights="imagenet",
        mode="full",
        status="running",
    )
    return runs


EVALUATION_SCORES = {
    # evaluation set number: [(index into run_history(), top-1 errors, top-5 errors)]
    1: [(0, 54, 20), (1, 36, 8)],
    2: [(1, 96, 24), (2, 48, 12), (3, 120, 30), (4, 72, 19)],
}
EVALUATION_IMAGES = {1: 200, 2: 480}


def evaluation_history():
    """run_history()'s runs scored on two evaluation set versions of 10 classes (200 and 480
    images; run 0 only on v1, run 1 on both, the others on v2), plus a finished manual run
    with the best validation error and no score. Returns (runs, {number: set}, unscored)."""
    from datetime import timedelta

    from training.models import EvaluationScore, EvaluationSet, TrainingRun

    runs = run_history()
    TrainingRun.objects.filter(pk__in=[runs[1].pk, runs[2].pk]).update(trigger="schedule")
    for run in runs:
        run.refresh_from_db()
    classes = [{"id": i, "slug": f"c{i}", "name": f"class {i}"} for i in range(10)]
    sets = {}
    for number, images in EVALUATION_IMAGES.items():
        sets[number] = EvaluationSet.objects.create(
            category_key=",".join(str(i) for i in range(10)),
            number=number,
            classes=classes,
            counts=[images // 10] * 10,
            images=images,
            note=f"version {number}",
        )
        for index, top1, top5 in EVALUATION_SCORES[number]:
            EvaluationScore.objects.create(
                run=runs[index],
                evaluation=sets[number],
                images=images,
                top1_error=top1 / images,
                top5_error=top5 / images,
                top1_correct="0" * top1 + "1" * (images - top1),
                top5_correct="0" * top5 + "1" * (images - top5),
            )
    unscored = TrainingRun.objects.create(
        version=runs[2].version,
        backbone="resnet18",
        weights="imagenet",
        mode="full",
        trigger="manual",
        status="done",
        active=None,
        top1_error=0.035,
        top5_error=0.0,
        finished_at=runs[-1].finished_at + timedelta(days=1),
    )
    return runs, sets, unscored


def progress_seed(worker) -> dict[str, Category]:
    """cat (target 4): 2 accepted (3-0 and 2-1, one boxed), 1 rejected (1-3), 1 open, 1 in
    review; dog (default target): 1 accepted (2-0); owl: no candidates. Label votes from six
    workers: 3 two hours ago, 2 in this hour, 1 four days ago."""
    from datetime import timedelta

    from django.utils import timezone

    from labeling.models import Candidate, MicroTask, Vote
    from labeling.services.ingest import images_ingest

    cat = Category.objects.create(name="cat", slug="cat", target_images=4)
    dog = Category.objects.create(name="dog", slug="dog")
    Category.objects.create(name="owl", slug="owl")
    images_ingest(
        files=[(f"c{i}.jpg", image_bytes(i)) for i in range(5)],
        category=cat,
        source="upload",
        uploader=None,
    )
    images_ingest(files=[("d.jpg", image_bytes(50))], category=dog, source="upload", uploader=None)
    cats = list(Candidate.objects.filter(category=cat).order_by("id"))
    states = [
        ("accepted", 3, 0, "done"),
        ("accepted", 2, 1, "draw"),
        ("rejected", 1, 3, "none"),
        ("open", 1, 0, "none"),
        ("needs_review", 3, 4, "none"),
    ]
    for candidate, (state, yes, no, box_state) in zip(cats, states, strict=True):
        Candidate.objects.filter(pk=candidate.pk).update(
            state=state, yes_votes=yes, no_votes=no, box_state=box_state
        )
    Candidate.objects.filter(category=dog).update(state="accepted", yes_votes=2)
    task = MicroTask.objects.create(
        worker=worker, kind="verify", category=cat, expires_at=timezone.now()
    )
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    voters = iter(UserFactory(username=f"voter{i}") for i in range(6))
    for offset, count in ((timedelta(hours=2), 3), (timedelta(0), 2), (timedelta(days=4), 1)):
        for _ in range(count):
            vote = Vote.objects.create(
                worker=next(voters),
                task=task,
                kind="verify",
                question="label",
                candidate=cats[0],
                answer="yes",
                seconds=1.0,
            )
            Vote.objects.filter(pk=vote.pk).update(created_at=now - offset)
    return {"cat": cat, "dog": dog}


def zip_of(files: dict[str, bytes], name: str = "set.zip") -> io.BytesIO:
    """A zip archive in memory holding `files` (names as given, "../" included), rewound."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    buffer.seek(0)
    buffer.name = name
    return buffer


def layer_rows() -> list[dict]:
    """A stored layer table as a run keeps it: a frozen conv (156 parameters), a ReLU (none)
    and a trainable head (170): 326 in all."""

    def row(name, kind, shapes, params, trains):
        return {
            "name": name,
            "kind": kind,
            "input": shapes[0],
            "output": shapes[1],
            "params": params,
            "trains": trains,
        }

    return [
        row("c1", "Conv2d", ([1, 32, 32], [6, 28, 28]), 156, False),
        row("relu", "ReLU", ([6, 28, 28], [6, 28, 28]), 0, None),
        row("head", "Linear", ([84], [2]), 170, True),
    ]


def epoch_add(run, epoch: int, top1_error: float):
    """A finished epoch of ``run``: losses 1/epoch (training) and 1.2/epoch (validation),
    top-5 error 0, 100 images/s, 1 s."""
    from training.models import TrainingEpoch

    return TrainingEpoch.objects.create(
        run=run,
        epoch=epoch,
        train_loss=1 / epoch,
        val_loss=1.2 / epoch,
        top1_error=top1_error,
        top5_error=0.0,
        images_per_second=100.0,
        seconds=1.0,
    )


def label_votes_create(candidates, answers, *, gold: int = 0) -> None:
    """Label votes written straight to the database, as if each worker had answered one
    verify task: ``answers`` maps a worker to his yes (True) / no (False) per candidate, in
    order (a shorter list: he saw only the first ones). The first ``gold`` candidates are
    control items (their votes not counted); each candidate's tallies count the rest."""
    from django.utils import timezone

    from labeling.models import Candidate, MicroTask, Vote

    votes = []
    for worker, said in answers.items():
        task = MicroTask.objects.create(
            worker=worker,
            kind="verify",
            category=candidates[0].category,
            status="answered",
            expires_at=timezone.now(),
        )
        votes += [
            Vote(
                worker=worker,
                task=task,
                kind="verify",
                question="label",
                candidate=candidate,
                answer="yes" if yes else "no",
                is_gold=i < gold,
                counted=i >= gold,
                seconds=2.0,
            )
            for i, (candidate, yes) in enumerate(zip(candidates, said, strict=False))
        ]
    Vote.objects.bulk_create(votes)
    for candidate in candidates[gold:]:
        mine = [v.answer for v in votes if v.candidate_id == candidate.pk]
        Candidate.objects.filter(pk=candidate.pk).update(
            yes_votes=mine.count("yes"), no_votes=mine.count("no")
        )


def worker_client(username: str) -> tuple[APIClient, User]:
    """A new worker and an API client signed in as them (session and authentication)."""
    user = UserFactory(username=username, role="worker")
    client = APIClient()
    client.force_login(user)
    client.force_authenticate(user)
    return client, user


def candidate_pool(category, count: int, *, seed: int) -> list[Candidate]:
    """``count`` distinct 80x60 images ingested into ``category``: its open candidates, by id
    (image seeds ``seed`` onwards, so tests that need apart pools pick apart seeds)."""
    files = [(f"{i}.jpg", image_bytes(seed + i, size=(80, 60))) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    return list(Candidate.objects.filter(category=category).order_by("id"))


def accepted_images(category, count: int, seed: int, **fields) -> list[Candidate]:
    """``count`` new noise images of ``category``, ingested, whose candidates get ``fields``
    (state, votes, confidence...); in ingestion order."""
    files = [(f"{seed}-{i}.jpg", image_bytes(seed + i, size=(48, 40))) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    new = list(Candidate.objects.filter(category=category).order_by("-id")[:count])[::-1]
    Candidate.objects.filter(pk__in=[c.pk for c in new]).update(**fields)
    return [Candidate.objects.get(pk=c.pk) for c in new]


def wait_until_a_query_waits_for_a_lock(what: str) -> None:
    """Block until some query on this test database waits for a row lock (PostgreSQL), at most
    a minute; ``what`` names the query waited for in the failure."""
    import time

    from django.db import connection

    with connection.cursor() as cursor:
        for _ in range(6000):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError(f"{what} never reached the locked row")
