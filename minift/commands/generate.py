"""``minift generate``: one answer from a trained model (templated instruction, or raw text)."""

from __future__ import annotations

import argparse

from minift.commands.common import add_sampling_arguments, instruction_ids, reply
from minift.runs import load_any


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sampling_arguments(p)
    p.add_argument("--instruction", help="an instruction (the template is applied)")
    p.add_argument("--input", default="", help="its optional input")
    p.add_argument("--prompt", help="raw text to continue (no template), e.g. for a base model")


def run(args: argparse.Namespace) -> int:
    if (args.instruction is None) == (args.prompt is None):
        raise ValueError("give exactly one of --instruction (templated) or --prompt (raw text)")
    model = load_any(args.model)
    if args.prompt is not None:
        ids = model.tokenizer.encode(args.prompt, bos=True)
    else:
        content = f"{args.instruction} || {args.input}" if args.input else args.instruction
        ids = instruction_ids(model, args, [{"role": "user", "content": content}])
    print(reply(model, ids, args))
    return 0
