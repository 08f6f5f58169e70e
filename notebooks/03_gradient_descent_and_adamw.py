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
# # 03 · Tối ưu hóa bằng Gradient Descent và Adam/AdamW (Optimisation) — §3.3
#
# Mục 3.2 cho ta một đại lượng cần làm cho nhỏ đi: hàm mất mát (loss) NLL có che (masked)
# $\mathcal{L}_{SFT}(\theta)$. Mục 3.3 cho biết cách làm: dịch chuyển các tham số (weights) $\theta$
# một chút *ngược* hướng gradient, lặp đi lặp lại — đó là công thức Gradient Descent của bài viết,
#
# $$\theta_{k+1} = \theta_k - \eta \cdot \nabla_\theta \mathcal{L}_{SFT},$$
#
# trong đó $\eta$ là hệ số tốc độ học (learning rate). Trong thực tế, bài viết nêu tên Adam/AdamW,
# các thuật toán tối ưu có động lượng (momentum): một dạng Gradient Descent giữ trung bình trượt của
# các gradient và co giãn bước đi của từng tham số theo độ lớn gradient của chính nó. Notebook này
#
# 1. tính tay một bước Gradient Descent trên mô hình Transformer nhỏ và quan sát hàm mất mát giảm,
# 2. viết AdamW thành đúng các phương trình của nó (`minift.optim.adamw_update`) và đối chiếu với
#    `optax.adamw`,
# 3. dựng bộ tối ưu (optimizer) mà minift dùng để huấn luyện (`minift.optim.make_optimizer`: cắt
#    gradient, lịch tốc độ học khởi động + cosine, suy giảm trọng số chỉ trên các ma trận),
# 4. huấn luyện vài chục bước với bước huấn luyện được biên dịch bằng jit
#    (`minift.train.make_train_step`) và vẽ đường cong hàm mất mát của Gradient Descent thuần và
#    của AdamW.
#
# Mọi thứ đều lấy từ `minift`; ở đây không định nghĩa lại gì. `MINIFT_NOTEBOOK_SMALL=1` chọn cấu hình
# nhỏ hơn, nhanh hơn (bộ kiểm thử dùng cấu hình này).
#
# > **English.** §3.2 gave us a number to make small, the masked NLL $\mathcal{L}_{SFT}(\theta)$.
# > §3.3 says how: move the weights $\theta$ a little *against* the gradient, again and again (the
# > equation above), where $\eta$ is the learning rate. In practice the article names Adam/AdamW, a
# > gradient descent that keeps a running mean of the gradients (momentum) and rescales every
# > weight by its own gradient size. This notebook
# >
# > 1. takes one gradient-descent step by hand on the tiny Transformer and watches the loss go down,
# > 2. writes AdamW as its equations (`minift.optim.adamw_update`) and checks it against
# >    `optax.adamw`,
# > 3. builds the optimizer minift trains with (`minift.optim.make_optimizer`: clipping, warmup +
# >    cosine schedule, weight decay on matrices only),
# > 4. trains a few dozen steps with the jit-compiled train step (`minift.train.make_train_step`)
# >    and plots the loss curves of plain gradient descent and AdamW.
# >
# > Everything comes from `minift`; nothing is redefined here. `MINIFT_NOTEBOOK_SMALL=1` selects a
# > smaller, faster setting (used by the test suite).

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
import optax

from minift import loss, model, optim, train
from minift.config import get_config
from minift.data import Batch

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
STEPS = 25 if SMALL else 80  # số bước huấn luyện ở mục 4 (training steps in section 4)
print("jax", jax.__version__, "| optax", optax.__version__,
      "| cấu hình nhỏ (small setting)" if SMALL else "| cấu hình đầy đủ (full setting)")

