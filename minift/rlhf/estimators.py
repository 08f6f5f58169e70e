r"""The §4 study's estimators beyond PPO: DPO's loss, GRPO's group advantages, best-of-n's KL and
expected reward, and Gao et al.'s fitted forms. Each is one pure function with its equation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Float, Real


def sequence_log_probs(token_logps: Float[Array, "B T"], mask: Real[Array, "B T"]) -> Float[Array, " B"]:
    r"""$\log\pi(y\mid x) = \sum_t m_t \log\pi(y_t\mid x, y_{<t})$ per sequence: (B, T) -> (B,).

    ``jnp.where``, not ``mask * logp``: a masked position holding $-\infty$ would give
    $0\cdot(-\infty)$ = NaN in the value and in the gradient.
    """
    return jnp.sum(jnp.where(mask > 0, token_logps, 0.0), axis=-1)  # (B,)


def dpo_loss(logp_chosen: Float[Array, " B"], logp_rejected: Float[Array, " B"], ref_chosen: Float[Array, " B"],
             ref_rejected: Float[Array, " B"], beta: float) -> tuple[Float[Array, ""], dict[str, Array]]:
    r"""DPO's loss (Rafailov et al. 2023), §4's objective solved in closed form and fitted to the pairs.

    $$\mathcal{L}_{DPO} = -\frac1B\sum_b \log\sigma\Big(\beta\big[(\log\pi_\theta(y_w)-\log\pi_{ref}(y_w))
      - (\log\pi_\theta(y_l)-\log\pi_{ref}(y_l))\big]\Big)$$

    Inputs are (B,) *sequence* log-probabilities of the chosen $y_w$ and rejected $y_l$ answers.
    $\hat R = \beta\log\frac{\pi_\theta}{\pi_{ref}}$ is the reward DPO's policy implies; the loss is
    Bradley–Terry on it. ``log_sigmoid`` keeps it finite at any margin. Stats: the implied rewards'
    mean margin, the fraction of pairs ranked right, and the two implied rewards.
    """
    if isinstance(beta, (int, float)) and not beta > 0:
        raise ValueError(f"dpo_loss: beta must be > 0, got {beta!r}.")
    shapes = {a.shape for a in (logp_chosen, logp_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1 or logp_chosen.ndim != 1:
        raise ValueError(f"dpo_loss: the four log-prob arrays must be (B,) of one shape, got {sorted(shapes)}.")
    chosen_reward = beta * (logp_chosen - ref_chosen)  # (B,)
    rejected_reward = beta * (logp_rejected - ref_rejected)  # (B,)
    margin = chosen_reward - rejected_reward  # (B,)
    loss = -jnp.mean(jax.nn.log_sigmoid(margin))
    stats = {"reward_margin": jnp.mean(margin), "accuracy": jnp.mean((margin > 0).astype(jnp.float32)),
             "chosen_reward": jnp.mean(chosen_reward), "rejected_reward": jnp.mean(rejected_reward)}
    return loss, jax.tree.map(jax.lax.stop_gradient, stats)


def group_advantages(rewards: Float[Array, " B"], group_size: int, eps: float = 1e-6) -> Float[Array, " B"]:
    r"""GRPO's advantages (Shao et al. 2024): each reward standardised within its group of $G$ answers.

    $$\hat A_i = \frac{r_i - \operatorname{mean}(r_{g(i)})}{\operatorname{std}(r_{g(i)}) + \epsilon}$$

    ``rewards`` are laid out group-major: answers $gG \ldots gG+G-1$ share a prompt. std is the
    population std (ddof 0). A group of equal rewards gives 0 advantages (nothing to prefer).
    """
    B = rewards.shape[0]
    if group_size < 2 or B % group_size:
        raise ValueError(f"group_advantages: {B} rewards do not make groups of group_size={group_size} (>= 2).")
    r = rewards.reshape(B // group_size, group_size)  # (n_groups, G)
    centred = r - r.mean(axis=1, keepdims=True)
    return (centred / (r.std(axis=1, keepdims=True) + eps)).reshape(B)  # (B,)


def best_of_n_kl(n: int) -> float:
    r"""$D_{KL}(\pi_{\mathrm{BoN}}\Vert\pi) = \log n - \frac{n-1}{n}$ (Stiennon et al. 2020; Gao et al. 2023):
    the KL of picking the best of $n$ samples by a score with no ties, whatever the score."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"best_of_n_kl: n must be a whole number >= 1, got {n!r}.")
    return math.log(n) - (n - 1) / n


