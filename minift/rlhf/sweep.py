r"""The β sweep of §4: what the KL leash does, measured (the experiment a teacher shows).

The article's objective $\mathcal{L}_{RL}=\mathbb{E}[R(x,y)]-\beta D_{KL}(\pi_\theta\Vert\pi_{ref})$ says
the KL term is there "to avoid mode collapse". This module runs PPO (``minift.rlhf.ppo``) once per β
from the same SFT model, reward model, prompts and seed, and records per iteration

* the *learned* reward $R_\phi$ — what PPO maximises,
* the *gold* reward — the programmatic judge that labelled the preference pairs
  (``minift.coursedata.judge``), which PPO never sees,
* the KL to $\pi_{ref}$ (k1 and k3, per sequence) and the policy's entropy.

With β = 0 nothing holds the policy near the SFT model: the KL grows, the entropy falls and the
learned reward keeps rising after the gold one has stopped or fallen — reward over-optimisation
(Gao et al. 2023). A β > 0 trades some learned reward for staying close to $\pi_{ref}$.

Outputs in ``out_dir``: one run folder per β (``beta_<β>/metrics.jsonl``), ``results.json``
(per β the final learned reward, gold reward, KL and entropy, averaged over the last iterations)
and the figures ``beta_sweep.png`` (each quantity against iteration) and ``beta_sweep_vs_kl.png``
(learned and gold reward against KL).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from minift.config import ModelConfig
from minift.rlhf.ppo import PPOConfig, PromptSet, train_ppo

QUANTITIES = (("reward", "learned reward $R_\\phi$"), ("gold_reward", "gold reward (judge)"),
              ("kl_k1", "KL to $\\pi_{ref}$ (k1, nats / sequence)"), ("entropy", "entropy (nats / token)"))
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
    progress: Callable[[str], None] | None = None,
) -> dict:
    """PPO once per β (same seed, data and models); writes results.json and the figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    histories: dict[str, list[dict]] = {}
    for beta in betas:
        settings = PPOConfig(**{**ppo.__dict__, "beta": float(beta)})
        name = f"{beta:g}"

        def log(r: dict, name: str = name) -> None:
            if progress is not None:
                progress(f"beta {name} it {r['iteration']:3d}: reward {r['reward']:+.3f} gold {r['gold_reward']:+.3f} "
                         f"KL {r['kl_k1']:.3f} entropy {r['entropy']:.3f} | {r['sample'][0]!r}")

        _, histories[name] = train_ppo(sft_params, config, rm_params, rm_config, prompts, tokenizer, settings,
                                       run_dir=out_dir / f"beta_{name}", log=log)
    results = {
        "settings": {k: v for k, v in ppo.__dict__.items() if k != "beta"},
        "model": config.to_dict(),
        "summary": {name: summarise(h) for name, h in histories.items()},
        "history": {name: [{k: v for k, v in r.items() if k != "sample"} for r in h] for name, h in histories.items()},
        "final_samples": {name: h[-1]["sample"] for name, h in histories.items()},
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    plot_sweep(results, out_dir / "beta_sweep.png", out_dir / "beta_sweep_vs_kl.png")
    return results


def plot_sweep(results: dict, path: str | Path, path_vs_kl: str | Path | None = None) -> list[Path]:
    """One panel per quantity against iteration; and learned/gold reward against KL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histories = results["history"]
    fig, axes = plt.subplots(1, len(QUANTITIES), figsize=(4.2 * len(QUANTITIES), 3.4))
    for ax, (key, label) in zip(axes, QUANTITIES):
        for name, h in histories.items():
            ax.plot([r["iteration"] for r in h], [r[key] for r in h], label=f"β = {name}", lw=1.3)
        ax.set(xlabel="PPO iteration", title=label)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written = [Path(path)]
    if path_vs_kl is not None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
        for ax, (key, label) in zip(axes, QUANTITIES[:2]):
            for name, h in histories.items():
                ax.plot([r["kl_k1"] for r in h], [r[key] for r in h], "o-", ms=2.5, lw=1, label=f"β = {name}")
            ax.set(xlabel="KL to $\\pi_{ref}$ (k1, nats / sequence)", title=f"{label} vs KL")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(path_vs_kl, dpi=100)
        plt.close(fig)
        written.append(Path(path_vs_kl))
    return written
