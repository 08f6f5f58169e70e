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
    verdict = "có bằng chứng (supported)" if i["low"] > 0 or i["high"] < 0 else "chưa đủ bằng chứng (not supported)"
    return f"{100 * s['mean']:+5.1f} pts [{100 * i['low']:+5.1f}, {100 * i['high']:+5.1f}] {verdict}"


def format_report(agg: dict) -> str:
    """One section per study present in ``agg`` (``limits.run.aggregate``)."""
    lines: list[str] = []
    if h := agg.get("hallucination"):
        lines += ["§5 ảo giác (hallucination) — trước / sau khi thêm các ví dụ 'Tôi không biết' (sau − trước)",
                  "   (before / after adding 'I don't know' examples; after − before)"]
        for key, name in METRICS.items():
            if ".".join(key) not in h:
                continue
            v = h[".".join(key)]
            lines.append(f"  {name:<72} {_pct(v['before'])}  ->  {_pct(v['after'])}   {_pts(v['after_minus_before'])}")
    if rel := agg.get("hallucination_reliability"):
        lines.append("  ECE trên câu trả lời của mọi seed gộp lại (all seeds' answers pooled): "
                     + "; ".join(f"{k} {v['ece']:.2f}" for k, v in rel.items()))
    if b := agg.get("bias"):
        lines += ["", "§5 thiên kiến (bias) — tỉ lệ 'positive' trên các nhận xét mơ hồ giữ lại; nhãn huấn luyện "
                      f"{100 * b['data_rate']:.0f}% positive",
                  "   ('positive' on held-out ambiguous reviews; training labels "
                  f"{100 * b['data_rate']:.0f}% positive)"]
        for r in b["by_step"]:
            lines.append(f"  bước (step) {r['step']:>5}: tham lam (greedy) {_pct(r['greedy'])} "
                         f"khuếch đại (amplification) {_pts(r['greedy_amplification'])}")
            lines.append(f"  {'':>18} lấy mẫu (sampled) {_pct(r['sampled'])} "
                         f"khuếch đại (amplification) {_pts(r['sampled_amplification'])}"
                         f"   nhận xét rõ ràng đúng (clear reviews right) {_pct(r['clear_review_accuracy'])}")
    if t := agg.get("single_task"):
        models = list(t["models"])
        lines += ["", f"§2 fine-tuning truyền thống (chỉ {t['task']}) so với tinh chỉnh bằng chỉ thị — "
                      "khớp chính xác, "
                      f"và tỉ lệ câu trả lời là một đáp án {t['task']}",
                  f"   (traditional fine-tuning ({t['task']} only) vs instruction tuning — exact match, and "
                  f"answers that are a {t['task']} answer)"]
        lines.append(f"  {'tác vụ (task)':<16}"
                     + "".join(f"{m + ' đúng (right)':>32}{m + ' là (as) ' + t['task']:>38}" for m in models))
        for task in t["models"][models[0]]["accuracy"]:
            lines.append(f"  {task:<16}" + "".join(f"{_pct(t['models'][m]['accuracy'][task]):>32}"
                                                   f"{_pct(t['models'][m]['answers_as_single_task'][task]):>38}"
                                                   for m in models))
    if d := agg.get("data_cost"):
        lines += ["", "§5 chi phí dữ liệu (data cost) — khớp chính xác trên cách diễn đạt mới, "
                      f"{d['steps']} bước mỗi lần chạy",
                  f"   (cost of gold data — exact match on new wordings, {d['steps']} steps per run)"]
        lines += [f"  {p['x']:>6} ví dụ (examples): {_pct(p)}" for p in d["quantity"]]
        lines.append(f"  từ {d['quantity_flattens_at']} ví dụ trở đi, kém mức tốt nhất không quá 2 điểm "
                     f"(within 2 points of the best from {d['quantity_flattens_at']} examples)")
        lines += [f"  {p['x']:>6} cách diễn đạt mỗi tác vụ và ngôn ngữ (wordings per task and language), "
                  f"{d['budget']} ví dụ (examples): {_pct(p)}" for p in d["diversity"]]
    if z := agg.get("zero_shot"):
        best = max(z["baselines"], key=lambda name: z["baselines"][name]["heldout_task"])
        lines += ["", "§1 Zero-shot — khớp chính xác theo số họ tác vụ đã huấn luyện "
                      "(exact match by number of trained task families)",
                  f"   mốc tầm thường tốt nhất (best trivial baseline): {best} "
                  f"{100 * z['baselines'][best]['heldout_task']:.1f}%"]
        for k, row in sorted(z["by_count"].items(), key=lambda item: int(item[0])):  # "117" < "16" as JSON keys
            lines.append(f"  {k:>4} họ (families): họ đã học (trained) {_pct(row['trained_families'])}   "
                         f"họ chưa học (held-out) {_pct(row['heldout_task'])}   "
                         f"cụm chưa học (held-out cluster) {_pct(row['heldout_cluster'])}   "
                         f"sai như láng giềng (wrong as a neighbour) {_pct(row['heldout_task_as_neighbour'])}")
    return "\n".join(lines)
