"""Arguments several commands share: the training settings and the sampling settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax

from minift import data as D
from minift.chat import CHAT_TEMPLATES, chat_prompt_ids, turn_end_ids
from minift.generate import Sampling, generate
from minift.loop import TrainConfig, run_template
from minift.runs import RUNS_DIR, Loaded
from minift.sharding import STRATEGIES, initialize_distributed


def add_train_arguments(p: argparse.ArgumentParser, defaults: dict) -> None:
    """--out, --steps, --batch-size, --lr, --warmup, --seed, --resume, --no-progress, --sharding, --distributed."""
    p.add_argument("--out", type=Path, help="run folder (default runs/<command>)")
    p.add_argument("--steps", type=int, default=defaults["steps"])
    p.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    p.add_argument("--lr", type=float, default=defaults["learning_rate"], help="peak learning rate")
    p.add_argument("--warmup", type=int, default=defaults["warmup_steps"], help="warm-up steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--sharding", default="none", choices=STRATEGIES,
                   help="spread each step over every device: dp = split the batch, fsdp = also split the weights "
                        "and optimizer state (docs/distributed.md)")
    p.add_argument("--distributed", action="store_true",
                   help="one process per host: join them first (jax.distributed.initialize; docs/distributed.md)")


def train_config(args: argparse.Namespace, defaults: dict, **override) -> TrainConfig:
    """The TrainConfig of ``defaults`` with the command line's values (and ``override``) on top.

    With ``--distributed`` the hosts are joined here: the commands call this before any JAX array
    exists, which ``jax.distributed.initialize`` requires.
    """
    if args.distributed:
        index, count = initialize_distributed()
        print(f"distributed: process {index} of {count}, {jax.device_count()} devices in all", file=sys.stderr)
    return TrainConfig(**{**defaults, "steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.lr,
                          "warmup_steps": args.warmup, "seed": args.seed, "sharding": args.sharding, **override})


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """--model, --max-new-tokens, --temperature, --top-k, --top-p, --seed, --template."""
    p.add_argument("--model", type=Path, default=RUNS_DIR / "sft",
                   help="run folder, checkpoint file, Hugging Face Llama folder or GGUF file")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--template", help="prompt template (default: the one the run was tuned with)")
    p.add_argument("--chat-template", choices=CHAT_TEMPLATES,
                   help="chat template (default: the one `sft --init` tuned with; else --template)")


def chat_template_of(model: Loaded, args: argparse.Namespace) -> str | None:
    """The chat template to prompt ``model`` with: the command line's, else the one it was tuned with
    (or the one its own Jinja template renders as)."""
    if not (args.chat_template or model.chat_template) and model.chat_jinja:
        print(f"{args.model}: its chat template is not one of minift's ({', '.join(CHAT_TEMPLATES)}); "
              "prompting with the course's instruction template. Pass --chat-template to choose one.",
              file=sys.stderr)
    return args.chat_template or model.chat_template


def instruction_ids(model: Loaded, args: argparse.Namespace, history: list[dict[str, str]]) -> list[int]:
    """Prompt ids for a conversation ending with a user turn ("instruction || input"): the chat
    template's (instruction and input joined by a blank line, as ``chat.example_messages`` does), or
    the course's instruction template (``--template``) for the last user turn."""
    template = chat_template_of(model, args)
    if template:
        joined = [{**m, "content": "\n\n".join(p.strip() for p in m["content"].split("||"))} for m in history]
        return chat_prompt_ids(joined, model.tokenizer, template)
    instruction, _, inp = (part.strip() for part in history[-1]["content"].partition("||"))
    prompt_template = args.template or run_template(args.model, D.COURSE_TEMPLATE)
    return model.tokenizer.encode(D.format_prompt(D.Example(instruction, inp, ""), prompt_template), bos=True)


def reply(model: Loaded, prompt_ids: list[int], args: argparse.Namespace) -> str:
    """The model's answer to one prompt, with the command line's sampling settings; it stops at the
    chat template's end of turn (e.g. Llama-3's <|eot_id|>) or at EOS."""
    tok, template = model.tokenizer, chat_template_of(model, args)
    stops = tuple(turn_end_ids(tok, template)) if template else tok.eos_id
    sampling = Sampling(args.temperature, args.top_k, args.top_p)
    out = generate(model.params, model.config, [prompt_ids], max_new_tokens=args.max_new_tokens, eos_id=stops,
                   pad_id=tok.pad_id, sampling=sampling, key=jax.random.PRNGKey(args.seed))
    return tok.decode(out[0])
