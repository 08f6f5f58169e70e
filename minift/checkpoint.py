"""Checkpoints: the training state saved as one safetensors file, written atomically.

Article §3.3 trains θ with AdamW step by step; a checkpoint is the snapshot that lets that loop
stop and resume exactly: the parameters θ, the optimizer state (AdamW's moments m, v and the
step counts of the schedule), the step number k, the PRNG key and the model config.

Why safetensors: the file is a JSON header followed by raw little-endian tensor bytes, so loading
one can never run code (unlike Python's object serialisation formats), it memory-maps, and the
Hugging Face ecosystem reads it.

File layout (one ``.safetensors`` file):

* tensors, keyed by their path in the pytree, segments joined with ``/``:
    - ``params/<path>``: e.g. ``params/embed``, ``params/layers/wq``;
    - ``opt_state/<path>``: e.g. for ``optax.chain(clip_by_global_norm, adamw)`` the first AdamW
      moment of ``wq`` is ``opt_state/1/0/mu/layers/wq`` (tuple index ``1`` = the adamw part of
      the chain, index ``0`` = its ``scale_by_adam`` state, ``mu`` = the NamedTuple field);
      ``opt_state/1/0/count`` is its step count;
    - ``rng``: the PRNG key's raw data (``jax.random.key_data``).
  A path segment is the dict key, the tuple/list index, or the NamedTuple/dataclass field name.
* header metadata (text): ``format`` (= ``FORMAT``), ``step``, ``config`` (JSON of
  ``config.to_dict()``), ``metadata`` (JSON of the caller's extra dict), ``rng_impl`` (``raw`` for
  an old-style uint32 key, else the typed key's implementation name, e.g. ``threefry2x32``) and
  ``has_opt_state``.

Run folders name checkpoints ``<run_dir>/checkpoints/step_00000100.safetensors``
(``checkpoint_path``); ``latest_checkpoint`` finds the newest for resuming and
``prune_checkpoints`` keeps the last n.

Writes are atomic: the file is written to a hidden temporary file in the same directory, flushed
to disk (``os.fsync``) and renamed over the target with ``os.replace``, so a crash mid-write
leaves the previous checkpoint intact, never a half-written one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy so safetensors can return BF16 tensors)
import numpy as np
import safetensors
import safetensors.numpy

from minift.files import write_atomic

FORMAT = "minift-checkpoint-v1"
SECTIONS = ("params", "opt_state")
CHECKPOINT_DIR = "checkpoints"
_STEP_FILE = re.compile(r"^step_(\d+)\.safetensors$")
_MAX_NAMED = 5  # how many offending keys an error message lists before "and N more"


class Checkpoint(NamedTuple):
    """What ``load_checkpoint`` returns; fields that were not saved are ``None``."""

    params: Any  # pytree shaped like params_template, else nested dicts rebuilt from the key paths
    opt_state: Any  # pytree shaped like opt_state_template, else nested dicts (inspection only)
    step: int
    rng: jax.Array | None  # same kind as saved: typed key, or raw uint32 key data
    config_dict: dict | None  # the stored config.to_dict(); rebuild with ModelConfig.from_dict
    metadata: dict  # the caller's extra metadata


# --- key paths ---------------------------------------------------------------------------------


def _segment(entry: Any) -> str:
    """One key-path entry as a string: dict key, sequence index, or attribute/field name."""
    if isinstance(entry, jax.tree_util.DictKey):
        segment = str(entry.key)
    elif isinstance(entry, jax.tree_util.SequenceKey):
        segment = str(entry.idx)
    elif isinstance(entry, jax.tree_util.GetAttrKey):
        segment = entry.name
    elif isinstance(entry, jax.tree_util.FlattenedIndexKey):
        segment = str(entry.key)
    else:  # a custom pytree node's own key type
        segment = str(entry)
    # "/" joins segments, so a key containing it would be ambiguous on reading back.
    if not segment or "/" in segment:
        raise ValueError(
            f"cannot name a checkpoint tensor after the pytree key {segment!r}: keys must be "
            "non-empty and contain no '/'; rename that dict key"
        )
    return segment


def flatten_with_names(tree: Any, prefix: str) -> dict[str, Any]:
    """``{"prefix/a/b": leaf}`` for every leaf of ``tree``, in the tree's own leaf order."""
    flat: dict[str, Any] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = "/".join([prefix, *(_segment(e) for e in path)])
        flat[name] = leaf
    return flat


