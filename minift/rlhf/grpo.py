r"""GRPO (Shao et al. 2024, DeepSeekMath): PPO's clipped update with no value network (§4).

For each prompt, sample a *group* of $G$ answers; score each with the learned reward; the
advantage of answer $i$ is its reward standardised within its group
(``estimators.group_advantages``), the same for every token of the answer. The KL to
$\pi_{ref}$ goes in the loss, with the k3 estimator (``objectives.kl_loss_term``):

.. math::
    \mathcal{L} = \mathcal{L}^{CLIP}(\rho, \hat A) + \beta\,\overline{k_3}(\pi_\theta, \pi_{ref}).

One iteration reads top to bottom in :func:`train_grpo`: sample the groups, score them
(one jit region), standardise, update (one jit region, ``epochs`` full-batch steps).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from minift import optim
from minift.config import ModelConfig
from minift.rlhf import measure
from minift.rlhf.estimators import group_advantages
from minift.rlhf.objectives import check_beta, kl_loss_term, sequence_kl
from minift.rlhf.ppo import PromptSet, response_token_log_probs
from minift.rlhf.ppo_objective import ppo_clip_loss, ppo_diagnostics
from minift.rlhf.reward_model import reward_scores


@dataclass(frozen=True)
class GRPOConfig:
    """Settings of one GRPO run. ``prompts_per_iteration * group_size`` answers per iteration."""

    iterations: int = 40
    prompts_per_iteration: int = 16
    group_size: int = 4  # answers per prompt: the baseline is their mean
    epochs: int = 2  # full-batch steps per iteration
    learning_rate: float = 1e-4
    clip_eps: float = 0.2
    beta: float = 0.04  # KL coefficient, k3 in the loss (DeepSeekMath's 0.04)
    max_new_tokens: int = 16
    seed: int = 0

    def __post_init__(self):
        check_beta(self.beta, "GRPOConfig")
        for name in ("iterations", "prompts_per_iteration", "epochs", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"GRPOConfig: {name} must be >= 1, got {getattr(self, name)}.")
        if self.group_size < 2:
            raise ValueError(f"GRPOConfig: group_size must be >= 2 (a group baseline needs two answers), "
                             f"got {self.group_size}.")


def _scores(params, ref_params, rm_params, tokens, attention_mask, response, mask, config):
    logp = response_token_log_probs(params, tokens, attention_mask, response, config)  # (B, N)
    logp_ref = response_token_log_probs(ref_params, tokens, attention_mask, response, config)  # (B, N)
    return logp, logp_ref, reward_scores(rm_params, tokens, attention_mask, config)


score_groups = jax.jit(_scores, static_argnames=("config",))


def grpo_loss(params, tokens, attention_mask, response, mask, logp_old, logp_ref, advantages, beta, config,
              clip_eps):
    """The clipped surrogate on group advantages plus β·k3 in the loss; (loss, metrics)."""
    logp = response_token_log_probs(params, tokens, attention_mask, response, config)  # (B, N)
    adv = advantages[:, None] * mask  # (B, N) one advantage per answer, on each of its tokens
    policy_loss = ppo_clip_loss(logp, logp_old, adv, mask, clip_eps)
    clip_frac = ppo_diagnostics(logp, logp_old, adv, mask, clip_eps).clip_frac
    kl = kl_loss_term(logp, logp_ref, mask, beta, "k3")
    return policy_loss + kl, {"policy_loss": policy_loss, "kl_loss": kl, "clip_frac": clip_frac}


def _update(params, opt_state, batch, beta, *, config, epochs, learning_rate, clip_eps):
    optimizer = optim.make_optimizer(learning_rate, 1, 0, weight_decay=0.0, end_lr_ratio=1.0)

    def step(carry, _):
        params, opt_state = carry
        (_, metrics), grads = jax.value_and_grad(grpo_loss, has_aux=True)(params, *batch, beta, config, clip_eps)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    (params, opt_state), metrics = jax.lax.scan(step, (params, opt_state), None, length=epochs)
    return params, opt_state, metrics


grpo_update = jax.jit(_update, static_argnames=("config", "epochs", "learning_rate", "clip_eps"),
                      donate_argnums=(0, 1))


def train_grpo(sft_params: dict, config: ModelConfig, rm_params: dict, prompts: PromptSet, tokenizer: Any,
               grpo: GRPOConfig, *, gold: Callable[[measure.Samples], np.ndarray] | None = None,
               log: Callable[[dict], None] | None = None) -> tuple[dict, list[dict]]:
    """``grpo.iterations`` GRPO iterations from the SFT model (also $\\pi_{ref}$); (params, history).

    Each record holds the iteration's learned reward, KL (k1 per answer) and, with ``gold`` (a
    function of the samples), the gold reward, all measured on the answers it sampled.
    """
    if prompts.tokens.shape[0] == 0:
        raise ValueError("GRPO needs at least one prompt; the prompt set is empty.")
    params = jax.tree.map(jnp.array, sft_params)
    opt_state = optim.make_optimizer(grpo.learning_rate, 1, 0, weight_decay=0.0, end_lr_ratio=1.0).init(params)
    key = jax.random.PRNGKey(grpo.seed)
    rng = np.random.default_rng(grpo.seed)
    n = prompts.tokens.shape[0]
    history = []
    for it in range(1, grpo.iterations + 1):
        t0 = time.perf_counter()
        key, sample_key = jax.random.split(key)
        chosen = rng.choice(n, size=grpo.prompts_per_iteration, replace=n < grpo.prompts_per_iteration)
        index = np.repeat(chosen, grpo.group_size)  # group-major: G answers to each prompt in a row
        s = measure.sample(params, config, prompts, index, sample_key, tokenizer, grpo.max_new_tokens)
        arrays = [jnp.asarray(a) for a in (s.tokens, s.attention_mask, s.response, s.mask)]
        logp_old, logp_ref, scores = score_groups(params, sft_params, rm_params, *arrays, config=config)
        advantages = group_advantages(scores, grpo.group_size)  # (B,)
        batch = (*arrays, logp_old, logp_ref, advantages)
        params, opt_state, metrics = grpo_update(params, opt_state, batch, jnp.float32(grpo.beta), config=config,
                                                 epochs=grpo.epochs, learning_rate=grpo.learning_rate,
                                                 clip_eps=grpo.clip_eps)
        record = {"iteration": it, "proxy": float(jnp.mean(scores)),
                  "kl": float(jnp.mean(sequence_kl(logp_old, logp_ref, arrays[3], "k1"))),
                  "clip_frac": float(jnp.mean(metrics["clip_frac"])), "seconds": time.perf_counter() - t0,
                  "sample": s.text[:3]}
        if gold is not None:
            record["gold"] = float(np.mean(gold(s)))
        if not all(math.isfinite(v) for v in record.values() if isinstance(v, float)):
            raise ValueError(f"GRPO iteration {it}: a non-finite statistic {record}; lower the learning rate.")
        history.append(record)
        if log is not None:
            log(record)
    return params, history
