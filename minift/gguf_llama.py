"""GGUF checkpoints in and out: the one file llama.cpp, Ollama and LM Studio users download.

A GGUF file is a header of metadata (``llama.block_count``, ``tokenizer.ggml.tokens``,
``tokenizer.chat_template``, ...) followed by tensors, many of them quantized: a row of weights is
cut into blocks of 32 (or 256 for the "K" types), and each block stores small integers and a
scale, e.g. Q8_0 ``w = d * q`` with ``q`` int8, Q4_1 ``w = d * q + m`` with ``q`` in 0..15. The
``gguf`` package (llama.cpp's own Python reader and writer) reads, dequantizes and writes them;
this module only maps names and layouts onto minift's tree, through the Hugging Face layout that
``minift.hf_llama`` already knows:

    GGUF name (llama.cpp)        Hugging Face name                       minift
    token_embd.weight            model.embed_tokens.weight               embed (V, D)
    blk.{i}.attn_q.weight        model.layers.{i}.self_attn.q_proj.weight  layers.wq[i] (D, H, K)
    blk.{i}.attn_k / attn_v / attn_output, attn_norm, ffn_norm, ffn_gate / ffn_up / ffn_down
    output_norm.weight           model.norm.weight                       final_norm (D,)
    output.weight                lm_head.weight (absent: tied)           lm_head (D, V)

One difference is real: **llama.cpp's RoPE rotates neighbouring pairs** (dims 2i, 2i+1) while
Hugging Face and minift rotate dim i with i + K/2. llama.cpp's converter therefore permutes the
rows of every head of ``q_proj`` and ``k_proj`` (``convert_hf_to_gguf.py``'s ``permute``):
row ``s*K/2 + i`` of a head goes to row ``2i + s``. ``gguf_rows`` does that and ``hf_rows`` undoes
it; nothing else changes, because q.k is the same sum taken in another order.

Supported: the ``llama`` architecture (Llama-2/3, TinyLlama, SmolLM, Mistral-style GQA) with plain
RoPE, and every tensor type the ``gguf`` package dequantizes (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
Q5_0, Q5_1, Q2_K..Q6_K, ...). Anything else is a one-line error naming the key or the tensor.
Written: F32, F16 or Q8_0 (1-D norm weights stay F32, and a matrix whose rows are not a whole number
of 32-weight blocks is written F16, as llama.cpp does), the tokenizer
(``minift.gguf_vocab``) and the chat template.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from minift import hf_llama
from minift.config import ModelConfig
from minift.files import write_atomic
from minift.gguf_vocab import field, gguf_vocab, tokenizer_from_gguf
from minift.tokenizer import AnyTokenizer

# Optional: ``pip install 'minift[gguf]'``; looked up so that the import still sits at the module's top.
gguf = importlib.import_module("gguf") if importlib.util.find_spec("gguf") else None

ARCH = "llama"
WRITE_TYPES = ("float32", "float16", "q8_0")  # what `save_gguf_llama` writes


def _need_gguf(where: str | os.PathLike) -> None:
    if gguf is None:
        raise ImportError(f"{where}: reading or writing GGUF files needs the `gguf` package: pip install 'minift[gguf]'")


def gguf_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """Hugging Face q/k rows (heads*K, D) in llama.cpp's order: row s*K/2 + i of a head -> row 2i + s."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """Inverse of `gguf_rows`: llama.cpp's interleaved q/k rows back in Hugging Face's half-split order."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _name_map(config: ModelConfig) -> dict[str, str]:
    """Hugging Face tensor name -> GGUF tensor name, from llama.cpp's own table (``gguf.TensorNameMap``)."""
    table = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.n_layers)
    return {hf: table.get_name(hf, try_suffixes=(".weight",)) for hf in hf_llama.hf_names(config)}


