"""Simulated worker personas: the mix, and how each kind answers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from demo.personas import (
    ItemTruth,
    Persona,
    box_check,
    boxes_draw,
    coverage_check,
    label_answer,
    mix_parse,
    personas_draw,
    pixel_box,
)
from labeling.consensus import iou

CAT = ItemTruth(category="seven", is_positive=True, true_label="seven")
NOT_CAT = ItemTruth(category="seven", is_positive=False, true_label="two")
LOOKALIKE = ItemTruth(category="seven", is_positive=False, true_label="one")
BOXES = ItemTruth("rectangle", True, "rectangle", boxes=[[10, 10, 50, 40], [80, 60, 120, 100]])


def test_mix_is_normalised_and_bad_mixes_say_what_is_wrong():
    assert mix_parse("honest=3, spammer=1") == {"honest": 0.75, "spammer": 0.25}
    with pytest.raises(ValueError, match="Unknown worker kind 'lazy'"):
        mix_parse("honest=1,lazy=1")
    with pytest.raises(ValueError, match="'honest=x': the share must be a number"):
        mix_parse("honest=x")
    with pytest.raises(ValueError, match="can't be negative"):
        mix_parse("honest=1,yes=-1")
    with pytest.raises(ValueError, match="The mix is empty"):
        mix_parse("honest=0")


def test_personas_follow_the_mix_exactly_and_fast_clickers_take_no_time():
    people = personas_draw(
        10,
        {"honest": 0.55, "spammer": 0.25, "fast": 0.2},
        accuracy=(0.8, 0.9),
        seconds_per_item=0.5,
        rng=np.random.default_rng(1),
    )
    assert Counter(p.kind for p in people) == {"honest": 6, "spammer": 2, "fast": 2}
    assert all(0.8 <= p.accuracy <= 0.9 for p in people)
    assert {p.seconds_per_item for p in people if p.kind == "fast"} == {0.0}
    assert {p.seconds_per_item for p in people if p.kind != "fast"} == {0.5}


def _yes_share(persona: Persona, truth: ItemTruth, n: int = 2000) -> float:
    rng = np.random.default_rng(7)
    return sum(label_answer(persona, truth, rng) for _ in range(n)) / n


def test_each_kind_answers_as_described():
    honest = Persona("honest", 0.9, 0.5)
    assert _yes_share(honest, CAT) == pytest.approx(0.9, abs=0.02)
    assert _yes_share(honest, NOT_CAT) == pytest.approx(0.1, abs=0.02)
    assert _yes_share(Persona("yes", 0.9, 0.5), NOT_CAT) == 1.0
    assert _yes_share(Persona("spammer", 0.9, 0.5), CAT) == pytest.approx(0.5, abs=0.03)
    confuser = Persona("confuser", 0.9, 0.5)
    assert _yes_share(confuser, LOOKALIKE) == pytest.approx(0.9, abs=0.02)
    assert _yes_share(confuser, NOT_CAT) == pytest.approx(0.1, abs=0.02)
    adversary = Persona("adversary", 0.9, 0.5)
    gold = ItemTruth("seven", True, "seven", is_gold=True)
    assert (_yes_share(adversary, gold), _yes_share(adversary, CAT)) == (1.0, 0.0)


def test_honest_drawers_box_tightly_and_check_boxes_and_coverage_truthfully():
    rng = np.random.default_rng(3)
    perfect = Persona("honest", 1.0, 0.5)
    drawn = boxes_draw(perfect, BOXES, 160, 120, rng)
    assert len(drawn) == 2
    assert iou(np.array(drawn), np.array(BOXES.boxes)).max(axis=1).min() > 0.8
    assert box_check(perfect, [10, 10, 50, 40], BOXES, rng) is True
    assert box_check(perfect, [0, 0, 160, 120], BOXES, rng) is False
    assert coverage_check(perfect, drawn, BOXES, rng) is True
    assert coverage_check(perfect, drawn[:1], BOXES, rng) is False
    sloppy = boxes_draw(Persona("spammer", 0.9, 0.5), BOXES, 160, 120, rng)
    assert len(sloppy) == 1
    assert all(0 <= v <= 160 for v in sloppy[0])


def test_the_pixel_box_is_the_inks_bounding_box_in_pixel_edges():
    pixels = np.zeros((28, 28), dtype=np.uint8)
    assert pixel_box(pixels) is None
    pixels[5, 9] = 200
    assert pixel_box(pixels) == [9.0, 5.0, 10.0, 6.0]
    pixels[20:23, 3:8] = 30
    assert pixel_box(pixels) == [3.0, 5.0, 10.0, 23.0]
    assert pixel_box(pixels, threshold=100) == [9.0, 5.0, 10.0, 6.0]
    with pytest.raises(ValueError, match="2-D grey image"):
        pixel_box(np.zeros((4, 4, 3)))


def test_honest_drawers_box_real_digits_at_iou_at_least_half_of_their_pixel_box():
    from demo.services.data import demo_digits

    features, labels = demo_digits(100)
    rng = np.random.default_rng(7)
    people = personas_draw(20, {"honest": 1.0}, accuracy=(0.8, 0.95), rng=rng)
    scores, missed = [], 0
    for index, (feature, label) in enumerate(zip(features, labels, strict=True)):
        box = pixel_box(feature.reshape(28, 28))
        truth = ItemTruth("digit", True, str(label), boxes=[box])
        drawn = boxes_draw(people[index % len(people)], truth, 28, 28, rng)
        missed += not drawn
        scores += [float(iou(np.array(drawn), np.array([box])).max()) for _ in drawn[:1]]

    assert len(features) == 100
    assert min(scores) >= 0.5
    assert missed <= 15  # an honest worker misses an object about as often as they err
