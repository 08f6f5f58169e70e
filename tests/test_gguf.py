"""minift.gguf_llama / gguf_vocab: GGUF files load with the logits of the float model, and minift ->
GGUF -> minift is bit-equal at f32.

The GGUF files here are written by the `gguf` package's own writer, from the Hugging Face fixture
whose logits `transformers` computed (tests/fixtures/hf_llama/untied_gqa_sharded, a GQA model), with
the q/k rows permuted by llama.cpp's own formula (``llama_cpp_permute``, copied from the layout of
``convert_hf_to_gguf.py``, written independently of minift's `gguf_rows`). Tolerances: float32 on
both sides, logits O(1): 1e-4 absolute as in test_hf_llama. A quantized tensor is compared with the
model whose tensor is replaced by the *dequantized* values (the same 1e-4); against the float
logits the error is the quantization's, bounded below by the measured size of the weight error.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file

from minift import gguf_llama, hf_llama
from minift.chat_jinja import chat_jinja
from minift.config import get_config
from minift.gguf_vocab import gguf_vocab
from minift.model import forward, init_params
from minift.tokenizer import load_tokenizer

gguf = pytest.importorskip("gguf")

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = FIXTURES / "hf_llama" / "untied_gqa_sharded"
fwd = jax.jit(forward, static_argnames="config")
TEXTS = ["What is the capital of France?", "Đảo ngược các từ: mèo chó gà", "  spaces\tand\n\nnewlines 12345",
         "### Instruction: Reverse the words.\n### Input: a b c\n### Response:\n"]


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute (n_head already the kv head count for k)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_cpp_unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of `llama_cpp_permute` (checked against it below)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_fixture() -> tuple[dict[str, np.ndarray], dict]:
    tensors = {}
    for path in sorted(MODEL.glob("model-*.safetensors")):
        tensors.update(load_file(path))
    return tensors, json.loads((MODEL / "config.json").read_text())


GGUF_NAMES = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output",
              "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
              "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
              "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def gguf_name(hf: str) -> str:
    """llama.cpp's tensor name for a Hugging Face one, spelled out here (not from gguf's table)."""
    stem = hf.removesuffix(".weight")
    if stem.startswith("model.layers."):
        i, rest = stem.removeprefix("model.layers.").split(".", 1)
        return f"blk.{i}.{GGUF_NAMES[rest]}.weight"
    return GGUF_NAMES[stem] + ".weight"


def write_fixture_gguf(path: Path, quantize: dict[str, "gguf.GGMLQuantizationType"] = {}, arch: str = "llama",
                       permute: bool = True, cast: dict[str, type] = {}) -> dict[str, np.ndarray]:
    """The fixture model as a GGUF file written by gguf's writer; returns the HF tensors it holds
    (the quantized ones dequantized again), i.e. what a correct loader must reconstruct.
    ``cast``: tensors stored as another numpy dtype (e.g. int32, a type no Llama weight has)."""
    tensors, hf = hf_fixture()
    tok = load_tokenizer(FIXTURES / "tokenizers" / "llama3_style")
    w = gguf.GGUFWriter(path, arch)
    w.add_context_length(hf["max_position_embeddings"])
    w.add_embedding_length(hf["hidden_size"])
    w.add_block_count(hf["num_hidden_layers"])
    w.add_feed_forward_length(hf["intermediate_size"])
    w.add_head_count(hf["num_attention_heads"])
    w.add_head_count_kv(hf["num_key_value_heads"])
    w.add_rope_dimension_count(hf["head_dim"])
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(hf["rms_norm_eps"])
    vocab = gguf_vocab(tok)
    tokens = vocab["tokens"][: hf["vocab_size"]] + [f"[PAD{i}]" for i in range(hf["vocab_size"] - len(vocab["tokens"]))]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types((vocab["token_type"] + [1] * len(tokens))[: len(tokens)])
    kept = set(tokens)
    w.add_token_merges([m for m in vocab["merges"] if set(m.split(" ")) | {m.replace(" ", "")} <= kept])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    held = {}
    for name, t in tensors.items():
        t = t.astype(np.float32)
        if permute and name.endswith("q_proj.weight"):
            t = llama_cpp_permute(t, hf["num_attention_heads"])
        elif permute and name.endswith("k_proj.weight"):
            t = llama_cpp_permute(t, hf["num_key_value_heads"])
        held[name] = tensors[name]
        if name in quantize:
            q = gguf.quants.quantize(t, quantize[name])
            w.add_tensor(gguf_name(name), q, raw_dtype=quantize[name])
            held[name] = gguf.quants.dequantize(q, quantize[name])  # in the file's (permuted) row order
            if permute and "q_proj" in name:
                held[name] = llama_cpp_unpermute(held[name], hf["num_attention_heads"])
            elif permute and "k_proj" in name:
                held[name] = llama_cpp_unpermute(held[name], hf["num_key_value_heads"])
        else:
            w.add_tensor(gguf_name(name), t.astype(cast.get(name, np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return held


def logits_of(params, config) -> np.ndarray:
    g = load_file(MODEL / "golden.safetensors")
    out = np.asarray(fwd(params, jnp.asarray(g["input_ids"]), config, attention_mask=jnp.asarray(g["attention_mask"])))
    return out[g["attention_mask"].astype(bool)]


def golden_logits() -> np.ndarray:
    g = load_file(MODEL / "golden.safetensors")
    return g["logits"][g["attention_mask"].astype(bool)]


def test_permutation_is_llama_cpps_and_its_inverse():
    w = np.arange(4 * 8 * 3, dtype=np.float32).reshape(4 * 8, 3)  # 4 heads of K = 8 rows
    np.testing.assert_array_equal(gguf_llama.gguf_rows(w, 4), llama_cpp_permute(w, 4))
    np.testing.assert_array_equal(gguf_llama.hf_rows(gguf_llama.gguf_rows(w, 4), 4), w)
    np.testing.assert_array_equal(llama_cpp_unpermute(llama_cpp_permute(w, 4), 4), w)
    # row s*K/2 + i of a head goes to row 2i + s: head 0, K = 8: 0,4,1,5,2,6,3,7
    assert gguf_llama.gguf_rows(w, 4)[:8, 0].tolist() == [w[r, 0] for r in (0, 4, 1, 5, 2, 6, 3, 7)]


def test_a_float_gguf_loads_with_the_logits_of_transformers(tmp_path):
    write_fixture_gguf(tmp_path / "m.gguf")
    m = gguf_llama.load_gguf_llama(tmp_path / "m.gguf")
    assert m.config.n_kv_heads < m.config.n_heads and not m.config.tie_embeddings
    np.testing.assert_allclose(logits_of(m.params, m.config), golden_logits(), atol=1e-4, rtol=1e-4)


def test_loading_without_undoing_the_permutation_would_be_caught(tmp_path):
    """The test above can fail: a file whose q/k rows are *not* in llama.cpp's order loads wrong."""
    write_fixture_gguf(tmp_path / "m.gguf", permute=False)
    m = gguf_llama.load_gguf_llama(tmp_path / "m.gguf")
    assert np.abs(logits_of(m.params, m.config) - golden_logits()).max() > 1e-2


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_1"])
def test_a_quantized_tensor_loads_as_its_dequantized_values(tmp_path, qtype):
    kind = gguf.GGMLQuantizationType[qtype]
    name = "model.layers.0.self_attn.q_proj.weight"  # permuted and quantized (k too)
    held = write_fixture_gguf(tmp_path / "m.gguf", {name: kind, "model.layers.1.self_attn.k_proj.weight": kind,
                                                    "model.layers.1.mlp.up_proj.weight": kind})
    m = gguf_llama.load_gguf_llama(tmp_path / "m.gguf")
    assert m.tensor_types["blk.0.attn_q.weight"] == qtype
    _, hf = hf_fixture()
    config = hf_llama.config_from_hf(hf)
    reference = hf_llama.params_from_tensors(iter(held.items()), config, jnp.float32, "reference")
    np.testing.assert_allclose(logits_of(m.params, m.config), logits_of(reference, config), atol=1e-4, rtol=1e-4)
    tensors, _ = hf_fixture()
    weight_error = np.abs(held[name] - tensors[name]).max()
    assert 0 < weight_error < (0.01 if qtype == "Q8_0" else 0.1) * np.abs(tensors[name]).max()
    assert 0 < np.abs(logits_of(m.params, m.config) - golden_logits()).max() < 0.5


