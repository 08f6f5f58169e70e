"""``minift grade``: score the student's functions with minift's own equation tests (exercise mode)."""

from __future__ import annotations

import argparse
from pathlib import Path

from minift.exercises import DEFAULT_FOLDER
from minift.grading import grade


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=DEFAULT_FOLDER, help="the student files (`minift exercises`)")
    p.add_argument("--library", action="store_true", help="grade minift's own functions (they must score 100%%)")
    p.add_argument("--only", nargs="+", default=(), metavar="NAME", help="grade these exercises only")


def run(args: argparse.Namespace) -> int:
    if not args.library and not args.dir.is_dir():
        raise FileNotFoundError(f"{args.dir}: no exercise folder; create it with `minift exercises --out {args.dir}` "
                                f"/ chưa có thư mục bài tập; hãy tạo bằng `minift exercises --out {args.dir}`")
    scores = grade(None if args.library else args.dir, tuple(args.only))
    print(f"{'§':>4}  {'hàm / function':<28} {'kiểm tra / checks':>17}  điểm / score")
    for s in scores:
        print(f"{s.exercise.section:>4}  {s.exercise.name:<28} {s.passed:>13}/{s.total:<3}  {100 * s.fraction:4.0f}%")
        if s.refused:
            print(f"      refused / bị từ chối: {s.refused}")
        if s.first_failure:
            print(f"      first failing check / kiểm tra đầu tiên không đạt: {s.first_failure}")
    done = sum(s.complete for s in scores)
    print(f"\n{done} of {len(scores)} functions complete ({100 * done / len(scores):.0f}%); a function scores 100% "
          "only when every one of its checks passes.")
    print(f"{done} trên {len(scores)} hàm hoàn thành ({100 * done / len(scores):.0f}%); một hàm chỉ được 100% khi "
          "mọi phép kiểm tra của nó đều đạt.")
    return 0
