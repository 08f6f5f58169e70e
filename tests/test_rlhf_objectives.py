"""Tests for the §4 objective (minift/rlhf/objectives.py): Bradley–Terry, the KL estimators, rewards.

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
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jax.test_util import check_grads
from references import PROPERTY, RAGGED_MASK, f64, log_softmax_np

import minift.rlhf as rlhf

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
def test_kl_estimators_are_their_formulas_away_from_the_reference(kind, x64):
    """Each estimator's value where pi_theta != pi_ref, log r = log pi_ref - log pi_theta (Schulman 2020)."""
    rng = np.random.default_rng(9)
    logp, logp_ref = -rng.random((3, 5)) * 4, -rng.random((3, 5)) * 4  # (B, T): log r on both sides of 0
    log_r = logp_ref - logp
    want = {"k1": -log_r, "k2": 0.5 * log_r**2, "k3": (np.exp(log_r) - 1) - log_r}[kind]
    got = np.asarray(rlhf.kl_estimate(f64(logp), f64(logp_ref), kind))
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)  # float64, a few operations
    assert np.any(log_r > 0.5) and np.any(log_r < -0.5)  # the sign of log r matters in this case


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_of_policy_with_itself_is_exactly_zero(kind):
    logits = np.random.default_rng(8).normal(size=(3, 5, 7)) * 3  # (B, T, V)
    logp = jnp.asarray(log_softmax_np(logits)[..., 0].astype(np.float32))  # (B, T) one token each
    assert np.all(np.asarray(rlhf.kl_estimate(logp, logp, kind)) == 0.0)


def test_kl_estimate_rejects_unknown_kind():
    with pytest.raises(ValueError, match="k1, k2, k3"):
        rlhf.kl_estimate(jnp.zeros((1, 2)), jnp.zeros((1, 2)), kind="k4")
    assert rlhf.KL_KINDS == ("k1", "k2", "k3")


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
    g = jax.grad(lambda r: jnp.sum(rlhf.per_token_rewards(r, kl, mask, 0.5)))(score)
    assert np.all(np.asarray(g) == 0.0)  # the reward model's score too: PPO must not train the reward model
    with pytest.raises(ValueError, match="beta = -0.1 is negative"):
        rlhf.per_token_rewards(score, kl, mask, -0.1)
    # a traced beta (e.g. from the adaptive controller, inside jit) is accepted
    out = jax.jit(rlhf.per_token_rewards)(score, kl, mask, jnp.float32(0.5))
    np.testing.assert_allclose(np.asarray(out), [[-0.5, -0.5, 0.5]] * 2)


def test_sequence_kl_is_the_per_answer_sum_and_ignores_padding_values(x64):
    rng = np.random.default_rng(10)
    logp, logp_ref = -rng.random((5, 6)) * 3, -rng.random((5, 6)) * 3
    log_r = logp_ref - logp
    want = ((np.expm1(log_r) - log_r) * RAGGED_MASK).sum(axis=1)  # k3, summed over each answer's tokens
    padded = np.where(RAGGED_MASK > 0, logp, np.nan)  # whatever sits under padding never leaks in
    got = rlhf.sequence_kl(f64(padded), f64(logp_ref), f64(RAGGED_MASK), "k3")
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    assert float(got[3]) == 0.0  # the empty row: no token, no KL


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


# ============================================================================================
# The KL in the loss: what its *expected gradient* does (enumeration over a small vocabulary)
# ============================================================================================


def _expected_gradient_in_the_loss(theta, ref_logits, term):
    """sum_y pi_theta(y) * grad_theta term(log pi_theta(y), log pi_ref(y)): the mean gradient of the
    in-loss term when y is sampled from the policy and the sampling is not differentiated."""
    probs = jax.nn.softmax(theta)  # fixed weights: the sampling distribution
    logp_ref = jax.nn.log_softmax(ref_logits)

    def per_token(theta, y):
        logp = jax.nn.log_softmax(theta)[y]
        return term(logp[None, None], logp_ref[y][None, None])

    grads = jnp.stack([jax.grad(per_token)(theta, y) for y in range(theta.shape[0])])  # (V, V)
    return probs @ grads


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_gradient_of_each_estimator_in_the_loss(seed, x64):
    rng = np.random.default_rng(seed)
    theta, ref = f64(rng.normal(size=6)), f64(rng.normal(size=6))  # V = 6, policy far from the reference
    ones = jnp.ones((1, 1))

    def reverse_kl(theta):  # KL(pi_ref || pi_theta)
        p_ref = jax.nn.softmax(ref)
        return jnp.sum(p_ref * (jnp.log(p_ref) - jax.nn.log_softmax(theta)))

    def forward_kl(theta):  # KL(pi_theta || pi_ref), the article's direction
        p = jax.nn.softmax(theta)
        return jnp.sum(p * (jax.nn.log_softmax(theta) - jax.nn.log_softmax(ref)))

    k3 = _expected_gradient_in_the_loss(theta, ref, lambda lp, lr: rlhf.kl_loss_term(lp, lr, ones, 1.0, "k3"))
    k2 = _expected_gradient_in_the_loss(theta, ref, lambda lp, lr: rlhf.kl_loss_term(lp, lr, ones, 1.0, "k2"))
    k1 = _expected_gradient_in_the_loss(theta, ref, lambda lp, lr: rlhf.kl_estimate(lp, lr, "k1")[0, 0])
    # exact sums over the vocabulary in float64: rounding only (~1e-16 per term)
    np.testing.assert_allclose(np.asarray(k3), np.asarray(jax.grad(reverse_kl)(theta)), atol=1e-12)
    np.testing.assert_allclose(np.asarray(k2), np.asarray(jax.grad(forward_kl)(theta)), atol=1e-12)
    np.testing.assert_allclose(np.asarray(k1), 0.0, atol=1e-12)  # E[grad log pi] = grad sum pi = 0
    assert float(jnp.linalg.norm(jax.grad(reverse_kl)(theta))) > 0.1  # the pull k1 would lose is not small


def test_k1_in_the_loss_is_an_error_that_says_why():
    with pytest.raises(ValueError, match=r"E\[grad k1\] = E\[grad log pi_theta\] = 0"):
        rlhf.kl_loss_term(jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.ones((1, 2)), 0.1, "k1")
    assert rlhf.objectives.DEFAULT_KL_KIND == {"reward": "k1", "loss": "k3"}