def _f32(value: float) -> float:
    """A float32 metadata value as the shortest decimal that is that float32 (1e-05, not 9.99999974e-06):
    the value the config was written with."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def config_from_gguf(fields: dict, tensor_names: set[str], where: str, **overrides) -> ModelConfig:
    """A minift `ModelConfig` from a GGUF file's ``llama.*`` metadata; errors name the key."""
    arch = field(fields, "general.architecture")
    if arch != ARCH:
        raise ValueError(f"{where}: general.architecture is {arch!r}; minift reads the 'llama' architecture only")
    if "rope_freqs.weight" in tensor_names or field(fields, "llama.rope.scaling.type", "none") not in ("none", "linear"):
        raise ValueError(f"{where}: RoPE scaling (rope_freqs.weight / llama.rope.scaling.type) is not supported "
                         "in GGUF files; load the Hugging Face folder of this model instead")
    if field(fields, "llama.rope.scaling.type") == "linear" and field(fields, "llama.rope.scaling.factor", 1.0) != 1.0:
        raise ValueError(f"{where}: llama.rope.scaling.type 'linear' is not supported")

    def need(key: str) -> int:
        value = field(fields, f"llama.{key}")
        if value is None:
            raise ValueError(f"{where}: metadata key llama.{key} is missing")
        return int(value)

    D, H = need("embedding_length"), need("attention.head_count")
    vocab = field(fields, "llama.vocab_size") or len(field(fields, "tokenizer.ggml.tokens") or ())
    config = ModelConfig(
        vocab_size=int(vocab), d_model=D, n_layers=need("block_count"), n_heads=H,
        n_kv_heads=int(field(fields, "llama.attention.head_count_kv", H)), d_ff=need("feed_forward_length"),
        max_seq_len=need("context_length"), rope_theta=_f32(field(fields, "llama.rope.freq_base", 10000.0)),
        norm_eps=_f32(field(fields, "llama.attention.layer_norm_rms_epsilon", 1e-5)),
        tie_embeddings="output.weight" not in tensor_names, **overrides,
    )
    rope_dims = field(fields, "llama.rope.dimension_count", config.head_dim)
    if int(rope_dims) != config.head_dim:
        raise ValueError(f"{where}: llama.rope.dimension_count = {rope_dims} but the head width is "
                         f"{config.head_dim}; minift rotates every dim of a head (partial RoPE is not supported)")
    return config


class GGUFModel(NamedTuple):
    """What one GGUF file holds, ready for minift."""

    params: dict
    config: ModelConfig
    tokenizer: AnyTokenizer
    chat_template: str | None  # the Jinja source of tokenizer.chat_template, if the file has one
    tensor_types: dict[str, str]  # GGUF tensor name -> its stored type, e.g. "Q4_1"


def _reader(path: Path):
    _need_gguf(path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    try:
        return gguf.GGUFReader(path)
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable GGUF file ({err})") from None


def load_gguf_tokenizer(path: str | os.PathLike) -> tuple[AnyTokenizer, str | None]:
    """Only the tokenizer of a GGUF file, and its Jinja chat template (None if it has none)."""
    path = Path(path)
    fields = _reader(path).fields
    tokenizer = tokenizer_from_gguf(fields, str(path))
    tokenizer.path = path
    return tokenizer, field(fields, "tokenizer.chat_template")


def load_gguf_llama(path: str | os.PathLike, *, dtype: jnp.dtype = jnp.float32, **overrides) -> GGUFModel:
    """Params, config, tokenizer and chat template from a llama-architecture GGUF file, in ``dtype``.

    Every tensor is dequantized to float32 by ``gguf.quants.dequantize`` (one at a time), its q/k rows
    put back in Hugging Face's order (`hf_rows`), then laid out as minift's tree by ``minift.hf_llama``.
    ``overrides`` go to the `ModelConfig` (``attention``, ``compute_dtype``, ``remat``).
    """
    path = Path(path)
    reader = _reader(path)
    stored = {t.name: t for t in reader.tensors}
    config = config_from_gguf(reader.fields, set(stored), str(path), **overrides)
    to_gguf = _name_map(config)

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        for hf_name, gguf_name in to_gguf.items():
            t = stored.get(gguf_name)
            if t is None:
                continue  # params_from_tensors names what is missing
            try:
                w = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
            except NotImplementedError:
                raise ValueError(f"{path}: tensor {gguf_name} has type {t.tensor_type.name}, which the gguf "
                                 "package cannot dequantize") from None
            if hf_name.endswith("q_proj.weight"):
                w = hf_rows(w, config.n_heads)
            elif hf_name.endswith("k_proj.weight"):
                w = hf_rows(w, config.n_kv_heads)
            yield hf_name, w

    params = hf_llama.params_from_tensors(tensors(), config, dtype, str(path))
    tokenizer = tokenizer_from_gguf(reader.fields, str(path))
    tokenizer.path = path
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"{path}: the vocabulary has {tokenizer.vocab_size} tokens but the model "
                         f"{config.vocab_size} embeddings")
    template = field(reader.fields, "tokenizer.chat_template")
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    return GGUFModel(params, config, tokenizer, template, types)


