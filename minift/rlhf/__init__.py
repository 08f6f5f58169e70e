"""RLHF with PPO and a KL penalty (§4).

The math layer, every equation one pure function:

* ``objectives``    — what is maximised: Bradley–Terry for the reward model, the KL estimators,
  per-token rewards, the KL in the loss, $\\mathcal{L}_{RL}$ itself, the adaptive β;
* ``ppo_objective`` — how PPO climbs it: GAE, whitening, the clipped policy and value losses, entropy.

The loops built on them: ``reward_model`` (the network $R_\\phi$ and its training) and ``ppo``
(rollouts, scoring, the jit-compiled update). The study: ``sweep`` (the β sweep).
The names below are the equations, re-exported so that ``rlhf.gae`` reads as in the article.
"""

from minift.rlhf.objectives import (
    KL_KINDS,
    AdaptiveKL,
    FixedKL,
    adaptive_kl_update,
    bradley_terry_loss,
    kl_estimate,
    kl_loss_term,
    per_token_rewards,
    preference_accuracy,
    rlhf_objective,
    sequence_kl,
)
from minift.rlhf.ppo_objective import (
    PPOStats,
    entropy,
    gae,
    masked_whiten,
    ppo_clip_loss,
    ppo_diagnostics,
    value_loss,
)

__all__ = [
    "KL_KINDS",
    "AdaptiveKL",
    "FixedKL",
    "PPOStats",
    "adaptive_kl_update",
    "bradley_terry_loss",
    "entropy",
    "gae",
    "kl_estimate",
    "kl_loss_term",
    "masked_whiten",
    "per_token_rewards",
    "ppo_clip_loss",
    "ppo_diagnostics",
    "preference_accuracy",
    "rlhf_objective",
    "sequence_kl",
    "value_loss",
]
