"""Tests for the jit-compiled train step in minift/train.py (§3.3 on the §3.2 loss).

One step lowers the loss; the step compiles once per batch shape; the masked ("sft") and
unmasked ("lm") losses differ; K micro-batches give exactly the full batch's gradient, which
the mean of per-micro-batch means does not.

Compiling a step dominates the time here, so every test uses the same (4, 12) batch shape and
the jit'd helpers below are shared: each distinct (function, shape) pair compiles once per file.
(Additivity of the "sequence" reduction over micro-batches is tested in test_loss.py.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from minift import loss as losses
from minift import model, optim, train
from minift.config import get_config
from minift.data import Batch

CONFIG = get_config("tiny")
B, T = 4, 12

loss_and_grad = jax.jit(train.loss_and_grad, static_argnums=(2,), static_argnames=("loss", "reduction"))
forward = jax.jit(model.forward, static_argnums=(2,))


def make_batch(seed: int, prompt_lens, response_lens, T: int = T) -> tuple[Batch, np.ndarray]:
    """A right-padded Batch: prompt targets (mask 0), response targets (mask 1), then padding.

    Returns the batch and the mask of real targets (prompt + response), built independently.
    """
    rng = np.random.default_rng(seed)
    n = len(prompt_lens)
    tokens = rng.integers(3, CONFIG.vocab_size, size=(n, T)).astype(np.int32)
    targets = rng.integers(3, CONFIG.vocab_size, size=(n, T)).astype(np.int32)
    loss_mask = np.zeros((n, T), np.float32)
    real = np.zeros((n, T), np.float32)
    for b, (p, r) in enumerate(zip(prompt_lens, response_lens)):
        loss_mask[b, p : p + r] = 1.0
        real[b, : p + r] = 1.0
        tokens[b, p + r :] = 0  # padding id
        targets[b, p + r :] = 0
    return Batch(tokens, targets, loss_mask), real


def split(batch: Batch) -> list[Batch]:
    """Two micro-batches of 2 rows each."""
    return [Batch(*(x[:2] for x in batch)), Batch(*(x[2:] for x in batch))]


@pytest.fixture(scope="module")
def params():
    return jax.jit(model.init_params, static_argnums=0)(CONFIG, jax.random.PRNGKey(0))


LR, TOTAL_STEPS = 1e-2, 10


@pytest.fixture(scope="module")
def adamw():
    """The course optimizer, its schedule and one train step, shared (compiled once per shape)."""
    tx = optim.make_optimizer(LR, total_steps=TOTAL_STEPS, warmup_steps=0)
    schedule = optim.learning_rate_schedule(LR, total_steps=TOTAL_STEPS, warmup_steps=0)
    return tx, schedule, train.make_train_step(CONFIG, tx, schedule=schedule)


def copy(tree):
    """train_step donates its inputs; tests keep the originals by passing copies."""
    return jax.tree.map(jnp.copy, tree)


def max_abs_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_one_step_lowers_the_loss_and_reports_metrics(params, adamw):
    batch, _ = make_batch(0, prompt_lens=(3, 5, 2, 4), response_lens=(6, 4, 9, 3))
    tx, schedule, step = adamw
    evaluate = train.make_eval_step(CONFIG)
    before = evaluate(params, batch)
    p = copy(params)
    p_in, (p, s, metrics) = p, step(p, tx.init(params), batch)
    assert p_in["embed"].is_deleted()  # the params buffers were donated
    after = evaluate(p, batch)
    assert float(after["loss"]) < float(before["loss"]) - 1e-3
    # Metrics describe the batch *before* the update; same float32 graph, fused differently: 1e-5.
    np.testing.assert_allclose(metrics["loss"], before["loss"], rtol=1e-5)
    assert float(metrics["n_tokens"]) == float(batch.loss_mask.sum()) == 22.0
    _, grads, _ = loss_and_grad(params, batch, CONFIG)
    np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-5)
    # The rate this update used; jit'd vs eager cosine differ by ~1 float32 ulp.
    np.testing.assert_allclose(metrics["learning_rate"], schedule(0), rtol=1e-6)
    p, s, metrics = step(p, s, batch)
    np.testing.assert_allclose(metrics["learning_rate"], schedule(1), rtol=1e-6)

    # The eval step is sft_loss(forward(...)), with additive parts total / count.
    logits = forward(params, jnp.asarray(batch.tokens), CONFIG)
    want = losses.sft_loss(logits, jnp.asarray(batch.targets), jnp.asarray(batch.loss_mask))
    np.testing.assert_allclose(before["loss"], want, rtol=1e-5)
    np.testing.assert_allclose(before["total"] / before["count"], before["loss"], rtol=1e-6)
    assert float(before["count"]) == 22.0


def test_same_shape_does_not_recompile_and_a_new_bucket_compiles_once(params, monkeypatch):
    traces = []
    real_forward = model.forward

    def counting_forward(*args, **kwargs):  # runs only while jax traces, never per call
        traces.append(args[1].shape)
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting_forward)
    tx = optax.sgd(1e-3)
    step = train.make_train_step(CONFIG, tx)
    p, s = copy(params), tx.init(params)
    p, s, _ = step(p, s, make_batch(0, (2, 3, 1, 4), (4, 4, 2, 5))[0])
    per_compile = len(traces)
    assert per_compile >= 1
    for seed in (1, 2, 3):  # new data, same (B, T) shape: no new trace, no new compile
        p, s, _ = step(p, s, make_batch(seed, (1, 5, 2, 2), (6, 2, 3, 3))[0])
    assert len(traces) == per_compile
    p, s, _ = step(p, s, make_batch(4, (2, 3, 1, 4), (4, 4, 2, 5), T=2 * T)[0])  # a new length bucket
    assert len(traces) == 2 * per_compile  # compiled exactly once more
    p, s, _ = step(p, s, make_batch(5, (2, 3, 1, 4), (4, 4, 2, 5), T=2 * T)[0])
    assert len(traces) == 2 * per_compile
    if hasattr(step, "_cache_size"):  # the jit cache agrees (private API, checked when present)
        assert step._cache_size() == 2


def test_masked_sft_and_unmasked_lm_differ(params):
    """The §3.2 ablation: 'lm' trains on prompt + response, 'sft' on the response only."""
    batch, real = make_batch(2, prompt_lens=(5, 7, 3, 6), response_lens=(3, 2, 4, 1))
    np.testing.assert_array_equal(train.real_target_mask(jnp.asarray(batch.loss_mask)), real)
    sft_loss, sft_grads, sft_n = loss_and_grad(params, batch, CONFIG, loss="sft")
    lm_loss, lm_grads, lm_n = loss_and_grad(params, batch, CONFIG, loss="lm")
    assert float(sft_n) == 10.0 and float(lm_n) == 31.0
    logits = forward(params, jnp.asarray(batch.tokens), CONFIG)
    targets = jnp.asarray(batch.targets)
    # float32, the same forward in two jit regions: 1e-5 relative.
    np.testing.assert_allclose(sft_loss, losses.sft_loss(logits, targets, jnp.asarray(batch.loss_mask)), rtol=1e-5)
    np.testing.assert_allclose(lm_loss, losses.lm_loss(logits, targets, jnp.asarray(real)), rtol=1e-5)
    assert abs(float(sft_loss) - float(lm_loss)) > 1e-3
    assert max_abs_diff(sft_grads, lm_grads) > 1e-4
    with pytest.raises(ValueError, match="loss="):
        train.make_train_step(CONFIG, optax.sgd(1e-3), loss="masked")


def test_gradient_accumulation_equals_the_full_batch(params):
    # Micro-batch 1 has 1-token responses, micro-batch 2 long ones: very different token counts.
    full, _ = make_batch(3, prompt_lens=(2, 3, 1, 2), response_lens=(1, 1, 9, 8))
    micro = split(full)
    want_loss, want_grads, want_n = loss_and_grad(params, full, CONFIG)
    got_loss, got_grads, got_n = loss_and_grad(params, train.stack_micro_batches(micro), CONFIG)
    assert float(got_n) == float(want_n) == 19.0
    # Same per-example float32 arithmetic with the sums regrouped: ~1e-7 relative error.
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(got_grads), jax.tree.leaves(want_grads)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    # The naive way — average the per-micro-batch mean gradients — is a different gradient:
    # it weighs the 2 tokens of micro-batch 1 as much as the 17 of micro-batch 2.
    naive = jax.tree.map(lambda a, b: (a + b) / 2, *[loss_and_grad(params, m, CONFIG)[1] for m in micro])
    scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(want_grads))
    assert max_abs_diff(naive, want_grads) > 0.05 * scale


def test_train_step_on_a_list_of_micro_batches_takes_the_full_batch_step(params, adamw):
    tx, _, step = adamw
    full, _ = make_batch(4, prompt_lens=(2, 3, 1, 2), response_lens=(1, 1, 9, 8))
    p_acc, _, m_acc = step(copy(params), tx.init(params), split(full))
    p_full, _, m_full = step(copy(params), tx.init(params), full)
    assert float(m_acc["n_tokens"]) == float(m_full["n_tokens"]) == 19.0
    # Same loss and gradient up to regrouped float32 sums (~1e-7 relative).
    np.testing.assert_allclose(m_acc["loss"], m_full["loss"], rtol=1e-5)
    np.testing.assert_allclose(m_acc["grad_norm"], m_full["grad_norm"], rtol=1e-5)
    # Adam's first step is lr * g / (|g| + eps) per entry: for the rare entries with |g| near eps
    # that ~1e-7 noise shows up amplified (seen: 5e-6), so compare at 1% of lr = 1e-4.
    for a, b in zip(jax.tree.leaves(p_acc), jax.tree.leaves(p_full)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_all_masked_batch_is_a_zero_loss_no_op(params):
    batch, _ = make_batch(5, prompt_lens=(4, 4, 4, 4), response_lens=(0, 0, 0, 0))
    loss_value, grads, n = loss_and_grad(params, batch, CONFIG)
    assert float(loss_value) == 0.0 and float(n) == 0.0
    assert all(np.all(np.asarray(g) == 0.0) for g in jax.tree.leaves(grads))  # exactly 0, not NaN


def test_memory_plan_counts_params_and_adam_state_exactly_and_sees_remat():
    config = get_config("tiny", n_layers=4)
    optimizer = optim.make_optimizer(1e-3, 100, 10)
    plan = train.memory_plan(config, optimizer, 4, 64)
    n = config.n_params
    assert plan.params == 4 * n  # float32
    # AdamW keeps two float32 moments per parameter; the rest is a few int32 step counters.
    assert 2 * 4 * n <= plan.optimizer <= 2 * 4 * n + 64
    assert plan.batch == 4 * 64 * (4 + 4 + 4)
    with_remat = train.memory_plan(get_config("tiny", n_layers=4, remat=True), optimizer, 4, 64)
    assert with_remat.temporaries < plan.temporaries  # what remat is for, in XLA's own plan
    assert plan.total == plan.params + plan.optimizer + plan.batch + plan.temporaries


def test_check_memory_names_every_part_when_a_step_does_not_fit():
    plan = train.MemoryPlan(params=2 * 1024**3, optimizer=4 * 1024**3, batch=1024, temporaries=3 * 1024**3)
    train.check_memory(plan, 10 * 1024**3)  # fits: no error
    with pytest.raises(MemoryError, match=r"needs 9\.00 GiB but the GPU has 8\.00 GiB: parameters 2\.00, "
                                          r"optimizer state 4\.00.*activations and gradients 3\.00"):
        train.check_memory(plan, 8 * 1024**3, "the GPU")