def _nest(flat: Mapping[str, Any]) -> dict:
    """Nested dicts from ``{"a/b": x}``; used when no template gives the real structure."""
    tree: dict = {}
    for name, value in flat.items():
        *parents, last = name.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def _as_numpy(leaf: Any) -> np.ndarray:
    """A C-contiguous host array of a leaf (jax arrays are fetched from the device)."""
    array = np.asarray(leaf)
    # not np.ascontiguousarray unconditionally: it turns 0-d arrays (optax's counts) into (1,)
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


def _few(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_NAMED])
    more = len(names) - _MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


# --- saving ------------------------------------------------------------------------------------


def _rng_arrays(rng: Any) -> tuple[dict[str, np.ndarray], str]:
    """The key's raw data and how to rebuild it: ``raw`` for uint32 keys, else the impl name."""
    if rng is None:
        return {}, "none"
    if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
        return {"rng": _as_numpy(jax.random.key_data(rng))}, str(jax.random.key_impl(rng))
    return {"rng": _as_numpy(rng)}, "raw"


def _config_dict(config: Any) -> dict:
    """The config as plain JSON data (a dict is accepted as is)."""
    data = config if isinstance(config, Mapping) else config.to_dict()
    return json.loads(json.dumps(data))  # normalises tuples to lists, as loading will see them


def save_checkpoint(
    path: str | os.PathLike,
    *,
    params: Any,
    opt_state: Any = None,
    step: int,
    rng: Any = None,
    config: Any = None,
    metadata: dict | None = None,
) -> Path:
    """Write the training state to ``path`` (a ``.safetensors`` file) atomically; return the path.

    ``params``/``opt_state`` are pytrees of arrays (nested dicts, optax NamedTuples and tuples);
    ``rng`` a PRNG key, typed (``jax.random.key``) or raw uint32 (``jax.random.PRNGKey``);
    ``config`` anything with ``to_dict()`` (or a dict); ``metadata`` a JSON-serialisable dict.
    """
    path = Path(path)
    tensors = {name: _as_numpy(leaf) for name, leaf in flatten_with_names(params, "params").items()}
    if opt_state is not None:
        tensors.update(
            {name: _as_numpy(leaf) for name, leaf in flatten_with_names(opt_state, "opt_state").items()}
        )
    rng_tensors, rng_impl = _rng_arrays(rng)
    tensors.update(rng_tensors)
    try:
        extra = json.dumps(metadata or {}, sort_keys=True)
    except TypeError as err:
        raise ValueError(f"checkpoint metadata for {path} must be JSON-serialisable: {err}") from err
    header = {
        "format": FORMAT,
        "step": str(int(step)),
        "config": json.dumps(None if config is None else _config_dict(config), sort_keys=True),
        "metadata": extra,
        "rng_impl": rng_impl,
        "has_opt_state": "1" if opt_state is not None else "0",
    }

    # Atomic: a crash mid-write leaves the previous checkpoint intact (minift.files.write_atomic).
    return write_atomic(path, lambda tmp: safetensors.numpy.save_file(tensors, tmp, metadata=header))


# --- loading -----------------------------------------------------------------------------------


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors and the header metadata, with the library's errors turned into ours."""
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; check the path, or use latest_checkpoint(run_dir) "
            "to find the newest one in a run folder"
        )
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            header = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (safetensors.SafetensorError, OSError, TypeError) as err:
        raise ValueError(
            f"checkpoint {path} is not a readable safetensors file ({err}); it may be truncated "
            "by an interrupted copy or corrupt: restore it or load an earlier checkpoint"
        ) from err
    if header.get("format") != FORMAT:
        raise ValueError(
            f"{path} is a safetensors file but not a minift checkpoint (header format is "
            f"{header.get('format')!r}, expected {FORMAT!r}); for a Hugging Face checkpoint folder use "
            "minift.hf_llama.load_hf_llama(folder)"
        )
    return tensors, header