# %% [markdown]
# ## 0. Một batch đồ chơi (A toy batch) và hàm mất mát $\mathcal{L}_{SFT}$
#
# Một batch cố định gồm 4 chuỗi token ngẫu nhiên, mỗi chuỗi chia thành một phần "lời nhắc" (prompt,
# mặt nạ mất mát bằng 0) và một phần "phản hồi" (response, mặt nạ bằng 1), đúng các kích thước mà
# `minift.data.batches` tạo ra: `tokens (B, T)`, `targets (B, T)` = tokens dịch đi một vị trí,
# `loss_mask (B, T)`. Hàm mất mát là NLL có che của §3.2,
#
# $$\mathcal{L}_{SFT}(\theta) = -\frac{1}{N}\sum_{i=1}^{N} \log P_\theta(y_i \mid I, y_{<i}),$$
#
# do `minift.loss.sft_loss` tính từ logits của mô hình.
#
# > **English.** A fixed batch of 4 random token sequences, each split into a "prompt" (loss mask 0)
# > and a "response" (loss mask 1), exactly the shapes `minift.data.batches` produces:
# > `tokens (B, T)`, `targets (B, T)` = tokens shifted by one, `loss_mask (B, T)`. The loss is the
# > masked NLL of §3.2 (above), computed by `minift.loss.sft_loss` from the model's logits.

# %%
config = get_config("tiny")
params0 = model.init_params(config, jax.random.PRNGKey(0))

B, T = 4, 16
rng = np.random.default_rng(0)
ids = rng.integers(3, config.vocab_size, size=(B, T + 1)).astype(np.int32)  # (B, T+1)
prompt_len = np.array([5, 7, 4, 6])
loss_mask = (np.arange(T)[None, :] >= prompt_len[:, None] - 1).astype(np.float32)  # (B, T)
batch = Batch(tokens=ids[:, :-1], targets=ids[:, 1:], loss_mask=loss_mask)  # dịch một vị trí (the one-position shift)


def sft_objective(params):
    logits = model.forward(params, jnp.asarray(batch.tokens), config)  # (B, T, V)
    return loss.sft_loss(logits, jnp.asarray(batch.targets), jnp.asarray(batch.loss_mask))


value_and_grad = jax.jit(jax.value_and_grad(sft_objective))
L0, grads0 = value_and_grad(params0)
print(f"N = {int(loss_mask.sum())} token phản hồi (response tokens); L_SFT = {float(L0):.4f} "
      f"(đoán đều sẽ cho / a uniform guess would give log V = {np.log(config.vocab_size):.4f})")

# %% [markdown]
# ## 1. Gradient Descent: một bước tính tay (one step by hand)
#
# $$\theta_{k+1} = \theta_k - \eta \cdot \nabla_\theta \mathcal{L}_{SFT}$$
#
# `jax.grad` trả về $\nabla_\theta\mathcal{L}_{SFT}$ dưới dạng một cây (tree) có cùng cấu trúc với
# các tham số; `optim.gradient_descent` áp dụng phương trình cho từng mảng của cây. Với $\eta$ đủ
# nhỏ, hàm mất mát phải giảm, vì theo xấp xỉ bậc nhất
# $\mathcal{L}(\theta-\eta g) \approx \mathcal{L}(\theta) - \eta\lVert g\rVert^2$.
#
# > **English.** `jax.grad` gives $\nabla_\theta\mathcal{L}_{SFT}$ as a tree with the same shape as
# > the parameters; `optim.gradient_descent` applies the equation to every array of the tree. For a
# > small enough $\eta$ the loss must go down, since to first order
# > $\mathcal{L}(\theta-\eta g) \approx \mathcal{L}(\theta) - \eta\lVert g\rVert^2$.

# %%
g_norm2 = sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(grads0))
print(f"||grad||^2 = {g_norm2:.4f}")
for lr in (0.01, 0.1, 1.0, 10.0):
    params1 = optim.gradient_descent(params0, grads0, lr)
    L1, _ = value_and_grad(params1)
    print(f"eta = {lr:5}: L {float(L0):.4f} -> {float(L1):.4f}   "
          f"(dự đoán bậc nhất / first-order prediction {float(L0) - lr * g_norm2:.4f})")

# %% [markdown]
# $\eta$ càng nhỏ thì hàm mất mát càng bám sát dự đoán bậc nhất; $\eta$ lớn thì bước đi vượt quá
# đích (overshoot): η = 10 giảm được ít hơn η = 1, vì dự đoán chỉ đúng ở gần $\theta_k$. Chọn $\eta$
# là khó khăn chính của Gradient Descent thuần: chỉ một cỡ bước chung cho hàng triệu tham số, trong
# khi gradient của chúng chênh nhau nhiều bậc độ lớn.
#
# > **English.** The smaller $\eta$, the closer the loss follows the first-order prediction; a
# > large one overshoots (η = 10 gains less than η = 1) — the prediction is only valid close to
# > $\theta_k$. Choosing $\eta$ is the main difficulty of plain gradient descent: one global step
# > size for millions of weights whose gradients differ by orders of magnitude.

