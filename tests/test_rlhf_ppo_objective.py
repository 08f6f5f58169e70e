"""Tests for PPO's math (minift/rlhf/ppo_objective.py): GAE, whitening, the clipped losses, entropy.

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
from jax.test_util import check_grads
from references import RAGGED_MASK, f64, log_softmax_np

import minift.rlhf as rlhf

# ============================================================================================
# Whitening over real tokens
# ============================================================================================


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
    return -(np.minimum(unclipped, clipped) * mask).sum() / mask.sum()


def diagnostics_references(logp_new, logp_old, adv, mask, eps):
    """Each diagnostic under every definition in standard use (float64): {name: {definition: value}}."""
    ratio, n = np.exp(logp_new - logp_old), mask.sum()
    unclipped, clipped = ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv
    log_ratio = logp_new - logp_old
    mean = lambda x: (x * mask).sum() / n  # noqa: E731
    return {
        "clip_frac": {"the clip switched the gradient off (TRL)": mean(clipped < unclipped),
                      "|ratio - 1| > eps (CleanRL)": mean(np.abs(ratio - 1) > eps)},
        "approx_kl": {"k3 (CleanRL approx_kl)": mean((ratio - 1) - log_ratio),
                      "k2 (TRL approxkl)": mean(0.5 * log_ratio**2),
                      "k1 (CleanRL old_approx_kl)": mean(-log_ratio)},
        "ratio_mean": {"mean ratio": mean(ratio)},
    }


def assert_a_standard_definition(stats, references, rtol=1e-12):
    """Each diagnostic equals one of its standard definitions (float64: to ~1e-15, 1e-12 leaves room)."""
    for name, definitions in references.items():
        got = float(getattr(stats, name))
        assert any(abs(got - want) <= rtol * max(1.0, abs(want)) for want in definitions.values()), (
            f"{name} = {got:.6g}, but the standard definitions give "
            + ", ".join(f"{want:.6g} ({what})" for what, want in definitions.items()))


def ragged_rollout(seed):
    rng = np.random.default_rng(seed)
    logp_old = -rng.random((5, 6)) * 3
    logp_new = logp_old + rng.normal(size=(5, 6)) * 0.3  # ratios on both sides of [0.8, 1.2]
    return logp_new, logp_old, rng.normal(size=(5, 6))


def test_ppo_clip_loss_matches_reference(x64):
    logp_new, logp_old, adv = ragged_rollout(16)
    loss = rlhf.ppo_clip_loss(f64(logp_new), f64(logp_old), f64(adv), f64(RAGGED_MASK), 0.2)
    np.testing.assert_allclose(float(loss), ppo_reference(logp_new, logp_old, adv, RAGGED_MASK, 0.2), rtol=1e-12)
    ratio = np.exp(logp_new - logp_old)[RAGGED_MASK > 0]
    assert np.any(ratio > 1.2) and np.any(ratio < 0.8) and np.any(np.abs(ratio - 1) < 0.2)  # every branch


def test_ppo_loss_sends_no_gradient_into_the_advantages_or_the_old_policy(x64):
    """Only log pi_theta is differentiated: the rollout's log pi_old and advantages are data."""
    logp_new, logp_old, adv = ragged_rollout(16)
    grads = jax.grad(rlhf.ppo_clip_loss, argnums=(1, 2))(f64(logp_new), f64(logp_old), f64(adv), f64(RAGGED_MASK))
    assert all(np.all(np.asarray(g) == 0.0) for g in grads)  # exact: stop_gradient, no tolerance


def test_ppo_at_ratio_one_loss_is_minus_mean_advantage_but_gradient_is_not_zero(x64):
    rng = np.random.default_rng(17)
    logp = f64(-rng.random((5, 6)) * 3)
    mask = f64(RAGGED_MASK)
    adv = rlhf.masked_whiten(f64(rng.normal(size=(5, 6))), mask)
    loss_fn = lambda lp: rlhf.ppo_clip_loss(lp, logp, adv, mask)  # noqa: E731
    loss, grad = jax.value_and_grad(loss_fn)(logp)
    assert abs(float(loss)) < 1e-12  # -mean(A) = 0 after whitening
    n = RAGGED_MASK.sum()
    np.testing.assert_allclose(np.asarray(grad), -np.asarray(adv) * RAGGED_MASK / n, atol=1e-15)
    assert np.abs(np.asarray(grad)).max() > 0.01  # the policy gradient is very much there


