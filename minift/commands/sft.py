"""``minift sft``: instruction-tune a base run with the masked loss (§2, §3.2), or unmasked (--unmasked);
with ``--init``, a real model (a Hugging Face Llama-layout checkpoint) through a chat template, with or
without LoRA."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax.numpy as jnp

from minift import data as D
from minift import lora as L
from minift.chat import CHAT_TEMPLATES
from minift.commands.common import add_train_arguments, train_config
from minift.config import ATTENTION_IMPLEMENTATIONS
from minift.course.bundled import course_examples, default_tokenizer
from minift.formats import LOADERS, load_examples
from minift.runs import RUNS_DIR, SFT_DEFAULTS, sft, tune


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_train_arguments(p, SFT_DEFAULTS)
    p.add_argument("--base", type=Path, default=RUNS_DIR / "base", help="base run folder ('none': from scratch)")
    p.add_argument("--data", type=Path, help="instruction file (any format minift.formats reads; default: bundled)")
    p.add_argument("--template", default=D.COURSE_TEMPLATE, choices=sorted(D.TEMPLATES))
    p.add_argument("--unmasked", action="store_true", help="put the prompt tokens in the loss too (§3.2 ablation)")
    p.add_argument("--max-len", type=int, default=257)
    real = p.add_argument_group("a real model (--init)")
    real.add_argument("--init", type=Path, help="GGUF file, Hugging Face Llama checkpoint folder, or a minift run to tune")
    real.add_argument("--format", default="auto", choices=("auto", *LOADERS), help="format of --data")
    real.add_argument("--chat-template", choices=CHAT_TEMPLATES,
                      help="how turns are written: the model family's own (llama2, llama3, chatml, smollm2) or "
                           "minift's compact (default: the one the model's chat template renders as, else compact)")
    real.add_argument("--lora-rank", type=int, default=0, help="> 0: train LoRA adapters of this rank only")
    real.add_argument("--lora-alpha", type=float, default=16.0)
    real.add_argument("--lora-targets", default=",".join(L.ALL_PROJECTIONS), help="comma-separated projections")
    real.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="parameter dtype")
    real.add_argument("--compute-dtype", choices=("float32", "bfloat16"), help="matmul dtype (mixed precision)")
    real.add_argument("--remat", action="store_true", help="recompute activations in the backward pass")
    real.add_argument("--attention", default="reference", choices=ATTENTION_IMPLEMENTATIONS)
    real.add_argument("--buckets", help="comma-separated padded lengths, one compile each (default: powers of "
                      "two up to --max-len - 1); one bucket = one compile, for a large model")


def run(args: argparse.Namespace) -> int:
    if args.init:
        return run_init(args)
    tok = default_tokenizer()
    if args.data:
        examples = [ex for ex in load_examples(args.data) if ex.split in ("", "train")]
        eval_examples: list[D.Example] = []
    else:
        examples, eval_examples = course_examples("train"), course_examples("heldout_phrasing")
    base = None if str(args.base) == "none" else args.base
    out = args.out or RUNS_DIR / ("sft_unmasked" if args.unmasked else "sft")
    train = train_config(args, SFT_DEFAULTS, loss="lm" if args.unmasked else "sft")
    result = sft(out, base, train, tok, examples=examples, eval_examples=eval_examples, template=args.template,
                 max_len=args.max_len, resume=args.resume, progress=not args.no_progress,
                 report=lambda line: print(line, file=sys.stderr))
    print(f"instruction-tuned model: {out} (step {result.step})")
    return 0


def run_init(args: argparse.Namespace) -> int:
    if not args.data:
        raise ValueError("--init needs --data FILE (the instruction data to tune on)")
    out = args.out or RUNS_DIR / ("lora" if args.lora_rank else "tuned")
    train = train_config(args, SFT_DEFAULTS, loss="lm" if args.unmasked else "sft", lora_rank=args.lora_rank,
                         lora_alpha=args.lora_alpha, lora_targets=tuple(args.lora_targets.split(",")))
    overrides = {"attention": args.attention, "remat": args.remat, "compute_dtype": args.compute_dtype}
    result = tune(out, args.init, train, data=args.data, format=args.format, chat_template=args.chat_template,
                  max_len=args.max_len, dtype=jnp.dtype(args.dtype), overrides=overrides, resume=args.resume,
                  buckets=tuple(int(b) for b in args.buckets.split(",")) if args.buckets else None,
                  progress=not args.no_progress, report=lambda line: print(line, file=sys.stderr))
    print(f"instruction-tuned model: {out} (step {result.step}); export it with "
          f"`minift export --model {out} --out DIR`")
    return 0
