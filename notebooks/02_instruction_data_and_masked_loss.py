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
# # 02 · Dữ liệu chỉ thị và hàm mất mát NLL có che (Instruction data and the masked NLL loss) — §2.1, §3.2
#
# Mục 2.1 của bài viết cho biết một mẫu dữ liệu dùng để tinh chỉnh bằng chỉ thị (instruction
# tuning) gồm những gì: **Câu lệnh (Instruction)** — việc cần làm —, **Ngữ cảnh bổ trợ (Input)**
# nếu có — đoạn văn bản cần xử lý —, và **Phản hồi mong đợi (Target Output)** — câu trả lời mà ta
# cực đại hóa xác suất. Mục 3.2 cho biết cách huấn luyện: hàm mất mát (loss) NLL (Negative
# Log-Likelihood) của phần phản hồi khi biết câu lệnh,
#
# $$\mathcal{L}_{SFT}(\theta) = -\frac{1}{N}\sum_{i=1}^{N} \log P_\theta(y_i \mid I, y_{<i}),$$
#
# trong đó mất mát trên các token của lời nhắc (prompt) được nhân với 0 (*che*, masking), để chỉ
# phần phản hồi gửi gradient. Notebook này đi theo một ví dụ từ văn bản đến mẫu lời nhắc (template),
# đến các mã token và mặt nạ mất mát (loss mask), đến giá trị hàm mất mát tính tay và tính bằng
# `minift.loss.sft_loss`, và cuối cùng đến gradient — bằng đúng 0 trên phần lời nhắc.
#
# Mọi thứ đều lấy từ `minift` (`minift.data`, `minift.tokenizer`, `minift.loss`); ở đây không định
# nghĩa lại gì. `MINIFT_NOTEBOOK_SMALL=1` chọn cấu hình nhỏ hơn (bộ kiểm thử dùng cấu hình này).
#
# > **English.** §2.1 of the article says what an instruction-tuning example is: an
# > **Instruction** — what to do —, an optional **Input** — the text to work on —, and the
# > **Target Output** — the answer whose likelihood we maximise. §3.2 says how it is trained: the
# > NLL of the response given the instruction (the equation above), with the loss on the prompt
# > tokens multiplied by 0 (masking), so that only the response sends gradient. This notebook
# > follows one example from text to template, to token ids and loss mask, to the loss computed by
# > hand and by `minift.loss.sft_loss`, and finally to the gradient, which is exactly zero on the
# > prompt.
# >
# > Everything comes from `minift` (`minift.data`, `minift.tokenizer`, `minift.loss`); nothing is
# > redefined here. `MINIFT_NOTEBOOK_SMALL=1` selects a smaller setting (used by the test suite).

# %%
# Chế độ bài tập (exercise mode): với MINIFT_EXERCISES=<thư mục>, các hàm bạn viết thay cho hàm của minift.
# With MINIFT_EXERCISES=<folder>, your own functions replace minift's (see docs/exercises.md).
import minift.exercises

minift.exercises.install()

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from minift import data, loss, model, train
from minift.config import get_config
from minift.course.bundled import course_examples, default_tokenizer

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
print("jax", jax.__version__, "| cấu hình nhỏ (small setting)" if SMALL else "| cấu hình đầy đủ (full setting)")

# %% [markdown]
# ## 1. Một ví dụ (An example): Câu lệnh, Ngữ cảnh bổ trợ, Phản hồi mong đợi
#
# `minift.data.Example` chứa ba phần của §2.1 (cùng vài trường phụ dùng để quản lý). Đây là một ví
# dụ dịch thuật — đúng tác vụ mà §1 nói mô hình nền tảng (foundation/base model) làm không được: khi được yêu
# cầu dịch, nó chỉ viết tiếp bằng tiếng Anh.
#
# > **English.** `minift.data.Example` holds the three parts of §2.1 — Instruction, Input, Target
# > Output — plus bookkeeping fields. Here is a translation example, the very task §1 says a base
# > model fails at: asked to translate, it just keeps writing English.

