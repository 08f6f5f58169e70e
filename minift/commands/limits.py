"""``minift limits``: the article's remaining claims, measured over seeds (``minift.limits``).

§5 hallucination (calibration, and "I don't know" as a mitigation), §5 bias amplification, §5 the
cost of gold data (quantity and diversity curves), §1 zero-shot on held-out task families, and §2
one model per task against one for many. Writes ``results.json`` and one figure per study to
``--out``; prints the aggregate and the time each part took. The defaults are the README's run:
14–15 minutes per seed on a 2-core CPU when ``--base`` and ``--tuned`` name the demo's runs, about
7 more per seed to train them here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minift.limits.report import format_report
from minift.limits.run import STUDIES, LimitsSettings, run_limits


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = LimitsSettings()
    p.add_argument("--out", type=Path, required=True, help="folder for results.json, the figures and the runs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one full set of studies per seed")
    p.add_argument("--studies", nargs="+", default=list(STUDIES), choices=STUDIES)
    p.add_argument("--base", default=None,
                   help="the base model of each seed, a pattern with {seed} (e.g. runs/demo/seed_{seed}/base); "
                        "default: pretrain one per seed under --out")
    p.add_argument("--tuned", default=None,
                   help="the instruction-tuned model of each seed, a pattern with {seed} (e.g. "
                        "runs/demo/seed_{seed}/sft_masked); default: tune one per seed under --out")
    p.add_argument("--preset", default=d.preset, help="model size when a base model is pretrained here")
    p.add_argument("--pretrain-steps", type=int, default=d.pretrain_steps)
    p.add_argument("--sft-steps", type=int, default=d.sft_steps, help="the tuned model and its 'I don't know' twin")
    p.add_argument("--bias-steps", type=int, default=d.bias_steps)
    p.add_argument("--single-task-steps", type=int, default=d.single_task_steps)
    p.add_argument("--study-steps", type=int, default=d.study_steps, help="every data-cost run")
    p.add_argument("--zero-shot-steps", type=int, default=d.zero_shot_steps, help="every zero-shot run")
    p.add_argument("--sizes", type=int, nargs="+", default=list(d.sizes), help="SFT example counts (0 = all)")
    p.add_argument("--wordings", type=int, nargs="+", default=list(d.wording_counts),
                   help="wordings per task and language, at --budget examples")
    p.add_argument("--budget", type=int, default=d.budget)
    p.add_argument("--families", type=int, nargs="+", default=list(d.family_counts), help="trained task family counts")
    p.add_argument("--limit", type=int, default=0, help="at most this many answerable questions per evaluation (0 = all)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    settings = LimitsSettings(preset=args.preset, pretrain_steps=args.pretrain_steps, sft_steps=args.sft_steps,
                              bias_steps=args.bias_steps, single_task_steps=args.single_task_steps,
                              study_steps=args.study_steps, zero_shot_steps=args.zero_shot_steps, sizes=tuple(args.sizes),
                              wording_counts=tuple(args.wordings), budget=args.budget,
                              family_counts=tuple(args.families), limit=args.limit)
    summary = run_limits(args.out, args.seeds, studies=args.studies, base=args.base, tuned=args.tuned,
                         settings=settings, command=args.command_line, progress=not args.no_progress,
                         report=lambda line: print(line, file=sys.stderr))
    print(format_report(summary["aggregate"]))
    print("\nseconds per part: " + "; ".join(
        f"seed {seed}: " + ", ".join(f"{part} {s:.0f}" for part, s in parts.items())
        for seed, parts in summary["seconds"].items()))
    print(f"results: {args.out / 'results.json'}; figures: {', '.join(summary['figures'])}")
    return 0
