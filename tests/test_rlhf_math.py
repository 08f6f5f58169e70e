"""Tests for the pure math of §4 (minift/rlhf/reward.py, minift/rlhf/ppo.py).

Kinds: equations against float64 NumPy / plain-loop references; gradients against their closed
forms and finite differences; invariants (KL of a policy with itself is 0, k3 >= 0, padding never
changes a result, zero gradient in PPO's clipped region); Monte-Carlo checks of the KL estimators
against exact KLs of small categorical distributions, with tolerances in standard errors.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jax.test_util import check_grads

import minift.rlhf as rlhf
from minift.rlhf import ppo

# Hypothesis draws are derandomised (seeded by the test itself) so every run sees the same cases.
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)


@pytest.fixture
def x64():
    """float64 inside the test only (jax.enable_x64 is a context manager in JAX 0.10)."""
    with jax.enable_x64(True):
        yield


def f64(a) -> jax.Array:
    return jnp.asarray(np.asarray(a, dtype=np.float64))


def log_softmax_np(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# A ragged batch of response masks: full, short, length one, empty, and one that starts late (a
# mask over prompt + response where the prompt positions are 0).
RAGGED_MASK = np.array(
    [
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 1, 0],
    ],
    dtype=np.float64,
)


# ============================================================================================
# Bradley–Terry reward loss
# ============================================================================================


def test_bradley_terry_matches_float64_reference(x64):
    rng = np.random.default_rng(0)
    r_c, r_r = rng.normal(size=16) * 3, rng.normal(size=16) * 3
    expected = np.mean(np.logaddexp(0.0, -(r_c - r_r)))  # -log sigma(d) = log(1 + e^{-d})
    got = rlhf.bradley_terry_loss(f64(r_c), f64(r_r))
    # float64 on both sides, a handful of operations: agreement to ~1e-15 relative.
    np.testing.assert_allclose(float(got), expected, rtol=1e-12)


def test_bradley_terry_gradient_is_closed_form(x64):
    rng = np.random.default_rng(1)
    r_c, r_r = f64(rng.normal(size=8) * 2), f64(rng.normal(size=8) * 2)
    g_c, g_r = jax.grad(rlhf.bradley_terry_loss, argnums=(0, 1))(r_c, r_r)
    sigma = 1.0 / (1.0 + np.exp(-(np.asarray(r_c) - np.asarray(r_r))))
    B = 8
    np.testing.assert_allclose(np.asarray(g_c), -(1.0 - sigma) / B, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g_r), +(1.0 - sigma) / B, rtol=1e-12)
    # and against central finite differences (check_grads' float64 tolerance)
    check_grads(jax.jit(rlhf.bradley_terry_loss), (r_c, r_r), order=1, modes=["rev"])


def test_bradley_terry_stable_at_huge_margins():
    # float32 on purpose: sigma(-1e4) underflows to 0 there, and log(0) would give an infinite loss.
    r_c = jnp.array([1e4, -1e4, 0.0], jnp.float32)
    r_r = jnp.zeros(3, jnp.float32)
    loss = rlhf.bradley_terry_loss(r_c, r_r)
    # per pair: softplus(-1e4) = 0, softplus(1e4) = 1e4, softplus(0) = log 2
    expected = (0.0 + 1e4 + math.log(2.0)) / 3
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)  # float32 relative precision
    g_c = jax.grad(rlhf.bradley_terry_loss)(r_c, r_r)
    assert np.all(np.isfinite(np.asarray(g_c)))
    # -(1 - sigma(d)) / B: 0 for a confidently right pair, -1/B for a confidently wrong one.
    np.testing.assert_allclose(np.asarray(g_c), [0.0, -1.0 / 3, -0.5 / 3], atol=1e-7)


def test_bradley_terry_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="r_chosen and r_rejected"):
        rlhf.bradley_terry_loss(jnp.zeros((4, 1)), jnp.zeros((4, 1)))
    with pytest.raises(ValueError, match="same shape"):
        rlhf.bradley_terry_loss(jnp.zeros(4), jnp.zeros(3))


def test_preference_accuracy_counts_ties_as_half():
    r_c = jnp.array([2.0, 0.0, 1.0, -1.0])
    r_r = jnp.array([1.0, 1.0, 1.0, -2.0])  # right, wrong, tie, right
    assert float(rlhf.preference_accuracy(r_c, r_r)) == pytest.approx(2.5 / 4)
    assert float(rlhf.preference_accuracy(jnp.zeros(5), jnp.zeros(5))) == 0.5


# ============================================================================================
# KL estimators
# ============================================================================================


def _categorical_pair(seed: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """log p (policy) and log q (reference) over V = 6 tokens; ``scale`` sets how far apart they are."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=6)
    return log_softmax_np(base + scale * rng.normal(size=6)), log_softmax_np(base)


