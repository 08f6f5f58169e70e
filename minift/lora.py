r"""LoRA (Hu et al. 2021): fine-tune a large model by training a small low-rank *change* of its weights.

Full fine-tuning (§3.3) updates every weight $W$ and keeps AdamW's two moments for each: for a 1B
model that is 1B gradients and 2B moments on top of the weights. LoRA freezes $W$ and learns
$\Delta W$ as the product of two thin matrices,

$$W' = W + \frac{\alpha}{r}\,BA,\qquad B\in\mathbb{R}^{d_{out}\times r},\ A\in\mathbb{R}^{r\times d_{in}},
  \ r \ll \min(d_{in}, d_{out}),$$

so a projection of $d_{in} d_{out}$ weights gets $r(d_{in}+d_{out})$ trainable ones (rank 8 on a
2048 x 2048 projection: 0.8%). $A$ starts random and $B$ at zero, so $W'=W$ at step 0: training
starts from exactly the pretrained model. $\alpha/r$ fixes the update's scale when $r$ changes.

minift stores weights as ``x @ W`` with W as (in, out) (see ``minift.model``), so the adapter of a
leaf is ``a`` = $A^\top$ (L, in, r) and ``b`` = $B^\top$ (L, r, out), and $\Delta W^\top$ is
``(alpha / r) * a @ b`` reshaped to the leaf's shape (``lora_delta``). Everything here is a pure
function on parameter trees:

* ``init_adapters(params, lora, key)`` -- ``{"wq": {"a", "b"}, ...}`` for the target leaves;
* ``merge(params, adapters, lora)`` -- $W + \frac{\alpha}{r}BA$ on every target: the model LoRA
  trains, and the one exported (a merged model is an ordinary model, no adapter code needed);
* ``unmerge`` -- its inverse; ``trainable_labels`` -- which leaves of ``{"base", "lora"}`` train.

How training uses it (``minift.train``): the train state's parameters are ``{"base": params,
"lora": adapters}``; the loss differentiates with respect to the adapters only, and the optimizer
is ``optax.multi_transform`` with AdamW on the adapters and ``optax.set_to_zero`` on the base
(``minift.optim.make_optimizer(..., trainable=...)``): AdamW's moments exist for the adapters alone.

Deviation from Hu et al.: $A$'s initialisation is PEFT's (uniform in $\pm 1/\sqrt{d_{in}}$,
Kaiming with $a=\sqrt5$), not a plain Gaussian; and by default every projection is adapted, not
only $W_q, W_v$ -- QLoRA (Dettmers et al. 2023) found adapting all of them needed to match full
fine-tuning on instruction data. Precision note: the merged weight is computed in the base's own
dtype promoted with the adapters' (float32 adapters on a bfloat16 base merge in float32); with
``compute_dtype="bfloat16"`` the forward pass then reads $W'$ rounded to bfloat16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

Params = Any  # nested dict of arrays (minift.model.init_params)

# Leaf -> how many axes (after the stacked L axis) are its *input*: wq is (L, D | H, K), wo (L, H, K | D).
IN_AXES = {"wq": 1, "wk": 1, "wv": 1, "wo": 2, "w_gate": 1, "w_up": 1, "w_down": 1}
ALL_PROJECTIONS = tuple(IN_AXES)


@dataclass(frozen=True)
class LoraConfig:
    """Which projections get adapters, of what rank, at what scale (frozen: a static jit argument)."""

    rank: int = 8  # r
    alpha: float = 16.0  # the update is scaled by alpha / r (PEFT's default 16 with r = 8: a scale of 2)
    targets: tuple[str, ...] = ALL_PROJECTIONS  # minift leaf names under params["layers"]

    def __post_init__(self) -> None:
        if not isinstance(self.rank, int) or isinstance(self.rank, bool) or self.rank < 1:
            raise ValueError(f"LoraConfig.rank must be a positive int, got {self.rank!r}")
        if not self.alpha > 0:
            raise ValueError(f"LoraConfig.alpha must be > 0, got {self.alpha!r}")
        unknown = sorted(set(self.targets) - set(IN_AXES))
        if unknown or not self.targets:
            raise ValueError(f"LoraConfig.targets: {unknown or 'none given'}; choose among {ALL_PROJECTIONS}")

    @property
    def scale(self) -> float:
        """$\\alpha / r$."""
        return self.alpha / self.rank


def _split(shape: tuple[int, ...], leaf: str) -> tuple[int, int]:
    """(d_in, d_out) of a stacked leaf (L, *in, *out)."""
    n_in = IN_AXES[leaf]
    return math.prod(shape[1:1 + n_in]), math.prod(shape[1 + n_in:])


def init_adapters(params: Params, lora: LoraConfig, key: Array, dtype: jnp.dtype = jnp.float32) -> Params:
    """Adapters for ``lora.targets``: ``a`` (L, in, r) uniform in $\\pm1/\\sqrt{in}$, ``b`` (L, r, out) zeros.

    Because ``b`` is zero, ``merge(params, init_adapters(...), lora)`` equals ``params`` exactly.
    """
    adapters = {}
    for name, k in zip(lora.targets, jax.random.split(key, len(lora.targets))):
        shape = params["layers"][name].shape
        d_in, d_out = _split(shape, name)
        bound = 1.0 / math.sqrt(d_in)
        adapters[name] = {
            "a": jax.random.uniform(k, (shape[0], d_in, lora.rank), jnp.float32, -bound, bound).astype(dtype),
            "b": jnp.zeros((shape[0], lora.rank, d_out), dtype),
        }
    return adapters


def lora_delta(a: Float[Array, "L I R"], b: Float[Array, "L R O"], scale: float) -> Float[Array, "L I O"]:
    """$\\Delta W^\\top = \\frac{\\alpha}{r}(BA)^\\top = \\frac{\\alpha}{r}\\,A^\\top B^\\top$ = ``scale * a @ b``: (L, in, out)."""
    return scale * jnp.einsum("lir,lro->lio", a, b)


def merge(params: Params, adapters: Params, lora: LoraConfig) -> Params:
    """$W' = W + \\frac{\\alpha}{r}BA$ for every adapted leaf; every other leaf is passed through unchanged."""
    layers = dict(params["layers"])
    for name, ad in adapters.items():
        w = layers[name]
        delta = lora_delta(ad["a"], ad["b"], lora.scale).reshape(w.shape)  # (L, in, out) -> the leaf's shape
        layers[name] = w + delta.astype(jnp.promote_types(w.dtype, delta.dtype))
    return {**params, "layers": layers}


