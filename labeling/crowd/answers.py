"""Validating a worker's answers against the task they were given. Pure: no Django."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CHOICES = {
    "verify": ("yes", "no", "unsure"),
    "verify_box": ("yes", "no"),
    "coverage": ("yes", "no"),
}


class AnswerInvalid(Exception):
    """An answer of the wrong shape; ``field`` is the path in the request body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ItemSpec:
    """What the server knows of a task item: its id and, for drawing, the image size (px)."""

    uid: str
    width: int
    height: int


@dataclass(frozen=True)
class ItemAnswer:
    """One item's answer: yes/no/unsure, or boxes as (x0, y0, x1, y1) in image pixels."""

    uid: str
    answer: str
    boxes: tuple[tuple[float, float, float, float], ...] = ()


@dataclass(frozen=True)
class BoxLimits:
    max_boxes: int = 50
    min_side: float = 2.0


def _entries(answers: Any, items: list[ItemSpec]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Entries by item id, each item exactly once."""
    if not isinstance(answers, list):
        raise AnswerInvalid("answers", "Send a list with one answer per item.")
    known = {item.uid for item in items}
    seen: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, entry in enumerate(answers):
        where = f"answers[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("item"), str):
            raise AnswerInvalid(f"{where}.item", "Each answer needs the item's id as 'item'.")
        uid = entry["item"]
        if uid not in known:
            raise AnswerInvalid(f"{where}.item", "That item is not part of this task.")
        if uid in seen:
            raise AnswerInvalid(f"{where}.item", "Each item is answered once.")
        seen[uid] = (index, entry)
    missing = len(known) - len(seen)
    if missing:
        raise AnswerInvalid("answers", f"{missing} item(s) of this task have no answer.")
    return seen


def _choice(kind: str, where: str, entry: dict[str, Any]) -> str:
    value = entry.get("answer")
    if value not in CHOICES[kind]:
        allowed = ", ".join(CHOICES[kind])
        raise AnswerInvalid(f"{where}.answer", f"Answer with one of: {allowed}.")
    return str(value)


def _box(where: str, raw: Any, spec: ItemSpec, limits: BoxLimits) -> tuple[float, ...]:
    if not isinstance(raw, list | tuple) or len(raw) != 4:
        raise AnswerInvalid(where, "A box is [x0, y0, x1, y1] in image pixels.")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
        raise AnswerInvalid(where, "Box coordinates must be numbers.")
    x0, y0, x1, y1 = (float(v) for v in raw)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise AnswerInvalid(where, "Box coordinates must be finite numbers.")
    if x0 < 0 or y0 < 0 or x1 > spec.width or y1 > spec.height:
        raise AnswerInvalid(
            where, f"The box must lie inside the image (0-{spec.width} x 0-{spec.height} px)."
        )
    if x1 - x0 < limits.min_side or y1 - y0 < limits.min_side:
        raise AnswerInvalid(
            where, f"The box is too small: each side must be at least {limits.min_side:g} px."
        )
    return (x0, y0, x1, y1)


def _boxes(where: str, entry: dict[str, Any], spec: ItemSpec, limits: BoxLimits) -> ItemAnswer:
    raw = entry.get("boxes")
    if not isinstance(raw, list):
        raise AnswerInvalid(f"{where}.boxes", "Send 'boxes' as a list; empty means none present.")
    if len(raw) > limits.max_boxes:
        raise AnswerInvalid(f"{where}.boxes", f"At most {limits.max_boxes} boxes per image.")
    boxes = tuple(_box(f"{where}.boxes[{i}]", box, spec, limits) for i, box in enumerate(raw))
    return ItemAnswer(spec.uid, "yes" if boxes else "no", boxes)  # type: ignore[arg-type]


def parse_answers(
    kind: str, answers: Any, items: list[ItemSpec], limits: BoxLimits | None = None
) -> list[ItemAnswer]:
    """The answers in task-item order; raises AnswerInvalid naming the field in error.

    Shapes: verify, verify_box, coverage: ``{"item", "answer"}``; grid: ``{"item", "selected":
    bool}``; draw: ``{"item", "boxes": [[x0, y0, x1, y1], ...]}`` (an empty list: none present).
    """
    limits = limits or BoxLimits()
    entries = _entries(answers, items)
    parsed = []
    for spec in items:
        index, entry = entries[spec.uid]
        where = f"answers[{index}]"
        if kind == "grid":
            if not isinstance(entry.get("selected"), bool):
                raise AnswerInvalid(f"{where}.selected", "Say true or false for every cell.")
            parsed.append(ItemAnswer(spec.uid, "yes" if entry["selected"] else "no"))
        elif kind == "draw":
            parsed.append(_boxes(where, entry, spec, limits))
        else:
            parsed.append(ItemAnswer(spec.uid, _choice(kind, where, entry)))
    return parsed