@pytest.mark.parametrize("kind", ["k1", "k3"])
def test_unbiased_estimators_match_exact_kl_monte_carlo(kind, x64):
    logp, logq = _categorical_pair(seed=2, scale=0.7)
    exact_kl = float(np.sum(np.exp(logp) * (logp - logq)))
    n = 200_000
    y = np.random.default_rng(3).choice(6, size=n, p=np.exp(logp))  # y ~ pi_theta
    samples = np.asarray(rlhf.kl_estimate(f64(logp[y])[None], f64(logq[y])[None], kind))[0]  # (n,)
    standard_error = samples.std(ddof=1) / math.sqrt(n)
    # An unbiased estimator's mean lands within 5 standard errors of the truth except with
    # probability ~6e-7; the seed is fixed, so this is deterministic anyway.
    assert abs(samples.mean() - exact_kl) < 5 * standard_error
    assert exact_kl > 10 * standard_error  # the check has power: the KL is not lost in the noise


def test_k2_is_biased_but_close_for_nearby_policies(x64):
    logp, logq = _categorical_pair(seed=4, scale=0.2)  # nearby: KL ~ 1e-2
    p = np.exp(logp)
    exact_kl = float(np.sum(p * (logp - logq)))
    exact_k2_mean = float(np.sum(p * 0.5 * (logq - logp) ** 2))  # what k2 estimates, exactly
    n = 200_000
    y = np.random.default_rng(5).choice(6, size=n, p=p)
    samples = np.asarray(rlhf.kl_estimate(f64(logp[y])[None], f64(logq[y])[None], "k2"))[0]
    standard_error = samples.std(ddof=1) / math.sqrt(n)
    assert abs(samples.mean() - exact_k2_mean) < 5 * standard_error  # MC mean = E[k2] (5 SE)
    bias = exact_k2_mean - exact_kl
    assert bias != 0.0  # biased ...
    assert abs(bias) < 0.05 * exact_kl  # ... but within 5% of the KL: they agree to second order
    # far apart, the bias is no longer small
    logp_far, logq_far = _categorical_pair(seed=4, scale=2.0)
    p_far = np.exp(logp_far)
    kl_far = np.sum(p_far * (logp_far - logq_far))
    k2_far = np.sum(p_far * 0.5 * (logq_far - logp_far) ** 2)
    assert abs(k2_far - kl_far) > 0.05 * kl_far


logits_v8 = hnp.arrays(np.float64, (8,), elements=st.floats(-20, 20, allow_nan=False, allow_infinity=False))


@PROPERTY
@given(logits_p=logits_v8, logits_q=logits_v8)
def test_k3_is_never_negative(logits_p, logits_q):
    # float32, every token of the vocabulary as a "sample": k3 = (r - 1) - log r >= 0 because
    # log r <= r - 1, and expm1 keeps that true in floating point (no tolerance needed).
    logp = jnp.asarray(log_softmax_np(logits_p).astype(np.float32))[None]  # (1, V)
    logq = jnp.asarray(log_softmax_np(logits_q).astype(np.float32))[None]
    assert np.all(np.asarray(rlhf.kl_estimate(logp, logq, "k3")) >= 0.0)


