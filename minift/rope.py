r"""Rotary position embeddings (RoPE, Su et al. 2021): how the §3.1 model knows where a token is.

Attention itself is blind to order; RoPE rotates each query and key by an angle proportional to
its position, pair of dims by pair of dims, so that the score of query m and key n depends on
their positions only through m - n (tested in tests/test_model.py). The layout is Hugging Face
Llama's: dim i is paired with dim i + K/2 (``rotate_half``), so Llama checkpoints load without
permuting their q/k projections. Llama-3's long-context rescaling of the frequencies is here too.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Float


def rope_inverse_frequencies(head_dim: int, theta: float, scaling: tuple | None = None,
                             dtype: jnp.dtype = jnp.float32) -> Array:
    r"""The K/2 RoPE frequencies $\theta^{-2i/K}$, rescaled as Llama-3 does when ``scaling`` is given.

    Llama-3 (``rope_scaling`` type "llama3": factor s, low/high frequency factors l, h, original
    context C) keeps the fast-turning pairs (wavelength < C/h), slows the slow ones (wavelength >
    C/l) by s, and blends the two in between, so a model trained at context C reads longer
    texts. Same formula as ``transformers``' ``_compute_llama3_parameters`` (golden-tested).
    """
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=dtype) / head_dim))  # (K/2,)
    if scaling is None:
        return inv_freq
    factor, low, high, context = scaling
    wavelen = 2 * math.pi / inv_freq
    slowed = jnp.where(wavelen > context / low, inv_freq / factor, inv_freq)
    smooth = (context / wavelen - low) / (high - low)
    blended = (1 - smooth) * slowed / factor + smooth * slowed
    medium = (wavelen >= context / high) & (wavelen <= context / low)
    return jnp.where(medium, blended, slowed)


def rope_cos_sin(positions: Array, head_dim: int, theta: float, dtype: jnp.dtype = jnp.float32,
                 scaling: tuple | None = None) -> tuple[Array, Array]:
    r"""RoPE angles (Su et al. 2021) in the HF Llama layout: $\phi_{t,i} = p_t\,\theta^{-2i/K}$.

    positions: (B, T) integer positions (may be negative for left padding; never used there).
    Returns cos, sin: (B, T, K), the K/2 frequencies repeated twice ([f_0..f_{K/2-1}, f_0..]),
    matching `rotate_half`, which pairs dim i with dim i + K/2. ``scaling``: Llama-3's, see
    `rope_inverse_frequencies`.
    """
    inv_freq = rope_inverse_frequencies(head_dim, theta, scaling, dtype)  # (K/2,)
    angles = positions.astype(dtype)[:, :, None] * inv_freq[None, None, :]  # (B, T, K/2)
    angles = jnp.concatenate([angles, angles], axis=-1)  # (B, T, K)
    return jnp.cos(angles), jnp.sin(angles)


def rotate_half(x: Array) -> Array:
    """[x1, x2] -> [-x2, x1] on the last axis: a 90-degree turn of each (x_i, x_{i+K/2}) pair."""
    half = x.shape[-1] // 2
    return jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rotary(x: Float[Array, "B T N K"], cos: Float[Array, "B T K"], sin: Float[Array, "B T K"]
                 ) -> Float[Array, "B T N K"]:
    r"""Rotate queries or keys by their position: $x \cos\phi + \mathrm{rotate\_half}(x) \sin\phi$.

    x: (B, T, N, K) with N heads; cos, sin: (B, T, K). Because rotations compose,
    $\langle R_m q, R_n k\rangle = \langle R_{m-n} q, k\rangle$: attention scores depend on
    positions only through m - n (tested).
    """
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]  # (B, T, 1, K): same rotation for every head
    dtype = jnp.promote_types(x.dtype, cos.dtype)
    out = x.astype(dtype) * cos + rotate_half(x.astype(dtype)) * sin
    return out.astype(x.dtype)
