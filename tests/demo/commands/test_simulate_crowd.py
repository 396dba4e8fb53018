"""simulate_crowd's argument checks: each bad input says what to fix."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from demo.models import DemoTruth
from labeling.models import Candidate
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def _candidate(category) -> Candidate:
    images_ingest(
        files=[("a.jpg", image_bytes(4242))], category=category, source="upload", uploader=None
    )
    return Candidate.objects.get()


CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--mix", "honest=1,lazy=1"],
            "--mix: Unknown worker kind 'lazy'; "
            "use honest, confuser, spammer, yes, fast, adversary.",
        ),
        (["--accuracy", "high"], "--accuracy: give a range such as 0.8-0.95."),
        (["--accuracy", "0.9-0.8"], "--accuracy: LOW-HIGH with 0 <= LOW <= HIGH <= 1."),
        (["--workers", "0"], "--workers must be at least 1."),
        ([], f"Can't reach {CLOSED} (NewConnectionError): start it (make demo) or pass --url."),
    ],
)
def test_bad_arguments_say_what_to_fix(args, message, category):
    DemoTruth.objects.create(candidate=_candidate(category), is_positive=True, true_label="cat")
    with pytest.raises(CommandError) as raised:
        call_command("simulate_crowd", "--url", CLOSED, *args)
    assert str(raised.value) == message


def test_without_known_truth_it_says_to_load_the_demo():
    with pytest.raises(CommandError) as raised:
        call_command("simulate_crowd", "--url", CLOSED)
    assert str(raised.value) == (
        "No items with a known truth: run `manage.py load_demo` (or --generate-boxes N)."
    )
