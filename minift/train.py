"""Training: the jit-compiled step of §3.3 (the loop around it is ``minift.loop``).

One step is the article's update $\\theta_{k+1}=\\theta_k-\\eta\\nabla_\\theta\\mathcal{L}_{SFT}$
done by AdamW (``minift.optim``) on the masked NLL of §3.2 (``minift.loss``): forward, loss,
gradient, optimizer update and apply, all inside *one* ``jax.jit`` region. That matters because
XLA then fuses the whole step and keeps every intermediate on the device, and because the
parameter and optimizer-state buffers can be *donated*: the new values are written in place of
the old ones instead of doubling the memory.

Shapes are static per length bucket (``minift.data.batches``), so a step compiles once per
bucket shape and is reused for every later batch of that shape.

Which tokens are trained on (``loss=``):

* ``"sft"`` — the masked loss of §3.2: only response tokens (``batch.loss_mask``).
* ``"lm"``  — every real target token, prompt *and* response: pretraining on raw text, and the
  §3.2 ablation "what if we do not mask the prompt?". Batches carry only ``loss_mask``; as they
  are right-padded and the response comes last, the real targets are exactly the positions up
  to the last one in ``loss_mask`` (see ``real_target_mask``). For ``lm_batches`` the two coincide.

Gradient accumulation: pass a batch whose arrays have a leading ``K`` axis (or a list of K
Batches). The step sums the NLL and the token counts over the K micro-batches and divides once,
so it produces the gradient of the full batch — not the mean of K per-micro-batch means, which
would overweight micro-batches with few response tokens.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from minift import lora as lora_mod
from minift import loss as losses
from minift import model
from minift.config import ModelConfig
from minift.data import Batch

Params = Any  # nested dict of arrays (minift.model.init_params)
LossKind = Literal["sft", "lm"]
LOSS_KINDS = ("sft", "lm")

def real_target_mask(loss_mask: jax.Array) -> jax.Array:
    """1 on every real (non-padding) target, prompt included: ``(B, T) -> (B, T)``.

    Rows are right-padded and end with the response (whose last target, EOS, is in the mask), so
    position t is real iff some position at or after t is in ``loss_mask``: a reversed cumulative
    sum. An all-padding row stays all 0.
    """
    remaining = jnp.flip(jnp.cumsum(jnp.flip(loss_mask, axis=-1), axis=-1), axis=-1)  # (B, T)
    return (remaining > 0).astype(loss_mask.dtype)


def check_options(loss: str, reduction: str) -> None:
    """A ValueError naming the option unless ``loss`` and ``reduction`` are known kinds."""
    if loss not in LOSS_KINDS:
        raise ValueError(f"train: loss={loss!r} is not one of {LOSS_KINDS} ('sft' = response only, 'lm' = all tokens).")
    if reduction not in losses.REDUCTIONS:
        raise ValueError(f"train: reduction={reduction!r} is not one of {losses.REDUCTIONS}.")


def target_mask(batch: Batch, loss: LossKind = "sft") -> jax.Array:
    """Which targets the loss counts, ``(B, T)``: the response (``"sft"``) or all real ones (``"lm"``)."""
    check_options(loss, "token")
    return batch.loss_mask if loss == "sft" else real_target_mask(batch.loss_mask)


def stack_micro_batches(micro_batches: list[Batch]) -> Batch:
    """K same-shaped Batches -> one Batch whose arrays are ``(K, B, T)``, for gradient accumulation."""
    shapes = {tuple(b.tokens.shape) for b in micro_batches}
    if len(shapes) != 1:
        raise ValueError(f"train: micro-batches must share one shape to be stacked, got {sorted(shapes)}.")
    return jax.tree.map(lambda *xs: jnp.stack(xs), *micro_batches)  # (K, B, T) each


def loss_terms(
    params: Params, batch: Batch, config: ModelConfig, loss: LossKind = "sft", reduction: losses.Reduction = "token"
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """Forward one (B, T) batch and return ``(total, (count, n_tokens))`` with loss = total / count.

    ``total`` and ``count`` are additive across micro-batches (``loss.nll_sum_and_count``);
    ``n_tokens`` is the number of target tokens the loss counts.
    """
    mask = target_mask(batch, loss)  # (B, T)
    logits = model.forward(params, jnp.asarray(batch.tokens), config)  # (B, T, V)
    total, count = losses.nll_sum_and_count(logits, jnp.asarray(batch.targets), mask, reduction)
    return total, (count, jnp.sum(mask))


def loss_and_grad(
    params: Params, batch: Batch, config: ModelConfig, *, loss: LossKind = "sft", reduction: losses.Reduction = "token",
    lora: lora_mod.LoraConfig | None = None,
) -> tuple[jax.Array, Params, jax.Array]:
    """The loss, its gradient and the number of loss tokens, for a batch or K micro-batches.

    ``batch`` arrays are ``(B, T)``, or ``(K, B, T)`` for K micro-batches. Either way the
    micro-batches are scanned, their summed NLL and counts accumulated, and the division done
    once at the end:

    $$\\nabla_\\theta\\mathcal{L} = \\frac{\\sum_{k}\\nabla_\\theta S_k}{\\sum_k N_k},
      \\qquad S_k=\\sum_{b,t} m_{b,t}\\,(-\\log P_\\theta(x_{b,t}\\mid x_{b,<t}))$$

    so K micro-batches give the gradient of the one full batch (up to float rounding), while only
    one micro-batch's activations are alive at a time.

    With ``lora``, ``params`` is ``{"base", "lora"}`` (``minift.lora.with_adapters``) and the
    gradient is taken with respect to the adapters alone (the base is a constant of the loss, so
    no gradient of its 1B weights is ever formed); the returned ``grads`` are the adapters'.
    """
    if batch.tokens.ndim not in (2, 3):
        raise ValueError(f"train: batch.tokens must be (B, T) or (K, B, T), got shape {batch.tokens.shape}.")
    if batch.tokens.ndim == 2:
        batch = jax.tree.map(lambda x: jnp.asarray(x)[None], batch)  # (1, B, T): one micro-batch

    def micro_step(micro: Batch):  # -> (grads, total, count, n_tokens) of one micro-batch
        if lora is None:
            (total, (count, n_tokens)), grads = jax.value_and_grad(loss_terms, has_aux=True)(
                params, micro, config, loss, reduction
            )
        else:
            def adapter_loss(adapters: Params):  # W' = W + (alpha / r) B A with W held constant
                return loss_terms(lora_mod.merge(params["base"], adapters, lora), micro, config, loss, reduction)

            (total, (count, n_tokens)), grads = jax.value_and_grad(adapter_loss, has_aux=True)(params["lora"])
        return grads, total, count, n_tokens

    def accumulate(carry, micro: Batch):
        return jax.tree.map(jnp.add, carry, micro_step(micro)), None

    # Start the sums at zeros of exactly the types one micro-batch produces (float32 or float64).
    first = jax.tree.map(lambda x: x[0], batch)  # (B, T)
    init = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(micro_step, first))
    (grad_sum, total, count, n_tokens), _ = jax.lax.scan(accumulate, init, batch)
    # Divide once, by the count of the whole batch (safe: 0 when nothing is in the loss).
    grads = jax.tree.map(lambda g: losses.safe_divide(g, count), grad_sum)
    return losses.safe_divide(total, count), grads, n_tokens


def make_train_step(
    config: ModelConfig,
    optimizer: optax.GradientTransformation,
    *,
    loss: LossKind = "sft",
    reduction: losses.Reduction = "token",
    schedule: optax.Schedule | None = None,
    lora: lora_mod.LoraConfig | None = None,
) -> Callable[[Params, optax.OptState, Batch], tuple[Params, optax.OptState, dict[str, jax.Array]]]:
    """A jit-compiled ``train_step(params, opt_state, batch) -> (params, opt_state, metrics)``.

    One jit region: forward, masked NLL, gradient (accumulated over micro-batches if ``batch``
    has a leading K axis or is a list of Batches), optimizer update, apply. ``params`` and
    ``opt_state`` are donated: after the call the arrays passed in are deleted and must not be
    used again (keep a copy, e.g. ``jax.tree.map(jnp.copy, params)``, if you need them, as PPO's
    frozen reference model does).

    ``loss="sft"`` trains on the response only (§3.2), ``loss="lm"`` on every real token (the
    unmasked ablation, and pretraining). ``metrics``: ``loss`` (before the update), ``grad_norm``
    (global L2 norm before clipping), ``n_tokens`` (target tokens in the loss — response tokens
    for ``"sft"``), and ``learning_rate`` when ``schedule`` (``optim.learning_rate_schedule`` with
    the optimizer's arguments) is given.

    With ``lora`` (``minift.lora``), ``params`` is ``{"base", "lora"}`` and only the adapters get
    a gradient; ``optimizer`` must leave the base alone (``optim.make_optimizer(..., trainable=
    lora.trainable_labels)``), and ``grad_norm`` is the adapters' gradient norm.
    """
    check_options(loss, reduction)  # fail now, not at the first call

    def train_step(params: Params, opt_state: optax.OptState, batch: Batch | list[Batch]):
        if isinstance(batch, list):
            batch = stack_micro_batches(batch)
        loss_value, grads, n_tokens = loss_and_grad(params, batch, config, loss=loss, reduction=reduction, lora=lora)
        metrics = {"loss": loss_value, "grad_norm": optax.tree.norm(grads), "n_tokens": n_tokens}
        if lora is not None:  # the base's "gradient" is zeros the optimizer ignores (optax.set_to_zero)
            grads = {"base": jax.tree.map(jnp.zeros_like, params["base"]), "lora": grads}
        if schedule is not None:
            metrics["learning_rate"] = schedule(update_count(opt_state))  # the rate this update uses
        updates, opt_state = optimizer.update(grads, opt_state, params)
        if lora is None:
            params = optax.apply_updates(params, updates)
        else:  # the base's updates are set_to_zero's zeros: pass the frozen weights through, not W + 0
            params = {"base": params["base"], "lora": optax.apply_updates(params["lora"], updates["lora"])}
        return params, opt_state, metrics

    return jax.jit(train_step, donate_argnums=(0, 1))


def update_count(opt_state: optax.OptState) -> jax.Array:
    """How many updates ``opt_state`` has seen: the ``count`` optax's stateful transforms keep.

    Every ``count`` in an optax chain (Adam's, the schedule's) is incremented once per update, so
    the first one found is the step number.
    """
    counts = optax.tree.get_all_with_path(opt_state, "count")
    if not counts:
        raise ValueError("train: this optimizer state has no step 'count'; build it with optim.make_optimizer.")
    return counts[0][1]


def make_eval_step(
    config: ModelConfig, *, loss: LossKind = "sft", reduction: losses.Reduction = "token",
    lora: lora_mod.LoraConfig | None = None,
) -> Callable[[Params, Batch], dict[str, jax.Array]]:
    """A jit-compiled ``eval_step(params, batch) -> metrics``: the loss without a gradient.

    ``metrics``: ``loss`` of this batch, and its additive parts ``total`` and ``count``
    (``loss = total / count``) so a whole evaluation set's loss is ``sum(total) / sum(count)``,
    weighted by tokens exactly like training; ``n_tokens`` as in ``make_train_step``.
    """
    check_options(loss, reduction)

    @jax.jit
    def eval_step(params: Params, batch: Batch) -> dict[str, jax.Array]:
        total, (count, n_tokens) = loss_terms(lora_mod.merged_params(params, lora), batch, config, loss, reduction)
        return {"loss": losses.safe_divide(total, count), "total": total, "count": count, "n_tokens": n_tokens}

    return eval_step


class MemoryPlan(NamedTuple):
    """Bytes one compiled train step needs, as XLA plans them (before anything is allocated)."""

    params: int  # the model's parameters
    optimizer: int  # optimizer state (AdamW: two moments per parameter, plus counters)
    batch: int  # tokens, targets, mask
    temporaries: int  # activations kept for the backward pass, gradients, and XLA's scratch

    @property
    def total(self) -> int:
        return self.params + self.optimizer + self.batch + self.temporaries


def memory_plan(config: ModelConfig, optimizer: optax.GradientTransformation, batch_size: int, seq_len: int,
                param_dtype: jnp.dtype = jnp.float32, *, loss: LossKind = "sft",
                lora: lora_mod.LoraConfig | None = None) -> MemoryPlan:
    """XLA's own account of a train step's memory, from shapes alone (nothing is allocated).

    The step is lowered on ``jax.ShapeDtypeStruct`` stand-ins and compiled; the compiled program's
    ``memory_analysis()`` gives its temporaries, which no formula of activations gets exactly right
    (fusion, remat, and the layer scan all change them). Compiling costs what the first step would.
    With ``lora``, the parameters are the frozen base plus float32 adapters, and ``optimizer`` is
    the one that trains the adapters only.
    """
    params = jax.eval_shape(lambda: model.init_params(config, jax.random.PRNGKey(0), dtype=param_dtype))
    if lora is not None:
        params = jax.eval_shape(lambda p: lora_mod.with_adapters(p, lora_mod.init_adapters(p, lora, jax.random.PRNGKey(0))),
                                params)
    opt_state = jax.eval_shape(optimizer.init, params)
    tokens = jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32)
    batch = Batch(tokens, tokens, jax.ShapeDtypeStruct((batch_size, seq_len), jnp.float32))
    compiled = make_train_step(config, optimizer, loss=loss, lora=lora).lower(params, opt_state, batch).compile()

    def nbytes(tree: Any) -> int:
        return sum(x.size * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))

    return MemoryPlan(nbytes(params), nbytes(opt_state), nbytes(batch), int(compiled.memory_analysis().temp_size_in_bytes))


def device_memory(device: jax.Device | None = None) -> int:
    """Bytes a train step may use on ``device`` (default: the first): the accelerator's own limit as
    its allocator reports it, or, on a CPU (which reports none), the machine's physical memory."""
    stats = (device or jax.devices()[0]).memory_stats()
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(plan: MemoryPlan, available: int, where: str = "this device") -> None:
    """Raise ``MemoryError`` naming each part when ``plan`` does not fit in ``available`` bytes."""
    if plan.total > available:
        gib = 1024**3
        raise MemoryError(
            f"a train step needs {plan.total / gib:.2f} GiB but {where} has {available / gib:.2f} GiB: parameters "
            f"{plan.params / gib:.2f}, optimizer state {plan.optimizer / gib:.2f}, batch {plan.batch / gib:.2f}, "
            f"activations and gradients {plan.temporaries / gib:.2f}. Lower the batch size or sequence length, set "
            "remat=True, use compute_dtype='bfloat16', or train LoRA adapters instead of every weight."
        )
