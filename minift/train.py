"""Training: the jit-compiled step of §3.3 (and, below it, the loop).

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

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from minift import checkpoint as ckpt
from minift import loss as losses
from minift import model, optim
from minift.config import ModelConfig
from minift.data import Batch

Params = Any  # nested dict of arrays (minift.model.init_params)
LossKind = Literal["sft", "lm"]
LOSS_KINDS = ("sft", "lm")

# =============================================================================================
# The step
# =============================================================================================


def real_target_mask(loss_mask: jax.Array) -> jax.Array:
    """1 on every real (non-padding) target, prompt included: ``(B, T) -> (B, T)``.

    Rows are right-padded and end with the response (whose last target, EOS, is in the mask), so
    position t is real iff some position at or after t is in ``loss_mask``: a reversed cumulative
    sum. An all-padding row stays all 0.
    """
    remaining = jnp.flip(jnp.cumsum(jnp.flip(loss_mask, axis=-1), axis=-1), axis=-1)  # (B, T)
    return (remaining > 0).astype(loss_mask.dtype)


def _check_options(loss: str, reduction: str) -> None:
    if loss not in LOSS_KINDS:
        raise ValueError(f"train: loss={loss!r} is not one of {LOSS_KINDS} ('sft' = response only, 'lm' = all tokens).")
    if reduction not in losses.REDUCTIONS:
        raise ValueError(f"train: reduction={reduction!r} is not one of {losses.REDUCTIONS}.")


def target_mask(batch: Batch, loss: LossKind = "sft") -> jax.Array:
    """Which targets the loss counts, ``(B, T)``: the response (``"sft"``) or all real ones (``"lm"``)."""
    _check_options(loss, "token")
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
    params: Params, batch: Batch, config: ModelConfig, *, loss: LossKind = "sft", reduction: losses.Reduction = "token"
) -> tuple[jax.Array, Params, jax.Array]:
    """The loss, its gradient and the number of loss tokens, for a batch or K micro-batches.

    ``batch`` arrays are ``(B, T)``, or ``(K, B, T)`` for K micro-batches. Either way the
    micro-batches are scanned, their summed NLL and counts accumulated, and the division done
    once at the end:

    $$\\nabla_\\theta\\mathcal{L} = \\frac{\\sum_{k}\\nabla_\\theta S_k}{\\sum_k N_k},
      \\qquad S_k=\\sum_{b,t} m_{b,t}\\,(-\\log P_\\theta(x_{b,t}\\mid x_{b,<t}))$$

    so K micro-batches give the gradient of the one full batch (up to float rounding), while only
    one micro-batch's activations are alive at a time.
    """
    if batch.tokens.ndim not in (2, 3):
        raise ValueError(f"train: batch.tokens must be (B, T) or (K, B, T), got shape {batch.tokens.shape}.")
    if batch.tokens.ndim == 2:
        batch = jax.tree.map(lambda x: jnp.asarray(x)[None], batch)  # (1, B, T): one micro-batch

    def micro_step(micro: Batch):  # -> (grads, total, count, n_tokens) of one micro-batch
        (total, (count, n_tokens)), grads = jax.value_and_grad(loss_terms, has_aux=True)(
            params, micro, config, loss, reduction
        )
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
    """
    _check_options(loss, reduction)  # fail now, not at the first call

    def train_step(params: Params, opt_state: optax.OptState, batch: Batch | list[Batch]):
        if isinstance(batch, list):
            batch = stack_micro_batches(batch)
        loss_value, grads, n_tokens = loss_and_grad(params, batch, config, loss=loss, reduction=reduction)
        metrics = {"loss": loss_value, "grad_norm": optax.tree.norm(grads), "n_tokens": n_tokens}
        if schedule is not None:
            metrics["learning_rate"] = schedule(update_count(opt_state))  # the rate this update uses
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
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
    config: ModelConfig, *, loss: LossKind = "sft", reduction: losses.Reduction = "token"
) -> Callable[[Params, Batch], dict[str, jax.Array]]:
    """A jit-compiled ``eval_step(params, batch) -> metrics``: the loss without a gradient.

    ``metrics``: ``loss`` of this batch, and its additive parts ``total`` and ``count``
    (``loss = total / count``) so a whole evaluation set's loss is ``sum(total) / sum(count)``,
    weighted by tokens exactly like training; ``n_tokens`` as in ``make_train_step``.
    """
    _check_options(loss, reduction)

    @jax.jit
    def eval_step(params: Params, batch: Batch) -> dict[str, jax.Array]:
        total, (count, n_tokens) = loss_terms(params, batch, config, loss, reduction)
        return {"loss": losses.safe_divide(total, count), "total": total, "count": count, "n_tokens": n_tokens}

    return eval_step


