"""Exact match and the accuracy tables."""

from __future__ import annotations

import pytest

from minift.data import Example, format_prompt
from minift.evaluate import accuracy_table, exact_match, format_table, novelty_subsets, prompt_ids


def test_exact_match_normalises_only_whitespace_and_unicode_form():
    assert exact_match("  tôi yêu   gia đình tôi \n", "tôi yêu gia đình tôi")
    assert exact_match("Vie\u0302\u0323t", "Việt")  # decomposed vs composed (NFD vs NFC)
    assert not exact_match("PARIS", "Paris")  # case matters: upper-casing is a task
    assert not exact_match("Paris.", "Paris")


def test_accuracy_table_per_task_and_overall():
    exs = [Example("i", "x", "a", task="t1"), Example("i", "y", "b", task="t1"), Example("i", "z", "c", task="t2")]
    table = accuracy_table(exs, ["a", "wrong", "c"])
    assert table == {"overall": pytest.approx(2 / 3), "n": 3, "per_task": {"t1": 0.5, "t2": 1.0}}
    with pytest.raises(ValueError, match="2 predictions"):
        accuracy_table(exs, ["a", "b"])
    text = format_table({"base": {"s": table}, "sft": {"s": table}}, "s")
    assert "t1" in text and "overall" in text and "66.7%" in text


def test_prompt_ids_are_the_training_prompt(course_tokenizer):
    """The evaluation prompt is exactly the prompt part of a training example (no off-by-one)."""
    from minift.data import encode

    ex = Example("Reverse the words", "red blue cat", "cat blue red")
    ids = prompt_ids(ex, course_tokenizer, "compact")
    enc = encode(ex, course_tokenizer, 256, "compact")
    n_prompt = int((enc.loss_mask == 0).sum())
    assert list(enc.ids[:n_prompt]) == ids
    assert course_tokenizer.decode(ids[1:]) == format_prompt(ex, "compact")


def test_subsets_report_accuracy_on_the_flagged_questions():
    exs = [Example("i", "x", "a", task="t"), Example("i", "y", "b", task="t"), Example("i", "z", "c", task="t")]
    table = accuracy_table(exs, ["a", "wrong", "c"], {"seen": [True, True, False], "none": [False] * 3})
    assert table["subsets"] == {"seen": {"overall": 0.5, "n": 2}, "none": {"overall": 0.0, "n": 0}}
    text = format_table({"m": {"s": table}}, "s")
    assert "  seen" in text and "50.0% (  2)" in text
    with pytest.raises(ValueError, match="subset 'seen' has 1 flags"):
        accuracy_table(exs, ["a", "b", "c"], {"seen": [True]})


def test_novelty_subsets_by_hand():
    train = [Example("Give the first word.", "red cat", "red", task="first_word"),
             Example("Which word comes first?", "dog sun", "dog", task="first_word")]
    asked = [Example("Give the first word!", "red cat", "red", task="first_word"),  # same words, seen input
             Example("Name the opening term.", "sun dog", "sun", task="first_word"),  # new words, new input
             Example("Tell me the first word", "red cat", "red", task="first_word")]  # 3 of 6 words shared
    flags = novelty_subsets(asked, train)
    assert flags == {"seen input": [True, False, True], "unseen input": [False, True, False],
                     "new wording": [False, True, False]}