def best_of_n_expectation(proxy: np.ndarray, values: np.ndarray, n: int) -> float:
    r"""Unbiased estimate, from $N$ samples of one prompt, of $\mathbb{E}[v(\text{the best of } n \text{ by proxy})]$.

    Sort by proxy ascending; a subset of size $n$ drawn without replacement has its best at
    sorted position $i$ (1-based) with probability $\binom{i-1}{n-1}/\binom{N}{n}$, so

    $$\hat{\mathbb{E}} = \sum_{i=n}^{N} \frac{\binom{i-1}{n-1}}{\binom{N}{n}}\, v_{(i)}$$

    (Gao et al. 2023's estimator; weights in log space, exact for N = 64). Equal proxies are
    ordered by a stable sort (one fixed tie-break).
    """
    proxy, values = np.asarray(proxy, np.float64), np.asarray(values, np.float64)
    N = proxy.shape[0]
    if values.shape != proxy.shape or proxy.ndim != 1:
        raise ValueError(f"best_of_n_expectation: proxy and values must be (N,) of one shape, got "
                         f"{proxy.shape} and {values.shape}.")
    if not 1 <= n <= N:
        raise ValueError(f"best_of_n_expectation: n must be in 1..N={N}, got {n!r}.")
    v = values[np.argsort(proxy, kind="stable")]
    i = np.arange(n, N + 1)  # positions that can be the best of n
    log_w = np.asarray([math.lgamma(k) - math.lgamma(n) - math.lgamma(k - n + 1) for k in i])  # log C(i-1, n-1)
    log_w -= math.lgamma(N + 1) - math.lgamma(n + 1) - math.lgamma(N - n + 1)  # / C(N, n)
    return float(np.sum(np.exp(log_w) * v[n - 1 :]))


def gao_fit(d: np.ndarray, r: np.ndarray, form: str) -> dict:
    r"""Least-squares fit of Gao et al. (2023)'s forms of the gold gain $R(d) - R(0)$, $d = \sqrt{KL}$:

    * ``"bon"`` (best-of-n): $R = d(\alpha - \beta d)$;
    * ``"rl"`` (trained policies): $R = d(\alpha - \beta\log d)$, with $0\log 0 = 0$.

    Both are linear in $(\alpha, \beta)$; no intercept. Returns {form, alpha, beta, r2}.
    """
    d, r = np.asarray(d, np.float64), np.asarray(r, np.float64)
    if form not in ("bon", "rl"):
        raise ValueError(f"gao_fit: form must be 'bon' or 'rl', got {form!r}.")
    if d.shape != r.shape or d.size < 2:
        raise ValueError(f"gao_fit: d and r must be two arrays of one shape with >= 2 points, got {d.shape}, {r.shape}.")
    second = d * d if form == "bon" else d * np.log(np.where(d > 0, d, 1.0))
    X = np.stack([d, -second], axis=1)  # (P, 2): R = alpha*d - beta*second
    (alpha, beta), *_ = np.linalg.lstsq(X, r, rcond=None)
    ss_res = float(np.sum((r - X @ np.asarray([alpha, beta])) ** 2))
    ss_tot = float(np.sum((r - r.mean()) ** 2))
    return {"form": form, "alpha": float(alpha), "beta": float(beta),
            "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")}
