r"""The math of RLHF with PPO and a KL penalty (§4), as pure functions.

The article's objective (§4) is

$$\mathcal{L}_{RL} = \mathbb{E}_{x\sim\mathcal{D},\, y \sim \pi_\theta(\cdot\mid x)}\big[R(x, y)\big]
                   - \beta\, D_{KL}\big(\pi_\theta \,\Vert\, \pi_{ref}\big),$$

with $\pi_{ref}$ the instruction-tuned (SFT) model: the reward pulls the policy towards what people
prefer, and the KL term keeps it from collapsing onto whatever string fools the reward model.
It is maximised with PPO (Schulman et al. 2017) as in InstructGPT (Ouyang et al. 2022) and
Ziegler et al. 2019 ("Fine-Tuning Language Models from Human Preferences"). This module holds the
equations; the rollout and update loop are built on top of it.

In order of use in one PPO iteration:

1. ``kl_estimate`` — a per-token estimate of the KL from the sampled tokens' log-probs
   (Schulman 2020, "Approximating KL Divergence"): k1, k2, k3.
2. ``per_token_rewards`` — where the KL goes: *in the reward* (InstructGPT), $r_t=-\beta\,\mathrm{KL}_t$
   plus $R(x,y)$ on the last token; or ``kl_loss_term`` — *in the loss* (GRPO, Shao et al. 2024).
3. ``gae`` — advantages by generalised advantage estimation (Schulman et al. 2016).
4. ``masked_whiten`` — advantages normalised over the real tokens only.
5. ``ppo_clip_loss``, ``value_loss``, ``entropy`` — the PPO update's losses and diagnostics.
6. ``adaptive_kl_update`` — β steered towards a target KL (Ziegler et al. 2019, §2.2).

``rlhf_objective`` computes the article's $\mathcal{L}_{RL}$ itself, for logging.

Shapes: B batch (sequences), T time (response tokens), V vocab. Every (B, T) input comes with a
``mask`` (B, T), 1 on real response tokens and 0 on padding; every average is over real tokens.

Deviations from the papers, on purpose:
* The KL in ``rlhf_objective`` is the per-sequence sum of the per-token estimate (exact in
  expectation for k1 and k3: the KL of sequences is the sum of the per-token KLs along the path).
* ``masked_whiten`` uses the population variance (divide by N, not N-1).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from minift import checkpoint as ckpt
from minift import model, optim
from minift.config import ModelConfig
from minift.generate import Sampling, generate_tokens, left_pad
from minift.loss import token_log_probs
from minift.rlhf.reward import check_backbone_matches, positions_from_mask, reward_scores

KL_KINDS = ("k1", "k2", "k3")


# --------------------------------------------------------------------------------------------
# Averages over real tokens only
# --------------------------------------------------------------------------------------------


def masked_mean(x: Array, mask: Array, axis: int | None = None) -> Array:
    r"""Mean of ``x`` over the positions where ``mask`` is 1: $\sum_t m_t x_t / \sum_t m_t$.

    Padding never enters: masked positions are selected away (not multiplied by 0, so a NaN or inf
    there cannot leak in), and the denominator counts real tokens only. With no real token at all
    the mean is 0 (and so is its gradient) instead of 0/0.

    Args:
        x: (B, T) values (any shape equal to ``mask``'s).
        mask: (B, T) 1 = real token, 0 = padding.
        axis: None for one scalar over everything, or the axis to average (e.g. 1 for per-sequence).
    """
    if x.shape != mask.shape:
        raise ValueError(
            f"masked_mean (minift/rlhf/ppo.py): x has shape {x.shape} but mask has shape {mask.shape}; "
            "they must match — pass the (B, T) response mask that belongs to these values."
        )
    total = jnp.sum(jnp.where(mask > 0, x, 0.0), axis=axis)
    count = jnp.sum(mask, axis=axis)
    return total / jnp.maximum(count, 1.0)


def masked_whiten(x: Array, mask: Array, eps: float = 1e-8) -> Array:
    r"""Normalise ``x`` to mean 0 and variance 1 over the real tokens (advantage whitening).

    $$\mu = \frac{\sum_t m_t x_t}{\sum_t m_t},\quad
      \sigma^2 = \frac{\sum_t m_t (x_t-\mu)^2}{\sum_t m_t},\quad
      \hat x_t = m_t\,\frac{x_t-\mu}{\sqrt{\sigma^2+\epsilon}}$$

    Statistics over the whole batch (not per sequence), as PPO implementations do. Padding does not
    shift $\mu$ or $\sigma$ and comes out as 0; an all-padding input comes out all 0.

    Args:
        x: (B, T) values, typically advantages.
        mask: (B, T) 1 = real token.
    """
    mean = masked_mean(x, mask)  # ()
    centred = jnp.where(mask > 0, x - mean, 0.0)  # (B, T)
    var = masked_mean(centred**2, mask)  # ()
    return centred * jax.lax.rsqrt(var + eps)


# --------------------------------------------------------------------------------------------
# KL to the reference policy
# --------------------------------------------------------------------------------------------


def kl_estimate(logp: Array, logp_ref: Array, kind: str = "k1") -> Array:
    r"""Per-token estimates of $D_{KL}(\pi_\theta \Vert \pi_{ref})$ from tokens sampled from $\pi_\theta$ (§4).

    Schulman (2020), "Approximating KL Divergence". With $\log r = \log\pi_{ref}(y_t) - \log\pi_\theta(y_t)$
    and $y_t \sim \pi_\theta$:

    $$k_1 = -\log r, \qquad k_2 = \tfrac12(\log r)^2, \qquad k_3 = (r - 1) - \log r.$$

    * k1 is unbiased ($\mathbb{E}_{\pi_\theta}[-\log r] = D_{KL}$) but one sample can be negative —
      a batch mean of k1 can too, which is the "negative KL" users report; it is noise, not a bug.
    * k2 is biased (its mean is an f-divergence that matches the KL to second order, so the bias is
      small when the policies are close) but never negative and has low variance.
    * k3 is unbiased ($\mathbb{E}[r] = 1$, so the added $r-1$ has mean zero) and always $\ge 0$
      (since $\log r \le r - 1$): the usual choice.

    All three are exactly 0 when $\pi_\theta = \pi_{ref}$.

    Args:
        logp: (B, T) log-probs of the sampled tokens under the policy $\pi_\theta$.
        logp_ref: (B, T) log-probs of the same tokens under the reference (SFT) model.
        kind: "k1", "k2" or "k3".

    Returns:
        (B, T) per-token estimates (padding is not masked here; average with ``masked_mean``).
    """
    log_r = logp_ref - logp  # (B, T)
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r**2
    if kind == "k3":
        # expm1 keeps r - 1 accurate when r is close to 1, which is the usual case.
        return jnp.expm1(log_r) - log_r
    raise ValueError(
        f"kl_estimate (minift/rlhf/ppo.py): unknown kind {kind!r}; choose one of {', '.join(KL_KINDS)} "
        "(k1 = -log r, k2 = (log r)^2 / 2, k3 = (r - 1) - log r; see Schulman 2020)."
    )


def _check_beta(beta: float | Array, where: str) -> None:
    """Reject a negative β when its value is known (a traced β inside jit is left alone)."""
    try:
        value = float(beta)
    except TypeError:  # a tracer: the value is unknown until run time
        return
    if value < 0:
        raise ValueError(
            f"{where} (minift/rlhf/ppo.py): beta = {value} is negative; beta weighs the KL *penalty* "
            "and must be >= 0 (a negative beta rewards drifting away from the reference model). "
            "Use beta = 0 to switch the penalty off."
        )


def per_token_rewards(score: Array, kl: Array, mask: Array, beta: float | Array) -> Array:
    r"""The reward PPO sees at each response token, with the KL penalty placed *in the reward* (§4).

    InstructGPT (Ouyang et al. 2022, eq. 2) and Ziegler et al. (2019, §2.2):

    $$r_t = -\beta\,\mathrm{KL}_t + \begin{cases} R(x, y) & t = \text{last real token of } y\\ 0 & \text{otherwise}\end{cases}$$

    so $\sum_t r_t = R(x,y) - \beta\sum_t \mathrm{KL}_t$: each sequence's return is the article's
    $\mathcal{L}_{RL}$ integrand. The reward model scores whole responses, so its score arrives once,
    at the end; the KL is charged token by token, so credit assignment (``gae``) knows *which* tokens
    drifted. The rewards are data to the policy gradient: no gradient flows back through them.

    Args:
        score: (B,) reward-model scores $R(x, y)$ of the sampled responses.
        kl: (B, T) per-token KL estimates (``kl_estimate``).
        mask: (B, T) 1 on real response tokens; ragged rows are fine.
        beta: KL coefficient $\beta \ge 0$.

    Returns:
        (B, T) rewards, 0 on padding. A row with no real token gets no score.
    """
    _check_beta(beta, "per_token_rewards")
    kl = jax.lax.stop_gradient(kl)
    score = jax.lax.stop_gradient(score)
    # Real tokens strictly after t: reverse cumulative sum minus the token itself. The last real
    # token is the real token with none after it (this also handles non-contiguous masks).
    after = jnp.flip(jnp.cumsum(jnp.flip(mask, axis=1), axis=1), axis=1) - mask  # (B, T)
    is_last = jnp.where((mask > 0) & (after == 0), 1.0, 0.0)  # (B, T)
    penalty = jnp.where(mask > 0, -beta * kl, 0.0)  # (B, T)
    return penalty + is_last * score[:, None]  # (B, T)


def rlhf_objective(
    score: Array, logp: Array, logp_ref: Array, mask: Array, beta: float | Array, kind: str = "k1"
) -> Array:
    r"""The article's objective, estimated on a batch of sampled responses (§4; for logging).

    $$\mathcal{L}_{RL} = \mathbb{E}_{x\sim\pi_\theta}[R(x, y)] - \beta D_{KL}(\pi_\theta \Vert \pi_{ref})
      \approx \frac1B\sum_{b=1}^{B}\Big(R(x_b, y_b) - \beta \sum_{t} m_{bt}\,\widehat{\mathrm{KL}}_{bt}\Big)$$

    The KL of two sequence distributions is the expected sum of per-token log-ratios along the
    sampled path, so the per-token estimates are *summed* over each response, then averaged over the
    batch. This is a quantity to watch, not to differentiate: PPO optimises it through the
    clipped surrogate (``ppo_clip_loss``) on the per-token rewards (``per_token_rewards``).

    Args:
        score: (B,) reward-model scores.
        logp, logp_ref: (B, T) sampled tokens' log-probs under the policy and the reference.
        mask: (B, T) 1 on real response tokens.
        beta: KL coefficient $\beta \ge 0$.
        kind: the KL estimator (``kl_estimate``).

    Returns:
        A scalar: mean reward minus $\beta$ times mean per-sequence KL.
    """
    _check_beta(beta, "rlhf_objective")
    kl = kl_estimate(logp, logp_ref, kind)  # (B, T)
    kl_per_sequence = jnp.sum(jnp.where(mask > 0, kl, 0.0), axis=1)  # (B,)
    return jnp.mean(score) - beta * jnp.mean(kl_per_sequence)


def kl_loss_term(
    logp: Array, logp_ref: Array, mask: Array, beta: float | Array, kind: str = "k3"
) -> Array:
    r"""The KL penalty placed *in the loss* instead of in the reward (GRPO, Shao et al. 2024).

    $$\mathcal{L}_{KL} = \beta\,\frac{\sum_{b,t} m_{bt}\,k_3\big(\log\pi_\theta, \log\pi_{ref}\big)_{bt}}{\sum_{b,t} m_{bt}}$$

    added to the policy loss, with the gradient flowing through $\log\pi_\theta$. The two placements
    side by side:

    ============================  =====================================  ===================================
    \                             in the reward (``per_token_rewards``)  in the loss (``kl_loss_term``)
    ============================  =====================================  ===================================
    used by                       InstructGPT, Ziegler et al. 2019        GRPO, many "KL loss" recipes
    how the policy feels the KL   through the advantage (a reward term,  through its own gradient, added to
                                  credit-assigned by GAE, clipped by     the clipped surrogate's gradient
                                  PPO, no gradient of its own)
    estimator                     k1 is the usual choice                  k3 (low variance, never negative)
    ============================  =====================================  ===================================

    A subtlety worth knowing: with tokens sampled from $\pi_\theta$ and the sampling not
    differentiated, $\mathbb{E}_{y\sim\pi_\theta}[\nabla_\theta k_3] = \nabla_\theta D_{KL}(\pi_{ref}\Vert\pi_\theta)$
    — the gradient of the *other* direction of the KL (both are 0 at, and pull towards, $\pi_{ref}$).

    Args:
        logp: (B, T) sampled tokens' log-probs under the policy (differentiated).
        logp_ref: (B, T) the same under the frozen reference (not differentiated).
        mask: (B, T) 1 on real response tokens.
        beta: KL coefficient $\beta \ge 0$.
        kind: the estimator, k3 by default.

    Returns:
        A scalar to add to the policy loss.
    """
    _check_beta(beta, "kl_loss_term")
    kl = kl_estimate(logp, jax.lax.stop_gradient(logp_ref), kind)  # (B, T)
    return beta * masked_mean(kl, mask)


# --------------------------------------------------------------------------------------------
# Credit assignment
# --------------------------------------------------------------------------------------------


def gae(
    rewards: Array, values: Array, mask: Array, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Array, Array]:
    r"""Generalised advantage estimation (Schulman et al. 2016, eq. 16), per token of each response.

    $$\delta_t = r_t + \gamma\, m_{t+1} V_{t+1} - V_t, \qquad
      \hat A_t = m_t\big(\delta_t + \gamma\lambda\, m_{t+1}\hat A_{t+1}\big), \qquad
      \hat R_t = \hat A_t + V_t$$

    computed backwards in time with ``jax.lax.scan``. The response ends at its last real token: the
    position after it is terminal ($m_{t+1} = 0$ there and past the end), so nothing is bootstrapped
    from padding. $\lambda = 1$ gives the Monte-Carlo return minus $V$; $\lambda = 0$ gives the
    one-step TD error. The returns $\hat R_t$ are the value function's regression targets.

    Args:
        rewards: (B, T) per-token rewards (``per_token_rewards``).
        values: (B, T) the value head's estimates $V_t$ at the rollout.
        mask: (B, T) 1 on real response tokens.
        gamma: discount (1.0 in InstructGPT-style RLHF: a response is a short episode).
        lam: GAE's bias–variance knob $\lambda \in [0, 1]$.

    Returns:
        (advantages, returns), both (B, T), 0 on padding; neither carries a gradient.
    """
    rewards, values, mask = (jax.lax.stop_gradient(a) for a in (rewards, values, mask))
    # The next position's mask and value; past the end of the array there is nothing (terminal).
    next_mask = jnp.concatenate([mask[:, 1:], jnp.zeros_like(mask[:, :1])], axis=1)  # (B, T)
    next_values = jnp.concatenate([values[:, 1:], jnp.zeros_like(values[:, :1])], axis=1)  # (B, T)
    deltas = rewards + gamma * next_mask * next_values - values  # (B, T)

    def step(next_advantage: Array, xs: tuple[Array, Array, Array]) -> tuple[Array, Array]:
        delta_t, m_t, next_m_t = xs  # each (B,)
        advantage_t = m_t * (delta_t + gamma * lam * next_m_t * next_advantage)  # (B,)
        return advantage_t, advantage_t

    # scan walks the leading axis, so time goes first: (T, B); reverse=True runs t = T-1, ..., 0.
    xs = (deltas.T, mask.T, next_mask.T)
    _, advantages_tb = jax.lax.scan(step, jnp.zeros_like(deltas[:, 0]), xs, reverse=True)
    advantages = advantages_tb.T  # (B, T)
    returns = jnp.where(mask > 0, advantages + values, 0.0)  # (B, T)
    return advantages, returns


# --------------------------------------------------------------------------------------------
# The PPO update
# --------------------------------------------------------------------------------------------


class PPOStats(NamedTuple):
    """Diagnostics of one PPO policy loss evaluation (all scalars, no gradient)."""

    clip_frac: Array  # fraction of real tokens whose gradient the clip switched off
    approx_kl: Array  # k3 estimate of KL(pi_old || pi_new): how far this update has moved
    ratio_mean: Array  # mean of pi_new / pi_old over real tokens (1 at the first minibatch)


def ppo_clip_loss(
    logp_new: Array, logp_old: Array, advantages: Array, mask: Array, clip_eps: float = 0.2
) -> tuple[Array, PPOStats]:
    r"""PPO's clipped surrogate policy loss (Schulman et al. 2017, eq. 7), over real tokens (§4).

    $$\rho_t = \frac{\pi_\theta(y_t)}{\pi_{old}(y_t)} = e^{\log\pi_\theta(y_t) - \log\pi_{old}(y_t)},\qquad
      \mathcal{L}^{CLIP} = -\frac{\sum_t m_t \min\big(\rho_t \hat A_t,\ \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\hat A_t\big)}{\sum_t m_t}$$

    The min makes the objective pessimistic: once a token's probability has moved by more than
    $\epsilon$ in the direction its advantage asks for ($\rho > 1+\epsilon$ with $\hat A > 0$, or
    $\rho < 1-\epsilon$ with $\hat A < 0$), the clipped term is chosen and that token's gradient is
    exactly 0; moves in the wrong direction are never clipped.

    At $\rho = 1$ (the first minibatch after a rollout) the loss is $-\mathrm{mean}(\hat A)$, about 0
    after whitening, yet its gradient $-m_t\hat A_t / \sum m$ per token (w.r.t. $\log\pi_\theta$) is not
    zero: the value of the surrogate means nothing, its slope is the policy gradient.

    Args:
        logp_new: (B, T) sampled tokens' log-probs under the policy being updated (differentiated).
        logp_old: (B, T) the same under the policy that sampled them (fixed).
        advantages: (B, T) $\hat A_t$ (``gae``, usually ``masked_whiten``-ed).
        mask: (B, T) 1 on real response tokens.
        clip_eps: $\epsilon$.

    Returns:
        (loss, PPOStats).
    """
    logp_old = jax.lax.stop_gradient(logp_old)
    advantages = jax.lax.stop_gradient(advantages)
    ratio = jnp.exp(logp_new - logp_old)  # (B, T)
    unclipped = ratio * advantages  # (B, T)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages  # (B, T)
    loss = -masked_mean(jnp.minimum(unclipped, clipped), mask)

    stats = PPOStats(
        # clipped < unclipped exactly when the clip is active *and* chosen by the min (zero gradient).
        clip_frac=masked_mean((clipped < unclipped).astype(ratio.dtype), mask),
        # samples came from pi_old, so KL(pi_old || pi_new) via k3 with log r = logp_new - logp_old.
        approx_kl=masked_mean(kl_estimate(logp_old, logp_new, "k3"), mask),
        ratio_mean=masked_mean(ratio, mask),
    )
    return loss, jax.tree.map(jax.lax.stop_gradient, stats)


def value_loss(
    values_new: Array, values_old: Array, returns: Array, mask: Array, clip_eps: float = 0.2
) -> Array:
    r"""The clipped value-function loss of PPO implementations (OpenAI baselines; Ziegler et al. 2019).

    $$V^{clip}_t = V^{old}_t + \mathrm{clip}\big(V_t - V^{old}_t, -\epsilon, \epsilon\big),\qquad
      \mathcal{L}^{V} = \frac12\,\frac{\sum_t m_t \max\big((V_t - \hat R_t)^2,\ (V^{clip}_t - \hat R_t)^2\big)}{\sum_t m_t}$$

    The max is pessimistic like the policy's min: a value that moved more than $\epsilon$ from its
    rollout estimate is not rewarded for getting closer to the target through the clipped branch.

    Args:
        values_new: (B, T) value head's current predictions (differentiated).
        values_old: (B, T) predictions at rollout time (fixed).
        returns: (B, T) regression targets $\hat R_t$ (``gae``).
        mask: (B, T) 1 on real response tokens.
        clip_eps: $\epsilon$, in the value's units.
    """
    values_old = jax.lax.stop_gradient(values_old)
    returns = jax.lax.stop_gradient(returns)
    values_clipped = values_old + jnp.clip(values_new - values_old, -clip_eps, clip_eps)  # (B, T)
    squared_error = jnp.maximum((values_new - returns) ** 2, (values_clipped - returns) ** 2)  # (B, T)
    return 0.5 * masked_mean(squared_error, mask)


def entropy(logits: Array, mask: Array) -> Array:
    r"""Mean entropy of the policy's next-token distributions over real tokens.

    $$\mathcal{H} = \frac{1}{\sum_t m_t}\sum_t m_t\Big(-\sum_{v=1}^{V} p_{tv}\log p_{tv}\Big),\qquad
      \log p_{t\cdot} = \mathrm{log\_softmax}(z_{t\cdot})$$

    A falling entropy is the first sign of the mode collapse the KL term (§4) is there to prevent.

    Args:
        logits: (B, T, V) the policy's logits at the response positions.
        mask: (B, T) 1 on real response tokens.
    """
    logp = jax.nn.log_softmax(logits, axis=-1)  # (B, T, V)
    p = jnp.exp(logp)  # (B, T, V)
    # A logit of -inf (a banned token) has p = 0 and log p = -inf; its term is 0, not 0 * -inf = nan.
    per_token = -jnp.sum(jnp.where(p > 0, p * logp, 0.0), axis=-1)  # (B, T)
    return masked_mean(per_token, mask)


# --------------------------------------------------------------------------------------------
# Steering beta
# --------------------------------------------------------------------------------------------


def adaptive_kl_update(
    beta: float | Array, kl: float | Array, n_steps: int, target: float, horizon: float
) -> Array:
    r"""Adaptive KL coefficient (Ziegler et al. 2019, §2.2): β moves so the KL drifts to a target.

    $$e = \mathrm{clip}\Big(\frac{\mathrm{KL}}{\mathrm{KL}_{target}} - 1,\ -0.2,\ 0.2\Big),\qquad
      \beta \leftarrow \beta\,\Big(1 + e\,\frac{n_{steps}}{\mathrm{horizon}}\Big)$$

    A KL above the target raises β (a stronger pull back to $\pi_{ref}$); below it, β falls. The clip
    bounds each update's proportional error at 20%, so one noisy batch cannot swing β wildly.

    Args:
        beta: current coefficient.
        kl: the measured KL (per sequence, as in ``rlhf_objective``) of the last batch.
        n_steps: how many samples (episodes) that measurement covered.
        target: the KL to aim for (> 0).
        horizon: how many samples it should take to close the gap (> 0).

    Returns:
        The new β (a scalar array).
    """
    if not target > 0 or not horizon > 0:
        raise ValueError(
            f"adaptive_kl_update (minift/rlhf/ppo.py): target = {target} and horizon = {horizon} must "
            "both be > 0 (Ziegler et al. 2019 use target 6 nats and horizon 10000)."
        )
    proportional_error = jnp.clip(kl / target - 1.0, -0.2, 0.2)
    return beta * (1.0 + proportional_error * n_steps / horizon)


class AdaptiveKL(NamedTuple):
    """β with its adaptive rule (Ziegler et al. 2019): ``ctl = ctl.update(kl, n_steps)``."""

    beta: float | Array
    target: float
    horizon: float

    def update(self, kl: float | Array, n_steps: int) -> "AdaptiveKL":
        return self._replace(beta=adaptive_kl_update(self.beta, kl, n_steps, self.target, self.horizon))


class FixedKL(NamedTuple):
    """A constant β with the same interface as ``AdaptiveKL``: ``update`` returns it unchanged."""

    beta: float | Array

    def update(self, kl: float | Array, n_steps: int) -> "FixedKL":
        return self


# ============================================================================================
# The PPO loop: rollouts, scoring, one jit-compiled update (InstructGPT / Ziegler et al. 2019)
# ============================================================================================
# One iteration:
#   1. rollout  — sample a response for each prompt from pi_theta at temperature 1 with the cached
#                 sampler (minift.generate), prompts left-padded to one fixed length;
#   2. score    — one forward pass of the policy, of the frozen reference and of the reward model
#                 over prompt + response: logp_old, logp_ref, values, entropy, R(x, y);
#                 rewards (KL in the reward, or not), GAE, whitened advantages;
#   3. update   — `epochs` passes over the batch in `minibatches` shuffled minibatches, all in ONE
#                 jit region (lax.scan over epochs and minibatches), params donated;
#   4. log      — learned reward, gold reward (coursedata.judge), KL k1/k3, entropy, clip fraction,
#                 value loss, beta; then beta is updated (fixed or adaptive).
#
# The value function: a linear head on the policy's own final hidden states, read through
# stop_gradient. One forward pass gives logits and values (half the compute of InstructGPT's
# separate value model), and because no value-loss gradient reaches the backbone, the value head
# cannot pull the policy away from pi_ref — which matters when we measure what beta does. The
# price: the value is a linear function of features learned for language modelling; with
# gamma = 1 and lambda = 0.95 the advantages lean on the Monte-Carlo return anyway.
#
# logp_old is recomputed by the same forward pass the update uses rather than taken from the
# sampler: the cached sampler computes the same numbers along another path (rounding differs by
# ~1e-6); recomputed, the first minibatch has ratio 1 to float rounding (~1e-7) and clips nothing.
# The sampler's values are kept in the rollout (`logp_sampler`) to check they agree.


KL_PLACEMENTS = ("reward", "loss")


@dataclass(frozen=True)
class PPOConfig:
    """Settings of a PPO run (stored in run.json). Frozen: a static argument of the jit'd update."""

    iterations: int = 40
    batch_size: int = 32  # rollouts (prompts) per iteration
    max_new_tokens: int = 12  # course answers are at most 5 words; room to ramble
    epochs: int = 4  # passes over each rollout batch
    minibatches: int = 2  # per epoch; batch_size must be divisible by it
    learning_rate: float = 2e-4
    clip_eps: float = 0.2  # PPO's epsilon (Schulman et al. 2017)
    value_clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0  # an entropy bonus would hide the collapse we want to show
    gamma: float = 1.0
    lam: float = 0.95
    beta: float = 0.05  # KL coefficient (initial value when adaptive)
    kl_kind: str = "k1"  # estimator in the reward / loss
    kl_placement: str = "reward"  # "reward" (InstructGPT) or "loss" (GRPO-style)
    kl_target: float = 0.0  # > 0: adaptive beta towards this KL per sequence (Ziegler et al.)
    kl_horizon: float = 10000.0
    temperature: float = 1.0  # rollouts sample the policy itself: PPO's ratio assumes it
    seed: int = 0

    def __post_init__(self):
        _check_beta(self.beta, "PPOConfig")
        if self.kl_placement not in KL_PLACEMENTS:
            raise ValueError(f"PPOConfig: kl_placement must be one of {KL_PLACEMENTS}, got {self.kl_placement!r}.")
        if self.kl_kind not in KL_KINDS:
            raise ValueError(f"PPOConfig: kl_kind must be one of {KL_KINDS}, got {self.kl_kind!r}.")
        for name in ("iterations", "batch_size", "max_new_tokens", "epochs", "minibatches"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig: {name} must be >= 1, got {getattr(self, name)}.")
        if self.batch_size % self.minibatches:
            raise ValueError(f"PPOConfig: batch_size={self.batch_size} is not divisible by "
                             f"minibatches={self.minibatches}; minibatches must have one static shape.")


class Rollout(NamedTuple):
    """One batch of sampled responses and everything the update needs (no gradient in any field).

    The sequence is [left-padded prompt (P)] + [response (N)]; response arrays are (B, N).
    """

    tokens: Array  # (B, P + N) int32 prompt then response
    attention_mask: Array  # (B, P + N) 1 = real token
    response: Array  # (B, N) int32 sampled tokens y_t
    mask: Array  # (B, N) 1 on response tokens up to and including EOS
    logp_old: Array  # (B, N) log pi_old(y_t), recomputed by the update's forward pass
    logp_sampler: Array  # (B, N) the same, as the cached sampler computed it
    logp_ref: Array  # (B, N) log pi_ref(y_t), frozen SFT model
    values: Array  # (B, N) V(s_t) at rollout time
    scores: Array  # (B,) learned reward R(x, y)
    rewards: Array  # (B, N) per-token rewards
    advantages: Array  # (B, N) whitened GAE advantages
    returns: Array  # (B, N) value targets
    entropy: Array  # () mean policy entropy over the response tokens


def init_value_head(config: ModelConfig) -> dict:
    """A zero linear value head on the D-dim hidden state: V(s) = w^T h + b."""
    return {"w": jnp.zeros((config.d_model,), jnp.float32), "b": jnp.zeros((), jnp.float32)}


def init_policy(sft_params: dict, config: ModelConfig) -> dict:
    """PPO's trainable state: a copy of the SFT model plus a value head."""
    return {"policy": jax.tree.map(jnp.array, sft_params), "value_head": init_value_head(config)}


def response_outputs(params: dict, tokens: Array, attention_mask: Array, n_response: int,
                     config: ModelConfig) -> tuple[Array, Array]:
    """Logits (B, N, V) that predicted each response token, and values (B, N) at the same states.

    The logit row at sequence position P - 1 + t predicts response token t (the one-position shift
    of §3.1), so the response's logits are columns P-1 .. P+N-2.
    """
    h = model.hidden_states(params["policy"], tokens, config, positions=positions_from_mask(attention_mask),
                            attention_mask=attention_mask)  # (B, P + N, D)
    h = h[:, -n_response - 1 : -1, :]  # (B, N, D) the states before each response token
    logits = model.lm_head(params["policy"], h, config)  # (B, N, V)
    head = params["value_head"]
    values = jnp.einsum("btd,d->bt", jax.lax.stop_gradient(h), head["w"]) + head["b"]  # (B, N)
    return logits, values


def sequence_logps(policy_params: dict, tokens: Array, attention_mask: Array, response: Array,
                   config: ModelConfig) -> Array:
    """log pi(y_t | x, y_<t) of each response token under a plain Transformer (the reference): (B, N)."""
    n = response.shape[1]
    logits = model.forward(policy_params, tokens, config, positions=positions_from_mask(attention_mask),
                           attention_mask=attention_mask)[:, -n - 1 : -1, :]  # (B, N, V)
    return token_log_probs(logits, response)


def score_rollout(params: dict, ref_params: dict, rm_params: dict, tokens: Array, attention_mask: Array,
                  response: Array, mask: Array, logp_sampler: Array, beta: Array, *, config: ModelConfig,
                  kl_kind: str = "k1", kl_placement: str = "reward", gamma: float = 1.0, lam: float = 0.95
                  ) -> Rollout:
    """Step 2 of an iteration: log-probs, values, the learned reward, rewards and advantages.

    The PPO settings it needs come as separate static arguments (not the whole ``PPOConfig``) so
    that runs differing only in, say, the number of iterations share one compiled program.
    """
    n = response.shape[1]
    logits, values = response_outputs(params, tokens, attention_mask, n, config)
    logp_old = token_log_probs(logits, response)  # (B, N)
    logp_ref = sequence_logps(ref_params, tokens, attention_mask, response, config)  # (B, N)
    scores = reward_scores(rm_params, tokens, attention_mask, config)  # (B,)
    kl = kl_estimate(logp_old, logp_ref, kl_kind)  # (B, N)
    # KL in the loss: the reward is R(x, y) alone and the penalty enters the update's loss.
    kl_beta = beta if kl_placement == "reward" else jnp.zeros_like(beta)
    rewards = per_token_rewards(scores, kl, mask, kl_beta)  # (B, N)
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    return Rollout(tokens, attention_mask, response, mask, logp_old, logp_sampler, logp_ref, values, scores,
                   rewards, masked_whiten(advantages, mask), returns, entropy(logits, mask))


_score_rollout = jax.jit(score_rollout, static_argnames=("config", "kl_kind", "kl_placement", "gamma", "lam"))


def check_rollout(rollout: Rollout) -> None:
    """A ValueError for a rollout batch with no sequence or no response token (nothing to learn from)."""
    if rollout.mask.shape[0] == 0 or rollout.mask.shape[1] == 0 or not float(jnp.sum(rollout.mask)) > 0:
        raise ValueError(
            f"PPO got an empty rollout batch (response mask {tuple(rollout.mask.shape)} with "
            f"{float(jnp.sum(rollout.mask)) if rollout.mask.size else 0:.0f} real tokens): there is nothing to "
            "update on. Give at least one prompt and max_new_tokens >= 1."
        )


def ppo_loss(params: dict, mb: Rollout, beta: Array, config: ModelConfig, ppo: PPOConfig
             ) -> tuple[Array, dict[str, Array]]:
    r"""The loss of one minibatch: $\mathcal{L}^{CLIP} + c_V\mathcal{L}^V - c_H\mathcal{H}\ [+\ \beta\,\mathrm{KL}]$."""
    logits, values = response_outputs(params, mb.tokens, mb.attention_mask, mb.response.shape[1], config)
    logp = token_log_probs(logits, mb.response)  # (B, N)
    policy_loss, stats = ppo_clip_loss(logp, mb.logp_old, mb.advantages, mb.mask, ppo.clip_eps)
    v_loss = value_loss(values, mb.values, mb.returns, mb.mask, ppo.value_clip_eps)
    ent = entropy(logits, mb.mask)
    total = policy_loss + ppo.vf_coef * v_loss - ppo.ent_coef * ent
    kl_term = jnp.zeros(())
    if ppo.kl_placement == "loss":
        kl_term = kl_loss_term(logp, mb.logp_ref, mb.mask, beta, ppo.kl_kind)
        total = total + kl_term
    metrics = {"loss": total, "policy_loss": policy_loss, "value_loss": v_loss, "entropy": ent,
               "kl_loss": kl_term, **stats._asdict()}
    return total, jax.tree.map(jax.lax.stop_gradient, metrics)


def make_ppo_update(config: ModelConfig, optimizer: optax.GradientTransformation, ppo: PPOConfig) -> Callable:
    """``update(params, opt_state, rollout, key, beta) -> (params, opt_state, stats)``, one jit region.

    ``epochs`` x ``minibatches`` gradient steps as two nested ``lax.scan``s; each epoch draws a new
    permutation of the batch from ``key``. Shapes are static (batch, prompt bucket, max_new_tokens
    fixed), so it compiles once for the whole run. ``stats`` leaves are (epochs, minibatches):
    ``stats["ratio_mean"][0, 0]`` is the first minibatch's: 1 up to float rounding. params/opt_state are donated.
    """

    def update(params: dict, opt_state: optax.OptState, rollout: Rollout, key: Array, beta: Array):
        B = rollout.mask.shape[0]
        size = B // ppo.minibatches

        def minibatch_step(carry, index):
            params, opt_state = carry
            mb = jax.tree.map(lambda a: a[index] if a.ndim else a, rollout)
            (_, metrics), grads = jax.value_and_grad(ppo_loss, has_aux=True)(params, mb, beta, config, ppo)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            metrics["grad_norm"] = optax.tree.norm(grads)
            return (optax.apply_updates(params, updates), opt_state), metrics

        def epoch_step(carry, epoch_key):
            order = jax.random.permutation(epoch_key, B).reshape(ppo.minibatches, size)  # (M, B/M)
            return jax.lax.scan(minibatch_step, carry, order)

        (params, opt_state), stats = jax.lax.scan(epoch_step, (params, opt_state), jax.random.split(key, ppo.epochs))
        return params, opt_state, stats

    return jax.jit(update, donate_argnums=(0, 1))


# --------------------------------------------------------------------------------------------
# Prompts, rollouts and the loop
# --------------------------------------------------------------------------------------------


class PromptSet(NamedTuple):
    """The prompts PPO samples from, tokenized and left-padded to ONE length (static shapes)."""

    tokens: np.ndarray  # (N_prompts, P) int32
    mask: np.ndarray  # (N_prompts, P) float32
    instructions: list[str]
    inputs: list[str]
    tasks: list[str]


def make_prompt_set(examples: Sequence[Any], tokenizer: Any, template: str) -> PromptSet:
    """[BOS] + templated prompt for each ``minift.data.Example``, left-padded to one bucket."""
    from minift.data import format_prompt

    if not examples:
        raise ValueError("PPO needs at least one prompt; the prompt list is empty.")
    ids = [[tokenizer.bos_id, *tokenizer.encode(format_prompt(e, template))] for e in examples]
    tokens, mask = left_pad(ids, tokenizer.pad_id)
    return PromptSet(np.asarray(tokens), np.asarray(mask), [e.instruction for e in examples],
                     [e.input for e in examples], [e.task for e in examples])


def rollout_batch(params: dict, ref_params: dict, rm_params: dict, prompts: PromptSet, index: np.ndarray,
                  key: Array, beta: float, *, config: ModelConfig, ppo: PPOConfig, eos_id: int, pad_id: int
                  ) -> Rollout:
    """Steps 1-2: sample responses to ``prompts[index]`` with the cached sampler, then score them."""
    prompt_tokens, prompt_mask = jnp.asarray(prompts.tokens[index]), jnp.asarray(prompts.mask[index])
    if prompt_tokens.shape[0] == 0:
        raise ValueError("PPO got an empty rollout batch (no prompt selected); batch_size must be >= 1.")
    gen = generate_tokens(params["policy"], prompt_tokens, prompt_mask, key, config=config,
                          max_new_tokens=ppo.max_new_tokens, sampling=Sampling(temperature=ppo.temperature),
                          eos_id=eos_id, pad_id=pad_id)
    tokens = jnp.concatenate([prompt_tokens, gen.tokens], axis=1)  # (B, P + N)
    attention_mask = jnp.concatenate([prompt_mask, gen.mask], axis=1)  # (B, P + N)
    rollout = _score_rollout(params, ref_params, rm_params, tokens, attention_mask, gen.tokens, gen.mask,
                             gen.logprobs, jnp.asarray(beta, jnp.float32), config=config, kl_kind=ppo.kl_kind,
                             kl_placement=ppo.kl_placement, gamma=ppo.gamma, lam=ppo.lam)
    check_rollout(rollout)
    return rollout


def decode_responses(rollout: Rollout, tokenizer: Any) -> list[str]:
    """The text of each sampled response (up to, without, its EOS)."""
    out = []
    for row, m in zip(np.asarray(rollout.response), np.asarray(rollout.mask)):
        ids = [int(t) for t, v in zip(row, m) if v and t != tokenizer.eos_id]
        out.append(tokenizer.decode(ids))
    return out


def gold_rewards(responses: Sequence[str], prompts: PromptSet, index: np.ndarray) -> np.ndarray:
    """The programmatic judge's reward (``coursedata.judge``) of each response: the truth PPO never sees."""
    from minift.coursedata import judge

    return np.asarray([judge(prompts.instructions[i], prompts.inputs[i], r, task=prompts.tasks[i] or None)
                       for r, i in zip(responses, index)], dtype=np.float64)


def rollout_metrics(rollout: Rollout) -> dict[str, float]:
    """Learned reward and KL to the reference (k1 and k3, summed per sequence, batch mean)."""
    m = rollout.mask
    per_seq = lambda x: float(jnp.mean(jnp.sum(jnp.where(m > 0, x, 0.0), axis=1)))  # noqa: E731
    return {
        "reward": float(jnp.mean(rollout.scores)),
        "kl_k1": per_seq(kl_estimate(rollout.logp_old, rollout.logp_ref, "k1")),
        "kl_k3": per_seq(kl_estimate(rollout.logp_old, rollout.logp_ref, "k3")),
        "entropy": float(rollout.entropy),
        "response_tokens": float(jnp.mean(jnp.sum(m, axis=1))),
        "sampler_logp_gap": float(jnp.max(jnp.abs(jnp.where(m > 0, rollout.logp_old - rollout.logp_sampler, 0.0)))),
    }


@functools.lru_cache(maxsize=8)
def _optimizer_and_update(config: ModelConfig, ppo: PPOConfig) -> tuple[optax.GradientTransformation, Callable]:
    optimizer = optim.make_optimizer(ppo.learning_rate, ppo.iterations * ppo.epochs * ppo.minibatches,
                                     0, weight_decay=0.0, end_lr_ratio=1.0)  # constant rate, no warm-up
    return optimizer, make_ppo_update(config, optimizer, ppo)


def ppo_optimizer_and_update(config: ModelConfig, ppo: PPOConfig) -> tuple[optax.GradientTransformation, Callable]:
    """The optimizer and the jit'd update for these settings, shared by runs that differ only in what
    the update does not depend on (β is an argument of the update; seed and the β controller are
    outside it): the runs of a β sweep compile the update once."""
    return _optimizer_and_update(config, replace(ppo, beta=0.0, kl_target=0.0, kl_horizon=1.0, seed=0))


class PPOState(NamedTuple):
    params: dict  # {"policy": Transformer params, "value_head": {...}}
    opt_state: optax.OptState
    controller: Any  # FixedKL or AdaptiveKL
    key: Array
    iteration: int


def train_ppo(
    sft_params: dict,
    config: ModelConfig,
    rm_params: dict,
    rm_config: ModelConfig,
    prompts: PromptSet,
    tokenizer: Any,
    ppo: PPOConfig,
    *,
    run_dir: str | Path | None = None,
    log: Callable[[dict], None] | None = None,
) -> tuple[PPOState, list[dict]]:
    """Run ``ppo.iterations`` PPO iterations from the SFT model; returns the final state and the log.

    The reference model is ``sft_params`` itself, never updated (the update works on a copy). One
    JSON line per iteration goes to ``run_dir/metrics.jsonl`` when ``run_dir`` is given.
    """
    check_backbone_matches(rm_config, config)
    ref_params = sft_params
    params = init_policy(sft_params, config)
    optimizer, update = ppo_optimizer_and_update(config, ppo)
    controller = AdaptiveKL(ppo.beta, ppo.kl_target, ppo.kl_horizon) if ppo.kl_target > 0 else FixedKL(ppo.beta)
    state = PPOState(params, optimizer.init(params), controller, jax.random.PRNGKey(ppo.seed), 0)
    rng = np.random.default_rng(ppo.seed)
    n_prompts = prompts.tokens.shape[0]
    if n_prompts == 0:
        raise ValueError("PPO needs at least one prompt; the prompt set is empty.")
    metrics_file = None
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        metrics_file = open(Path(run_dir) / "metrics.jsonl", "w", encoding="utf-8")
    history: list[dict] = []
    try:
        for it in range(1, ppo.iterations + 1):
            t0 = time.perf_counter()
            key, rollout_key, update_key = jax.random.split(state.key, 3)
            index = rng.choice(n_prompts, size=ppo.batch_size, replace=n_prompts < ppo.batch_size)
            beta = float(state.controller.beta)
            rollout = rollout_batch(state.params, ref_params, rm_params, prompts, index, rollout_key, beta,
                                    config=config, ppo=ppo, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
            responses = decode_responses(rollout, tokenizer)
            gold = gold_rewards(responses, prompts, index)
            record = {"iteration": it, "beta": beta, **rollout_metrics(rollout), "gold_reward": float(gold.mean()),
                      # diversity: the prompts all differ, so a policy that says the same thing to
                      # everything (mode collapse) shows up as few distinct answers
                      "distinct_answers": len(set(responses)) / len(responses)}
            record["objective"] = record["reward"] - beta * record["kl_k1"]
            params, opt_state, stats = update(state.params, state.opt_state, rollout, update_key,
                                              jnp.asarray(beta, jnp.float32))
            record.update({
                "clip_frac": float(jnp.mean(stats["clip_frac"])), "value_loss": float(jnp.mean(stats["value_loss"])),
                "approx_kl": float(jnp.mean(stats["approx_kl"])), "policy_loss": float(jnp.mean(stats["policy_loss"])),
                "first_ratio": float(stats["ratio_mean"][0, 0]), "grad_norm": float(jnp.mean(stats["grad_norm"])),
                "seconds": time.perf_counter() - t0, "sample": responses[:3],
            })
            if not all(math.isfinite(v) for v in record.values() if isinstance(v, float)):
                raise ValueError(f"PPO iteration {it}: a non-finite statistic {record}; lower the learning rate.")
            controller = state.controller.update(record["kl_k1"], ppo.batch_size)
            state = PPOState(params, opt_state, controller, key, it)
            history.append(record)
            if metrics_file is not None:
                metrics_file.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
                metrics_file.flush()
            if log is not None:
                log(record)
    finally:
        if metrics_file is not None:
            metrics_file.close()
    return state, history


def save_policy(run_dir: str | Path, state: PPOState, config: ModelConfig, metadata: dict) -> Path:
    """The PPO policy as a model checkpoint (``minift.train.load_model`` reads it like an SFT run)."""
    meta = {"kind": "ppo_policy", **metadata}
    return ckpt.save_checkpoint(ckpt.checkpoint_path(run_dir, state.iteration), params=state.params["policy"],
                                step=state.iteration, config=config, metadata=meta)


# --------------------------------------------------------------------------------------------
# `minift ppo`
# --------------------------------------------------------------------------------------------


def load_prompt_examples(path: str | Path | None = None, split: str = "train") -> list[Any]:
    """The instructions PPO samples prompts from (default: the bundled train split)."""
    from minift.coursedata import INSTRUCTIONS_FILE, SAMPLES_DIR
    from minift.data import load_examples

    examples = load_examples(path or SAMPLES_DIR / INSTRUCTIONS_FILE)
    chosen = [e for e in examples if not split or e.split in ("", split)]
    if not chosen:
        raise ValueError(f"{path or SAMPLES_DIR / INSTRUCTIONS_FILE}: no prompt with split {split!r}.")
    return chosen


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sft", required=True, type=Path, help="SFT run folder (the policy's start and pi_ref)")
    parser.add_argument("--rm", required=True, type=Path, help="reward-model run folder (`minift rm --out`)")
    parser.add_argument("--out", required=True, type=Path, help="run folder for the PPO run (or the sweep)")
    parser.add_argument("--sweep", default=None,
                        help="comma-separated betas, e.g. 0,0.05,0.5: one run each, results.json and figures")
    parser.add_argument("--prompts", type=Path, default=None, help="instructions JSONL (default: bundled)")
    parser.add_argument("--template", default=None, help="prompt template (default: the SFT run's)")
    choices = {"kl_kind": KL_KINDS, "kl_placement": KL_PLACEMENTS}
    for name, value in asdict(PPOConfig()).items():  # one flag per PPOConfig field, same defaults
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value,
                            choices=choices.get(name), help=f"PPOConfig.{name} (default {value})")


def run(args: argparse.Namespace) -> int:
    from minift.rlhf.reward import load_reward_model, sft_template
    from minift.tokenizer import default_tokenizer
    from minift.train import load_model

    fields = {k: getattr(args, k) for k in asdict(PPOConfig())}
    ppo = PPOConfig(**fields)
    sft_params, config = load_model(args.sft)
    rm_params, rm_config, _ = load_reward_model(args.rm)
    check_backbone_matches(rm_config, config, f"reward model {args.rm}")
    tokenizer = default_tokenizer()
    template = args.template or sft_template(args.sft)
    prompts = make_prompt_set(load_prompt_examples(args.prompts), tokenizer, template)
    if args.sweep:
        from minift.rlhf.sweep import parse_betas, run_sweep

        results = run_sweep(parse_betas(args.sweep), sft_params, config, rm_params, rm_config, prompts,
                            tokenizer, ppo, args.out, progress=print)
        print(json.dumps(results["summary"], indent=2))
        return 0

    def show(r: dict) -> None:
        print(f"it {r['iteration']:3d}  reward {r['reward']:+.3f}  gold {r['gold_reward']:+.3f}  "
              f"KL {r['kl_k1']:.3f}  entropy {r['entropy']:.3f}  clip {r['clip_frac']:.2f}  {r['sample'][0]!r}")

    state, history = train_ppo(sft_params, config, rm_params, rm_config, prompts, tokenizer, ppo,
                               run_dir=args.out, log=show)
    meta = {"ppo": asdict(ppo), "sft": str(args.sft), "rm": str(args.rm), "template": template}
    path = save_policy(args.out, state, config, meta)
    (Path(args.out) / "run.json").write_text(json.dumps({"model": config.to_dict(), **meta, "template": template},
                                                        indent=2), encoding="utf-8")
    print(f"saved the PPO policy to {path}")
    return 0