# %%
example = data.Example(
    instruction="Dịch câu sau sang tiếng Việt.",  # Câu lệnh: việc cần làm (what to do)
    input="The cat sat on the mat.",  # Ngữ cảnh bổ trợ: văn bản cần xử lý, có thể rỗng (the text to work on)
    response="Con mèo ngồi trên tấm thảm.",  # Phản hồi mong đợi: điều mô hình phải học nói (what to learn to say)
)
for field in ("instruction", "input", "response"):
    print(f"{field:>11}: {getattr(example, field)}")

bundled = course_examples("train")  # dữ liệu khóa học (the course data): data/samples/instructions.jsonl
tasks = sorted({e.task for e in bundled})
print(f"\ndữ liệu khóa học (course data): {len(bundled)} ví dụ huấn luyện (training examples), "
      f"{len(tasks)} tác vụ (tasks); chẳng hạn (e.g.):")
print(bundled[0])

# %% [markdown]
# ## 2. Mẫu lời nhắc (The prompt template)
#
# Mô hình chỉ đọc một đoạn văn bản liền mạch. Mẫu (template) biến câu lệnh và ngữ cảnh bổ trợ thành
# một **lời nhắc (prompt)** kết thúc bằng một tín hiệu (`### Response:`), ngay sau đó là phần phản
# hồi. minift có sẵn mẫu của Stanford Alpaca và một biến thể gọn (`compact`) với cùng các tiêu đề
# nhưng bỏ câu dẫn nhập.
#
# > **English.** The model reads one flat text. A template turns instruction and input into a
# > **prompt** ending with a cue (`### Response:`) after which the response follows. minift ships
# > the Stanford Alpaca template and a compact variant with the same headers and no preamble
# > sentence.

# %%
print(data.format_prompt(example, "alpaca") + example.response)
print("-" * 60)
print(data.format_prompt(example, "compact") + example.response)

# %% [markdown]
# ## 3. Mã token và mặt nạ mất mát (Token ids and the loss mask), đặt cạnh nhau
#
# `data.encode` tách token phần lời nhắc và phần phản hồi *riêng rẽ* (để ranh giới giữa hai phần
# được chính xác) và trả về
#
#     ids       = [BOS] + prompt ids + response ids + [EOS]
#     loss_mask = [ 0 ] + 0 ... 0    + 1 ... 1      + [ 1 ]
#
# Token EOS ở cuối cũng được tính vào hàm mất mát: đó là cách mô hình học *dừng lại* sau khi trả
# lời. Bộ tách token (tokenizer) là của khóa học (`data/samples/tokenizer.model`).
#
# > **English.** `data.encode` tokenizes prompt and response *separately* (so the boundary is
# > exact) and returns the ids and loss mask above. The closing EOS is trained on: that is how the
# > model learns to *stop* after answering. The tokenizer is the course's
# > (`data/samples/tokenizer.model`).

# %%
tok = default_tokenizer()

enc = data.encode(example, tok, max_len=256, template="compact")
print(f"{len(enc.ids)} mã token (ids), {int(enc.loss_mask.sum())} mã trong số đó nằm trong hàm mất mát "
      f"(of them in the loss)\n")
print(f"{'vị trí (pos)':>12} {'id':>5} {'mặt nạ (mask)':>13}  mảnh (piece)")
for pos, (i, m) in enumerate(zip(enc.ids, enc.loss_mask)):
    print(f"{pos:12d} {int(i):5d} {int(m):13d}  {tok.id_to_piece(int(i))!r}")

