"""``minift generate``: one answer from a trained model (templated instruction, or raw text)."""

from __future__ import annotations

import argparse

from minift import data as D
from minift.commands.common import add_sampling_arguments, reply
from minift.course.bundled import default_tokenizer
from minift.loop import load_model, run_template


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sampling_arguments(p)
    p.add_argument("--instruction", help="an instruction (the template is applied)")
    p.add_argument("--input", default="", help="its optional input")
    p.add_argument("--prompt", help="raw text to continue (no template), e.g. for a base model")


def run(args: argparse.Namespace) -> int:
    if (args.instruction is None) == (args.prompt is None):
        raise ValueError("give exactly one of --instruction (templated) or --prompt (raw text)")
    tok = default_tokenizer()
    params, config = load_model(args.model)
    if args.prompt is not None:
        ids = tok.encode(args.prompt, bos=True)
    else:
        template = args.template or run_template(args.model, D.COURSE_TEMPLATE)
        ids = tok.encode(D.format_prompt(D.Example(args.instruction, args.input, ""), template), bos=True)
    print(reply(params, config, tok, ids, args))
    return 0
