"""Fixtures shared by the live-consensus tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def live_rules(settings):
    """The live answer path's rules the consensus tests are written for: no speed gate, no
    control items served, decided at 0.95 with a cap of 7 from an even prior."""
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0
    settings.CROWDNET_GOLD_RATE = 0.0
    settings.CROWDNET_CONSENSUS_THRESHOLD = 0.95
    settings.CROWDNET_CONSENSUS_VOTE_CAP = 7
    settings.CROWDNET_CONSENSUS_PRIOR = 0.5
