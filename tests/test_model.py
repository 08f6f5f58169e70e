r"""The §3.1 model: $P_\theta(X)=\prod_t P_\theta(x_t\mid x_{<t})$ from one causal forward pass.

Kinds of check (tolerance beside each, with why):
- the chain rule literally: one pass == one pass per prefix; the product is a distribution;
- each piece against an independent NumPy reference in float64 (RMSNorm, RoPE, attention);
- invariants: causality, RoPE's relative-position property, GQA == MHA with repeated heads,
  fast == reference attention, left padding == no padding, KV cache == full forward,
  fully masked rows finite with finite gradients;
- gradients against central finite differences in float64;
- jit compiles once per shape.
Log-probabilities are taken with jax.nn.log_softmax here on purpose: the loss module is not
the model's business.
"""

from __future__ import annotations

import dataclasses
import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from minift import model
from minift.config import get_config
from minift.model import (
    KVCache,
    apply_rotary,
    attention,
    count_params,
    forward,
    forward_cached,
    hidden_states,
    init_kv_cache,
    init_params,
    reference_attention,
    rms_norm,
    rope_cos_sin,
)

fwd = jax.jit(forward, static_argnames="config")
fwd_cached = jax.jit(forward_cached, static_argnames="config")
# init_params runs eagerly: its random.normal kernels are compiled once per *shape* and reused by
# every config sharing that shape, whereas a jitted init recompiles everything per config.
init = init_params


@pytest.fixture(scope="module")
def config():
    return get_config("tiny")


@pytest.fixture(scope="module")
def params(config):
    return init(config, jax.random.PRNGKey(0))


# The test's own log-probs, with jax.nn.log_softmax (the loss module is not the model's business),
# fused with the forward pass so each shape costs one compilation.
log_probs = jax.jit(lambda p, x, c: jax.nn.log_softmax(forward(p, x, c), axis=-1), static_argnums=2)

# Test inputs come from seeded NumPy generators: every eager jax.random call would compile its
# own little XLA program, which on a 2-core machine costs more than the checks themselves.


def random_tokens(seed: int, shape: tuple[int, ...], vocab: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, size=shape).astype(np.int32)


