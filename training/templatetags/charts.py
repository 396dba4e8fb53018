"""Learning curves as inline SVG drawn on the server: the CSP allows no inline script, and a
chart that is plain markup needs no JavaScript at all. Coordinates are SVG user units in a
fixed viewBox; CSS scales the picture to the page."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django import template

from training.models import TrainingEpoch

register = template.Library()

WIDTH, HEIGHT = 560, 250
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 48
"""Margins around the plot area, in user units: room for tick labels and axis titles."""
MAX_X_TICKS = 10


@dataclass(frozen=True)
class Tick:
    """A labelled position along an axis; ``at`` is the coordinate, formatted for SVG."""

    at: str
    label: str


@dataclass(frozen=True)
class Line:
    """One series: ``points`` holds one "x,y" pair per epoch, in epoch order."""

    name: str
    css: str
    points: str


@dataclass(frozen=True)
class Chart:
    """Everything templates/training/_chart.html draws, every number already formatted."""

    ident: str
    title: str
    description: str
    y_label: str
    width: int
    height: int
    left: str
    right: str
    top: str
    bottom: str
    middle_x: str
    middle_y: str
    y_tick_x: str
    x_tick_y: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    lines: list[Line]


def _n(value: float) -> str:
    return f"{value:.1f}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (> 0);
    1 for anything else."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-9):
            return float(step * power)
    return 10.0 * power


def _value_label(value: float, percent: bool) -> str:
    if percent:
        return f"{round(value * 100, 4):g}%"
    return f"{round(value, 6):g}"


def chart_build(
    ident: str,
    title: str,
    y_label: str,
    epochs: Sequence[int],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    percent: bool = False,
) -> Chart:
    """A line chart of ``series`` (name, css suffix, one value per epoch) over ``epochs``,
    from 0 up to a round number above the largest finite value (at most 100% when
    ``percent``, where values are fractions). Values that are not finite sit on the top."""
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    finite = [v for _, _, values in series for v in values if math.isfinite(v)]
    y_max = nice_ceiling(max(finite, default=0.0))
    if percent:
        y_max = min(y_max, 1.0)
    first, last = (epochs[0], epochs[-1]) if epochs else (0, 0)

    def x_of(epoch: int) -> float:
        if last == first:
            return (LEFT + right) / 2
        return LEFT + (epoch - first) / (last - first) * (right - LEFT)

    def y_of(value: float) -> float:
        value = min(max(value, 0.0), y_max) if math.isfinite(value) else y_max
        return bottom - value / y_max * (bottom - TOP)

    step = max(1, math.ceil(len(epochs) / MAX_X_TICKS))
    x_ticks = [Tick(_n(x_of(e)), str(e)) for e in epochs if (e - first) % step == 0]
    y_ticks = [
        Tick(_n(y_of(y_max * i / 5)), _value_label(y_max * i / 5, percent)) for i in range(6)
    ]
    lines = [
        Line(
            name,
            css,
            " ".join(f"{_n(x_of(e))},{_n(y_of(v))}" for e, v in zip(epochs, values, strict=True)),
        )
        for name, css, values in series
    ]
    described = [
        f"{name} {_value_label(values[0], percent)} after epoch {first}, "
        f"{_value_label(values[-1], percent)} after epoch {last}"
        for name, _, values in series
        if values
    ]
    return Chart(
        ident=ident,
        title=title,
        description="; ".join(described) + "." if described else "No epochs yet.",
        y_label=y_label,
        width=WIDTH,
        height=HEIGHT,
        left=_n(LEFT),
        right=_n(right),
        top=_n(TOP),
        bottom=_n(bottom),
        middle_x=_n((LEFT + right) / 2),
        middle_y=_n(-(TOP + bottom) / 2),  # along the y axis once rotated by -90 degrees
        y_tick_x=_n(LEFT - 6),
        x_tick_y=_n(bottom + 18),
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        lines=lines,
    )


@register.inclusion_tag("training/_chart.html")
def error_chart(epochs: Sequence[TrainingEpoch]) -> dict[str, Any]:
    """Validation top-1 and top-5 error per epoch."""
    numbers = [e.epoch for e in epochs]
    return {
        "chart": chart_build(
            "chart-errors",
            "Validation error per epoch",
            "Error",
            numbers,
            [
                ("Top-1 error", "top1", [e.top1_error for e in epochs]),
                ("Top-5 error", "top5", [e.top5_error for e in epochs]),
            ],
            percent=True,
        )
    }


@register.inclusion_tag("training/_chart.html")
def loss_chart(epochs: Sequence[TrainingEpoch]) -> dict[str, Any]:
    """Mean training and validation loss per image, per epoch."""
    numbers = [e.epoch for e in epochs]
    return {
        "chart": chart_build(
            "chart-loss",
            "Loss per epoch",
            "Loss",
            numbers,
            [
                ("Training loss", "train", [e.train_loss for e in epochs]),
                ("Validation loss", "val", [e.val_loss for e in epochs]),
            ],
        )
    }


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """A fraction in [0, 1] as a percentage ("12.5%"); a dash for None."""
    if value is None:
        return "—"
    return f"{value * 100:.{int(digits)}f}%"
