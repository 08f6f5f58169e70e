"""Issue 13's GPU check: instruction-tune a 1.1B-parameter Llama-layout model (TinyLlama's shapes,
random weights) on the Alpaca-GPT4 sample, every weight and then LoRA, through ``minift.runs.tune``
-- the code ``minift sft --init`` runs -- and print tokens/s, memory and MFU.

    python scripts/gpu_tune.py --data ../shared/data/alpaca-gpt4-sample/alpaca_en_demo.json [--steps 20]

Random weights, because no checkpoint can be downloaded where this runs; the speed and memory of a
step do not depend on the weights' values. The tokenizer is the course's (2,000 pieces inside the
model's 32,000-row embedding), so a text is more tokens than with Llama's own, which again changes
nothing per token. Steady-state tokens/s leave out the first two steps (compilation).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from minift import hf_llama
from minift.bench import peak_tflops, train_flops_per_token
from minift.config import get_config
from minift.course.bundled import default_tokenizer
from minift.loop import TrainConfig
from minift.model import init_params
from minift.runs import tune


def make_checkpoint(folder: Path, preset: str) -> None:
    """A preset's shapes (TinyLlama-1.1B's by default) with random weights, as a Hugging Face folder."""
    config = get_config(preset)
    params = init_params(config, jax.random.PRNGKey(0), dtype=jnp.bfloat16)
    tok = default_tokenizer()
    hf_llama.save_hf_llama(params, config, folder, bos_id=tok.bos_id, eos_id=tok.eos_id, pad_id=tok.pad_id)
    shutil.copyfile(tok.path, folder / "tokenizer.model")


def steady_tokens_per_s(history: list[dict], tokens_per_step: int, skip: int = 2) -> float:
    """From the loop's cumulative tokens/s: tokens over the time of the steps after the first ``skip``."""
    t = [r["step"] * tokens_per_step / r["tokens_per_s"] for r in history]  # elapsed time at each step
    return (len(t) - skip) * tokens_per_step / (t[-1] - t[skip - 1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--work", type=Path, default=Path("/tmp/minift_gpu"))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-len", type=int, default=513)
    p.add_argument("--preset", default="tinyllama-1.1b", help="'course' for a quick check on a CPU")
    args = p.parse_args()
    init = args.work / "tinyllama-random"
    t0 = time.perf_counter()
    make_checkpoint(init, args.preset)
    print(f"checkpoint written in {time.perf_counter() - t0:.0f} s", flush=True)
    device = jax.devices()[0]
    peak = peak_tflops(device.device_kind)
    rows = []
    # LoRA first: the device's peak memory is a running maximum, so the smaller run must come first.
    for name, dtype, lora_rank in (("LoRA r=16, bf16 base", jnp.bfloat16, 16),
                                   ("full, f32 master + bf16 compute", jnp.float32, 0)):
        train = TrainConfig(steps=args.steps, batch_size=args.batch, learning_rate=2e-5 if not lora_rank else 2e-4,
                            warmup_steps=2, eval_every=0, checkpoint_every=0, lora_rank=lora_rank, lora_alpha=32.0)
        t0 = time.perf_counter()
        result = tune(args.work / f"run_{lora_rank}", init, train, data=args.data, chat_template="llama2",
                      max_len=args.max_len, dtype=dtype, buckets=(args.max_len - 1,), progress=False,
                      overrides={"compute_dtype": "bfloat16", "attention": "fast"},
                      report=lambda line: print("  " + line, flush=True))
        wall = time.perf_counter() - t0
        config = get_config(args.preset)
        tokens = args.batch * (args.max_len - 1)
        tps = steady_tokens_per_s(result.history, tokens)
        mfu = tps * train_flops_per_token(config, args.max_len - 1) / (peak * 1e12) if peak else float("nan")
        stats = device.memory_stats() or {}
        rows.append({"run": name, "tokens_per_s": round(tps), "step_ms": round(1000 * tokens / tps, 1),
                     "mfu": round(mfu, 3), "peak_gib": round(stats.get("peak_bytes_in_use", 0) / 2**30, 1),
                     "loss_first": round(result.history[0]["loss"], 3), "loss_last": round(result.history[-1]["loss"], 3),
                     "wall_s": round(wall)})
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(args.work / f"run_{lora_rank}", ignore_errors=True)
    print(f"\n{device.device_kind}, jax {jax.__version__}; {args.preset} shapes, batch {args.batch} x "
          f"{args.max_len - 1} tokens, {args.steps} steps; MFU = 6N + attention FLOPs / {peak} TFLOP/s")
    for r in rows:
        print(f"{r['run']:34s} {r['tokens_per_s']:>8,} tok/s  {r['step_ms']:>7} ms/step  MFU {r['mfu']:.1%}  "
              f"peak {r['peak_gib']} GiB  loss {r['loss_first']} -> {r['loss_last']}", file=sys.stdout)


if __name__ == "__main__":
    main()
