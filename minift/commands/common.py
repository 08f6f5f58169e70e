"""Arguments several commands share: the training settings and the sampling settings."""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

from minift.generate import Sampling, generate
from minift.loop import TrainConfig
from minift.runs import RUNS_DIR


def add_train_arguments(p: argparse.ArgumentParser, defaults: dict) -> None:
    """--out, --steps, --batch-size, --lr, --warmup, --seed, --resume, --no-progress."""
    p.add_argument("--out", type=Path, help="run folder (default runs/<command>)")
    p.add_argument("--steps", type=int, default=defaults["steps"])
    p.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    p.add_argument("--lr", type=float, default=defaults["learning_rate"], help="peak learning rate")
    p.add_argument("--warmup", type=int, default=defaults["warmup_steps"], help="warm-up steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def train_config(args: argparse.Namespace, defaults: dict, **override) -> TrainConfig:
    """The TrainConfig of ``defaults`` with the command line's values (and ``override``) on top."""
    return TrainConfig(**{**defaults, "steps": args.steps, "batch_size": args.batch_size,
                          "learning_rate": args.lr, "warmup_steps": args.warmup, "seed": args.seed, **override})


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """--model, --max-new-tokens, --temperature, --top-k, --top-p, --seed, --template."""
    p.add_argument("--model", type=Path, default=RUNS_DIR / "sft", help="run folder or checkpoint file")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--template", help="prompt template (default: the one the run was tuned with)")


def reply(params, config, tok, prompt_ids: list[int], args: argparse.Namespace) -> str:
    """The model's answer to one prompt, with the command line's sampling settings."""
    sampling = Sampling(args.temperature, args.top_k, args.top_p)
    out = generate(params, config, [prompt_ids], max_new_tokens=args.max_new_tokens, eos_id=tok.eos_id,
                   pad_id=tok.pad_id, sampling=sampling, key=jax.random.PRNGKey(args.seed))
    return tok.decode(out[0])
