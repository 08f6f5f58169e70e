"""``minift tokenizer``: retrain the course tokenizer, or show how a text is cut into pieces."""

from __future__ import annotations

import argparse
from pathlib import Path

from minift.course.bundled import TOKENIZER_FILE, build_default_tokenizer, default_tokenizer
from minift.tokenizer import DEFAULT_VOCAB_SIZE, Tokenizer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", action="store_true",
                        help=f"retrain the course tokenizer (data/samples/{TOKENIZER_FILE}) from the course data")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="with --train")
    parser.add_argument("--model", type=Path, default=None, help="a .model file (default: the course one)")
    parser.add_argument("--encode", metavar="TEXT", help="print the pieces and ids of TEXT")


def run(args: argparse.Namespace) -> int:
    if args.train:
        tok = build_default_tokenizer(vocab_size=args.vocab_size)
        print(f"wrote {tok.path} ({tok.vocab_size} pieces)")
    tok = Tokenizer.load(args.model) if args.model else default_tokenizer()
    if args.encode is not None:
        ids = tok.encode(args.encode)
        print(f"{len(ids)} tokens")
        for i in ids:
            print(f"{i:6d}  {tok.id_to_piece(i)!r}")
        print(f"decoded: {tok.decode(ids)!r}")
    elif not args.train:
        print(tok)
    return 0
