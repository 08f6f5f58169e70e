"""``minift demo``: what ``make demo`` runs — pretrain, tune masked and unmasked, evaluate, print."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from minift import data as D
from minift.course.bundled import default_tokenizer
from minift.demo import MODELS, SPLITS, run_demo, section1_example
from minift.evaluate import format_table, prompt_ids
from minift.runs import PRETRAIN_DEFAULTS, RUNS_DIR, SFT_DEFAULTS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="demo folder (default runs/demo-<time>)")
    p.add_argument("--preset", default="course")
    p.add_argument("--pretrain-steps", type=int, default=PRETRAIN_DEFAULTS["steps"])
    p.add_argument("--sft-steps", type=int, default=SFT_DEFAULTS["steps"])
    p.add_argument("--template", default=D.COURSE_TEMPLATE, choices=sorted(D.TEMPLATES))
    p.add_argument("--eval-limit", type=int, default=0, help="evaluate on the first N examples per split (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    out = args.out or RUNS_DIR / time.strftime("demo-%Y%m%d-%H%M%S")
    example = section1_example()
    tok = default_tokenizer()
    ids = prompt_ids(example, tok, args.template)
    print(f"minift demo -> {out}")
    print(f"§1 example, as the model sees it ({len(ids)} tokens):\n  "
          + " ".join(tok.id_to_piece(i).replace("\n", "↵") for i in ids))
    summary = run_demo(out, preset=args.preset, pretrain_steps=args.pretrain_steps, sft_steps=args.sft_steps,
                       template=args.template, eval_limit=args.eval_limit, seed=args.seed,
                       progress=not args.no_progress, report=lambda line: print(line, file=sys.stderr))
    results, section1 = summary["models"], summary["section1_example"]["outputs"]
    print("\n§1 — 'Hãy dịch câu này sang tiếng Việt' before and after instruction tuning")
    print(f"  instruction: {example.instruction}\n  input:       {example.input}\n  expected:    {example.response}")
    for name in MODELS:
        print(f"  {name:<13} -> {section1[name]!r}")
    for split in SPLITS:
        print(f"\nexact match on {split} ({results['base'][split]['n']} questions)")
        print(format_table(results, split))
    print(f"\nloss curves: {out / 'loss_curves.png'}\nresults:     {out / 'results.json'}\nrun folders: "
          + ", ".join(str(out / name) for name in MODELS) + f"\nwall time:   {summary['seconds']['total'] / 60:.1f} min")
    return 0
