r"""DPO (Rafailov et al. 2023): the preference pairs straight into the policy, no reward model, no sampling (§4).

DPO shows that the KL-regularised objective of §4 has the closed-form optimum
$\pi^\star(y\mid x)\propto\pi_{ref}(y\mid x)\exp(R(x,y)/\beta)$, so a reward is implied by any
policy, $\hat R = \beta\log\frac{\pi_\theta}{\pi_{ref}}$, and fitting Bradley–Terry with *that*
reward to the pairs trains the policy directly (``estimators.dpo_loss``). The reference's
sequence log-probabilities are computed once; each step is one jit region over a minibatch of
pairs. The learned reward model is not used to train, only to draw DPO on the same axes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from minift import model, optim
from minift.config import ModelConfig
from minift.data import bucket_length, encode_text
from minift.loss import token_log_probs
from minift.preferences import PreferencePair
from minift.rlhf.estimators import dpo_loss, sequence_log_probs


@dataclass(frozen=True)
class DPOConfig:
    """Settings of one DPO run."""

    steps: int = 150
    batch_size: int = 32  # pairs per step
    learning_rate: float = 1e-4
    beta: float = 0.1  # DPO's β: the KL coefficient of the objective it solves
    max_len: int = 96
    measure_every: int = 25  # steps between points of the curve
    seed: int = 0

    def __post_init__(self):
        if not self.beta > 0:
            raise ValueError(f"DPOConfig: beta must be > 0 (DPO divides the implied reward by it), got {self.beta!r}.")
        for name in ("steps", "batch_size", "max_len", "measure_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"DPOConfig: {name} must be >= 1, got {getattr(self, name)}.")


class PairTokens(NamedTuple):
    """Chosen and rejected sequences, right-padded, each with a mask on its response tokens (and EOS)."""

    chosen: np.ndarray  # (B, T) int32
    chosen_mask: np.ndarray  # (B, T) float32 1 on real tokens
    chosen_target: np.ndarray  # (B, T) float32 1 where the token is a response token (the loss mask)
    rejected: np.ndarray
    rejected_mask: np.ndarray
    rejected_target: np.ndarray


def encode_pair_tokens(pairs: Sequence[PreferencePair], tokenizer: Any, max_len: int) -> PairTokens:
    """Every pair as [BOS] + prompt + response + [EOS], padded to one length; pairs that do not fit are dropped."""
    rows = []
    for p in pairs:
        c, _ = encode_text(p.prompt, p.chosen, tokenizer, max_len)
        r, _ = encode_text(p.prompt, p.rejected, tokenizer, max_len)
        if c is not None and r is not None:
            rows.append((c, r))
    if not rows:
        raise ValueError(f"no preference pair fits max_len={max_len} tokens; raise max_len.")
    T = bucket_length(max(max(len(c.ids), len(r.ids)) for c, r in rows), (32, 48, 64, 96, 128, max_len))
    out = [np.zeros((len(rows), T), np.int32 if i % 3 == 0 else np.float32) for i in range(6)]
    out[0][:], out[3][:] = tokenizer.pad_id, tokenizer.pad_id
    for b, (c, r) in enumerate(rows):
        for k, e in ((0, c), (3, r)):
            out[k][b, : len(e.ids)], out[k + 1][b, : len(e.ids)], out[k + 2][b, : len(e.ids)] = e.ids, 1.0, e.loss_mask
    return PairTokens(*out)


def response_log_probs(params: dict, tokens, mask, target, config: ModelConfig):
    """$\\log\\pi(y\\mid x)=\\sum_t\\log\\pi(y_t\\mid x,y_{<t})$ over the response tokens: (B, T) -> (B,)."""
    logits = model.forward(params, tokens[:, :-1], config, attention_mask=mask[:, :-1])  # (B, T-1, V)
    return sequence_log_probs(token_log_probs(logits, tokens[:, 1:]), target[:, 1:])  # (B,)


def _pair_log_probs(params, batch: PairTokens, config):
    return (response_log_probs(params, batch.chosen, batch.chosen_mask, batch.chosen_target, config),
            response_log_probs(params, batch.rejected, batch.rejected_mask, batch.rejected_target, config))


pair_log_probs = jax.jit(_pair_log_probs, static_argnames=("config",))


def _step(params, opt_state, batch, ref_chosen, ref_rejected, *, config, beta, learning_rate):
    optimizer = optim.make_optimizer(learning_rate, 1, 0, weight_decay=0.0, end_lr_ratio=1.0)

    def loss_fn(p):
        chosen, rejected = _pair_log_probs(p, batch, config)
        return dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta)

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, {"loss": loss, **stats}


dpo_step = jax.jit(_step, static_argnames=("config", "beta", "learning_rate"), donate_argnums=(0, 1))


def train_dpo(sft_params: dict, config: ModelConfig, pairs: PairTokens, dpo: DPOConfig, *,
              on_measure: Callable[[dict, int], dict] | None = None,
              log: Callable[[dict], None] | None = None) -> tuple[dict, list[dict]]:
    """``dpo.steps`` DPO steps from the SFT model (also $\\pi_{ref}$); (params, history).

    Every ``measure_every`` steps (and at step 0) ``on_measure(params, step)`` returns a point of the
    curve (e.g. ``measure.measure``), stored with the step's loss in the history.
    """
    n = pairs.chosen.shape[0]
    if n < dpo.batch_size:
        raise ValueError(f"DPO: only {n} preference pairs for batch_size={dpo.batch_size}; lower batch_size.")
    ref_chosen, ref_rejected = [], []
    for start in range(0, n, dpo.batch_size):  # the reference's log-probs, once
        c, r = pair_log_probs(sft_params, PairTokens(*(a[start : start + dpo.batch_size] for a in pairs)), config=config)
        ref_chosen.append(np.asarray(c))
        ref_rejected.append(np.asarray(r))
    ref_chosen, ref_rejected = np.concatenate(ref_chosen), np.concatenate(ref_rejected)
    params = jax.tree.map(jnp.array, sft_params)
    opt_state = optim.make_optimizer(dpo.learning_rate, 1, 0, weight_decay=0.0, end_lr_ratio=1.0).init(params)
    rng = np.random.default_rng(dpo.seed)
    order, cursor = rng.permutation(n), 0
    history = [{"step": 0, **on_measure(params, 0)}] if on_measure else []
    t0 = time.perf_counter()
    for step in range(1, dpo.steps + 1):
        if cursor + dpo.batch_size > n:
            order, cursor = rng.permutation(n), 0
        idx = order[cursor : cursor + dpo.batch_size]
        cursor += dpo.batch_size
        batch = PairTokens(*(jnp.asarray(a[idx]) for a in pairs))
        params, opt_state, stats = dpo_step(params, opt_state, batch, jnp.asarray(ref_chosen[idx]),
                                            jnp.asarray(ref_rejected[idx]), config=config, beta=dpo.beta,
                                            learning_rate=dpo.learning_rate)
        if step % dpo.measure_every == 0 or step == dpo.steps:
            record = {"step": step, **{k: float(v) for k, v in stats.items()}, "seconds": time.perf_counter() - t0}
            if on_measure:
                record.update(on_measure(params, step))
            if not np.isfinite(record["loss"]):
                raise ValueError(f"DPO step {step}: the loss is not finite; lower the learning rate.")
            history.append(record)
            if log is not None:
                log(record)
    return params, history