# %% [markdown]
# Mô hình dự đoán token *kế tiếp*, nên các cặp huấn luyện bị dịch đi một vị trí:
# `tokens = ids[:-1]`, `targets = ids[1:]`, `loss_mask = mask[1:]` (`data.next_token_shift`, nơi
# duy nhất minift dịch chuỗi). Token đầu tiên của phản hồi được dự đoán *từ token cuối cùng của lời
# nhắc*, và nó nằm trong hàm mất mát; BOS không bao giờ là token đích (target). Sau đó `data.batches`
# đệm (pad) các hàng tới một độ dài cố định theo nhóm độ dài (bucket) — phần đệm có mặt nạ bằng 0 —
# để bước huấn luyện biên dịch bằng jit chỉ phải biên dịch một lần cho mỗi nhóm.
#
# > **English.** The model predicts the *next* token, so training pairs are shifted by one (as
# > above; `data.next_token_shift` is the only place minift shifts). The first response token is
# > predicted *from the last prompt token*, and it is in the loss; BOS is never a target.
# > `data.batches` then pads rows to a fixed length bucket (padding has mask 0) so that the
# > jit-compiled step compiles once per bucket.

# %%
tokens, targets, shifted_mask = data.next_token_shift(enc)
first = int(np.argmax(shifted_mask))  # vị trí đầu tiên có đích là token phản hồi (first response target)
print(f"{'t':>3}  {'token vào (input)':<22} {'token đích (target)':<22} mặt nạ (mask)")
for t in range(max(first - 3, 0), min(first + 4, len(tokens))):
    print(f"{t:3d}  {tok.id_to_piece(int(tokens[t]))!r:<22} {tok.id_to_piece(int(targets[t]))!r:<22} "
          f"{int(shifted_mask[t])}")

# %% [markdown]
# ## 4. Hàm mất mát NLL có che (The masked NLL loss): tính tay và bằng `sft_loss`
#
# Ký hiệu $m_{b,t}\in\{0,1\}$ là mặt nạ mất mát và $z_{b,t}\in\mathbb{R}^V$ là logits mà mô hình cho
# ở vị trí $t$ của hàng $b$. Khi đó $\log P_\theta(x\mid\cdot) = z_{x} - \log\sum_v e^{z_v}$
# (log-softmax) và
#
# $$\mathcal{L}_{SFT}(\theta) = -\frac{1}{N}\sum_{i=1}^{N}\log P_\theta(y_i\mid I,y_{<i})
#  = -\frac{\sum_{b,t} m_{b,t}\,\log P_\theta(\text{target}_{b,t}\mid \text{tokens}_{b,\le t})}{\sum_{b,t} m_{b,t}},$$
#
# với $N=\sum m$ là số token phản hồi trong batch. Dưới đây: một batch gồm ba ví dụ lấy từ
# `data.batches`, logits của một mô hình nhỏ vừa khởi tạo (chưa huấn luyện), hàm mất mát viết bằng
# một vòng lặp NumPy thuần với float64, và `loss.sft_loss`.
#
# > **English.** Write $m_{b,t}$ for the loss mask and $z_{b,t}$ for the logits the model gives at
# > position $t$ of row $b$; the loss is then the equation above, $N=\sum m$ being the number of
# > response tokens in the batch. Below: a batch of three examples from `data.batches`, logits from
# > a fresh (untrained) tiny model, the loss as a plain NumPy loop in float64, and `loss.sft_loss`.

