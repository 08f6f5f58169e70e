# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Mô hình xác suất tự hồi quy (Autoregressive Probability Model) — §3.1
#
# Mục 3.1 của bài viết bắt đầu từ một phương trình: mô hình ngôn ngữ gán xác suất cho cả một chuỗi
# token (mã thông báo) $X = (x_1, \dots, x_T)$ theo quy tắc nhân xác suất (chain rule),
#
# $$P_\theta(X) = \prod_{t=1}^{T} P_\theta(x_t \mid x_{<t}),$$
#
# trong đó $\theta$ là các tham số (weights) của mạng Transformer, còn $x_{<t}$ là các token đứng
# trước vị trí $t$. Notebook này dựng mô hình đó từ `minift` (không định nghĩa lại nó), rồi kiểm
# tra phương trình bằng số: một lượt lan truyền xuôi (forward pass) cho ra *tất cả* các xác suất có
# điều kiện cùng một lúc, và chúng khớp với việc chạy mô hình riêng trên từng tiền tố (prefix). Tinh
# chỉnh bằng chỉ thị (instruction tuning, §3.2) sẽ chỉ thay đổi việc hàm mất mát (loss) nhìn vào
# *những* thừa số nào của tích này.
#
# Đặt `MINIFT_NOTEBOOK_SMALL=1` để chạy ở cấu hình nhỏ và nhanh (bộ kiểm thử dùng cấu hình này).
#
# > **English.** The article (§3.1) starts from one equation: a language model assigns a
# > probability to a whole token sequence $X$ by the chain rule of probability (above), where
# > $\theta$ are the Transformer's weights and $x_{<t}$ the tokens before position $t$. This
# > notebook builds that model from `minift` (it never redefines it), then checks the equation
# > numerically: one forward pass gives *all* the conditionals at once, and they agree with running
# > the model on every prefix separately. Instruction tuning (§3.2) will only change *which* terms
# > of this product the loss looks at.
# >
# > Set `MINIFT_NOTEBOOK_SMALL=1` for the small, fast setting (used by the test suite).

# %%
# Chế độ bài tập (exercise mode): với MINIFT_EXERCISES=<thư mục>, các hàm bạn viết thay cho hàm của minift.
# With MINIFT_EXERCISES=<folder>, your own functions replace minift's (see docs/exercises.md).
import minift.exercises

minift.exercises.install()

# %%
import os

import jax
import jax.numpy as jnp
import numpy as np

from minift import model
from minift.config import get_config
from minift.course.bundled import default_tokenizer

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
print("jax", jax.__version__, "| cấu hình nhỏ (small setting)" if SMALL else "| cấu hình đầy đủ (full setting)")

# %% [markdown]
# ## 1. Tách văn bản thành token (Tokenization): văn bản → $x_1, \dots, x_T$
#
# Mô hình không bao giờ nhìn thấy ký tự, mà chỉ thấy các mã token (token ids) là số nguyên do một
# bộ tách token (tokenizer) SentencePiece sinh ra: đó là bộ tách token của khóa học, lưu sẵn trong
# `data/samples/tokenizer.model` (lệnh `minift tokenizer --train` dựng lại nó từ dữ liệu khóa học).
# Mỗi chuỗi bắt đầu bằng token BOS: mô hình định nghĩa $P_\theta(x_t \mid x_{<t})$ với $t \ge 2$,
# nên việc cố định $x_1 = \texttt{<s>}$ giúp tích ở trên bao trùm mọi token thật.
#
# > **English.** The model never sees characters, only integer token ids from a SentencePiece
# > tokenizer: the course tokenizer committed in `data/samples/tokenizer.model` (`minift tokenizer
# > --train` rebuilds it from the course data). Sequences start with the BOS token: the model
# > defines $P_\theta(x_t \mid x_{<t})$ for $t \ge 2$, so fixing $x_1 = \texttt{<s>}$ makes the
# > product cover every real token.

