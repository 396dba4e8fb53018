"""Number and shape formats for the training pages."""

from __future__ import annotations

from collections.abc import Sequence

from django import template

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """A fraction in [0, 1] as a percentage ("12.5%"); a dash for None."""
    if value is None:
        return "—"
    return f"{value * 100:.{int(digits)}f}%"


@register.filter
def thousands(value: int) -> str:
    """An integer with commas between the thousands: 11,689,512."""
    return f"{int(value):,}"


@register.filter
def shape(value: Sequence[int]) -> str:
    """A tensor shape per image, its sizes joined by multiplication signs: 64, 56, 56."""
    return " \N{MULTIPLICATION SIGN} ".join(str(n) for n in value)
