"""manage.py import_images and load_demo."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from demo.models import DemoTruth
from demo.personas import pixel_box
from labeling.evaluation_reserve import reserved_for_evaluation
from labeling.models import Candidate, Category, GoldAnswer, Image, User
from tests.conftest import stored_files
from tests.factories import image_bytes
from training.models import EvaluationSet

pytestmark = pytest.mark.django_db


def test_folder_import_walks_subfolders_and_reports(category, tmp_path, capsys):
    # given a folder with images in a subfolder, a fake image and a dotfile
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(image_bytes(1))
    (folder / "sub" / "b.png").write_bytes(image_bytes(2, "PNG"))
    (folder / "sub" / "c.jpg").write_bytes(b"not really a jpeg")
    (folder / ".hidden.jpg").write_bytes(image_bytes(3))
    (folder / "readme.txt").write_text("ignored: not an image suffix")

    # when imported
    call_command("import_images", str(folder), "--category", "cat", verbosity=0)

    # then two images are stored from the folder, one rejected, the others not looked at
    assert capsys.readouterr().out == "photos -> cat: 2 added, 0 duplicates, 1 rejected\n"
    assert sorted(Image.objects.values_list("original_name", flat=True)) == ["a.jpg", "sub/b.png"]
    assert set(Image.objects.values_list("source", flat=True)) == {"folder"}


def test_archive_import(category, tmp_path, capsys):
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("1.jpg", image_bytes(4))
        archive.writestr("2.jpg", image_bytes(5))
        archive.writestr("1-again.jpg", image_bytes(4))

    call_command("import_images", str(path), "--category", "cat", verbosity=0)

    assert capsys.readouterr().out == "set.zip -> cat: 2 added, 1 duplicates, 0 rejected\n"
    assert set(Image.objects.values_list("source", flat=True)) == {"archive"}


def test_total_failure_exits_non_zero(category, tmp_path, media_root):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(b"junk")

    with pytest.raises(CommandError, match="Nothing could be imported; run with --show-rejected"):
        call_command("import_images", str(folder), "--category", "cat", verbosity=0)
    assert Image.objects.count() == 0
    assert stored_files(media_root) == []


def test_refused_archive_says_why(settings, category, tmp_path):
    settings.CROWDNET_ARCHIVE_MAX_ENTRIES = 2
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(3):
            archive.writestr(f"{index}.jpg", image_bytes(index))

    with pytest.raises(CommandError, match=r"^many\.zip: "):
        call_command("import_images", str(path), "--category", "cat", verbosity=0)
    assert Image.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/place", "--category", "cat"], "/no/such/place does not exist"),
        ([".", "--category", "unicorn"], "No category with slug 'unicorn'. Known: cat."),
        ([".", "--category", "cat", "--user", "ghost"], "No user named 'ghost'."),
    ],
)
def test_bad_arguments_raise_command_errors(args, message, category):
    with pytest.raises(CommandError, match=message):
        call_command("import_images", *args, verbosity=0)
    assert Image.objects.count() == 0


def test_load_demo_builds_pools_with_a_known_share_of_wrong_images(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path

    # when the demo loads 200 digits with 10% wrong images per pool, without photos
    call_command("load_demo", "--limit", "200", "--no-photos", verbosity=0)

    # then each digit category holds its own digits plus the wrong share, truth kept aside
    digits = Category.objects.get(slug="digit")
    assert Category.objects.filter(parent=digits).count() == 10
    for name in ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]:
        own, wrong = 20, 2  # 200 digits, 20 per class; round(20 * 0.1 / 0.9) wrong
        truths = DemoTruth.objects.filter(candidate__category__slug=name)
        assert truths.filter(is_positive=True).count() == own
        assert truths.filter(is_positive=False).count() == wrong
        assert Candidate.objects.filter(category__slug=name).count() == own + wrong
        gold = GoldAnswer.objects.filter(candidate__category__slug=name).select_related("candidate")
        assert gold.count() == 1  # round(22 * 0.05)
        [mark] = gold
        truth = DemoTruth.objects.get(candidate=mark.candidate)
        assert mark.answer == truth.is_positive
        assert mark.candidate.state == ("accepted" if truth.is_positive else "rejected")
    assert Image.objects.count() == 200
    # each digit's true box is its ink's bounding box on the stored image; intruders have none
    for truth in DemoTruth.objects.select_related("candidate__image")[:30]:
        with truth.candidate.image.file.open("rb") as stored:
            ink = np.asarray(PILImage.open(stored).convert("L"))
        expected = [pixel_box(ink)] if truth.is_positive else []
        assert truth.boxes == expected
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Demo data: ")
    # no image is reserved in these tests (conftest), so no evaluation set
    assert out[1] == (
        "Evaluation: no evaluation set yet: An evaluation set is made for the categories a "
        "dataset version would take: at least two with 5 accepted images each; 0 have that. "
        "Let the crowd label more."
    )
    assert [line.split()[2] for line in out[2:]] == ["curator", "worker1", "worker2", "worker3"]
    assert User.objects.get(username="curator").is_curator

    # and running it again changes nothing but prints the same logins
    call_command("load_demo", "--limit", "200", "--no-photos", verbosity=0)
    again = capsys.readouterr().out.splitlines()
    assert again[0] == "Demo data already loaded (use --force to ingest again)."
    assert again[1:] == out[1:]
    password = out[2].split()[3]
    assert User.objects.get(username="curator").check_password(password)

    # and --force refreshes truth an older load stored without boxes
    first = DemoTruth.objects.filter(is_positive=True).order_by("pk").first()
    DemoTruth.objects.update(boxes=[])
    call_command("load_demo", "--limit", "200", "--no-photos", "--force", verbosity=0)
    first.refresh_from_db()
    assert len(first.boxes) == 1 and DemoTruth.objects.count() == 220
    assert (tmp_path / "demo-logins.txt").stat().st_mode & 0o777 == 0o600


def test_load_demo_ends_with_an_evaluation_set_the_demo_curator_reviewed(
    settings, tmp_path, capsys
):
    settings.VAR_DIR = tmp_path
    settings.CROWDNET_EVAL_SHARE = 0.1
    settings.CROWDNET_EVAL_MIN_PER_CLASS = 1
    settings.CROWDNET_TRAIN_MIN_PER_CLASS = 1  # the gold items are all a version could take

    call_command("load_demo", "--limit", "400", "--no-photos", verbosity=0)

    evaluation = EvaluationSet.objects.get()
    reserved = [
        truth
        for truth in DemoTruth.objects.select_related("candidate__image", "candidate__gold")
        if reserved_for_evaluation(truth.candidate.image.sha256)
    ]
    curator = User.objects.get(username="curator")
    for truth in reserved:
        if hasattr(truth.candidate, "gold"):
            continue  # a control item: its answer was a curator's already
        assert (truth.candidate.override, truth.candidate.override_by) == (
            truth.is_positive,
            curator,
        )
    # the set is of the categories a version would take now (those with a gold item that is
    # not reserved): each reserved image of theirs, with its true label
    slugs = [c["slug"] for c in evaluation.classes]
    labels = {item.image_id: slugs[item.label] for item in evaluation.items.all()}
    assert labels == {
        t.candidate.image_id: t.candidate.category.slug
        for t in reserved
        if t.is_positive and t.candidate.category.slug in slugs
    }
    assert len(slugs) >= 2
    assert evaluation.created_by == curator
    out = capsys.readouterr().out.splitlines()
    assert out[1] == (
        f"Evaluation: evaluation set v1: {evaluation.images} images of {len(slugs)} categories, "
        "reviewed by the demo curator."
    )


def test_empty_folder_says_nothing_was_found(category, tmp_path):
    with pytest.raises(CommandError, match=f"No image files found in {tmp_path}; nothing was"):
        call_command("import_images", str(tmp_path), "--category", "cat", verbosity=0)
