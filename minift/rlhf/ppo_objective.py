r"""How PPO maximises the §4 objective, as pure functions: advantages and the clipped losses.

``minift.rlhf.objectives`` says *what* is maximised ($\mathbb{E}[R]-\beta D_{KL}$, with the KL in
the per-token rewards or in the loss); this module holds *how* PPO (Schulman et al. 2017)
climbs it, as in InstructGPT (Ouyang et al. 2022) and CleanRL's ``ppo.py``:

1. ``gae`` — per-token advantages by generalised advantage estimation (Schulman et al. 2016);
2. ``masked_whiten`` — advantages normalised over the real tokens only;
3. ``ppo_clip_loss`` — the clipped surrogate; ``value_loss`` — the clipped value regression;
   ``entropy`` — the policy's entropy, the first sign of mode collapse;
4. ``ppo_diagnostics`` — what to watch: the clipped fraction, the approximate KL, the mean ratio.

Shapes: B batch (sequences), T time (response tokens), V vocab; every (B, T) input comes with a
``mask``, 1 on real response tokens.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Real

from minift.loss import masked_mean
from minift.rlhf.objectives import kl_estimate

# --------------------------------------------------------------------------------------------
# Credit assignment
# --------------------------------------------------------------------------------------------


def gae(
    rewards: Float[Array, "B T"], values: Float[Array, "B T"], mask: Real[Array, "B T"],
    gamma: float = 1.0, lam: float = 0.95,
) -> tuple[Float[Array, "B T"], Float[Array, "B T"]]:
    r"""Generalised advantage estimation (Schulman et al. 2016, eq. 16), per token of each response (§4).

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


def masked_whiten(x: Float[Array, "B T"], mask: Real[Array, "B T"], eps: float = 1e-8) -> Float[Array, "B T"]:
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
# The PPO update
# --------------------------------------------------------------------------------------------


def ppo_clip_loss(
    logp_new: Float[Array, "B T"], logp_old: Float[Array, "B T"], advantages: Float[Array, "B T"],
    mask: Real[Array, "B T"], clip_eps: float = 0.2,
) -> Float[Array, ""]:
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

    Only $\log\pi_\theta$ is differentiated: $\log\pi_{old}$ and $\hat A_t$ are data from the rollout
    (a gradient through $\hat A$ would also move the value head that computed it).

    Args:
        logp_new: (B, T) sampled tokens' log-probs under the policy being updated (differentiated).
        logp_old: (B, T) the same under the policy that sampled them (fixed).
        advantages: (B, T) $\hat A_t$ (``gae``, usually ``masked_whiten``-ed; fixed).
        mask: (B, T) 1 on real response tokens.
        clip_eps: $\epsilon$.

    Returns:
        The scalar loss. What to watch while it is minimised is ``ppo_diagnostics``.
    """
    logp_old = jax.lax.stop_gradient(logp_old)
    advantages = jax.lax.stop_gradient(advantages)
    ratio = jnp.exp(logp_new - logp_old)  # (B, T)
    unclipped = ratio * advantages  # (B, T)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages  # (B, T)
    return -masked_mean(jnp.minimum(unclipped, clipped), mask)


class PPOStats(NamedTuple):
    """Diagnostics of one PPO policy update (all scalars, no gradient)."""

    clip_frac: Array  # fraction of real tokens whose gradient the clip switched off
    approx_kl: Array  # k3 estimate of KL(pi_old || pi_new): how far this update has moved
    ratio_mean: Array  # mean of pi_new / pi_old over real tokens (1 at the first minibatch)


def ppo_diagnostics(
    logp_new: Float[Array, "B T"], logp_old: Float[Array, "B T"], advantages: Float[Array, "B T"],
    mask: Real[Array, "B T"], clip_eps: float = 0.2,
) -> PPOStats:
    r"""What to watch during a PPO update (§4): how much was clipped, how far the policy moved.

    With $\rho_t = e^{\log\pi_\theta(y_t) - \log\pi_{old}(y_t)}$ and every mean over real tokens:

    $$\text{clip\_frac} = \overline{\big[\mathrm{clip}(\rho_t,1\pm\epsilon)\hat A_t < \rho_t\hat A_t\big]},\qquad
      \text{approx\_kl} = \overline{(\rho_t - 1) - \log\rho_t},\qquad
      \text{ratio\_mean} = \overline{\rho_t}$$

    * ``clip_frac``: the tokens whose gradient the clip switched off (the min picked the clipped
      term), as TRL logs it. CleanRL logs $\overline{[\,|\rho_t - 1| > \epsilon\,]}$, the tokens
      outside the band whatever their advantage's sign; both are standard, and a steady rise in
      either says the epochs or the learning rate move the policy too far per rollout.
    * ``approx_kl``: k3 of ``kl_estimate`` for $D_{KL}(\pi_{old}\Vert\pi_\theta)$, since the tokens were
      sampled from $\pi_{old}$ (CleanRL's ``approx_kl``; $\tfrac12\overline{(\log\rho_t)^2}$, k2, is TRL's).
    * ``ratio_mean``: exactly 1 on the first minibatch after a rollout.

    Args:
        logp_new, logp_old, advantages, mask, clip_eps: as for ``ppo_clip_loss``.

    Returns:
        ``PPOStats``; nothing in it carries a gradient.
    """
    logp_new, logp_old, advantages = (jax.lax.stop_gradient(a) for a in (logp_new, logp_old, advantages))
    ratio = jnp.exp(logp_new - logp_old)  # (B, T)
    unclipped = ratio * advantages  # (B, T)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages  # (B, T)
    return PPOStats(
        # clipped < unclipped exactly when the clip is active *and* chosen by the min (zero gradient).
        clip_frac=masked_mean((clipped < unclipped).astype(ratio.dtype), mask),
        # samples came from pi_old, so KL(pi_old || pi_new) via k3 with log r = logp_new - logp_old.
        approx_kl=masked_mean(kl_estimate(logp_old, logp_new, "k3"), mask),
        ratio_mean=masked_mean(ratio, mask),
    )


def value_loss(
    values_new: Float[Array, "B T"], values_old: Float[Array, "B T"], returns: Float[Array, "B T"],
    mask: Real[Array, "B T"], clip_eps: float = 0.2,
) -> Float[Array, ""]:
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


def entropy(logits: Float[Array, "B T V"], mask: Real[Array, "B T"]) -> Float[Array, ""]:
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
