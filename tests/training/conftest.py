"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest

from training.services import runs


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Run ids sent to the training queue. Only the hand-off is replaced here: the real
    worker's round trip (claim, train, checkpoint) is tested in tests/integration."""
    sent: list[int] = []
    monkeypatch.setattr(runs, "_enqueue", sent.append)
    return sent