@PROPERTY
@given(logits_p=logits_v8, logits_q=logits_v8)
def test_k1_and_k3_are_exactly_unbiased(logits_p, logits_q):
    # The expectation taken exactly (sum over the vocabulary weighted by p), no sampling: it must
    # equal KL(p || q). float64; rtol 1e-9 allows the cancellation in sum p (r - 1) = 0.
    with jax.enable_x64(True):
        logp, logq = log_softmax_np(logits_p), log_softmax_np(logits_q)
        p = np.exp(logp)
        exact = float(np.sum(p * (logp - logq)))
        for kind in ("k1", "k3"):
            k = np.asarray(rlhf.kl_estimate(f64(logp)[None], f64(logq)[None], kind))[0]
            np.testing.assert_allclose(np.sum(p * k), exact, rtol=1e-9, atol=1e-12)


def test_k1_batch_mean_can_be_negative():
    """The 'negative KL' users report: a batch of k1 values from two close policies, mean < 0.

    Nothing is wrong: k1 is unbiased with large variance, so a small batch's mean has the wrong
    sign often when the true KL is small. k3 on the same tokens is never negative.
    """
    logp, logq = _categorical_pair(seed=2, scale=0.3)
    exact_kl = float(np.sum(np.exp(logp) * (logp - logq)))
    y = np.random.default_rng(0).choice(6, size=(2, 8), p=np.exp(logp))  # (B, T) = (2, 8) tokens
    logp_bt = jnp.asarray(logp[y].astype(np.float32))  # (B, T)
    logq_bt = jnp.asarray(logq[y].astype(np.float32))
    k1_mean = float(jnp.mean(rlhf.kl_estimate(logp_bt, logq_bt, "k1")))
    k3_mean = float(jnp.mean(rlhf.kl_estimate(logp_bt, logq_bt, "k3")))
    assert exact_kl > 0.0  # KL(p || q) = 0.016 nats
    assert k1_mean < 0.0  # this batch reports about -0.09 nats
    assert k3_mean >= 0.0
    # Not a freak batch: over 1000 such batches of 16 tokens, about a third (34.7% with this seed)
    # have a negative k1 mean, and none a negative k3 mean.
    y = np.random.default_rng(1).choice(6, size=(1000, 16), p=np.exp(logp))  # (batches, tokens)
    logp_y, logq_y = jnp.asarray(logp[y], jnp.float32), jnp.asarray(logq[y], jnp.float32)
    k1 = np.asarray(rlhf.kl_estimate(logp_y, logq_y, "k1")).mean(axis=1)
    k3 = np.asarray(rlhf.kl_estimate(logp_y, logq_y, "k3")).mean(axis=1)
    assert 0.25 < np.mean(k1 < 0) < 0.45
    assert np.all(k3 >= 0)


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_of_policy_with_itself_is_exactly_zero(kind):
    logits = np.random.default_rng(8).normal(size=(3, 5, 7)) * 3  # (B, T, V)
    logp = jnp.asarray(log_softmax_np(logits)[..., 0].astype(np.float32))  # (B, T) one token each
    assert np.all(np.asarray(rlhf.kl_estimate(logp, logp, kind)) == 0.0)


def test_kl_estimate_rejects_unknown_kind():
    with pytest.raises(ValueError, match="k1, k2, k3"):
        rlhf.kl_estimate(jnp.zeros((1, 2)), jnp.zeros((1, 2)), kind="k4")
    assert ppo.KL_KINDS == ("k1", "k2", "k3")


# ============================================================================================
# Masked averages
# ============================================================================================


def test_masked_mean_ignores_padding_even_if_it_is_nan():
    x = np.arange(30, dtype=np.float32).reshape(5, 6)
    x_padded = np.where(RAGGED_MASK > 0, x, np.nan).astype(np.float32)
    mask = jnp.asarray(RAGGED_MASK.astype(np.float32))
    expected = x[RAGGED_MASK > 0].mean()
    assert float(rlhf.masked_mean(jnp.asarray(x_padded), mask)) == pytest.approx(expected, rel=1e-6)
    per_row = np.asarray(rlhf.masked_mean(jnp.asarray(x_padded), mask, axis=1))
    want = [x[b][RAGGED_MASK[b] > 0].mean() if RAGGED_MASK[b].any() else 0.0 for b in range(5)]
    np.testing.assert_allclose(per_row, want, rtol=1e-6)  # float32 sums of < 10 small integers


