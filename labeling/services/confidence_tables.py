"""ImageNet's confidence tables: mark a calibration sample of a category's candidates, fit the
table from their tallies and store it (labeling.consensus.dynamic does the arithmetic; the
answer path reads stored tables in labeling.services.consensus)."""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db.models import F

from labeling.consensus.dynamic import fit_confidence_table
from labeling.models import Candidate, Category, ConfidenceTable

MIN_CALIBRATION_ITEMS = 20


def calibration_sample_mark(*, category: Category, size: int, votes: int, seed: int = 0) -> int:
    """Ask for ``votes`` votes on ``size`` random open candidates of the category (no decision
    is taken before an item has the votes it waits for), so a table can be fitted from them;
    returns how many were marked."""
    ids = list(
        Candidate.objects.filter(
            category=category, state=Candidate.State.OPEN, gold__isnull=True
        ).values_list("id", flat=True)
    )
    chosen = np.random.default_rng(seed).permutation(ids)[:size].tolist()
    return Candidate.objects.filter(pk__in=chosen).update(
        votes_needed=votes, priority=F("priority") + 1
    )


def confidence_table_fit(*, category: Category, cap: int) -> ConfidenceTable:
    """Fit the category's table from its candidates with at least ``cap`` counted yes/no votes
    (gold left out) and store it; ValueError saying what to do when there are too few."""
    tallies = list(
        Candidate.objects.filter(category=category, gold__isnull=True)
        .alias(counted=F("yes_votes") + F("no_votes"))
        .filter(counted__gte=cap)
        .values_list("yes_votes", "no_votes")
    )
    if len(tallies) < MIN_CALIBRATION_ITEMS:
        raise ValueError(
            f"Only {len(tallies)} candidates of {category.name} have {cap} or more votes; "
            f"at least {MIN_CALIBRATION_ITEMS} are needed. Mark a calibration sample and let "
            "the crowd answer it first."
        )
    yes, no = (np.array(column, dtype=np.int64) for column in zip(*tallies, strict=True))
    fitted = fit_confidence_table(yes, no, cap=cap, smoothing=settings.CROWDNET_CONSENSUS_SMOOTHING)
    table = [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in fitted.table]
    stored, _ = ConfidenceTable.objects.update_or_create(
        category=category,
        defaults={
            "cap": cap,
            "table": table,
            "prior": fitted.prior,
            "calibration_items": len(tallies),
        },
    )
    return stored
