"""``minift limits``: the limits of §5, measured. For now the first study: hallucination and
overconfidence — each model's confidence and accuracy on answerable questions and on questions whose
answer the data never contains, the expected calibration error, a reliability diagram.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minift import data as D
from minift.calibration import plot_reliability, score_answers, summarise_confidence
from minift.course.bundled import OOD_FILE, SAMPLES_DIR, course_examples, default_tokenizer, read_records
from minift.files import write_json
from minift.loop import load_model, run_template


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", type=Path, help="run folders (or checkpoint files) to study")
    p.add_argument("--out", type=Path, required=True, help="folder for results.json and reliability.png")
    p.add_argument("--split", default="independent_wording", help="the answerable questions (a course split)")
    p.add_argument("--limit", type=int, default=0, help="at most this many answerable questions (0 = all)")


def run(args: argparse.Namespace) -> int:
    tok = default_tokenizer()
    args.out.mkdir(parents=True, exist_ok=True)
    answerable = course_examples(args.split)[: args.limit or None]
    unanswerable = [D.Example(r["instruction"], r["input"], "", "ood") for r in read_records(SAMPLES_DIR / OOD_FILE)]
    results: dict = {}
    for model_path in args.models:
        params, config = load_model(model_path)
        template = run_template(model_path, D.COURSE_TEMPLATE)
        groups = {f"answerable ({args.split})": score_answers(params, config, tok, answerable, answerable=True,
                                                              template=template),
                  "never in the data (ood)": score_answers(params, config, tok, unanswerable, answerable=False,
                                                            template=template)}
        summaries = {name: summarise_confidence(rows) for name, rows in groups.items()}
        results[str(model_path)] = {"summary": summaries, "answers": groups}
        plot_reliability(summaries, args.out / f"reliability_{len(results)}.png")
        print(f"\n{model_path}")
        for name, s in summaries.items():
            print(f"  {name:<36} right {100 * s['accuracy']:5.1f}%  declined {100 * s['abstention']:5.1f}%  "
                  f"mean P(answer) {s['mean_confidence']:.2f}  ECE {s['ece']:.2f}  (n = {s['n']})")
    write_json(args.out / "results.json", results)
    print(f"\nresults: {args.out / 'results.json'}")
    return 0