def test_masked_mean_all_masked_is_zero_with_zero_grad():
    x = jnp.ones((2, 3))
    value, grad = jax.value_and_grad(rlhf.masked_mean)(x, jnp.zeros((2, 3)))
    assert float(value) == 0.0
    assert np.all(np.asarray(grad) == 0.0)


def test_masked_mean_rejects_mismatched_mask():
    with pytest.raises(ValueError, match="mask has shape"):
        rlhf.masked_mean(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


def test_masked_whiten_uses_real_tokens_only(x64):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(5, 6)) * 4 + 3
    white = np.asarray(rlhf.masked_whiten(f64(x), f64(RAGGED_MASK)))
    real = white[RAGGED_MASK > 0]
    np.testing.assert_allclose(real.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(real.var(), 1.0, rtol=1e-6)  # eps = 1e-8 in the denominator
    assert np.all(white[RAGGED_MASK == 0] == 0.0)
    # Padding changes nothing: garbage in the padded slots, and extra all-padding columns.
    garbage = np.where(RAGGED_MASK > 0, x, 1e6)
    wide_x = np.concatenate([garbage, np.full((5, 3), -1e6)], axis=1)  # (B, T + 3)
    wide_m = np.concatenate([RAGGED_MASK, np.zeros((5, 3))], axis=1)
    white_wide = np.asarray(rlhf.masked_whiten(f64(wide_x), f64(wide_m)))
    np.testing.assert_allclose(white_wide[:, :6], white, rtol=1e-12, atol=1e-12)


def test_masked_whiten_all_masked_is_zero():
    out = rlhf.masked_whiten(jnp.full((2, 3), 5.0), jnp.zeros((2, 3)))
    assert np.all(np.asarray(out) == 0.0)


# ============================================================================================
# Per-token rewards, the objective, KL as a loss term
# ============================================================================================


def test_per_token_rewards_on_ragged_masks(x64):
    rng = np.random.default_rng(10)
    score = rng.normal(size=5)
    kl = rng.normal(size=(5, 6))
    beta = 0.1
    got = np.asarray(rlhf.per_token_rewards(f64(score), f64(kl), f64(RAGGED_MASK), beta))
    want = np.zeros((5, 6))
    for b in range(5):
        real = np.flatnonzero(RAGGED_MASK[b])
        for t in real:
            want[b, t] = -beta * kl[b, t]
        if len(real):
            want[b, real[-1]] += score[b]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # The return of each non-empty sequence is R(x, y) - beta * sum_t KL_t.
    has_tokens = RAGGED_MASK.any(axis=1)
    np.testing.assert_allclose(
        got.sum(axis=1)[has_tokens],
        (score - beta * (kl * RAGGED_MASK).sum(axis=1))[has_tokens],
        rtol=1e-12,
    )


def test_per_token_rewards_carry_no_gradient_and_reject_negative_beta():
    score, kl, mask = jnp.ones(2), jnp.ones((2, 3)), jnp.ones((2, 3))
    g = jax.grad(lambda k: jnp.sum(rlhf.per_token_rewards(score, k, mask, 0.5)))(kl)
    assert np.all(np.asarray(g) == 0.0)  # rewards are data to the policy gradient
    with pytest.raises(ValueError, match="beta = -0.1 is negative"):
        rlhf.per_token_rewards(score, kl, mask, -0.1)
    # a traced beta (e.g. from the adaptive controller, inside jit) is accepted
    out = jax.jit(rlhf.per_token_rewards)(score, kl, mask, jnp.float32(0.5))
    np.testing.assert_allclose(np.asarray(out), [[-0.5, -0.5, 0.5]] * 2)


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_rlhf_objective_matches_reference(kind, x64):
    rng = np.random.default_rng(11)
    score = rng.normal(size=5)
    logp, logp_ref = -rng.random((5, 6)) * 3, -rng.random((5, 6)) * 3
    beta = 0.05
    log_r = logp_ref - logp
    k = {"k1": -log_r, "k2": 0.5 * log_r**2, "k3": np.expm1(log_r) - log_r}[kind]
    want = score.mean() - beta * (k * RAGGED_MASK).sum(axis=1).mean()
    got = rlhf.rlhf_objective(f64(score), f64(logp), f64(logp_ref), f64(RAGGED_MASK), beta, kind)
    np.testing.assert_allclose(float(got), want, rtol=1e-12)
    # pi_theta = pi_ref: the objective is the mean reward exactly.
    same = rlhf.rlhf_objective(f64(score), f64(logp), f64(logp), f64(RAGGED_MASK), beta, kind)
    assert float(same) == pytest.approx(score.mean(), rel=1e-15)


def test_kl_loss_term_value_and_gradient(x64):
    rng = np.random.default_rng(12)
    logp, logp_ref = -rng.random((5, 6)) * 3, -rng.random((5, 6)) * 3
    beta = 0.04
    n = RAGGED_MASK.sum()
    r = np.exp(logp_ref - logp)
    want = beta * ((r - 1 - np.log(r)) * RAGGED_MASK).sum() / n
    loss_fn = lambda lp, lr: rlhf.kl_loss_term(lp, lr, f64(RAGGED_MASK), beta)  # noqa: E731
    value, (g_logp, g_ref) = jax.value_and_grad(loss_fn, argnums=(0, 1))(f64(logp), f64(logp_ref))
    np.testing.assert_allclose(float(value), want, rtol=1e-12)
    # d k3 / d logp = 1 - r (the gradient flows through the policy) ...
    np.testing.assert_allclose(np.asarray(g_logp), beta * (1 - r) * RAGGED_MASK / n, rtol=1e-10, atol=1e-15)
    assert np.all(np.asarray(g_ref) == 0.0)  # ... and never into the frozen reference


def test_k3_loss_gradient_is_gradient_of_reverse_kl(x64):
    """E_{y ~ pi}[grad k3(y)] = grad KL(pi_ref || pi_theta) — the subtlety in kl_loss_term's docstring.

    Computed exactly over a vocabulary of 7 (sampling weights p held fixed, as a sampled batch is).
    """
    rng = np.random.default_rng(13)
    theta, logq = f64(rng.normal(size=7)), f64(log_softmax_np(rng.normal(size=7)))
    ones = jnp.ones((1, 7))

    def expected_k3(th):
        logp = jax.nn.log_softmax(th)
        p = jax.lax.stop_gradient(jnp.exp(logp))[None]  # (1, V) sampling weights, not differentiated
        return jnp.sum(p * rlhf.kl_estimate(logp[None], logq[None], "k3") * ones)

    def reverse_kl(th):
        return jnp.sum(jnp.exp(logq) * (logq - jax.nn.log_softmax(th)))

    grad_k3, grad_kl = jax.jit(jax.grad(expected_k3))(theta), jax.jit(jax.grad(reverse_kl))(theta)
    np.testing.assert_allclose(grad_k3, grad_kl, atol=1e-12)  # float64, 7 terms


# ============================================================================================
# GAE
# ============================================================================================


def gae_loop(rewards, values, mask, gamma, lam):
    """The textbook backward loop on each response alone (float64): bootstrap 0 after its end."""
    adv = np.zeros_like(rewards)
    for b in range(rewards.shape[0]):
        real = np.flatnonzero(mask[b])
        if len(real) == 0:
            continue
        last = real[-1]
        running = 0.0
        for t in range(last, real[0] - 1, -1):
            next_value = values[b, t + 1] if t < last else 0.0
            delta = rewards[b, t] + gamma * next_value - values[b, t]
            running = delta + gamma * lam * running
            adv[b, t] = running
    returns = np.where(mask > 0, adv + values, 0.0)
    return adv, returns


@pytest.mark.parametrize("gamma, lam", [(1.0, 0.95), (0.99, 0.9), (1.0, 1.0), (0.9, 0.0)])
def test_gae_matches_loop_on_ragged_masks(gamma, lam, x64):
    rng = np.random.default_rng(14)
    rewards, values = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    want_adv, want_ret = gae_loop(rewards, values, RAGGED_MASK, gamma, lam)
    # garbage in the padding must not leak into the real tokens
    rewards_g = np.where(RAGGED_MASK > 0, rewards, 1e3)
    values_g = np.where(RAGGED_MASK > 0, values, -1e3)
    adv, ret = rlhf.gae(f64(rewards_g), f64(values_g), f64(RAGGED_MASK), gamma, lam)
    # float64, T = 6 multiply-adds: agreement to ~1e-15; 1e-12 leaves room.
    np.testing.assert_allclose(np.asarray(adv), want_adv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ret), want_ret, rtol=1e-12, atol=1e-12)


