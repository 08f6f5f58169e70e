"""Hugging Face Llama-family checkpoints in and out: ``config.json`` + safetensors <-> minift.

The one place that knows the Hugging Face names. A Llama-layout checkpoint (Llama-2/3,
TinyLlama, SmolLM, ...: ``"model_type": "llama"``) is a folder with ``config.json`` and either
``model.safetensors`` or shards listed in ``model.safetensors.index.json``. Its tensors map onto
minift's tree one-to-one; only the layout differs, because ``torch.nn.Linear`` stores its weight
as (out, in) and minift writes ``x @ W`` with W as (in, out), split into heads:

    model.embed_tokens.weight                (V, D)     -> embed (V, D)
    model.layers.{i}.input_layernorm.weight  (D,)       -> layers.attn_norm[i] (D,)
    model.layers.{i}.self_attn.q_proj.weight (H*K, D)   -> layers.wq[i] (D, H, K)
    model.layers.{i}.self_attn.k_proj.weight (G*K, D)   -> layers.wk[i] (D, G, K)   (v_proj alike)
    model.layers.{i}.self_attn.o_proj.weight (D, H*K)   -> layers.wo[i] (H, K, D)
    model.layers.{i}.post_attention_layernorm.weight    -> layers.mlp_norm[i] (D,)
    model.layers.{i}.mlp.gate_proj.weight    (F, D)     -> layers.w_gate[i] (D, F)  (up_proj alike)
    model.layers.{i}.mlp.down_proj.weight    (D, F)     -> layers.w_down[i] (F, D)
    model.norm.weight                        (D,)       -> final_norm (D,)
    lm_head.weight                           (V, D)     -> lm_head (D, V), absent when tied

RoPE needs no permutation: Hugging Face's Llama and minift both pair dim i with i + K/2
(``rotate_half``). Loading reads one tensor at a time into the stacked (L, ...) arrays of the
chosen dtype, so the largest extra memory is one tensor, not a second copy of the model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from minift.config import ModelConfig
from minift.files import read_json, write_atomic, write_json
from minift.model import init_params

Params = dict

# minift layer leaf -> Hugging Face name inside model.layers.{i}.
LAYER_NAMES = {
    "attn_norm": "input_layernorm.weight", "wq": "self_attn.q_proj.weight", "wk": "self_attn.k_proj.weight",
    "wv": "self_attn.v_proj.weight", "wo": "self_attn.o_proj.weight", "mlp_norm": "post_attention_layernorm.weight",
    "w_gate": "mlp.gate_proj.weight", "w_up": "mlp.up_proj.weight", "w_down": "mlp.down_proj.weight",
}
TOP_NAMES = {"embed": "model.embed_tokens.weight", "final_norm": "model.norm.weight", "lm_head": "lm_head.weight"}


def to_minift(name: str, w: np.ndarray, config: ModelConfig) -> np.ndarray:
    """One Hugging Face tensor (without the layer axis) in minift's layout, by minift leaf name."""
    D, H, G, K = config.d_model, config.n_heads, config.n_kv_heads, config.head_dim
    if name == "wq":
        return w.T.reshape(D, H, K)  # (H*K, D) -> (D, H, K)
    if name in ("wk", "wv"):
        return w.T.reshape(D, G, K)  # (G*K, D) -> (D, G, K)
    if name == "wo":
        return w.T.reshape(H, K, D)  # (D, H*K) -> (H, K, D)
    if name in ("w_gate", "w_up", "w_down", "lm_head"):
        return w.T  # (out, in) -> (in, out)
    return w  # norms, embed


def to_hf(name: str, w: np.ndarray, config: ModelConfig) -> np.ndarray:
    """Inverse of `to_minift`."""
    D, HK, GK = config.d_model, config.n_heads * config.head_dim, config.n_kv_heads * config.head_dim
    if name == "wq":
        return w.reshape(D, HK).T
    if name in ("wk", "wv"):
        return w.reshape(D, GK).T
    if name == "wo":
        return w.reshape(HK, D).T
    if name in ("w_gate", "w_up", "w_down", "lm_head"):
        return w.T
    return w


