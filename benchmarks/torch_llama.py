"""The PyTorch baseline of ``python -m minift.bench --vs torch``: the same model, step and sampler.

Outside the minift package on purpose: PyTorch is never a dependency of the library, only of this
benchmark (``pip install -e '.[bench]'`` installs torch 2.13.0 and ``transformers``; add
``--extra-index-url https://download.pytorch.org/whl/cpu`` for the small CPU-only wheel).

The model is ``transformers``' ``LlamaForCausalLM`` built from a minift ``ModelConfig`` (RMSNorm,
RoPE with the same theta, grouped-query attention through SDPA, SwiGLU, tied or untied head, no
biases): the architecture minift's parameter tree maps onto one-to-one. The train step is what
minift's ``make_train_step`` does: forward, mean token cross-entropy, backward, global-norm
clipping at 1.0, ``torch.optim.AdamW`` (the same betas, eps and weight decay as
``minift.optim.make_optimizer``), in float32 -- or, with ``dtype="bfloat16"``, float32 master
weights under ``torch.autocast`` to bfloat16, minift's ``compute_dtype="bfloat16"``. On the GPU when
PyTorch sees one (timed after ``torch.cuda.synchronize``), else on the CPU.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM


def llama_from_config(config, attention: str = "sdpa") -> LlamaForCausalLM:
    """A randomly initialised ``LlamaForCausalLM`` with minift's shapes (float32, train mode)."""
    hf = LlamaConfig(
        vocab_size=config.vocab_size, hidden_size=config.d_model, intermediate_size=config.d_ff,
        num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_kv_heads, max_position_embeddings=config.max_seq_len,
        rope_theta=config.rope_theta, rms_norm_eps=config.norm_eps,
        tie_word_embeddings=config.tie_embeddings, attention_bias=False, mlp_bias=False,
        attn_implementation=attention, use_cache=False,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(hf).float().train()


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_train_step(config, batch_size: int, seq_len: int, steps: int, compile: bool = False,
                    lr: float = 1e-3, weight_decay: float = 0.1, dtype: str = "float32") -> dict:
    """Median seconds per step after one warm-up step (which, with ``compile``, compiles)."""
    torch.manual_seed(0)
    net = llama_from_config(config).to(device())
    opt = torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=weight_decay)
    tokens = torch.randint(4, config.vocab_size, (batch_size, seq_len), device=device())
    targets = torch.roll(tokens, -1, dims=1)
    autocast = (torch.autocast(device(), dtype=torch.bfloat16) if dtype == "bfloat16"
                else contextlib.nullcontext())

    def step():
        with autocast:
            logits = net(input_ids=tokens).logits  # (B, T, V)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    run = torch.compile(step) if compile else step
    t0 = time.perf_counter()
    run()
    synchronize()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        run()
        synchronize()
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    return {"compile_s": compile_s, "step_s": sec, "tokens_per_s": batch_size * seq_len / sec}


@torch.no_grad()
def decode_tokens_per_s(config, batch_size: int, prompt_len: int, new_tokens: int, repeats: int = 3) -> float:
    """New tokens per second of ``transformers``' cached greedy ``generate`` (EOS never stops a row)."""
    net = llama_from_config(config).eval()
    net.generation_config.pad_token_id = 0
    prompts = torch.randint(4, config.vocab_size, (batch_size, prompt_len))
    mask = torch.ones_like(prompts)
    settings = dict(attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                    do_sample=False, use_cache=True, eos_token_id=None)
    net.generate(prompts, **settings)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        net.generate(prompts, **settings)
        times.append(time.perf_counter() - t0)
    return batch_size * new_tokens / float(np.median(times))