# %%
tok = default_tokenizer()
print(tok)

text = "Paris là thủ đô của Pháp."
ids = tok.encode(text, bos=True)
print("kích thước từ vựng (vocab size) V =", tok.vocab_size)
print("các mảnh (pieces):", [tok.id_to_piece(i) for i in ids])
print("các mã (ids):     ", ids)

# %% [markdown]
# ## 2. Mô hình (The model): bộ giải mã kiểu Llama viết tay (a Llama-style decoder written by hand)
#
# `minift.model` là một Transformer chỉ gồm bộ giải mã (decoder-only), làm việc trên một dict gồm
# các mảng: embedding của token, $L$ khối (RMSNorm → attention nhân quả với RoPE và các đầu truy vấn
# theo nhóm (grouped-query) → cộng phần dư (residual); RMSNorm → MLP SwiGLU → cộng phần dư), một
# RMSNorm cuối cùng và một đầu ra mô hình ngôn ngữ (LM head, ở đây dùng chung trọng số với
# embedding). Các lớp được xếp chồng theo một trục $L$ đứng đầu và chạy bằng `jax.lax.scan`, nên
# khối chỉ được biên dịch một lần dù mô hình sâu bao nhiêu. Ký hiệu kích thước (shapes): B batch,
# T thời gian (vị trí), D chiều của mô hình, H số đầu truy vấn (query heads), G số đầu key/value,
# K số chiều mỗi đầu, F số chiều ẩn của MLP, V kích thước từ vựng.
#
# > **English.** `minift.model` is a decoder-only Transformer on a plain dict of arrays: token
# > embedding, $L$ blocks of (RMSNorm → causal attention with RoPE and grouped-query heads →
# > residual; RMSNorm → SwiGLU MLP → residual), a final RMSNorm and an LM head (here tied to the
# > embedding). The layers are stacked on a leading $L$ axis and run with `jax.lax.scan`, so the
# > block is compiled once whatever the depth. Shapes: B batch, T time, D model, H query heads,
# > G key/value heads, K head dim, F MLP hidden, V vocab.

# %%
config = get_config("tiny" if SMALL else "course", vocab_size=tok.vocab_size)
params = model.init_params(config, jax.random.PRNGKey(0))
print(config)
print()
for name, leaf in jax.tree_util.tree_leaves_with_path(params):
    print(f"{jax.tree_util.keystr(name):32s} {str(leaf.shape):20s} {leaf.dtype}")
print(f"\nsố tham số (parameters): {model.count_params(params):,} (cấu hình ghi / config says {config.n_params:,})")
print(f"TinyLlama-1.1B, cùng mã nguồn, kích thước thật (same code, real shapes): "
      f"{get_config('tinyllama-1.1b').n_params:,}")

# %%
# config là một dataclass bất biến, băm được (config is a frozen, hashable dataclass)
forward = jax.jit(model.forward, static_argnames="config")
x = jnp.array([ids], dtype=jnp.int32)  # (B=1, T)
logits = forward(params, x, config)  # (B, T, V)
print("tokens", x.shape, "-> logits", logits.shape)

