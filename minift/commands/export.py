"""``minift export``: a trained model (course run, tuned run, LoRA merged) as a Hugging Face Llama folder."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import jax.numpy as jnp

from minift.hf_llama import save_hf_llama
from minift.loop import run_info
from minift.runs import RUNS_DIR, load_any

# The tokenizer's own files, copied as they are from the folder the model was loaded from.
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=RUNS_DIR / "sft", help="run folder, checkpoint, or HF folder")
    p.add_argument("--out", type=Path, required=True, help="folder to write config.json + model.safetensors to")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), help="stored dtype (default: the model's)")


def run(args: argparse.Namespace) -> int:
    model = load_any(args.model)
    tok = model.tokenizer
    folder = save_hf_llama(model.params, model.config, args.out, dtype=jnp.dtype(args.dtype) if args.dtype else None,
                           bos_id=tok.bos_id, eos_id=tok.stop_ids if len(tok.stop_ids) > 1 else tok.eos_id,
                           pad_id=tok.pad_id)
    source = Path(run_info(args.model).get("info", {}).get("init") or args.model)
    copied = [name for name in TOKENIZER_FILES if (source / name).is_file()]
    for name in copied:
        shutil.copyfile(source / name, folder / name)
    if not copied and tok.path is not None:  # a course model: its SentencePiece file
        shutil.copyfile(tok.path, folder / "tokenizer.model")
        copied = ["tokenizer.model"]
    print(f"wrote {folder}: config.json, model.safetensors, {', '.join(copied)}")
    if model.chat_template:
        print(f"it was tuned with the {model.chat_template!r} chat template: prompt it the same way")
    return 0