def test_gae_lambda_one_is_reward_to_go_minus_value(x64):
    rng = np.random.default_rng(15)
    rewards, values = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    adv, ret = rlhf.gae(f64(rewards), f64(values), f64(RAGGED_MASK), 1.0, 1.0)
    reward_to_go = np.flip(np.cumsum(np.flip(rewards * RAGGED_MASK, 1), 1), 1) * RAGGED_MASK
    np.testing.assert_allclose(np.asarray(ret), reward_to_go, atol=1e-12)
    np.testing.assert_allclose(np.asarray(adv), (reward_to_go - values) * RAGGED_MASK, atol=1e-12)


# ============================================================================================
# PPO losses
# ============================================================================================


def ppo_reference(logp_new, logp_old, adv, mask, eps):
    ratio = np.exp(logp_new - logp_old)
    unclipped, clipped = ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv
    n = mask.sum()
    loss = -(np.minimum(unclipped, clipped) * mask).sum() / n
    clip_frac = ((clipped < unclipped) * mask).sum() / n
    approx_kl = (((ratio - 1) - np.log(ratio)) * mask).sum() / n
    return loss, clip_frac, approx_kl, (ratio * mask).sum() / n


def test_ppo_clip_loss_matches_reference(x64):
    rng = np.random.default_rng(16)
    logp_old = -rng.random((5, 6)) * 3
    logp_new = logp_old + rng.normal(size=(5, 6)) * 0.3  # ratios on both sides of [0.8, 1.2]
    adv = rng.normal(size=(5, 6))
    loss, stats = rlhf.ppo_clip_loss(f64(logp_new), f64(logp_old), f64(adv), f64(RAGGED_MASK), 0.2)
    want = ppo_reference(logp_new, logp_old, adv, RAGGED_MASK, 0.2)
    np.testing.assert_allclose(float(loss), want[0], rtol=1e-12)
    np.testing.assert_allclose(float(stats.clip_frac), want[1], rtol=1e-12)
    np.testing.assert_allclose(float(stats.approx_kl), want[2], rtol=1e-12)
    np.testing.assert_allclose(float(stats.ratio_mean), want[3], rtol=1e-12)
    assert 0.0 < float(stats.clip_frac) < 1.0  # the case exercises both branches