# %% [markdown]
# ## 2. Adam/AdamW: các phương trình, tính tay và trong optax (the equations, by hand and in optax)
#
# AdamW (Loshchilov & Hutter 2019) giữ hai trung bình trượt cho mỗi tham số, với
# $g_k = \nabla_\theta\mathcal{L}(\theta_{k-1})$:
#
# $$\begin{aligned}
# m_k &= \beta_1 m_{k-1} + (1-\beta_1)\,g_k &&\text{(momentum: mean gradient)}\\
# v_k &= \beta_2 v_{k-1} + (1-\beta_2)\,g_k^2 &&\text{(mean squared gradient)}\\
# \hat m_k &= \frac{m_k}{1-\beta_1^k},\quad \hat v_k = \frac{v_k}{1-\beta_2^k} &&\text{(bias correction)}\\
# \theta_k &= \theta_{k-1} - \eta\Big(\frac{\hat m_k}{\sqrt{\hat v_k}+\epsilon} + \lambda\,\theta_{k-1}\Big) &&\text{(step + decoupled weight decay)}
# \end{aligned}$$
#
# Lần lượt từng dòng: động lượng (trung bình của gradient), trung bình của bình phương gradient,
# hiệu chỉnh độ lệch (bias correction), và bước cập nhật cộng với suy giảm trọng số tách rời
# (decoupled weight decay). Chia cho $\sqrt{\hat v_k}$ giúp mỗi tham số có bước đi cỡ $\eta$, bất
# kể gradient của nó lớn hay nhỏ; hiệu chỉnh độ lệch bù lại việc khởi đầu từ $m_0 = v_0 = 0$; số
# hạng suy giảm $\lambda\theta$ được cộng vào bước đi chứ không cộng vào gradient, nên nó không bị
# chia cho $\sqrt{\hat v}$ (đó chính là chữ "W"). Dưới đây, `optim.adamw_update` (các phương trình)
# và `optax.adamw` (thứ được dùng khi huấn luyện) nhận cùng các gradient trên mô hình nhỏ; tham số
# của hai bên phải khớp nhau tới sai số làm tròn float32.
#
# > **English.** AdamW keeps two running averages per weight (the equations above). Dividing by
# > $\sqrt{\hat v_k}$ gives every weight a step of about $\eta$ whatever its gradient's scale; the
# > bias correction undoes the start at $m_0 = v_0 = 0$; the decay $\lambda\theta$ is added to the
# > step, not to the gradient, so it is not divided by $\sqrt{\hat v}$ (that is the "W"). Below,
# > `optim.adamw_update` (the equations) and `optax.adamw` (what training uses) take the same
# > gradients on the tiny model; their parameters should agree to float32 rounding.

# %%
lr, wd = 1e-3, 0.1
tx = optax.adamw(lr, weight_decay=wd)  # mặc định của optax (optax's defaults): b1=0.9, b2=0.999, eps=1e-8


@jax.jit
def both_steps(ours, state, theirs, opt_state):
    _, g = jax.value_and_grad(sft_objective)(ours)  # cả hai nhận cùng gradient (the same gradients go to both)
    ours, state = optim.adamw_update(ours, g, state, lr, weight_decay=wd)
    updates, opt_state = tx.update(g, opt_state, theirs)
    return ours, state, optax.apply_updates(theirs, updates), opt_state


ours, state = params0, optim.adamw_init(params0)
theirs, opt_state = params0, tx.init(params0)
for k in range(1, 11):
    ours, state, theirs, opt_state = both_steps(ours, state, theirs, opt_state)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)))
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(params0)))
    print(f"bước (step) {k:2d}: L = {float(value_and_grad(ours)[0]):.4f}   "
          f"max |theta_ours - theta_optax| = {diff:.1e}   "
          f"(tham số đã dịch chuyển tới / weights moved up to {moved:.1e})")

