"""``minift rlhf``: §4's study — PPO, GRPO, DPO and best-of-n on one gold judge and one KL axis.

Writes ``--out/rlhf_results.json`` (curves, mode collapse, Gao fits, the setting) and
``--out/rlhf.png``. The defaults are the README's run (``make course-models`` first: it starts
from ``runs/course/base``); ``--quick`` is a seconds-long run of every part for tests.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import jax
from tqdm.auto import tqdm

from minift import loop, model
from minift.config import get_config
from minift.course.bundled import course_model, default_tokenizer
from minift.data import COURSE_TEMPLATE
from minift.preferences import load_preferences
from minift.rlhf.study import METHODS, StudyConfig, run_study

HELP = "§4's over-optimisation study: PPO, GRPO, DPO and best-of-n on one gold judge and KL axis"


def _floats(option: str, positive: bool):
    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} {text!r}: give comma-separated numbers, e.g. 0,0.05,0.5")
        bad = [v for v in values if (v <= 0 if positive else v < 0)]
        if not values or bad:
            raise argparse.ArgumentTypeError(
                f"{option} {text!r}: every value must be {'> 0' if positive else '>= 0'} (got {bad or 'none'})")
        return values
    return parse


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bon-n {text!r}: give comma-separated whole numbers, e.g. 1,4,16,64")
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"--bon-n {text!r}: every n must be >= 1 (n = 1 is the SFT policy itself)")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = StudyConfig()
    p.add_argument("--out", type=Path, required=True, help="folder for rlhf_results.json, rlhf.png and the runs")
    p.add_argument("--seeds", type=int, default=3, help="how many seeds (0, 1, ...): every method runs once per seed")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--base", type=Path, default=None,
                   help="the pretrained model to start from (default: runs/course/base of `make course-models`)")
    p.add_argument("--preferences", type=Path, default=None,
                   help="a preference file (minift preferences.jsonl or HH-RLHF) to use instead of the biased "
                        "annotators' pairs")
    p.add_argument("--ppo-betas", type=_floats("--ppo-betas", False), default=d.ppo_betas)
    p.add_argument("--grpo-betas", type=_floats("--grpo-betas", False), default=d.grpo_betas)
    p.add_argument("--dpo-betas", type=_floats("--dpo-betas", True), default=d.dpo_betas)
    p.add_argument("--bon-n", type=_ints, default=d.bon_n)
    p.add_argument("--quick", action="store_true", help="seconds, not minutes: every part, numbers without meaning")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}.")
    tok = default_tokenizer()
    study = StudyConfig.quick() if args.quick else StudyConfig()
    defaults = StudyConfig()
    overrides = {k: getattr(args, k) for k in ("ppo_betas", "grpo_betas", "dpo_betas", "bon_n")
                 if getattr(args, k) != getattr(defaults, k)}
    study = replace(study, **overrides)
    base = args.base or course_model("base")
    if base is not None:
        params, config = loop.load_model(base)
    elif args.quick:  # a tiny random model: the pipeline runs, the numbers mean nothing
        config = get_config("course", vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1,
                            d_ff=64, max_seq_len=128)
        params = model.init_params(config, jax.random.PRNGKey(0))
    else:
        raise ValueError("--base: no pretrained model found at runs/course/base; run `make course-models` "
                         "(about 5 minutes) or pass --base RUN.")
    pairs = load_preferences(args.preferences, template=COURSE_TEMPLATE) if args.preferences else None
    results = run_study(params, config, tok, args.out, list(range(args.seeds)), study, methods=args.methods,
                        pairs=pairs,
                        progress=None if args.no_progress else (lambda n: tqdm(total=n, desc="rlhf", unit="run")))
    print(f"\nsetting: {results['setting']}")
    for method, fit in results["fits"].items():
        print(f"Gao et al. fit, {method} ({fit['form']}): alpha {fit['alpha']:+.3f}, beta {fit['beta']:+.3f}, "
              f"r2 {fit['r2']:.2f}")
    print(f"results: {Path(args.out) / 'rlhf_results.json'}\nfigure:  {Path(args.out) / 'rlhf.png'}  "
          f"({results['seconds']:.0f} s)")
    return 0