# =============================================================================================
# The loop
# =============================================================================================
# One loop for both phases of the course: pretraining the base model (``loss="lm"`` on raw text)
# and instruction tuning (``loss="sft"``, or ``"lm"`` on instruction data for the unmasked
# ablation). What it adds around the step is what makes a run trustworthy:
#
# * a run folder: ``run.json`` (settings), ``metrics.jsonl`` (one JSON object per step),
#   ``loss.png``, and ``checkpoints/step_XXXXXXXX.safetensors`` (minift.checkpoint, atomic);
# * exact resumption: the batch stream is a pure function of (seed, epoch), so ``resume=True``
#   restores params, optimizer state and step from the newest checkpoint and skips the batches
#   already seen; on CPU the resumed run's losses equal the uninterrupted run's bit for bit;
# * a NaN/inf loss stops the run with an error naming the step; the last good checkpoint stays;
# * Ctrl-C writes a checkpoint of the last completed step before exiting.


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (stored in ``run.json`` and in every checkpoint)."""

    steps: int = 600
    batch_size: int = 32
    learning_rate: float = 1e-3  # high for a few-million-parameter model; real models use ~1e-5
    warmup_steps: int = 50
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    loss: str = "sft"  # "sft" (masked, §3.2) or "lm" (every real token)
    reduction: str = "token"
    eval_every: int = 100  # 0 = only at the end
    checkpoint_every: int = 200  # 0 = only at the end (and on Ctrl-C)
    keep_checkpoints: int = 2
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps} and {self.batch_size}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps={self.steps}), got {self.warmup_steps}")
        _check_options(self.loss, self.reduction)


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


class TrainResult(NamedTuple):
    params: Params
    opt_state: optax.OptState
    step: int
    history: list[dict]  # the metrics.jsonl records logged by this call


def batch_stream(make_epoch: Callable[[int], Iterable[Batch]]) -> Iterator[Batch]:
    """Endless batches: epoch 0, epoch 1, ... where ``make_epoch(epoch)`` is deterministic."""
    epoch = 0
    while True:
        empty = True
        for batch in make_epoch(epoch):
            empty = False
            yield batch
        if empty:
            raise ValueError("the training data produced no batch: is the dataset empty?")
        epoch += 1


def evaluate_loss(eval_step, params: Params, batches: Iterable[Batch]) -> float:
    """Token-weighted loss over a whole evaluation set: sum(total) / sum(count)."""
    total = count = 0.0
    for batch in batches:
        m = eval_step(params, batch)
        total, count = total + float(m["total"]), count + float(m["count"])
    return total / count if count else 0.0


def read_history(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file (empty if it does not exist)."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_history(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")


def plot_losses(history: list[dict], path: Path, title: str = "") -> Path:
    """Train (and eval, if logged) loss against step, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in history], [r["loss"] for r in history], label="train", lw=1)
    ev = [(r["step"], r["eval_loss"]) for r in history if "eval_loss" in r]
    if ev:
        ax.plot(*zip(*ev), "o-", label="eval")
    ax.set(xlabel="step", ylabel="loss (nats / token)", title=title, yscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def fit(
    run_dir: str | Path,
    config: ModelConfig,
    params: Params,
    make_epoch: Callable[[int], Iterable[Batch]],
    train: TrainConfig,
    *,
    eval_batches: list[Batch] | None = None,
    resume: bool = False,
    progress: bool = True,
    info: dict | None = None,
) -> TrainResult:
    """Train ``params`` for ``train.steps`` steps; everything the run makes goes to ``run_dir``.

    ``make_epoch(epoch)`` returns that epoch's batches (fixed shapes from length buckets, seeded
    by the epoch, e.g. ``lambda e: data.batches(enc, 32, pad_id=0, seed=(seed, e))``).
    ``info`` (JSON-serialisable: data, template, ...) is stored in ``run.json`` and checkpoints.
    The caller's ``params`` are not modified (training runs on a copy: the step donates buffers).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    optimizer = optim.make_optimizer(
        train.learning_rate, train.steps, train.warmup_steps,
        weight_decay=train.weight_decay, clip_norm=train.clip_norm,
    )
    schedule = optim.learning_rate_schedule(train.learning_rate, train.steps, train.warmup_steps)
    train_step = make_train_step(config, optimizer, loss=train.loss, reduction=train.reduction, schedule=schedule)
    eval_step = make_eval_step(config, loss=train.loss, reduction=train.reduction)
    meta = {"train": asdict(train), "info": info or {}}
    metrics_path = run_dir / "metrics.jsonl"

    step = 0
    params = jax.tree.map(jnp.copy, params)
    opt_state = optimizer.init(params)
    last = ckpt.latest_checkpoint(run_dir) if resume else None
    if last is not None:
        state = ckpt.load_checkpoint(last, params_template=params, opt_state_template=opt_state, config=config)
        params, opt_state, step = state.params, state.opt_state, state.step
        # Forget what was logged after that checkpoint: the resumed run logs those steps again.
        _write_history(metrics_path, [r for r in read_history(metrics_path) if r["step"] <= step])
    else:
        _write_history(metrics_path, [])
    (run_dir / "run.json").write_text(
        json.dumps({"model": config.to_dict(), **meta}, indent=2, sort_keys=True, ensure_ascii=False),
        encoding="utf-8",
    )

    def save(at_step: int) -> Path:
        path = ckpt.save_checkpoint(
            ckpt.checkpoint_path(run_dir, at_step), params=params, opt_state=opt_state,
            step=at_step, rng=jax.random.PRNGKey(train.seed), config=config, metadata=meta,
        )
        ckpt.prune_checkpoints(run_dir, train.keep_checkpoints)
        return path

    stream = batch_stream(make_epoch)
    for _ in range(step):  # skip the batches the checkpointed run already trained on
        next(stream)

    from tqdm.auto import tqdm

    history: list[dict] = []
    bar = tqdm(total=train.steps, initial=step, disable=not progress, desc=run_dir.name, unit="step")
    t0, tokens_seen = time.perf_counter(), 0
    try:
        while step < train.steps:
            batch = next(stream)
            new_params, new_opt_state, metrics = train_step(params, opt_state, batch)
            loss_value = float(metrics["loss"])  # waits for the step to finish
            if not math.isfinite(loss_value):
                last = ckpt.latest_checkpoint(run_dir)
                raise TrainingDiverged(
                    f"{run_dir}: the loss became {loss_value} at step {step + 1}; training stopped. "
                    f"The last good checkpoint is {last or 'none (none was written yet)'}. "
                    "Lower the learning rate or lengthen the warm-up, then resume from it."
                )
            params, opt_state = new_params, new_opt_state
            step += 1
            tokens_seen += int(np.prod(batch.tokens.shape))
            record = {
                "step": step, "loss": loss_value, "grad_norm": float(metrics["grad_norm"]),
                "learning_rate": float(metrics["learning_rate"]), "n_tokens": int(metrics["n_tokens"]),
                "tokens_per_s": tokens_seen / (time.perf_counter() - t0),
            }
            if eval_batches and ((train.eval_every and step % train.eval_every == 0) or step == train.steps):
                record["eval_loss"] = evaluate_loss(eval_step, params, eval_batches)
            history.append(record)
            with open(metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
            bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
            bar.update(1)
            if (train.checkpoint_every and step % train.checkpoint_every == 0) or step == train.steps:
                save(step)
    except KeyboardInterrupt:
        bar.close()
        # params/opt_state are those of the last *completed* step (assigned only after it).
        path = save(step)
        print(f"\ninterrupted: checkpoint of step {step} written to {path}; continue with --resume")
        raise
    bar.close()
    plot_losses(read_history(metrics_path), run_dir / "loss.png", title=run_dir.name)
    return TrainResult(params, opt_state, step, history)


def load_model(path: str | Path) -> tuple[Params, ModelConfig]:
    """Parameters and config of a trained model: a run folder (its newest checkpoint) or a file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run folder or checkpoint file (train one with `minift pretrain`/`sft`)")
    if path.is_dir():
        last = ckpt.latest_checkpoint(path)
        if last is None:
            raise FileNotFoundError(f"{path}: no checkpoint under {path / ckpt.CHECKPOINT_DIR}; is this a run folder?")
        path = last
    state = ckpt.load_checkpoint(path)
    if state.config_dict is None:
        raise ValueError(f"{path}: the checkpoint stores no model config, so it cannot be loaded as a model")
    return state.params, ModelConfig.from_dict(state.config_dict)


def run_info(run_dir: str | Path) -> dict:
    """The ``run.json`` of a run folder (``{}`` if absent)."""
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