def _rope(hf: dict, where: str) -> tuple[float, tuple | None]:
    """(rope_theta, minift rope_scaling) from a config in the old (rope_theta + rope_scaling) or
    the new (rope_parameters, transformers >= 5) form."""
    params = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or (params if params.get("rope_type", "default") != "default" else None)
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    if not scaling:
        return theta, None
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind != "llama3":
        raise ValueError(f"{where}: RoPE scaling {kind!r} is not supported (minift implements 'llama3' only)")
    return theta, (float(scaling["factor"]), float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"]),
                   int(scaling["original_max_position_embeddings"]))


def config_from_hf(hf: dict, where: str = "config.json", **overrides) -> ModelConfig:
    """A minift `ModelConfig` from a Hugging Face Llama ``config.json`` dict; errors name the field."""
    if hf.get("model_type") not in ("llama", None):
        raise ValueError(f"{where}: model_type {hf.get('model_type')!r} is not a Llama-layout model")
    for field, ok in (("hidden_act", ("silu", None)), ("attention_bias", (False, None)), ("mlp_bias", (False, None))):
        if hf.get(field) not in ok:
            raise ValueError(f"{where}: {field}={hf.get(field)!r} is not supported (minift's Llama has "
                             "SiLU and no biases)")
    try:
        D, H = int(hf["hidden_size"]), int(hf["num_attention_heads"])
        theta, scaling = _rope(hf, where)
        fields = dict(
            vocab_size=int(hf["vocab_size"]), d_model=D, n_layers=int(hf["num_hidden_layers"]), n_heads=H,
            n_kv_heads=int(hf.get("num_key_value_heads") or H), d_ff=int(hf["intermediate_size"]),
            max_seq_len=int(hf.get("max_position_embeddings", 2048)), rope_theta=theta,
            norm_eps=float(hf.get("rms_norm_eps", 1e-6)), tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            rope_scaling=scaling,
        )
    except KeyError as err:
        raise ValueError(f"{where}: missing field {err.args[0]!r}") from err
    if hf.get("head_dim") not in (None, D // H):
        raise ValueError(f"{where}: head_dim={hf['head_dim']} != hidden_size // num_attention_heads = {D // H}; "
                         "minift derives the head width from D and H")
    return ModelConfig(**{**fields, **overrides})


def hf_config(config: ModelConfig, *, dtype: str = "float32", bos_id: int | None = None,
              eos_id: int | None = None, pad_id: int | None = None) -> dict:
    """The ``config.json`` that `transformers` reads for this model (LlamaForCausalLM)."""
    out = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "vocab_size": config.vocab_size, "hidden_size": config.d_model, "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads, "num_key_value_heads": config.n_kv_heads,
        "intermediate_size": config.d_ff, "max_position_embeddings": config.max_seq_len, "head_dim": config.head_dim,
        "rope_theta": config.rope_theta, "rms_norm_eps": config.norm_eps,
        "tie_word_embeddings": config.tie_embeddings, "attention_bias": False, "mlp_bias": False,
        "torch_dtype": dtype, "dtype": dtype, "bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id,
    }
    if config.rope_scaling is not None:
        factor, low, high, context = config.rope_scaling
        out["rope_scaling"] = {"rope_type": "llama3", "factor": factor, "low_freq_factor": low,
                               "high_freq_factor": high, "original_max_position_embeddings": context}
    return out