def test_minift_to_gguf_to_minift_is_bit_equal_at_f32(tmp_path, course_tokenizer):
    config = get_config("tiny", vocab_size=course_tokenizer.vocab_size, tie_embeddings=False)
    params = init_params(config, jax.random.PRNGKey(7))
    path = gguf_llama.save_gguf_llama(params, config, tmp_path / "m.gguf", course_tokenizer,
                                      chat_template=chat_jinja("compact"))
    m = gguf_llama.load_gguf_llama(path)
    assert m.config == config and m.chat_template == chat_jinja("compact")
    for a, b in zip(jax.tree.leaves(m.params), jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    tok = m.tokenizer  # a SentencePiece model rebuilt from the metadata
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.vocab_size) == (
        course_tokenizer.bos_id, course_tokenizer.eos_id, course_tokenizer.pad_id, course_tokenizer.vocab_size)
    for text in TEXTS:
        assert tok.encode(text) == course_tokenizer.encode(text)
        assert tok.decode(tok.encode(text)) == course_tokenizer.decode(course_tokenizer.encode(text))


def test_a_byte_level_vocabulary_round_trips(tmp_path):
    tok = load_tokenizer(FIXTURES / "tokenizers" / "llama3_style")
    config = get_config("tiny", vocab_size=tok.vocab_size)
    path = gguf_llama.save_gguf_llama(init_params(config, jax.random.PRNGKey(1)), config, tmp_path / "j.gguf", tok,
                                      dtype="float16")
    back = gguf_llama.load_gguf_llama(path).tokenizer
    assert back.gguf_pre == "llama-bpe" and back.stop_ids[0] == tok.eos_id
    for text in TEXTS + ["<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"]:
        assert back.encode(text) == tok.encode(text)
    assert back.token_id("<|eot_id|>") == tok.token_id("<|eot_id|>")


