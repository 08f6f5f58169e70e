"""Benchmarks: ``python -m minift.bench [train|compile] [--preset course] [--batch 32] [--seq 128] ...``.

``train`` (the default) measures the jit-compiled train step (forward, masked loss, gradient,
AdamW, apply) in tokens per second and achieved FLOP/s, for the readable attention (the
*baseline*, measured in the same run) and the fused ``jax.nn.dot_product_attention`` path, and
prints their ratio, the first step's compile time, and the share of this machine's float32 matmul
peak, *measured in the same run* by a large square ``jnp.dot``. With ``--peak-tflops`` (the chip's
dense peak for the dtype used) it also prints the model FLOP utilisation (MFU).

``profile`` times the parts of one train step, each jit-compiled alone (forward, backward, LM head
and loss, optimizer; per block: attention, MLP; the layer scan against an unrolled loop), and prints
each as milliseconds and as a share of the whole step: where the time goes, reproducibly.

``decode`` times sampling ``--new-tokens`` tokens after ``--seq``-token prompts, greedy, at
``--batch`` rows: the KV-cached sampler (``generate.generate_tokens``, one compiled scan) against the
reference that re-runs the whole prefix for every token (``generate.generate_uncached``), in new
tokens per second and their ratio (both after a warm-up call).

``compile`` runs the train step over one epoch of the course's bucketed SFT batches and prints the
number of compilations next to the number of distinct batch shapes: they must be equal (a new
shape compiles once; the same shape never again).

``--vs torch`` adds the PyTorch baseline to ``train`` and ``decode``, timed in the same run:
``transformers``' ``LlamaForCausalLM`` with the same shapes, eager and ``torch.compile``d, with
``torch.optim.AdamW`` and clipping, and its cached ``generate`` (``benchmarks/torch_llama.py``,
outside the package; ``pip install -e '.[bench]'`` and run from the repository root).
``--dtype bfloat16`` runs minift's mixed-precision policy, ``--remat`` checkpoints each block, and
``--peak-tflops auto`` reads the chip's dense bf16 peak from ``PEAK_BF16_TFLOPS`` for the MFU.

FLOPs per token follow the usual count (Kaplan et al. 2020; PaLM appendix B): 6 per parameter
for forward + backward, plus 12·L·T·D for the attention scores and weighted sums.
Tests never assert times; this module is where speed is measured.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from minift import data as D
from minift import loss, model, optim
from minift.config import PRESETS, get_config
from minift.course.bundled import course_examples, default_tokenizer
from minift.data import Batch
from minift.generate import generate_tokens, generate_uncached
from minift.model import init_params
from minift.runs import SFT_BUCKETS
from minift.train import make_train_step

# Dense bf16 peak TFLOP/s from the vendors' datasheets (no sparsity), by jax's device_kind prefix.
PEAK_BF16_TFLOPS = {
    "NVIDIA H200": 989.0, "NVIDIA H100 80GB HBM3": 989.0, "NVIDIA H100 PCIe": 756.0, "NVIDIA H100": 989.0,
    "NVIDIA A100": 312.0, "NVIDIA L4": 121.0, "NVIDIA GeForce RTX 4090": 165.0, "NVIDIA A10G": 70.0,
    "TPU v4": 275.0, "TPU v5 lite": 197.0, "TPU v5e": 197.0, "TPU v5p": 459.0, "TPU v6 lite": 918.0,
}


def peak_tflops(device_kind: str) -> float | None:
    """The datasheet dense bf16 peak of a device, by the longest matching name prefix (None if unknown)."""
    names = [name for name in PEAK_BF16_TFLOPS if device_kind.startswith(name)]
    return PEAK_BF16_TFLOPS[max(names, key=len)] if names else None


def torch_baseline():
    """``benchmarks/torch_llama.py``, imported on demand (PyTorch is never a dependency of minift)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module("benchmarks.torch_llama")
    except ImportError as err:
        raise SystemExit(f"--vs torch needs PyTorch and transformers ({err}): pip install -e '.[bench]' in a "
                         "checkout of the repository, whose benchmarks/ folder holds the baseline") from err


def train_flops_per_token(config, seq_len: int) -> float:
    """Forward + backward FLOPs per token: 6N + 12·L·T·D (causal halving ignored, as in PaLM)."""
    return 6 * config.n_params + 12 * config.n_layers * seq_len * config.d_model


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matmul throughput: the median GFLOP/s of an n x n ``jnp.dot`` (2n^3 FLOPs)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, a))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(dot(a, a))
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times)) / 1e9


