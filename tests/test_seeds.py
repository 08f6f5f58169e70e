"""minift.seeds: mean and min–max over seeds, paired differences, the summary a multi-seed demo writes."""

from __future__ import annotations

import pytest

from minift.seeds import aggregate, describe, plot_accuracy, spread


def table(overall, per_task, seen=None):
    t = {"overall": overall, "n": 10, "per_task": per_task}
    if seen is not None:
        t["subsets"] = {"seen input": {"overall": seen, "n": 4}}
    return t


def test_spread_by_hand_and_no_values_is_an_error():
    s = spread([0.8, 0.9, 0.7])
    assert s["mean"] == pytest.approx(0.8) and (s["min"], s["max"], s["n"]) == (0.7, 0.9, 3)
    assert describe(s) == "80.0% (70.0–90.0, 3 seeds)"
    assert describe(spread([2.0]), percent=False) == "2.0 (2.0–2.0, 1 seeds)"
    with pytest.raises(ValueError, match="at least one seed"):
        spread([])


def test_aggregate_pairs_differences_seed_by_seed(tmp_path):
    # seed 0: a beats b by 20 points; seed 1: b beats a by 10. The mean difference is +5, and the
    # range (-10..+20) says the sign is not settled: that is what pairing shows and means hide.
    summaries = [
        {"models": {"a": {"s": table(0.9, {"t": 0.9}, seen=1.0)}, "b": {"s": table(0.7, {"t": 0.7}, seen=0.5)}}},
        {"models": {"a": {"s": table(0.6, {"t": 0.6}, seen=0.5)}, "b": {"s": table(0.7, {"t": 0.7}, seen=1.0)}}},
    ]
    agg = aggregate(summaries, ["a", "b"], ["s"], {"a_minus_b": ("a", "b")})
    assert agg["models"]["a"]["s"]["overall"]["values"] == [0.9, 0.6]
    assert agg["models"]["a"]["s"]["per_task"]["t"]["mean"] == pytest.approx(0.75)
    assert agg["models"]["b"]["s"]["subsets"]["seen input"]["mean"] == pytest.approx(0.75)
    diff = agg["comparisons"]["a_minus_b"]["s"]
    assert diff["mean"] == pytest.approx(0.05) and diff["min"] == pytest.approx(-0.1) and diff["max"] == pytest.approx(0.2)
    path = plot_accuracy(agg, ["s"], tmp_path / "acc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
