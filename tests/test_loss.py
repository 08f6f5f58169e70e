"""Tests for minift/loss.py: §3.1 log-probabilities and the §3.2 masked NLL.

Kinds: (a) against a naive float64 NumPy loop; (b) gradients against the closed form
(softmax − onehot)·m/N and, through the whole tiny model, against central finite differences in
float64; (c) invariants — zero gradient on the prompt, finite at huge logits, 0 for an all-masked
batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from minift import loss

B, T, V = 3, 7, 11


def make_inputs(seed: int = 0, scale: float = 3.0, lengths=(4, 2, 6)):
    """Random logits/targets and a mask that is 0 on a prompt prefix and on right padding."""
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((B, T, V))).astype(np.float32)
    targets = rng.integers(0, V, size=(B, T)).astype(np.int32)
    mask = np.zeros((B, T), np.float32)
    for b, n in enumerate(lengths):  # prompt of 1 position, then n response positions, then pads
        mask[b, 1 : 1 + n] = 1.0
    return logits, targets, mask


def reference_log_probs(logits, targets):
    """log softmax by an explicit loop in float64, the obviously-right version."""
    logits = np.asarray(logits, np.float64)
    out = np.zeros(targets.shape, np.float64)
    for b in range(targets.shape[0]):
        for t in range(targets.shape[1]):
            z = logits[b, t]
            m = z.max()
            out[b, t] = z[targets[b, t]] - (m + np.log(np.sum(np.exp(z - m))))
    return out


def reference_sft_loss(logits, targets, mask, reduction):
    lp = reference_log_probs(logits, targets)
    mask = np.asarray(mask, np.float64)
    if reduction == "token":
        return -np.sum(mask * lp) / np.sum(mask)
    means = [-np.sum(mask[b] * lp[b]) / np.sum(mask[b]) for b in range(lp.shape[0]) if mask[b].sum() > 0]
    return float(np.mean(means))


def test_token_log_probs_matches_loop_reference():
    logits, targets, _ = make_inputs()
    got = loss.token_log_probs(jnp.asarray(logits), jnp.asarray(targets))
    assert got.shape == (B, T)
    # float32 log_softmax of O(10) logits: ~1e-6 relative error; 1e-5 leaves a safety margin.
    np.testing.assert_allclose(got, reference_log_probs(logits, targets), rtol=1e-5, atol=1e-5)


def test_token_log_probs_stable_at_huge_logits():
    logits, targets, _ = make_inputs(scale=3.0)
    logits = logits * 1e4  # logits ~ ±3e4: exp() overflows float32, log(softmax) gives -inf or NaN
    got = loss.token_log_probs(jnp.asarray(logits), jnp.asarray(targets))
    grad = jax.grad(lambda z: jnp.sum(loss.token_log_probs(z, jnp.asarray(targets))))(jnp.asarray(logits))
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(grad))
    # values ~ -1e4: float32 keeps ~7 significant digits of the max-subtracted logits.
    np.testing.assert_allclose(got, reference_log_probs(logits, targets), rtol=1e-5, atol=1e-2)


def test_token_log_probs_promotes_half_precision_to_float32(x64):
    """bf16 logits (a GPU model's output) are scored in float32; float64 stays float64."""
    rng = np.random.default_rng(5)
    logits = jnp.asarray(4.0 * rng.standard_normal((2, 5, 512)), jnp.bfloat16)  # (B, T, V) a real-size vocab
    targets = jnp.asarray(rng.integers(0, 512, size=(2, 5)), jnp.int32)
    got = loss.token_log_probs(logits, targets)
    assert got.dtype == jnp.float32
    # The reference sees the same bf16 values, upcast exactly: only the arithmetic's precision differs.
    # float32 arithmetic: ~1e-6; bf16 arithmetic (8 bits of mantissa) is off by ~0.01-0.1 nats here.
    np.testing.assert_allclose(got, reference_log_probs(np.asarray(logits.astype(jnp.float32)), np.asarray(targets)),
                               atol=1e-4)
    exact = jnp.asarray(rng.standard_normal((2, 5, 7)), jnp.float64)  # (B, T, V)
    assert loss.token_log_probs(exact, targets % 7).dtype == jnp.float64


def test_sequence_log_prob_is_log_of_product_of_probabilities():
    logits, targets, mask = make_inputs()
    got = loss.sequence_log_prob(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask))
    assert got.shape == (B,)
    p = np.exp(reference_log_probs(logits, targets))
    # log of the product of P(x_t | x_<t) over the masked positions (§3.1), in float64.
    want = np.log(np.prod(np.where(mask > 0, p, 1.0), axis=-1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduction", ["token", "sequence"])
def test_sft_loss_matches_loop_reference(reduction):
    logits, targets, mask = make_inputs()
    got = loss.sft_loss(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), reduction)
    # float32 sums of ~12 terms of size ~5: relative error ~1e-6.
    np.testing.assert_allclose(got, reference_sft_loss(logits, targets, mask, reduction), rtol=1e-5)


def test_reductions_differ_for_unequal_lengths_and_agree_for_equal():
    logits, targets, mask = make_inputs(lengths=(1, 2, 6))
    args = jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask)
    tok, seq = loss.sft_loss(*args, reduction="token"), loss.sft_loss(*args, reduction="sequence")
    # With lengths 1, 2, 6 the single token of row 0 weighs 1/3 in "sequence" but 1/9 in "token".
    assert abs(float(tok) - float(seq)) > 1e-2
    logits, targets, mask = make_inputs(lengths=(3, 3, 3))
    args = jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask)
    tok, seq = loss.sft_loss(*args, reduction="token"), loss.sft_loss(*args, reduction="sequence")
    # Equal lengths: mean of equal-size means == overall mean, up to float32 rounding.
    np.testing.assert_allclose(tok, seq, rtol=1e-6)


