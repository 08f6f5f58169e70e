"""The studies' figures, one PNG each, from the aggregate of ``limits.run`` (points are seed means,
bars their 95% interval over seeds; a study that did not run draws nothing)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.figure import Figure

from minift.calibration import plot_reliability
from minift.limits.hallucination import METRICS


def _errorbar(ax, xs, stats, **kw):
    means = [100 * s["mean"] for s in stats]
    # an interval over one seed is unbounded: draw the min-max range (a point) instead
    lows = [100 * (s["mean"] - (s["interval95"]["low"] if s["n"] > 1 else s["min"])) for s in stats]
    highs = [100 * ((s["interval95"]["high"] if s["n"] > 1 else s["max"]) - s["mean"]) for s in stats]
    ax.errorbar(xs, means, yerr=[lows, highs], capsize=4, marker="o", **kw)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def hallucination(agg: dict, path: Path) -> Path:
    fig = Figure(figsize=(9, 3.8))
    ax = fig.subplots()
    names = [METRICS[tuple(k.split("."))] for k in agg if not k.endswith("ece")]
    fig.set_size_inches(1.9 * len(names) + 2, 4.6)
    for i, when in enumerate(("before", "after")):
        stats = [v[when] for k, v in agg.items() if not k.endswith("ece")]
        _errorbar(ax, [j + 0.15 * (i - 0.5) for j in range(len(stats))], stats, ls="none",
                  label=f"{('trước', 'sau')[i]} khi thêm ví dụ 'Tôi không biết' "
                        f"({when} adding 'I don't know' examples)", color=f"C{i}")
    ax.set_xticks(range(len(names)), [textwrap.fill(n, 22) for n in names], fontsize=7)  # bilingual labels are long
    ax.set(ylabel="%", ylim=(-2, 102),
           title="§5 ảo giác (hallucination): từ chối câu không trả lời được, và cái giá phải trả\n"
                 "(declining the unanswerable, and what it costs)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.42))  # below the ticks, off the data
    return _save(fig, path)


def bias(agg: dict, path: Path) -> Path:
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    steps = [r["step"] for r in agg["by_step"]]
    for i, mode in enumerate(("greedy", "sampled")):
        _errorbar(ax, steps, [r[mode] for r in agg["by_step"]],
                  label=f"mô hình, {('tham lam', 'lấy mẫu')[i]} (model, {mode})", color=f"C{i}")
    ax.axhline(100 * agg["data_rate"], color="k", ls="--", lw=1,
               label="nhãn huấn luyện: độ lệch của người gán nhãn\n(training labels: annotator skew)")
    ax.axhline(50, color="gray", ls=":", lw=1, label="không lệch (no skew)")
    ax.set(xlabel="bước huấn luyện (training step)",
           ylabel="'positive' trên nhận xét mơ hồ (%)\n('positive' on ambiguous reviews)", ylim=(0, 102),
           title="§5 thiên kiến (bias): khuếch đại, sao chép hay làm dịu?\n(amplified, copied or dampened?)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def data_cost(agg: dict, path: Path) -> Path:
    fig = Figure(figsize=(10, 3.8))
    left, right = fig.subplots(1, 2)
    _errorbar(left, [p["x"] for p in agg["quantity"]], agg["quantity"], color="C0")
    left.set(xscale="log", xlabel="số ví dụ SFT (SFT examples)",
             ylabel="khớp chính xác, cách diễn đạt mới (%)\n(exact match on new wordings)", ylim=(0, 100),
             title=f"số lượng: {agg['steps']} bước mỗi lần chạy\n(quantity, {agg['steps']} steps each)")
    _errorbar(right, [p["x"] for p in agg["diversity"]], agg["diversity"], color="C1")
    right.set(xscale="log", xlabel="số cách diễn đạt mỗi tác vụ và ngôn ngữ\n(wordings per task and language)",
              ylim=(0, 100), title=f"đa dạng: {agg['budget']} ví dụ, {agg['steps']} bước\n"
                                   f"(diversity, {agg['budget']} examples, {agg['steps']} steps)")
    fig.suptitle("§5 chi phí dữ liệu (the cost of gold data)", fontsize=10)
    return _save(fig, path)


def zero_shot(agg: dict, path: Path) -> Path:
    counts = [int(k) for k in agg["by_count"]]
    rows = list(agg["by_count"].values())
    fig = Figure(figsize=(11, 3.8))
    left, right = fig.subplots(1, 2)
    lines = (("trained_families", "họ đã học, đầu vào mới (trained families, new inputs)", "C2"),
             ("heldout_task", "họ chưa học: tổ hợp mới (held-out families: new combinations)", "C0"),
             ("heldout_cluster", "cụm chưa học: nguyên tố mới (held-out cluster: a new primitive)", "C3"))
    for split, label, colour in lines:
        _errorbar(left, counts, [r[split] for r in rows], label=label, color=colour)
    best = max(b["heldout_task"] for b in agg["baselines"].values())
    left.axhline(100 * best, color="C0", ls=":", lw=1)
    left.set(xlabel="số họ tác vụ đã huấn luyện (trained task families)", xscale="log",
             ylabel="khớp chính xác (%)\n(exact match)", ylim=(-2, 102),
             title="§1 Zero-shot, khoảng tin cậy 95% qua các seed (95% interval over seeds)\n"
                   "(chấm chấm: mốc tầm thường tốt nhất / dotted: best trivial baseline)")
    for split, label, colour in lines[1:]:
        _errorbar(right, counts, [r[f"{split}_as_neighbour"] for r in rows], label=label, color=colour)
    right.set(xlabel="số họ tác vụ đã huấn luyện (trained task families)", xscale="log",
              ylabel="sai như một họ láng giềng (%)\n(wrong, as a family one primitive away)", ylim=(-2, 102),
              title="mô hình làm gì thay vào đó (what it did instead)")
    left.legend(fontsize=7)
    return _save(fig, path)


def zero_shot_scale(summary: dict, path: Path) -> Path:
    """§1 at two model sizes and four step budgets (``docs/zero_shot_results.json``): held-out-family
    accuracy against the number of trained families for each size (left), and against SFT steps
    with every family trained (right), each beside the trained families' own accuracy."""
    fig = Figure(figsize=(11, 3.8))
    left, right = fig.subplots(1, 2)
    for i, (size, agg) in enumerate(summary["sizes"].items()):
        counts = [int(k) for k in agg["by_count"]]
        rows = list(agg["by_count"].values())
        label = f"{size} ({summary['n_params'][size] / 1e6:.2f}M)"
        _errorbar(left, counts, [r["heldout_task"] for r in rows], color=f"C{i}",
                  label=f"{label}: họ chưa học (held-out families)")
        _errorbar(left, counts, [r["trained_families"] for r in rows], color=f"C{i}", ls="--", mfc="white",
                  label=f"{label}: họ đã học (trained families)")
    left.set(xlabel="số họ tác vụ đã huấn luyện (trained task families)", xscale="log",
             ylabel="khớp chính xác (%)\n(exact match)", ylim=(-2, 102),
             title="theo số họ và cỡ mô hình, 95% qua các seed\n(by family count and model size, 95% over seeds)")
    steps = sorted(summary["steps"], key=int)
    for split, label, style in (("heldout_task", "họ chưa học (held-out families)", "-"),
                                ("trained_families", "họ đã học (trained families)", "--"),
                                ("heldout_cluster", "cụm chưa học (held-out cluster)", ":")):
        _errorbar(right, [int(s) for s in steps], [summary["steps"][s][split] for s in steps], ls=style, label=label)
    right.set(xlabel="số bước SFT (SFT steps)", xscale="log", ylim=(-2, 102),
              title="theo số bước, mọi họ được huấn luyện\n(by steps, every trained family)")
    left.legend(fontsize=6)
    right.legend(fontsize=7)
    return _save(fig, path)


