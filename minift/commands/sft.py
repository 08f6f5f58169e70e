"""``minift sft``: instruction-tune a base run with the masked loss (§2, §3.2), or unmasked (--unmasked)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minift import data as D
from minift.commands.common import add_train_arguments, train_config
from minift.course.bundled import course_examples, default_tokenizer
from minift.formats import load_examples
from minift.runs import RUNS_DIR, SFT_DEFAULTS, sft


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_train_arguments(p, SFT_DEFAULTS)
    p.add_argument("--base", type=Path, default=RUNS_DIR / "base", help="base run folder ('none': from scratch)")
    p.add_argument("--data", type=Path, help="instruction file (any format minift.formats reads; default: bundled)")
    p.add_argument("--template", default=D.COURSE_TEMPLATE, choices=sorted(D.TEMPLATES))
    p.add_argument("--unmasked", action="store_true", help="put the prompt tokens in the loss too (§3.2 ablation)")
    p.add_argument("--max-len", type=int, default=257)


def run(args: argparse.Namespace) -> int:
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
