"""minift.limits: the studies' metrics against hand-computed cases, and the aggregation over seeds."""

from __future__ import annotations

import json
import math

import pytest

from minift.data import Example
from minift.limits.bias import amplification, favoured_rate
from minift.limits.report import format_report
from minift.limits.run import aggregate
from minift.limits.single_task import as_task_rate
from minift.limits.zero_shot import neighbour_rate
from minift.seeds import curve, flattening_point, interval95


def test_interval95_by_hand():
    # [1, 2, 3]: mean 2, sample sd 1, t(0.975, 2 df) = 4.302653 -> half-width 4.302653 / sqrt(3)
    i = interval95([1.0, 2.0, 3.0])
    assert i["mean"] == pytest.approx(2.0) and i["half_width"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert (i["low"], i["high"]) == pytest.approx((2.0 - i["half_width"], 2.0 + i["half_width"]))
    # many seeds: t tends to the normal 1.96
    assert interval95([0.0, 1.0] * 500)["half_width"] == pytest.approx(1.962 * 0.50025 / math.sqrt(1000), rel=1e-3)
    one = interval95([0.4])
    assert one["mean"] == 0.4 and one["half_width"] is None and one["low"] is None  # one seed: no spread known
    assert interval95([0.3, 0.3, 0.3])["half_width"] == 0.0
    with pytest.raises(ValueError, match="at least one seed"):
        interval95([])


def test_curve_and_where_it_flattens_by_hand():
    c = curve({1024: [0.5, 0.7], 64: [0.1, 0.2], 256: [0.6, 0.7]})
    assert [p["x"] for p in c] == [64, 256, 1024]  # sorted
    assert [p["mean"] for p in c] == pytest.approx([0.15, 0.65, 0.6])
    assert c[0]["interval95"]["half_width"] == pytest.approx(12.706205 * 0.0707107 / math.sqrt(2), rel=1e-5)
    assert flattening_point(c, tolerance=0.02) == 256  # the best mean is at 256
    assert flattening_point(c, tolerance=0.6) == 64
    with pytest.raises(ValueError):
        flattening_point([])


def test_amplification_and_favoured_rate_by_hand():
    assert amplification(0.9, 0.7) == pytest.approx(0.2)  # amplifies
    assert amplification(0.5, 0.7) == pytest.approx(-0.2)  # dampens
    with pytest.raises(ValueError, match="model_rate"):
        amplification(1.2, 0.7)
    reviews = ["The movie is okay", "Bộ phim này bình thường quá", "The book is okay", "Món ăn này tàm tạm quá"]
    answers = ["positive", "tích cực", "negative", "positive"]  # the last is the wrong language's label
    assert favoured_rate(answers, reviews) == (0.5, 0.25)
    with pytest.raises(ValueError, match="one each"):
        favoured_rate(answers, reviews[:2])


def test_answered_as_another_task_by_hand():
    ex = [Example("", "cat dog", "dog cat", "reverse_words"), Example("", "3 1 7", "1", "min_number"),
          Example("", "5 2 8", "2", "min_number")]
    assert as_task_rate(ex, ["positive", "7", "negative "], {"positive", "negative"}) == {
        "min_number": 0.5, "reverse_words": 1.0}
    held_out = [Example("", "two cat red nine eat", "cat", "animal.plain.en.once")] * 3
    # "CAT" is what the trained neighbour animal.upper.en.once answers; "cat" is right; "red" is no neighbour's
    assert neighbour_rate(held_out, ["CAT", "cat", "red"], ["animal.upper.en.once"]) == pytest.approx(1 / 3)
    assert neighbour_rate(held_out, ["CAT"] * 3, ["colour.upper.en.once"]) == 0.0  # not trained: no neighbour


def test_aggregate_over_seeds_pairs_before_and_after_and_draws_curves():
    def step(greedy, sampled):
        return {"step": 4, "greedy": greedy, "sampled": sampled, "greedy_invalid": 0.0, "sampled_invalid": 0.0,
                "greedy_amplification": greedy - 0.7, "sampled_amplification": sampled - 0.7,
                "clear_review_accuracy": 0.9}

    def summary(acc, ab):
        return {"accuracy": acc, "unseen_input_accuracy": acc / 2, "abstention": ab, "ece": 0.1,
                "mean_confidence": 0.5, "n": 2, "bins": [{"low": 0.0, "high": 0.5, "count": 1, "accuracy": acc,
                                                         "confidence": 0.25},
                                                        {"low": 0.5, "high": 1.0, "count": 1, "accuracy": 1.0,
                                                         "confidence": 0.75}]}

    per_seed = [
        {"hallucination": {"before": {"answerable": summary(0.8, 0.0), "unanswerable": summary(0.0, 0.0)},
                           "after": {"answerable": summary(0.7, 0.1), "unanswerable": summary(0.0, 0.6)}},
         "data_cost": {"quantity": {64: 0.1, 1024: 0.5}, "diversity": {1: 0.3, 60: 0.5}, "budget": 1024, "steps": 9},
         "bias": {"data_rate": 0.7, "by_step": [step(1.0, 0.7)]}},
        {"hallucination": {"before": {"answerable": summary(0.9, 0.0), "unanswerable": summary(0.0, 0.0)},
                           "after": {"answerable": summary(0.7, 0.0), "unanswerable": summary(0.0, 0.8)}},
         "data_cost": {"quantity": {64: 0.3, 1024: 0.5}, "diversity": {1: 0.1, 60: 0.5}, "budget": 1024, "steps": 9},
         "bias": {"data_rate": 0.7, "by_step": [step(0.8, 0.6)]}},
    ]
    agg = aggregate(per_seed)
    h = agg["hallucination"]
    assert h["unanswerable.abstention"]["after_minus_before"]["mean"] == pytest.approx(0.7)
    assert h["answerable.accuracy"]["after_minus_before"]["values"] == pytest.approx([-0.1, -0.2])
    assert [p["mean"] for p in agg["data_cost"]["quantity"]] == pytest.approx([0.2, 0.5])
    assert agg["data_cost"]["quantity_flattens_at"] == 1024
    pooled = agg["hallucination_reliability"]["answerable (before)"]
    assert pooled["n"] == 4 and pooled["bins"][0]["accuracy"] == pytest.approx(0.85)  # seeds' 0.8 and 0.9 pooled
    assert agg["bias"]["by_step"][0]["greedy"]["mean"] == pytest.approx(0.9)
    assert agg["bias"]["by_step"][0]["greedy_amplification"]["values"] == pytest.approx([0.3, 0.1])
    assert "zero_shot" not in agg and "single_task" not in agg  # only what ran
    # the same from results.json, whose keys are strings ("64" sorts after "1024" as a string)
    reread = aggregate(json.loads(json.dumps(per_seed)))
    assert [p["x"] for p in reread["data_cost"]["quantity"]] == [64, 1024]
    text = format_report(agg)
    assert "+70.0 pts" in text and "supported" in text and "1024 examples" in text
