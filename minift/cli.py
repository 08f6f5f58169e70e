"""The ``minift`` command line: one subcommand per stage of the course (``minift.commands``).

Only the module of the command being run is imported: importing them all would load JAX and
the whole library (seconds) before ``minift --help`` could print a line.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from minift.commands import COMMANDS


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``minift.commands.<command>`` (if any) is imported, to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="minift",
        description="Instruction tuning from scratch in JAX (a course implementation).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(f"minift.commands.{name.replace('-', '_')}")  # lazy: see the module docstring
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    args.command_line = "minift " + shlex.join(argv)  # recorded by commands that write results
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, MemoryError) as err:
        # minift's own errors already name the file, line or field: show them without a traceback.
        print(f"minift {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # a training loop says where it saved its last step
        print(f"\nminift {args.command}: {err or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
