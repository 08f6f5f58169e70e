"""The training loop around the step of ``minift.train``: run folders, exact resume, checkpoints.

One loop for both phases of the course: pretraining the base model (``loss="lm"`` on raw text)
and instruction tuning (``loss="sft"``, or ``"lm"`` on instruction data for the unmasked
ablation). What it adds around the step is what makes a run trustworthy:

* a run folder: ``run.json`` (settings), ``metrics.jsonl`` (one JSON object per step),
  ``loss.png``, and ``checkpoints/step_XXXXXXXX.safetensors`` (minift.checkpoint, atomic);
* exact resumption: the batch stream is a pure function of (seed, epoch), so ``resume=True``
  restores params, optimizer state and step from the newest checkpoint and skips the batches
  already seen; on CPU the resumed run's losses equal the uninterrupted run's bit for bit;
* a NaN/inf loss stops the run with an error naming the step; the last good checkpoint stays;
* Ctrl-C writes a checkpoint of the last completed step before exiting.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from minift import checkpoint as ckpt
from minift import lora as L
from minift import optim
from minift.config import ModelConfig
from minift.data import Batch
from minift.files import append_jsonl, read_json, read_jsonl, write_atomic, write_json
from minift.sharding import check_batch_size, check_strategy, gather, keep_layout, make_mesh, shard_batch, shard_state
from minift.train import Params, check_options, make_eval_step, make_train_step


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
    sharding: str = "none"  # "dp" or "fsdp": spread the step over every device (minift.sharding)
    lora_rank: int = 0  # > 0: train LoRA adapters of this rank on a frozen model (minift.lora); 0: every weight
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = L.ALL_PROJECTIONS

    def __post_init__(self):
        check_run_length("TrainConfig", self.steps, self.batch_size, self.warmup_steps)
        check_options(self.loss, self.reduction)
        check_strategy(self.sharding, "TrainConfig.sharding")
        if self.lora_rank:
            self.lora  # noqa: B018  (validates the LoRA fields now, not at the first step)

    @property
    def lora(self) -> L.LoraConfig | None:
        """The LoRA settings, or None for full fine-tuning."""
        if not self.lora_rank:
            return None
        return L.LoraConfig(self.lora_rank, self.lora_alpha, tuple(self.lora_targets))


def check_run_length(where: str, steps: int, batch_size: int, warmup_steps: int) -> None:
    """A ValueError naming ``where`` unless steps, batch_size >= 1 and 0 <= warmup_steps < steps."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"{where}: steps and batch_size must be >= 1, got {steps} and {batch_size}")
    if not 0 <= warmup_steps < steps:
        raise ValueError(f"{where}: warmup_steps must be in [0, steps={steps}), got {warmup_steps}")


def train_optimizer(train: TrainConfig) -> optax.GradientTransformation:
    """The optimizer a run with these settings trains with (``optim.make_optimizer``)."""
    return optim.make_optimizer(
        train.learning_rate, train.steps, train.warmup_steps,
        weight_decay=train.weight_decay, clip_norm=train.clip_norm,
        trainable=L.trainable_labels if train.lora else None,  # LoRA: AdamW on the adapters, the rest frozen
    )


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``fit``: the last completed step was saved; the message says where."""


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


def read_history(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file (empty if it does not exist)."""
    return read_jsonl(path, "metrics file") if Path(path).is_file() else []


def _write_history(path: Path, records: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))