# %% [markdown]
# ## 3. Quy tắc nhân xác suất (The chain rule), kiểm tra bằng số (checked numerically)
#
# $$P_\theta(X) = \prod_{t=1}^{T} P_\theta(x_t \mid x_{<t})
# \qquad\Longleftrightarrow\qquad
# \log P_\theta(X) = \sum_{t} \log P_\theta(x_t \mid x_{<t})$$
#
# Hàng $t$ của logits là phân phối mà mô hình đưa ra cho token *kế tiếp* khi đã biết $x_{\le t}$:
# $\log P_\theta(x_{t+1} \mid x_{\le t}) = \mathrm{log\_softmax}(\text{logits}_t)[x_{t+1}]$. Vì
# attention có tính nhân quả (causal), đọc mọi hàng của **một** lượt lan truyền xuôi phải cho đúng
# những con số thu được khi chạy mô hình **riêng trên từng tiền tố** $x_{\le t}$ rồi đọc hàng cuối
# cùng. Ta lấy logarit (một tổng các log thay cho một tích các số rất nhỏ, vốn sẽ bị tràn dưới —
# underflow) và dùng trực tiếp `jax.nn.log_softmax` ở đây; `minift.loss` gói đúng phép tính này
# trong hàm `token_log_probs`.
#
# > **English.** Row $t$ of the logits is the model's distribution for the *next* token given
# > $x_{\le t}$, as written above. Because attention is causal, reading all rows of **one** forward
# > pass must give the same numbers as running the model **separately on each prefix** $x_{\le t}$
# > and reading its last row. We take logs (a sum of logs instead of a product of small numbers,
# > which would underflow) and use `jax.nn.log_softmax` directly here; `minift.loss` wraps exactly
# > this in `token_log_probs`.

# %%
logp = jax.nn.log_softmax(logits, axis=-1)  # (1, T, V)
T = x.shape[1]
one_pass = np.array([logp[0, t, ids[t + 1]] for t in range(T - 1)])

per_prefix = []
for t in range(T - 1):
    prefix = x[:, : t + 1]  # (1, t+1): mô hình chỉ thấy x_<=t (the model sees only x_<=t)
    logp_prefix = jax.nn.log_softmax(forward(params, prefix, config)[0, -1])  # (V,)
    per_prefix.append(float(logp_prefix[ids[t + 1]]))
per_prefix = np.array(per_prefix)

print(f"{'token kế tiếp (next token)':>28s} {'một lượt (one pass)':>20s} {'từng tiền tố (per prefix)':>26s}")
for t in range(T - 1):
    print(f"{tok.id_to_piece(ids[t + 1]):>28s} {one_pass[t]:20.5f} {per_prefix[t]:26.5f}")
print(f"\nlog P(X) = {one_pass.sum():.5f} (một lượt / one pass) vs {per_prefix.sum():.5f} "
      f"(từng tiền tố / prefix by prefix)")
print(f"max |chênh lệch (difference)| = {np.abs(one_pass - per_prefix).max():.1e}  "
      f"(sai số làm tròn float32 / float32 rounding)")
assert np.allclose(one_pass, per_prefix, atol=1e-5)

# Mô hình chưa huấn luyện gần như phân phối đều: mọi xác suất có điều kiện đều gần log(1/V).
# An untrained model is close to uniform: every conditional is near log(1/V).
print(f"log(1/V) = {-np.log(config.vocab_size):.3f}; mỗi phân phối có điều kiện có tổng bằng 1 "
      f"(each conditional sums to 1):", np.allclose(jnp.exp(logp).sum(-1), 1.0, atol=1e-5))

# %% [markdown]
# ## 4. Tính nhân quả (Causality): tương lai không rò rỉ vào quá khứ (the future does not leak into the past)
#
# Phương trình chỉ có nghĩa nếu $P_\theta(x_t \mid x_{<t})$ thật sự bỏ qua $x_{\ge t}$. Hãy đổi một
# token ở giữa chuỗi: logits ở các vị trí đứng trước nó không được thay đổi chút nào, còn các vị trí
# từ đó trở về sau thì thay đổi.
#
# > **English.** The equation only makes sense if $P_\theta(x_t \mid x_{<t})$ really ignores
# > $x_{\ge t}$. Change one token in the middle: the logits at earlier positions must not move at
# > all, the later ones do.

# %%
t_change = T // 2
x_changed = x.at[0, t_change].set((x[0, t_change] + 1) % config.vocab_size)
diff = jnp.abs(forward(params, x_changed, config) - logits).max(axis=-1)[0]  # (T,)
for t in range(T):
    mark = "<- token bị đổi (changed token)" if t == t_change else ""
    print(f"vị trí (position) {t:2d}: max |Δ logits| = {float(diff[t]):.2e} {mark}")
