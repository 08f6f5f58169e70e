# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Mô hình Xác Suất Tự Hồi Quy (Autoregressive Probability Model) — §3.1
#
# The article (§3.1) starts from one equation: a language model assigns a probability to a whole
# token sequence $X = (x_1, \dots, x_T)$ by the chain rule of probability,
#
# $$P_\theta(X) = \prod_{t=1}^{T} P_\theta(x_t \mid x_{<t}),$$
#
# where $\theta$ are the Transformer's weights and $x_{<t}$ the tokens before position $t$.
# This notebook builds that model from `minift` (it never redefines it), then checks the equation
# numerically: one forward pass gives *all* the conditionals at once, and they agree with running
# the model on every prefix separately. Instruction tuning (§3.2) will only change *which* terms of
# this product the loss looks at.
#
# Set `MINIFT_NOTEBOOK_SMALL=1` for the small, fast setting (used by the test suite).

# %%
import os

import jax
import jax.numpy as jnp
import numpy as np

from minift import model
from minift.config import get_config
from minift.course.bundled import default_tokenizer

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
print("jax", jax.__version__, "| small setting" if SMALL else "| full setting")

# %% [markdown]
# ## 1. Token hoá (Tokenization): text → $x_1, \dots, x_T$
#
# The model never sees characters, only integer token ids from a SentencePiece tokenizer: the
# course tokenizer committed in `data/samples/tokenizer.model` (`minift tokenizer --train`
# rebuilds it from the course data). Sequences start with the BOS token: the model defines
# $P_\theta(x_t \mid x_{<t})$ for $t \ge 2$, so fixing $x_1 = \texttt{<s>}$ makes the product
# cover every real token.

# %%
tok = default_tokenizer()
print(tok)

text = "Paris là thủ đô của Pháp."
ids = tok.encode(text, bos=True)
print("vocab size V =", tok.vocab_size)
print("pieces:", [tok.id_to_piece(i) for i in ids])
print("ids:   ", ids)

# %% [markdown]
# ## 2. Mô hình (The model): a Llama-style decoder written by hand
#
# `minift.model` is a decoder-only Transformer on a plain dict of arrays: token embedding,
# $L$ blocks of (RMSNorm → causal attention with RoPE and grouped-query heads → residual;
# RMSNorm → SwiGLU MLP → residual), a final RMSNorm and an LM head (here tied to the embedding).
# The layers are stacked on a leading $L$ axis and run with `jax.lax.scan`, so the block is
# compiled once whatever the depth. Shapes: B batch, T time, D model, H query heads,
# G key/value heads, K head dim, F MLP hidden, V vocab.

# %%
config = get_config("tiny" if SMALL else "course", vocab_size=tok.vocab_size)
params = model.init_params(config, jax.random.PRNGKey(0))
print(config)
print()
for name, leaf in jax.tree_util.tree_leaves_with_path(params):
    print(f"{jax.tree_util.keystr(name):32s} {str(leaf.shape):20s} {leaf.dtype}")
print(f"\nparameters: {model.count_params(params):,} (config says {config.n_params:,})")
print(f"TinyLlama-1.1B, same code, real shapes: {get_config('tinyllama-1.1b').n_params:,}")

# %%
forward = jax.jit(model.forward, static_argnames="config")  # config is a frozen (hashable) dataclass
x = jnp.array([ids], dtype=jnp.int32)  # (B=1, T)
logits = forward(params, x, config)  # (B, T, V)
print("tokens", x.shape, "-> logits", logits.shape)

# %% [markdown]
# ## 3. Quy tắc chuỗi (The chain rule), checked numerically
#
# $$P_\theta(X) = \prod_{t=1}^{T} P_\theta(x_t \mid x_{<t})
# \qquad\Longleftrightarrow\qquad
# \log P_\theta(X) = \sum_{t} \log P_\theta(x_t \mid x_{<t})$$
#
# Row $t$ of the logits is the model's distribution for the *next* token given $x_{\le t}$:
# $\log P_\theta(x_{t+1} \mid x_{\le t}) = \mathrm{log\_softmax}(\text{logits}_t)[x_{t+1}]$.
# Because attention is causal, reading all rows of **one** forward pass must give the same numbers
# as running the model **separately on each prefix** $x_{\le t}$ and reading its last row. We take
# logs (a sum of logs instead of a product of small numbers, which would underflow) and use
# `jax.nn.log_softmax` directly here; `minift.loss` wraps exactly this in `token_log_probs`.

