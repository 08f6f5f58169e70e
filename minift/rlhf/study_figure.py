r"""The §4 study's one figure: gold and proxy reward against $\sqrt{KL}$, every method, seed bands.

Left: the gold reward (the judge, never optimised); right: the proxy (the learned reward model,
what every method climbs). One colour per method, one line style per setting (β or n). A line is
the mean over seeds of each run's moving average, drawn at the mean $\sqrt{KL}$; the band spans the
seeds' lowest to highest value. Dotted black: Gao et al.'s form fitted to each method's pooled
points (``study.fits``). Labels are Vietnamese first, English in brackets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from minift.rlhf.sweep import smooth

COLOURS = {"ppo": "C0", "grpo": "C2", "dpo": "C3", "bon": "C1"}
STYLES = ("-", "--", "-.", ":", (0, (1, 1)), (0, (5, 1)))
NAMES = {"ppo": "PPO β", "grpo": "GRPO β", "dpo": "DPO β", "bon": "best-of-n"}


def mean_curve(runs: dict, key: str, window: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean √KL, mean, min, max of ``key``) over the seeds of one setting, point by point
    (runs cut to the shortest), each run smoothed by a trailing moving average first."""
    length = min(len(p) for p in runs.values())
    d = np.stack([smooth([np.sqrt(max(p["kl"], 0.0)) for p in pts[:length]], window) for pts in runs.values()])
    y = np.stack([smooth([p[key] for p in pts[:length]], window) for pts in runs.values()])
    return d.mean(0), y.mean(0), y.min(0), y.max(0)


def gao_curve(fit: dict, d: np.ndarray) -> np.ndarray:
    """The fitted form at distances ``d`` (0·log 0 = 0)."""
    if fit["form"] == "bon":
        return d * (fit["alpha"] - fit["beta"] * d)
    logd = np.log(np.where(d > 0, d, 1.0))
    return d * (fit["alpha"] - fit["beta"] * logd)


def plot_study(results: dict, path: str | Path) -> Path:
    curves = results["curves"]
    fig = Figure(figsize=(13, 5.2))
    axes = fig.subplots(1, 2)
    n_seeds = len(results.get("seeds", []))
    starts = []
    for method, settings in curves.items():
        for i, (name, runs) in enumerate(settings.items()):
            if method == "bon":
                continue
            for ax, key in zip(axes, ("gold", "proxy")):
                d, y, lo, hi = mean_curve(runs, key)
                ax.plot(d, y, color=COLOURS[method], ls=STYLES[i % len(STYLES)], lw=1.6,
                        label=f"{NAMES[method]} = {name}")
                ax.fill_between(d, lo, hi, color=COLOURS[method], alpha=0.12, lw=0)
            starts.append(np.mean([pts[0]["gold"] for pts in runs.values()]))
        if method == "bon" and settings:
            ns = list(settings)
            for ax, key in zip(axes, ("gold", "proxy")):
                vals = np.asarray([[pts[0][key] for pts in settings[n].values()] for n in ns])  # (n, seeds)
                d = np.sqrt([next(iter(settings[n].values()))[0]["kl"] for n in ns])
                ax.plot(d, vals.mean(1), "o-", color=COLOURS["bon"], lw=1.6, ms=3, label="best-of-n, n = 1…" + ns[-1])
                ax.fill_between(d, vals.min(1), vals.max(1), color=COLOURS["bon"], alpha=0.15, lw=0)
    # Gao's fitted forms, drawn from each method's mean start
    for method, fit in results.get("fits", {}).items():
        settings = curves[method]
        if method == "bon":
            g0 = np.mean([pts[0]["gold"] for pts in settings.get("1", next(iter(settings.values()))).values()])
            dmax = np.sqrt(max(p[0]["kl"] for runs in settings.values() for p in runs.values()))
        else:
            g0 = np.mean([pts[0]["gold"] for runs in settings.values() for pts in runs.values()])
            dmax = np.sqrt(max(max(p["kl"] for p in pts) for runs in settings.values() for pts in runs.values()))
        d = np.linspace(0, max(dmax, 1e-3), 60)
        axes[0].plot(d, g0 + gao_curve(fit, d), color=COLOURS[method], ls=":", lw=1.0, alpha=0.9)
    axes[0].set(xlabel="khoảng cách $d=\\sqrt{KL}$ tới $\\pi_{ref}$ (distance, $\\sqrt{\\mathrm{nats}}$)",
                ylabel="phần thưởng chuẩn (gold reward, judge)",
                title="Phần thưởng chuẩn: thứ ta thật sự muốn\n(gold: what we want; dotted: Gao et al. fit)")
    axes[1].set(xlabel="khoảng cách $d=\\sqrt{KL}$ tới $\\pi_{ref}$ (distance, $\\sqrt{\\mathrm{nats}}$)",
                ylabel="phần thưởng đại diện (proxy reward, $R_\\phi$)",
                title="Phần thưởng đại diện: thứ các phương pháp leo lên\n(proxy: what the methods climb)")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"Tối ưu quá đà phần thưởng (reward over-optimisation), §4 — trung bình {n_seeds} seed, dải: "
                 f"nhỏ nhất–lớn nhất (mean of {n_seeds} seeds, band: min–max)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return Path(path)