def gguf_tensors(params: dict, config: ModelConfig) -> Iterator[tuple[str, np.ndarray]]:
    """(GGUF name, float32 (out, in) tensor) for every tensor of the model, q/k rows in llama.cpp's order."""
    to_gguf = _name_map(config)
    for hf_name, w in hf_llama.hf_tensors(params, config, np.float32).items():
        if hf_name.endswith("q_proj.weight"):
            w = gguf_rows(w, config.n_heads)
        elif hf_name.endswith("k_proj.weight"):
            w = gguf_rows(w, config.n_kv_heads)
        yield to_gguf[hf_name], np.ascontiguousarray(w)


def save_gguf_llama(params: dict, config: ModelConfig, path: str | os.PathLike, tokenizer: AnyTokenizer, *,
                    dtype: str = "float32", chat_template: str | None = None, name: str = "minift") -> Path:
    """Write a llama-architecture GGUF file that llama.cpp (and ``transformers``' GGUF loader) reads.

    ``dtype``: "float32", "float16" or "q8_0" for the matrices (norm weights stay F32).
    ``chat_template``: Jinja source stored as ``tokenizer.chat_template``. Written atomically.
    """
    path = Path(path)
    _need_gguf(path)
    if dtype not in WRITE_TYPES:
        raise ValueError(f"--dtype {dtype!r}: a GGUF file is written as one of {', '.join(WRITE_TYPES)}")
    if config.rope_scaling is not None:
        raise ValueError(f"{path}: a model with Llama-3 RoPE scaling cannot be written as GGUF by minift "
                         "(llama.cpp stores it as a rope_freqs tensor); export it as a Hugging Face folder")
    qtype = {"float32": gguf.GGMLQuantizationType.F32, "float16": gguf.GGMLQuantizationType.F16,
             "q8_0": gguf.GGMLQuantizationType.Q8_0}[dtype]
    file_type = {"float32": gguf.LlamaFileType.ALL_F32, "float16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype]
    vocab = gguf_vocab(tokenizer)

    def write(tmp: Path) -> None:
        w = gguf.GGUFWriter(tmp, ARCH)
        w.add_name(name)
        w.add_context_length(config.max_seq_len)
        w.add_embedding_length(config.d_model)
        w.add_block_count(config.n_layers)
        w.add_feed_forward_length(config.d_ff)
        w.add_head_count(config.n_heads)
        w.add_head_count_kv(config.n_kv_heads)
        w.add_rope_dimension_count(config.head_dim)
        w.add_rope_freq_base(config.rope_theta)
        w.add_layer_norm_rms_eps(config.norm_eps)
        w.add_vocab_size(config.vocab_size)
        w.add_file_type(file_type)
        w.add_tokenizer_model(vocab["model"])
        if "pre" in vocab:
            w.add_tokenizer_pre(vocab["pre"])
        w.add_token_list(vocab["tokens"])
        w.add_token_types(vocab["token_type"])
        if "scores" in vocab:
            w.add_token_scores(vocab["scores"])
        if "merges" in vocab:
            w.add_token_merges(vocab["merges"])
        if "add_space_prefix" in vocab:
            w.add_add_space_prefix(vocab["add_space_prefix"])
        w.add_add_bos_token(vocab["add_bos_token"])
        w.add_bos_token_id(vocab["bos_token_id"])
        w.add_eos_token_id(vocab["eos_token_id"])
        w.add_pad_token_id(vocab["padding_token_id"])
        if "unknown_token_id" in vocab:
            w.add_unk_token_id(vocab["unknown_token_id"])
        if chat_template:
            w.add_chat_template(chat_template)
        for gguf_name, t in gguf_tensors(params, config):
            if t.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
                w.add_tensor(gguf_name, t)
            elif qtype == gguf.GGMLQuantizationType.F16 or t.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
                w.add_tensor(gguf_name, t.astype(np.float16))  # rows not a whole number of blocks: F16, as llama.cpp
            else:
                w.add_tensor(gguf_name, gguf.quants.quantize(t, qtype), raw_dtype=qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    return write_atomic(path, write)
