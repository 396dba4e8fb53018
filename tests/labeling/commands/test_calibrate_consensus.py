"""calibrate_consensus: calibration samples, fitted tables, and deciding with them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from labeling.consensus.dynamic import fit_confidence_table
from labeling.models import Candidate, ConfidenceTable
from labeling.services.consensus import candidates_decide
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def _candidates(category, count: int) -> list[Candidate]:
    files = [(f"{i}.jpg", image_bytes(9000 + i, size=(40, 30))) for i in range(count)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    return list(Candidate.objects.filter(category=category).order_by("id"))


def _calibrated(category) -> list[Candidate]:
    """25 candidates: 16 voted 9 yes to 1 no, 8 voted 1 to 9, one still fresh."""
    candidates = _candidates(category, 25)
    for i, candidate in enumerate(candidates[:24]):
        yes, no = (9, 1) if i < 16 else (1, 9)
        Candidate.objects.filter(pk=candidate.pk).update(yes_votes=yes, no_votes=no)
    return candidates


def test_sample_marks_candidates_for_ten_votes(category):
    _candidates(category, 6)
    out = io.StringIO()

    call_command("calibrate_consensus", "--sample", "4", "--votes", "10", stdout=out)

    assert out.getvalue() == "cat: 4 candidates marked for calibration\n"
    needed = sorted(Candidate.objects.values_list("votes_needed", flat=True))
    assert needed == [3, 3, 10, 10, 10, 10]


def test_fit_stores_the_table_of_the_sample(category):
    _calibrated(category)
    out = io.StringIO()

    call_command("calibrate_consensus", "--fit", "--cap", "10", stdout=out)

    stored = ConfidenceTable.objects.get(category=category)
    expected = fit_confidence_table(
        np.array([9] * 16 + [1] * 8), np.array([1] * 16 + [9] * 8), cap=10, smoothing=1.0
    )
    assert (stored.cap, stored.calibration_items) == (10, 24)
    assert stored.prior == pytest.approx(16 / 24)
    table = np.array(stored.table, dtype=np.float64)
    np.testing.assert_allclose(table, expected.table, atol=1e-6)
    assert out.getvalue().startswith("cat: table from 24 items, prior 0.67;")


def test_too_small_a_sample_says_what_to_do(category):
    _candidates(category, 3)
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"No table for cat: see above\."):
        call_command("calibrate_consensus", "--fit", stderr=err)

    assert "Only 0 candidates of cat have 10 or more votes; at least 20" in err.getvalue()
    with pytest.raises(CommandError, match="Nothing to do"):
        call_command("calibrate_consensus")
    with pytest.raises(CommandError, match="No such category: dog"):
        call_command("calibrate_consensus", "--fit", "--category", "dog")


def test_with_the_imagenet_rule_a_tally_is_decided_by_the_table(category, settings):
    candidates = _calibrated(category)
    call_command("calibrate_consensus", "--fit", stdout=io.StringIO())
    settings.CROWDNET_CONSENSUS_RULE = "imagenet"
    settings.CROWDNET_CONSENSUS_THRESHOLD = 0.95
    fresh = candidates[24]
    Candidate.objects.filter(pk=fresh.pk).update(yes_votes=2, votes_needed=2)

    candidates_decide([fresh.pk])

    fresh.refresh_from_db()
    table = ConfidenceTable.objects.get(category=category).table
    assert table[2][0] >= 0.95
    assert (fresh.state, fresh.posterior) == ("accepted", pytest.approx(table[2][0]))
