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
# # 02 · Dữ liệu chỉ dẫn và Hàm Mất Mát NLL che (Instruction data and the masked NLL loss) — §2.1, §3.2
#
# §2.1 of the article says what an instruction-tuning example is: a **Câu lệnh (Instruction)** —
# what to do —, an optional **Ngữ cảnh bổ trợ (Input)** — the text to work on —, and the
# **Phản hồi mong đợi (Target Output)** — the answer whose likelihood we maximise. §3.2 says how
# it is trained: the NLL of the response given the instruction,
#
# $$\mathcal{L}_{SFT}(\theta) = -\frac{1}{N}\sum_{i=1}^{N} \log P_\theta(y_i \mid I, y_{<i}),$$
#
# with the loss on the prompt tokens multiplied by 0 (*che*, masking), so that only the response
# sends gradient. This notebook follows one example from text to template, to token ids and loss
# mask, to the loss computed by hand and by `minift.loss.sft_loss`, and finally to the gradient,
# which is exactly zero on the prompt.
#
# Everything comes from `minift` (`minift.data`, `minift.tokenizer`, `minift.loss`); nothing is
# redefined here. `MINIFT_NOTEBOOK_SMALL=1` selects a smaller setting (used by the test suite).

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
print("jax", jax.__version__, "| small setting" if SMALL else "| full setting")

# %% [markdown]
# ## 1. Một ví dụ: Câu lệnh (Instruction), Ngữ cảnh bổ trợ (Input), Phản hồi mong đợi (Target Output)
#
# `minift.data.Example` holds the three parts of §2.1 (plus bookkeeping fields). Here is a
# translation example, the very task §1 says a base model fails at: asked to translate, it just
# keeps writing English.

# %%
example = data.Example(
    instruction="Dịch câu sau sang tiếng Việt.",  # Câu lệnh: what to do
    input="The cat sat on the mat.",  # Ngữ cảnh bổ trợ: the text to work on (may be empty)
    response="Con mèo ngồi trên tấm thảm.",  # Phản hồi mong đợi: what the model must learn to say
)
for field in ("instruction", "input", "response"):
    print(f"{field:>11}: {getattr(example, field)}")

bundled = course_examples("train")  # the course data in data/samples/instructions.jsonl
tasks = sorted({e.task for e in bundled})
print(f"\nthe course data has {len(bundled)} training examples of {len(tasks)} tasks, e.g.:")
print(bundled[0])

# %% [markdown]
# ## 2. Mẫu lời nhắc (the prompt template)
#
# The model reads one flat text. A template turns instruction and input into a **prompt** ending
# with a cue (`### Response:`) after which the response follows. minift ships the Stanford Alpaca
# template and a compact variant with the same headers and no preamble sentence.

# %%
print(data.format_prompt(example, "alpaca") + example.response)
print("-" * 60)
print(data.format_prompt(example, "compact") + example.response)

# %% [markdown]
# ## 3. Token ids and the loss mask, side by side
#
# `data.encode` tokenizes prompt and response *separately* (so the boundary is exact) and returns
#
#     ids       = [BOS] + prompt ids + response ids + [EOS]
#     loss_mask = [ 0 ] + 0 ... 0    + 1 ... 1      + [ 1 ]
#
# The closing EOS is trained on: that is how the model learns to *stop* after answering. The
# tokenizer is the course's (`data/samples/tokenizer.model`).

# %%
tok = default_tokenizer()

enc = data.encode(example, tok, max_len=256, template="compact")
print(f"{len(enc.ids)} ids, {int(enc.loss_mask.sum())} of them in the loss\n")
print(f"{'pos':>4} {'id':>5} {'mask':>4}  piece")
for pos, (i, m) in enumerate(zip(enc.ids, enc.loss_mask)):
    print(f"{pos:4d} {int(i):5d} {int(m):4d}  {tok.id_to_piece(int(i))!r}")

