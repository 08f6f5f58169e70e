"""``minift chat``: a tiny REPL with an instruction-tuned model; 'instruction || input' adds an input.

With a chat template (a model tuned by ``minift sft --init``, or ``--chat-template``) the whole
conversation so far is the prompt; with the course's instruction template each turn stands alone.
"""

from __future__ import annotations

import argparse

from minift.commands.common import add_sampling_arguments, chat_template_of, instruction_ids, reply
from minift.runs import load_any


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sampling_arguments(p)


def run(args: argparse.Namespace) -> int:
    model = load_any(args.model)
    template = chat_template_of(model, args)
    print(f"minift chat with {args.model} ({template or args.template or 'its instruction'} template). Type an "
          "instruction; 'instruction || input' adds an input; an empty line or Ctrl-D quits.")
    history: list[dict[str, str]] = []
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            break
        if not line:
            break
        history = (history if template else []) + [{"role": "user", "content": line}]
        answer = reply(model, instruction_ids(model, args, history), args)
        history.append({"role": "assistant", "content": answer})
        print(answer)
    return 0
