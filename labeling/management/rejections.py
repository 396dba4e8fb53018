"""The one error an import command raises when its input has bad records: nothing was written."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.management.base import CommandError

ERRORS_SHOWN = 50


def rejected_whole(errors: Sequence[str], noun: str) -> CommandError:
    """A CommandError listing the first ERRORS_SHOWN of ``errors`` (one line each) and how many
    more there are; ``noun`` names what was bad ("row", "record")."""
    lines = [f"  {error}" for error in errors[:ERRORS_SHOWN]]
    if len(errors) > ERRORS_SHOWN:
        lines.append(f"  ... and {len(errors) - ERRORS_SHOWN} more")
    return CommandError(
        f"{len(errors)} bad {noun}(s); nothing was imported. Fix them and run again:\n"
        + "\n".join(lines)
    )