# %% [markdown]
# Chênh lệch chỉ ở mức sai số làm tròn float32 (khoảng 1e-8 ở đây) trong khi các tham số dịch
# chuyển cỡ 1e-2: các phương trình viết tay *chính là* AdamW của optax. Hãy để ý thêm bước đầu tiên:
# mỗi tham số dịch chuyển gần như đúng bằng $\eta$, vì $\hat m_1/\sqrt{\hat v_1} = g_1/|g_1| = \pm 1$.
#
# > **English.** The difference stays at the level of float32 rounding (~1e-8 here) while the
# > weights move by ~1e-2: the hand-written equations *are* optax's AdamW. Note also the first
# > step: each weight moved by almost exactly $\eta$, since $\hat m_1/\sqrt{\hat v_1} = \pm 1$.

# %% [markdown]
# ## 3. Bộ tối ưu của minift (The optimizer minift trains with): cắt gradient, khởi động + cosine, suy giảm trên ma trận
#
# `optim.make_optimizer` nối ba thành phần quen thuộc của việc tinh chỉnh LLM quanh AdamW:
#
# * **cắt gradient (gradient clipping)**: nếu $\lVert g\rVert > c$, dùng $g \cdot c/\lVert g\rVert$
#   — một batch xấu không thể đẩy các tham số đi quá xa;
# * **lịch tốc độ học (learning-rate schedule)** $\eta_k$: tăng tuyến tính từ 0 trong giai đoạn khởi
#   động (warmup), vì $\hat v$ của Adam còn nhiễu ở những bước đầu, rồi giảm theo đường cosine
#   xuống $0.1\,\eta$;
# * **suy giảm trọng số (weight decay) chỉ trên các ma trận**: các embedding và các phép chiếu
#   (projections) bị suy giảm, còn hệ số khuếch đại (gain) của RMSNorm thì không (suy giảm chúng sẽ
#   kéo thang đo của phép chuẩn hóa về 0).
#
# > **English.** `optim.make_optimizer` chains three standard ingredients of LLM fine-tuning around
# > AdamW: **gradient clipping** (one bad batch cannot throw the weights far); **a learning-rate
# > schedule** $\eta_k$, a linear warmup from 0 (Adam's $\hat v$ is noisy in the first steps) then
# > cosine decay to $0.1\,\eta$; **weight decay on matrices only**: embeddings and projections are
# > decayed, RMSNorm gains are not (decaying them would pull the normalisation's scale towards 0).

# %%
total, warmup = 200, 20
schedule = optim.learning_rate_schedule(3e-3, total_steps=total, warmup_steps=warmup)
ks = np.arange(total + 1)
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.plot(ks, [float(schedule(k)) for k in ks])
ax.set(xlabel="bước k (step k)", ylabel=r"$\eta_k$", title="lịch khởi động + cosine (warmup + cosine schedule)")
plt.close(fig)  # hiển thị một lần, làm giá trị của ô (displayed once, as the cell's value)
print("suy giảm trọng số áp dụng cho (weight decay applies to):", jax.tree.map(bool, optim.decay_mask(params0)))
fig


# %% [markdown]
# ## 4. Huấn luyện (Training): bước huấn luyện biên dịch bằng jit và đường cong hàm mất mát (the loss curve)
#
# `train.make_train_step` đặt lan truyền xuôi (forward), hàm mất mát, gradient, cập nhật của bộ tối
# ưu và việc áp dụng cập nhật vào *một* vùng `jax.jit` duy nhất: nó biên dịch một lần cho kích thước
# batch này, và mỗi lần gọi sau đó là một hàm đã biên dịch, chạy nhanh. Ta huấn luyện batch đồ chơi
# trong vài chục bước bằng Gradient Descent thuần (`optax.sgd`, tức đúng phương trình của §3.3) và
# bằng AdamW của khóa học, từ cùng một điểm xuất phát. Bước huấn luyện *nhường lại* (donate) các
# đầu vào của nó (vùng nhớ của chúng được dùng lại cho đầu ra), nên ta truyền vào các bản sao.
#
# > **English.** `train.make_train_step` puts forward, loss, gradient, optimizer update and apply in
# > *one* `jax.jit` region: it compiles once for this batch shape, and each further call is one
# > fast compiled function. We train the toy batch for a few dozen steps with plain gradient
# > descent (`optax.sgd`, i.e. §3.3's equation exactly) and with the course AdamW, from the same
# > start. The step *donates* its inputs (their buffers are reused for the outputs), so we pass
# > copies.