# %%
examples = [
    example,
    data.Example("Viết hoa câu sau.", "paris là thủ đô của pháp.", "Paris là thủ đô của Pháp."),
    data.Example("Write a short answer to the question.", "What sat on the mat?", "The cat."),
]
encoded, stats = data.encode_dataset(examples, tok, max_len=256, template="compact")
length = max(len(e.ids) for e in encoded) - 1
bucket = 8 * -(-length // 8)  # một nhóm, bội của 8, đủ dài cho mọi hàng (one bucket, a multiple of 8, fits every row)
batch = next(data.batches(encoded, batch_size=3, buckets=(bucket,), pad_id=tok.pad_id, seed=0, shuffle=False))
print(stats)
print("kích thước batch (batch shapes):", {name: arr.shape for name, arr in batch._asdict().items()})

config = get_config("tiny" if SMALL else "course", vocab_size=tok.vocab_size)
params = model.init_params(config, jax.random.PRNGKey(0))
logits = jax.jit(model.forward, static_argnames="config")(params, jnp.asarray(batch.tokens), config=config)  # (B, T, V)

# Tính tay, float64, từng vị trí một (by hand, float64, one position at a time).
z = np.asarray(logits, np.float64)
total, n = 0.0, 0.0
for b in range(z.shape[0]):
    for t in range(z.shape[1]):
        if batch.loss_mask[b, t] == 0:
            continue  # lời nhắc hoặc phần đệm: nhân với 0 (prompt or padding: multiplied by 0, §3.2)
        log_p = z[b, t, batch.targets[b, t]] - (z[b, t].max() + np.log(np.exp(z[b, t] - z[b, t].max()).sum()))
        total, n = total - log_p, n + 1
by_hand = total / n

with_minift = loss.sft_loss(logits, jnp.asarray(batch.targets), jnp.asarray(batch.loss_mask))
print(f"N = {int(n)} token phản hồi (response tokens)")
print(f"tính tay (by hand, float64): {by_hand:.7f}")
print(f"loss.sft_loss:               {float(with_minift):.7f}   "
      f"|chênh lệch (difference)| = {abs(by_hand - float(with_minift)):.1e}")
print(f"log V (đoán đều / a uniform guess): {np.log(config.vocab_size):.7f}")

# %% [markdown]
# Có hai cách lấy trung bình trên một batch: `reduction="token"` (mặc định, dùng ở trên) chia cho
# toàn bộ $N$ token phản hồi của batch, nên mọi token có trọng số như nhau; `reduction="sequence"`
# lấy trung bình các giá trị trung bình của từng ví dụ, nên các token của một câu trả lời ngắn có
# trọng số lớn hơn. Hai cách cho kết quả khác nhau ngay khi các phản hồi dài ngắn khác nhau. minift
# huấn luyện với `"token"`: đó chính là $\frac1N\sum_i$ của bài viết, áp dụng trên cả batch, và nó
# không phụ thuộc vào cách các ví dụ được gom thành (micro-)batch.
#
# > **English.** Two ways to average over a batch: `reduction="token"` (the default, used above)
# > divides by all $N$ response tokens of the batch, so every token weighs the same;
# > `reduction="sequence"` averages each example's mean, so a short answer's tokens weigh more.
# > They differ as soon as the responses have different lengths. minift trains with `"token"`: it
# > is the article's $\frac1N\sum_i$ read over the batch, and it does not depend on how examples
# > are grouped into (micro-)batches.

# %%
lengths = batch.loss_mask.sum(axis=1)
for reduction in ("token", "sequence"):
    value = loss.sft_loss(logits, jnp.asarray(batch.targets), jnp.asarray(batch.loss_mask), reduction=reduction)
    print(f"reduction={reduction!r:<11} L = {float(value):.6f}")
print("độ dài phản hồi, tính cả EOS (response lengths in tokens, incl. EOS):", lengths.astype(int).tolist())


# %% [markdown]
# ## 5. Gradient: lời nhắc không gửi gradient nào (the prompt sends none)
#
# Lấy đạo hàm của hàm mất mát theo logits, ta được tại từng vị trí
#
# $$\frac{\partial\mathcal{L}_{SFT}}{\partial z_{b,t}} = \frac{m_{b,t}}{N}\big(\operatorname{softmax}(z_{b,t}) - \operatorname{onehot}(\text{target}_{b,t})\big),$$
#
# nên tại mọi vị trí có $m_{b,t}=0$ — lời nhắc và phần đệm — gradient bằng *đúng* 0: không có gì
# đẩy mô hình tái tạo lại câu lệnh. Để đối chiếu, hình bên phải dùng hàm mất mát không che (`"lm"`,
# lời nhắc + phản hồi: thí nghiệm đối chứng (ablation) của §3.2), ở đó mọi vị trí thật đều gửi
# gradient. (Lời nhắc vẫn *có vai trò*: các vị trí của phản hồi chú ý (attend) tới nó, nên các
# trọng số đọc lời nhắc vẫn được huấn luyện — nhưng chỉ thông qua hàm mất mát của phần phản hồi.)
#
# > **English.** Differentiating the loss with respect to the logits gives, position by position,
# > the equation above, so at every position with $m_{b,t}=0$ — the prompt and the padding — the
# > gradient is *exactly* zero: nothing pushes the model to reproduce the instruction. For
# > contrast, the right panel uses the unmasked loss (`"lm"`, prompt + response: the §3.2
# > ablation), where every real position sends gradient. (The prompt still *matters*: response
# > positions attend to it, so the weights that read the prompt are trained — through the
# > response's loss only.)

# %%
def grad_norm_per_position(mask):  # |dL/dz_{b,t}|: (B, T)
    g = jax.grad(loss.sft_loss)(logits, jnp.asarray(batch.targets), jnp.asarray(mask))  # (B, T, V)
    return np.asarray(jnp.linalg.norm(g, axis=-1))


masked = grad_norm_per_position(batch.loss_mask)
unmasked = grad_norm_per_position(train.real_target_mask(jnp.asarray(batch.loss_mask)))
prompt_or_pad = batch.loss_mask == 0
print("|gradient| lớn nhất ở vị trí lời nhắc/đệm, mất mát có che "
      "(largest at a prompt/padding position, masked loss):", masked[prompt_or_pad].max())
print("|gradient| nhỏ nhất ở vị trí phản hồi, mất mát có che     "
      "(smallest at a response position, masked loss):     ", masked[~prompt_or_pad].min())

fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
titles = ("mất mát SFT có che (masked SFT loss, §3.2)", "không che (unmasked): lời nhắc + phản hồi (prompt + response)")
for ax, grid, title in zip(axes, (masked, unmasked), titles):
    im = ax.imshow(grid, aspect="auto", cmap="magma", interpolation="nearest")
    ax.contour(batch.loss_mask, levels=[0.5], colors="cyan", linewidths=1)  # vùng phản hồi (the response region)
    ax.set(title=title, xlabel="vị trí t (position t)", ylabel="ví dụ b (example b)", yticks=range(grid.shape[0]))
    fig.colorbar(im, ax=ax, label=r"$\|\partial\mathcal{L}/\partial z_{b,t}\|$")
fig.tight_layout()
plt.close(fig)  # hiển thị một lần, làm giá trị của ô (displayed once, as the cell's value)
fig

# %% [markdown]
# ## Tóm tắt (Summary)
#
# * Một mẫu dữ liệu (§2.1) gồm Câu lệnh + Ngữ cảnh bổ trợ + Phản hồi mong đợi; mẫu lời nhắc nối
#   chúng thành một đoạn văn bản, và `data.encode` cho ra các mã token cùng một mặt nạ mất mát bằng
#   1 đúng trên phần phản hồi và token EOS ở cuối.
# * `loss.sft_loss` là hàm mất mát NLL có che của §3.2 — cho đúng con số của vòng lặp tính tay bằng
#   float64 — được tính bằng log-softmax và lấy trung bình trên các token phản hồi của batch.
# * Gradient bằng đúng 0 tại mọi vị trí của lời nhắc: chỉ phần phản hồi dạy mô hình. Notebook 03
#   biến gradient này thành các bước cập nhật (Gradient Descent, AdamW).
#
# > **English.**
# > * An example (§2.1) is Instruction + Input + Target Output; the template joins them into one
# >   text, and `data.encode` gives its ids and a loss mask that is 1 exactly on the response and
# >   the closing EOS.
# > * `loss.sft_loss` is the masked NLL of §3.2 — the same number as the float64 loop by hand —
# >   computed with log-softmax, averaged over the batch's response tokens.
# > * The gradient is exactly zero at every prompt position: only the response teaches. Notebook
# >   03 turns this gradient into updates (gradient descent, AdamW).