def plot_losses(history: list[dict], path: Path, title: str = "") -> Path:
    """Train (and eval, if logged) loss against step, saved as a PNG."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot([r["step"] for r in history], [r["loss"] for r in history], label="train", lw=1)
    ev = [(r["step"], r["eval_loss"]) for r in history if "eval_loss" in r]
    if ev:
        ax.plot(*zip(*ev), "o-", label="eval")
    ax.set(xlabel="step", ylabel="loss (nats / token)", title=title, yscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
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
    mesh = None if train.sharding == "none" else make_mesh()  # every device JAX sees, all hosts'
    if mesh is not None:
        check_batch_size(train.batch_size, mesh.devices.size, "TrainConfig.batch_size")
    run_dir.mkdir(parents=True, exist_ok=True)
    optimizer = train_optimizer(train)
    schedule = optim.learning_rate_schedule(train.learning_rate, train.steps, train.warmup_steps)
    if train.lora and not L.is_lora_tree(params):
        raise ValueError("fit: TrainConfig.lora_rank > 0 needs params = minift.lora.with_adapters(params, adapters)")
    train_step = make_train_step(config, optimizer, loss=train.loss, reduction=train.reduction, schedule=schedule,
                                 lora=train.lora)
    eval_step = make_eval_step(config, loss=train.loss, reduction=train.reduction, lora=train.lora)
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
    if mesh is not None:  # lay the state out over the devices (a resumed one too); jit follows it
        params, opt_state = shard_state(params, opt_state, mesh, train.sharding)
        train_step = keep_layout(train_step, params, opt_state, mesh)
    write_json(run_dir / "run.json", {"model": config.to_dict(), **meta})

    def save(at_step: int) -> Path:
        path = ckpt.save_checkpoint(
            ckpt.checkpoint_path(run_dir, at_step), params=gather(params), opt_state=gather(opt_state),
            step=at_step, rng=jax.random.PRNGKey(train.seed), config=config, metadata=meta,
        )
        ckpt.prune_checkpoints(run_dir, train.keep_checkpoints)
        return path

    stream = batch_stream(make_epoch)
    for _ in range(step):  # skip the batches the checkpointed run already trained on
        next(stream)

    history: list[dict] = []
    bar = tqdm(total=train.steps, initial=step, disable=not progress, desc=run_dir.name, unit="step")
    t0, tokens_seen = time.perf_counter(), 0
    try:
        while step < train.steps:
            batch = next(stream) if mesh is None else shard_batch(next(stream), mesh)  # B split over devices
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
            append_jsonl(metrics_path, record)
            bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
            bar.update(1)
            if (train.checkpoint_every and step % train.checkpoint_every == 0) or step == train.steps:
                save(step)
    except KeyboardInterrupt:
        bar.close()
        # params/opt_state are those of the last *completed* step (assigned only after it).
        path = save(step)
        raise TrainingInterrupted(f"interrupted: checkpoint of step {step} written to {path}; "
                                  "continue with --resume") from None
    bar.close()
    plot_losses(read_history(metrics_path), run_dir / "loss.png", title=run_dir.name)
    return TrainResult(params, opt_state, step, history)


def load_model(path: str | Path) -> tuple[Params, ModelConfig]:
    """Parameters and config of a trained model: a run folder (its newest checkpoint) or a file.

    A LoRA run's checkpoint holds the frozen base and the adapters; the model returned is their
    merge, $W + \\frac{\\alpha}{r}BA$, with the LoRA settings the run recorded.
    """
    path = ckpt.checkpoint_file(path, "train one with `minift pretrain` or `minift sft`")
    state = ckpt.load_checkpoint(path)
    if state.config_dict is None:
        raise ValueError(f"{path}: the checkpoint stores no model config, so it cannot be loaded as a model")
    params = state.params
    if L.is_lora_tree(params):
        settings = state.metadata.get("train", {})
        lora = L.LoraConfig(settings["lora_rank"], settings["lora_alpha"], tuple(settings["lora_targets"]))
        params = L.merge(params["base"], params["lora"], lora)
    return params, ModelConfig.from_dict(state.config_dict)


def run_info(run: str | Path) -> dict:
    """The ``run.json`` of a run folder, or of the run a checkpoint file belongs to (``{}`` if absent)."""
    run = Path(run)
    folder = run if run.is_dir() else run.parent.parent  # <run>/checkpoints/step_*.safetensors
    path = folder / "run.json"
    return read_json(path, "run settings") if path.is_file() else {}


def run_template(run: str | Path, default: str = "alpaca") -> str:
    """The prompt template a run was tuned with, as its run.json records it (else ``default``).

    SFT runs store it under ``info.template``; reward-model and PPO runs at the top level.
    """
    info = run_info(run)
    for source in (info, info.get("info", {})):
        if isinstance(source, dict) and isinstance(source.get("template"), str):
            return source["template"]
    return default
