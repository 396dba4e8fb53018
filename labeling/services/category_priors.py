"""Each category's share of yes among its decisions, as the live path reads it to take its
decisions cautiously (labeling.consensus.cautious_posteriors)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.conf import settings
from django.db import connection

from labeling.consensus import decided_prior
from labeling.models import Candidate

DECIDED_PRIOR_SAMPLE = 5000
"""A category's decisions are counted up to this many per side (accepted, rejected), so the
learnt prior costs two bounded index scans per answer however large the category grows (an
exact count over 50,000 decided rows took 40-90 ms here). A capped count pulls the learnt
prior toward 1/2, so a category past the cap on one side gets less of the extra caution, never
less than the configured prior alone gives (cautious_posteriors). bench/consensus_live.py's
crowds (at most 5,000 items) stay below the cap."""

_REMEMBERED: dict[int, tuple[float, tuple[int, int]]] = {}
"""This process's last reading of each category's capped counts, with when (monotonic)."""


def counts_remembered(category_ids: Iterable[int]) -> dict[int, tuple[int, int]] | None:
    """The capped decided counts of every category in ``category_ids`` as this process read
    them within the last CROWDNET_PRIOR_COUNTS_SECONDS, or None if any is older or unread (the
    caller reads them all again and hands them to counts_remember).

    The answer path reads the counts on every counted vote, two index scans of up to
    DECIDED_PRIOR_SAMPLE rows each: in a category with thousands of decisions that is most
    of an answer's database work, and grows with the category until the cap. The prior they
    give moves by a decision's worth in thousands, so a figure some seconds old serves it
    (each process reads again when its copy runs out; 0 turns this off)."""
    seconds = settings.CROWDNET_PRIOR_COUNTS_SECONDS
    if seconds <= 0:
        return None
    now = time.monotonic()
    found = {}
    for category in category_ids:
        entry = _REMEMBERED.get(category)
        if entry is None or now - entry[0] > seconds:
            return None
        found[category] = entry[1]
    return found


def counts_remember(counts: dict[int, tuple[int, int]]) -> None:
    """Keep ``counts`` (category: capped accepted, rejected) for counts_remembered."""
    if settings.CROWDNET_PRIOR_COUNTS_SECONDS > 0:
        now = time.monotonic()
        for category, pair in counts.items():
            _REMEMBERED[category] = (now, pair)


def counts_forget() -> None:
    """Drop every remembered count (tests; a process that must read them afresh)."""
    _REMEMBERED.clear()


_CAPPED_COUNTS = """
    SELECT
      (SELECT COUNT(*) FROM (SELECT 1 FROM labeling_candidate
        WHERE category_id = %(category)s AND state = %(yes)s LIMIT %(cap)s) AS accepted),
      (SELECT COUNT(*) FROM (SELECT 1 FROM labeling_candidate
        WHERE category_id = %(category)s AND state = %(no)s LIMIT %(cap)s) AS rejected)
"""


def category_decision_counts(
    category_ids: set[int], *, cap: int = DECIDED_PRIOR_SAMPLE
) -> dict[int, tuple[int, int]]:
    """Per category, its (accepted, rejected) candidates, each side counted up to ``cap``."""
    counts = {}
    with connection.cursor() as cursor:
        for category in sorted(category_ids):
            cursor.execute(
                _CAPPED_COUNTS,
                {
                    "category": category,
                    "yes": Candidate.State.ACCEPTED,
                    "no": Candidate.State.REJECTED,
                    "cap": cap,
                },
            )
            accepted, rejected = cursor.fetchone()
            counts[category] = (int(accepted), int(rejected))
    return counts


def category_decided_priors(
    category_ids: set[int], *, cap: int = DECIDED_PRIOR_SAMPLE
) -> dict[int, float]:
    """Per category, P(yes) learnt from its decisions so far (decided_prior), each side
    counted up to ``cap``."""
    return {
        category: float(decided_prior(accepted, accepted + rejected))
        for category, (accepted, rejected) in category_decision_counts(
            category_ids, cap=cap
        ).items()
    }