def test_ppo_at_ratio_one_loss_is_minus_mean_advantage_but_gradient_is_not_zero(x64):
    rng = np.random.default_rng(17)
    logp = f64(-rng.random((5, 6)) * 3)
    mask = f64(RAGGED_MASK)
    adv = rlhf.masked_whiten(f64(rng.normal(size=(5, 6))), mask)
    loss_fn = lambda lp: rlhf.ppo_clip_loss(lp, logp, adv, mask)[0]  # noqa: E731
    loss, grad = jax.value_and_grad(loss_fn)(logp)
    assert abs(float(loss)) < 1e-12  # -mean(A) = 0 after whitening
    n = RAGGED_MASK.sum()
    np.testing.assert_allclose(np.asarray(grad), -np.asarray(adv) * RAGGED_MASK / n, atol=1e-15)
    assert np.abs(np.asarray(grad)).max() > 0.01  # the policy gradient is very much there
    _, stats = rlhf.ppo_clip_loss(logp, logp, adv, mask)
    assert float(stats.clip_frac) == 0.0 and float(stats.approx_kl) == 0.0
    assert float(stats.ratio_mean) == 1.0


def test_ppo_gradient_is_zero_exactly_in_the_clipped_region(x64):
    eps = 0.2
    #                    clipped, A>0   clipped, A<0   unclipped: too low, A>0   too high, A<0   inside
    ratio = np.array([[1.5, 0.5, 0.5, 1.5, 1.1]])
    adv = np.array([[1.0, -1.0, 1.0, -1.0, 2.0]])
    logp_old = np.full((1, 5), -1.0)
    logp_new = logp_old + np.log(ratio)
    mask = np.ones((1, 5))
    loss_fn = lambda lp: rlhf.ppo_clip_loss(lp, f64(logp_old), f64(adv), f64(mask), eps)[0]  # noqa: E731
    grad = np.asarray(jax.grad(loss_fn)(f64(logp_new)))[0]
    assert grad[0] == 0.0 and grad[1] == 0.0  # exactly: the min picked the constant clipped branch
    # unclipped: d(-rho A / N)/d logp_new = -rho A / N
    np.testing.assert_allclose(grad[2:], -(ratio * adv)[0, 2:] / 5, rtol=1e-12)
    assert np.all(grad[2:] != 0.0)
    _, stats = rlhf.ppo_clip_loss(f64(logp_new), f64(logp_old), f64(adv), f64(mask), eps)
    assert float(stats.clip_frac) == pytest.approx(2 / 5)