def median_ms(f, *args, repeats: int = 5) -> float:
    """Median milliseconds of ``f(*args)`` (jit-compiled by the caller) after one warm-up call."""
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def profile_train_step(config, batch_size: int, seq_len: int, repeats: int = 5) -> dict[str, float]:
    """Milliseconds of each part of a train step, each compiled alone (so the parts need not add up
    exactly to the whole: one jit fuses across their borders)."""
    B, T = batch_size, seq_len
    params = init_params(config, jax.random.PRNGKey(0))
    optimizer = optim.make_optimizer(1e-3, 1000, 10)
    opt_state = optimizer.init(params)
    tokens = jax.random.randint(jax.random.PRNGKey(1), (B, T), 4, config.vocab_size)
    targets, mask = jnp.roll(tokens, -1, axis=1), jnp.ones((B, T), jnp.float32)

    def step_loss(p):
        return loss.sft_loss(model.forward(p, tokens, config), targets, mask)

    def head_loss(p, h):
        return loss.sft_loss(model.lm_head(p, h, config), targets, mask)

    h = jax.jit(lambda p: model.hidden_states(p, tokens, config))(params)  # (B, T, D)
    causal = model.causal_mask(T, None, B)
    cos, sin = model.rope_cos_sin(jnp.broadcast_to(jnp.arange(T), (B, T)), config.head_dim, config.rope_theta)
    layer = jax.tree.map(lambda a: a[0], params["layers"])
    q = jax.random.normal(jax.random.PRNGKey(2), (B, T, config.n_heads, config.head_dim))
    kv = jax.random.normal(jax.random.PRNGKey(3), (B, T, config.n_kv_heads, config.head_dim))

    def blocks(layers, x, unroll):
        def one(x, lay):
            return model.block(lay, x, cos, sin, causal, config)[0], None
        return jnp.sum(jax.lax.scan(one, x, layers, unroll=unroll)[0])

    grads = jax.jit(jax.grad(step_loss))(params)
    step = make_train_step(config, optimizer, loss="sft")
    batch = Batch(tokens, targets, mask)
    state = [jax.tree.map(jnp.copy, params), jax.tree.map(jnp.copy, opt_state)]  # the step donates its inputs

    def whole_step():
        state[0], state[1], metrics = step(state[0], state[1], batch)
        return metrics["loss"]

    parts = {
        "train step (one jit: all below)": median_ms(whole_step, repeats=repeats),
        "forward: decoder blocks": median_ms(jax.jit(lambda p: model.hidden_states(p, tokens, config)), params,
                                             repeats=repeats),
        "forward: + LM head + loss": median_ms(jax.jit(step_loss), params, repeats=repeats),
        "gradient: forward + backward": median_ms(jax.jit(jax.grad(step_loss)), params, repeats=repeats),
        "gradient: LM head + loss only": median_ms(jax.jit(jax.grad(head_loss, argnums=(0, 1))), params, h,
                                                   repeats=repeats),
        "gradient: blocks, lax.scan": median_ms(jax.jit(jax.grad(lambda ls, x: blocks(ls, x, 1), argnums=(0, 1))),
                                                params["layers"], h, repeats=repeats),
        "gradient: blocks, unrolled": median_ms(jax.jit(jax.grad(lambda ls, x: blocks(ls, x, True),
                                                                 argnums=(0, 1))), params["layers"], h,
                                                repeats=repeats),
        "gradient: one block's attention": median_ms(jax.jit(jax.grad(
            lambda q, k, v: jnp.sum(model.attention(q, k, v, causal, config.attention)), argnums=(0, 1, 2))),
            q, kv, kv, repeats=repeats),
        "gradient: one block's MLP": median_ms(jax.jit(jax.grad(
            lambda lay, x: jnp.sum(model.swiglu_mlp(x, lay["w_gate"], lay["w_up"], lay["w_down"])),
            argnums=(0, 1))), layer, h, repeats=repeats),
        "optimizer: AdamW update + apply": median_ms(jax.jit(
            lambda g, s, p: optax.apply_updates(p, optimizer.update(g, s, p)[0])), grads, opt_state, params,
            repeats=repeats),
    }
    return parts


