"""RLHF with PPO and a KL penalty (§4): the reward model's loss and the PPO equations.

``reward`` — Bradley–Terry loss on preference pairs (the reward $R(x, y)$ learned from human
judgements). ``ppo`` — KL estimators, per-token rewards, GAE, the clipped surrogate, the adaptive
β: everything the article's $\\mathcal{L}_{RL} = \\mathbb{E}[R] - \\beta D_{KL}(\\pi_\\theta\\Vert\\pi_{ref})$
needs, one pure function per equation.
"""

from minift.rlhf.ppo import (
    KL_KINDS,
    AdaptiveKL,
    FixedKL,
    PPOStats,
    adaptive_kl_update,
    entropy,
    gae,
    kl_estimate,
    kl_loss_term,
    masked_mean,
    masked_whiten,
    per_token_rewards,
    ppo_clip_loss,
    rlhf_objective,
    value_loss,
)
from minift.rlhf.reward import bradley_terry_loss, preference_accuracy

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
    "masked_mean",
    "masked_whiten",
    "per_token_rewards",
    "ppo_clip_loss",
    "preference_accuracy",
    "rlhf_objective",
    "value_loss",
]
