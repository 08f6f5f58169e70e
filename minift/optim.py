"""Optimisation: gradient descent, AdamW by hand, and the optimizer minift trains with (§3.3).

The article (§3.3) moves the parameters against the gradient of the SFT loss,

$$\\theta_{k+1}=\\theta_k-\\eta\\,\\nabla_\\theta\\mathcal{L}_{SFT},$$

and notes that in practice a momentum method such as Adam/AdamW is used. This module has both,
written as the equations (``gradient_descent``, ``adamw_init``/``adamw_update``: the lesson), and
the optimizer the training loop actually uses (``make_optimizer``: ``optax.adamw`` with warmup,
cosine decay and gradient clipping). The tests check that the hand-written AdamW and optax's
agree, so the lesson and the library are the same algorithm.

Parameters and gradients are pytrees (nested dicts of arrays); every update is a
``jax.tree.map`` of the per-array equation.

References: Kingma & Ba 2015 (Adam); Loshchilov & Hutter 2019 (AdamW, decoupled weight decay).
Deviation: like optax and PyTorch, the decay is multiplied by the learning rate ($\\eta\\lambda\\theta$),
not by the schedule multiplier alone as in Loshchilov & Hutter.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

Params = Any  # a pytree of arrays, e.g. the nested dict of minift.model.init_params


def gradient_descent(params: Params, grads: Params, learning_rate: float) -> Params:
    """One step of gradient descent (§3.3).

    $$\\theta_{k+1}=\\theta_k-\\eta\\,\\nabla_\\theta\\mathcal{L}$$
    """
    return jax.tree.map(lambda theta, g: theta - learning_rate * g, params, grads)


class AdamWState(NamedTuple):
    """What AdamW remembers between steps: the step count $k$ and the two moment estimates."""

    step: jax.Array  # () int32: number of updates done so far
    m: Params  # first moment: running mean of gradients (momentum)
    v: Params  # second moment: running mean of squared gradients (per-parameter scale)


def adamw_init(params: Params) -> AdamWState:
    """$k=0,\\ m_0=0,\\ v_0=0$ (same shapes as the parameters)."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    return AdamWState(step=jnp.zeros((), jnp.int32), m=zeros, v=zeros)


def adamw_update(
    params: Params,
    grads: Params,
    state: AdamWState,
    learning_rate: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> tuple[Params, AdamWState]:
    """One AdamW step, written as the equations (§3.3; Loshchilov & Hutter 2019).

    $$\\begin{aligned}
    m_k &= \\beta_1 m_{k-1} + (1-\\beta_1)\\,g_k \\\\
    v_k &= \\beta_2 v_{k-1} + (1-\\beta_2)\\,g_k^2 \\\\
    \\hat m_k &= m_k/(1-\\beta_1^k),\\qquad \\hat v_k = v_k/(1-\\beta_2^k) \\\\
    \\theta_k &= \\theta_{k-1} - \\eta\\left(\\frac{\\hat m_k}{\\sqrt{\\hat v_k}+\\epsilon}
                + \\lambda\\,\\theta_{k-1}\\right)
    \\end{aligned}$$

    The bias correction undoes the pull towards the zero initialisation of $m, v$ in the first
    steps. The decay $\\lambda\\theta$ is *decoupled*: added to the step, not to the gradient, so it
    is not rescaled by $1/\\sqrt{\\hat v}$ (that rescaling is why L2 regularisation inside Adam
    barely regularises parameters with large gradients). Defaults are optax's, so
    ``optax.adamw(lr, weight_decay=wd)`` is the same algorithm.
    """
    k = state.step + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g**2, state.v, grads)
    m_hat = jax.tree.map(lambda m: m / (1 - b1**k), m)
    v_hat = jax.tree.map(lambda v: v / (1 - b2**k), v)
    new_params = jax.tree.map(
        lambda theta, mh, vh: theta - learning_rate * (mh / (jnp.sqrt(vh) + eps) + weight_decay * theta),
        params,
        m_hat,
        v_hat,
    )
    return new_params, AdamWState(step=k, m=m, v=v)


