"""``minift data``: regenerate the bundled course data in data/samples/ (deterministic)."""

from __future__ import annotations

import argparse
from pathlib import Path

from minift.course.bundled import SAMPLES_DIR, generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR,
                        help=f"folder to write the course data into (default: {SAMPLES_DIR})")


def run(args: argparse.Namespace) -> int:
    for path in generate(args.out).values():
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0
