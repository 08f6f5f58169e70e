"""``minift eval``: greedy exact match per task on the held-out splits, one column per model."""

from __future__ import annotations

import argparse
from pathlib import Path

from minift import data as D
from minift.course.bundled import course_examples, default_tokenizer
from minift.demo import SPLITS
from minift.evaluate import evaluate, format_table, novelty_subsets
from minift.files import write_json
from minift.loop import load_model, run_template


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", type=Path, help="run folders (or checkpoint files) to compare")
    p.add_argument("--splits", nargs="+", default=list(SPLITS),
                   help="course splits to evaluate (default: all held-out ones)")
    p.add_argument("--template", help="prompt template (default: each run's own)")
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--json", type=Path, help="also write the accuracy tables here")


def run(args: argparse.Namespace) -> int:
    tok = default_tokenizer()
    splits = {split: course_examples(split) for split in args.splits}
    train = course_examples("train")  # to report seen / unseen inputs and new wordings apart
    subsets = {split: novelty_subsets(examples, train) for split, examples in splits.items() if split not in ("heldout_task", "heldout_cluster")}
    results: dict[str, dict] = {}
    for model_path in args.models:
        params, config = load_model(model_path)
        template = args.template or run_template(model_path, D.COURSE_TEMPLATE)
        results[model_path.name] = {
            split: evaluate(params, config, tok, examples, subsets=subsets.get(split), template=template,
                            max_new_tokens=args.max_new_tokens)[0]
            for split, examples in splits.items()
        }
    for split in args.splits:
        print(f"\nexact match, {split}\n{format_table(results, split)}")
    if args.json:
        write_json(args.json, results)
    return 0
