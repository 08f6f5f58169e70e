"""Tests for minift/optim.py (§3.3): gradient descent, hand-written AdamW == optax.adamw,
the weight-decay mask, and make_optimizer == clip + schedule + AdamW written by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from minift import optim


def make_params(seed: int = 0):
    """A small model-shaped tree: stacked layers (leading L axis), a norm gain, a matrix."""
    rng = np.random.default_rng(seed)
    f = lambda *s: jnp.asarray(rng.standard_normal(s), jnp.float32)  # noqa: E731
    return {
        "embed": f(5, 4),
        "layers": {"attn_norm": f(2, 4), "wq": f(2, 4, 2, 2), "w_up": f(2, 4, 3)},
        "final_norm": f(4),
    }


def random_grads(params, rng, scale=1.0):
    return jax.tree.map(lambda p: jnp.asarray(scale * rng.standard_normal(p.shape), jnp.float32), params)


def test_gradient_descent_is_theta_minus_lr_grad():
    params = make_params()
    grads = random_grads(params, np.random.default_rng(1))
    new = optim.gradient_descent(params, grads, 0.1)
    for p, g, n in zip(jax.tree.leaves(params), jax.tree.leaves(grads), jax.tree.leaves(new)):
        np.testing.assert_allclose(n, np.asarray(p) - 0.1 * np.asarray(g), rtol=1e-6)  # one float32 fma


def test_gradient_descent_lowers_a_quadratic():
    params = {"w": jnp.array([3.0, -2.0])}
    f = lambda p: jnp.sum(p["w"] ** 2)  # noqa: E731
    new = optim.gradient_descent(params, jax.grad(f)(params), 0.1)
    assert float(f(new)) < float(f(params))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_hand_written_adamw_matches_optax_over_100_steps(weight_decay):
    params = make_params()
    rng = np.random.default_rng(2)
    lr = 1e-2
    tx = optax.adamw(lr, weight_decay=weight_decay)  # optax defaults b1=.9, b2=.999, eps=1e-8
    opt_state = tx.init(params)
    ours, state = params, optim.adamw_init(params)
    theirs = params
    # jit both sides (same float32 arithmetic, just without 100 steps of eager dispatch)
    our_step = jax.jit(lambda p, g, s: optim.adamw_update(p, g, s, lr, weight_decay=weight_decay))

    @jax.jit
    def their_step(p, g, s):
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    for _ in range(100):
        grads = random_grads(params, rng)
        ours, state = our_step(ours, grads, state)
        theirs, opt_state = their_step(theirs, grads, opt_state)
    assert int(state.step) == 100
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        # Same equations, different float32 operation order: each step differs by ~1 ulp of
        # |theta| ~ 1 (1e-7), and 100 steps accumulate to ~1e-6; 1e-5 absolute is float32 precision.
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    moved = max(float(jnp.max(jnp.abs(a - p))) for a, p in zip(jax.tree.leaves(ours), jax.tree.leaves(params)))
    assert moved > 0.1  # the comparison is not vacuous: the parameters really moved


def test_adamw_first_step_is_lr_times_sign_of_gradient():
    """Bias correction makes the first step ±lr whatever the gradient's scale (m̂/√v̂ = g/|g|)."""
    params = {"w": jnp.zeros(4)}
    grads = {"w": jnp.array([1e-3, -5.0, 2e2, -1e-1])}
    new, _ = optim.adamw_update(params, grads, optim.adamw_init(params), 0.01)
    # |g| >= 1e-3 >> eps = 1e-8, so g/(|g|+eps) = sign(g) to 1e-5 relative.
    np.testing.assert_allclose(new["w"], -0.01 * np.sign(grads["w"]), rtol=1e-4)


def test_decay_mask_decays_matrices_only_counting_the_layer_axis():
    mask = optim.decay_mask(make_params())
    assert mask == {
        "embed": True,
        "layers": {"attn_norm": False, "wq": True, "w_up": True},  # (L, D) is a stacked vector
        "final_norm": False,
    }


def test_schedule_warms_up_then_decays():
    s = optim.learning_rate_schedule(1e-3, total_steps=100, warmup_steps=10)
    assert float(s(0)) == 0.0
    np.testing.assert_allclose(s(5), 5e-4, rtol=1e-6)  # linear warmup
    np.testing.assert_allclose(s(10), 1e-3, rtol=1e-6)  # peak
    np.testing.assert_allclose(s(100), 1e-4, rtol=1e-5)  # end = 0.1 * peak
    assert float(s(50)) < float(s(20))


def test_schedule_rejects_warmup_longer_than_training():
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.make_optimizer(1e-3, total_steps=10, warmup_steps=10)


def test_make_optimizer_weight_decay_skips_vectors():
    """Zero gradients: the Adam part is 0, so the update is exactly the decay, -lr*wd*theta."""
    params = make_params()
    tx = optim.make_optimizer(1e-2, total_steps=10, warmup_steps=0, weight_decay=0.5)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    mask = optim.decay_mask(params)
    for u, p, decayed in zip(jax.tree.leaves(updates), jax.tree.leaves(params), jax.tree.leaves(mask)):
        want = -1e-2 * 0.5 * np.asarray(p) if decayed else np.zeros(p.shape)
        np.testing.assert_allclose(u, want, rtol=1e-6, atol=0)


def test_make_optimizer_is_clip_then_scheduled_adamw():
    """20 steps of make_optimizer == clip by hand, then our adamw_update at the schedule's rate."""
    params = {"a": make_params()["embed"], "b": make_params(1)["layers"]["w_up"][0]}  # matrices only
    kwargs = dict(learning_rate=1e-2, total_steps=20, warmup_steps=5, weight_decay=0.1, clip_norm=1.0)
    tx = optim.make_optimizer(**kwargs)
    schedule = optim.learning_rate_schedule(1e-2, 20, 5)
    opt_state = tx.init(params)
    theirs, ours, state = params, params, optim.adamw_init(params)
    rng = np.random.default_rng(3)
    clipped_some = False
    for k in range(20):
        grads = random_grads(params, rng, scale=float(rng.choice([0.01, 10.0])))
        norm = float(optax.tree.norm(grads))
        clipped_some |= norm > 1.0
        scaled = jax.tree.map(lambda g: g * min(1.0, 1.0 / norm), grads)  # clip_by_global_norm by hand
        ours, state = optim.adamw_update(ours, scaled, state, schedule(k), b1=0.9, b2=0.95, weight_decay=0.1)
        updates, opt_state = tx.update(grads, opt_state, theirs)
        theirs = optax.apply_updates(theirs, updates)
    assert clipped_some
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)  # float32 op-order noise, as above
