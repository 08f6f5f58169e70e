"""The ``minift`` command line: one subcommand per stage of the course.

Each subcommand lives in the module that owns its concept and is registered here by name, so
that ``minift --help`` stays fast (modules are imported only when their command runs).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). The module defines ``add_<name>_arguments(parser)`` and
# ``run_<name>(args)`` — or plain ``add_arguments``/``run`` when it hosts a single command.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("minift.coursedata", "regenerate the bundled course data in data/samples/"),
    "tokenizer": ("minift.tokenizer", "train or inspect the SentencePiece tokenizer"),
    "pretrain": ("minift.runs", "pretrain a base model on the raw corpus (§1)"),
    "sft": ("minift.runs", "instruction-tune a base model with the masked loss (§2, §3.2)"),
    "generate": ("minift.runs", "generate text from a trained model"),
    "chat": ("minift.runs", "a small terminal chat with an instruction-tuned model"),
    "eval": ("minift.runs", "exact-match accuracy per task on the held-out splits"),
    "rm": ("minift.rlhf.reward", "train the reward model on preference pairs (§4)"),
    "ppo": ("minift.rlhf.ppo", "PPO with a KL penalty against the SFT model (§4)"),
    "demo": ("minift.demo", "the end-to-end demo (what `make demo` runs)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the module of ``command`` (if any) is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="minift",
        description="Instruction tuning from scratch in JAX (a course implementation).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            add = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
            add(p)
            p.set_defaults(_run=getattr(module, f"run_{name}", None) or module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        # minift's own errors already name the file, line or field: show them without a traceback.
        print(f"minift {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