def _restore(
    path: Path, section: str, stored: dict[str, np.ndarray], template: Any
) -> Any:
    """The stored tensors of one section, put back into the structure of ``template``."""
    if template is None:
        return _nest({name[len(section) + 1 :]: jnp.asarray(a) for name, a in stored.items()})
    named, treedef = jax.tree_util.tree_flatten_with_path(template)
    expected = ["/".join([section, *(_segment(e) for e in p)]) for p, _ in named]
    missing = [n for n in expected if n not in stored]
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) the template has: {_few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) not in the template: {_few(unexpected)}")
        raise ValueError(
            f"checkpoint {path} does not match the {section} template: " + "; ".join(parts)
            + ". Was it saved from a different model config or optimizer?"
        )
    leaves = []
    for name, (_, leaf) in zip(expected, named):
        array = stored[name]
        want_shape = tuple(getattr(leaf, "shape", np.shape(leaf)))
        # np.dtype is falsy (len() of its fields), so test for the attribute, not its truth.
        want_dtype = np.dtype(leaf.dtype if hasattr(leaf, "dtype") else _as_numpy(leaf).dtype)
        if array.shape != want_shape or array.dtype != want_dtype:
            raise ValueError(
                f"checkpoint {path}: tensor {name!r} has shape {array.shape} dtype {array.dtype}, "
                f"the template expects shape {want_shape} dtype {want_dtype}; was it saved from "
                "a different model config?"
            )
        leaves.append(jnp.asarray(array))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _check_config(path: Path, stored: dict | None, config: Any) -> None:
    if stored is None:
        raise ValueError(f"checkpoint {path} stores no config to compare with the one given")
    given = _config_dict(config)
    differing = sorted(k for k in set(stored) | set(given) if stored.get(k) != given.get(k))
    if differing:
        detail = ", ".join(f"{k}: stored {stored.get(k)!r} vs given {given.get(k)!r}" for k in differing)
        raise ValueError(
            f"checkpoint {path} was saved with a different config ({detail}); load it with the "
            "stored config (ModelConfig.from_dict(checkpoint.config_dict)) or pass config=None"
        )


def load_checkpoint(
    path: str | os.PathLike,
    *,
    params_template: Any = None,
    opt_state_template: Any = None,
    config: Any = None,
) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``.

    With a template (e.g. ``init_params(config, key)`` and ``optimizer.init(params)``, or their
    ``jax.eval_shape``), the arrays come back in the template's structure after checking that
    keys, shapes and dtypes agree; without one, params come back as nested dicts. With
    ``config``, the stored config must equal ``config.to_dict()``.
    """
    path = Path(path)
    tensors, header = _read(path)
    sections = {s: {n: a for n, a in tensors.items() if n.startswith(s + "/")} for s in SECTIONS}
    config_dict = json.loads(header.get("config", "null"))
    if config is not None:
        _check_config(path, config_dict, config)

    params = _restore(path, "params", sections["params"], params_template)
    opt_state = None
    if header.get("has_opt_state") == "1":
        opt_state = _restore(path, "opt_state", sections["opt_state"], opt_state_template)
    elif opt_state_template is not None:
        raise ValueError(
            f"checkpoint {path} was saved without an optimizer state; pass "
            "opt_state_template=None and initialise a fresh optimizer state"
        )

    rng = None
    rng_impl = header.get("rng_impl", "none")
    if "rng" in tensors:
        data = jnp.asarray(tensors["rng"])
        rng = data if rng_impl == "raw" else jax.random.wrap_key_data(data, impl=rng_impl)
    return Checkpoint(
        params=params,
        opt_state=opt_state,
        step=int(header["step"]),
        rng=rng,
        config_dict=config_dict,
        metadata=json.loads(header.get("metadata", "{}")),
    )


# --- run folders -------------------------------------------------------------------------------


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """``<run_dir>/checkpoints/step_00000100.safetensors``: zero-padded so names sort by step."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{int(step):08d}.safetensors"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The run's checkpoints, oldest step first (temporary files of unfinished writes skipped)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest step in ``run_dir``, or ``None`` when there is none yet."""
    checkpoints = list_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


def checkpoint_file(path: str | os.PathLike, how_to_make: str) -> Path:
    """The file to load for ``path``: the path itself, or a run folder's newest checkpoint.

    Errors name the path and say ``how_to_make`` one (e.g. "train one with `minift sft`").
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run folder or checkpoint file ({how_to_make})")
    if path.is_dir():
        last = latest_checkpoint(path)
        if last is None:
            raise FileNotFoundError(f"{path}: no checkpoint under {path / CHECKPOINT_DIR}; {how_to_make}")
        return last
    return path


def prune_checkpoints(run_dir: str | os.PathLike, keep_last_n: int) -> list[Path]:
    """Delete all but the ``keep_last_n`` newest checkpoints; return the deleted paths."""
    if keep_last_n < 1:
        raise ValueError(f"keep_last_n must be at least 1 (got {keep_last_n}): keep one to resume from")
    doomed = list_checkpoints(run_dir)[:-keep_last_n]
    for p in doomed:
        p.unlink()
    return doomed
