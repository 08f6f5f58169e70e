"""``minift exercises``: write the student files of exercise mode (one per module, stubs to fill in)."""

from __future__ import annotations

import argparse
from pathlib import Path

from minift.exercises import DEFAULT_FOLDER, EXERCISES, student_file, write_stubs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=DEFAULT_FOLDER, help="folder for the student files")
    p.add_argument("--force", action="store_true", help="overwrite existing files (your work is lost)")
    p.add_argument("--solutions", action="store_true",
                   help="write the answer key (minift's own bodies) instead of stubs: for the teacher, not the students")


def run(args: argparse.Namespace) -> int:
    written = write_stubs(args.out, force=args.force, solutions=args.solutions)
    for ex in EXERCISES:
        path = student_file(args.out, ex.module)
        state = "new" if path in written else "kept"
        print(f"{ex.section:>4}  notebook {ex.notebook}  {ex.name:<28} {path} ({state}, ~{ex.minutes} min)")
    if args.solutions:
        print(f"\nThe answer key: `minift grade --dir {args.out}` scores it 100%. Keep it away from the students' folder.")
        return 0
    print(f"\nFill in the bodies, then `minift grade --dir {args.out}`; run a notebook on your own functions with "
          f"MINIFT_EXERCISES={args.out} (docs/exercises.md).")
    return 0
