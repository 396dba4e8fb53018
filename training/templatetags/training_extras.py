"""Number and shape formats for the training pages."""

from __future__ import annotations

from collections.abc import Sequence

from django import template

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """A fraction in [0, 1] as a percentage, one decimal by default ("4.3 %", the sign held
    to the number by a no-break space); a dash for None. Every page that shows an error rate
    uses this, and the charts' formatPercent (static/js/dashboards/charts.js) matches it."""
    if value is None:
        return "—"
    return f"{value * 100:.{int(digits)}f}\N{NO-BREAK SPACE}%"


@register.filter
def p_value(value: float | None) -> str:
    """A test's p-value to four decimals, "< 0.0001" below that; a dash for None."""
    if value is None:
        return "—"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


@register.filter
def thousands(value: int) -> str:
    """An integer with commas between the thousands: 11,689,512."""
    return f"{int(value):,}"


@register.filter
def shape(value: Sequence[int]) -> str:
    """A tensor shape per image, its sizes joined by multiplication signs: 64, 56, 56."""
    return " \N{MULTIPLICATION SIGN} ".join(str(n) for n in value)