# %%
logp = jax.nn.log_softmax(logits, axis=-1)  # (1, T, V)
T = x.shape[1]
one_pass = np.array([logp[0, t, ids[t + 1]] for t in range(T - 1)])

per_prefix = []
for t in range(T - 1):
    prefix = x[:, : t + 1]  # (1, t+1): the model sees only x_<=t
    logp_prefix = jax.nn.log_softmax(forward(params, prefix, config)[0, -1])  # (V,)
    per_prefix.append(float(logp_prefix[ids[t + 1]]))
per_prefix = np.array(per_prefix)

print(f"{'next token':>14s} {'one pass':>10s} {'per prefix':>10s}")
for t in range(T - 1):
    print(f"{tok.id_to_piece(ids[t + 1]):>14s} {one_pass[t]:10.5f} {per_prefix[t]:10.5f}")
print(f"\nlog P(X) = {one_pass.sum():.5f} (one pass) vs {per_prefix.sum():.5f} (prefix by prefix)")
print(f"max |difference| = {np.abs(one_pass - per_prefix).max():.1e}  (float32 rounding)")
assert np.allclose(one_pass, per_prefix, atol=1e-5)

# An untrained model is close to uniform: every conditional is near log(1/V).
print(f"log(1/V) = {-np.log(config.vocab_size):.3f}; each conditional sums to 1:",
      np.allclose(jnp.exp(logp).sum(-1), 1.0, atol=1e-5))

# %% [markdown]
# ## 4. Tính nhân quả (Causality): the future does not leak into the past
#
# The equation only makes sense if $P_\theta(x_t \mid x_{<t})$ really ignores $x_{\ge t}$. Change
# one token in the middle: the logits at earlier positions must not move at all, the later ones
# do.

# %%
t_change = T // 2
x_changed = x.at[0, t_change].set((x[0, t_change] + 1) % config.vocab_size)
diff = jnp.abs(forward(params, x_changed, config) - logits).max(axis=-1)[0]  # (T,)
for t in range(T):
    mark = "<- changed token" if t == t_change else ""
    print(f"position {t:2d}: max |Δ logits| = {float(diff[t]):.2e} {mark}")
assert float(diff[:t_change].max()) <= 1e-6 and float(diff[t_change:].min()) > 0

# %% [markdown]
# ## 5. Lấy mẫu (Sampling) from the untrained model
#
# Generation reads the same equation forwards: draw $x_{t+1} \sim P_\theta(\cdot \mid x_{\le t})$,
# append it, repeat. Causality gives a handy trick: we can keep a fixed-size buffer padded on the
# right, because row $t$ never looks at the padding after it, so `forward` compiles only once.
# (`minift.generate` does this properly, with a KV cache that reuses earlier keys and values.)
# An untrained model's text is noise: §3.2–§3.3 are about changing that.

# %%
n_new = 5 if SMALL else 12
buffer = jnp.zeros((1, len(ids) + n_new), jnp.int32).at[0, : len(ids)].set(jnp.array(ids))
key = jax.random.PRNGKey(42)
length = len(ids)
for _ in range(n_new):
    key, sub = jax.random.split(key)  # explicit randomness: a new key per draw
    next_logits = forward(params, buffer, config)[0, length - 1]  # (V,) row of the last real token
    next_id = jax.random.categorical(sub, next_logits)  # x_{t+1} ~ P(. | x_<=t)
    buffer = buffer.at[0, length].set(next_id)
    length += 1
sampled = [int(i) for i in buffer[0, len(ids):]]
print("prompt :", text)
print("sampled:", [tok.id_to_piece(i) for i in sampled])
print("decoded:", repr(tok.decode(sampled)))

# %% [markdown]
# ## Tóm tắt (Summary)
#
# - A sequence's probability is the product of next-token conditionals,
#   $P_\theta(X)=\prod_t P_\theta(x_t\mid x_{<t})$, and the causal Transformer returns all of them
#   in one pass (checked above to float32 rounding).
# - Training (§3.2) maximises $\sum_t \log P_\theta(x_t \mid x_{<t})$ on data; instruction tuning
#   keeps only the response tokens in that sum (notebook 02).
