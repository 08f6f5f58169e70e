"""``minift chat``: a tiny REPL with an instruction-tuned model; 'instruction || input' adds an input."""

from __future__ import annotations

import argparse

from minift import data as D
from minift.commands.common import add_sampling_arguments, reply
from minift.course.bundled import default_tokenizer
from minift.loop import load_model, run_template


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sampling_arguments(p)


def run(args: argparse.Namespace) -> int:
    tok = default_tokenizer()
    params, config = load_model(args.model)
    template = args.template or run_template(args.model, D.COURSE_TEMPLATE)
    print(f"minift chat with {args.model} ({template} template). Type an instruction; "
          "'instruction || input' adds an input; an empty line or Ctrl-D quits.")
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            break
        if not line:
            break
        instruction, _, inp = (part.strip() for part in line.partition("||"))
        ids = tok.encode(D.format_prompt(D.Example(instruction, inp, ""), template), bos=True)
        print(reply(params, config, tok, ids, args))
    return 0