def unmerge(merged: Params, adapters: Params, lora: LoraConfig) -> Params:
    """$W = W' - \\frac{\\alpha}{r}BA$: undo ``merge`` (exact up to one rounding of each weight)."""
    layers = dict(merged["layers"])
    for name, ad in adapters.items():
        w = layers[name]
        layers[name] = w - lora_delta(ad["a"], ad["b"], lora.scale).reshape(w.shape).astype(w.dtype)
    return {**merged, "layers": layers}


def with_adapters(params: Params, adapters: Params) -> Params:
    """The train state's parameter tree for LoRA: ``{"base": params, "lora": adapters}``."""
    return {"base": params, "lora": adapters}


def is_lora_tree(tree: Params) -> bool:
    """True for a ``with_adapters`` tree (what a LoRA run trains and checkpoints)."""
    return isinstance(tree, dict) and set(tree) == {"base", "lora"}


def merged_params(tree: Params, lora: LoraConfig | None) -> Params:
    """The model a tree stands for: ``merge(base, lora)`` for a LoRA tree, else the tree itself."""
    if lora is None or not is_lora_tree(tree):
        return tree
    return merge(tree["base"], tree["lora"], lora)


def trainable_labels(tree: Params) -> Params:
    """``"adapter"`` on every leaf under ``"lora"``, ``"frozen"`` under ``"base"`` (for optax.multi_transform)."""
    return {"base": jax.tree.map(lambda _: "frozen", tree["base"]),
            "lora": jax.tree.map(lambda _: "adapter", tree["lora"])}


def count_trainable(adapters: Params) -> int:
    """Number of adapter scalars (what LoRA trains)."""
    return sum(math.prod(x.shape) for x in jax.tree.leaves(adapters))