def test_ppo_gradient_is_zero_exactly_in_the_clipped_region(x64):
    eps = 0.2
    #                    clipped, A>0   clipped, A<0   unclipped: too low, A>0   too high, A<0   inside
    ratio = np.array([[1.5, 0.5, 0.5, 1.5, 1.1]])
    adv = np.array([[1.0, -1.0, 1.0, -1.0, 2.0]])
    logp_old = np.full((1, 5), -1.0)
    logp_new = logp_old + np.log(ratio)
    mask = np.ones((1, 5))
    loss_fn = lambda lp: rlhf.ppo_clip_loss(lp, f64(logp_old), f64(adv), f64(mask), eps)  # noqa: E731
    grad = np.asarray(jax.grad(loss_fn)(f64(logp_new)))[0]
    assert grad[0] == 0.0 and grad[1] == 0.0  # exactly: the min picked the constant clipped branch
    # unclipped: d(-rho A / N)/d logp_new = -rho A / N
    np.testing.assert_allclose(grad[2:], -(ratio * adv)[0, 2:] / 5, rtol=1e-12)
    assert np.all(grad[2:] != 0.0)


def test_ppo_diagnostics_match_a_standard_definition(x64):
    """clip_frac, approx_kl and ratio_mean over real tokens, as TRL or CleanRL define them."""
    logp_new, logp_old, adv = ragged_rollout(16)
    stats = rlhf.ppo_diagnostics(f64(logp_new), f64(logp_old), f64(adv), f64(RAGGED_MASK), 0.2)
    references = diagnostics_references(logp_new, logp_old, adv, RAGGED_MASK, 0.2)
    assert_a_standard_definition(stats, references)
    assert 0.0 < float(stats.clip_frac) < 1.0  # the case exercises both branches
    # The definitions really differ here, so "one of them" is not "anything goes".
    for definitions in references.values():
        values = sorted(definitions.values())
        assert all(b - a > 1e-3 for a, b in zip(values, values[1:]))
    # Garbage beyond the mask changes nothing: padding never enters a diagnostic.
    garbage = np.where(RAGGED_MASK > 0, logp_new, 50.0)
    dirty = rlhf.ppo_diagnostics(f64(garbage), f64(logp_old), f64(adv), f64(RAGGED_MASK), 0.2)
    assert [float(x) for x in dirty] == [float(x) for x in stats]


def test_ppo_diagnostics_at_ratio_one_and_in_the_clipped_region(x64):
    rng = np.random.default_rng(17)
    logp = f64(-rng.random((5, 6)) * 3)
    adv = f64(rng.normal(size=(5, 6)))
    stats = rlhf.ppo_diagnostics(logp, logp, adv, f64(RAGGED_MASK))
    assert (float(stats.clip_frac), float(stats.approx_kl), float(stats.ratio_mean)) == (0.0, 0.0, 1.0)
    ratio = np.array([[1.5, 0.5, 0.5, 1.5, 1.1]])  # the clipped-region case above
    adv = np.array([[1.0, -1.0, 1.0, -1.0, 2.0]])
    logp_old = np.full((1, 5), -1.0)
    stats = rlhf.ppo_diagnostics(f64(logp_old + np.log(ratio)), f64(logp_old), f64(adv), f64(np.ones((1, 5))))
    # 2 of 5 tokens had their gradient switched off (TRL); 4 of 5 lie outside [0.8, 1.2] (CleanRL).
    assert float(stats.clip_frac) in (pytest.approx(2 / 5), pytest.approx(4 / 5))


def test_ppo_padding_gets_no_gradient_and_changes_nothing():
    rng = np.random.default_rng(18)
    logp_old = (-rng.random((5, 6)) * 3).astype(np.float32)
    logp_new = logp_old + (rng.normal(size=(5, 6)) * 0.3).astype(np.float32)
    adv = rng.normal(size=(5, 6)).astype(np.float32)
    mask = jnp.asarray(RAGGED_MASK.astype(np.float32))
    garbage_adv = jnp.asarray(np.where(RAGGED_MASK > 0, adv, 1e30).astype(np.float32))
    loss_fn = lambda lp, a: rlhf.ppo_clip_loss(lp, jnp.asarray(logp_old), a, mask)  # noqa: E731
    clean, grad = jax.value_and_grad(loss_fn)(jnp.asarray(logp_new), jnp.asarray(adv))
    dirty = loss_fn(jnp.asarray(logp_new), garbage_adv)
    assert float(clean) == float(dirty)
    assert np.all(np.asarray(grad)[RAGGED_MASK == 0] == 0.0)


def test_ppo_gradient_matches_finite_differences(x64):
    rng = np.random.default_rng(19)
    logp_old = f64(-rng.random((2, 4)))
    adv = f64(rng.normal(size=(2, 4)))
    logp_new = logp_old + f64(rng.choice([-0.5, -0.05, 0.05, 0.5], size=(2, 4)))  # away from kinks
    fn = lambda lp: rlhf.ppo_clip_loss(lp, logp_old, adv, jnp.ones((2, 4)))  # noqa: E731
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