assert float(diff[:t_change].max()) <= 1e-6 and float(diff[t_change:].min()) > 0

# %% [markdown]
# ## 5. Lấy mẫu (Sampling) từ mô hình chưa huấn luyện (from the untrained model)
#
# Việc sinh văn bản đọc cùng phương trình đó theo chiều xuôi: rút $x_{t+1} \sim P_\theta(\cdot \mid
# x_{\le t})$, nối nó vào chuỗi, rồi lặp lại. Tính nhân quả cho ta một mẹo tiện lợi: có thể giữ một
# bộ đệm (buffer) kích thước cố định, đệm thêm (padding) ở bên phải, vì hàng $t$ không bao giờ nhìn
# vào phần đệm phía sau nó, nên `forward` chỉ phải biên dịch một lần. (`minift.generate` làm việc
# này một cách đầy đủ, với KV cache dùng lại các key và value đã tính trước đó.) Văn bản do một mô
# hình chưa huấn luyện sinh ra chỉ là nhiễu: §3.2–§3.3 nói về cách thay đổi điều đó.
#
# > **English.** Generation reads the same equation forwards: draw
# > $x_{t+1} \sim P_\theta(\cdot \mid x_{\le t})$, append it, repeat. Causality gives a handy trick:
# > we can keep a fixed-size buffer padded on the right, because row $t$ never looks at the padding
# > after it, so `forward` compiles only once. (`minift.generate` does this properly, with a KV
# > cache that reuses earlier keys and values.) An untrained model's text is noise: §3.2–§3.3 are
# > about changing that.

# %%
n_new = 5 if SMALL else 12
buffer = jnp.zeros((1, len(ids) + n_new), jnp.int32).at[0, : len(ids)].set(jnp.array(ids))
key = jax.random.PRNGKey(42)
length = len(ids)
for _ in range(n_new):
    key, sub = jax.random.split(key)  # ngẫu nhiên tường minh: mỗi lần rút một key mới (a new key per draw)
    next_logits = forward(params, buffer, config)[0, length - 1]  # (V,) hàng của token thật cuối (last real token)
    next_id = jax.random.categorical(sub, next_logits)  # x_{t+1} ~ P(. | x_<=t)
    buffer = buffer.at[0, length].set(next_id)
    length += 1
sampled = [int(i) for i in buffer[0, len(ids):]]
print("lời nhắc (prompt)   :", text)
print("mẫu rút ra (sampled):", [tok.id_to_piece(i) for i in sampled])
print("giải mã (decoded)   :", repr(tok.decode(sampled)))

# %% [markdown]
# ## Tóm tắt (Summary)
#
# - Xác suất của một chuỗi là tích các xác suất có điều kiện của token kế tiếp,
#   $P_\theta(X)=\prod_t P_\theta(x_t\mid x_{<t})$, và Transformer nhân quả trả về tất cả chúng
#   trong một lượt lan truyền xuôi (đã kiểm tra ở trên, khớp tới sai số làm tròn float32).
# - Tiền huấn luyện (pretraining) cực đại hóa $\sum_t \log P_\theta(x_t \mid x_{<t})$ — logarit của tích
#   ở §3.1 — trên văn bản thô; hàm mất mát của tinh chỉnh bằng chỉ thị (§3.2) chỉ giữ lại các token của
#   phần phản hồi trong tổng đó (notebook 02).
#
# > **English.**
# > - A sequence's probability is the product of next-token conditionals, and the causal
# >   Transformer returns all of them in one pass (checked above to float32 rounding).
# > - Pretraining maximises $\sum_t \log P_\theta(x_t \mid x_{<t})$ — the log of §3.1's product — on raw
# >   text; instruction tuning's loss (§3.2) keeps only the response tokens in that sum (notebook 02).
