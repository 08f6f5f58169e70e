"""The course's two training runs, with the settings the demo's budget was measured at (§1–§3).

* ``pretrain`` — the *base* model of §1: next-token loss on the raw corpus, never an instruction.
* ``sft``      — instruction tuning (§2, §3.2) from a base run; with ``TrainConfig(loss="lm")``
  the prompt tokens are in the loss too (the §3.2 ablation).
* ``tune``     — the same for a *real* model: a Hugging Face Llama-layout checkpoint (or a minift
  run) tuned on a data file through a chat template, every weight or LoRA adapters only, after
  checking that a step fits in the device's memory.

Each run gets a folder holding ``run.json``, ``metrics.jsonl``, ``loss.png`` and
``checkpoints/`` (``minift.loop.fit``); ``minift pretrain`` / ``minift sft`` (in
``minift.commands``) and the demo call these two functions.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from minift import data as D
from minift import hf_llama
from minift import lora as L
from minift.chat import encode_chat, example_messages
from minift.chat_jinja import model_chat_template, read_chat_jinja
from minift.config import ModelConfig, get_config
from minift.course.bundled import corpus_texts, default_tokenizer
from minift.formats import detect_format, load_conversations, load_examples
from minift.gguf_llama import load_gguf_llama, load_gguf_tokenizer
from minift.loop import TrainConfig, TrainResult, fit, load_model, run_info, train_optimizer
from minift.model import count_params, init_params
from minift.tokenizer import Tokenizer, load_tokenizer
from minift.train import MemoryPlan, check_memory, device_memory, memory_plan

RUNS_DIR = Path("runs")
# The demo's budget: ~10 minutes for everything on 2 CPU cores (6.5 measured on the developers'
# machine, which ran the previous settings 1.5x faster than the machine they were tuned on). A
# 1M-parameter model tolerates (and needs, at so few steps) learning rates well above the ~1e-5
# used to tune real LLMs. Small batches, for pretraining and SFT: at this budget a step on 16 rows
# teaches more per token than one on 32 (1600 x 16 reached 81% held-out exact match, 800 x 32
# 78%). 600 pretraining steps rather than 400: the base model's eval loss 1.15 -> 1.10, and what
# it knows (the lexicon, the facts) is what unseen inputs need.
PRETRAIN_DEFAULTS = dict(steps=600, batch_size=16, learning_rate=5e-3, warmup_steps=20, loss="lm",
                         eval_every=100, checkpoint_every=100)
SFT_DEFAULTS = dict(steps=1600, batch_size=16, learning_rate=3e-3, warmup_steps=60, loss="sft",
                    eval_every=400, checkpoint_every=400)
SFT_BUCKETS = (32, 36, 48, 64, 128, 256)  # course examples (inline template): 12-36 tokens


def pretrain(
    run_dir: Path, config: ModelConfig, train: TrainConfig, tokenizer: Tokenizer, *,
    seq_len: int = 128, resume: bool = False, progress: bool = True,
) -> TrainResult:
    """Pretrain a base model from scratch on the raw corpus (§1). Returns ``TrainResult``."""
    texts = corpus_texts()
    n_eval = max(1, len(texts) // 50)  # 2% of the documents, never trained on, for the eval loss
    windows = D.lm_windows(texts[n_eval:], tokenizer, seq_len)
    eval_windows = D.lm_windows(texts[:n_eval], tokenizer, seq_len)
    kw = dict(buckets=(seq_len,), pad_id=tokenizer.pad_id)
    eval_batches = list(D.batches(eval_windows, train.batch_size, seed=0, shuffle=False, **kw))
    params = init_params(config, jax.random.PRNGKey(train.seed))
    return fit(
        run_dir, config, params, lambda e: D.batches(windows, train.batch_size, seed=(train.seed, e), **kw),
        train, eval_batches=eval_batches, resume=resume, progress=progress,
        info={"phase": "pretrain", "seq_len": seq_len, "documents": len(texts) - n_eval},
    )


def sft(
    run_dir: Path, base: Path | None, train: TrainConfig, tokenizer: Tokenizer, *,
    examples: Sequence[D.Example], eval_examples: Sequence[D.Example] = (),
    template: str = D.COURSE_TEMPLATE,
    max_len: int = 257, preset: str = "course", resume: bool = False, progress: bool = True,
    report: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """Instruction-tune ``base`` (a run folder; or a fresh ``preset`` model) on ``examples``.

    ``report`` receives one line saying how many examples were kept, cut and dropped.
    """
    if base is not None:
        params, config = load_model(base)
    else:
        config = get_config(preset, vocab_size=tokenizer.vocab_size)
        params = init_params(config, jax.random.PRNGKey(train.seed))
    encoded, stats = D.encode_dataset(examples, tokenizer, max_len, template)
    if not encoded:
        raise ValueError(f"no training example survived encoding ({stats}); check the data and --max-len")
    report(f"{run_dir.name}: {stats}")
    kw = dict(buckets=SFT_BUCKETS, pad_id=tokenizer.pad_id)
    eval_encoded, _ = D.encode_dataset(eval_examples, tokenizer, max_len, template)
    eval_batches = list(D.batches(eval_encoded, train.batch_size, seed=0, shuffle=False, **kw))
    return fit(
        run_dir, config, params, lambda e: D.batches(encoded, train.batch_size, seed=(train.seed, e), **kw),
        train, eval_batches=eval_batches or None, resume=resume, progress=progress,
        info={"phase": "sft", "base": str(base) if base else None, "template": template,
              "examples": len(encoded), "encode_stats": stats._asdict()},
    )


class Loaded(NamedTuple):
    """A model to tune or sample from, with its tokenizer and the chat template it was tuned with."""

    params: dict
    config: ModelConfig
    tokenizer: Tokenizer
    chat_template: str | None  # None: a course model, prompted with its instruction template
    chat_jinja: str | None = None  # the model's own Jinja chat template, when it came with one


def load_any(path: str | Path, *, dtype: jnp.dtype | None = None, **overrides) -> Loaded:
    """A GGUF file, a Hugging Face Llama checkpoint folder (``config.json`` + safetensors + tokenizer
    files), a run ``tune`` made (its tokenizer and chat template come from the run's ``run.json``),
    or a course run (the bundled tokenizer). ``overrides`` go to the ``ModelConfig`` (execution
    fields such as ``compute_dtype``, ``attention``, ``remat``); ``dtype`` casts the parameters.

    A model that carries a Jinja chat template (GGUF, Hugging Face) gets, as ``chat_template``, the
    minift template that renders as it does (``minift.chat_jinja``), or None if minift knows none."""
    path = Path(path)
    if path.suffix == ".gguf":
        m = load_gguf_llama(path, dtype=dtype or jnp.float32, **overrides)
        params, config, tokenizer, jinja = m.params, m.config, m.tokenizer, m.chat_template
        template = model_chat_template(jinja, tokenizer)
    elif (path / "config.json").is_file():
        params, config = hf_llama.load_hf_llama(path, dtype=dtype or jnp.float32, **overrides)
        tokenizer, jinja = load_tokenizer(path), read_chat_jinja(path)
        template = model_chat_template(jinja, tokenizer)
    else:
        params, config = load_model(path)
        config = dataclasses.replace(config, **overrides)
        if dtype is not None:
            params = jax.tree.map(lambda p: p.astype(dtype), params)
        info = run_info(path).get("info", {})
        tokenizer, jinja = source_tokenizer(info["init"]) if info.get("init") else (default_tokenizer(), None)
        template = info.get("chat_template")
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(f"{path}: the tokenizer has {tokenizer.vocab_size} ids but the model only "
                         f"{config.vocab_size} embeddings; they do not belong together")
    return Loaded(params, config, tokenizer, template, jinja)


def source_tokenizer(init: str | Path) -> tuple[Tokenizer, str | None]:
    """The tokenizer and Jinja chat template of the model a run was tuned from (GGUF file or folder)."""
    init = Path(init)
    if init.suffix == ".gguf":
        return load_gguf_tokenizer(init)
    return load_tokenizer(init), read_chat_jinja(init) if init.is_dir() else None


def tune_buckets(max_len: int) -> tuple[int, ...]:
    """Length buckets for real data: powers of two from 64 up to ``max_len - 1`` (one compile each)."""
    longest = max_len - 1  # a row of max_len ids gives max_len - 1 next-token pairs
    return tuple(b for b in (64, 128, 256, 512, 1024, 2048, 4096) if b < longest) + (longest,)


def tune(
    run_dir: Path, init: Path, train: TrainConfig, *, data: Path, format: str = "auto",
    chat_template: str | None = None, max_len: int = 512, dtype: jnp.dtype = jnp.float32,
    overrides: dict | None = None, buckets: Sequence[int] | None = None, resume: bool = False,
    progress: bool = True, report: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """Instruction-tune the model at ``init`` on ``data`` through ``chat_template`` (§2, §3.2): by
    default the model's own (the one its Jinja chat template renders as), else ``compact``.

    ``format="messages"`` reads multi-turn conversations (the loss on every assistant turn); any
    other format is read as Examples and turned into one user turn and one assistant turn. With
    ``train.lora_rank > 0`` only LoRA adapters train (``minift.lora``). Before the first step,
    ``report`` gets the parameter counts and the memory a step needs, and a ``MemoryError`` stops
    a run that would not fit in the device's memory. ``buckets``: the padded lengths (one compile
    each; default ``tune_buckets(max_len)``).
    """
    params, config, tokenizer, own_template = load_any(init, dtype=dtype, **(overrides or {}))[:4]
    chat_template = chat_template or own_template or "compact"  # default: the model's own format
    if (detect_format(data) if format == "auto" else format) == "messages":  # any number of turns
        conversations = load_conversations(data)
    else:
        conversations = [example_messages(ex) for ex in load_examples(data, format) if ex.split in ("", "train")]
    encoded = [e for e in (encode_chat(m, tokenizer, max_len, chat_template) for m in conversations) if e is not None]
    report(f"{run_dir.name}: {len(encoded)} of {len(conversations)} conversations fit in {max_len} tokens "
           f"({len(conversations) - len(encoded)} dropped)")
    if not encoded:
        raise ValueError(f"{data}: no conversation fits in --max-len {max_len} tokens")
    if train.lora:
        params = L.with_adapters(params, L.init_adapters(params, train.lora, jax.random.PRNGKey(train.seed)))
    buckets = tuple(sorted(buckets or tune_buckets(max_len)))
    plan = memory_plan(config, train_optimizer(train), train.batch_size, buckets[-1],
                       jax.tree.leaves(params)[0].dtype, lora=train.lora)
    report(describe_plan(params, plan, train.lora))
    check_memory(plan, device_memory())
    kw = dict(buckets=buckets, pad_id=tokenizer.pad_id)
    return fit(
        run_dir, config, params, lambda e: D.batches(encoded, train.batch_size, seed=(train.seed, e), **kw),
        train, resume=resume, progress=progress,
        info={"phase": "sft", "init": str(init), "data": str(data), "chat_template": chat_template,
              "max_len": max_len, "examples": len(encoded)},
    )


def describe_plan(params, plan: MemoryPlan, lora: L.LoraConfig | None) -> str:
    """One line: parameters (trainable ones), and a step's memory by part, in GiB."""
    gib = 1024**3
    n = count_params(params)
    trainable = L.count_trainable(params["lora"]) if lora else n
    return (f"{n / 1e6:.1f}M parameters, {trainable / 1e6:.2f}M trained ({100 * trainable / n:.2f}%); a step needs "
            f"{plan.total / gib:.2f} GiB: parameters {plan.params / gib:.2f}, optimizer {plan.optimizer / gib:.2f}, "
            f"batch {plan.batch / gib:.3f}, activations and gradients {plan.temporaries / gib:.2f}")
