"""``minift grade``: score the student's functions with minift's own equation tests (exercise mode)."""

from __future__ import annotations

import argparse
from pathlib import Path

from minift.exercises import DEFAULT_FOLDER, grade


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=DEFAULT_FOLDER, help="the student files (`minift exercises`)")
    p.add_argument("--library", action="store_true", help="grade minift's own functions (they must score 100%%)")
    p.add_argument("--only", nargs="+", default=(), metavar="NAME", help="grade these exercises only")


def run(args: argparse.Namespace) -> int:
    if not args.library and not args.dir.is_dir():
        raise FileNotFoundError(f"{args.dir}: no exercise folder; create it with `minift exercises --out {args.dir}`")
    scores = grade(None if args.library else args.dir, tuple(args.only))
    print(f"{'§':>4}  {'function':<28} {'checks':>7}  score")
    for s in scores:
        print(f"{s.exercise.section:>4}  {s.exercise.name:<28} {s.passed:>3}/{s.total:<3}  {100 * s.fraction:4.0f}%")
        if s.first_failure:
            print(f"      first failing check: {s.first_failure}")
    total = sum(s.fraction for s in scores) / len(scores)
    print(f"\noverall: {100 * total:.0f}% ({sum(s.passed == s.total for s in scores)} of {len(scores)} functions complete)")
    return 0
