"""DPO's loss, GRPO's group advantages, best-of-n's KL and expectation, Gao's fits (minift.rlhf.estimators).

Each against an independent reference: a float64 NumPy hand computation, the closed-form
gradient and finite differences, brute force over every subset, and Monte Carlo.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from minift.rlhf.estimators import (
    best_of_n_expectation,
    best_of_n_kl,
    dpo_loss,
    gao_fit,
    group_advantages,
    sequence_log_probs,
)


def _logps(seed=0, B=6):
    rng = np.random.default_rng(seed)
    return [rng.normal(-5.0, 2.0, B) for _ in range(4)]


def _np_dpo(lc, lr, rc, rr, beta):
    margin = beta * ((lc - rc) - (lr - rr))
    return float(np.mean(np.log1p(np.exp(-margin)))), margin


def test_dpo_loss_matches_a_float64_hand_computation(x64):
    lc, lr, rc, rr = _logps()
    for beta in (0.1, 1.0):
        loss, stats = dpo_loss(*(jnp.asarray(a) for a in (lc, lr, rc, rr)), beta)
        want, margin = _np_dpo(lc, lr, rc, rr, beta)
        assert float(loss) == pytest.approx(want, abs=1e-12)  # float64 both sides: rounding only
        assert float(stats["reward_margin"]) == pytest.approx(margin.mean(), abs=1e-12)
        assert float(stats["accuracy"]) == pytest.approx(np.mean(margin > 0))


def test_dpo_gradient_is_the_closed_form_and_finite_differences(x64):
    lc, lr, rc, rr = (jnp.asarray(a) for a in _logps(1))
    beta = 0.5
    g_c, g_r, g_rc = jax.grad(lambda a, b, c: dpo_loss(a, b, c, rr, beta)[0], argnums=(0, 1, 2))(lc, lr, rc)
    margin = beta * ((lc - rc) - (lr - rr))
    sig = 1.0 / (1.0 + np.exp(np.asarray(margin)))  # sigma(-margin)
    B = lc.shape[0]
    # dL/dlogp_w = -beta sigma(-m)/B ; dL/dlogp_l = +beta sigma(-m)/B (float64: 1e-12)
    np.testing.assert_allclose(g_c, -beta * sig / B, atol=1e-12)
    np.testing.assert_allclose(g_r, beta * sig / B, atol=1e-12)
    np.testing.assert_allclose(g_rc, -np.asarray(g_c), atol=1e-12)  # the reference enters with the opposite sign
    check_grads(lambda a, b: dpo_loss(a, b, rc, rr, beta)[0], (lc, lr), order=1, modes=("rev",))


def test_dpo_loss_is_log2_at_the_reference_and_finite_at_huge_margins():
    lc, lr, _, _ = (jnp.asarray(a, jnp.float32) for a in _logps(2))
    loss, _ = dpo_loss(lc, lr, lc, lr, 0.1)
    assert float(loss) == pytest.approx(math.log(2), abs=1e-6)  # float32 rounding of log sigma(0)
    big = jnp.full((3,), 1e4, jnp.float32)
    zero = jnp.zeros((3,), jnp.float32)
    for sign in (1.0, -1.0):
        loss, _ = dpo_loss(sign * big, zero, zero, zero, 1.0)
        g = jax.grad(lambda a: dpo_loss(a, zero, zero, zero, 1.0)[0])(sign * big)
        assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(g)))
    assert float(dpo_loss(-big, zero, zero, zero, 1.0)[0]) == pytest.approx(1e4, rel=1e-6)


def test_dpo_loss_rejects_bad_beta_and_shapes():
    a = jnp.zeros(3)
    with pytest.raises(ValueError, match="beta must be > 0"):
        dpo_loss(a, a, a, a, 0.0)
    with pytest.raises(ValueError, match="one shape"):
        dpo_loss(a, jnp.zeros(4), a, a, 0.1)


def test_sequence_log_probs_ignores_masked_minus_infinity():
    logp = jnp.asarray([[-1.0, -2.0, -jnp.inf], [-0.5, -jnp.inf, -jnp.inf]])
    mask = jnp.asarray([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(sequence_log_probs(logp, mask), [-3.0, -0.5])
    g = jax.grad(lambda x: jnp.sum(sequence_log_probs(x, mask)))(logp)
    np.testing.assert_array_equal(g, mask)  # 1 where counted, exactly 0 (not NaN) elsewhere


def test_group_advantages_against_a_loop():
    rng = np.random.default_rng(3)
    r = rng.normal(size=12)
    got = np.asarray(group_advantages(jnp.asarray(r, jnp.float32), 4))
    want = np.concatenate([(g - g.mean()) / (g.std() + 1e-6) for g in r.reshape(3, 4)])
    np.testing.assert_allclose(got, want, atol=1e-5)  # float32
    for g in got.reshape(3, 4):
        assert abs(g.mean()) < 1e-6 and g.std() == pytest.approx(1.0, abs=1e-4)
    flat = np.asarray(group_advantages(jnp.asarray([1.0, 1.0, 1.0, 2.0, 0.0, 1.0]), 3))
    np.testing.assert_array_equal(flat[:3], 0.0)  # equal rewards: nothing to prefer, no NaN
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(jnp.zeros(6), 4)
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(jnp.zeros(6), 1)


@pytest.mark.parametrize("n", [2, 4, 16, 64])
def test_best_of_n_kl_matches_the_exact_discrete_kl_and_monte_carlo(n):
    M = 200_000  # a uniform base over M distinct scores: the exact KL tends to the formula as M grows
    i = np.arange(1, M + 1, dtype=np.float64)
    p = (i / M) ** n - ((i - 1) / M) ** n  # best-of-n pmf of rank i
    exact = float(np.sum(np.where(p > 0, p * np.log(M * np.where(p > 0, p, 1)), 0.0)))
    assert exact == pytest.approx(best_of_n_kl(n), abs=1e-3)  # discretisation error ~ n/M
    rng = np.random.default_rng(n)
    best = rng.integers(1, M + 1, size=(20_000, n)).max(axis=1)
    samples = np.log(M * ((best / M) ** n - ((best - 1) / M) ** n))
    se = samples.std() / np.sqrt(len(samples))
    assert abs(samples.mean() - best_of_n_kl(n)) < 4 * se + 1e-3


def test_best_of_n_kl_edge_and_errors():
    assert best_of_n_kl(1) == 0.0
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n must be"):
            best_of_n_kl(bad)


def test_best_of_n_expectation_brute_force_and_monte_carlo():
    rng = np.random.default_rng(5)
    proxy, values = rng.normal(size=8), rng.normal(size=8)
    assert best_of_n_expectation(proxy, values, 1) == pytest.approx(values.mean(), abs=1e-12)
    assert best_of_n_expectation(proxy, values, 8) == pytest.approx(values[np.argmax(proxy)], abs=1e-12)
    subsets = list(itertools.combinations(range(8), 3))
    brute = np.mean([values[max(s, key=lambda j: proxy[j])] for s in subsets])
    assert best_of_n_expectation(proxy, values, 3) == pytest.approx(brute, abs=1e-12)
    proxy, values = rng.normal(size=64), rng.normal(size=64)
    draws = np.asarray([values[(s := rng.choice(64, 16, replace=False))[np.argmax(proxy[s])]] for _ in range(20_000)])
    se = draws.std() / np.sqrt(len(draws))
    assert abs(best_of_n_expectation(proxy, values, 16) - draws.mean()) < 4 * se
    with pytest.raises(ValueError, match="n must be in"):
        best_of_n_expectation(proxy, values, 65)
    with pytest.raises(ValueError, match="n must be in"):
        best_of_n_expectation(proxy, values, 0)


def test_gao_fit_recovers_both_forms():
    d = np.linspace(0.0, 4.0, 20)
    r = d * (0.7 - 0.2 * d)
    fit = gao_fit(d, r, "bon")
    assert fit["alpha"] == pytest.approx(0.7, abs=1e-8) and fit["beta"] == pytest.approx(0.2, abs=1e-8)
    assert fit["r2"] == pytest.approx(1.0, abs=1e-12)
    logd = np.log(np.where(d > 0, d, 1.0))
    fit = gao_fit(d, d * (0.5 - 0.3 * logd), "rl")
    assert fit["alpha"] == pytest.approx(0.5, abs=1e-8) and fit["beta"] == pytest.approx(0.3, abs=1e-8)
    with pytest.raises(ValueError, match="form"):
        gao_fit(d, r, "linear")
    with pytest.raises(ValueError, match=">= 2 points"):
        gao_fit(d[:1], r[:1], "bon")