def single_task(agg: dict, path: Path) -> Path:
    models = agg["models"]
    tasks = list(next(iter(models.values()))["accuracy"])
    fig = Figure(figsize=(10, 3.8))
    ax = fig.subplots()
    for i, (name, m) in enumerate(models.items()):
        _errorbar(ax, [j + 0.2 * (i - 0.5) for j in range(len(tasks))], [m["accuracy"][t] for t in tasks],
                  ls="none", color=f"C{i}", label=f"{name}: khớp chính xác (exact match)")
        _errorbar(ax, [j + 0.2 * (i - 0.5) for j in range(len(tasks))],
                  [m["answers_as_single_task"][t] for t in tasks], ls="none", color=f"C{i}", mfc="white",
                  label=f"{name}: trả lời như {agg['task']} (answered as {agg['task']})")
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, fontsize=7)
    ax.set(ylabel="%", ylim=(-2, 102),
           title=f"§2 mỗi tác vụ một mô hình ({agg['task']}) so với một mô hình cho nhiều tác vụ\n"
                 "(one model per task vs one for many)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def draw(aggregate: dict, out: Path) -> list[Path]:
    """Every figure whose study is in ``aggregate``, as ``out/<study>.png`` (the hallucination study
    draws two: its before/after numbers and the reliability diagram of all seeds' answers pooled)."""
    drawers = {"hallucination": hallucination, "bias": bias, "data_cost": data_cost, "zero_shot": zero_shot,
               "single_task": single_task, "hallucination_reliability": plot_reliability}
    return [drawers[name](agg, out / f"{name}.png") for name, agg in aggregate.items()]