def decay_mask(params: Params) -> Params:
    """True for the parameters weight decay applies to: the matrices (embeddings, projections).

    Why matrices only: decay pulls weights towards 0. For a matrix that is a prior of small
    weights; for an RMSNorm gain it would pull the scale towards 0 and fight the normalisation,
    and for biases/gains it buys no regularisation (they have few parameters). This is the rule of
    GPT-2/nanoGPT/Llama training.

    Layers are stacked on a leading L axis (``params["layers"]["attn_norm"]`` is ``(L, D)``), so
    under ``"layers"`` the leading axis is not counted: a ``(L, D)`` norm gain is a vector, a
    ``(L, D, F)`` projection is a matrix.
    """

    def is_matrix(path, p) -> bool:
        stacked = len(path) > 0 and getattr(path[0], "key", None) == "layers"
        return p.ndim - (1 if stacked else 0) >= 2

    return jax.tree_util.tree_map_with_path(is_matrix, params)


def learning_rate_schedule(
    learning_rate: float, total_steps: int, warmup_steps: int, end_lr_ratio: float = 0.1
) -> optax.Schedule:
    """Linear warmup from 0 to ``learning_rate`` over ``warmup_steps``, then cosine decay to
    ``end_lr_ratio * learning_rate`` at ``total_steps``.

    $$\\eta_k=\\begin{cases}\\eta\\,k/W & k<W\\\\
      \\eta_{end}+\\tfrac12(\\eta-\\eta_{end})\\big(1+\\cos\\pi\\tfrac{k-W}{K-W}\\big) & W\\le k\\le K\\end{cases}$$

    Warmup: Adam's second-moment estimate is noisy for the first steps, and full-size steps then
    can wreck a pretrained model. Step 0 uses $\\eta_0=0$ (as Hugging Face's cosine schedule does):
    that first call only fills Adam's moments.
    """
    if total_steps < 1 or not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"optim: need 0 <= warmup_steps < total_steps, got warmup_steps={warmup_steps}, "
            f"total_steps={total_steps}; lower warmup_steps or train for more steps."
        )
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=total_steps,
        end_value=end_lr_ratio * learning_rate,
    )


def make_optimizer(
    learning_rate: float,
    total_steps: int,
    warmup_steps: int,
    weight_decay: float = 0.1,
    clip_norm: float = 1.0,
    b1: float = 0.9,
    b2: float = 0.95,
    end_lr_ratio: float = 0.1,
    trainable: Callable[[Params], Params] | None = None,
) -> optax.GradientTransformation:
    """The optimizer minift trains with: clip the global gradient norm, then AdamW on a
    warmup + cosine schedule, with weight decay on matrices only.

    ``b2=0.95`` (not Adam's 0.999) follows GPT-3/Llama: a shorter memory for $v$ reacts faster to
    a sudden gradient spike. Clipping to ``clip_norm`` caps the damage of one bad batch.
    Use ``learning_rate_schedule`` with the same arguments to read the rate at a given step.

    ``trainable`` (e.g. ``minift.lora.trainable_labels``) maps the parameter tree to a tree of
    labels, ``"frozen"`` or anything else: ``optax.multi_transform`` then runs the chain above on
    the trainable leaves only (clipping their norm alone, keeping moments for them alone) and
    ``optax.set_to_zero`` on the frozen ones, which never move.
    """
    schedule = learning_rate_schedule(learning_rate, total_steps, warmup_steps, end_lr_ratio)
    chain = optax.chain(
        optax.clip_by_global_norm(clip_norm),
        optax.adamw(schedule, b1=b1, b2=b2, weight_decay=weight_decay, mask=decay_mask),
    )
    if trainable is None:
        return chain

    def labels(params: Params) -> Params:
        return jax.tree.map(lambda label: "frozen" if label == "frozen" else "train", trainable(params))

    return optax.multi_transform({"train": chain, "frozen": optax.set_to_zero()}, labels)
