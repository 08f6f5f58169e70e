"""Sampling from the autoregressive model, with a key/value cache (§3.1 run forwards).

The model of §3.1 factorises $P_\\theta(X)=\\prod_t P_\\theta(x_t\\mid x_{<t})$, so text is made one
token at a time: compute $P_\\theta(\\cdot\\mid x_{<t})$, pick a token, append it, repeat.

Two details decide whether this is fast and correct:

* **The cache.** Without it every new token re-runs the whole prefix (quadratic work). With it
  the keys and values of past tokens are kept, and each new token costs one position.
  ``generate_uncached`` is the slow, obviously-right version the tests compare against.
* **Padding.** Prompts of different lengths share one batch. They are padded on the *left*, so
  that every prompt ends at the same column and the first generated token of every row is
  written at the same cache slot; the padding is hidden by ``key_mask`` and the real tokens get
  positions ``0, 1, 2, ...`` whatever their column (right padding would put the first generated
  token after a gap of pads — a classic silent bug of batched generation).

Shapes are static: prompts are padded to a length bucket and exactly ``max_new_tokens`` steps
are run, so the sampler compiles once per (bucket, batch size, settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from minift.config import ModelConfig
from minift.data import bucket_length
from minift.model import forward, forward_cached, init_kv_cache, positions_from_mask

PROMPT_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048)


@dataclass(frozen=True)
class Sampling:
    """How the next token is picked. ``temperature == 0`` means greedy (argmax).

    top_k = 0 and top_p = 1.0 switch those filters off. Frozen, so it is a static jit argument.
    """

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


GREEDY = Sampling()


class Generation(NamedTuple):
    """What a batched call returns, as arrays with static shapes.

    tokens:   (B, N) int32, the sampled tokens, ``pad_id`` after a row's EOS.
    logprobs: (B, N) float32, $\\log\\pi_\\theta(y_t\\mid x, y_{<t})$ of each sampled token under the
              *unfiltered* model distribution (temperature 1) — what PPO calls ``logp_old``.
    mask:     (B, N) float32, 1 on generated tokens up to and including EOS.
    """

    tokens: jax.Array
    logprobs: jax.Array
    mask: jax.Array


def filter_logits(logits: jax.Array, sampling: Sampling) -> jax.Array:
    """Temperature, top-k and top-p (nucleus) filtering of next-token logits (B, V).

    Filtered-out entries get -inf, so ``jax.random.categorical`` never draws them.
    """
    logits = logits / sampling.temperature
    if sampling.top_k:
        kth = jax.lax.top_k(logits, sampling.top_k)[0][:, -1:]  # (B, 1) the k-th largest
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if sampling.top_p < 1.0:
        order = jnp.argsort(-logits, axis=-1)  # (B, V) best first
        sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        # Keep a token if the mass *before* it is below top_p: the best token is always kept.
        mass_before = jnp.cumsum(probs, axis=-1) - probs
        drop_sorted = mass_before >= sampling.top_p
        drop = jnp.zeros_like(drop_sorted).at[jnp.arange(logits.shape[0])[:, None], order].set(drop_sorted)
        logits = jnp.where(drop, -jnp.inf, logits)
    return logits


def sample_next(logits: jax.Array, key: jax.Array, sampling: Sampling) -> jax.Array:
    """Pick one token per row from next-token logits (B, V) -> (B,) int32."""
    if sampling.temperature == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, filter_logits(logits, sampling), axis=-1).astype(jnp.int32)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, buckets: Sequence[int] = PROMPT_BUCKETS):
    """Left-pad token lists to the smallest bucket that fits: (tokens (B, P) int32, mask (B, P) f32)."""
    if len(prompts) == 0:
        raise ValueError("generate needs at least one prompt")
    longest = max(len(p) for p in prompts)
    if longest == 0:
        raise ValueError("every prompt must have at least one token (e.g. BOS)")
    length = bucket_length(longest, buckets)
    tokens = np.full((len(prompts), length), pad_id, dtype=np.int32)
    mask = np.zeros((len(prompts), length), dtype=np.float32)
    for i, p in enumerate(prompts):
        if len(p):
            tokens[i, length - len(p):] = p
            mask[i, length - len(p):] = 1.0
    return jnp.asarray(tokens), jnp.asarray(mask)


def stop_ids(eos_id: int | tuple[int, ...]) -> tuple[int, ...]:
    """The ids that end a row: one EOS, or several (Llama-3 ends a turn with <|eot_id|>, a text with EOS)."""
    return tuple(eos_id) if isinstance(eos_id, (tuple, list)) else (eos_id,)


def _take_step(next_logits, key, sampling: Sampling, done, eos_id: int | tuple[int, ...], pad_id: int):
    """Pick each row's next token; rows already past EOS (any of ``stop_ids(eos_id)``) get ``pad_id``.

    Returns (token (B,), logp (B,) under the unfiltered policy, alive (B,) float, done (B,) bool).
    """
    token = sample_next(next_logits, key, sampling)  # (B,)
    logp = jnp.take_along_axis(jax.nn.log_softmax(next_logits, axis=-1), token[:, None], axis=-1)[:, 0]
    alive = ~done
    token = jnp.where(alive, token, pad_id)
    return token, jnp.where(alive, logp, 0.0), alive.astype(jnp.float32), done | jnp.isin(token, jnp.asarray(stop_ids(eos_id)))


@partial(jax.jit, static_argnames=("config", "max_new_tokens", "sampling", "eos_id", "pad_id"))
def generate_tokens(
    params,
    prompt_tokens: jax.Array,
    prompt_mask: jax.Array,
    key: jax.Array,
    *,
    config: ModelConfig,
    max_new_tokens: int,
    sampling: Sampling = GREEDY,
    eos_id: int | tuple[int, ...],
    pad_id: int,
) -> Generation:
    """Sample ``max_new_tokens`` tokens after left-padded prompts, with a KV cache.

    prompt_tokens, prompt_mask: (B, P), left-padded (see ``left_pad``).
    """
    B, P = prompt_tokens.shape
    S = P + max_new_tokens  # cache slots: the prompt, then one per generated token
    cache = init_kv_cache(config, B, S)
    # Real tokens are numbered 0, 1, ... from the first non-pad column (pads are masked as keys).
    positions = positions_from_mask(prompt_mask)  # (B, P)
    key_mask = jnp.concatenate([prompt_mask, jnp.ones((B, max_new_tokens), prompt_mask.dtype)], axis=1)  # (B, S)

    logits, cache = forward_cached(
        params, prompt_tokens, config, cache, jnp.int32(0), positions=positions, key_mask=key_mask
    )
    next_logits = logits[:, -1, :]  # (B, V) predicts the first new token
    next_pos = positions[:, -1] + 1  # (B,)

    def step(carry, step_key):
        cache, next_logits, next_pos, done, i = carry
        token, logp, alive, done = _take_step(next_logits, step_key, sampling, done, eos_id, pad_id)
        logits, cache = forward_cached(
            params, token[:, None], config, cache, P + i, positions=next_pos[:, None], key_mask=key_mask
        )
        return (cache, logits[:, 0, :], next_pos + 1, done, i + 1), (token, logp, alive)

    keys = jax.random.split(key, max_new_tokens)
    init = (cache, next_logits, next_pos, jnp.zeros((B,), bool), jnp.int32(0))
    _, (tokens, logprobs, mask) = jax.lax.scan(step, init, keys)
    # scan stacks along time first: (N, B) -> (B, N)
    return Generation(tokens.T, logprobs.T, mask.T)


# The reference's forward, compiled once per prefix length (each new token is a new shape): a warm
# call then costs what sampling without a cache costs, not Python's op-by-op dispatch
# (`python -m minift.bench decode` compares the two samplers).
_full_forward = jax.jit(forward, static_argnames="config")


def generate_uncached(
    params,
    prompt_tokens: jax.Array,
    prompt_mask: jax.Array,
    key: jax.Array,
    *,
    config: ModelConfig,
    max_new_tokens: int,
    sampling: Sampling = GREEDY,
    eos_id: int | tuple[int, ...],
    pad_id: int,
) -> Generation:
    """The reference sampler: re-runs the full prefix through ``forward`` for every token.

    Quadratic and slow — it exists so tests can check ``generate_tokens`` against it.
    """
    B, _ = prompt_tokens.shape
    tokens, mask = prompt_tokens, prompt_mask
    done = jnp.zeros((B,), bool)
    out_tok, out_logp, out_mask = [], [], []
    for step_key in jax.random.split(key, max_new_tokens):
        logits = _full_forward(params, tokens, config, positions=positions_from_mask(mask),
                               attention_mask=mask)[:, -1, :]  # (B, V)
        token, logp, alive, done = _take_step(logits, step_key, sampling, done, eos_id, pad_id)
        out_tok.append(token)
        out_logp.append(logp)
        out_mask.append(alive)
        tokens = jnp.concatenate([tokens, token[:, None]], axis=1)
        mask = jnp.concatenate([mask, jnp.ones((B, 1), mask.dtype)], axis=1)
    return Generation(jnp.stack(out_tok, 1), jnp.stack(out_logp, 1), jnp.stack(out_mask, 1))


def generate_scored(
    params,
    config: ModelConfig,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_id: int | tuple[int, ...],
    pad_id: int,
    key: jax.Array | None = None,
    sampling: Sampling = GREEDY,
) -> list[tuple[list[int], list[float]]]:
    """Generate from token-id prompts (``eos_id``: one stop id or a tuple of them); for each row (new
    tokens up to and without EOS, the
    log-probability of every generated token *with* its EOS, under the unfiltered model)."""
    if key is None:
        if sampling.temperature > 0:
            raise ValueError("sampling with temperature > 0 needs a PRNG key (key=jax.random.PRNGKey(seed))")
        key = jax.random.PRNGKey(0)  # unused by greedy decoding
    tokens, mask = left_pad(prompts, pad_id)
    if tokens.shape[1] + max_new_tokens > config.max_seq_len:
        raise ValueError(
            f"prompt bucket {tokens.shape[1]} + max_new_tokens {max_new_tokens} exceeds the model's "
            f"max_seq_len {config.max_seq_len}: shorten the prompts or generate fewer tokens"
        )
    out = generate_tokens(
        params, tokens, mask, key, config=config, max_new_tokens=max_new_tokens,
        sampling=sampling, eos_id=eos_id, pad_id=pad_id,
    )
    result = []
    for row, logp, m in zip(np.asarray(out.tokens), np.asarray(out.logprobs), np.asarray(out.mask)):
        ids = [int(t) for t, v in zip(row, m) if v]
        scores = [float(x) for x, v in zip(logp, m) if v]
        result.append((ids[:-1] if ids and ids[-1] in stop_ids(eos_id) else ids, scores))
    return result


def generate(params, config: ModelConfig, prompts: Sequence[Sequence[int]], **settings) -> list[list[int]]:
    """Generate from token-id prompts; returns each row's new tokens, up to and without EOS.

    ``settings``: ``max_new_tokens``, ``eos_id``, ``pad_id`` (required), ``key``, ``sampling``, as
    ``generate_scored``, which also returns the tokens' log-probabilities.
    """
    return [ids for ids, _ in generate_scored(params, config, prompts, **settings)]
