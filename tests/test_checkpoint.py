"""Checkpoints: exact round trips, atomic writes, and errors that name the file and the key."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest
import safetensors.numpy

from minift import checkpoint
from minift.checkpoint import (
    Checkpoint,
    checkpoint_file,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)


@dataclasses.dataclass(frozen=True)
class StandInConfig:
    """A stand-in for minift.config.ModelConfig: a frozen dataclass with to_dict()."""

    vocab_size: int = 11
    d_model: int = 4
    n_layers: int = 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def make_params(key: jax.Array) -> dict:
    """A nested params dict shaped like the model's (layers stacked on a leading L axis)."""
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "embed": jax.random.normal(k1, (11, 4)),
        "layers": {
            "wq": jax.random.normal(k2, (2, 4, 2, 2)),
            "attn_norm": jnp.ones((2, 4)),
        },
        "final_norm": jax.random.normal(k3, (4,)),
    }


def make_optimizer() -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-2, warmup_steps=2, decay_steps=10)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.1))


def trained_state(key: jax.Array, steps: int = 3):
    """Params and an AdamW state after a few real updates, so moments and counts are non-trivial."""
    params = make_params(key)
    tx = make_optimizer()
    state = tx.init(params)
    loss = lambda p: sum(jnp.sum(jnp.sin(x) ** 2) for x in jax.tree_util.tree_leaves(p))
    for _ in range(steps):
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def assert_trees_bitwise_equal(a, b) -> None:
    """Same structure, dtypes, shapes and bits (tolerance 0: a checkpoint must be exact)."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


@pytest.fixture
def state(key):
    return trained_state(key)


def test_round_trip_is_bitwise_exact(tmp_path, key, state):
    params, opt_state = state
    rng = jax.random.fold_in(key, 7)  # raw uint32 key (jax.random.PRNGKey style)
    config = StandInConfig()
    path = save_checkpoint(
        tmp_path / "ck.safetensors",
        params=params,
        opt_state=opt_state,
        step=3,
        rng=rng,
        config=config,
        metadata={"loss": 1.25, "note": "round trip"},
    )
    ck = load_checkpoint(
        path, params_template=params, opt_state_template=opt_state, config=config
    )
    assert isinstance(ck, Checkpoint)
    assert_trees_bitwise_equal(ck.params, params)
    assert_trees_bitwise_equal(ck.opt_state, opt_state)
    assert ck.step == 3
    assert ck.rng.dtype == jnp.uint32 and np.array_equal(ck.rng, rng)
    assert ck.config_dict == config.to_dict()
    assert ck.metadata == {"loss": 1.25, "note": "round trip"}

    # The restored state resumes training exactly: one more update gives identical results.
    tx = make_optimizer()
    grads = jax.tree_util.tree_map(jnp.cos, params)
    expected = tx.update(grads, opt_state, params)
    resumed = tx.update(grads, ck.opt_state, ck.params)
    assert_trees_bitwise_equal(resumed, expected)


def test_key_names_follow_the_documented_scheme(tmp_path, state):
    params, opt_state = state
    path = save_checkpoint(tmp_path / "ck.safetensors", params=params, opt_state=opt_state, step=0)
    names = set(safetensors.numpy.load_file(path))
    assert "params/layers/wq" in names and "params/embed" in names
    # chain(clip, adamw): index 1 is adamw, whose first state (0) is ScaleByAdamState(count, mu, nu)
    assert {"opt_state/1/0/count", "opt_state/1/0/mu/layers/wq", "opt_state/1/0/nu/embed"} <= names
    assert "rng" not in names


def test_typed_key_round_trips(tmp_path, key):
    params = make_params(key)
    for rng in (jax.random.key(3), jax.random.key(3, impl="rbg")):
        path = save_checkpoint(tmp_path / "ck.safetensors", params=params, step=1, rng=rng)
        loaded = load_checkpoint(path).rng
        assert jax.random.key_impl(loaded) == jax.random.key_impl(rng)
        assert np.array_equal(jax.random.key_data(loaded), jax.random.key_data(rng))
        # same key -> same random numbers
        assert np.array_equal(jax.random.normal(loaded, (3,)), jax.random.normal(rng, (3,)))


def test_without_templates_params_come_back_as_nested_dicts(tmp_path, key):
    params = make_params(key)
    path = save_checkpoint(tmp_path / "ck.safetensors", params=params, step=5)
    ck = load_checkpoint(path)
    assert_trees_bitwise_equal(ck.params, params)
    assert ck.opt_state is None and ck.rng is None and ck.config_dict is None
    assert ck.metadata == {}


def test_bfloat16_round_trips(tmp_path, key):
    params = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), make_params(key))
    path = save_checkpoint(tmp_path / "bf16.safetensors", params=params, step=0)
    ck = load_checkpoint(path, params_template=params)
    assert ck.params["embed"].dtype == jnp.bfloat16
    assert_trees_bitwise_equal(ck.params, params)
    # stored as the standard safetensors BF16 type, so other readers (e.g. HF) see bfloat16 too
    with safetensors.safe_open(path, framework="numpy") as f:
        assert f.get_slice("params/embed").get_dtype() == "BF16"
    assert ml_dtypes.bfloat16 == np.dtype(ck.params["embed"].dtype)


def test_eval_shape_template_loads_without_allocating(tmp_path, key, state):
    params, _ = state
    path = save_checkpoint(tmp_path / "ck.safetensors", params=params, step=0)
    template = jax.eval_shape(lambda: params)  # ShapeDtypeStructs: shapes and dtypes only
    assert_trees_bitwise_equal(load_checkpoint(path, params_template=template).params, params)


def test_failed_write_leaves_previous_checkpoint_and_no_temp_file(tmp_path, key, monkeypatch):
    path = tmp_path / "ck.safetensors"
    old = make_params(key)
    save_checkpoint(path, params=old, step=1)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("simulated crash just before the rename")

    monkeypatch.setattr(os, "replace", crash)
    new = jax.tree_util.tree_map(lambda x: x + 1, old)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, params=new, step=2)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert load_checkpoint(path).step == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]


def test_crash_mid_serialisation_leaves_previous_checkpoint(tmp_path, key, monkeypatch):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, params=make_params(key), step=1)
    before = path.read_bytes()

    def half_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 17)  # a few bytes land, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.safetensors.numpy, "save_file", half_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, params=make_params(key), step=2)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_checkpoint(path)


def test_truncated_file_names_the_path(tmp_path, key):
    path = save_checkpoint(tmp_path / "ck.safetensors", params=make_params(key), step=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"ck\.safetensors.*truncated"):
        load_checkpoint(path)


def test_random_bytes_file_names_the_path(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(ValueError, match=r"junk\.safetensors.*not a readable safetensors"):
        load_checkpoint(path)


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "hf.safetensors"
    safetensors.numpy.save_file({"model.embed_tokens.weight": np.zeros((2, 2), np.float32)}, path)
    with pytest.raises(ValueError, match="not a minift checkpoint"):
        load_checkpoint(path)


def test_template_key_mismatch_names_the_keys(tmp_path, key):
    params = make_params(key)
    path = save_checkpoint(tmp_path / "ck.safetensors", params=params, step=1)
    template = {**params, "lm_head": jnp.zeros((4, 11))}
    with pytest.raises(ValueError, match=r"missing 1 key.*'params/lm_head'"):
        load_checkpoint(path, params_template=template)
    smaller = {k: v for k, v in params.items() if k != "final_norm"}
    with pytest.raises(ValueError, match=r"unexpected key.*'params/final_norm'"):
        load_checkpoint(path, params_template=smaller)


def test_template_shape_and_dtype_mismatch_names_the_key(tmp_path, key):
    params = make_params(key)
    path = save_checkpoint(tmp_path / "ck.safetensors", params=params, step=1)
    wide = {**params, "embed": jnp.zeros((11, 8))}
    with pytest.raises(ValueError, match=r"'params/embed'.*\(11, 4\).*\(11, 8\)"):
        load_checkpoint(path, params_template=wide)
    half = {**params, "final_norm": params["final_norm"].astype(jnp.bfloat16)}
    with pytest.raises(ValueError, match=r"'params/final_norm'.*float32.*bfloat16"):
        load_checkpoint(path, params_template=half)


def test_config_mismatch_names_the_field(tmp_path, key):
    path = save_checkpoint(
        tmp_path / "ck.safetensors", params=make_params(key), step=1, config=StandInConfig()
    )
    with pytest.raises(ValueError, match=r"d_model: stored 4 vs given 8"):
        load_checkpoint(path, config=StandInConfig(d_model=8))
    load_checkpoint(path, config=StandInConfig())  # the same config passes


def test_opt_state_template_without_saved_state_is_an_error(tmp_path, key, state):
    params, opt_state = state
    path = save_checkpoint(tmp_path / "ck.safetensors", params=params, step=1)
    with pytest.raises(ValueError, match="without an optimizer state"):
        load_checkpoint(path, opt_state_template=opt_state)


def test_slash_in_a_dict_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="a/b"):
        save_checkpoint(tmp_path / "ck.safetensors", params={"a/b": jnp.zeros(2)}, step=0)


def test_run_folder_naming_latest_and_prune(tmp_path, key):
    params = make_params(key)
    assert latest_checkpoint(tmp_path) is None
    for step in (5, 100, 20):
        save_checkpoint(checkpoint_path(tmp_path, step), params=params, step=step)
    assert checkpoint_path(tmp_path, 100).name == "step_00000100.safetensors"
    # a leftover temp file from an interrupted write is not a checkpoint
    (tmp_path / "checkpoints" / ".step_00000200.safetensors.x.tmp").write_bytes(b"")
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step_00000005.safetensors",
        "step_00000020.safetensors",
        "step_00000100.safetensors",
    ]
    assert load_checkpoint(latest_checkpoint(tmp_path)).step == 100
    deleted = prune_checkpoints(tmp_path, keep_last_n=2)
    assert [p.name for p in deleted] == ["step_00000005.safetensors"]
    assert [p.name for p in list_checkpoints(tmp_path)][0] == "step_00000020.safetensors"
    with pytest.raises(ValueError, match="keep_last_n"):
        prune_checkpoints(tmp_path, keep_last_n=0)


def test_module_source_has_no_object_serialisation():
    source = Path(checkpoint.__file__).read_text()
    assert "pickle" not in source.lower()


def test_checkpoint_file_resolves_a_run_folder_and_names_what_is_missing(tmp_path, key):
    with pytest.raises(FileNotFoundError, match=r"nothing: no such run folder or checkpoint file \(train one\)"):
        checkpoint_file(tmp_path / "nothing", "train one")
    (tmp_path / "run").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no checkpoint under .*checkpoints; train one"):
        checkpoint_file(tmp_path / "run", "train one")
    saved = save_checkpoint(checkpoint_path(tmp_path / "run", 3), params={"w": jnp.ones(2)}, step=3)
    assert checkpoint_file(tmp_path / "run", "train one") == saved == checkpoint_file(saved, "train one")