def normal(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def left_padded(seqs: list[np.ndarray], T: int, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left-pad 1-D token arrays to T: tokens, attention_mask, positions = cumsum(mask) - 1."""
    tokens = np.stack([np.concatenate([np.full(T - len(s), pad_id, np.int32), s]) for s in seqs])
    mask = np.stack([np.arange(T) >= T - len(s) for s in seqs]).astype(np.int32)
    return tokens, mask, (np.cumsum(mask, axis=1) - 1).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Parameter tree and sizes
# ---------------------------------------------------------------------------------------------


def expected_shapes(c) -> dict:
    V, D, L, H, G, K, F = c.vocab_size, c.d_model, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.d_ff
    tree = {
        "embed": (V, D),
        "layers": {"attn_norm": (L, D), "wq": (L, D, H, K), "wk": (L, D, G, K), "wv": (L, D, G, K),
                   "wo": (L, H, K, D), "mlp_norm": (L, D), "w_gate": (L, D, F), "w_up": (L, D, F),
                   "w_down": (L, F, D)},
        "final_norm": (D,),
    }
    if not c.tie_embeddings:
        tree["lm_head"] = (D, V)
    return tree


@pytest.mark.parametrize("name", ["tiny", "course", "tinyllama-1.1b"])
@pytest.mark.parametrize("tie", [True, False])
def test_param_tree_is_exactly_the_contract(name, tie):
    # The HF-checkpoint converter relies on these keys and shapes; eval_shape allocates nothing,
    # so even the 1.1B tree is checked for free.
    c = get_config(name, tie_embeddings=tie)
    shapes = jax.eval_shape(lambda: init_params(c, jax.random.PRNGKey(0)))
    assert jax.tree_util.tree_map(lambda s: s.shape, shapes) == expected_shapes(c)
    assert count_params(shapes) == c.n_params


def test_preset_sizes_and_init_statistics(config, params):
    assert count_params(params) == config.n_params < 1_000_000
    assert count_params(jax.eval_shape(lambda: init_params(get_config("course"), jax.random.PRNGKey(0)))) == 994_432
    tinyllama = jax.eval_shape(lambda: init_params(get_config("tinyllama-1.1b"), jax.random.PRNGKey(0)))
    assert count_params(tinyllama) == 1_100_048_384  # no allocation: eval_shape
    # normal(0, 0.02): with 32768 samples the sample std is within ~1% of 0.02 (5 sigma ~ 2%).
    embed = np.asarray(params["embed"])
    assert abs(embed.std() - 0.02) < 0.02 * 0.03 and abs(embed.mean()) < 0.001
    assert np.all(np.asarray(params["layers"]["attn_norm"]) == 1.0) and np.all(np.asarray(params["final_norm"]) == 1.0)
    bf16 = jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0), dtype=jnp.bfloat16))
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree_util.tree_leaves(bf16))


def test_forward_shapes_and_dtypes(config, params):
    tokens = random_tokens(1, (2, 10), config.vocab_size)
    logits = fwd(params, tokens, config)
    assert logits.shape == (2, 10, config.vocab_size) and logits.dtype == jnp.float32
    h = jax.jit(hidden_states, static_argnames="config")(params, tokens, config)
    assert h.shape == (2, 10, config.d_model)
    assert np.all(np.isfinite(logits))
    # Tied head: logits are h @ embed.T (tolerance: float32 matmul reassociation).
    np.testing.assert_allclose(logits, np.einsum("btd,vd->btv", h, params["embed"]), atol=1e-5)


def test_untied_head_and_bf16_params(config):
    c = dataclasses.replace(config, tie_embeddings=False)
    p32 = init(c, jax.random.PRNGKey(3))
    tokens = random_tokens(2, (2, 10), c.vocab_size)
    logits32 = fwd(p32, tokens, c)
    # The trunk does not depend on tying, so the tied config's hidden states serve here.
    trunk = {k: v for k, v in p32.items() if k != "lm_head"}
    h = jax.jit(hidden_states, static_argnames="config")(trunk, tokens, config)
    np.testing.assert_allclose(logits32, np.einsum("btd,dv->btv", h, p32["lm_head"]), atol=1e-5)
    p16 = jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x), jnp.bfloat16), p32)
    logits16 = fwd(p16, tokens, c)
    assert logits16.dtype == jnp.float32  # the head accumulates in float32 for the log-softmax
    # bf16 keeps ~3 significant digits; logits here are O(0.1), so 2e-2 absolute is loose but
    # still catches a broken bf16 path (which would be off by O(logits)).
    np.testing.assert_allclose(logits16, logits32, atol=2e-2)


# ---------------------------------------------------------------------------------------------
# §3.1: the chain rule, literally
# ---------------------------------------------------------------------------------------------


def test_chain_rule_one_pass_equals_one_pass_per_prefix(config, params):
    T = 5  # each prefix length is its own compilation: keep it short
    x = random_tokens(4, (1, T), config.vocab_size)
    logp = log_probs(params, x, config)  # (1, T, V)
    # sum_t log P(x_{t+1} | x_{<=t}) read off ONE forward pass ...
    one_pass = [float(logp[0, t, x[0, t + 1]]) for t in range(T - 1)]
    # ... and each conditional from its own forward pass on the prefix x_{<=t} alone.
    per_prefix = []
    for t in range(T - 1):
        logp_prefix = log_probs(params, x[:, : t + 1], config)[0, -1]  # (V,)
        per_prefix.append(float(logp_prefix[x[0, t + 1]]))
    # float32, different shapes => different summation orders: agreement to ~1e-6 per term.
    np.testing.assert_allclose(one_pass, per_prefix, atol=1e-5)
    np.testing.assert_allclose(sum(one_pass), sum(per_prefix), atol=1e-5)


def test_each_conditional_sums_to_one(config, params):
    probs = np.exp(np.asarray(log_probs(params, random_tokens(5, (1, 6), config.vocab_size), config)))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)  # float32 rounding over 512 terms


def test_chain_rule_product_is_a_distribution_over_sequences(config):
    # With V = 6 we can enumerate every continuation x_2..x_4 of x_1 = 0 (6^3 = 216 sequences)
    # and check that prod_t P(x_t | x_<t) sums to exactly 1: the product of conditionals is a
    # probability distribution over whole sequences, the statement of §3.1.
    c = dataclasses.replace(config, vocab_size=6)
    # Scaled-up weights make the conditionals far from uniform, so the check has teeth.
    p = jax.tree_util.tree_map(lambda w: 8.0 * np.asarray(w), init(c, jax.random.PRNGKey(7)))
    seqs = np.array([(0,) + rest for rest in itertools.product(range(6), repeat=3)], np.int32)  # (216, 4)
    logp = np.asarray(log_probs(p, seqs, c), np.float64)  # (216, 4, 6)
    per_token = np.take_along_axis(logp[:, :-1], seqs[:, 1:, None], axis=-1)[..., 0]  # (216, 3)
    seq_prob = np.exp(per_token.sum(axis=1))  # (216,)
    assert seq_prob.max() > 5 * seq_prob.min()  # not the uniform 1/216
    np.testing.assert_allclose(seq_prob.sum(), 1.0, atol=1e-5)  # float32 log-probs, 216 terms


def test_causality_future_tokens_do_not_change_the_past(config, params):
    x = random_tokens(6, (2, 10), config.vocab_size)
    t = 5
    x2 = x.copy()
    x2[:, t] = (x[:, t] + 1) % config.vocab_size
    a, b = np.asarray(fwd(params, x, config)), np.asarray(fwd(params, x2, config))
    # Positions < t never see x_t: identical up to float reassociation (1e-6).
    np.testing.assert_allclose(a[:, :t], b[:, :t], atol=1e-6)
    assert np.abs(a[:, t:] - b[:, t:]).max() > 1e-4  # the change is visible from t on


# ---------------------------------------------------------------------------------------------
# The pieces vs NumPy references (float64)
# ---------------------------------------------------------------------------------------------


def test_rms_norm_matches_numpy():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 3, 8)) * 3.0, rng.normal(size=(8,))
    expected = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-5) * w
    with jax.enable_x64(True):
        got = np.asarray(rms_norm(jnp.asarray(x), jnp.asarray(w), 1e-5))
    np.testing.assert_allclose(got, expected, rtol=1e-12)  # float64: only rounding differs


def test_rope_matches_numpy_references():
    rng = np.random.default_rng(1)
    B, T, N, K, theta = 2, 5, 3, 8, 10000.0
    x = rng.normal(size=(B, T, N, K))
    pos = rng.integers(-3, 100, size=(B, T))
    freqs = theta ** (-np.arange(0, K, 2) / K)  # (K/2,)
    ang = pos[:, :, None, None] * freqs  # (B, T, 1, K/2)
    # Reference 1: HF rotate_half, in NumPy.
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    rot_half = np.concatenate([-x[..., K // 2:], x[..., : K // 2]], -1)
    hf = x * cos + rot_half * sin
    # Reference 2, independent: dims (i, i + K/2) as one complex number, multiplied by e^{i*angle}.
    z = (x[..., : K // 2] + 1j * x[..., K // 2:]) * np.exp(1j * ang)
    complex_ref = np.concatenate([z.real, z.imag], -1)
    with jax.enable_x64(True):
        rotate = jax.jit(lambda x, pos: apply_rotary(x, *rope_cos_sin(pos, K, theta, jnp.float64)))
        got = np.asarray(rotate(jnp.asarray(x), jnp.asarray(pos)))
    np.testing.assert_allclose(got, hf, atol=1e-12)  # float64 rounding only
    np.testing.assert_allclose(got, complex_ref, atol=1e-12)


def test_rope_scores_depend_only_on_relative_position():
    rng = np.random.default_rng(2)
    K = 16
    q, k = rng.normal(size=(1, 1, 1, K)), rng.normal(size=(1, 1, 1, K))

    @jax.jit
    def rotated_score(m, n):
        cq, sq = rope_cos_sin(m, K, 10000.0, jnp.float64)
        ck, sk = rope_cos_sin(n, K, 10000.0, jnp.float64)
        return jnp.sum(apply_rotary(jnp.asarray(q), cq, sq) * apply_rotary(jnp.asarray(k), ck, sk))

    def score(m: int, n: int) -> float:
        return float(rotated_score(np.array([[m]]), np.array([[n]])))

    with jax.enable_x64(True):
        for delta in (0, 3, -7):
            scores = [score(m, m - delta) for m in (0, 5, 40, 300)]
            np.testing.assert_allclose(scores, scores[0], atol=1e-10)  # float64, angles up to ~300 rad
        assert abs(score(10, 7) - score(10, 4)) > 1e-3  # ... and does depend on the difference


def numpy_attention(q, k, v, mask):
    """Loop reference: head h uses key/value head h // (H // G); softmax over visible keys only."""
    B, T, H, K = q.shape
    G = k.shape[2]
    out = np.zeros_like(q)
    for b, h, t in itertools.product(range(B), range(H), range(T)):
        g = h // (H // G)
        visible = np.flatnonzero(mask[b, t])
        if len(visible) == 0:
            continue  # a query that sees nothing outputs 0 (left-padding rows)
        s = np.array([q[b, t, h] @ k[b, j, g] for j in visible]) / np.sqrt(K)
        p = np.exp(s - s.max())
        out[b, t, h] = (p / p.sum()) @ v[b, visible, g]
    return out


@pytest.mark.parametrize("implementation", ["reference", "fast"])
def test_attention_matches_numpy_loop(implementation):
    rng = np.random.default_rng(3)
    B, T, H, G, K = 2, 6, 4, 2, 8
    q, k, v = rng.normal(size=(B, T, H, K)), rng.normal(size=(B, T, G, K)), rng.normal(size=(B, T, G, K))
    key_pad = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], bool)
    mask = np.tril(np.ones((T, T), bool))[None] & key_pad[:, None, :]  # row 0: two fully masked queries
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(attention, static_argnums=4)(*map(jnp.asarray, (q, k, v, mask)), implementation))
    # reference: float64 throughout, rounding only (1e-12). fast: jax.nn.dot_product_attention
    # takes its softmax in float32 even for float64 inputs, so float32 accuracy (1e-6).
    atol = 1e-12 if implementation == "reference" else 1e-6
    np.testing.assert_allclose(got, numpy_attention(q, k, v, mask), atol=atol)


