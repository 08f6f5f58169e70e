"""ModelConfig (§3.1 model sizes): presets, validation, JSON round trip, static-jit friendliness."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import pytest

from minift.config import PRESETS, ModelConfig, get_config


def test_presets_have_the_documented_sizes():
    assert get_config("tiny").n_params < 1_000_000
    # The CPU demo model: D=128, 4 layers, V=2000 tied: 994,432 parameters (minift.config).
    assert get_config("course").n_params == 994_432
    # TinyLlama-1.1B's published parameter count (HF model card / summing its safetensors).
    assert get_config("tinyllama-1.1b").n_params == 1_100_048_384
    tl = get_config("tinyllama-1.1b")
    assert (tl.vocab_size, tl.d_model, tl.n_layers, tl.n_heads, tl.n_kv_heads, tl.d_ff, tl.max_seq_len) == (
        32000, 2048, 22, 32, 4, 5632, 2048)
    assert not tl.tie_embeddings and tl.head_dim == 64


def test_get_config_overrides_vocab_and_rejects_unknown():
    assert get_config("course", vocab_size=1234).vocab_size == 1234
    with pytest.raises(ValueError, match="unknown model preset 'nope'"):
        get_config("nope")
    with pytest.raises(ValueError, match="vocab_sze"):
        get_config("tiny", vocab_sze=10)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(d_model=66), "not divisible by n_heads"),
        (dict(n_kv_heads=3), "not a multiple of n_kv_heads"),
        (dict(d_model=12, n_heads=4), "head_dim = d_model // n_heads = 3 is odd"),
        (dict(attention="flash"), "attention must be one of"),
        (dict(compute_dtype="float16"), "compute_dtype must be one of"),
        (dict(remat=1), "remat must be True or False"),
        (dict(n_layers=0), "n_layers must be a positive int"),
        (dict(rope_theta=0.0), "must be > 0"),
    ],
)
def test_validation_names_the_problem(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_config("tiny", **overrides)


def test_dict_round_trip_through_json_and_strictness():
    for config in PRESETS.values():
        assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    d = get_config("tiny").to_dict()
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['extra'\]"):
        ModelConfig.from_dict({**d, "extra": 1})
    # How to run may be absent (a checkpoint from before the field existed); what the model is may not.
    old = {k: v for k, v in d.items() if k not in ("attention", "compute_dtype", "remat", "rope_scaling")}
    assert ModelConfig.from_dict(old) == get_config("tiny")
    del d["rope_theta"]
    with pytest.raises(ValueError, match=r"missing field\(s\) \['rope_theta'\]"):
        ModelConfig.from_dict(d)


def test_config_is_a_static_jit_argument():
    traces = []

    f = jax.jit(lambda x, config: (traces.append(1), x * config.d_model)[1], static_argnames="config")
    a = f(jnp.ones(2), get_config("tiny"))
    # An *equal* but distinct config object must hit the cache: hash/eq are by value.
    b = f(jnp.ones(2), dataclasses.replace(get_config("tiny")))
    assert len(traces) == 1 and float(a[0]) == float(b[0]) == 64.0
    f(jnp.ones(2), get_config("tiny", d_model=32))
    assert len(traces) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_config("tiny").d_model = 8  # type: ignore[misc]
