r"""Every equation of §4 as a pure function: the reward model's loss, the KL leash, and PPO.

The article's RLHF objective (§4) is

$$\mathcal{L}_{RL} = \mathbb{E}_{x\sim\mathcal{D},\, y \sim \pi_\theta(\cdot\mid x)}\big[R(x, y)\big]
                   - \beta\, D_{KL}\big(\pi_\theta \,\Vert\, \pi_{ref}\big),$$

with $R$ a reward learned from human preferences and $\pi_{ref}$ the instruction-tuned (SFT)
model: the reward pulls the policy towards what people prefer, and the KL term keeps it from
collapsing onto whatever string fools the reward model. It is maximised with PPO (Schulman et al.
2017) as in InstructGPT (Ouyang et al. 2022) and Ziegler et al. 2019. In order of use:

0. ``bradley_terry_loss`` — fits $R$ to preference pairs (Bradley & Terry 1952; InstructGPT eq. 1);
   ``preference_accuracy`` — how often it ranks a pair the human's way.
1. ``kl_estimate`` — a per-token estimate of the KL from the sampled tokens' log-probs
   (Schulman 2020, "Approximating KL Divergence"): k1, k2, k3; ``sequence_kl`` sums it per answer.
2. ``per_token_rewards`` — the KL *in the reward* (InstructGPT), $r_t=-\beta\,\mathrm{KL}_t$
   plus $R(x,y)$ on the last token; or ``kl_loss_term`` — the KL *in the loss* (GRPO, Shao et al. 2024).
3. ``gae`` — advantages by generalised advantage estimation (Schulman et al. 2016).
4. ``masked_whiten`` — advantages normalised over the real tokens only.
5. ``ppo_clip_loss``, ``value_loss``, ``entropy`` — the PPO update's losses and diagnostics.
6. ``adaptive_kl_update`` — β steered towards a target KL (Ziegler et al. 2019, §2.2).

``rlhf_objective`` computes the article's $\mathcal{L}_{RL}$ itself, for logging. The loops that
use these functions are ``minift.rlhf.reward_model`` and ``minift.rlhf.ppo``; none re-types them.

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
from jaxtyping import Array, Float, Real

from minift.loss import masked_mean

# --------------------------------------------------------------------------------------------
# The reward model's objective: Bradley–Terry on preference pairs
# --------------------------------------------------------------------------------------------


def bradley_terry_loss(r_chosen: Float[Array, " B"], r_rejected: Float[Array, " B"]) -> Float[Array, ""]:
    r"""Negative log-likelihood of the preferences under Bradley–Terry (§4; Ouyang et al. 2022, eq. 1).

    $$\mathcal{L}_{RM} = -\frac{1}{B}\sum_{b=1}^{B} \log \sigma\big(r_c^{(b)} - r_r^{(b)}\big)
                       = \frac{1}{B}\sum_{b=1}^{B} \operatorname{softplus}\big(-(r_c^{(b)} - r_r^{(b)})\big)$$

    Args:
        r_chosen: (B,) rewards of the preferred responses.
        r_rejected: (B,) rewards of the rejected responses to the same prompts.

    Returns:
        The scalar mean loss. Its gradient is
        $\partial\mathcal{L}/\partial r_c^{(b)} = -\big(1 - \sigma(\Delta_b)\big)/B$ and
        $\partial\mathcal{L}/\partial r_r^{(b)} = +\big(1 - \sigma(\Delta_b)\big)/B$, $\Delta_b = r_c^{(b)} - r_r^{(b)}$:
        a pair the model already ranks confidently ($\Delta \gg 0$) stops teaching it.
    """
    if r_chosen.shape != r_rejected.shape or r_chosen.ndim != 1:
        raise ValueError(
            "bradley_terry_loss (minift/rlhf/objectives.py): r_chosen and r_rejected must both be (B,) "
            f"arrays of the same shape, got {r_chosen.shape} and {r_rejected.shape}; squeeze the "
            "reward head's last axis and pair each chosen response with its rejected one."
        )
    margin = r_chosen - r_rejected  # (B,)
    # log_sigmoid(m) = -softplus(-m): never forms sigmoid(m) and then its log, which underflows
    # to log(0) = -inf for margins below about -100 (float32) and so would give an infinite loss.
    return -jnp.mean(jax.nn.log_sigmoid(margin))


def preference_accuracy(r_chosen: Float[Array, " B"], r_rejected: Float[Array, " B"]) -> Float[Array, ""]:
    r"""Fraction of pairs the reward model ranks the human's way: $\frac1B\sum_b [r_c^{(b)} > r_r^{(b)}]$.

    A tie counts as half a correct pair — the accuracy of a coin flip — so that a reward model whose
    outputs are all equal (e.g. freshly initialised with a zero head) reads 0.5, not 0.

    Args:
        r_chosen: (B,) rewards of the preferred responses.
        r_rejected: (B,) rewards of the rejected responses.

    Returns:
        A scalar in [0, 1].
    """
    wins = (r_chosen > r_rejected).astype(jnp.float32)  # (B,)
    ties = (r_chosen == r_rejected).astype(jnp.float32)  # (B,)
    return jnp.mean(wins + 0.5 * ties)


KL_KINDS = ("k1", "k2", "k3")


# --------------------------------------------------------------------------------------------
# KL to the reference policy
# --------------------------------------------------------------------------------------------


def kl_estimate(logp: Float[Array, "*B T"], logp_ref: Float[Array, "*B T"], kind: str = "k1") -> Float[Array, "*B T"]:
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
        f"kl_estimate (minift/rlhf/objectives.py): unknown kind {kind!r}; choose one of {', '.join(KL_KINDS)} "
        "(k1 = -log r, k2 = (log r)^2 / 2, k3 = (r - 1) - log r; see Schulman 2020)."
    )


def sequence_kl(
    logp: Float[Array, "B T"], logp_ref: Float[Array, "B T"], mask: Real[Array, "B T"], kind: str = "k1"
) -> Float[Array, " B"]:
    r"""The KL of each whole response, the sum of its per-token estimates: (B, T) -> (B,).

    $$\widehat{D}_{KL}(\pi_\theta(\cdot\mid x)\Vert\pi_{ref}(\cdot\mid x)) = \sum_t m_t\,\widehat{\mathrm{KL}}_t$$

    The KL between two distributions over *sequences* is the expected sum of the per-token log
    ratios along the sampled path (the chain rule of §3.1 turns the log of a product into a sum),
    so summing the per-token estimates of ``kl_estimate`` gives an estimate of it, in nats per
    answer. Padding never enters (selected away, not multiplied by 0).
    """
    return jnp.sum(jnp.where(mask > 0, kl_estimate(logp, logp_ref, kind), 0.0), axis=1)  # (B,)


def check_beta(beta: float | Array, where: str) -> None:
    """A ValueError for a negative β when its value is known (a traced β inside jit is left alone)."""
    try:
        value = float(beta)
    except TypeError:  # a tracer: the value is unknown until run time
        return
    if value < 0:
        raise ValueError(
            f"{where} (minift/rlhf/objectives.py): beta = {value} is negative; beta weighs the KL *penalty* "
            "and must be >= 0 (a negative beta rewards drifting away from the reference model). "
            "Use beta = 0 to switch the penalty off."
        )


def per_token_rewards(
    score: Float[Array, " B"], kl: Float[Array, "B T"], mask: Real[Array, "B T"], beta: float | Float[Array, ""]
) -> Float[Array, "B T"]:
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
    check_beta(beta, "per_token_rewards")
    kl = jax.lax.stop_gradient(kl)
    score = jax.lax.stop_gradient(score)
    # Real tokens strictly after t: reverse cumulative sum minus the token itself. The last real
    # token is the real token with none after it (this also handles non-contiguous masks).
    after = jnp.flip(jnp.cumsum(jnp.flip(mask, axis=1), axis=1), axis=1) - mask  # (B, T)
    is_last = jnp.where((mask > 0) & (after == 0), 1.0, 0.0)  # (B, T)
    penalty = jnp.where(mask > 0, -beta * kl, 0.0)  # (B, T)
    return penalty + is_last * score[:, None]  # (B, T)


def rlhf_objective(
    score: Float[Array, " B"], logp: Float[Array, "B T"], logp_ref: Float[Array, "B T"], mask: Real[Array, "B T"],
    beta: float | Float[Array, ""], kind: str = "k1",
) -> Float[Array, ""]:
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
    check_beta(beta, "rlhf_objective")
    return jnp.mean(score) - beta * jnp.mean(sequence_kl(logp, logp_ref, mask, kind))


KL_KINDS_IN_LOSS = ("k2", "k3")  # k1's expected gradient is zero: see kl_loss_term
DEFAULT_KL_KIND = {"reward": "k1", "loss": "k3"}  # the estimator each placement uses unless told


def kl_loss_term(
    logp: Float[Array, "B T"], logp_ref: Float[Array, "B T"], mask: Real[Array, "B T"],
    beta: float | Float[Array, ""], kind: str = "k3",
) -> Float[Array, ""]:
    r"""The KL penalty placed *in the loss* instead of in the reward (GRPO, Shao et al. 2024).

    $$\mathcal{L}_{KL} = \beta\,\frac{\sum_{b,t} m_{bt}\,k\big(\log\pi_\theta, \log\pi_{ref}\big)_{bt}}{\sum_{b,t} m_{bt}}$$

    added to the policy loss, with the gradient flowing through $\log\pi_\theta$ of tokens sampled
    from $\pi_\theta$ (the sampling itself is not differentiated). What matters is then the
    *expected gradient* of the estimator, not its expected value:

    * $k_1 = \log\pi_\theta - \log\pi_{ref}$: $\mathbb{E}_{y\sim\pi_\theta}[\nabla_\theta k_1]
      = \mathbb{E}[\nabla_\theta\log\pi_\theta(y)] = \sum_y \nabla_\theta\pi_\theta(y) = 0$. An unbiased
      estimate of the KL's *value* whose gradient pulls nowhere: noise, no leash. Rejected here.
    * $k_2 = \frac12(\log\pi_\theta - \log\pi_{ref})^2$: $\mathbb{E}[\nabla_\theta k_2]
      = \nabla_\theta D_{KL}(\pi_\theta\Vert\pi_{ref})$, the gradient of the article's KL.
    * $k_3 = r - 1 - \log r$, $r = \pi_{ref}/\pi_\theta$: $\mathbb{E}[\nabla_\theta k_3]
      = \nabla_\theta D_{KL}(\pi_{ref}\Vert\pi_\theta)$, the *other* direction (GRPO's choice; both
      are 0 at $\pi_{ref}$ and pull towards it).

    All three checked by enumeration over a small vocabulary in tests/test_rlhf_objectives.py.

    The two placements side by side:

    ============================  =====================================  ===================================
    \                             in the reward (``per_token_rewards``)  in the loss (``kl_loss_term``)
    ============================  =====================================  ===================================
    used by                       InstructGPT, Ziegler et al. 2019        GRPO, many "KL loss" recipes
    how the policy feels the KL   through the advantage (a reward term,  through its own gradient, added to
                                  credit-assigned by GAE, clipped by     the clipped surrogate's gradient
                                  PPO, no gradient of its own)
    estimator (default)           k1: its value is what the reward needs  k3 (k2 also pulls; k1 is an error)
    gradient follows              $D_{KL}(\pi_\theta\Vert\pi_{ref})$ (policy  $D_{KL}(\pi_{ref}\Vert\pi_\theta)$ with k3,
                                  gradient of the summed reward)          $D_{KL}(\pi_\theta\Vert\pi_{ref})$ with k2
    what β multiplies             the per-answer *sum* of KL_t            the per-token *mean* of KL_t
    ============================  =====================================  ===================================

    So one β is not the same strength in both places: in the reward it weighs nats per answer,
    here nats per token (an answer of N tokens feels about 1/N of the pull for the same β).

    Args:
        logp: (B, T) sampled tokens' log-probs under the policy (differentiated).
        logp_ref: (B, T) the same under the frozen reference (not differentiated).
        mask: (B, T) 1 on real response tokens.
        beta: KL coefficient $\beta \ge 0$.
        kind: "k3" (default) or "k2"; "k1" is a ValueError (its expected gradient is zero).

    Returns:
        A scalar to add to the policy loss.
    """
    check_beta(beta, "kl_loss_term")
    check_kl_kind_in_loss(kind, "kl_loss_term")
    kl = kl_estimate(logp, jax.lax.stop_gradient(logp_ref), kind)  # (B, T)
    return beta * masked_mean(kl, mask)


def check_kl_kind_in_loss(kind: str, where: str) -> None:
    """A ValueError, saying why, for an estimator whose gradient does not pull towards π_ref in the loss."""
    if kind not in KL_KINDS_IN_LOSS:
        raise ValueError(
            f"{where} (minift/rlhf/objectives.py): kl_kind={kind!r} cannot be used as a loss. Under tokens "
            "sampled from the policy, E[grad k1] = E[grad log pi_theta] = 0: k1 estimates the KL's value but "
            "its gradient pulls nowhere, so the penalty would add noise and no leash. Use k3 (GRPO: the "
            "gradient of KL(pi_ref || pi_theta)) or k2 (the gradient of KL(pi_theta || pi_ref)) in the loss, "
            "or keep k1 and put the KL in the reward (kl_placement='reward')."
        )


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
            f"adaptive_kl_update (minift/rlhf/objectives.py): target = {target} and horizon = {horizon} must "
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
