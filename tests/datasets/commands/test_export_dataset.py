"""manage.py export_dataset: an archive at --out, moved into place whole; errors that say
what to fix and leave nothing behind."""

from __future__ import annotations

import io
import tarfile

import pytest
from django.core.management import CommandError, call_command

from tests.factories import photos_version

pytestmark = pytest.mark.django_db


def test_the_newest_version_is_written_where_asked(tmp_path):
    version = photos_version()
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "cars.tar"
    stdout = io.StringIO()

    call_command(
        "export_dataset", "--format", "voc", "--out", str(out), "--categories", "car", stdout=stdout
    )

    assert stdout.getvalue() == (
        f"version {version.number}: 6 of 6 images as voc in {out} ({out.stat().st_size:,} bytes)\n"
    )
    with tarfile.open(out) as archive:
        names = archive.getnames()
    assert len([n for n in names if n.startswith("Annotations/")]) == 6
    assert sorted(p.name for p in out.parent.iterdir()) == ["cars.tar"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--version", "7"], "There is no dataset version 7; see manage.py train --list."),
        (["--subtree", "plant"], "No category has the slug 'plant'."),
        (["--min-confidence", "1.5"], "min_confidence must lie between 0 and 1."),
        (["--splits", "test"], "splits must be a non-empty list of: train, val."),
    ],
)
def test_bad_arguments_say_what_to_fix_and_write_nothing(tmp_path, arguments, message):
    photos_version()
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(CommandError) as error:
        call_command("export_dataset", "--format", "coco", "--out", str(out / "x.zip"), *arguments)

    assert str(error.value) == message
    assert list(out.iterdir()) == []


def test_without_a_version_it_says_to_snapshot(tmp_path):
    with pytest.raises(CommandError, match="pass --snapshot to take one"):
        call_command("export_dataset", "--format", "csv", "--out", str(tmp_path / "x.zip"))
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("export_dataset", "--format", "csv", "--out", str(tmp_path / "no" / "x.zip"))
