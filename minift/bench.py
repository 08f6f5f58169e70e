"""Benchmarks: ``python -m minift.bench [--preset course] [--batch 32] [--seq 128] ...``.

Measures the jit-compiled train step (forward, masked loss, gradient, AdamW, apply) in tokens
per second and achieved FLOP/s, for the readable attention (the *baseline*, measured in the same
run) and the fused ``jax.nn.dot_product_attention`` path, and prints their ratio. With
``--peak-tflops`` (the chip's dense peak for the dtype used) it also prints the model FLOP
utilisation (MFU), the distance to the hardware limit.

FLOPs per token follow the usual count (Kaplan et al. 2020; PaLM appendix B): 6 per parameter
for forward + backward, plus 12·L·T·D for the attention scores and weighted sums.
Tests never assert times; this module is where speed is measured.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from minift import optim
from minift.config import PRESETS, get_config
from minift.data import Batch
from minift.model import init_params
from minift.train import make_train_step


def train_flops_per_token(config, seq_len: int) -> float:
    """Forward + backward FLOPs per token: 6N + 12·L·T·D (causal halving ignored, as in PaLM)."""
    return 6 * config.n_params + 12 * config.n_layers * seq_len * config.d_model


def time_train_step(config, batch_size: int, seq_len: int, steps: int, seed: int = 0) -> dict:
    """Median seconds per step after one compile-and-warm-up step."""
    params = init_params(config, jax.random.PRNGKey(seed))
    optimizer = optim.make_optimizer(1e-3, 1000, 10)
    opt_state = optimizer.init(params)
    step = make_train_step(config, optimizer, loss="sft")
    rng = np.random.default_rng(seed)
    tokens = jnp.asarray(rng.integers(4, config.vocab_size, (batch_size, seq_len)), jnp.int32)
    batch = Batch(tokens, jnp.roll(tokens, -1, axis=1), jnp.ones((batch_size, seq_len), jnp.float32))
    t0 = time.perf_counter()
    params, opt_state, metrics = step(params, opt_state, batch)
    jax.block_until_ready(metrics["loss"])
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        params, opt_state, metrics = step(params, opt_state, batch)
        jax.block_until_ready(metrics["loss"])
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    tokens_per_s = batch_size * seq_len / sec
    return {"compile_s": compile_s, "step_s": sec, "tokens_per_s": tokens_per_s,
            "tflops": tokens_per_s * train_flops_per_token(config, seq_len) / 1e12}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minift.bench", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="course", choices=sorted(PRESETS))
    p.add_argument("--vocab-size", type=int, default=None)
    p.add_argument("--layers", type=int, default=None, help="override n_layers (e.g. a slice of a real model)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--peak-tflops", type=float, default=None, help="hardware peak, for MFU")
    args = p.parse_args(argv)
    overrides = {k: v for k, v in (("vocab_size", args.vocab_size), ("n_layers", args.layers)) if v}
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}")
    results = {}
    for attention in ("reference", "fast"):
        config = get_config(args.preset, attention=attention, **overrides)
        r = results[attention] = time_train_step(config, args.batch, args.seq, args.steps)
        mfu = f", MFU {100 * r['tflops'] / args.peak_tflops:.1f}%" if args.peak_tflops else ""
        print(f"{args.preset} ({config.n_params / 1e6:.1f}M params), attention={attention:<9} "
              f"B={args.batch} T={args.seq}: {r['step_s'] * 1e3:8.1f} ms/step, {r['tokens_per_s']:10.0f} tok/s, "
              f"{r['tflops']:.3f} TFLOP/s{mfu} (compile {r['compile_s']:.1f} s)")
    ratio = results["reference"]["step_s"] / results["fast"]["step_s"]
    print(f"speed-up of fast attention over the readable baseline: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