def test_ppo_padding_gets_no_gradient_and_changes_nothing():
    rng = np.random.default_rng(18)
    logp_old = (-rng.random((5, 6)) * 3).astype(np.float32)
    logp_new = logp_old + (rng.normal(size=(5, 6)) * 0.3).astype(np.float32)
    adv = rng.normal(size=(5, 6)).astype(np.float32)
    mask = jnp.asarray(RAGGED_MASK.astype(np.float32))
    garbage_adv = jnp.asarray(np.where(RAGGED_MASK > 0, adv, 1e30).astype(np.float32))
    loss_fn = lambda lp, a: rlhf.ppo_clip_loss(lp, jnp.asarray(logp_old), a, mask)[0]  # noqa: E731
    clean, grad = jax.value_and_grad(loss_fn)(jnp.asarray(logp_new), jnp.asarray(adv))
    dirty = loss_fn(jnp.asarray(logp_new), garbage_adv)
    assert float(clean) == float(dirty)
    assert np.all(np.asarray(grad)[RAGGED_MASK == 0] == 0.0)


def test_ppo_gradient_matches_finite_differences(x64):
    rng = np.random.default_rng(19)
    logp_old = f64(-rng.random((2, 4)))
    adv = f64(rng.normal(size=(2, 4)))
    logp_new = logp_old + f64(rng.choice([-0.5, -0.05, 0.05, 0.5], size=(2, 4)))  # away from kinks
    fn = lambda lp: rlhf.ppo_clip_loss(lp, logp_old, adv, jnp.ones((2, 4)))[0]  # noqa: E731
    check_grads(jax.jit(fn), (logp_new,), order=1, modes=["rev"])  # jit: compile once, not per probe


def test_value_loss_matches_reference_and_clips(x64):
    rng = np.random.default_rng(20)
    v_old = rng.normal(size=(5, 6))
    v_new = v_old + rng.normal(size=(5, 6)) * 0.4
    ret = rng.normal(size=(5, 6))
    eps = 0.2
    v_clip = v_old + np.clip(v_new - v_old, -eps, eps)
    want = 0.5 * (np.maximum((v_new - ret) ** 2, (v_clip - ret) ** 2) * RAGGED_MASK).sum() / RAGGED_MASK.sum()
    got = rlhf.value_loss(f64(v_new), f64(v_old), f64(ret), f64(RAGGED_MASK), eps)
    np.testing.assert_allclose(float(got), want, rtol=1e-12)
    # One token, moved past the clip towards its target: the clipped (larger) error wins, and as
    # that branch is constant in v_new, the gradient is exactly 0.
    one = lambda v: rlhf.value_loss(v, f64([[0.0]]), f64([[1.0]]), f64([[1.0]]), eps)  # noqa: E731
    value, grad = jax.value_and_grad(one)(f64([[0.5]]))
    assert float(value) == pytest.approx(0.5 * (0.2 - 1.0) ** 2)
    assert float(grad[0, 0]) == 0.0
    # Unclipped (inside eps): plain half squared error, gradient v - R.
    value, grad = jax.value_and_grad(one)(f64([[0.1]]))
    assert float(value) == pytest.approx(0.5 * 0.9**2)
    assert float(grad[0, 0]) == pytest.approx(0.1 - 1.0)


