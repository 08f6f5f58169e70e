"""The course's training runs as commands: ``minift pretrain | sft | generate | chat | eval``.

Each run gets a folder (``runs/<name>`` by default) holding ``run.json``, ``metrics.jsonl``,
``loss.png`` and ``checkpoints/`` (see ``minift.train.fit``); later commands take that folder.

* ``pretrain`` — the *base* model of §1: next-token loss on the raw corpus, never an instruction.
* ``sft``      — instruction tuning (§2, §3.2) from a base run; ``--unmasked`` puts the prompt
  tokens in the loss too (the §3.2 ablation).
* ``generate`` / ``chat`` — sample from a run (the prompt template is applied for instructions).
* ``eval``     — exact match per task on the held-out splits (``minift.evaluate``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import jax

from minift import coursedata
from minift import data as D
from minift.config import PRESETS, ModelConfig, get_config
from minift.evaluate import evaluate, format_table
from minift.generate import Sampling, generate
from minift.model import init_params
from minift.tokenizer import Tokenizer, default_tokenizer
from minift.train import TrainConfig, fit, load_model, run_info

RUNS_DIR = Path("runs")
# The demo's budget: ~10 minutes for everything on 2 CPU cores. A 1M-parameter model tolerates
# (and needs, at so few steps) learning rates well above the ~1e-5 used to tune real LLMs. Small
# batches, for pretraining and SFT: at this budget a step on 16 rows teaches more per token than
# one on 32 (same base, half the current SFT data: 1600 x 16 reached 81% held-out exact match,
# 800 x 32 78%).
PRETRAIN_DEFAULTS = dict(steps=400, batch_size=16, learning_rate=5e-3, warmup_steps=20, loss="lm",
                         eval_every=100, checkpoint_every=100)
SFT_DEFAULTS = dict(steps=1600, batch_size=16, learning_rate=3e-3, warmup_steps=60, loss="sft",
                    eval_every=400, checkpoint_every=400)
SFT_BUCKETS = (32, 36, 48, 64, 128, 256)  # course examples (inline template): 12-36 tokens


# --- data ------------------------------------------------------------------------------------


def corpus_texts(samples_dir: Path = coursedata.SAMPLES_DIR) -> list[str]:
    path = samples_dir / coursedata.CORPUS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the course corpus is missing; regenerate it with `minift data`")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def course_examples(split: str, path: Path | None = None) -> list[D.Example]:
    """The bundled instructions of one split (train, heldout_phrasing, heldout_task)."""
    path = path or coursedata.SAMPLES_DIR / coursedata.INSTRUCTIONS_FILE
    return [ex for ex in D.load_examples(path) if ex.split == split]


def pretrain(
    run_dir: Path, config: ModelConfig, train: TrainConfig, tokenizer: Tokenizer, *,
    seq_len: int = 128, resume: bool = False, progress: bool = True,
):
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
):
    """Instruction-tune ``base`` (a run folder; or a fresh ``preset`` model) on ``examples``."""
    if base is not None:
        params, config = load_model(base)
    else:
        config = get_config(preset, vocab_size=tokenizer.vocab_size)
        params = init_params(config, jax.random.PRNGKey(train.seed))
    encoded, stats = D.encode_dataset(examples, tokenizer, max_len, template)
    if not encoded:
        raise ValueError(f"no training example survived encoding ({stats}); check the data and --max-len")
    print(f"{run_dir.name}: {stats}", file=sys.stderr)
    kw = dict(buckets=SFT_BUCKETS, pad_id=tokenizer.pad_id)
    eval_encoded, _ = D.encode_dataset(eval_examples, tokenizer, max_len, template)
    eval_batches = list(D.batches(eval_encoded, train.batch_size, seed=0, shuffle=False, **kw))
    return fit(
        run_dir, config, params, lambda e: D.batches(encoded, train.batch_size, seed=(train.seed, e), **kw),
        train, eval_batches=eval_batches or None, resume=resume, progress=progress,
        info={"phase": "sft", "base": str(base) if base else None, "template": template,
              "examples": len(encoded), "encode_stats": stats._asdict()},
    )


def run_template(run_dir: Path, default: str = D.COURSE_TEMPLATE) -> str:
    """The prompt template a run was tuned with (stored in its run.json)."""
    return run_info(run_dir).get("info", {}).get("template") or default


# --- command-line glue -------------------------------------------------------------------------


def _train_arguments(p: argparse.ArgumentParser, defaults: dict) -> None:
    p.add_argument("--out", type=Path, help="run folder (default runs/<command>)")
    p.add_argument("--steps", type=int, default=defaults["steps"])
    p.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    p.add_argument("--lr", type=float, default=defaults["learning_rate"], help="peak learning rate")
    p.add_argument("--warmup", type=int, default=defaults["warmup_steps"], help="warm-up steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _train_config(args, defaults: dict, **override) -> TrainConfig:
    return TrainConfig(**{**defaults, "steps": args.steps, "batch_size": args.batch_size,
                          "learning_rate": args.lr, "warmup_steps": args.warmup, "seed": args.seed, **override})


def add_pretrain_arguments(p: argparse.ArgumentParser) -> None:
    _train_arguments(p, PRETRAIN_DEFAULTS)
    p.add_argument("--preset", default="course", choices=sorted(PRESETS))
    p.add_argument("--seq-len", type=int, default=128)


def run_pretrain(args) -> int:
    tok = default_tokenizer()
    config = get_config(args.preset, vocab_size=tok.vocab_size)
    out = args.out or RUNS_DIR / "base"
    result = pretrain(out, config, _train_config(args, PRETRAIN_DEFAULTS), tok, seq_len=args.seq_len,
                      resume=args.resume, progress=not args.no_progress)
    print(f"base model: {out} (step {result.step}, loss {result.history[-1]['loss']:.3f})" if result.history
          else f"base model: {out} (already at step {result.step})")
    return 0


def add_sft_arguments(p: argparse.ArgumentParser) -> None:
    _train_arguments(p, SFT_DEFAULTS)
    p.add_argument("--base", type=Path, default=RUNS_DIR / "base", help="base run folder ('none': from scratch)")
    p.add_argument("--data", type=Path, help="instruction file (any format minift.data reads; default: bundled)")
    p.add_argument("--template", default=D.COURSE_TEMPLATE, choices=sorted(D.TEMPLATES))
    p.add_argument("--unmasked", action="store_true", help="put the prompt tokens in the loss too (§3.2 ablation)")
    p.add_argument("--max-len", type=int, default=257)


def run_sft(args) -> int:
    tok = default_tokenizer()
    if args.data:
        examples = [ex for ex in D.load_examples(args.data) if ex.split in ("", "train")]
        eval_examples: list[D.Example] = []
    else:
        examples, eval_examples = course_examples("train"), course_examples("heldout_phrasing")
    base = None if str(args.base) == "none" else args.base
    out = args.out or RUNS_DIR / ("sft_unmasked" if args.unmasked else "sft")
    train = _train_config(args, SFT_DEFAULTS, loss="lm" if args.unmasked else "sft")
    result = sft(out, base, train, tok, examples=examples, eval_examples=eval_examples, template=args.template,
                 max_len=args.max_len, resume=args.resume, progress=not args.no_progress)
    print(f"instruction-tuned model: {out} (step {result.step})")
    return 0


def _sampling_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=RUNS_DIR / "sft", help="run folder or checkpoint file")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--template", help="prompt template (default: the one the run was tuned with)")


def _reply(params, config, tok, prompt_ids: list[int], args) -> str:
    sampling = Sampling(args.temperature, args.top_k, args.top_p)
    out = generate(params, config, [prompt_ids], max_new_tokens=args.max_new_tokens, eos_id=tok.eos_id,
                   pad_id=tok.pad_id, sampling=sampling, key=jax.random.PRNGKey(args.seed))
    return tok.decode(out[0])


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    _sampling_arguments(p)
    p.add_argument("--instruction", help="an instruction (the template is applied)")
    p.add_argument("--input", default="", help="its optional input")
    p.add_argument("--prompt", help="raw text to continue (no template), e.g. for a base model")


def run_generate(args) -> int:
    if (args.instruction is None) == (args.prompt is None):
        raise ValueError("give exactly one of --instruction (templated) or --prompt (raw text)")
    tok = default_tokenizer()
    params, config = load_model(args.model)
    if args.prompt is not None:
        ids = tok.encode(args.prompt, bos=True)
    else:
        template = args.template or run_template(args.model)
        ids = tok.encode(D.format_prompt(D.Example(args.instruction, args.input, ""), template), bos=True)
    print(_reply(params, config, tok, ids, args))
    return 0


def add_chat_arguments(p: argparse.ArgumentParser) -> None:
    _sampling_arguments(p)


def run_chat(args) -> int:
    """A tiny REPL: each line is an instruction; 'input: ...' after ' || ' gives it an input."""
    tok = default_tokenizer()
    params, config = load_model(args.model)
    template = args.template or run_template(args.model)
    print(f"minift chat with {args.model} ({template} template). Type an instruction; "
          "'instruction || input' adds an input; an empty line or Ctrl-D quits.")
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            break
        if not line:
            break
        instruction, _, inp = (part.strip() for part in line.partition("||"))
        ids = tok.encode(D.format_prompt(D.Example(instruction, inp, ""), template), bos=True)
        print(_reply(params, config, tok, ids, args))
    return 0


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", type=Path, help="run folders (or checkpoint files) to compare")
    p.add_argument("--splits", nargs="+", default=["heldout_phrasing", "heldout_task"])
    p.add_argument("--template", help="prompt template (default: each run's own)")
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--json", type=Path, help="also write the accuracy tables here")


def run_eval(args) -> int:
    tok = default_tokenizer()
    results: dict[str, dict] = {}
    for model_path in args.models:
        params, config = load_model(model_path)
        template = args.template or run_template(model_path)
        results[model_path.name] = {
            split: evaluate(params, config, tok, course_examples(split), template=template,
                            max_new_tokens=args.max_new_tokens)[0]
            for split in args.splits
        }
    for split in args.splits:
        print(f"\nexact match, {split}\n{format_table(results, split)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True), encoding="utf-8")
    return 0