# %%
def run(optimizer, schedule=None, steps=STEPS):
    step = train.make_train_step(config, optimizer, schedule=schedule)
    params, opt_state = jax.tree.map(jnp.copy, params0), optimizer.init(params0)
    losses = []
    for _ in range(steps):
        params, opt_state, metrics = step(params, opt_state, batch)
        losses.append(float(metrics["loss"]))
    return losses, metrics


gd_losses, _ = run(optax.sgd(1.0))
adamw_tx = optim.make_optimizer(1e-2, total_steps=STEPS, warmup_steps=3)
adamw_losses, last = run(adamw_tx, optim.learning_rate_schedule(1e-2, total_steps=STEPS, warmup_steps=3))
print(f"Gradient Descent (eta=1):                         {gd_losses[0]:.3f} -> {gd_losses[-1]:.3f}")
print(f"AdamW, bộ tối ưu của khóa học (course optimizer): {adamw_losses[0]:.3f} -> {adamw_losses[-1]:.3f}")
print("các chỉ số ở bước cuối (last step's metrics):", {k: round(float(v), 5) for k, v in last.items()})

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(gd_losses, label=r"Gradient Descent, $\eta=1$")
ax.plot(adamw_losses, label=r"AdamW, $\eta=10^{-2}$, khởi động + cosine (warmup + cosine)")
ax.set(xlabel="bước huấn luyện (step)", ylabel=r"$\mathcal{L}_{SFT}$",
       title="học thuộc một batch đồ chơi (memorising one toy batch)")
ax.legend()
plt.close(fig)
fig

# %% [markdown]
# Với cùng số bước, AdamW xuống thấp hơn nhiều so với Gradient Descent dùng một $\eta$ chung duy
# nhất (η = 1 là giá trị tốt nhất trong các giá trị đã thử ở mục 1). Tất nhiên, học thuộc một batch
# không phải là học cách làm theo câu lệnh: notebook 04 huấn luyện trên dữ liệu của khóa học và đo
# hàm mất mát trên các ví dụ được giữ riêng (held-out).
#
# > **English.** With the same number of steps AdamW goes much lower than gradient descent with a
# > single global $\eta$ (η = 1 was the best of those tried in section 1). Memorising one batch is
# > of course not learning to follow instructions: notebook 04 trains on the course data and
# > measures the loss on held-out examples.

# %% [markdown]
# ## Tóm tắt (Summary)
#
# * Công thức cập nhật của §3.3, $\theta_{k+1}=\theta_k-\eta\nabla_\theta\mathcal{L}_{SFT}$, là
#   `optim.gradient_descent`; với $\eta$ nhỏ nó làm giảm hàm mất mát, với $\eta$ lớn nó vượt quá
#   đích.
# * AdamW thêm động lượng, một hệ số co giãn riêng cho từng tham số $1/\sqrt{\hat v}$, hiệu chỉnh
#   độ lệch và suy giảm trọng số tách rời; `optim.adamw_update` viết nó đúng như các phương trình
#   và khớp với `optax.adamw` tới sai số làm tròn float32.
# * Việc huấn luyện dùng `optim.make_optimizer` (cắt gradient + khởi động/cosine + AdamW, suy giảm
#   trên các ma trận) bên trong một bước huấn luyện biên dịch bằng jit (`train.make_train_step`).
#   Notebook 04 dùng nó để tinh chỉnh bằng chỉ thị (instruction tuning) mô hình của khóa học.
#
# > **English.**
# > * §3.3's update is `optim.gradient_descent`; with a small $\eta$ it lowers the loss, with a
# >   large one it overshoots.
# > * AdamW adds momentum, a per-weight scale $1/\sqrt{\hat v}$, bias correction and decoupled
# >   weight decay; `optim.adamw_update` writes it as the equations and matches `optax.adamw` to
# >   float32 rounding.
# > * Training uses `optim.make_optimizer` (clip + warmup/cosine + AdamW, decay on matrices) inside
# >   one jit-compiled step (`train.make_train_step`). Notebook 04 uses it to instruction-tune the
# >   course model.
