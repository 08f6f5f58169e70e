r"""The PPO loop of §4: rollouts, scores, one jit-compiled update (InstructGPT; Ziegler et al. 2019).

The article's objective $\mathcal{L}_{RL}=\mathbb{E}[R(x,y)]-\beta D_{KL}(\pi_\theta\Vert\pi_{ref})$ is
maximised by repeating one iteration (``train_ppo`` reads it top to bottom, as CleanRL's ``ppo.py``):

1. **rollout**    — sample one answer per prompt from $\pi_\theta$ at temperature 1 with the cached
   sampler (``minift.generate``), prompts left-padded to one fixed length;
2. **score**      — one forward pass of the policy, of the frozen reference $\pi_{ref}$ (the SFT
   model) and of the reward model over prompt + answer: $\log\pi_{old}$, $\log\pi_{ref}$, values,
   entropy, $R(x, y)$;
3. **advantages** — per-token rewards (with the KL in them, or not), GAE, whitening;
4. **update**     — ``epochs`` passes over the batch in ``minibatches`` shuffled minibatches of the
   clipped loss, all in ONE jit region (``lax.scan`` over epochs and minibatches), params donated;
5. **log**        — learned reward, gold reward (the course judge, never seen by PPO), KL, entropy,
   clip fraction, value loss; then β is steered (fixed or adaptive).

Every equation is called from ``minift.rlhf.objectives`` and ``minift.rlhf.ppo_objective``; none
is re-typed here.

Design choices:

* **The value function** is a linear head (``model.scalar_head``) on the policy's own final hidden
  states, read through ``stop_gradient``. One forward pass gives logits and values (half the
  compute of InstructGPT's separate value model), and no value-loss gradient reaches the
  backbone, so the value head cannot pull the policy away from $\pi_{ref}$ — which matters when
  we measure what β does. The price: the value is a linear function of features learned for
  language modelling; with γ = 1 and λ = 0.95 the advantages lean on the Monte-Carlo return anyway.
* **$\log\pi_{old}$ is recomputed** by the same forward pass the update uses rather than taken from
  the sampler (which computes the same numbers along another path, rounding differing by ~1e-6):
  the first minibatch then has ratio 1 to float rounding and clips nothing. The sampler's values
  are kept (``logp_sampler``) to check that they agree.
* **One compiled update for a whole β sweep.** The jit'd functions take one frozen, hashable
  ``UpdateSettings`` (what they depend on, nothing else) as a static argument; β is an array
  argument. Runs that differ only in β, seed, iterations or the β controller share the program.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
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
from minift.course.judge import judge
from minift.data import Example, format_prompt
from minift.files import append_jsonl, write_atomic
from minift.generate import Generation, Sampling, generate_tokens, left_pad
from minift.loss import token_log_probs
from minift.rlhf.objectives import (
    DEFAULT_KL_KIND,
    KL_KINDS,
    AdaptiveKL,
    FixedKL,
    check_beta,
    check_kl_kind_in_loss,
    kl_estimate,
    kl_loss_term,
    per_token_rewards,
    rlhf_objective,
    sequence_kl,
)
from minift.rlhf.ppo_objective import entropy, gae, masked_whiten, ppo_clip_loss, ppo_diagnostics, value_loss
from minift.rlhf.reward_model import check_backbone_matches, reward_scores

KL_PLACEMENTS = ("reward", "loss")


@dataclass(frozen=True)
class UpdateSettings:
    """Everything the jit-compiled scoring and update depend on, and nothing else.

    Frozen and hashable: a static argument of ``score_rollout`` and ``ppo_update``, so two runs
    with equal settings share one compiled program (β is an array argument, not a setting).
    """

    epochs: int = 4  # passes over each rollout batch
    minibatches: int = 2  # per epoch; the batch size must be divisible by it
    learning_rate: float = 2e-4
    clip_eps: float = 0.2  # PPO's epsilon (Schulman et al. 2017)
    value_clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0  # an entropy bonus would hide the collapse we want to show
    gamma: float = 1.0
    lam: float = 0.95
    kl_placement: str = "reward"  # "reward" (InstructGPT) or "loss" (GRPO-style)
    kl_kind: str = ""  # KL estimator; "" = the placement's default (k1 in the reward, k3 in the loss)

    def __post_init__(self):
        where = type(self).__name__
        if self.kl_placement not in KL_PLACEMENTS:
            raise ValueError(f"{where}: kl_placement must be one of {KL_PLACEMENTS}, got {self.kl_placement!r}.")
        if self.kl_kind not in ("", *KL_KINDS):
            raise ValueError(f"{where}: kl_kind must be one of {KL_KINDS} (or '' for the default), got {self.kl_kind!r}.")
        if self.kl_placement == "loss":
            check_kl_kind_in_loss(self.kl_estimator, where)

    @property
    def kl_estimator(self) -> str:
        """The KL estimator in use: ``kl_kind``, or the placement's default (k1 in the reward, k3 in the loss)."""
        return self.kl_kind or DEFAULT_KL_KIND[self.kl_placement]


