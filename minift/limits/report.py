"""The studies' aggregate as plain text: what ``minift limits`` prints and the notebook shows.

Every number is a mean over seeds with its 95% interval (Student's t; ``minift.seeds.interval95``);
with a single seed only the mean is shown.
"""

from __future__ import annotations

from minift.limits.hallucination import METRICS


def _pct(s: dict) -> str:
    if s["n"] < 2:
        return f"{100 * s['mean']:5.1f}%"
    low, high = max(0.0, s["interval95"]["low"]), min(1.0, s["interval95"]["high"])  # a rate stays in [0, 1]
    return f"{100 * s['mean']:5.1f}% [{100 * low:5.1f}, {100 * high:5.1f}]"


def _pts(s: dict) -> str:
    """A difference in percentage points, with its interval; 'supported' when it excludes 0."""
    if s["n"] < 2:
        return f"{100 * s['mean']:+5.1f} pts (1 seed)"
    i = s["interval95"]
    verdict = "supported" if i["low"] > 0 or i["high"] < 0 else "not supported"
    return f"{100 * s['mean']:+5.1f} pts [{100 * i['low']:+5.1f}, {100 * i['high']:+5.1f}] {verdict}"


def format_report(agg: dict) -> str:
    """One section per study present in ``agg`` (``limits.run.aggregate``)."""
    lines: list[str] = []
    if h := agg.get("hallucination"):
        lines += ["§5 hallucination — before / after adding 'I don't know' examples (after − before)"]
        for key, name in METRICS.items():
            if ".".join(key) not in h:
                continue
            v = h[".".join(key)]
            lines.append(f"  {name:<46} {_pct(v['before'])}  ->  {_pct(v['after'])}   {_pts(v['after_minus_before'])}")
    if rel := agg.get("hallucination_reliability"):
        lines.append("  ECE of all seeds' answers pooled: " + "; ".join(f"{k} {v['ece']:.2f}" for k, v in rel.items()))
    if b := agg.get("bias"):
        lines += ["", "§5 bias — 'positive' on held-out ambiguous reviews; training labels "
                      f"{100 * b['data_rate']:.0f}% positive"]
        for r in b["by_step"]:
            lines.append(f"  step {r['step']:>5}: greedy {_pct(r['greedy'])} "
                         f"amplification {_pts(r['greedy_amplification'])}")
            lines.append(f"  {'':>10} sampled {_pct(r['sampled'])} amplification {_pts(r['sampled_amplification'])}"
                         f"   clear reviews right {_pct(r['clear_review_accuracy'])}")
    if t := agg.get("single_task"):
        models = list(t["models"])
        lines += ["", f"§2 traditional fine-tuning ({t['task']} only) vs instruction tuning — exact match, and "
                      f"answers that are a {t['task']} answer"]
        lines.append(f"  {'task':<16}" + "".join(f"{m + ' right':>28}{m + ' as ' + t['task']:>34}" for m in models))
        for task in t["models"][models[0]]["accuracy"]:
            lines.append(f"  {task:<16}" + "".join(f"{_pct(t['models'][m]['accuracy'][task]):>28}"
                                                   f"{_pct(t['models'][m]['answers_as_single_task'][task]):>34}"
                                                   for m in models))
    if d := agg.get("data_cost"):
        lines += ["", f"§5 cost of gold data — exact match on new wordings, {d['steps']} steps per run"]
        lines += [f"  {p['x']:>6} examples: {_pct(p)}" for p in d["quantity"]]
        lines.append(f"  within 2 points of the best from {d['quantity_flattens_at']} examples")
        lines += [f"  {p['x']:>6} wordings per task and language ({d['budget']} examples): {_pct(p)}"
                  for p in d["diversity"]]
    if z := agg.get("zero_shot"):
        lines += ["", "§1 zero-shot — held-out task exact match by number of trained families "
                      "(best trivial baseline; answered as the neighbour task)"]
        for k, row in sorted(z["by_count"].items(), key=lambda item: int(item[0])):  # "11" < "3" as JSON keys
            lines.append(f"  {k} families: overall {_pct(row['overall'])}")
            for task, s in row["accuracy"].items():
                best = max(z["baselines"], key=lambda name: z["baselines"][name][task])
                when = row["as_neighbour_when_trained"][task]
                lines.append(f"    {task:<18} {_pct(s)}   baseline {best} {100 * z['baselines'][best][task]:5.1f}%   "
                             f"as neighbour {_pct(row['answers_as_neighbour'][task])}"
                             + (f" ({_pct(when)} over the {when['n']} seed(s) that trained it)" if when else
                                " (neighbour never trained)"))
    return "\n".join(lines)