@pytest.mark.parametrize("reduction", ["token", "sequence"])
def test_stable_at_huge_logits(reduction):
    logits, targets, mask = make_inputs(scale=3.0)
    logits = logits * 1e4  # logits ~ ±3e4: exp() overflows float32, log(softmax) would give -inf
    got = loss.sft_loss(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), reduction)
    grad = jax.grad(loss.sft_loss)(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), reduction)
    assert np.isfinite(float(got)) and np.all(np.isfinite(grad))
    # The loss is ~1e4 here; float32 keeps ~7 digits of the max-subtracted logits, so 1e-5 relative.
    np.testing.assert_allclose(got, reference_sft_loss(logits, targets, mask, reduction), rtol=1e-5)


def test_sequence_reduction_averages_over_the_rows_that_have_a_response():
    """A row whose response was truncated away (mask all 0) is not an example: it must not count in B."""
    logits, targets, mask = make_inputs(lengths=(4, 0, 6))
    args = jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask)
    value, grad = jax.value_and_grad(loss.sft_loss)(*args, "sequence")
    lp = reference_log_probs(logits, targets)
    want = np.mean([-lp[0, 1:5].mean(), -lp[2, 1:7].mean()])  # rows 0 and 2: prompt at 0, then 4 and 6 tokens
    np.testing.assert_allclose(float(value), want, rtol=1e-5)  # dividing by B = 3 would give 2/3 of it
    assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[1] == 0.0)  # the empty row: no NaN, no gradient


@pytest.mark.parametrize("reduction", ["token", "sequence"])
def test_all_masked_batch_gives_zero_loss_and_zero_finite_grads(reduction):
    logits, targets, _ = make_inputs()
    mask = jnp.zeros((B, T), jnp.float32)
    value, grad = jax.value_and_grad(loss.sft_loss)(jnp.asarray(logits), jnp.asarray(targets), mask, reduction)
    assert float(value) == 0.0
    assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad) == 0.0)


def test_gradient_matches_closed_form():
    """dL/dz_{b,t} = (softmax(z_{b,t}) - onehot(x_{b,t})) * m_{b,t} / N  (token reduction)."""
    logits, targets, mask = make_inputs()
    grad = jax.grad(loss.sft_loss)(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask))
    z = logits.astype(np.float64)
    softmax = np.exp(z - z.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    onehot = np.eye(V)[targets]
    want = (softmax - onehot) * mask[..., None] / mask.sum()
    # Entries are ≤ 1/N ≈ 0.08; float32 softmax is accurate to ~1e-7 absolute.
    np.testing.assert_allclose(grad, want, atol=1e-6)


@pytest.mark.parametrize("reduction", ["token", "sequence"])
def test_prompt_positions_get_exactly_zero_gradient(reduction):
    """The article's point (§3.2): prompt terms are multiplied by 0, so they send no gradient."""
    logits, targets, mask = make_inputs()
    grad = np.asarray(jax.grad(loss.sft_loss)(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), reduction))
    assert np.all(grad[mask == 0] == 0.0)  # exact: 0 * finite = 0, no tolerance
    assert np.all(np.abs(grad[mask == 1]).sum(-1) > 0)  # and the response positions do get some
    # Changing a prompt target does not change the loss at all.
    other = targets.copy()
    other[mask == 0] = (other[mask == 0] + 1) % V
    a = loss.sft_loss(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), reduction)
    b = loss.sft_loss(jnp.asarray(logits), jnp.asarray(other), jnp.asarray(mask), reduction)
    assert float(a) == float(b)


def test_lm_loss_is_the_unmasked_special_case():
    logits, targets, mask = make_inputs()
    args = jnp.asarray(logits), jnp.asarray(targets)
    lp = reference_log_probs(logits, targets)
    np.testing.assert_allclose(loss.lm_loss(*args), -lp.mean(), rtol=1e-5)
    masked = loss.lm_loss(*args, mask=jnp.asarray(mask))
    np.testing.assert_allclose(masked, loss.sft_loss(*args, jnp.asarray(mask)), rtol=0)  # same function


