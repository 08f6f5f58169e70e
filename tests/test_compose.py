"""The compositional task space (minift.course.compose): answers by hand, the split holds out what
it claims, and every instruction says each of its family's choices."""

from __future__ import annotations

import random

import pytest

from minift.course import compose as C
from minift.course.bundled import course_examples

INPUT = "two cat red nine tea"  # numbers two and nine; an animal, a colour, a drink


@pytest.mark.parametrize("name, answer", [
    ("first.plain.en.once", "two"), ("last.upper.en.once", "TEA"), ("animal.plain.vi.once", "con mèo"),
    ("colour.title.vi.stop", "Màu đỏ."), ("food.upper.vi.twice", "TRÀ TRÀ"), ("largest.title.en.once", "Nine"),
    ("smallest.plain.vi.stop", "hai."), ("third.plain.en.twice", "red red"), ("position.colour", "3"),
    ("position.largest", "4"), ("position.food", "5"),
])
def test_answers_by_hand(name, answer):
    assert C.solve(name, INPUT) == answer


def test_bad_family_or_input_names_what_is_wrong():
    with pytest.raises(ValueError, match="unknown task family 'animal.loud.en.once'.*select.case.language.wrap"):
        C.solve("animal.loud.en.once", INPUT)
    with pytest.raises(ValueError, match="exactly one food word, it holds 0"):
        C.solve("food.plain.en.once", "two cat red nine eat")
    with pytest.raises(ValueError, match="no number word"):
        C.solve("largest.plain.en.once", "cat red eat")


def test_the_space_and_its_split():
    split = C.family_split()
    assert len(C.FAMILIES) >= 100 and sum(map(len, split.values())) == len(C.FAMILIES)
    assert not set(split["trained"]) & set(split["heldout"]) and not set(split["cluster"]) & set(split["trained"])
    assert 0.25 <= len(split["heldout"]) / (len(split["trained"]) + len(split["heldout"])) <= 0.35
    assert all(C.family(n).select == C.CLUSTER_SELECT for n in split["cluster"])
    # every primitive of a held-out family is trained in some other family (only the combination is new)
    trained_values = {(kind, v) for n in split["trained"] for kind, v in C.primitives(n).items()}
    for name in split["heldout"]:
        assert set(C.primitives(name).items()) <= trained_values, name
    assert ("select", C.CLUSTER_SELECT) not in trained_values
    assert C.family_split() == split  # deterministic


def test_instructions_say_every_choice_and_inputs_hold_what_is_selected():
    rng = random.Random(0)
    for name in C.FAMILIES:
        f = C.family(name)
        for lang in C.LANGUAGES:
            text = C.instruction(name, lang, rng).casefold()
            assert any(p.casefold() in text for p in C.PHRASES[lang][f"select.{f.select}"]), (name, text)
            if not f.position:
                for kind in ("case", "language", "wrap"):
                    said = C.PHRASES[lang][f"{kind}.{getattr(f, kind)}"]
                    # a default ("" among its phrases) may go unsaid; any other choice is always said
                    assert "" in said or any(p.casefold() in text for p in said), (name, kind, text)
            x = C.make_input(rng)
            assert len(x.split()) in (5, 6) and len(set(x.split())) == len(x.split())
            C.solve(name, x)  # raises if the input does not hold exactly one word to select


def test_training_never_names_the_held_out_primitive():
    named = [p.casefold() for lang in C.LANGUAGES for p in C.PHRASES[lang][f"select.{C.CLUSTER_SELECT}"]]
    train = [ex for ex in course_examples("train") if C.is_family(ex.task)]
    assert train and not any(p in ex.instruction.casefold() for ex in train for p in named)
    asked = course_examples("heldout_cluster")
    assert asked and all(any(p in ex.instruction.casefold() for p in named) for ex in asked)
