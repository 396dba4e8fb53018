"""Images held out for the evaluation sets, chosen by hash: the crowd side asks more votes of
them when they arrive, dataset versions leave them out, the evaluation sets take them
(training.services.evaluation)."""

from __future__ import annotations

from django.conf import settings


def reserved_for_evaluation(sha256: str, share: float | None = None) -> bool:
    """True for a stable ``share`` (CROWDNET_EVAL_SHARE) of images, chosen by bits 32-63 of
    the hash: independent of the train/val split's bits (datasets.services.versions.split_of),
    so reserved images are not all "val" ones."""
    share = settings.CROWDNET_EVAL_SHARE if share is None else share
    return int(sha256[8:16], 16) / 2**32 < share


def votes_needed_for(sha256: str) -> int:
    """Votes a new candidate waits for: CROWDNET_VOTES_PER_ITEM, and at least
    CROWDNET_EVAL_MIN_VOTES for a reserved image (the extra scrutiny evaluation labels get)."""
    votes = settings.CROWDNET_VOTES_PER_ITEM
    if reserved_for_evaluation(sha256):
        return max(votes, settings.CROWDNET_EVAL_MIN_VOTES)
    return votes
