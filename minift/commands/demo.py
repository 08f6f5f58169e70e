"""``minift demo``: what ``make demo`` runs — pretrain, tune masked and unmasked, evaluate, print.

``--seeds 3`` runs the whole demo once per seed (about 10 minutes each on a 2-core CPU: start it
before class) and prints each accuracy as mean (min–max) over the seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from minift import data as D
from minift.course.bundled import default_tokenizer
from minift.demo import COMPARISONS, MODELS, SPLITS, run_demo, run_demo_over_seeds, section1_examples
from minift.evaluate import format_table, prompt_ids
from minift.runs import PRETRAIN_DEFAULTS, RUNS_DIR, SFT_DEFAULTS
from minift.seeds import describe


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="demo folder (default runs/demo-<time>)")
    p.add_argument("--preset", default="course")
    p.add_argument("--pretrain-steps", type=int, default=PRETRAIN_DEFAULTS["steps"])
    p.add_argument("--sft-steps", type=int, default=SFT_DEFAULTS["steps"])
    p.add_argument("--template", default=D.COURSE_TEMPLATE, choices=sorted(D.TEMPLATES))
    p.add_argument("--eval-limit", type=int, default=0, help="evaluate on the first N examples per split (0 = all)")
    p.add_argument("--seed", type=int, default=0, help="the (first) seed: initialisation and data order")
    p.add_argument("--seeds", type=int, default=1, help="run the demo for this many seeds and report mean and spread")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    out = args.out or RUNS_DIR / time.strftime("demo-%Y%m%d-%H%M%S")
    tok = default_tokenizer()
    article = section1_examples()["article wording"]
    ids = prompt_ids(article, tok, args.template)
    print(f"minift demo -> {out}")
    print(f"§1 example, as the model sees it ({len(ids)} tokens):\n  "
          + " ".join(tok.id_to_piece(i).replace("\n", "↵") for i in ids))
    settings = dict(preset=args.preset, pretrain_steps=args.pretrain_steps, sft_steps=args.sft_steps,
                    template=args.template, eval_limit=args.eval_limit, progress=not args.no_progress,
                    report=lambda line: print(line, file=sys.stderr))
    if args.seeds > 1:
        seeds = list(range(args.seed, args.seed + args.seeds))
        result = run_demo_over_seeds(out, seeds, command=args.command_line, **settings)
        print_over_seeds(result, out)
        return 0
    summary = run_demo(out, seed=args.seed, **settings)
    print_summary(summary, out)
    return 0


def print_summary(summary: dict, out: Path) -> None:
    results = summary["models"]
    print("\n§1 — the article's example before and after instruction tuning (an input never trained on)")
    for case, ex in summary["section1_example"].items():
        print(f"  [{case}] instruction: {ex['instruction']} | input: {ex['input']} | expected: {ex['expected']}")
        for name in MODELS:
            print(f"      {name:<13} -> {ex['outputs'][name]!r}")
    for split in SPLITS:
        print(f"\nexact match on {split} ({results['base'][split]['n']} questions)")
        print(format_table(results, split))
    print(f"\nloss curves: {out / 'loss_curves.png'}\nresults:     {out / 'results.json'}\nrun folders: "
          + ", ".join(str(out / name) for name in MODELS) + f"\nwall time:   {summary['seconds']['total'] / 60:.1f} min")


def print_over_seeds(result: dict, out: Path) -> None:
    agg = result["aggregate"]
    print(f"\nexact match over seeds {result['seeds']}: mean (min–max)")
    for split in SPLITS:
        print(f"\n{split}")
        for name in MODELS:
            entry = agg["models"][name][split]
            subsets = "; ".join(f"{k} {describe(v)}" for k, v in entry.get("subsets", {}).items())
            print(f"  {name:<13} {describe(entry['overall'])}" + (f"   [{subsets}]" if subsets else ""))
    print("\npaired differences (seed by seed), in points of exact match:")
    for name in COMPARISONS:
        for split in SPLITS:
            print(f"  {name:<22} {split:<20} {describe(agg['comparisons'][name][split]).replace('%', ' pts', 1)}")
    print(f"\nresults: {out / 'results.json'}\nfigure:  {out / 'accuracy.png'}")
