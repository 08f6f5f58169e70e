r"""The autoregressive model of §3.1: a decoder-only Llama-style Transformer, by hand in JAX.

Article §3.1 (Mô hình Xác Suất Tự Hồi Quy / autoregressive probability model):

$$P_\theta(X) = \prod_{t=1}^{T} P_\theta(x_t \mid x_{<t})$$

One forward pass over $x_1..x_T$ returns logits whose row $t$ is the conditional
$P_\theta(\cdot \mid x_{\le t})$, i.e. the distribution of the *next* token. The causal mask is
what makes this one pass equal to T separate passes on the prefixes (tested literally in
tests/test_model.py). The model stops at logits: log-probabilities and losses live in
`minift.loss` (the model never computes a loss).

The network, top to bottom (Llama-2 / TinyLlama architecture, Touvron et al. 2023):
token embedding -> L x [RMSNorm -> causal self-attention with RoPE and grouped-query heads ->
residual; RMSNorm -> SwiGLU MLP -> residual] -> final RMSNorm -> LM head (tied to the
embedding or not).

Parameters are a nested dict of arrays (see `init_params`); layers are stacked on a leading
L axis and run with `jax.lax.scan`. Deliberate choices:
- RoPE uses the Hugging Face Llama `rotate_half` convention (first half / second half of each
  head are the pair), so HF checkpoints load without permuting wq/wk.
- No biases anywhere, as in Llama.
- Masked attention scores use a large *finite* negative number and rows with no visible key
  are zeroed, so left-padding rows give finite values and finite gradients, never NaN.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Real

from minift.config import ModelConfig
from minift.rope import apply_rotary, rope_cos_sin, rotate_half  # noqa: F401  (part of the model's API)

Params = dict  # nested dict of arrays, see init_params

INIT_STD = 0.02  # Llama / GPT-2 initializer_range


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


def init_params(config: ModelConfig, key: Array, *, dtype: jnp.dtype = jnp.float32) -> Params:
    """Random parameters: normal(0, 0.02) for every matrix, ones for the RMSNorm gains.

    Output projections (wo, w_down) are *not* scaled down by 1/sqrt(2L) as in GPT-2: with the
    few layers of the course presets the residual stream stays well-conditioned anyway, and this
    matches Hugging Face's Llama init, so a fresh minift model and a fresh HF one look alike.

    Tree (L layers stacked on the leading axis so `lax.scan` can run them):
        embed (V, D); layers: attn_norm (L, D), wq (L, D, H, K), wk (L, D, G, K), wv (L, D, G, K),
        wo (L, H, K, D), mlp_norm (L, D), w_gate (L, D, F), w_up (L, D, F), w_down (L, F, D);
        final_norm (D,); lm_head (D, V) only when not config.tie_embeddings.
    """
    V, D, L, F = config.vocab_size, config.d_model, config.n_layers, config.d_ff
    H, G, K = config.n_heads, config.n_kv_heads, config.head_dim
    keys = iter(jax.random.split(key, 9))

    def normal(shape: tuple[int, ...]) -> Array:
        return (INIT_STD * jax.random.normal(next(keys), shape, jnp.float32)).astype(dtype)

    params: Params = {
        "embed": normal((V, D)),
        "layers": {
            "attn_norm": jnp.ones((L, D), dtype),
            "wq": normal((L, D, H, K)),
            "wk": normal((L, D, G, K)),
            "wv": normal((L, D, G, K)),
            "wo": normal((L, H, K, D)),
            "mlp_norm": jnp.ones((L, D), dtype),
            "w_gate": normal((L, D, F)),
            "w_up": normal((L, D, F)),
            "w_down": normal((L, F, D)),
        },
        "final_norm": jnp.ones((D,), dtype),
    }
    if not config.tie_embeddings:
        params["lm_head"] = normal((D, V))
    return params


def compute_params(params: Params, config: ModelConfig) -> Params:
    """The parameters the forward pass computes with: a ``config.compute_dtype`` copy, or ``params``.

    Mixed precision (Micikevicius et al. 2018): the optimizer keeps float32 *master* weights and
    moments; each step reads a bfloat16 copy, so the matmuls run at bf16 speed, and the gradient
    flows back through the cast as float32. Where bf16's 8-bit mantissa would hurt, minift stays in
    float32 whatever the policy: RMSNorm's mean square, the attention softmax, the logits and the
    loss. With ``compute_dtype=None`` (the default) this returns ``params`` untouched.
    """
    if config.compute_dtype is None:
        return params
    dtype = jnp.dtype(config.compute_dtype)
    return jax.tree.map(lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params)


def count_params(params: Params) -> int:
    """Number of scalars in a parameter tree (works on `jax.eval_shape` output too)."""
    return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(params))


# ---------------------------------------------------------------------------------------------
# The pieces, each a small pure function
# ---------------------------------------------------------------------------------------------


def rms_norm(x: Float[Array, "B T D"], weight: Float[Array, " D"], eps: float) -> Float[Array, "B T D"]:
    r"""RMSNorm (Zhang & Sennrich 2019).

    $$\mathrm{RMSNorm}(x) = \frac{x}{\sqrt{\frac1D\sum_d x_d^2 + \epsilon}} \odot g$$

    x: (B, T, D), weight g: (D,). Computed in at least float32 (as HF does) so bf16 params
    don't lose the small mean-square; cast back to x's dtype before the gain.
    """
    x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    ms = jnp.mean(x32 * x32, axis=-1, keepdims=True)  # (B, T, 1)
    normed = (x32 * jax.lax.rsqrt(ms + eps)).astype(x.dtype)
    return normed * weight[None, None, :]  # (1, 1, D): explicit rank, rank promotion is an error


def _large_negative(dtype: jnp.dtype) -> Array:
    # Finite, with headroom: subtracting the row max in softmax can't overflow to -inf, and a row
    # where *every* score is this value softmaxes to a finite uniform row instead of 0/0 = NaN.
    return jnp.asarray(-0.7 * jnp.finfo(dtype).max, dtype)


def reference_attention(q: Float[Array, "B T H K"], k: Float[Array, "B S G K"], v: Float[Array, "B S G K"],
                        mask: Bool[Array, "B T S"]) -> Float[Array, "B T H K"]:
    r"""Causal (grouped-query) attention written out: $\mathrm{softmax}(QK^\top/\sqrt{K} + M)\,V$.

    q: (B, T, H, K); k, v: (B, S, G, K) with H = G * R; mask: (B, T, S) bool, True = query t
    may look at key s. Query head h = g * R + r uses key/value head g (HF `repeat_kv` order); the
    repeat is a broadcast over R, never materialised. Returns (B, T, H, K).
    """
    B, T, H, K = q.shape
    G = k.shape[2]
    qg = q.reshape(B, T, G, H // G, K)  # (B, T, G, R, K)
    score_dtype = jnp.promote_types(q.dtype, jnp.float32)  # softmax in >= float32 even for bf16
    scores = jnp.einsum("btgrk,bsgk->bgrts", qg, k, preferred_element_type=score_dtype) / math.sqrt(K)
    scores = jnp.where(mask[:, None, None, :, :], scores, _large_negative(score_dtype))  # (B, G, R, T, S)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)  # each row sums to 1 over visible keys
    out = jnp.einsum("bgrts,bsgk->btgrk", probs, v)  # (B, T, G, R, K)
    return out.reshape(B, T, H, K)  # (B, T, H, K)


def fast_attention(q: Float[Array, "B T H K"], k: Float[Array, "B S G K"], v: Float[Array, "B S G K"],
                   mask: Bool[Array, "B T S"]) -> Float[Array, "B T H K"]:
    """Same contract as `reference_attention`, via `jax.nn.dot_product_attention` (fused on GPU).

    Its layout is (B, T, N, H) = our (B, T, H, K); it handles grouped-query heads itself (query
    head n uses key/value head n // R, the same order as ours) and takes a boolean mask
    broadcastable to (B, N, T, S). Masked entries get a finite large negative, like ours.
    """
    k, v = k.astype(q.dtype), v.astype(q.dtype)  # it requires equal dtypes (a bf16 cache)
    return jax.nn.dot_product_attention(q, k, v, mask=mask[:, None, :, :])  # (B, T, H, K)


def attention(q: Array, k: Array, v: Array, mask: Array, implementation: str = "reference") -> Array:
    """Dispatch to the chosen implementation, then zero query rows that see no key at all.

    Such rows (left-padding queries) would otherwise average *all* values uniformly: finite but
    meaningless, and it would route gradients from pad positions into real tokens' values. With
    the zeroing their output and gradient contribution are exactly 0.
    """
    if implementation == "reference":
        out = reference_attention(q, k, v, mask)
    elif implementation == "fast":
        out = fast_attention(q, k, v, mask)
    else:
        raise ValueError(f"attention implementation must be 'reference' or 'fast', got {implementation!r}")
    has_key = jnp.any(mask, axis=-1)[:, :, None, None]  # (B, T, 1, 1)
    return jnp.where(has_key, out, jnp.zeros((), out.dtype))


def swiglu_mlp(x: Float[Array, "B T D"], w_gate: Float[Array, "D F"], w_up: Float[Array, "D F"],
               w_down: Float[Array, "F D"]) -> Float[Array, "B T D"]:
    r"""SwiGLU feed-forward (Shazeer 2020): $(\mathrm{SiLU}(xW_g) \odot xW_u)\,W_d$. x: (B, T, D)."""
    gate = jnp.einsum("btd,df->btf", x, w_gate)
    up = jnp.einsum("btd,df->btf", x, w_up)
    return jnp.einsum("btf,fd->btd", jax.nn.silu(gate) * up, w_down)


def block(
    layer: Params,
    x: Array,
    cos: Array,
    sin: Array,
    mask: Array,
    config: ModelConfig,
    kv_cache: tuple[Array, Array] | None = None,
    index: Array | None = None,
) -> tuple[Array, tuple[Array, Array]]:
    """One pre-norm Transformer block: x + Attn(RMSNorm(x)), then x + MLP(RMSNorm(x)).

    layer: one slice of params["layers"] (no L axis); x: (B, T, D); cos, sin: (B, T, K);
    mask: (B, T, S) bool. Without a cache S = T and keys are this call's tokens. With
    kv_cache = (k, v) each (B, S, G, K), this call's keys/values are written at slots
    index..index+T-1 (`dynamic_update_slice`, so `index` may be traced) and the queries attend
    over the whole cache. Returns (new x, (k, v) attended over) so the caller can keep the cache.
    """
    h = rms_norm(x, layer["attn_norm"], config.norm_eps)
    q = apply_rotary(jnp.einsum("btd,dhk->bthk", h, layer["wq"]), cos, sin)
    k = apply_rotary(jnp.einsum("btd,dgk->btgk", h, layer["wk"]), cos, sin)
    v = jnp.einsum("btd,dgk->btgk", h, layer["wv"])
    if kv_cache is not None:
        k_cache, v_cache = kv_cache
        start = (0, index, 0, 0)
        k = jax.lax.dynamic_update_slice(k_cache, k.astype(k_cache.dtype), start)  # (B, S, G, K)
        v = jax.lax.dynamic_update_slice(v_cache, v.astype(v_cache.dtype), start)  # (B, S, G, K)
    attn = attention(q, k.astype(q.dtype), v.astype(q.dtype), mask, config.attention)  # (B, T, H, K)
    x = x + jnp.einsum("bthk,hkd->btd", attn, layer["wo"])
    h = rms_norm(x, layer["mlp_norm"], config.norm_eps)
    x = x + swiglu_mlp(h, layer["w_gate"], layer["w_up"], layer["w_down"])
    return x, (k, v)


# ---------------------------------------------------------------------------------------------
# The whole model
# ---------------------------------------------------------------------------------------------


class KVCache(NamedTuple):
    """Keys and values of every layer for S slots: k, v each (L, B, S, G, K)."""

    k: Array
    v: Array


def init_kv_cache(config: ModelConfig, batch_size: int, max_len: int, dtype: jnp.dtype = jnp.float32) -> KVCache:
    """An empty (all-zero) cache for `max_len` slots; a slot is used once `key_mask` and causality allow."""
    shape = (config.n_layers, batch_size, max_len, config.n_kv_heads, config.head_dim)  # (L, B, S, G, K)
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


def _decoder(
    params: Params,
    tokens: Array,
    positions: Array,
    mask: Array,
    config: ModelConfig,
    cache: KVCache | None = None,
    index: Array | None = None,
) -> tuple[Array, KVCache | None]:
    """Embedding, the L blocks, final norm: (B, T, D), plus the updated cache if one was given.

    The blocks run under `jax.lax.scan` over the stacked L axis: the block is traced and compiled
    once, whatever the depth (a Python loop would unroll L copies into the program: 22 for
    TinyLlama, with compile time growing accordingly). With ``config.remat`` each block is wrapped
    in ``jax.checkpoint``: the backward pass recomputes a block's activations from its input
    instead of keeping them, so a step holds one block's activations, not L, for ~1/3 more compute.
    """
    params = compute_params(params, config)
    x = jnp.take(params["embed"], tokens, axis=0)  # (B, T, D)
    cos, sin = rope_cos_sin(positions, config.head_dim, config.rope_theta,
                            jnp.promote_types(x.dtype, jnp.float32), config.rope_scaling)  # (B, T, K)
    if cache is None:
        run_block = jax.checkpoint(block, static_argnums=(5,)) if config.remat else block

        def step(x: Array, layer: Params) -> tuple[Array, None]:
            x, _ = run_block(layer, x, cos, sin, mask, config)
            return x, None

        x, _ = jax.lax.scan(step, x, params["layers"])
        new_cache = None
    else:

        def step_cached(x: Array, xs: tuple[Params, Array, Array]) -> tuple[Array, tuple[Array, Array]]:
            layer, k_cache, v_cache = xs
            return block(layer, x, cos, sin, mask, config, (k_cache, v_cache), index)

        x, (k, v) = jax.lax.scan(step_cached, x, (params["layers"], cache.k, cache.v))
        new_cache = KVCache(k, v)  # (L, B, S, G, K) each
    return rms_norm(x, params["final_norm"], config.norm_eps), new_cache


def lm_head(params: Params, h: Float[Array, "B T D"], config: ModelConfig) -> Float[Array, "B T V"]:
    """(B, T, D) -> logits (B, T, V), in at least float32 so log-softmax downstream stays accurate."""
    params = compute_params(params, config)
    out = jnp.promote_types(h.dtype, jnp.float32)
    if config.tie_embeddings:
        return jnp.einsum("btd,vd->btv", h, params["embed"], preferred_element_type=out)
    return jnp.einsum("btd,dv->btv", h, params["lm_head"], preferred_element_type=out)


def positions_from_mask(mask: Real[Array, "B T"]) -> Int[Array, "B T"]:
    """RoPE positions 0, 1, 2, ... over the real tokens of each row, whatever the padding: (B, T).

    ``mask`` (B, T) is 1 on real tokens. Left padding (prompts in a batch of generations) and
    right padding (training batches) both give the real tokens the positions they had when the
    sequence was alone; pads get position 0 (they are masked as keys anyway).
    """
    return jnp.maximum(jnp.cumsum(mask, axis=1) - 1, 0).astype(jnp.int32)  # (B, T)


def last_token_index(mask: Real[Array, "B T"]) -> Int[Array, " B"]:
    """(B,) column of the last real token of each row (0 for an all-padding row).

    Under causal attention the last real token is the only position that has read the whole
    sequence: a reward model reads its score there.
    """
    T = mask.shape[1]
    columns = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32)[None, :], mask.shape)  # (B, T)
    return jnp.maximum(jnp.max(jnp.where(mask > 0, columns, -1), axis=1), 0)  # (B,)


def init_scalar_head(config: ModelConfig) -> Params:
    """A zero linear map from a hidden state to one number: ``{"w": (D,), "b": ()}``.

    §4's reward model and PPO's value function are both this head on the Transformer's final
    hidden states. Starting at zero, a fresh head scores everything 0.
    """
    return {"w": jnp.zeros((config.d_model,), jnp.float32), "b": jnp.zeros((), jnp.float32)}


def scalar_head(head: Params, h: Float[Array, "B T D"]) -> Float[Array, "B T"]:
    """$w^\\top h + b$ at every position: hidden states (B, T, D) -> (B, T)."""
    return jnp.einsum("btd,d->bt", h, head["w"]) + head["b"]  # (B, T)


def _default_positions(tokens: Array, positions: Array | None, offset: Array | int = 0) -> Array:
    if positions is not None:
        return positions
    B, T = tokens.shape
    return jnp.broadcast_to(offset + jnp.arange(T, dtype=jnp.int32)[None, :], (B, T))  # (B, T)


def causal_mask(T: int, attention_mask: Array | None, batch_size: int) -> Array:
    """(B, T, T) bool: query t sees key s iff s <= t and key s is a real token (attention_mask 1)."""
    mask = jnp.tril(jnp.ones((T, T), dtype=bool))[None, :, :]  # (1, T, T)
    mask = jnp.broadcast_to(mask, (batch_size, T, T))  # (B, T, T)
    if attention_mask is not None:
        mask = mask & attention_mask.astype(bool)[:, None, :]  # (B, 1, T) key padding
    return mask


def hidden_states(
    params: Params,
    tokens: Int[Array, "B T"],
    config: ModelConfig,
    *,
    positions: Int[Array, "B T"] | None = None,
    attention_mask: Real[Array, "B T"] | None = None,
) -> Float[Array, "B T D"]:
    """Final-norm hidden states (B, T, D): what the LM head, and the §4 reward/value heads, read.

    tokens: (B, T) int; positions: (B, T), default arange(T) (for left padding pass
    cumsum(attention_mask) - 1); attention_mask: (B, T), 1 = real token, 0 = padding (as a key).
    Token ids must lie in [0, V): out-of-range ids are not checked inside jit.
    """
    B, T = tokens.shape
    mask = causal_mask(T, attention_mask, B)
    h, _ = _decoder(params, tokens, _default_positions(tokens, positions), mask, config)
    return h


def forward(
    params: Params,
    tokens: Int[Array, "B T"],
    config: ModelConfig,
    *,
    positions: Int[Array, "B T"] | None = None,
    attention_mask: Real[Array, "B T"] | None = None,
) -> Float[Array, "B T V"]:
    r"""Next-token logits (B, T, V) of §3.1: row t parametrises $P_\theta(x_{t+1} \mid x_{\le t})$.

    With log-softmax (in `minift.loss`), summing row t's entry for x_{t+1} over t gives
    $\log P_\theta(X) = \sum_t \log P_\theta(x_t \mid x_{<t})$, the log of
    $P_\theta(X) = \prod_t P_\theta(x_t \mid x_{<t})$. Arguments as in `hidden_states`.
    Jit with `jax.jit(forward, static_argnames="config")`.
    """
    h = hidden_states(params, tokens, config, positions=positions, attention_mask=attention_mask)
    return lm_head(params, h, config)


def forward_cached(
    params: Params,
    tokens: Array,
    config: ModelConfig,
    cache: KVCache,
    index: Array | int,
    *,
    positions: Array | None = None,
    key_mask: Array | None = None,
) -> tuple[Array, KVCache]:
    """`forward` for generation: feed t new tokens, reuse the keys/values of earlier ones.

    tokens: (B, t); cache: KVCache with S slots; index: int32 scalar, the slot of tokens[:, 0]
    (may be traced: one compiled program serves every step); positions: (B, t), default
    index + arange(t); key_mask: (B, S), 1 = slot holds a real token, default all ones.
    The query in slot index+i attends to slots <= index+i whose key_mask is 1. Requires
    index + t <= S (not checkable on a traced index: `dynamic_update_slice` would clamp).
    Runs the same `block` code as `forward`. Returns (logits (B, t, V), new cache).
    """
    B, t = tokens.shape
    S = cache.k.shape[2]
    if t > S:
        raise ValueError(
            f"forward_cached: {t} new tokens do not fit a cache of {S} slots; "
            f"call init_kv_cache with max_len >= {t}"
        )
    index = jnp.asarray(index, jnp.int32)
    positions = _default_positions(tokens, positions, index)
    query_slot = index + jnp.arange(t, dtype=jnp.int32)  # (t,)
    mask = jnp.arange(S, dtype=jnp.int32)[None, :] <= query_slot[:, None]  # (t, S) causal over slots
    mask = jnp.broadcast_to(mask[None, :, :], (B, t, S))  # (B, t, S)
    if key_mask is not None:
        mask = mask & key_mask.astype(bool)[:, None, :]  # (B, 1, S)
    h, new_cache = _decoder(params, tokens, positions, mask, config, cache, index)
    return lm_head(params, h, config), new_cache