def test_entropy_matches_reference_and_is_stable(x64):
    rng = np.random.default_rng(21)
    logits = rng.normal(size=(5, 6, 11)) * 3
    logp = log_softmax_np(logits)
    per_token = -(np.exp(logp) * logp).sum(-1)
    want = (per_token * RAGGED_MASK).sum() / RAGGED_MASK.sum()
    np.testing.assert_allclose(float(rlhf.entropy(f64(logits), f64(RAGGED_MASK))), want, rtol=1e-12)
    # uniform -> log V; near one-hot (logits x 1000) -> ~0; a banned token (-inf logit) -> finite
    assert float(rlhf.entropy(jnp.zeros((1, 2, 11)), jnp.ones((1, 2)))) == pytest.approx(math.log(11))
    sharp = rlhf.entropy(jnp.asarray((logits * 1000).astype(np.float32)), jnp.ones((5, 6), jnp.float32))
    assert np.isfinite(float(sharp)) and float(sharp) < 1e-3
    banned = jnp.array([[[0.0, 0.0, -jnp.inf]]], jnp.float32)
    assert float(rlhf.entropy(banned, jnp.ones((1, 1), jnp.float32))) == pytest.approx(math.log(2), rel=1e-6)


# ============================================================================================
# Adaptive beta
# ============================================================================================


def test_adaptive_kl_update_numbers():
    # Ziegler et al.'s horizon 10000, 256 samples per batch, target 6 nats.
    kw = dict(n_steps=256, target=6.0, horizon=10_000)
    # KL twice the target: error 1 clipped to 0.2 -> beta * (1 + 0.2 * 0.0256)
    assert float(rlhf.adaptive_kl_update(0.1, 12.0, **kw)) == pytest.approx(0.1 * 1.00512, rel=1e-6)
    # KL 10% above: error 0.1, not clipped
    assert float(rlhf.adaptive_kl_update(0.1, 6.6, **kw)) == pytest.approx(0.1 * (1 + 0.1 * 0.0256), rel=1e-6)
    # KL half the target: error -0.5 clipped to -0.2
    assert float(rlhf.adaptive_kl_update(0.1, 3.0, **kw)) == pytest.approx(0.1 * (1 - 0.2 * 0.0256), rel=1e-6)
    assert float(rlhf.adaptive_kl_update(0.1, 6.0, **kw)) == pytest.approx(0.1, rel=1e-7)


@PROPERTY
@given(beta=st.floats(1e-3, 1.0), kl=st.floats(0.0, 50.0), n_steps=st.integers(1, 512))
def test_adaptive_beta_moves_towards_target(beta, kl, n_steps):
    target, horizon = 6.0, 10_000
    new = float(rlhf.adaptive_kl_update(beta, kl, n_steps, target, horizon))
    if kl > target * (1 + 1e-3):
        assert new > beta  # too far from pi_ref: pull harder
    elif kl < target * (1 - 1e-3):
        assert new < beta  # closer than needed: let the reward act
    # one update changes beta by at most 20% * n_steps / horizon (float32 slack 1e-6)
    assert abs(new / beta - 1) <= 0.2 * n_steps / horizon + 1e-6


def test_kl_controllers():
    ctl = rlhf.AdaptiveKL(beta=0.1, target=6.0, horizon=10_000)
    up = ctl.update(kl=12.0, n_steps=256)
    assert float(up.beta) == pytest.approx(0.100512, rel=1e-6)
    assert (up.target, up.horizon) == (6.0, 10_000)
    fixed = rlhf.FixedKL(beta=0.05)
    assert fixed.update(kl=100.0, n_steps=256) == fixed
    with pytest.raises(ValueError, match="must both be > 0"):
        rlhf.adaptive_kl_update(0.1, 1.0, 1, target=0.0, horizon=10)
