"""``minift pretrain``: the base model of §1, next-token loss on the raw corpus only."""

from __future__ import annotations

import argparse

from minift.commands.common import add_train_arguments, train_config
from minift.config import PRESETS, get_config
from minift.course.bundled import default_tokenizer
from minift.runs import PRETRAIN_DEFAULTS, RUNS_DIR, pretrain


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_train_arguments(p, PRETRAIN_DEFAULTS)
    p.add_argument("--preset", default="course", choices=sorted(PRESETS))
    p.add_argument("--seq-len", type=int, default=128)


def run(args: argparse.Namespace) -> int:
    tok = default_tokenizer()
    config = get_config(args.preset, vocab_size=tok.vocab_size)
    out = args.out or RUNS_DIR / "base"
    result = pretrain(out, config, train_config(args, PRETRAIN_DEFAULTS), tok, seq_len=args.seq_len,
                      resume=args.resume, progress=not args.no_progress)
    print(f"base model: {out} (step {result.step}, loss {result.history[-1]['loss']:.3f})" if result.history
          else f"base model: {out} (already at step {result.step})")
    return 0
