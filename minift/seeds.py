"""One run is not a result: the same measurement over several seeds, as mean and spread.

A seed sets the model's initialisation and the order of the data. Between two seeds of the same
demo, held-out accuracy moves by several points, and a comparison (masked vs unmasked loss) by
more; across machines XLA's CPU kernels differ too. So every headline number of the course is
reported as the mean over seeds with its min–max range, and a difference is only claimed when the
range supports it (``spread`` of the per-seed differences, not the difference of the means).

``spread`` is the statistic; ``aggregate`` applies it to demo summaries (``minift.demo``);
``plot_accuracy`` draws the per-seed points and their mean.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure
from scipy import stats


def machine() -> dict:
    """Where a result was measured: the platform, CPU count, JAX version and backend."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
            "backend": jax.default_backend()}


def spread(values: Sequence[float]) -> dict:
    """``{"mean", "min", "max", "n", "values"}`` of per-seed values (min–max: with 3 seeds, honest)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("spread of no values: run at least one seed")
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()), "n": int(v.size),
            "values": [float(x) for x in v]}


def interval95(values: Sequence[float]) -> dict:
    r"""The 95% confidence interval of the mean over seeds, Student's t (seeds are few):

    $$\bar x \pm t_{0.975,\,n-1}\,\frac{s}{\sqrt n},\qquad s^2=\frac{1}{n-1}\sum_i (x_i-\bar x)^2$$

    ``{"mean", "low", "high", "half_width", "n"}``; with one value ``low``, ``high`` and
    ``half_width`` are None (the interval is unbounded: one seed says nothing about the spread; None
    keeps ``results.json`` strict JSON). An effect is *supported* when its interval excludes 0.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("interval95 of no values: run at least one seed")
    mean = float(v.mean())
    if v.size == 1:
        return {"mean": mean, "low": None, "high": None, "half_width": None, "n": 1}
    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "half_width": half, "n": int(v.size)}


def curve(points: dict[float, Sequence[float]]) -> list[dict]:
    """A learning curve over seeds: for each x (sorted), the ``spread`` and ``interval95`` of its values.

    ``points`` maps x (e.g. the number of training examples) to one value per seed.
    """
    return [{"x": x, **spread(points[x]), "interval95": interval95(points[x])} for x in sorted(points)]


def flattening_point(points: Sequence[dict], tolerance: float = 0.02) -> float:
    """Where a curve flattens: the smallest x whose mean is within ``tolerance`` of the best mean."""
    if not points:
        raise ValueError("flattening_point of an empty curve")
    best = max(p["mean"] for p in points)
    return min(p["x"] for p in points if p["mean"] >= best - tolerance)


def aggregate(summaries: Sequence[dict], models: Sequence[str], splits: Sequence[str],
              comparisons: dict[str, tuple[str, str]]) -> dict:
    """Mean and spread over seeds of every accuracy in demo ``summaries`` (one per seed).

    Returns ``{"models": {model: {split: {"overall": spread, "per_task": {task: spread},
    "subsets": {name: spread}}}}, "comparisons": {name: {split: spread of the per-seed difference}}}``;
    a comparison ``(a, b)`` is model a's accuracy minus model b's, paired seed by seed.
    """
    def tables(model: str, split: str) -> list[dict]:
        return [s["models"][model][split] for s in summaries]

    out: dict = {"models": {}, "comparisons": {}}
    for model in models:
        out["models"][model] = {}
        for split in splits:
            t = tables(model, split)
            entry = {"overall": spread([x["overall"] for x in t]),
                     "per_task": {task: spread([x["per_task"][task] for x in t]) for task in t[0]["per_task"]}}
            if "subsets" in t[0]:
                entry["subsets"] = {name: spread([x["subsets"][name]["overall"] for x in t])
                                    for name in t[0]["subsets"]}
            out["models"][model][split] = entry
    for name, (a, b) in comparisons.items():
        out["comparisons"][name] = {
            split: spread([x["overall"] - y["overall"] for x, y in zip(tables(a, split), tables(b, split))])
            for split in splits}
    return out


def describe(s: dict, percent: bool = True, digits: int = 1) -> str:
    """'86.6% (81.6–88.0, 3 seeds)': a mean and its range, as the README and notebooks print them."""
    k = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    return f"{k * s['mean']:.{digits}f}{unit} ({k * s['min']:.{digits}f}–{k * s['max']:.{digits}f}, {s['n']} seeds)"


def plot_accuracy(aggregated: dict, splits: Sequence[str], path: str | Path) -> Path:
    """One panel per split: each model's per-seed accuracies (points) and their mean (bar)."""
    models = list(aggregated["models"])
    fig = Figure(figsize=(4.2 * len(splits), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(splits)))
    for ax, split in zip(axes, splits):
        for i, model in enumerate(models):
            s = aggregated["models"][model][split]["overall"]
            ax.bar(i, 100 * s["mean"], color=f"C{i}", alpha=0.35)
            ax.errorbar(i, 100 * s["mean"], yerr=[[100 * (s["mean"] - s["min"])], [100 * (s["max"] - s["mean"])]],
                        color=f"C{i}", capsize=6, lw=1.5)
            ax.plot([i] * s["n"], [100 * v for v in s["values"]], "o", color=f"C{i}", ms=5)
        ax.set_xticks(range(len(models)), models, fontsize=8)
        ax.set(title=split, ylabel="exact match (%)", ylim=(0, 100))
    fig.suptitle("held-out exact match: per-seed points, mean bars, min–max whiskers", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)