def test_gqa_equals_mha_with_repeated_kv_heads():
    B, T, H, G, K = 2, 7, 6, 2, 8
    q, k, v = normal(4, (B, T, H, K)), normal(5, (B, T, G, K)), normal(6, (B, T, G, K))
    mask = np.broadcast_to(np.tril(np.ones((T, T), bool))[None], (B, T, T))
    attn = jax.jit(reference_attention)
    gqa = attn(q, k, v, mask)
    # Explicit repeat: kv head g serves query heads g*R .. g*R + R - 1 (HF repeat_kv order).
    mha = attn(q, np.repeat(k, H // G, axis=2), np.repeat(v, H // G, axis=2), mask)
    np.testing.assert_allclose(gqa, mha, atol=1e-6)  # same arithmetic, float32 reassociation only


def test_fully_masked_rows_are_finite_with_finite_gradients():
    q, k, v = normal(7, (1, 3, 2, 4)), normal(8, (1, 3, 1, 4)), normal(9, (1, 3, 1, 4))
    mask = np.array([[[False] * 3, [True, False, False], [True, True, False]]])  # row 0 sees nothing
    for impl in ("reference", "fast"):
        total = lambda q, k, v: jnp.sum(attention(q, k, v, mask, impl))  # noqa: E731
        value_and_grads = jax.jit(jax.value_and_grad(total, argnums=(0, 1, 2)))
        out, grads = jax.jit(attention, static_argnums=4)(q, k, v, mask, impl), value_and_grads(q, k, v)[1]
        assert np.all(np.asarray(out)[:, 0] == 0.0) and np.all(np.isfinite(out))
        assert all(np.all(np.isfinite(g)) for g in grads)
        assert np.all(np.asarray(grads[0])[:, 0] == 0.0)  # the empty row's query gets no gradient


# ---------------------------------------------------------------------------------------------
# Implementations and padding agree
# ---------------------------------------------------------------------------------------------


def test_fast_attention_equals_reference_values_and_gradients(config, params):
    fast = dataclasses.replace(config, attention="fast")
    tokens, mask, pos = left_padded([random_tokens(8, (6,), 512), random_tokens(9, (10,), 512)], 10)
    w = normal(10, (2, 10, config.vocab_size))

    def scalar(p, c):
        # Summed over ALL rows, pad rows included: their (fully masked) attention must still give
        # finite gradients, and the two implementations must agree there too.
        return jnp.sum(forward(p, tokens, c, positions=pos, attention_mask=mask) * w)

    v_ref, g_ref = jax.jit(jax.value_and_grad(scalar), static_argnums=1)(params, config)
    v_fast, g_fast = jax.jit(jax.value_and_grad(scalar), static_argnums=1)(params, fast)
    np.testing.assert_allclose(fwd(params, tokens, fast, positions=pos, attention_mask=mask),
                               fwd(params, tokens, config, positions=pos, attention_mask=mask), atol=1e-5)
    np.testing.assert_allclose(v_fast, v_ref, rtol=1e-5)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(g_ref))
    # float32, two algebraically equal programs: agree to ~1e-5 relative to the gradient's scale.
    for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, atol=1e-5 * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("implementation", ["reference", "fast"])
def test_left_padding_gives_the_unpadded_logits(config, params, implementation):
    c = dataclasses.replace(config, attention=implementation)
    short, full = random_tokens(11, (7,), 512), random_tokens(12, (10,), 512)
    tokens, mask, pos = left_padded([short, full], 10, pad_id=3)
    padded = fwd(params, tokens, c, positions=pos, attention_mask=mask)
    # Same computation on the real tokens, different shapes: float32 agreement to 1e-5.
    np.testing.assert_allclose(padded[0, 3:], fwd(params, short[None], c)[0], atol=1e-5)
    np.testing.assert_allclose(padded[1], fwd(params, full[None], c)[0], atol=1e-5)
    # The pad query rows (fully masked) are finite too; their gradients are checked in
    # test_fast_attention_equals_reference_values_and_gradients, which sums over all rows.
    assert np.all(np.isfinite(padded))


# ---------------------------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("implementation, padded", [("reference", False), ("reference", True), ("fast", True)])
def test_kv_cache_prefill_then_steps_equals_full_forward(config, params, implementation, padded):
    c = dataclasses.replace(config, attention=implementation)
    T, P, S = 10, 6, 12  # total length, prompt length, cache slots (S > T: unused slots at the end)
    if padded:
        tokens, mask, pos = left_padded([random_tokens(13, (7,), 512), random_tokens(14, (10,), 512)], T)
        key_mask = np.concatenate([mask, np.ones((2, S - T), np.int32)], axis=1)  # (B, S)
        full = fwd(params, tokens, c, positions=pos, attention_mask=mask)
        kw = lambda a, b: dict(positions=pos[:, a:b], key_mask=key_mask)  # noqa: E731
    else:
        tokens, mask = random_tokens(15, (2, T), 512), np.ones((2, T), np.int32)
        full = fwd(params, tokens, c)
        kw = lambda a, b: {}  # noqa: E731  (defaults: positions index + arange(t), no key padding)
    cache = init_kv_cache(c, 2, S)
    logits, cache = fwd_cached(params, tokens[:, :P], c, cache, np.int32(0), **kw(0, P))
    steps = [np.asarray(logits)]
    for i in range(P, T):
        logits, cache = fwd_cached(params, tokens[:, i : i + 1], c, cache, np.int32(i), **kw(i, i + 1))
        steps.append(np.asarray(logits))
    cached = np.concatenate(steps, axis=1)  # (B, T, V)
    assert isinstance(cache, KVCache) and cache.k.shape == (c.n_layers, 2, S, c.n_kv_heads, c.head_dim)
    real = mask.astype(bool)
    # float32, the same arithmetic split differently: 1e-5.
    np.testing.assert_allclose(cached[real], np.asarray(full)[real], atol=1e-5)


def test_kv_cache_step_compiles_once_for_every_index(config, params):
    traces = []

    def counted(params, tokens, config, cache, index):
        traces.append(1)  # runs only while tracing, i.e. once per compilation
        return forward_cached(params, tokens, config, cache, index)

    step = jax.jit(counted, static_argnames="config")
    cache = init_kv_cache(config, 1, 8)
    for i in range(5):
        _, cache = step(params, np.full((1, 1), i, np.int32), config, cache, np.int32(i))
    assert len(traces) == 1  # the index is traced: dynamic_update_slice, not a Python slice


# ---------------------------------------------------------------------------------------------
# Gradients and compilation
# ---------------------------------------------------------------------------------------------


def test_gradient_matches_central_finite_differences_float64(config, params):
    tokens, mask, pos = left_padded([random_tokens(16, (5,), 512), random_tokens(17, (6,), 512)], 6)
    w = np.random.default_rng(18).normal(size=(2, 6, config.vocab_size))
    p = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), params)  # NumPy float64 leaves
    with jax.enable_x64(True):

        def f(p):
            return jnp.sum(forward(p, tokens, config, positions=pos, attention_mask=mask) * w)

        # One compiled program serves both sides: its value at shifted params gives the finite
        # differences, its gradient at p the analytic directional derivative.
        value_and_grad = jax.jit(jax.value_and_grad(f))
        grad = [np.asarray(g) for g in jax.tree_util.tree_leaves(value_and_grad(p)[1])]
        rng = np.random.default_rng(19)
        for _ in range(3):
            u = [rng.normal(size=x.shape) for x in jax.tree_util.tree_leaves(p)]
            norm = np.sqrt(sum(np.sum(d * d) for d in u))
            u = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(p), [d / norm for d in u])  # unit
            eps = 1e-4
            plus = jax.tree_util.tree_map(lambda a, d: a + eps * d, p, u)
            minus = jax.tree_util.tree_map(lambda a, d: a - eps * d, p, u)
            fd = (float(value_and_grad(plus)[0]) - float(value_and_grad(minus)[0])) / (2 * eps)
            analytic = sum(float(np.vdot(g, d)) for g, d in zip(grad, jax.tree_util.tree_leaves(u)))
            # float64 central differences along a unit direction: O(eps^2) = 1e-8 truncation and
            # O(1e-16 |f| / eps) rounding, both far below the 1e-6 relative asked here.
            np.testing.assert_allclose(analytic, fd, rtol=1e-6)


