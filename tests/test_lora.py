"""LoRA (minift.lora): W + (alpha/r) B A as a pure function, its gradient, and training only the adapters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from minift import lora as L
from minift import model, optim, train
from minift.config import get_config
from minift.data import Batch

CONFIG = get_config("tiny")


@pytest.fixture
def params(key):
    return model.init_params(CONFIG, key)


def random_batch(seed: int, B: int = 4, T: int = 16) -> Batch:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CONFIG.vocab_size, (B, T + 1)).astype(np.int32)
    mask = np.zeros((B, T), np.float32)
    mask[:, T // 2:] = 1.0  # the "response": second half of each row
    return Batch(tokens[:, :-1], tokens[:, 1:], mask)


def nonzero_adapters(params, lora: L.LoraConfig, seed: int = 1):
    """Adapters with random a *and* b (as after some training), so the delta is not zero."""
    adapters = L.init_adapters(params, lora, jax.random.PRNGKey(seed))
    keys = iter(jax.random.split(jax.random.PRNGKey(seed + 1), len(adapters)))
    return {n: {"a": ad["a"], "b": 0.05 * jax.random.normal(next(keys), ad["b"].shape)} for n, ad in adapters.items()}


def test_fresh_adapters_leave_the_model_exactly_unchanged(params, key):
    lora = L.LoraConfig(rank=4)
    adapters = L.init_adapters(params, lora, key)
    merged = L.merge(params, adapters, lora)
    for a, b in zip(jax.tree.leaves(merged), jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # b = 0: W + 0 is W, bit for bit
    assert set(adapters) == set(L.ALL_PROJECTIONS)
    assert adapters["wo"]["a"].shape == (2, 64, 4) and adapters["wo"]["b"].shape == (2, 4, 64)  # wo: (H, K) -> D
    assert adapters["w_down"]["a"].shape == (2, 176, 4)  # w_down: F -> D


def test_merge_is_w_plus_scaled_b_a_by_hand(params):
    """Against numpy in float64 on every layer: W'^T = W^T + (alpha/r) B A, i.e. W' = W + (alpha/r) a @ b."""
    lora = L.LoraConfig(rank=3, alpha=7.0, targets=("wq", "wo", "w_up"))
    adapters = nonzero_adapters(params, lora)
    merged = L.merge(params, adapters, lora)
    for name in lora.targets:
        w = np.asarray(params["layers"][name], np.float64)
        a, b = (np.asarray(adapters[name][k], np.float64) for k in ("a", "b"))
        for layer in range(CONFIG.n_layers):
            expected = w[layer] + (7.0 / 3) * (a[layer] @ b[layer]).reshape(w[layer].shape)
            # float32 rounding of a rank-3 product of O(0.1) numbers and one add: 1e-6 absolute
            np.testing.assert_allclose(np.asarray(merged["layers"][name][layer]), expected, atol=1e-6)
    for name in ("wk", "wv", "w_gate", "w_down", "attn_norm"):  # not targeted: untouched
        np.testing.assert_array_equal(np.asarray(merged["layers"][name]), np.asarray(params["layers"][name]))


def test_unmerge_undoes_merge_to_one_rounding(params):
    lora = L.LoraConfig(rank=4)
    adapters = nonzero_adapters(params, lora)
    back = L.unmerge(L.merge(params, adapters, lora), adapters, lora)
    for name in lora.targets:
        w, w_back = np.asarray(params["layers"][name]), np.asarray(back["layers"][name])
        merged = np.asarray(L.merge(params, adapters, lora)["layers"][name])
        # (w + d) - d differs from w only by the rounding of the add: at most one ulp of |w + d| per op.
        ulp = np.spacing(np.maximum(np.abs(merged), np.abs(w)).astype(np.float32))
        assert np.all(np.abs(w_back - w) <= 2 * ulp)


def test_adapter_gradient_is_the_chain_rule_through_the_merge(params):
    """dL/db = (alpha/r) a^T G and dL/da = (alpha/r) G b^T, with G = dL/dW' the full model's gradient."""
    lora = L.LoraConfig(rank=4, alpha=8.0, targets=("wq", "w_down"))
    adapters = nonzero_adapters(params, lora)
    batch = random_batch(0)

    def loss_of(p):
        total, (count, _) = train.loss_terms(p, batch, CONFIG)
        return total / count

    merged = L.merge(params, adapters, lora)
    G = jax.grad(loss_of)(merged)["layers"]
    g_ad = jax.grad(lambda ad: loss_of(L.merge(params, ad, lora)))(adapters)
    for name in lora.targets:
        a, b = adapters[name]["a"], adapters[name]["b"]
        g = G[name].reshape(a.shape[0], a.shape[1], b.shape[2])  # (L, in, out)
        np.testing.assert_allclose(g_ad[name]["b"], 2.0 * jnp.einsum("lir,lio->lro", a, g), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(g_ad[name]["a"], 2.0 * jnp.einsum("lio,lro->lir", g, b), rtol=1e-4, atol=1e-7)


def test_full_rank_lora_reproduces_full_fine_tuning_first_step(params):
    """With r = d_in and a = I / (alpha/r), one SGD step on b moves W' by exactly -lr * dL/dW.

    b' = b - lr (alpha/r) a^T G, so W' = W + (alpha/r) a b' = W - lr (alpha/r)^2 a a^T G = W - lr G,
    the full fine-tuning step. SGD, not Adam: Adam's per-coordinate normalisation is not invariant
    under the change of variables W -> a b, so only for SGD are the two steps the same.
    """
    rank, lr = 176, 0.5  # 176 = the widest input (d_ff); narrower inputs use the first d_in columns
    lora = L.LoraConfig(rank=rank, alpha=32.0)
    adapters = {}
    for name in lora.targets:
        fresh = L.init_adapters(params, L.LoraConfig(rank=rank, targets=(name,)), jax.random.PRNGKey(0))[name]
        d_in = fresh["a"].shape[1]
        eye = jnp.broadcast_to(jnp.eye(d_in, rank), fresh["a"].shape) / lora.scale
        adapters[name] = {"a": eye, "b": fresh["b"]}
    batch = random_batch(1)

    full_step = train.make_train_step(CONFIG, optax.sgd(lr))
    full, _, full_metrics = full_step(jax.tree.map(jnp.copy, params), optax.sgd(lr).init(params), batch)

    tree = L.with_adapters(jax.tree.map(jnp.copy, params), adapters)
    sgd_adapters = optax.multi_transform({"adapter": optax.sgd(lr), "frozen": optax.set_to_zero()}, L.trainable_labels)
    lora_step = train.make_train_step(CONFIG, sgd_adapters, lora=lora)
    tree, _, lora_metrics = lora_step(tree, sgd_adapters.init(tree), batch)

    assert float(lora_metrics["loss"]) == pytest.approx(float(full_metrics["loss"]), rel=1e-6)  # same model at step 0
    merged = L.merge(tree["base"], tree["lora"], lora)
    for name in lora.targets:
        moved = np.asarray(full["layers"][name]) - np.asarray(params["layers"][name])
        assert np.abs(moved).max() > 1e-4  # the step did move the weights
        np.testing.assert_allclose(np.asarray(merged["layers"][name]), np.asarray(full["layers"][name]),
                                   atol=1e-6)  # float32 rounding of a 176-term sum on O(0.02) weights
    for leaf in ("embed", "final_norm"):  # LoRA leaves everything else frozen
        np.testing.assert_array_equal(np.asarray(tree["base"][leaf]), np.asarray(params[leaf]))


def test_make_optimizer_trains_the_adapters_only_and_keeps_moments_for_them_alone(params, key):
    lora = L.LoraConfig(rank=4)
    tree = L.with_adapters(jax.tree.map(jnp.copy, params), L.init_adapters(params, lora, key))
    optimizer = optim.make_optimizer(1e-2, 10, 0, trainable=L.trainable_labels)
    opt_state = optimizer.init(tree)
    n_adapter = L.count_trainable(tree["lora"])
    n_state = sum(x.size for x in jax.tree.leaves(opt_state) if x.ndim > 0)
    assert n_state == 2 * n_adapter  # AdamW's m and v for the adapters, nothing for the 125k base weights

    step = train.make_train_step(CONFIG, optimizer, lora=lora)
    losses = []
    for i in range(5):
        tree, opt_state, metrics = step(tree, opt_state, random_batch(0))
        losses.append(float(metrics["loss"]))
    for a, b in zip(jax.tree.leaves(tree["base"]), jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # set_to_zero: the base never moves
    assert float(jnp.abs(tree["lora"]["wq"]["b"]).max()) > 0  # the adapters did
    assert losses[-1] < losses[0]  # and they fit the (repeated) batch
    assert int(train.update_count(opt_state)) == 5


def test_eval_step_and_memory_plan_understand_a_lora_tree(params, key):
    lora = L.LoraConfig(rank=4)
    adapters = nonzero_adapters(params, lora)
    batch = random_batch(2)
    on_tree = train.make_eval_step(CONFIG, lora=lora)(L.with_adapters(params, adapters), batch)
    on_merged = train.make_eval_step(CONFIG)(L.merge(params, adapters, lora), batch)
    assert float(on_tree["loss"]) == pytest.approx(float(on_merged["loss"]), rel=1e-6)

    full = train.memory_plan(CONFIG, optim.make_optimizer(1e-3, 10, 0), 4, 32)
    small = train.memory_plan(CONFIG, optim.make_optimizer(1e-3, 10, 0, trainable=L.trainable_labels), 4, 32, lora=lora)
    adapter_bytes = 4 * L.count_trainable(L.init_adapters(params, lora, key))
    assert small.params == full.params + adapter_bytes
    assert small.optimizer < 2 * adapter_bytes + 64 < full.optimizer / 4  # moments for the adapters only


def test_lora_config_errors_name_the_field():
    with pytest.raises(ValueError, match="rank"):
        L.LoraConfig(rank=0)
    with pytest.raises(ValueError, match="targets"):
        L.LoraConfig(targets=("q_proj",))
    with pytest.raises(ValueError, match="alpha"):
        L.LoraConfig(alpha=0.0)
