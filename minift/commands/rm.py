"""``minift rm``: train the reward model of §4 on preference pairs (Bradley–Terry), from an SFT run."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from minift import checkpoint as ckpt
from minift.course.bundled import PREFERENCES_FILE, SAMPLES_DIR, default_tokenizer
from minift.files import append_jsonl, write_atomic, write_json
from minift.loop import load_model, run_template
from minift.preferences import load_preferences, split_pairs
from minift.rlhf.reward_model import (
    REWARD_MODEL_KIND,
    RMConfig,
    encode_pairs,
    evaluate_reward_model,
    init_reward_model,
    save_reward_model,
    train_reward_model,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sft", required=True, type=Path, help="SFT run folder (or .safetensors) to start from")
    parser.add_argument("--out", required=True, type=Path, help="run folder to write the reward model into")
    parser.add_argument("--data", type=Path, default=SAMPLES_DIR / PREFERENCES_FILE,
                        help="preference pairs: minift JSONL or HH-RLHF chosen/rejected (.jsonl[.gz])")
    parser.add_argument("--template", default=None, help="prompt template (default: the SFT run's)")
    defaults = RMConfig()
    for name in ("steps", "batch_size", "learning_rate", "max_len", "eval_every", "seed"):
        value = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value,
                            help=f"RMConfig.{name} (default {value})")


def run(args: argparse.Namespace) -> int:
    params, config = load_model(args.sft)
    tokenizer = default_tokenizer()
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"{args.sft}: the model's vocabulary ({config.vocab_size}) is not the course "
                         f"tokenizer's ({tokenizer.vocab_size}).")
    template = args.template or run_template(args.sft)
    rm = RMConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                  warmup_steps=min(10, args.steps - 1), max_len=args.max_len, eval_every=args.eval_every,
                  seed=args.seed)
    train_list, heldout_list = split_pairs(load_preferences(args.data, template))
    train_pairs, dropped = encode_pairs(train_list, tokenizer, rm.max_len)
    eval_pairs, _ = encode_pairs(heldout_list, tokenizer, rm.max_len)
    print(f"{len(train_list)} training pairs ({dropped} too long), {len(heldout_list)} held out; template {template!r}")
    rm_params = init_reward_model(params, config)
    before = evaluate_reward_model(rm_params, eval_pairs, config)
    out = Path(args.out)
    metrics = write_atomic(out / "metrics.jsonl", b"")
    t0 = time.perf_counter()

    def log(record: dict) -> None:
        append_jsonl(metrics, record)
        if "eval_accuracy" in record:
            print(f"step {record['step']}: loss {record['loss']:.3f}, held-out accuracy {record['eval_accuracy']:.3f}")

    rm_params, _ = train_reward_model(rm_params, config, train_pairs, rm, eval_pairs=eval_pairs, log=log)
    after = evaluate_reward_model(rm_params, eval_pairs, config)
    summary = {"heldout_accuracy_before": before["accuracy"], "heldout_accuracy": after["accuracy"],
               "heldout_loss": after["loss"], "seconds": time.perf_counter() - t0}
    meta = {"sft": str(args.sft), "data": str(args.data), "template": template, "rm": asdict(rm), **summary}
    path = save_reward_model(ckpt.checkpoint_path(out, rm.steps), rm_params, config, step=rm.steps, metadata=meta)
    write_json(out / "run.json", {"model": config.to_dict(), "kind": REWARD_MODEL_KIND, **meta})
    print(f"held-out pairwise accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f}; saved {path}")
    return 0