def time_decode(config, batch_size: int, prompt_len: int, new_tokens: int, repeats: int = 3) -> dict[str, float]:
    """New tokens per second of the cached and the uncached sampler (greedy; EOS never stops a row)."""
    params = init_params(config, jax.random.PRNGKey(0))
    prompts = jax.random.randint(jax.random.PRNGKey(1), (batch_size, prompt_len), 4, config.vocab_size)
    mask = jnp.ones((batch_size, prompt_len), jnp.int32)
    settings = dict(config=config, max_new_tokens=new_tokens, eos_id=-1, pad_id=0)
    key = jax.random.PRNGKey(0)
    rates = {}
    for name, sampler in (("cached", generate_tokens), ("uncached", generate_uncached)):
        ms = median_ms(lambda sampler=sampler: sampler(params, prompts, mask, key, **settings).tokens, repeats=repeats)
        rates[name] = batch_size * new_tokens / (ms / 1e3)
    return rates


def count_compilations(config, batch_size: int, examples: int = 0) -> tuple[int, int, int]:
    """(compilations, distinct batch shapes, steps) over one epoch of the course's SFT batches."""
    tok = default_tokenizer()
    encoded, _ = D.encode_dataset(course_examples("train")[: examples or None], tok, 257, D.COURSE_TEMPLATE)
    params = init_params(config, jax.random.PRNGKey(0))
    optimizer = optim.make_optimizer(1e-3, 1000, 10)
    opt_state = optimizer.init(params)
    step = make_train_step(config, optimizer, loss="sft")
    shapes, steps = set(), 0
    for batch in D.batches(encoded, batch_size, seed=0, buckets=SFT_BUCKETS, pad_id=tok.pad_id):
        params, opt_state, _ = step(params, opt_state, batch)
        shapes.add(batch.tokens.shape)
        steps += 1
    return step._cache_size(), len(shapes), steps