def _tensor_files(folder: Path) -> dict[str, Path]:
    """Hugging Face tensor name -> the safetensors file that holds it (single file or sharded index)."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = read_json(index, "safetensors index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index}: no 'weight_map' object")
        return {name: folder / file for name, file in weight_map.items()}
    single = folder / "model.safetensors"
    if not single.exists():
        raise FileNotFoundError(f"{folder}: neither model.safetensors nor model.safetensors.index.json "
                                "(minift reads safetensors only, never pickled .bin files)")
    with safe_open(single, framework="numpy") as f:
        return {name: single for name in f.keys()}


def _read_all(files: dict[str, Path]) -> Iterator[tuple[str, np.ndarray]]:
    """(name, tensor) for every tensor, each file opened once, one tensor in memory at a time."""
    by_file: dict[Path, list[str]] = {}
    for name, path in files.items():
        by_file.setdefault(path, []).append(name)
    for path, names in by_file.items():
        if not path.exists():
            raise FileNotFoundError(f"{path}: listed in the index but missing")
        with safe_open(path, framework="numpy") as f:
            for name in names:
                yield name, f.get_tensor(name)


def load_hf_llama(path: str | os.PathLike, *, dtype: jnp.dtype = jnp.float32, **overrides) -> tuple[Params, ModelConfig]:
    """``(params, config)`` from a Hugging Face Llama checkpoint folder, in ``dtype``.

    ``overrides`` go to the `ModelConfig` (e.g. ``attention="fast"``, ``compute_dtype="bfloat16"``).
    Every expected tensor must be present with its exact shape; extra tensors (``rotary_emb``
    buffers of old exports) are ignored, a tied model's ``lm_head.weight`` included.
    """
    folder = Path(path)
    config = config_from_hf(read_json(folder / "config.json", "model config"), str(folder / "config.json"), **overrides)
    wanted = set(hf_names(config))
    tensors = _read_all({n: p for n, p in _tensor_files(folder).items() if n in wanted})
    return params_from_tensors(tensors, config, dtype, str(folder)), config


def hf_names(config: ModelConfig) -> dict[str, tuple[str, int | None]]:
    """Every Hugging Face tensor name the model has -> (minift leaf, layer index or None)."""
    names = {TOP_NAMES[k]: (k, None) for k in ("embed", "final_norm") + (() if config.tie_embeddings else ("lm_head",))}
    for leaf in LAYER_NAMES:
        for i in range(config.n_layers):
            names[f"model.layers.{i}.{LAYER_NAMES[leaf]}"] = (leaf, i)
    return names


def params_from_tensors(tensors: Iterator[tuple[str, np.ndarray]], config: ModelConfig, dtype: jnp.dtype,
                        where: str) -> Params:
    """minift's parameter tree from (Hugging Face name, (out, in) tensor) pairs, e.g. read from a
    safetensors folder or a GGUF file; names the model does not have are skipped. Every tensor of
    the model must come, with its exact shape (errors name ``where`` and the tensor)."""
    shapes = jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0)))  # shapes only
    np_dtype = np.dtype(jnp.dtype(dtype))
    params = jax.tree.map(lambda s: np.empty(s.shape, np_dtype), shapes)
    wanted = hf_names(config)
    seen = set()
    for name, tensor in tensors:
        if name not in wanted:
            continue
        leaf, i = wanted[name]
        target = params[leaf] if i is None else params["layers"][leaf][i]
        value = to_minift(leaf, tensor, config)
        if value.shape != target.shape:
            raise ValueError(f"{where}: tensor {name} has shape {tensor.shape}, which does not fit "
                             f"{leaf} {target.shape} of the model's config")
        target[...] = value.astype(np_dtype)
        seen.add(name)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise ValueError(f"{where}: {len(missing)} tensor(s) missing, e.g. {missing[:3]}")
    # To device one leaf at a time, dropping each host copy as it goes: never two whole models.
    leaves, treedef = jax.tree.flatten(params)
    params = target = value = None  # the views into the host arrays, which would keep them alive
    for i in range(len(leaves)):
        leaves[i] = jnp.asarray(leaves[i])
    return jax.tree.unflatten(treedef, leaves)


def hf_tensors(params: Params, config: ModelConfig, dtype: jnp.dtype | None = None) -> dict[str, np.ndarray]:
    """minift params -> {Hugging Face name: contiguous numpy array} (one layer at a time)."""
    out = {}
    for leaf, value in params.items():
        if leaf == "layers":
            continue
        if leaf == "lm_head" and config.tie_embeddings:
            continue
        out[TOP_NAMES[leaf]] = to_hf(leaf, np.asarray(value, dtype), config)
    for leaf, stacked in params["layers"].items():
        for i in range(config.n_layers):
            out[f"model.layers.{i}.{LAYER_NAMES[leaf]}"] = to_hf(leaf, np.asarray(stacked[i], dtype), config)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def save_hf_llama(params: Params, config: ModelConfig, path: str | os.PathLike, *, dtype: jnp.dtype | None = None,
                  **token_ids) -> Path:
    """Write ``config.json`` + ``model.safetensors`` that ``LlamaForCausalLM.from_pretrained`` loads.

    Each file is written atomically (a crash leaves the old file or none, never half of one).
    ``token_ids``: ``bos_id``, ``eos_id``, ``pad_id`` for ``config.json``.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    np_dtype = None if dtype is None else np.dtype(jnp.dtype(dtype))
    tensors = hf_tensors(params, config, np_dtype)
    stored = str(next(iter(tensors.values())).dtype)
    write_atomic(folder / "model.safetensors", lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    write_json(folder / "config.json", hf_config(config, dtype=stored, **token_ids))
    return folder