@pytest.mark.parametrize("reduction", ["token", "sequence"])
def test_nll_sum_and_count_adds_up_over_micro_batches(reduction):
    """Summing (total, count) over row groups and dividing once equals the full-batch loss."""
    logits, targets, mask = make_inputs(lengths=(1, 2, 6))
    parts = [loss.nll_sum_and_count(jnp.asarray(logits[s]), jnp.asarray(targets[s]), jnp.asarray(mask[s]), reduction)
             for s in (slice(0, 1), slice(1, 3))]
    total = sum(float(p[0]) for p in parts)
    count = sum(float(p[1]) for p in parts)
    full = loss.sft_loss(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), reduction)
    np.testing.assert_allclose(total / count, full, rtol=1e-6)  # same float32 sums, reordered
    # ...whereas the mean of the two micro-batch means is a different number.
    means = [float(p[0]) / float(p[1]) for p in parts]
    if reduction == "token":
        assert abs(np.mean(means) - float(full)) > 1e-2


def test_bad_reduction_and_shapes_raise():
    logits, targets, mask = make_inputs()
    with pytest.raises(ValueError, match="reduction"):
        loss.sft_loss(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), "mean")
    with pytest.raises(ValueError, match="targets"):
        loss.token_log_probs(jnp.asarray(logits), jnp.asarray(targets[:, :-1]))


def test_full_model_gradient_matches_finite_differences():
    """Through the whole tiny Transformer, in float64: <grad, d> vs central differences along d."""
    model = pytest.importorskip("minift.model")
    config_mod = pytest.importorskip("minift.config")
    config = config_mod.get_config("tiny")
    params32 = jax.jit(model.init_params, static_argnums=0)(config, jax.random.PRNGKey(0))
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, config.vocab_size, size=(2, 6)).astype(np.int32)
    targets = rng.integers(0, config.vocab_size, size=(2, 6)).astype(np.int32)
    mask = np.array([[0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1]], np.float64)
    with jax.enable_x64(True):  # local float64 (JAX 0.10: jax.enable_x64 is a context manager)
        params = jax.tree.map(lambda p: jnp.asarray(np.asarray(p), jnp.float64), params32)

        def f(p):
            return loss.sft_loss(model.forward(p, jnp.asarray(tokens), config), jnp.asarray(targets), jnp.asarray(mask))

        @jax.jit
        def f_along(p, d, step):  # f(theta + step * d)
            return f(jax.tree.map(lambda a, u: a + step * u, p, d))

        value, grad = jax.jit(jax.value_and_grad(f))(params)
        assert value.dtype == jnp.float64, "the model must keep float64 params in float64 for this check"
        eps = 1e-4
        leaves, treedef = jax.tree.flatten(params)
        for _ in range(3):
            d = [rng.standard_normal(x.shape) for x in leaves]
            norm = np.sqrt(sum(np.sum(u**2) for u in d))  # a unit direction: eps is the step length
            d = treedef.unflatten([jnp.asarray(u / norm, jnp.float64) for u in d])
            fd = (f_along(params, d, eps) - f_along(params, d, -eps)) / (2 * eps)
            directional = sum(jnp.vdot(g, u) for g, u in zip(jax.tree.leaves(grad), jax.tree.leaves(d)))
            # Central differences in float64 along a unit direction: truncation O(eps^2) ~ 1e-8 relative
            # and rounding ~1e-16/eps; measured agreement ~1e-8 relative for directional derivatives of
            # ~1e-3..1e-2, so rtol 1e-6 never flakes yet catches any wrong gradient term.
            np.testing.assert_allclose(directional, fd, rtol=1e-6, atol=1e-10)


# ============================================================================================
# Masked averages (the PPO losses average over real tokens with loss.masked_mean)
# ============================================================================================


def test_masked_mean_ignores_padding_even_if_it_is_nan():
    ragged = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0],
                       [0, 0, 1, 1, 1, 0]], dtype=np.float32)  # full, short, one, empty, starts late
    x = np.arange(30, dtype=np.float32).reshape(5, 6)
    x_padded = np.where(ragged > 0, x, np.nan).astype(np.float32)
    mask = jnp.asarray(ragged)
    expected = x[ragged > 0].mean()
    assert float(loss.masked_mean(jnp.asarray(x_padded), mask)) == pytest.approx(expected, rel=1e-6)
    per_row = np.asarray(loss.masked_mean(jnp.asarray(x_padded), mask, axis=1))
    want = [x[b][ragged[b] > 0].mean() if ragged[b].any() else 0.0 for b in range(5)]
    np.testing.assert_allclose(per_row, want, rtol=1e-6)  # float32 sums of < 10 small integers


def test_masked_mean_all_masked_is_zero_with_zero_grad():
    x = jnp.ones((2, 3))
    value, grad = jax.value_and_grad(loss.masked_mean)(x, jnp.zeros((2, 3)))
    assert float(value) == 0.0
    assert np.all(np.asarray(grad) == 0.0)


def test_masked_mean_rejects_mismatched_mask():
    with pytest.raises(ValueError, match="mask has shape"):
        loss.masked_mean(jnp.zeros((2, 3)), jnp.zeros((2, 4)))