def time_train_step(config, batch_size: int, seq_len: int, steps: int, seed: int = 0) -> dict:
    """Median seconds per step after compiling (timed alone) and one warm-up step."""
    params = init_params(config, jax.random.PRNGKey(seed))
    optimizer = optim.make_optimizer(1e-3, 1000, 10)
    opt_state = optimizer.init(params)
    rng = np.random.default_rng(seed)
    tokens = jnp.asarray(rng.integers(4, config.vocab_size, (batch_size, seq_len)), jnp.int32)
    batch = Batch(tokens, jnp.roll(tokens, -1, axis=1), jnp.ones((batch_size, seq_len), jnp.float32))
    t0 = time.perf_counter()
    step = make_train_step(config, optimizer, loss="sft").lower(params, opt_state, batch).compile()
    compile_s = time.perf_counter() - t0  # tracing + XLA compilation: what a student waits for once
    params, opt_state, metrics = step(params, opt_state, batch)  # warm-up
    jax.block_until_ready(metrics["loss"])
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        params, opt_state, metrics = step(params, opt_state, batch)
        jax.block_until_ready(metrics["loss"])
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    tokens_per_s = batch_size * seq_len / sec
    return {"compile_s": compile_s, "step_s": sec, "tokens_per_s": tokens_per_s,
            "temp_mib": step.memory_analysis().temp_size_in_bytes / 2**20,
            "tflops": tokens_per_s * train_flops_per_token(config, seq_len) / 1e12}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minift.bench", description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", default="train", choices=("train", "profile", "decode", "compile"))
    p.add_argument("--new-tokens", type=int, default=64, help="decode: tokens generated per row")
    p.add_argument("--preset", default="course", choices=sorted(PRESETS))
    p.add_argument("--vocab-size", type=int, default=None)
    p.add_argument("--layers", type=int, default=None, help="override n_layers (e.g. a slice of a real model)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--examples", type=int, default=0, help="compile: the first N course examples (0 = all)")
    p.add_argument("--attention", choices=("both", "reference", "fast"), default="both",
                   help="train: which attention to time (both: the readable baseline and the fused path)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="compute dtype (bfloat16: bf16 matmuls on float32 master weights)")
    p.add_argument("--remat", action="store_true", help="recompute each block's activations in the backward")
    p.add_argument("--vs", choices=("none", "torch"), default="none", help="add the PyTorch baseline")
    p.add_argument("--no-torch-compile", action="store_true", help="--vs torch: time eager PyTorch only")
    p.add_argument("--peak-tflops", default=None,
                   help="hardware peak TFLOP/s for MFU, or 'auto' for the device's dense bf16 datasheet peak")
    args = p.parse_args(argv)
    overrides = {k: v for k, v in (("vocab_size", args.vocab_size), ("n_layers", args.layers)) if v}
    overrides.update(remat=args.remat, compute_dtype=None if args.dtype == "float32" else args.dtype)
    device = jax.devices()[0]
    print(f"device: {device.device_kind} ({jax.default_backend()}), jax {jax.__version__}, "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    torch_llama = torch_baseline() if args.vs == "torch" else None
    if args.mode == "compile":
        config = get_config(args.preset, **{"vocab_size": default_tokenizer().vocab_size, **overrides})
        compiled, shapes, steps = count_compilations(config, args.batch, args.examples)
        verdict = "one per shape" if compiled == shapes else "RECOMPILING: a shape compiled more than once"
        print(f"one epoch of course SFT batches: {steps} steps, {shapes} distinct (B, T) shapes, "
              f"{compiled} compilations ({verdict})")
        return 0 if compiled == shapes else 1
    if args.mode == "decode":
        config = get_config(args.preset, **overrides)
        rates = time_decode(config, args.batch, args.seq, args.new_tokens, args.steps)
        print(f"{args.preset} ({config.n_params / 1e6:.1f}M params) decode, B={args.batch}, prompt {args.seq}, "
              f"{args.new_tokens} new tokens: cached {rates['cached']:.0f} tok/s, uncached (reference) "
              f"{rates['uncached']:.0f} tok/s, cached / uncached {rates['cached'] / rates['uncached']:.1f}x")
        if torch_llama is not None:
            hf = torch_llama.decode_tokens_per_s(config, args.batch, args.seq, args.new_tokens, args.steps)
            print(f"  transformers generate (cached, greedy): {hf:.0f} tok/s; minift cached / transformers "
                  f"{rates['cached'] / hf:.2f}x")
        return 0
    if args.mode == "profile":
        config = get_config(args.preset, **overrides)
        parts = profile_train_step(config, args.batch, args.seq, args.steps)
        whole = parts["train step (one jit: all below)"]
        print(f"{args.preset} ({config.n_params / 1e6:.1f}M params, L={config.n_layers}) B={args.batch} "
              f"T={args.seq}, attention={config.attention}: each part compiled alone")
        for name, ms in parts.items():
            print(f"  {name:<36} {ms:9.1f} ms  {100 * ms / whole:5.0f}% of the step")
        return 0
    peak_tf = peak_tflops(device.device_kind) if args.peak_tflops == "auto" else (
        float(args.peak_tflops) if args.peak_tflops else None)
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak measured now (2048^3 jnp.dot): {peak:.1f} GFLOP/s"
          + (f"; datasheet peak used for MFU: {peak_tf:.0f} TFLOP/s" if peak_tf else ""))
    results = {}
    for attention in ("reference", "fast") if args.attention == "both" else (args.attention,):
        config = get_config(args.preset, attention=attention, **overrides)
        r = results[attention] = time_train_step(config, args.batch, args.seq, args.steps)
        mfu = f", MFU {100 * r['tflops'] / peak_tf:.1f}%" if peak_tf else ""
        print(f"{args.preset} ({config.n_params / 1e6:.1f}M params, {args.dtype}), attention={attention:<9} "
              f"B={args.batch} T={args.seq}: {r['step_s'] * 1e3:8.1f} ms/step, {r['tokens_per_s']:10.0f} tok/s, "
              f"{1e3 * r['tflops']:.1f} GFLOP/s = {100e3 * r['tflops'] / peak:.0f}% of the matmul peak{mfu} "
              f"(compile {r['compile_s']:.1f} s; activations and gradients {r['temp_mib']:.0f} MiB)")
    if len(results) == 2:
        ratio = results["reference"]["step_s"] / results["fast"]["step_s"]
        print(f"speed-up of fast attention over the readable baseline: {ratio:.2f}x")
    if torch_llama is not None:
        best = min(r["step_s"] for r in results.values())
        for compiled in (False,) if args.no_torch_compile else (False, True):
            t = torch_llama.time_train_step(config, args.batch, args.seq, args.steps, compile=compiled,
                                            dtype=args.dtype)
            name = "torch.compile" if compiled else "PyTorch eager"
            print(f"  {name:<14} (transformers Llama, {args.dtype}, AdamW, clipping): {t['step_s'] * 1e3:8.1f} ms/step, "
                  f"{t['tokens_per_s']:10.0f} tok/s (first step {t['compile_s']:.1f} s); "
                  f"minift / {name}: {t['step_s'] / best:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
