r"""The β sweep of §4: what the KL leash does, measured (the experiment a teacher shows).

The article's objective $\mathcal{L}_{RL}=\mathbb{E}[R(x,y)]-\beta D_{KL}(\pi_\theta\Vert\pi_{ref})$ says
the KL term is there "to avoid mode collapse". This study runs PPO (``minift.rlhf.ppo``) once per β
from the same SFT model, reward model, prompts and seed, and records per iteration

* the *learned* reward $R_\phi$ — what PPO maximises,
* the *gold* reward — the programmatic judge that labelled the preference pairs
  (``minift.course.judge``), which PPO never sees,
* the KL to $\pi_{ref}$ (k1 and k3, per sequence), the policy's entropy, and the fraction of
  distinct answers in a batch (all prompts differ, so one answer for everything = mode collapse).

With β = 0 nothing holds the policy near the SFT model: the KL grows, the entropy falls and the
learned reward keeps rising after the gold one has stopped or fallen — reward over-optimisation
(Gao et al. 2023). A β > 0 trades some learned reward for staying close to $\pi_{ref}$.

Outputs in ``out_dir``: one run folder per β and seed (``beta_<β>/seed_<s>/metrics.jsonl``),
``results.json`` (per β the final learned reward, gold reward, KL and entropy, each averaged over
the last iterations, as mean and min–max over the seeds) and the figure ``beta_sweep.png``.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from minift.config import ModelConfig
from minift.files import write_json
from minift.rlhf.ppo import PPOConfig, PromptSet, train_ppo
from minift.seeds import spread

# (key, figure label): Vietnamese first, the English in brackets, as the course reads.
QUANTITIES = (("reward", "phần thưởng học được (learned reward) $R_\\phi$"),
              ("gold_reward", "phần thưởng chuẩn (gold reward, judge)"),
              ("kl_k1", "KL tới (to) $\\pi_{ref}$ (k1, nats / câu trả lời)"), ("entropy", "entropy (nats / token)"),
              ("distinct_answers", "số câu trả lời khác nhau / batch\n(distinct answers / batch)"))
FINAL_WINDOW = 5  # "final" values average the last iterations: one batch of 32 rollouts is noisy


def parse_betas(text: str) -> list[float]:
    """"0,0.05,0.5" -> [0.0, 0.05, 0.5]; each β must be a number >= 0."""
    try:
        betas = [float(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise ValueError(f"--sweep {text!r}: give comma-separated numbers, e.g. 0,0.05,0.5") from None
    if not betas or any(b < 0 for b in betas):
        raise ValueError(f"--sweep {text!r}: give at least one beta, every beta >= 0 (0 = no KL penalty)")
    return betas


def summarise(history: Sequence[dict], window: int = FINAL_WINDOW) -> dict[str, float]:
    """Final values (mean of the last ``window`` iterations) and the start, of each quantity."""
    tail = history[-window:]
    out = {f"final_{k}": float(np.mean([r[k] for r in tail])) for k, _ in QUANTITIES}
    out.update({f"start_{k}": float(history[0][k]) for k, _ in QUANTITIES})
    out["final_kl_k3"] = float(np.mean([r["kl_k3"] for r in tail]))
    out["max_gold_reward"] = float(max(r["gold_reward"] for r in history))
    return out


def run_sweep(
    betas: Sequence[float],
    sft_params: dict,
    config: ModelConfig,
    rm_params: dict,
    rm_config: ModelConfig,
    prompts: PromptSet,
    tokenizer: Any,
    ppo: PPOConfig,
    out_dir: str | Path,
    *,
    seeds: Sequence[int] | None = None,
    log: Callable[[float, int, dict], None] | None = None,
) -> dict:
    """PPO once per β and seed (same SFT model, reward model and prompts); writes results.json and
    the figure, and returns the results.

    A seed sets PPO's prompt draws and samples (default: ``ppo.seed`` alone). ``results["summary"]``
    holds, per β, each quantity's final and start value as ``minift.seeds.spread`` over the seeds
    (mean, min, max, values); ``results["history"][β][seed]`` every iteration's record.
    ``log(beta, seed, record)`` receives each iteration's record of each run.
    """
    out_dir = Path(out_dir)
    seeds = list(seeds) if seeds is not None else [ppo.seed]
    histories: dict[str, dict[str, list[dict]]] = {}
    for beta in betas:
        name = f"{beta:g}"
        histories[name] = {}
        for seed in seeds:
            _, histories[name][str(seed)] = train_ppo(
                sft_params, config, rm_params, rm_config, prompts, tokenizer, replace(ppo, beta=float(beta), seed=seed),
                run_dir=out_dir / f"beta_{name}" / f"seed_{seed}",
                log=None if log is None else lambda r, b=beta, s=seed: log(b, s, r),
            )
    results = {
        "settings": {k: v for k, v in asdict(ppo).items() if k not in ("beta", "seed")},
        "seeds": seeds,
        "model": config.to_dict(),
        "summary": {name: summarise_seeds(list(runs.values())) for name, runs in histories.items()},
        "history": {name: {seed: [{k: v for k, v in r.items() if k != "sample"} for r in h] for seed, h in runs.items()}
                    for name, runs in histories.items()},
        "final_samples": {name: {seed: h[-1]["sample"] for seed, h in runs.items()} for name, runs in histories.items()},
    }
    write_json(out_dir / "results.json", results, indent=1)
    plot_sweep(results, out_dir / "beta_sweep.png")
    return results


def summarise_seeds(histories: Sequence[Sequence[dict]]) -> dict[str, dict]:
    """Each ``summarise`` value as mean and spread over the seeds' runs (``minift.seeds.spread``)."""
    per_seed = [summarise(h) for h in histories]
    return {key: spread([s[key] for s in per_seed]) for key in per_seed[0]}