def test_jit_forward_compiles_once_per_shape(config, params):
    traces = []

    def counted(p, tokens, config):
        traces.append(tokens.shape)  # Python side effect: runs once per trace, never at run time
        return forward(p, tokens, config)

    f = jax.jit(counted, static_argnames="config")
    for seed in range(3):  # new batches, same shape and an equal (not identical) config
        f(params, random_tokens(seed, (2, 8), config.vocab_size), dataclasses.replace(config))
    assert traces == [(2, 8)]
    f(params, random_tokens(0, (2, 9), config.vocab_size), config)  # new shape => one new trace
    assert traces == [(2, 8), (2, 9)]


def test_last_token_index_handles_both_paddings_and_empty_rows():
    mask = jnp.asarray([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0], [1, 0, 1, 1, 0]], jnp.float32)
    assert np.asarray(model.last_token_index(mask)).tolist() == [2, 4, 0, 3]


def test_positions_from_mask_number_real_tokens_from_zero_whatever_the_padding():
    mask = jnp.asarray([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]], jnp.float32)
    assert np.asarray(model.positions_from_mask(mask)).tolist() == [[0, 1, 2, 2, 2], [0, 0, 0, 1, 2], [0] * 5]


def test_scalar_head_is_w_dot_h_plus_b_and_starts_at_zero(key):
    cfg = get_config("tiny", vocab_size=50)
    h = jax.random.normal(key, (2, 3, cfg.d_model))  # (B, T, D)
    head = model.init_scalar_head(cfg)
    assert np.all(np.asarray(model.scalar_head(head, h)) == 0.0)
    head = {"w": jnp.arange(cfg.d_model, dtype=jnp.float32), "b": jnp.float32(0.5)}
    expected = np.asarray(h) @ np.arange(cfg.d_model) + 0.5  # (B, T)
    np.testing.assert_allclose(np.asarray(model.scalar_head(head, h)), expected, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# How the model runs: mixed precision and activation checkpointing, each for what it is for
# ---------------------------------------------------------------------------------------------


def _dot_operand_types(config, params, tokens) -> list[str]:
    """The operand element types of every matmul in the lowered forward pass (StableHLO text)."""
    text = jax.jit(forward, static_argnames="config").lower(params, tokens, config).as_text()
    return [re.search(r"x(bf16|f32|f64)>", line).group(1) for line in text.splitlines() if "dot_general" in line]


def test_bf16_policy_runs_every_matmul_in_bf16_and_keeps_float32_where_it_must(config, params):
    c16 = dataclasses.replace(config, compute_dtype="bfloat16")
    tokens = random_tokens(11, (2, 16), config.vocab_size)
    assert set(_dot_operand_types(config, params, tokens)) == {"f32"}
    kinds = _dot_operand_types(c16, params, tokens)
    assert len(kinds) >= 6 and set(kinds) == {"bf16"}  # q, k, v, o, 3 MLP, 2 attention, head
    logits16, logits32 = fwd(params, tokens, c16), fwd(params, tokens, config)
    assert logits16.dtype == jnp.float32  # logits (and so log-softmax and loss) stay float32
    # bf16 keeps ~3 significant digits; these logits are O(0.1): 2e-2 absolute catches a broken
    # path (off by O(logits)) without failing on bf16's own rounding.
    np.testing.assert_allclose(logits16, logits32, atol=2e-2)


def test_bf16_policy_gradients_are_float32_master_gradients_close_to_float32(config, params):
    c16 = dataclasses.replace(config, compute_dtype="bfloat16")
    tokens = random_tokens(12, (4, 24), config.vocab_size)

    def nll(p, c):
        lp = jax.nn.log_softmax(forward(p, tokens[:, :-1], c), axis=-1)
        return -jnp.mean(jnp.take_along_axis(lp, tokens[:, 1:, None], axis=-1))

    grad = jax.jit(jax.value_and_grad(nll), static_argnums=1)
    (l32, g32), (l16, g16) = grad(params, config), grad(params, c16)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(g16))  # the optimizer sees float32
    assert abs(float(l16) - float(l32)) < 1e-2 * float(l32)
    a, b = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(g)]) for g in (g32, g16))
    # Direction and size of the step: bf16 rounding perturbs each entry by ~1%, not the whole.
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.99
    assert abs(np.linalg.norm(b) / np.linalg.norm(a) - 1) < 0.05


def test_remat_gives_the_same_gradient_with_a_fraction_of_the_activation_memory():
    grads, temp = {}, {}
    tokens = jnp.asarray(random_tokens(13, (4, 64), 512))
    for remat in (False, True):
        c = get_config("tiny", n_layers=4, remat=remat)
        p = init(c, jax.random.PRNGKey(0))

        def nll(p, c=c):
            lp = jax.nn.log_softmax(forward(p, tokens[:, :-1], c), axis=-1)
            return -jnp.mean(jnp.take_along_axis(lp, tokens[:, 1:, None], axis=-1))

        compiled = jax.jit(jax.grad(nll)).lower(p).compile()
        grads[remat], temp[remat] = compiled(p), compiled.memory_analysis().temp_size_in_bytes
    for a, b in zip(jax.tree.leaves(grads[False]), jax.tree.leaves(grads[True])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # the same math, recomputed
    # Without remat the backward pass keeps every block's activations (L = 4 of them); with it,
    # one block's at a time plus the block inputs. That halves XLA:CPU's plan here; XLA:GPU plans
    # its buffers differently and saved less on this tiny model (36.1 vs 43.5 MB on an H200, jax 0.11.2).
    assert temp[True] < temp[False] / 2, temp