# %% [markdown]
# The model predicts the *next* token, so training pairs are shifted by one:
# `tokens = ids[:-1]`, `targets = ids[1:]`, `loss_mask = mask[1:]` (`data.next_token_shift`,
# the only place minift shifts). The first response token is predicted *from the last prompt
# token*, and it is in the loss; BOS is never a target. `data.batches` then pads rows to a fixed
# length bucket (padding has mask 0) so that the jit-compiled step compiles once per bucket.

# %%
tokens, targets, shifted_mask = data.next_token_shift(enc)
first = int(np.argmax(shifted_mask))  # first position whose target is a response token
print(f"{'t':>3}  {'input token':<16} {'target token':<16} mask")
for t in range(max(first - 3, 0), min(first + 4, len(tokens))):
    print(f"{t:3d}  {tok.id_to_piece(int(tokens[t]))!r:<16} {tok.id_to_piece(int(targets[t]))!r:<16} {int(shifted_mask[t])}")

# %% [markdown]
# ## 4. Hàm Mất Mát NLL che (the masked NLL), by hand and with `sft_loss`
#
# Write $m_{b,t}\in\{0,1\}$ for the loss mask and $z_{b,t}\in\mathbb{R}^V$ for the logits the model
# gives at position $t$ of row $b$. Then $\log P_\theta(x\mid\cdot) = z_{x} - \log\sum_v e^{z_v}$
# (log-softmax) and
#
# $$\mathcal{L}_{SFT}(\theta) = -\frac{1}{N}\sum_{i=1}^{N}\log P_\theta(y_i\mid I,y_{<i})
#  = -\frac{\sum_{b,t} m_{b,t}\,\log P_\theta(\text{target}_{b,t}\mid \text{tokens}_{b,\le t})}{\sum_{b,t} m_{b,t}},$$
#
# $N=\sum m$ being the number of response tokens in the batch. Below: a batch of three examples
# from `data.batches`, logits from a fresh (untrained) tiny model, the loss as a plain NumPy loop in
# float64, and `loss.sft_loss`.

