"""minift.hf_llama: Hugging Face Llama checkpoints load, match `transformers`' own logits, export, reload.

The fixtures in tests/fixtures/hf_llama/ were written by `transformers` (``make_golden.py`` there,
``LlamaForCausalLM.save_pretrained`` and its forward pass), so the golden logits are independent of
minift: a sharded, untied, grouped-query model in the Llama-2 style, and a tied one with Llama-3's
RoPE scaling. Tolerances: both sides compute in float32 with different summation orders; logits are
O(1-10), so 1e-4 absolute is ~10 float32 ulps of the largest, and a wrong layout is off by O(1).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

from minift import hf_llama
from minift.config import get_config
from minift.model import forward, init_params

FIXTURES = Path(__file__).parent / "fixtures" / "hf_llama"
NAMES = ("untied_gqa_sharded", "tied_llama3_rope")
fwd = jax.jit(forward, static_argnames="config")


def golden(name: str) -> dict[str, np.ndarray]:
    return load_file(FIXTURES / name / "golden.safetensors")


def fixture_tensors(name: str) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted((FIXTURES / name).glob("model*.safetensors")):
        with safe_open(path, framework="numpy") as f:
            out.update({k: f.get_tensor(k) for k in f.keys()})
    return out


def real_logits(params, config, g) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(fwd(params, jnp.asarray(g["input_ids"]), config, attention_mask=jnp.asarray(g["attention_mask"])))
    real = g["attention_mask"].astype(bool)  # padded query rows are not defined the same way by both
    return logits[real], g["logits"][real]


@pytest.mark.parametrize("name", NAMES)
def test_loaded_model_matches_the_golden_logits_of_transformers(name):
    params, config = hf_llama.load_hf_llama(FIXTURES / name)
    assert config.tie_embeddings == (name == "tied_llama3_rope") and ("lm_head" in params) != config.tie_embeddings
    assert config.n_kv_heads < config.n_heads  # grouped-query attention is exercised
    ours, theirs = real_logits(params, config, golden(name))
    assert np.abs(theirs).max() > 1.0  # the fixture's logits are large enough to tell layouts apart
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4)


def test_llama3_rope_scaling_is_read_and_changes_the_model():
    params, config = hf_llama.load_hf_llama(FIXTURES / "tied_llama3_rope")
    assert config.rope_scaling == (8.0, 1.0, 4.0, 16) and config.rope_theta == 500000.0
    # Without the scaling the same weights give other logits: the golden match above needs it.
    plain = hf_llama.config_from_hf({**json.loads((FIXTURES / "tied_llama3_rope" / "config.json").read_text()),
                                     "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}})
    ours, theirs = real_logits(params, plain, golden("tied_llama3_rope"))
    assert np.abs(ours - theirs).max() > 1e-2


def test_old_and_new_config_forms_give_the_same_config():
    new = json.loads((FIXTURES / "tied_llama3_rope" / "config.json").read_text())
    rope = dict(new["rope_parameters"])
    old = {k: v for k, v in new.items() if k != "rope_parameters"}
    old.update(rope_theta=rope.pop("rope_theta"), rope_scaling=rope)  # the transformers 4.x form
    assert hf_llama.config_from_hf(old) == hf_llama.config_from_hf(new)


@pytest.mark.parametrize("name", NAMES)
def test_export_writes_the_exact_layout_and_load_export_load_is_the_identity(name, tmp_path):
    params, config = hf_llama.load_hf_llama(FIXTURES / name)
    hf_llama.save_hf_llama(params, config, tmp_path / "out", bos_id=1, eos_id=2)
    original = fixture_tensors(name)
    with safe_open(tmp_path / "out" / "model.safetensors", framework="numpy") as f:
        exported = {k: f.get_tensor(k) for k in f.keys()}
    assert exported.keys() == original.keys()  # the same names, lm_head absent when tied
    for key, value in original.items():
        assert exported[key].dtype == value.dtype and exported[key].shape == value.shape, key
        np.testing.assert_array_equal(exported[key], value)  # a pure relayout: bit for bit
    again, config_again = hf_llama.load_hf_llama(tmp_path / "out")
    assert config_again == config
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)


def test_loads_in_bfloat16_close_to_float32():
    params, config = hf_llama.load_hf_llama(FIXTURES / "untied_gqa_sharded", dtype=jnp.bfloat16)
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}
    ours, theirs = real_logits(params, config, golden("untied_gqa_sharded"))
    # bf16 weights: ~3 significant digits each, errors add over 2 layers; a wrong layout is off by O(1).
    assert np.abs(ours - theirs).max() < 0.1 * np.abs(theirs).max()


def test_errors_name_the_file_and_the_tensor(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURES / "untied_gqa_sharded", broken)
    index = json.loads((broken / "model.safetensors.index.json").read_text())
    del index["weight_map"]["model.layers.1.mlp.down_proj.weight"]
    (broken / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"missing.*model\.layers\.1\.mlp\.down_proj\.weight"):
        hf_llama.load_hf_llama(broken)
    wrong = tmp_path / "wrong"
    shutil.copytree(FIXTURES / "tied_llama3_rope", wrong)
    config = json.loads((wrong / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps({**config, "intermediate_size": 64}))
    with pytest.raises(ValueError, match=r"mlp\.\w+_proj\.weight has shape .* does not fit"):
        hf_llama.load_hf_llama(wrong)
    (wrong / "model.safetensors").rename(wrong / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match=r"never pickled \.bin"):
        hf_llama.load_hf_llama(wrong)
    with pytest.raises(ValueError, match=r"config\.json: RoPE scaling 'yarn' is not supported"):
        hf_llama.config_from_hf({**config, "rope_parameters": {"rope_type": "yarn", "factor": 2.0}})
    with pytest.raises(ValueError, match=r"missing field 'intermediate_size'"):
        hf_llama.config_from_hf({k: v for k, v in config.items() if k != "intermediate_size"})


def test_transformers_loads_an_exported_minift_model_and_agrees():
    torch = pytest.importorskip("torch", reason="the live parity check needs the optional [bench] extra")
    transformers = pytest.importorskip("transformers", reason="the live parity check needs the optional [bench] extra")
    config = get_config("tiny", tie_embeddings=False, rope_scaling=(4.0, 1.0, 4.0, 32))
    params = init_params(config, jax.random.PRNGKey(7))
    params = jax.tree.map(lambda x: x * 5 if x.ndim > 1 else x, params)
    with tempfile.TemporaryDirectory() as folder:
        hf_llama.save_hf_llama(params, config, folder, bos_id=2, eos_id=3)
        model = transformers.LlamaForCausalLM.from_pretrained(folder).float().eval()
    tokens = np.random.default_rng(0).integers(0, config.vocab_size, (2, 40))
    with torch.no_grad():
        theirs = model(input_ids=torch.as_tensor(tokens)).logits.numpy()
    np.testing.assert_allclose(np.asarray(fwd(params, jnp.asarray(tokens, jnp.int32), config)), theirs,
                               atol=1e-4, rtol=1e-4)