def smooth(values: Sequence[float], window: int = FINAL_WINDOW) -> np.ndarray:
    """Trailing moving average (shorter at the start): one batch of rollouts is a noisy measurement."""
    v = np.asarray(values, dtype=np.float64)
    return np.asarray([v[max(0, i - window + 1) : i + 1].mean() for i in range(len(v))])


def plot_sweep(results: dict, path: str | Path) -> Path:
    """One PNG, two rows: each quantity against iteration (top); rewards and entropy against KL,
    and the over-optimisation gap (learned - gold) against iteration (bottom). Lines are the mean
    over seeds of each run's moving average; bands span the seeds' min to max."""
    histories = results["history"]
    colours = {name: f"C{i}" for i, name in enumerate(histories)}

    def curves(name: str, key) -> np.ndarray:  # (seeds, iterations), moving averages
        return np.stack([smooth([key(r) for r in h]) for h in histories[name].values()])

    fig = Figure(figsize=(4.2 * len(QUANTITIES), 7))
    axes = fig.subplots(2, len(QUANTITIES))
    n_seeds = len(results.get("seeds", [0]))
    for ax, (key, label) in zip(axes[0], QUANTITIES):
        for name in histories:
            c = curves(name, lambda r, k=key: r[k])
            x = np.arange(1, c.shape[1] + 1)
            ax.plot(x, c.mean(axis=0), color=colours[name], lw=2, label=f"β = {name}")
            ax.fill_between(x, c.min(axis=0), c.max(axis=0), color=colours[name], alpha=0.2, lw=0)
        ax.set(xlabel="vòng lặp PPO (PPO iteration)", title=label)
    for ax, (key, label) in zip(axes[1], [q for q in QUANTITIES if q[0] != "kl_k1"]):
        for name in histories:
            kl, y = curves(name, lambda r: r["kl_k1"]), curves(name, lambda r, k=key: r[k])
            for i in range(kl.shape[0]):  # one line per seed: the relation, not an average of it
                ax.plot(kl[i], y[i], "o-", ms=2, lw=0.8, alpha=0.7, color=colours[name],
                        label=f"β = {name}" if i == 0 else None)
        ax.set(xlabel="KL tới (to) $\\pi_{ref}$ (k1, nats / câu trả lời)", title=f"{label.splitlines()[0]}\ntheo (vs) KL")
    ax = axes[1, -1]
    for name in histories:
        gap = curves(name, lambda r: r["reward"] - r["gold_reward"])
        x = np.arange(1, gap.shape[1] + 1)
        ax.plot(x, gap.mean(axis=0), color=colours[name], lw=2, label=f"β = {name}")
        ax.fill_between(x, gap.min(axis=0), gap.max(axis=0), color=colours[name], alpha=0.2, lw=0)
    ax.set(xlabel="vòng lặp PPO (PPO iteration)", title="học được − chuẩn (learned − gold)\ntối ưu quá đà (over-optimisation)")
    axes[0, 0].legend()
    fig.suptitle(f"quét β (β sweep): trung bình trên {n_seeds} seed của trung bình trượt 5 vòng; dải: nhỏ nhất–lớn "
                 f"nhất giữa các seed\n(mean over {n_seeds} seed(s) of 5-iteration moving averages; bands: min–max "
                 "over seeds)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return Path(path)
