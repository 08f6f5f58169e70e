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

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

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