# %%
examples = [
    example,
    data.Example("Viết hoa câu sau.", "paris là thủ đô của pháp.", "Paris là thủ đô của Pháp."),
    data.Example("Write a short answer to the question.", "What sat on the mat?", "The cat."),
]
encoded, stats = data.encode_dataset(examples, tok, max_len=256, template="compact")
length = max(len(e.ids) for e in encoded) - 1
bucket = 8 * -(-length // 8)  # one bucket, a multiple of 8, long enough for every row
batch = next(data.batches(encoded, batch_size=3, buckets=(bucket,), pad_id=tok.pad_id, seed=0, shuffle=False))
print(stats)
print("batch shapes:", {name: arr.shape for name, arr in batch._asdict().items()})

config = get_config("tiny" if SMALL else "course", vocab_size=tok.vocab_size)
params = model.init_params(config, jax.random.PRNGKey(0))
logits = jax.jit(model.forward, static_argnames="config")(params, jnp.asarray(batch.tokens), config=config)  # (B, T, V)

# By hand, float64, one position at a time.
z = np.asarray(logits, np.float64)
total, n = 0.0, 0.0
for b in range(z.shape[0]):
    for t in range(z.shape[1]):
        if batch.loss_mask[b, t] == 0:
            continue  # prompt or padding: multiplied by 0 (§3.2)
        log_p = z[b, t, batch.targets[b, t]] - (z[b, t].max() + np.log(np.exp(z[b, t] - z[b, t].max()).sum()))
        total, n = total - log_p, n + 1
by_hand = total / n

with_minift = loss.sft_loss(logits, jnp.asarray(batch.targets), jnp.asarray(batch.loss_mask))
print(f"N = {int(n)} response tokens")
print(f"by hand (float64): {by_hand:.7f}")
print(f"loss.sft_loss:     {float(with_minift):.7f}   |difference| = {abs(by_hand - float(with_minift)):.1e}")
print(f"log V (a uniform guess): {np.log(config.vocab_size):.7f}")

# %% [markdown]
# Two ways to average over a batch: `reduction="token"` (the default, used above) divides by
# all $N$ response tokens of the batch, so every token weighs the same; `reduction="sequence"`
# averages each example's mean, so a short answer's tokens weigh more. They differ as soon as the
# responses have different lengths. minift trains with `"token"`: it is the article's
# $\frac1N\sum_i$ read over the batch, and it does not depend on how examples are grouped into
# (micro-)batches.

# %%
lengths = batch.loss_mask.sum(axis=1)
for reduction in ("token", "sequence"):
    value = loss.sft_loss(logits, jnp.asarray(batch.targets), jnp.asarray(batch.loss_mask), reduction=reduction)
    print(f"reduction={reduction!r:<11} L = {float(value):.6f}")
print("response lengths (tokens incl. EOS):", lengths.astype(int).tolist())


# %% [markdown]
# ## 5. Gradient: the prompt sends none
#
# Differentiating the loss with respect to the logits gives, position by position,
#
# $$\frac{\partial\mathcal{L}_{SFT}}{\partial z_{b,t}} = \frac{m_{b,t}}{N}\big(\operatorname{softmax}(z_{b,t}) - \operatorname{onehot}(\text{target}_{b,t})\big),$$
#
# so at every position with $m_{b,t}=0$ — the prompt and the padding — the gradient is *exactly*
# zero: nothing pushes the model to reproduce the instruction. For contrast, the right panel uses
# the unmasked loss (`"lm"`, prompt + response: the §3.2 ablation), where every real position
# sends gradient. (The prompt still *matters*: response positions attend to it, so the weights that
# read the prompt are trained — through the response's loss only.)

# %%
def grad_norm_per_position(mask):  # |dL/dz_{b,t}|: (B, T)
    g = jax.grad(loss.sft_loss)(logits, jnp.asarray(batch.targets), jnp.asarray(mask))  # (B, T, V)
    return np.asarray(jnp.linalg.norm(g, axis=-1))


masked = grad_norm_per_position(batch.loss_mask)
unmasked = grad_norm_per_position(train.real_target_mask(jnp.asarray(batch.loss_mask)))
prompt_or_pad = batch.loss_mask == 0
print("largest |gradient| at a prompt/padding position, masked loss:", masked[prompt_or_pad].max())
print("smallest |gradient| at a response position, masked loss:  ", masked[~prompt_or_pad].min())

fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
for ax, grid, title in zip(axes, (masked, unmasked), ("masked SFT loss (§3.2)", "unmasked: prompt + response")):
    im = ax.imshow(grid, aspect="auto", cmap="magma", interpolation="nearest")
    ax.contour(batch.loss_mask, levels=[0.5], colors="cyan", linewidths=1)  # the response region
    ax.set(title=title, xlabel="position t", ylabel="example b", yticks=range(grid.shape[0]))
    fig.colorbar(im, ax=ax, label=r"$\|\partial\mathcal{L}/\partial z_{b,t}\|$")
fig.tight_layout()
plt.close(fig)  # displayed once, as the cell's value
fig

# %% [markdown]
# ## Tóm tắt (summary)
#
# * An example (§2.1) is Câu lệnh + Ngữ cảnh bổ trợ + Phản hồi mong đợi; the template joins them
#   into one text, and `data.encode` gives its ids and a loss mask that is 1 exactly on the
#   response and the closing EOS.
# * `loss.sft_loss` is the masked NLL of §3.2 — the same number as the float64 loop by hand —
#   computed with log-softmax, averaged over the batch's response tokens.
# * The gradient is exactly zero at every prompt position: only the response teaches. Notebook 03
#   turns this gradient into updates (gradient descent, AdamW).