@dataclass(frozen=True)
class PPOConfig(UpdateSettings):
    """Settings of a PPO run (stored in run.json): the update's settings plus the loop's own."""

    iterations: int = 40
    batch_size: int = 32  # rollouts (prompts) per iteration
    max_new_tokens: int = 12  # course answers are at most 5 words; room to ramble
    beta: float = 0.05  # KL coefficient (initial value when adaptive)
    kl_target: float = 0.0  # > 0: adaptive beta towards this KL per sequence (Ziegler et al.)
    kl_horizon: float = 10000.0
    temperature: float = 1.0  # rollouts sample the policy itself: PPO's ratio assumes it
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        check_beta(self.beta, "PPOConfig")
        for name in ("iterations", "batch_size", "max_new_tokens", "epochs", "minibatches"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig: {name} must be >= 1, got {getattr(self, name)}.")
        if self.batch_size % self.minibatches:
            raise ValueError(f"PPOConfig: batch_size={self.batch_size} is not divisible by "
                             f"minibatches={self.minibatches}; minibatches must have one static shape.")

    def update_settings(self) -> UpdateSettings:
        """The part of these settings the compiled functions see."""
        return UpdateSettings(**{f.name: getattr(self, f.name) for f in fields(UpdateSettings)})


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


# --------------------------------------------------------------------------------------------
# The networks: policy with a value head, the reference
# --------------------------------------------------------------------------------------------


def init_policy(sft_params: dict, config: ModelConfig) -> dict:
    """PPO's trainable state: a copy of the SFT model plus a zero value head."""
    return {"policy": jax.tree.map(jnp.array, sft_params), "value_head": model.init_scalar_head(config)}


def policy_outputs(params: dict, tokens: Array, attention_mask: Array, n_response: int,
                   config: ModelConfig) -> tuple[Array, Array]:
    """Logits (B, N, V) that predicted each response token, and values (B, N) at the same states.

    The logit row at sequence position P - 1 + t predicts response token t (the one-position shift
    of §3.1), so the response's logits are columns P-1 .. P+N-2.
    """
    h = model.hidden_states(params["policy"], tokens, config, positions=model.positions_from_mask(attention_mask),
                            attention_mask=attention_mask)  # (B, P + N, D)
    h = h[:, -n_response - 1 : -1, :]  # (B, N, D) the states before each response token
    logits = model.lm_head(params["policy"], h, config)  # (B, N, V)
    values = model.scalar_head(params["value_head"], jax.lax.stop_gradient(h))  # (B, N)
    return logits, values


def response_token_log_probs(params: dict, tokens: Array, attention_mask: Array, response: Array,
                             config: ModelConfig) -> Array:
    """$\\log\\pi(y_t\\mid x, y_{<t})$ of each response token under a plain Transformer (the reference): (B, N)."""
    n = response.shape[1]
    logits = model.forward(params, tokens, config, positions=model.positions_from_mask(attention_mask),
                           attention_mask=attention_mask)[:, -n - 1 : -1, :]  # (B, N, V)
    return token_log_probs(logits, response)


# --------------------------------------------------------------------------------------------
# Steps 2-3: score a rollout and compute its advantages (one jit region)
# --------------------------------------------------------------------------------------------


def _score_rollout(params: dict, ref_params: dict, rm_params: dict, prompt_tokens: Array, prompt_mask: Array,
                   gen: Generation, beta: Array, config: ModelConfig, settings: UpdateSettings) -> Rollout:
    tokens = jnp.concatenate([prompt_tokens, gen.tokens], axis=1)  # (B, P + N)
    attention_mask = jnp.concatenate([prompt_mask, gen.mask], axis=1)  # (B, P + N)
    # 2. score: the policy (logits, values), the frozen reference, the reward model
    logits, values = policy_outputs(params, tokens, attention_mask, gen.tokens.shape[1], config)
    logp_old = token_log_probs(logits, gen.tokens)  # (B, N)
    logp_ref = response_token_log_probs(ref_params, tokens, attention_mask, gen.tokens, config)  # (B, N)
    scores = reward_scores(rm_params, tokens, attention_mask, config)  # (B,)
    # 3. advantages. With the KL in the loss, the reward is R(x, y) alone and the update adds the KL.
    kl_beta = beta if settings.kl_placement == "reward" else jnp.zeros_like(beta)
    rewards = per_token_rewards(scores, kl_estimate(logp_old, logp_ref, settings.kl_estimator), gen.mask, kl_beta)  # (B, N)
    advantages, returns = gae(rewards, values, gen.mask, settings.gamma, settings.lam)
    return Rollout(tokens, attention_mask, gen.tokens, gen.mask, logp_old, gen.logprobs, logp_ref, values, scores,
                   rewards, masked_whiten(advantages, gen.mask), returns, entropy(logits, gen.mask))


score_rollout = jax.jit(_score_rollout, static_argnames=("config", "settings"))
score_rollout.__doc__ = """Steps 2-3 of an iteration, one jit region: log-probs, values, R(x, y), rewards, advantages.

``score_rollout(params, ref_params, rm_params, prompt_tokens, prompt_mask, gen, beta, config=,
settings=) -> Rollout``; ``gen`` is what ``generate_tokens`` sampled after the prompts.
"""


def check_rollout(rollout: Rollout) -> None:
    """A ValueError for a rollout batch with no sequence or no response token (nothing to learn from)."""
    if rollout.mask.shape[0] == 0 or rollout.mask.shape[1] == 0 or not float(jnp.sum(rollout.mask)) > 0:
        raise ValueError(
            f"PPO got an empty rollout batch (response mask {tuple(rollout.mask.shape)} with "
            f"{float(jnp.sum(rollout.mask)) if rollout.mask.size else 0:.0f} real tokens): there is nothing to "
            "update on. Give at least one prompt and max_new_tokens >= 1."
        )


# --------------------------------------------------------------------------------------------
# Step 4: the update (one jit region: epochs x minibatches)
# --------------------------------------------------------------------------------------------


def ppo_loss(params: dict, mb: Rollout, beta: Array, config: ModelConfig, settings: UpdateSettings
             ) -> tuple[Array, dict[str, Array]]:
    r"""The loss of one minibatch: $\mathcal{L}^{CLIP} + c_V\mathcal{L}^V - c_H\mathcal{H}\ [+\ \beta\,\mathrm{KL}]$."""
    logits, values = policy_outputs(params, mb.tokens, mb.attention_mask, mb.response.shape[1], config)
    logp = token_log_probs(logits, mb.response)  # (B, N)
    policy_loss = ppo_clip_loss(logp, mb.logp_old, mb.advantages, mb.mask, settings.clip_eps)
    stats = ppo_diagnostics(logp, mb.logp_old, mb.advantages, mb.mask, settings.clip_eps)
    v_loss = value_loss(values, mb.values, mb.returns, mb.mask, settings.value_clip_eps)
    ent = entropy(logits, mb.mask)
    kl_term = jnp.zeros(())
    if settings.kl_placement == "loss":
        kl_term = kl_loss_term(logp, mb.logp_ref, mb.mask, beta, settings.kl_estimator)
    total = policy_loss + settings.vf_coef * v_loss - settings.ent_coef * ent + kl_term
    metrics = {"loss": total, "policy_loss": policy_loss, "value_loss": v_loss, "entropy": ent,
               "kl_loss": kl_term, **stats._asdict()}
    return total, jax.tree.map(jax.lax.stop_gradient, metrics)


def ppo_optimizer(settings: UpdateSettings) -> optax.GradientTransformation:
    """AdamW at a constant rate (no warm-up, no decay, no weight decay) with gradient clipping.

    ``make_optimizer``'s schedule is flat when ``end_lr_ratio=1`` and there is no warm-up, so its
    length (1) does not matter.
    """
    return optim.make_optimizer(settings.learning_rate, 1, 0, weight_decay=0.0, end_lr_ratio=1.0)


def _ppo_update(params: dict, opt_state: optax.OptState, rollout: Rollout, key: Array, beta: Array, *,
                config: ModelConfig, settings: UpdateSettings):
    optimizer = ppo_optimizer(settings)
    B = rollout.mask.shape[0]
    size = B // settings.minibatches

    def minibatch_step(carry, index):
        params, opt_state = carry
        mb = jax.tree.map(lambda a: a[index] if a.ndim else a, rollout)
        (_, metrics), grads = jax.value_and_grad(ppo_loss, has_aux=True)(params, mb, beta, config, settings)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        metrics["grad_norm"] = optax.tree.norm(grads)
        return (optax.apply_updates(params, updates), opt_state), metrics

    def epoch_step(carry, epoch_key):
        order = jax.random.permutation(epoch_key, B).reshape(settings.minibatches, size)  # (M, B/M)
        return jax.lax.scan(minibatch_step, carry, order)

    keys = jax.random.split(key, settings.epochs)
    (params, opt_state), stats = jax.lax.scan(epoch_step, (params, opt_state), keys)
    return params, opt_state, stats


ppo_update = jax.jit(_ppo_update, static_argnames=("config", "settings"), donate_argnums=(0, 1))
ppo_update.__doc__ = """Step 4, one jit region: ``epochs`` x ``minibatches`` gradient steps on ``ppo_loss``.

``ppo_update(params, opt_state, rollout, key, beta, config=, settings=) -> (params, opt_state, stats)``.
Two nested ``lax.scan``s; each epoch draws a new permutation of the batch from ``key``. ``stats``
leaves are (epochs, minibatches): ``stats["ratio_mean"][0, 0]`` is the first minibatch's, 1 up to
float rounding. ``params`` and ``opt_state`` are donated (do not use them after the call).
"""


# --------------------------------------------------------------------------------------------
# Prompts, logging, the loop
# --------------------------------------------------------------------------------------------


class PromptSet(NamedTuple):
    """The prompts PPO samples from, tokenized and left-padded to ONE length (static shapes)."""

    tokens: np.ndarray  # (N_prompts, P) int32
    mask: np.ndarray  # (N_prompts, P) float32
    instructions: list[str]
    inputs: list[str]
    tasks: list[str]


def make_prompt_set(examples: Sequence[Example], tokenizer: Any, template: str) -> PromptSet:
    """[BOS] + templated prompt for each example, left-padded to one bucket."""
    if not examples:
        raise ValueError("PPO needs at least one prompt; the prompt list is empty.")
    ids = [[tokenizer.bos_id, *tokenizer.encode(format_prompt(e, template))] for e in examples]
    tokens, mask = left_pad(ids, tokenizer.pad_id)
    return PromptSet(np.asarray(tokens), np.asarray(mask), [e.instruction for e in examples],
                     [e.input for e in examples], [e.task for e in examples])


def decode_responses(rollout: Rollout, tokenizer: Any) -> list[str]:
    """The text of each sampled response (up to, without, its EOS)."""
    out = []
    for row, m in zip(np.asarray(rollout.response), np.asarray(rollout.mask)):
        out.append(tokenizer.decode([int(t) for t, v in zip(row, m) if v and t != tokenizer.eos_id]))
    return out


def gold_rewards(responses: Sequence[str], prompts: PromptSet, index: np.ndarray) -> np.ndarray:
    """The programmatic judge's reward (``minift.course.judge``) of each response: the truth PPO never sees."""
    return np.asarray([judge(prompts.instructions[i], prompts.inputs[i], r, task=prompts.tasks[i] or None)
                       for r, i in zip(responses, index)], dtype=np.float64)


def rollout_metrics(rollout: Rollout, beta: float = 0.0) -> dict[str, float]:
    """Learned reward, the article's objective, KL to the reference (k1 and k3, nats per answer), entropy."""
    m = rollout.mask
    return {
        "reward": float(jnp.mean(rollout.scores)),
        "objective": float(rlhf_objective(rollout.scores, rollout.logp_old, rollout.logp_ref, m, beta, "k1")),
        "kl_k1": float(jnp.mean(sequence_kl(rollout.logp_old, rollout.logp_ref, m, "k1"))),
        "kl_k3": float(jnp.mean(sequence_kl(rollout.logp_old, rollout.logp_ref, m, "k3"))),
        "entropy": float(rollout.entropy),
        "response_tokens": float(jnp.mean(jnp.sum(m, axis=1))),
        "sampler_logp_gap": float(jnp.max(jnp.abs(jnp.where(m > 0, rollout.logp_old - rollout.logp_sampler, 0.0)))),
    }


def update_metrics(stats: dict[str, Array]) -> dict[str, float]:
    """The update's diagnostics, averaged over epochs and minibatches (``first_ratio``: the very first)."""
    out = {k: float(jnp.mean(stats[k])) for k in ("clip_frac", "value_loss", "approx_kl", "policy_loss", "grad_norm")}
    out["first_ratio"] = float(stats["ratio_mean"][0, 0])
    return out


class PPOState(NamedTuple):
    params: dict  # {"policy": Transformer params, "value_head": {...}}
    opt_state: optax.OptState
    controller: Any  # FixedKL or AdaptiveKL
    key: Array
    iteration: int


def train_ppo(sft_params: dict, config: ModelConfig, rm_params: dict, rm_config: ModelConfig, prompts: PromptSet,
              tokenizer: Any, ppo: PPOConfig, *, run_dir: str | Path | None = None,
              log: Callable[[dict], None] | None = None) -> tuple[PPOState, list[dict]]:
    """Run ``ppo.iterations`` PPO iterations from the SFT model; returns the final state and the log.

    The reference model is ``sft_params`` itself, never updated (the update works on a copy).
    Each iteration's record (numbers and three sample answers) goes to ``log`` and, with
    ``run_dir``, as one JSON line to ``run_dir/metrics.jsonl``.
    """
    check_backbone_matches(rm_config, config)
    if prompts.tokens.shape[0] == 0:
        raise ValueError("PPO needs at least one prompt; the prompt set is empty.")
    settings = ppo.update_settings()
    params = init_policy(sft_params, config)
    controller = AdaptiveKL(ppo.beta, ppo.kl_target, ppo.kl_horizon) if ppo.kl_target > 0 else FixedKL(ppo.beta)
    state = PPOState(params, ppo_optimizer(settings).init(params), controller, jax.random.PRNGKey(ppo.seed), 0)
    rng = np.random.default_rng(ppo.seed)
    n_prompts = prompts.tokens.shape[0]
    metrics_path = None if run_dir is None else write_atomic(Path(run_dir) / "metrics.jsonl", b"")
    history: list[dict] = []
    for it in range(1, ppo.iterations + 1):
        t0 = time.perf_counter()
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        index = rng.choice(n_prompts, size=ppo.batch_size, replace=n_prompts < ppo.batch_size)
        beta = float(state.controller.beta)
        # 1. rollout: one answer per prompt, sampled from the current policy
        prompt_tokens, prompt_mask = jnp.asarray(prompts.tokens[index]), jnp.asarray(prompts.mask[index])
        gen = generate_tokens(state.params["policy"], prompt_tokens, prompt_mask, rollout_key, config=config,
                              max_new_tokens=ppo.max_new_tokens, sampling=Sampling(temperature=ppo.temperature),
                              eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
        # 2-3. score (policy, reference, reward model) and advantages
        rollout = score_rollout(state.params, sft_params, rm_params, prompt_tokens, prompt_mask, gen,
                                jnp.float32(beta), config=config, settings=settings)
        check_rollout(rollout)
        # 4. update: epochs x minibatches of the clipped loss
        params, opt_state, stats = ppo_update(state.params, state.opt_state, rollout, update_key,
                                              jnp.float32(beta), config=config, settings=settings)
        # 5. log what PPO sees (learned reward, KL) beside what it never sees (the judge's gold reward)
        responses = decode_responses(rollout, tokenizer)
        record = {"iteration": it, "beta": beta, **rollout_metrics(rollout, beta),
                  "gold_reward": float(gold_rewards(responses, prompts, index).mean()),
                  # the prompts all differ, so saying the same thing to everything (mode collapse)
                  # shows up as few distinct answers
                  "distinct_answers": len(set(responses)) / len(responses),
                  **update_metrics(stats), "seconds": time.perf_counter() - t0, "sample": responses[:3]}
        if not all(math.isfinite(v) for v in record.values() if isinstance(v, float)):
            raise ValueError(f"PPO iteration {it}: a non-finite statistic {record}; lower the learning rate.")
        state = PPOState(params, opt_state, state.controller.update(record["kl_k1"], ppo.batch_size), key, it)
        history.append(record)
        if metrics_path is not None:
            append_jsonl(metrics_path, record)
        if log is not None:
            log(record)
    return state, history


def save_policy(run_dir: str | Path, state: PPOState, config: ModelConfig, metadata: dict) -> Path:
    """The PPO policy as a model checkpoint (``minift.loop.load_model`` reads it like an SFT run)."""
    meta = {"kind": "ppo_policy", **metadata}
    return ckpt.save_checkpoint(ckpt.checkpoint_path(run_dir, state.iteration), params=state.params["policy"],
                                step=state.iteration, config=config, metadata=meta)
