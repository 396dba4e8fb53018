"""Simulated crowd workers: who they are and how each kind answers. Pure; no Django.

The crowd simulator (demo.services.simulation) drives the real API with these personas,
against items whose truth it knows, so consensus, gold and the quality gates can be measured
against a crowd as mixed as a real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labeling.consensus import iou

# honest: right with their own accuracy. confuser: honest, but says yes to look-alike
# categories. spammer: a coin. yes: always yes. fast: a coin, with no time on the task.
# adversary: answers gold right and everything else wrong.
KINDS = ("honest", "confuser", "spammer", "yes", "fast", "adversary")
BAD_KINDS = frozenset({"spammer", "yes", "fast", "adversary"})
# Digits people mix up when written by hand, both ways.
LOOKALIKES = {
    "one": {"seven"},
    "seven": {"one"},
    "three": {"eight", "five"},
    "five": {"three", "six"},
    "six": {"five"},
    "eight": {"three"},
    "four": {"nine"},
    "nine": {"four"},
}


@dataclass(frozen=True)
class Persona:
    """One simulated worker: what kind, how accurate, and seconds spent per item."""

    kind: str
    accuracy: float
    seconds_per_item: float


@dataclass(frozen=True)
class ItemTruth:
    """What an item really is, as only the simulator knows it."""

    category: str
    is_positive: bool
    true_label: str
    is_gold: bool = False
    boxes: list[list[float]] = field(default_factory=list)


def mix_parse(text: str) -> dict[str, float]:
    """``"honest=0.7,spammer=0.2,yes=0.1"`` -> shares that sum to 1; raises ValueError naming
    the part that is wrong."""
    shares: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in KINDS:
            raise ValueError(f"Unknown worker kind {name!r}; use {', '.join(KINDS)}.")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"{part!r}: the share must be a number, as in honest=0.8.") from None
        if share < 0:
            raise ValueError(f"{part!r}: a share can't be negative.")
        shares[name] = shares.get(name, 0.0) + share
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("The mix is empty: give at least one kind a positive share.")
    return {name: share / total for name, share in shares.items()}


def personas_draw(
    count: int,
    mix: dict[str, float],
    *,
    accuracy: tuple[float, float] = (0.8, 0.95),
    seconds_per_item: float = 0.5,
    rng: np.random.Generator,
) -> list[Persona]:
    """``count`` personas in the mix's proportions (largest remainder, so 10 workers at
    honest=0.85 give 8 or 9 honest ones, never a rounding surprise), honest accuracies drawn
    uniformly from ``accuracy``."""
    names = sorted(mix)
    exact = np.array([mix[name] * count for name in names])
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts), kind="stable")[: count - counts.sum()]:
        counts[index] += 1
    low, high = accuracy
    people = []
    for name, n in zip(names, counts, strict=True):
        for _ in range(n):
            right = float(rng.uniform(low, high))
            seconds = 0.0 if name == "fast" else seconds_per_item
            people.append(Persona(name, right, seconds))
    order = rng.permutation(len(people))
    return [people[i] for i in order]


def label_answer(persona: Persona, truth: ItemTruth, rng: np.random.Generator) -> bool:
    """Whether this persona says yes to "is there a <category> in this image?"."""
    kind = persona.kind
    if kind == "yes":
        return True
    if kind in ("spammer", "fast"):
        return bool(rng.random() < 0.5)
    if kind == "adversary":
        return truth.is_positive if truth.is_gold else not truth.is_positive
    if kind == "confuser" and truth.true_label in LOOKALIKES.get(truth.category, ()):
        return bool(rng.random() < 0.9)
    right = rng.random() < persona.accuracy
    return truth.is_positive if right else not truth.is_positive


def pixel_box(pixels: np.ndarray, threshold: float = 0.0) -> list[float] | None:
    """The bounding box [x0, y0, x1, y1] (pixel edges, so a lone pixel at (x, y) gives
    [x, y, x + 1, y + 1]) of the pixels of a 2-D grey image brighter than ``threshold``;
    None when there are none. The object of a handwritten digit is its ink."""
    ink = np.asarray(pixels) > threshold
    if ink.ndim != 2:
        raise ValueError(f"pixels must be a 2-D grey image, got shape {ink.shape}")
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def _clip(box: np.ndarray, width: float, height: float) -> list[float]:
    x0, y0, x1, y1 = box
    x0, x1 = sorted((float(np.clip(x0, 0, width)), float(np.clip(x1, 0, width))))
    y0, y1 = sorted((float(np.clip(y0, 0, height)), float(np.clip(y1, 0, height))))
    return [round(x0, 1), round(y0, 1), round(max(x1, x0 + 4), 1), round(max(y1, y0 + 4), 1)]


def boxes_draw(
    persona: Persona, truth: ItemTruth, width: int, height: int, rng: np.random.Generator
) -> list[list[float]]:
    """The boxes this persona draws: honest ones jitter each edge by 0.3 x (1 - accuracy) of
    the object's size (1.5 % to 6 % at accuracies 0.95 to 0.8), and may miss an object about
    as often as they are wrong; the others draw one box anywhere."""
    if persona.kind in ("honest", "confuser"):
        drawn = []
        for box in truth.boxes:
            if rng.random() > persona.accuracy + 0.05:
                continue  # missed it
            b = np.asarray(box, dtype=np.float64)
            scale = np.array([b[2] - b[0], b[3] - b[1]] * 2) * 0.3 * (1.0 - persona.accuracy)
            drawn.append(_clip(b + rng.normal(0.0, 1.0, 4) * scale, width, height))
        return [b for b in drawn if b[2] - b[0] >= 4 and b[3] - b[1] >= 4]
    x0, y0 = rng.uniform(0, width * 0.6), rng.uniform(0, height * 0.6)
    side = rng.uniform(0.2, 0.4)
    return [_clip(np.array([x0, y0, x0 + width * side, y0 + height * side]), width, height)]


def _best_iou(box: list[float], truth: list[list[float]]) -> float:
    if not truth:
        return 0.0
    return float(iou(np.array([box], dtype=np.float64), np.array(truth, dtype=np.float64)).max())


def box_check(
    persona: Persona, box: list[float], truth: ItemTruth, rng: np.random.Generator
) -> bool:
    """Whether this persona calls the box tight around one object (IoU >= 0.5 with one)."""
    good = _best_iou(box, truth.boxes) >= 0.5
    if persona.kind == "yes":
        return True
    if persona.kind in ("spammer", "fast"):
        return bool(rng.random() < 0.5)
    if persona.kind == "adversary":
        return not good
    return good if rng.random() < persona.accuracy else not good


def coverage_check(
    persona: Persona, boxes: list[list[float]], truth: ItemTruth, rng: np.random.Generator
) -> bool:
    """Whether this persona says every object is boxed."""
    covered = all(any(_best_iou(b, [t]) >= 0.5 for b in boxes) for t in truth.boxes)
    if persona.kind == "yes":
        return True
    if persona.kind in ("spammer", "fast"):
        return bool(rng.random() < 0.5)
    if persona.kind == "adversary":
        return not covered
    return covered if rng.random() < persona.accuracy else not covered
