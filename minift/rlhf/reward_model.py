r"""The reward model $R_\phi(x, y)$ of §4 and its training loop (InstructGPT §3.5).

People say which of two answers they prefer; the Bradley–Terry loss
(``minift.rlhf.objectives.bradley_terry_loss``) turns those comparisons into a scalar reward.
This module builds the network that loss trains, and the loop:

Everything below builds the network $R_\phi(x, y)$ and its training loop on top of the loss
above. Design (Ouyang et al. 2022; Stiennon et al. 2020):

* the backbone is the SFT model's Transformer (``minift.model.hidden_states``), initialised from
  its checkpoint: the reward model starts out already "reading" the course's language and tasks;
* the LM head is dropped and replaced by one linear map $h \mapsto w^\top h + b$ from the final
  hidden state of the *last real token* of prompt + response (the closing EOS) to a scalar: that
  position is the only one which has seen the whole response (causal attention);
* the head starts at zero, so a fresh reward model gives every response 0 and ranks pairs at the
  accuracy of a coin (0.5): any accuracy above that was learned.

The module reads top to bottom: the network (``init_reward_model``, ``reward_scores``); pairs as
fixed-shape arrays (``encode_pairs``); one jit-compiled training step and the loop
(``train_reward_model``); checkpoints that say they hold a reward model and which backbone.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from minift.data import bucket_length, encode_text
from minift.loop import check_run_length
from minift.preferences import PreferencePair
from minift.rlhf.objectives import bradley_terry_loss, preference_accuracy

RewardParams = dict  # {"backbone": Transformer params without lm_head, "head": {"w": (D,), "b": ()}}
REWARD_MODEL_KIND = "reward_model"  # stored in the checkpoint metadata under "kind"
LENGTH_BUCKETS = (32, 48, 64, 96, 128, 192, 256, 384, 512)


def init_reward_model(backbone: model.Params, config: ModelConfig) -> RewardParams:
    """A reward model from an (SFT) Transformer: its layers, no LM head, and a zero scalar head."""
    # A copy (training donates its buffers); the LM head is not part of the reward model.
    body = jax.tree.map(jnp.array, {name: value for name, value in backbone.items() if name != "lm_head"})
    return {"backbone": body, "head": model.init_scalar_head(config)}


def reward_scores(rm_params: RewardParams, tokens: Array, mask: Array, config: ModelConfig) -> Array:
    r"""The reward $R_\phi(x, y) = w^\top h_{\text{last}}(x, y) + b$ of each sequence (§4): (B, T) -> (B,).

    ``tokens`` (B, T) hold [BOS] + prompt + response + [EOS] with any padding, ``mask`` (B, T) is 1
    on real tokens. The score is read at the last real token, so padding (left or right, any
    amount) does not change it: real tokens never attend to pads and keep their positions.
    """
    h = model.hidden_states(
        rm_params["backbone"], tokens, config, positions=model.positions_from_mask(mask), attention_mask=mask
    )  # (B, T, D)
    last = model.last_token_index(mask)  # (B,)
    h_last = jnp.take_along_axis(h, last[:, None, None], axis=1)  # (B, 1, D)
    return model.scalar_head(rm_params["head"], h_last)[:, 0]  # (B,)


# --------------------------------------------------------------------------------------------
# Pairs -> fixed-shape arrays
# --------------------------------------------------------------------------------------------


class PairBatch(NamedTuple):
    """Chosen and rejected sequences, each [BOS] + prompt + response + [EOS], right-padded."""

    chosen: np.ndarray  # (B, T) int32
    chosen_mask: np.ndarray  # (B, T) float32, 1 = real token
    rejected: np.ndarray  # (B, T) int32
    rejected_mask: np.ndarray  # (B, T) float32


def encode_pairs(pairs: Sequence[PreferencePair], tokenizer: Any, max_len: int
                 ) -> tuple[PairBatch, int]:
    """All pairs as one PairBatch padded to the smallest bucket that fits; also how many were dropped.

    Each sequence is [BOS] + prompt + response + [EOS], the SFT layout (``minift.data.encode_text``:
    the prompt is cut from the left when it must be); a pair is dropped when either response alone
    does not fit ``max_len``.
    """
    rows = []
    for p in pairs:
        chosen, _ = encode_text(p.prompt, p.chosen, tokenizer, max_len)
        rejected, _ = encode_text(p.prompt, p.rejected, tokenizer, max_len)
        if chosen is not None and rejected is not None:
            rows.append((chosen.ids, rejected.ids))
    if not rows:
        raise ValueError(f"no preference pair fits max_len={max_len} tokens; raise --max-len.")
    T = bucket_length(max(max(len(c), len(r)) for c, r in rows), (*LENGTH_BUCKETS, max_len))
    arrays = [np.full((len(rows), T), tokenizer.pad_id, np.int32) if i % 2 == 0 else
              np.zeros((len(rows), T), np.float32) for i in range(4)]
    for b, (c, r) in enumerate(rows):
        arrays[0][b, : len(c)], arrays[1][b, : len(c)] = c, 1.0
        arrays[2][b, : len(r)], arrays[3][b, : len(r)] = r, 1.0
    return PairBatch(*arrays), len(pairs) - len(rows)


def take(batch: PairBatch, index: np.ndarray) -> PairBatch:
    return PairBatch(*(a[index] for a in batch))


# --------------------------------------------------------------------------------------------
# Training: one jit region per step
# --------------------------------------------------------------------------------------------


def pair_scores(rm_params: RewardParams, batch: PairBatch, config: ModelConfig) -> tuple[Array, Array]:
    """(r_chosen, r_rejected), each (B,), in one forward pass over the 2B sequences."""
    tokens = jnp.concatenate([jnp.asarray(batch.chosen), jnp.asarray(batch.rejected)], axis=0)  # (2B, T)
    mask = jnp.concatenate([jnp.asarray(batch.chosen_mask), jnp.asarray(batch.rejected_mask)], axis=0)  # (2B, T)
    scores = reward_scores(rm_params, tokens, mask, config)  # (2B,)
    B = batch.chosen.shape[0]
    return scores[:B], scores[B:]


def make_rm_train_step(config: ModelConfig, optimizer: optax.GradientTransformation) -> Callable:
    """A jit-compiled ``step(rm_params, opt_state, batch) -> (rm_params, opt_state, metrics)``.

    Loss, gradient, optimizer update and apply in one region; params and state are donated.
    """

    def loss_fn(rm_params: RewardParams, batch: PairBatch) -> tuple[Array, Array]:
        r_chosen, r_rejected = pair_scores(rm_params, batch, config)
        return bradley_terry_loss(r_chosen, r_rejected), preference_accuracy(r_chosen, r_rejected)

    def step(rm_params: RewardParams, opt_state: optax.OptState, batch: PairBatch):
        (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(rm_params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, rm_params)
        metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.tree.norm(grads)}
        return optax.apply_updates(rm_params, updates), opt_state, metrics

    return jax.jit(step, donate_argnums=(0, 1))


_pair_scores_jit = jax.jit(pair_scores, static_argnames="config")


def evaluate_reward_model(rm_params: RewardParams, pairs: PairBatch, config: ModelConfig,
                          batch_size: int = 64) -> dict[str, float]:
    """Pairwise accuracy and Bradley–Terry loss over every pair (the last batch padded, then cut)."""
    n = pairs.chosen.shape[0]
    chosen, rejected = [], []
    for start in range(0, n, batch_size):
        index = np.arange(start, start + batch_size) % n  # fixed shape: wrap around, cut below
        rc, rr = _pair_scores_jit(rm_params, take(pairs, index), config)
        keep = min(batch_size, n - start)
        chosen.append(np.asarray(rc)[:keep])
        rejected.append(np.asarray(rr)[:keep])
    rc, rr = jnp.asarray(np.concatenate(chosen)), jnp.asarray(np.concatenate(rejected))
    return {"accuracy": float(preference_accuracy(rc, rr)), "loss": float(bradley_terry_loss(rc, rr)),
            "margin": float(jnp.mean(rc - rr))}


@dataclass(frozen=True)
class RMConfig:
    """Settings of one reward-model training run."""

    steps: int = 150
    batch_size: int = 32
    learning_rate: float = 3e-4  # the backbone is already trained: a gentler rate than pretraining
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_len: int = 96
    eval_every: int = 50
    seed: int = 0

    def __post_init__(self):
        check_run_length("RMConfig", self.steps, self.batch_size, self.warmup_steps)


def train_reward_model(
    rm_params: RewardParams,
    config: ModelConfig,
    train_pairs: PairBatch,
    rm: RMConfig,
    *,
    eval_pairs: PairBatch | None = None,
    log: Callable[[dict], None] | None = None,
) -> tuple[RewardParams, list[dict]]:
    """Fit the reward model by Bradley–Terry on ``train_pairs``; returns (params, history).

    Minibatches are drawn without replacement, a new seeded permutation each epoch, so the run is
    a pure function of ``rm.seed``. The caller's ``rm_params`` are not modified.
    """
    optimizer = optim.make_optimizer(rm.learning_rate, rm.steps, rm.warmup_steps, weight_decay=rm.weight_decay)
    params = jax.tree.map(jnp.copy, rm_params)
    opt_state = optimizer.init(params)
    step_fn = make_rm_train_step(config, optimizer)
    n = train_pairs.chosen.shape[0]
    if n < rm.batch_size:
        raise ValueError(f"only {n} training pairs for batch_size={rm.batch_size}; lower --batch-size.")
    rng = np.random.default_rng(rm.seed)
    order, cursor = rng.permutation(n), 0
    history: list[dict] = []
    for step in range(1, rm.steps + 1):
        if cursor + rm.batch_size > n:
            order, cursor = rng.permutation(n), 0
        index = order[cursor : cursor + rm.batch_size]
        cursor += rm.batch_size
        params, opt_state, metrics = step_fn(params, opt_state, take(train_pairs, index))
        record = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        if eval_pairs is not None and ((rm.eval_every and step % rm.eval_every == 0) or step == rm.steps):
            record.update({f"eval_{k}": v for k, v in evaluate_reward_model(params, eval_pairs, config).items()})
        history.append(record)
        if log is not None:
            log(record)
    return params, history


# --------------------------------------------------------------------------------------------
# Checkpoints: a reward model says what it is and which backbone it has
# --------------------------------------------------------------------------------------------


def save_reward_model(path: str | Path, rm_params: RewardParams, config: ModelConfig, *, step: int = 0,
                      metadata: dict | None = None) -> Path:
    """Save as a minift safetensors checkpoint tagged ``kind: reward_model`` with its backbone config."""
    meta = {"kind": REWARD_MODEL_KIND, "backbone_config": config.to_dict(), **(metadata or {})}
    return ckpt.save_checkpoint(path, params=rm_params, step=step, config=config, metadata=meta)


def load_reward_model(path: str | Path) -> tuple[RewardParams, ModelConfig, dict]:
    """(params, backbone config, metadata) of a reward model: a run folder or a .safetensors file."""
    path = ckpt.checkpoint_file(path, "train one with `minift rm`")
    state = ckpt.load_checkpoint(path)
    if state.metadata.get("kind") != REWARD_MODEL_KIND:
        raise ValueError(
            f"{path} is not a reward-model checkpoint (metadata kind is {state.metadata.get('kind')!r}); "
            "pass the folder written by `minift rm --out`, not an SFT or PPO run."
        )
    return state.params, ModelConfig.from_dict(state.config_dict), state.metadata


def check_backbone_matches(rm_config: ModelConfig, policy_config: ModelConfig, where: str = "reward model") -> None:
    """A ValueError naming every differing field when the reward model's backbone is not the policy's.

    The reward model must read the very token ids the policy writes (same vocabulary), and in
    minift it is initialised from the SFT model, so its whole shape must agree; only the attention
    implementation (a speed choice, same numbers) may differ.
    """
    a, b = rm_config.to_dict(), policy_config.to_dict()
    differing = [k for k in a if k != "attention" and a[k] != b.get(k)]
    if differing:
        detail = ", ".join(f"{k}: reward model {a[k]!r} vs policy {b.get(k)!r}" for k in differing)
        raise ValueError(
            f"{where}: its backbone config does not match the policy's ({detail}). Train the reward "
            "model from the same SFT run (`minift rm --sft RUN`) that PPO starts from."
        )