@pytest.mark.parametrize("dtype, bound", [("float16", 1e-3), ("q8_0", 1e-2)])
def test_written_types_are_what_they_say(tmp_path, course_tokenizer, dtype, bound):
    config = get_config("small", vocab_size=course_tokenizer.vocab_size)  # D = 256: rows of whole Q8_0 blocks
    config = type(config)(**{**config.__dict__, "n_layers": 1})
    params = init_params(config, jax.random.PRNGKey(2))
    path = gguf_llama.save_gguf_llama(params, config, tmp_path / "m.gguf", course_tokenizer, dtype=dtype)
    m = gguf_llama.load_gguf_llama(path)
    assert m.tensor_types["blk.0.attn_q.weight"] == {"float16": "F16", "q8_0": "Q8_0"}[dtype]
    assert m.tensor_types["blk.0.attn_norm.weight"] == "F32"  # 1-D tensors stay F32, as llama.cpp writes them
    w, back = np.asarray(params["layers"]["w_up"]), np.asarray(m.params["layers"]["w_up"])
    error = np.abs(back - w).max() / np.abs(w).max()
    assert 0 < error < bound


def test_another_architecture_or_type_is_a_one_line_error(tmp_path, course_tokenizer):
    write_fixture_gguf(tmp_path / "q.gguf", arch="qwen2")
    with pytest.raises(ValueError, match=r"q.gguf: general.architecture is 'qwen2'"):
        gguf_llama.load_gguf_llama(tmp_path / "q.gguf")
    write_fixture_gguf(tmp_path / "t.gguf", cast={"model.layers.0.mlp.up_proj.weight": np.int32})
    with pytest.raises(ValueError, match=r"tensor blk.0.ffn_up.weight has type I32"):
        gguf_llama.load_gguf_llama(tmp_path / "t.gguf")
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match="bad.gguf: not a readable GGUF file"):
        gguf_llama.load_gguf_llama(tmp_path / "bad.gguf")
    with pytest.raises(ValueError, match="q4_k"):
        gguf_llama.save_gguf_llama({}, get_config("tiny"), tmp_path / "x.gguf", course_tokenizer, dtype="q4_k")


def test_transformers_reads_a_minift_gguf_with_the_same_logits(tmp_path, course_tokenizer):
    """GGUF out, checked by another reader: transformers' own GGUF loader (when installed)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    config = get_config("tiny", vocab_size=course_tokenizer.vocab_size, tie_embeddings=False)
    params = init_params(config, jax.random.PRNGKey(5))
    gguf_llama.save_gguf_llama(params, config, tmp_path / "m.gguf", course_tokenizer)
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="m.gguf", dtype=torch.float32)
    ids = course_tokenizer.encode(TEXTS[1], bos=True)
    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits.numpy()[0]
    np.testing.assert_allclose(np.asarray(fwd(params, jnp.asarray([ids]), config))[0], theirs, atol=1e-4, rtol=1e-4)
