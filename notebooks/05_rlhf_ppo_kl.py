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
# # 05 · Học tăng cường từ phản hồi của con người (RLHF): PPO và phân kỳ KL (KL divergence) — §4
#
# Sau tinh chỉnh bằng chỉ thị (instruction tuning, hay SFT), §4 của bài viết đi thêm một bước: học tăng
# cường từ phản hồi của con người (Reinforcement Learning from Human Feedback, RLHF). Con người so sánh
# hai câu trả lời; một **mô hình phần thưởng** (reward model) $R(x, y)$ học lại phán đoán của họ; sau
# đó chính sách (policy) $\pi_\theta$ được huấn luyện bằng PPO để giành nhiều phần thưởng hơn, trong khi
# một số hạng phân kỳ KL (KL divergence) giữ nó ở gần mô hình SFT $\pi_{ref}$:
#
# $$\mathcal{L}_{RL} = \mathbb{E}_{x\sim\mathcal{D},\,y\sim\pi_\theta}\big[R(x, y)\big] - \beta\, D_{KL}\big(\pi_\theta \,\Vert\, \pi_{ref}\big)$$
#
# — theo lời bài viết, để "tránh việc mô hình suy sụp hoàn toàn hình dáng vốn có (mode collapse)". Số
# hạng KL là sợi dây cương (leash) giữ chính sách lại. Notebook này
#
# 1. xuất phát từ một mô hình SFT, $\pi_{ref}$;
# 2. huấn luyện mô hình phần thưởng trên các cặp ưu tiên (preference pairs) của khóa học (mô hình
#    Bradley–Terry);
# 3. trải **một vòng lặp PPO ra bằng tay**: sinh mẫu (rollout), log-xác suất (log-probs), KL, phần
#    thưởng theo từng token, GAE, hàm mất mát có cắt (clipped loss) — và vì sao hàm mất mát đó xấp xỉ
#    0 khi tỉ số bằng 1 trong khi gradient của nó lại khác 0;
# 4. giải thích hai chỗ có thể đặt KL (trong phần thưởng, hoặc trong hàm mất mát);
# 5. chạy **phép quét β** (β sweep): β = 0, một β nhỏ và một β lớn, rồi vẽ phần thưởng học được,
#    phần thưởng chuẩn, KL và entropy.
#
# "Con người" của khóa học là một chương trình, `minift.course.judge.judge` (**phần thưởng chuẩn**, gold
# reward): chính nó đã gán nhãn các cặp ưu tiên, và ta có thể hỏi nó câu trả lời của PPO *thực sự* tốt
# đến đâu — điều mà PPO không bao giờ được thấy. Mọi thứ đều lấy từ `minift`; ở đây không định nghĩa
# lại gì cả. `MINIFT_NOTEBOOK_SMALL=1` chọn một thiết lập rất nhỏ, chạy nhanh (bộ kiểm thử dùng nó: khi
# đó các con số không có ý nghĩa). Đặt `MINIFT_SFT_RUN=<thư mục lần chạy>` để bắt đầu từ một lần chạy
# SFT bạn đã có (ví dụ từ `minift sft`).
#
# > **English.** *RLHF with PPO and a KL leash (§4).* After instruction tuning (SFT), the article's §4
# > goes one step further: reinforcement learning from human feedback (RLHF). People compare two
# > answers; a **reward model** $R(x, y)$ learns their judgement; the policy $\pi_\theta$ is then
# > trained with PPO to earn more reward, while a KL term (KL divergence) keeps it near the SFT model
# > $\pi_{ref}$ (the objective above), "to avoid mode collapse". This notebook
# >
# > 1. starts from an SFT model, $\pi_{ref}$;
# > 2. trains the reward model on the course's preference pairs (Bradley–Terry);
# > 3. unrolls **one PPO iteration by hand**: rollout, log-probs, KL, per-token rewards, GAE, the
# >    clipped loss — and why that loss reads ≈ 0 at ratio 1 while its gradient is not zero;
# > 4. explains the two places the KL can go (in the reward, or in the loss);
# > 5. runs the **β sweep**: β = 0, a small and a large β, and plots learned reward, gold reward, KL
# >    and entropy.
# >
# > The course's "human" is a program, `minift.course.judge.judge` (the **gold reward**): it labelled
# > the preference pairs, and we can ask it how good PPO's answers *really* are — which PPO never
# > sees. Everything comes from `minift`; nothing is redefined here. `MINIFT_NOTEBOOK_SMALL=1` selects
# > a tiny, fast setting (used by the test suite: numbers there are not meaningful). Set
# > `MINIFT_SFT_RUN=<run folder>` to start from an SFT run you already have (e.g. from `minift sft`).

# %%
# Chế độ bài tập (exercise mode): với MINIFT_EXERCISES=<thư mục>, các hàm bạn viết thay cho hàm của minift.
# With MINIFT_EXERCISES=<folder>, your own functions replace minift's (see docs/exercises.md).
import minift.exercises

minift.exercises.install()

# %%
import json
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import minift.rlhf as rlhf
from minift import data, loop, model
from minift.config import get_config
from minift.course.bundled import (PREFERENCES_FILE, SAMPLES_DIR, corpus_texts, course_examples, course_model,
                                   default_tokenizer)
from minift.course.judge import judge
from minift.generate import Sampling, generate_tokens
from minift.preferences import load_preferences, split_pairs
from minift.rlhf import ppo, reward_model, sweep
from minift.seeds import describe

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
WORK = Path(tempfile.mkdtemp(prefix="minift05_"))
if SMALL:
    # vài giây: một mô hình rất nhỏ, vài bước — chỉ kiểm tra notebook chạy được, không phải kết quả khoa học
    # seconds: a tiny model, a handful of steps — checks the notebook runs, not the science
    D, PRETRAIN, SFT, RM_STEPS, ITERS, BATCH, NEW, BUCKETS = 64, 20, 20, 20, 2, 8, 6, (96,)
else:
    # vài phút trên 2 nhân CPU: thiết lập cho ra những con số có ý nghĩa
    # minutes on 2 CPU cores: the setting whose numbers mean something
    D, PRETRAIN, SFT, RM_STEPS, ITERS, BATCH, NEW, BUCKETS = 128, 250, 550, 100, 25, 32, 12, (48, 64, 96)
tok = default_tokenizer()
T0 = time.perf_counter()
print("thiết lập nhỏ (small setting)" if SMALL else "thiết lập đầy đủ (full setting)",
      "| thư mục làm việc (work folder)", WORK)

# %% [markdown]
# ## 0. Điểm xuất phát: một mô hình SFT, $\pi_{ref}$ (the starting point)
#
# PPO xuất phát từ mô hình đã tinh chỉnh bằng chỉ thị và giữ một bản sao đóng băng của nó làm mô hình
# tham chiếu (reference) $\pi_{ref}$. Nếu `MINIFT_SFT_RUN` chỉ tới một thư mục lần chạy, ta nạp nó
# (`loop.load_model`); nếu không, ta tạo một mô hình ngay tại đây, đúng như các notebook 01–04: tiền huấn
# luyện một Transformer nhỏ trên kho ngữ liệu của khóa học (`loss="lm"`), rồi tinh chỉnh bằng chỉ thị
# trên tập huấn luyện (`loss="sft"`, hàm mất mát có che của §3.2).
#
# > **English.** *The starting point: an SFT model, $\pi_{ref}$.* PPO starts from the
# > instruction-tuned model and keeps a frozen copy of it as the reference $\pi_{ref}$. If
# > `MINIFT_SFT_RUN` names a run folder we load it (`loop.load_model`); otherwise we make one here
# > exactly as notebooks 01–04 do: pretrain a small Transformer on the course corpus (`loss="lm"`),
# > then instruction-tune it on the train split (`loss="sft"`, the masked loss of §3.2).

# %%
TEMPLATE = data.COURSE_TEMPLATE
# MINIFT_SFT_RUN, hoặc mô hình SFT của `make course-models` (the one `make course-models` trained), nếu có
SFT_RUN = os.environ.get("MINIFT_SFT_RUN") or (None if SMALL else course_model("sft"))
if SFT_RUN:
    sft_params, cfg = loop.load_model(SFT_RUN)
    TEMPLATE = loop.run_template(SFT_RUN)
else:
    cfg = get_config("course", vocab_size=tok.vocab_size, d_model=D, n_layers=2, d_ff=3 * D, max_seq_len=128)
    texts = corpus_texts()
    base = loop.fit(WORK / "pretrain", cfg, model.init_params(cfg, jax.random.PRNGKey(0)),
                     lambda e: data.lm_batches(texts, tok, 64, 32, seed=(0, e)),
                     loop.TrainConfig(steps=PRETRAIN, batch_size=32, learning_rate=3e-3, warmup_steps=10,
                                       loss="lm", eval_every=0, checkpoint_every=0), progress=False)
    examples = course_examples("train")
    encoded, _ = data.encode_dataset(examples, tok, 96, template=TEMPLATE)
    sft_run = loop.fit(WORK / "sft", cfg, base.params,
                        lambda e: data.batches(encoded, 32, buckets=BUCKETS, pad_id=tok.pad_id, seed=(1, e)),
                        loop.TrainConfig(steps=SFT, batch_size=32, learning_rate=2e-3, warmup_steps=10,
                                          eval_every=0, checkpoint_every=0),
                        progress=False, info={"template": TEMPLATE})
    sft_params = sft_run.params
    print(f"loss tiền huấn luyện (pretrain loss) {base.history[-1]['loss']:.3f}, "
          f"loss SFT (SFT loss) {sft_run.history[-1]['loss']:.3f}")
print(f"{model.count_params(sft_params):,} tham số (parameters), khuôn mẫu (template) {TEMPLATE!r}, "
      f"đã chạy {time.perf_counter() - T0:.0f} s (so far)")

# %% [markdown]
# ## 1. Mô hình phần thưởng (the reward model)
#
# Con người không ghi ra điểm số; họ nói mình thích câu trả lời nào hơn trong hai câu. InstructGPT khớp
# một phần thưởng vô hướng (scalar) với những phép so sánh như vậy bằng mô hình Bradley–Terry:
#
# $$P(y_c \succ y_r \mid x) = \sigma\big(R_\phi(x, y_c) - R_\phi(x, y_r)\big),\qquad
# \mathcal{L}_{RM} = -\log\sigma\big(R_\phi(x, y_c) - R_\phi(x, y_r)\big)$$
#
# (`rlhf.bradley_terry_loss`). Mạng $R_\phi$ chính là Transformer SFT, trong đó đầu ra mô hình ngôn ngữ
# (LM head) được thay bằng một ánh xạ tuyến tính $w^\top h + b$ áp lên trạng thái ẩn cuối cùng tại
# **token thật cuối cùng** (EOS đóng câu — vị trí duy nhất đã đọc hết cả câu trả lời);
# `reward_model.reward_scores`. Đầu ra này được khởi tạo bằng 0, nên mô hình chưa huấn luyện coi mọi cặp
# là hòa: độ chính xác 0.5.
#
# Mỗi dòng của `preferences.jsonl` ghép đáp án đúng (được chọn — chosen) với một lỗi nghe có vẻ hợp lý
# (bị loại — rejected): một đáp án sai, một đáp án bị cắt cụt, chép lại đầu vào, lan man, lặp từ. Câu
# trả lời bị loại thường *ngắn hơn* đáp án đúng — một tín hiệu giả "càng dài càng tốt" mà mô hình phần
# thưởng có thể học theo, và giám khảo chuẩn (gold judge, trừ 0.1 cho mỗi từ thừa) sẽ bắt được.
#
# > **English.** *The reward model.* People do not write down scores; they say which of two answers
# > they prefer. InstructGPT fits a scalar reward to such comparisons with the Bradley–Terry model
# > above (`rlhf.bradley_terry_loss`). The network $R_\phi$ is the SFT Transformer with its LM head
# > replaced by one linear map $w^\top h + b$ of the final hidden state at the **last real token**
# > (the closing EOS — the only position that has read the whole answer);
# > `reward_model.reward_scores`. The head starts at zero, so the untrained model ranks every pair as
# > a tie: accuracy 0.5.
# >
# > Each line of `preferences.jsonl` pairs the true answer (chosen) with a plausible mistake
# > (rejected): a wrong answer, a truncated one, the input copied, rambling, repetition. Rejected
# > answers are more often *shorter* than the truth — a spurious cue "longer is better" a reward model
# > can pick up, and that the gold judge (which charges 0.1 per extra word) will catch.

# %%
pairs = load_preferences(SAMPLES_DIR / PREFERENCES_FILE, template=TEMPLATE)
train_pairs, heldout_pairs = split_pairs(pairs)
print(len(train_pairs), "cặp huấn luyện (training pairs),", len(heldout_pairs),
      "cặp giữ lại (held out). Một cặp (one pair):")
p = pairs[1]
print(repr(p.prompt), "\n  được chọn (chosen):", repr(p.chosen), "\n  bị loại (rejected):", repr(p.rejected))
print("phần thưởng chuẩn của từng câu (gold reward of each):",
      judge(p.instruction, p.input, p.chosen), judge(p.instruction, p.input, p.rejected))

train_arrays, _ = reward_model.encode_pairs(train_pairs, tok, 96)
heldout_arrays, _ = reward_model.encode_pairs(heldout_pairs, tok, 96)
rm_params = reward_model.init_reward_model(sft_params, cfg)
print("độ chính xác trên các cặp giữ lại trước khi huấn luyện (held-out accuracy before training):",
      reward_model.evaluate_reward_model(rm_params, heldout_arrays, cfg)["accuracy"])
rm_params, rm_history = reward_model.train_reward_model(
    rm_params, cfg, train_arrays, reward_model.RMConfig(steps=RM_STEPS, batch_size=32, eval_every=0),
    eval_pairs=heldout_arrays)
rm_eval = reward_model.evaluate_reward_model(rm_params, heldout_arrays, cfg)
print(f"sau {RM_STEPS} bước (after {RM_STEPS} steps): độ chính xác trên các cặp giữ lại (held-out accuracy) "
      f"{rm_eval['accuracy']:.3f}, loss {rm_eval['loss']:.3f} "
      f"(mức ngẫu nhiên / chance: 0.5 và / and log 2 = 0.693)")

# %% [markdown]
# Phần thưởng học được chỉ là một *đại diện* (proxy) cho giám khảo. Hãy chấm vài câu trả lời cho cùng
# một lời nhắc bằng cả hai: chỗ chúng bất đồng chính là chỗ PPO, vốn cực đại hóa cái đại diện ấy, có thể
# đi sai đường.
#
# > **English.** The learned reward is only a *proxy* of the judge. Score a few answers to one prompt
# > with both: where they disagree is where PPO, which maximises the proxy, can go wrong.

# %%
score_fn = jax.jit(reward_model.reward_scores, static_argnames="config")
instruction, x = "Give the first word.", "sea pink baby"
prompt = data.format_prompt(data.Example(instruction, x, ""), TEMPLATE)
answers = ["sea", "s", "sea pink", "sea pink baby", "sea, I hope this helps you", "SEA", "baby"]
rows = [data.encode_text(prompt, a, tok, 96)[0].ids.tolist() for a in answers]
width = max(map(len, rows))
tokens = jnp.asarray([r + [tok.pad_id] * (width - len(r)) for r in rows], jnp.int32)
mask = jnp.asarray([[1.0] * len(r) + [0.0] * (width - len(r)) for r in rows])
learned = np.asarray(score_fn(rm_params, tokens, mask, config=cfg))
for a, r in zip(answers, learned):
    print(f"{a!r:32} học được (learned) {r:+.2f}   chuẩn (gold) {judge(instruction, x, a, task='first_word'):+.2f}")

# %% [markdown]
# ## 2. Một vòng lặp PPO, trải ra bằng tay (one PPO iteration, unrolled by hand)
#
# **Sinh mẫu (rollout).** Lấy mẫu một câu trả lời cho mỗi lời nhắc từ $\pi_\theta$ ở nhiệt độ 1 bằng bộ
# lấy mẫu có bộ nhớ đệm (cached sampler, `minift.generate`); các lời nhắc được đệm bên trái (left-padded)
# về cùng một độ dài để mọi vòng lặp có cùng kích thước mảng (shapes). Với mỗi token được lấy mẫu $y_t$
# ta cần ba con số, mỗi số từ một lượt truyền xuôi (forward pass) qua lời nhắc + câu trả lời:
# $\log\pi_{old}(y_t)$ (chính sách đã lấy mẫu), $\log\pi_{ref}(y_t)$ (mô hình SFT đóng băng) và giá trị
# (value) $V(s_t)$ (một đầu ra tuyến tính trên trạng thái ẩn của chính sách); cùng một con số cho mỗi câu
# trả lời, phần thưởng học được $R_\phi(x, y)$. `generate_tokens` lấy mẫu; `ppo.score_rollout` làm phần
# còn lại (và cả các lợi thế — advantages — ở bên dưới) trong một hàm được biên dịch bằng jit — đúng như
# `ppo.train_ppo` làm.
#
# > **English.** *One PPO iteration, unrolled by hand.* **Rollout.** Sample an answer to each prompt
# > from $\pi_\theta$ at temperature 1 with the cached sampler (`minift.generate`); prompts are
# > left-padded to one length so every iteration has the same shapes. For each sampled token $y_t$
# > we need three numbers, from one forward pass each over prompt + answer: $\log\pi_{old}(y_t)$ (the
# > policy that sampled), $\log\pi_{ref}(y_t)$ (the frozen SFT model) and the value $V(s_t)$ (a
# > linear head on the policy's hidden state); and one number per answer, the learned reward
# > $R_\phi(x, y)$. `generate_tokens` samples; `ppo.score_rollout` does the rest (and the advantages
# > below) in one jit-compiled function — as `ppo.train_ppo` does.

# %%
settings = ppo.PPOConfig(iterations=ITERS, batch_size=BATCH, max_new_tokens=NEW, beta=0.05)
prompts = ppo.make_prompt_set(course_examples("train"), tok, TEMPLATE)
# {"policy": bản sao trọng số SFT, "value_head": toàn số 0}
policy = ppo.init_policy(sft_params, cfg)  # {"policy": copy of the SFT weights, "value_head": zeros}
index = np.arange(settings.batch_size)


def rollout(policy, key):
    """Bước 1-3 của một vòng lặp: lấy mẫu câu trả lời, rồi chấm điểm chúng và tính các lợi thế.

    Steps 1-3 of an iteration: sample answers, then score them and compute the advantages."""
    prompt_tokens, prompt_mask = jnp.asarray(prompts.tokens[index]), jnp.asarray(prompts.mask[index])
    gen = generate_tokens(policy["policy"], prompt_tokens, prompt_mask, key, config=cfg,
                          max_new_tokens=settings.max_new_tokens, sampling=Sampling(temperature=1.0),
                          eos_id=tok.eos_id, pad_id=tok.pad_id)
    return ppo.score_rollout(policy, sft_params, rm_params, prompt_tokens, prompt_mask, gen,
                             jnp.float32(settings.beta), config=cfg, settings=settings.update_settings())


roll = rollout(policy, jax.random.PRNGKey(0))
answers = ppo.decode_responses(roll, tok)
gold = ppo.gold_rewards(answers, prompts, index)
for i in range(4):
    print(f"{prompts.instructions[i]!r} / {prompts.inputs[i]!r} -> {answers[i]!r}: "
          f"học được (learned) {float(roll.scores[i]):+.2f}, chuẩn (gold) {gold[i]:+.2f}")
print("kích thước (shapes): tokens", roll.tokens.shape, "response", roll.response.shape)

# %% [markdown]
# **KL so với mô hình tham chiếu (KL to the reference).** Với mỗi token, đặt
# $\log r_t = \log\pi_{ref}(y_t) - \log\pi_\theta(y_t)$, các bộ ước lượng (estimators) của Schulman là
# $k_1 = -\log r$, $k_2 = \frac12(\log r)^2$, $k_3 = (r - 1) - \log r$ (`rlhf.kl_estimate`). Trước mọi
# lần cập nhật, $\pi_\theta = \pi_{ref}$, nên tất cả đều **đúng bằng** 0.
#
# > **English.** *KL to the reference.* Per token, with the log-ratio $\log r_t$ above, Schulman's
# > estimators are $k_1$, $k_2$ and $k_3$ as written above (`rlhf.kl_estimate`). Before any update
# > $\pi_\theta = \pi_{ref}$, so all are **exactly** 0.

# %%
k1 = rlhf.kl_estimate(roll.logp_old, roll.logp_ref, "k1")
print("max |k1| trên lần sinh mẫu đầu tiên (over the first rollout):", float(jnp.max(jnp.abs(k1))))
print("max |logp_old - logp của bộ lấy mẫu (from the sampler)|:",
      float(jnp.max(jnp.abs(roll.mask * (roll.logp_old - roll.logp_sampler)))))

# %% [markdown]
# **Phần thưởng và lợi thế (rewards, advantages).** Mô hình phần thưởng chấm điểm cả câu trả lời, nên
# điểm của nó chỉ đến một lần, ở token cuối cùng; còn KL thì bị tính theo từng token (như InstructGPT):
#
# $$r_t = -\beta\,\mathrm{KL}_t + \begin{cases}R(x,y) & t = \text{last token}\\ 0 & \text{otherwise}\end{cases}$$
#
# (`rlhf.per_token_rewards`). GAE biến phần thưởng và giá trị thành lợi thế,
# $\delta_t = r_t + \gamma V_{t+1} - V_t$, $\hat A_t = \delta_t + \gamma\lambda\hat A_{t+1}$ (`rlhf.gae`),
# rồi các lợi thế được chuẩn hóa (whitened: trừ đi trung bình, chia cho độ lệch chuẩn) trên các token
# thật (`rlhf.masked_whiten`).
#
# > **English.** *Rewards, advantages.* The reward model scores the whole answer, so its score arrives
# > once, at the last token; the KL is charged token by token (InstructGPT), as in the equation above
# > (`rlhf.per_token_rewards`). GAE turns rewards and values into advantages with the recursion above
# > (`rlhf.gae`), which are then whitened over the real tokens (`rlhf.masked_whiten`).

# %%
rewards = rlhf.per_token_rewards(roll.scores, k1, roll.mask, settings.beta)
adv, returns = rlhf.gae(rewards, roll.values, roll.mask, settings.gamma, settings.lam)
white = rlhf.masked_whiten(adv, roll.mask)
np.set_printoptions(precision=2, suppress=True, linewidth=120)
print("mặt nạ (mask)            ", np.asarray(roll.mask[0]))
print("phần thưởng (reward)     ", np.asarray(rewards[0]))
print("lợi thế (advantage)      ", np.asarray(adv[0]),
      "(đầu ra giá trị lúc khởi tạo bằng 0 nên A = tổng phần thưởng / value head is 0 at the start: A = return)")
print("đã chuẩn hóa (whitened)  ", np.asarray(white[0]))
print("trùng với lợi thế trong rollout (same as the rollout's):", bool(jnp.allclose(white, roll.advantages)))

# %% [markdown]
# **Hàm mất mát có cắt tại tỉ số 1 (the clipped loss at ratio 1).** Hàm mất mát chính sách của PPO là
#
# $$\mathcal{L}^{CLIP} = -\frac{1}{\sum_t m_t}\sum_t m_t \min\big(\rho_t\hat A_t,\ \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\hat A_t\big),\qquad \rho_t = e^{\log\pi_\theta(y_t) - \log\pi_{old}(y_t)}.$$
#
# Ở minibatch đầu tiên $\pi_\theta = \pi_{old}$, nên $\rho_t = 1$ và hàm mất mát bằng
# $-\mathrm{mean}(\hat A)$: xấp xỉ **0**, vì các lợi thế đã được chuẩn hóa về trung bình 0. Thế nhưng
# gradient của nó theo $\log\pi_\theta(y_t)$ là $-m_t\hat A_t/\sum m$ — hoàn toàn khác 0: nó nâng xác suất
# của những token có lợi thế dương và hạ xác suất của những token còn lại. *Giá trị* của hàm thay thế
# (surrogate) không mang ý nghĩa gì; *độ dốc* của nó mới chính là gradient chính sách (policy gradient).
#
# > **English.** *The clipped loss at ratio 1.* PPO's policy loss is the one above. On the first
# > minibatch $\pi_\theta = \pi_{old}$, so $\rho_t = 1$ and the loss is $-\mathrm{mean}(\hat A)$:
# > about **0**, because the advantages were whitened to mean 0. Yet its gradient with respect to
# > $\log\pi_\theta(y_t)$ is $-m_t\hat A_t/\sum m$ — not zero at all: it raises the probability of
# > tokens with positive advantage and lowers the others. The *value* of the surrogate means nothing;
# > its *slope* is the policy gradient.

# %%
loss_at_1, stats = rlhf.ppo_clip_loss(roll.logp_old, roll.logp_old, roll.advantages, roll.mask, settings.clip_eps)
grad = jax.grad(lambda lp: rlhf.ppo_clip_loss(lp, roll.logp_old, roll.advantages, roll.mask)[0])(roll.logp_old)
expected = -roll.mask * roll.advantages / jnp.sum(roll.mask)
print(f"loss tại tỉ số 1 (at ratio 1): {float(loss_at_1):+.2e}   tỉ số trung bình (ratio mean) "
      f"{float(stats.ratio_mean)}   tỉ lệ bị cắt (clip fraction) {float(stats.clip_frac)}")
print(f"|gradient| = {float(jnp.linalg.norm(grad)):.3f}, bằng (equal to) -m*A/sum(m): "
      f"{bool(jnp.allclose(grad, expected, atol=1e-7))}")

# %% [markdown]
# **Bước cập nhật (the update).** `ppo.ppo_update` chạy `epochs` lượt qua batch theo các minibatch được
# xáo trộn — hàm mất mát chính sách có cắt + ½·hàm mất mát giá trị có cắt (− phần thưởng entropy,
# entropy bonus, ở đây bằng 0) — gói trong *một* hàm được biên dịch bằng jit (hai `lax.scan` lồng nhau).
# Các thống kê của nó được tính theo từng cặp (epoch, minibatch): minibatch đầu tiên có tỉ số 1 và
# không cắt gì; ở các minibatch sau, chính sách đã dịch chuyển.
#
# > **English.** *The update.* `ppo.ppo_update` runs `epochs` passes over the batch in shuffled
# > minibatches — clipped policy loss + ½·clipped value loss (− entropy bonus, 0 here) — as *one*
# > jit-compiled function (two nested `lax.scan`s). Its statistics are per (epoch, minibatch): the
# > first minibatch has ratio 1 and clips nothing; later ones have moved.

# %%
opt_state = ppo.ppo_optimizer(settings.update_settings()).init(policy)
# biên dịch một lần cho các thiết lập này; phép quét bên dưới (β khác, cùng thiết lập) dùng lại chương trình
# compiled once for these settings; the sweep below (other betas, same settings) reuses the program
policy, opt_state, stats = ppo.ppo_update(policy, opt_state, roll, jax.random.PRNGKey(1), jnp.float32(settings.beta),
                                          config=cfg, settings=settings.update_settings())
for name in ("ratio_mean", "clip_frac", "approx_kl", "value_loss"):
    print(f"{name:10}", np.asarray(stats[name]).round(4).tolist())
roll2 = rollout(policy, jax.random.PRNGKey(2))
print("sau một lần cập nhật, KL so với mô hình tham chiếu (after one update, KL to the reference):",
      {k: round(v, 4) for k, v in ppo.rollout_metrics(roll2).items() if k.startswith("kl")})

# %% [markdown]
# ## 3. Hai chỗ đặt KL (two places for the KL)
#
# | | KL **trong phần thưởng** / *in the reward* (`per_token_rewards`) | KL **trong hàm mất mát** / *in the loss* (`kl_loss_term`) |
# |---|---|---|
# | được dùng bởi / *used by* | InstructGPT, Ziegler và cs. 2019 (PPO) | GRPO (Shao và cs. 2024) và các công thức "KL loss" / *"KL loss" recipes* |
# | chính sách cảm nhận nó thế nào / *how the policy feels it* | như một phần thưởng: $r_t = -\beta\,\mathrm{KL}_t$, được GAE phân bổ công trạng và bị cắt như mọi phần thưởng / *as a reward, credit-assigned by GAE and clipped like any reward* | như một gradient riêng, $\beta\nabla_\theta\,\overline{k}$, cộng vào hàm thay thế có cắt / *as its own gradient, added to the clipped surrogate* |
# | bộ ước lượng (mặc định) / *estimator (default)* | k1: phần thưởng cần *giá trị* của KL, và giá trị của k1 không chệch (một batch có thể âm) / *the reward needs the KL's value, and k1's is unbiased (one batch can be negative)* | k3; k2 cũng được; **k1 là lỗi** / *k3; k2 also works; k1 is an error* |
# | hướng mà gradient của nó đi theo / *the direction its gradient follows* | $D_{KL}(\pi_\theta\Vert\pi_{ref})$, hướng của bài viết / *the article's* | k3: $D_{KL}(\pi_{ref}\Vert\pi_\theta)$; k2: $D_{KL}(\pi_\theta\Vert\pi_{ref})$ |
# | β nhân với gì / *what β multiplies* | **tổng** các $\mathrm{KL}_t$ của mỗi câu trả lời (nats / câu trả lời) / *the per-answer **sum** (nats per answer)* | **trung bình** theo token (nats / token) / *the per-token **mean** (nats per token)* |
#
# Vì sao k1 không thể nằm trong hàm mất mát. Các token được lấy mẫu từ $\pi_\theta$ và phép lấy mẫu
# không được lấy đạo hàm, nên điều mà gradient của hàm mất mát làm *trung bình* là
# $\mathbb{E}_{y\sim\pi_\theta}[\nabla_\theta k(y)]$. Với $k_1 = \log\pi_\theta(y) - \log\pi_{ref}(y)$, đại lượng
# đó bằng $\mathbb{E}[\nabla_\theta\log\pi_\theta(y)] = \sum_y\nabla_\theta\pi_\theta(y) = \nabla_\theta 1 = 0$: một
# ước lượng không chệch cho *giá trị* của KL nhưng gradient của nó chẳng kéo về đâu cả — chỉ có nhiễu,
# không có dây cương. Gradient kỳ vọng của k3 là $\nabla_\theta D_{KL}(\pi_{ref}\Vert\pi_\theta)$ và của k2
# là $\nabla_\theta D_{KL}(\pi_\theta\Vert\pi_{ref})$: cả hai đều bằng 0 tại $\pi_{ref}$ và kéo về phía nó
# (được kiểm chứng bằng cách liệt kê toàn bộ trong `tests/test_rlhf_objectives.py`).
# `PPOConfig(kl_placement="loss", kl_kind="k1")` báo lỗi và nói rõ điều này.
#
# Và cùng một β không có cùng độ mạnh ở hai chỗ: với một câu trả lời $N$ token, lực kéo mà nó chịu khi KL
# nằm trong hàm mất mát chỉ vào khoảng $1/N$ so với cùng β đặt trong phần thưởng. Trong phần thưởng, KL
# còn làm thay đổi *câu trả lời nào* trông có vẻ tốt (một token trôi xa làm giảm mọi lợi thế đứng trước
# nó); trong hàm mất mát, nó là một lực kéo riêng, tác động ở mọi minibatch bất kể lợi thế ra sao.
# `PPOConfig(kl_placement=...)` chọn một trong hai; các con số dưới đây tính cả hai, cho chính sách sau
# một lần cập nhật.
#
# > **English.** *Two places for the KL* (the table above). Why k1 cannot go in the loss. The tokens
# > are sampled from $\pi_\theta$ and the sampling is not differentiated, so what the loss's gradient
# > does *on average* is the expectation of $\nabla_\theta k(y)$ under $\pi_\theta$. For $k_1$ that
# > expectation is exactly 0 (the derivation above): an unbiased estimate of the KL's *value* whose
# > gradient pulls nowhere — noise and no leash. k3's expected gradient is that of
# > $D_{KL}(\pi_{ref}\Vert\pi_\theta)$ and k2's that of $D_{KL}(\pi_\theta\Vert\pi_{ref})$: both are 0 at
# > $\pi_{ref}$ and pull towards it (checked by enumeration in `tests/test_rlhf_objectives.py`).
# > `PPOConfig(kl_placement="loss", kl_kind="k1")` raises an error that says so.
# >
# > And one β is not the same strength in both places: an answer of $N$ tokens feels in the loss about
# > $1/N$ of the pull the same β gives in the reward. In the reward the KL also changes *which*
# > answers look good (a drifting token lowers every advantage before it); in the loss it is a
# > separate pull applied at every minibatch whatever the advantages. `PPOConfig(kl_placement=...)`
# > selects one; the numbers below are both, for the policy after one update.

# %%
k1_now = rlhf.kl_estimate(roll2.logp_old, roll2.logp_ref, "k1")
in_reward = rlhf.per_token_rewards(roll2.scores, k1_now, roll2.mask, settings.beta)
print("KL trong phần thưởng: tổng phần thưởng mỗi câu trả lời = R - beta * tổng KL "
      "(KL in the reward: sum of rewards per answer = R - beta * sum KL):",
      np.asarray(jnp.sum(in_reward, axis=1)[:4]).round(3), "so với (vs) R:", np.asarray(roll2.scores[:4]).round(3))
print("KL trong hàm mất mát (KL in the loss): beta * trung bình (mean) k3 =",
      float(rlhf.kl_loss_term(roll2.logp_old, roll2.logp_ref, roll2.mask, settings.beta)))
print("mục tiêu của bài viết (the article's objective) E[R] - beta KL:",
      float(rlhf.rlhf_objective(roll2.scores, roll2.logp_old, roll2.logp_ref, roll2.mask, settings.beta)))

# %% [markdown]
# ## 4. Phép quét β: dây cương KL làm gì (the β sweep: what the KL leash does)
#
# Cùng mô hình SFT, cùng mô hình phần thưởng, cùng các lời nhắc và cùng seed; chỉ có β thay đổi
# (`sweep.run_sweep`). Ta theo dõi phần thưởng học được (thứ PPO cực đại hóa), phần thưởng chuẩn (thứ ta
# thực sự muốn), KL so với $\pi_{ref}$ và entropy của các phân phối token tiếp theo của chính sách.
#
# > **English.** *The β sweep: what the KL leash does.* Same SFT model, reward model, prompts and
# > seed; only β changes (`sweep.run_sweep`). We watch the learned reward (what PPO maximises), the
# > gold reward (what we actually want), the KL to $\pi_{ref}$ and the entropy of the policy's
# > next-token distributions.

# %%
results = sweep.run_sweep([0.0, 0.05, 0.5], sft_params, cfg, rm_params, cfg, prompts, tok, settings, WORK / "sweep")
start = results["summary"]["0"]
print(f"lúc đầu (start): học được (learned) {start['start_reward']['mean']:+.2f}, "
      f"chuẩn (gold) {start['start_gold_reward']['mean']:+.2f}")
print(f"{'beta':>6} {'R học được':>12} {'R chuẩn':>9} {'KL k1':>7} {'entropy':>8}")
print(f"{'':>6} {'(learned R)':>12} {'(gold R)':>9}")
# mỗi giá trị: trung bình qua các seed đã chạy (ở đây chỉ một)
for name, s in results["summary"].items():  # each value: mean over the seeds run (one here)
    print(f"{name:>6} {s['final_reward']['mean']:+12.3f} {s['final_gold_reward']['mean']:+9.3f} "
          f"{s['final_kl_k1']['mean']:7.2f} {s['final_entropy']['mean']:8.3f}")
print("các mẫu cuối cùng (final samples):", results["final_samples"])
print(f"đã chạy {time.perf_counter() - T0:.0f} s (so far)")

# %% [markdown]
# `run_sweep` đã vẽ hình do `sweep.plot_sweep` tạo ra (các đường: trung bình trượt trên 5 vòng lặp, lấy
# trung bình qua các seed khi chạy nhiều seed, kèm một dải từ seed thấp nhất đến seed cao nhất). Hàng
# trên: từng đại lượng theo vòng lặp PPO. Hàng dưới: phần thưởng học được, phần thưởng chuẩn và entropy
# theo KL, cùng khoảng cách do tối ưu quá mức (over-optimisation) học được − chuẩn. Nhãn trong hình
# bằng tiếng Anh: *learned reward* = phần thưởng học được, *gold reward (judge)* = phần thưởng chuẩn
# (giám khảo), *KL to $\pi_{ref}$* = KL so với $\pi_{ref}$, *distinct answers / batch* = số câu trả lời
# khác nhau trong một batch, *PPO iteration* = vòng lặp PPO.
#
# > **English.** `run_sweep` drew the figure `sweep.plot_sweep` makes (lines: moving averages over 5
# > iterations, the mean over seeds when several are run, with a band from the lowest to the highest
# > seed). Top: each quantity against the PPO iteration. Bottom: learned reward, gold reward and
# > entropy against the KL, and the over-optimisation gap learned − gold.

# %%
from IPython.display import Image, display

display(Image(filename=str(WORK / "sweep" / "beta_sweep.png")))

# %% [markdown]
# **Một lần chạy thật cho thấy gì (what a real run shows).** `docs/beta_sweep.json` và
# `docs/beta_sweep.png` lưu phép quét được thực hiện từ mô hình SFT có che của seed 0 trong demo (0.99
# triệu tham số; tiền huấn luyện 600 bước, SFT 1600 bước), một mô hình phần thưởng có độ chính xác theo
# cặp 0.79 trên các cặp giữ lại, PPO chạy 50 vòng lặp, mỗi vòng 32 lần sinh mẫu, ba seed PPO cho mỗi β
# (`minift ppo --sweep 0,0.05,0.5 --seeds 3 --iterations 50`, khoảng 12 phút trên 2 nhân CPU). Giá trị
# cuối là trung bình của 5 vòng lặp cuối, rồi lấy trung bình (nhỏ nhất–lớn nhất) qua 3 seed; mọi lần
# chạy đều bắt đầu ở phần thưởng học được 1.25, phần thưởng chuẩn 0.97:
#
# | β | phần thưởng học được (learned reward) | phần thưởng chuẩn (gold reward) | KL (nats / câu trả lời — per answer) | entropy (nats / token) |
# |---|---|---|---|---|
# | 0    | 1.28 (1.08–1.45) | 0.40 (0.33–0.44) | 16.2 (11.4–24.7) | 1.02 (0.72–1.42) |
# | 0.05 | 1.42 (1.39–1.45) | 0.73 (0.66–0.77) | 2.65 (1.72–4.12) | 0.35 (0.31–0.39) |
# | 0.5  | 1.41 (1.34–1.46) | 0.87 (0.85–0.90) | 0.84 (0.31–1.35) | 0.24 (0.21–0.28) |
#
# * **Số hạng KL là dây cương (the KL term is the leash).** Khoảng giá trị của phần thưởng chuẩn không
#   chồng lên nhau giữa ba giá trị β: chính sách càng trôi xa thì càng đánh mất nhiều chất lượng thật,
#   và khi vẽ theo KL (hàng dưới của hình), cả chín lần chạy nằm trên cùng một đường cong. Với β = 0,
#   KL vượt 10 nats mỗi câu trả lời ở đâu đó giữa vòng lặp 26 và 44 (tùy seed); β = 0.5 giữ nó dưới 1
#   ở hầu hết, chứ không phải tất cả, các vòng lặp.
# * **Tối ưu quá mức phần thưởng (reward over-optimisation).** Ở quy mô này phần thưởng học được hầu như
#   không tăng, vậy mà khoảng cách học được − chuẩn cứ nới rộng dần: PPO tìm ra những câu trả lời mà mô
#   hình phần thưởng chấm như câu tốt còn giám khảo thì không (từ ngữ lộn xộn, chữ hoa chữ thường lẫn
#   lộn, như `dog NEW HELLO to big`). Gao và cs. (2023) đo được cùng đường cong này trên các mô hình
#   phần thưởng thật.
# * **Điều mô hình đồ chơi không cho thấy (what the toy does not show).** Entropy của token tiếp theo lại
#   *tăng* theo KL thay vì suy sụp, và các câu trả lời vẫn khác nhau: chính sách nhỏ khi trôi xa viết ra
#   những chuỗi mà mô hình SFT không bao giờ viết, và không chắc chắn về chúng. Thiệt hại nằm ở *nội
#   dung* được nói ra.
#
# > **English.** *What a real run shows.* `docs/beta_sweep.json` and `docs/beta_sweep.png` hold the
# > sweep made from the masked SFT model of the demo's seed 0 (0.99M parameters; pretrained 600 steps,
# > SFT 1,600), a reward model at 0.79 held-out pairwise accuracy, PPO for 50 iterations of 32
# > rollouts, three PPO seeds per β (`minift ppo --sweep 0,0.05,0.5 --seeds 3 --iterations 50`, about
# > 12 minutes on 2 CPU cores). Final values are the mean of the last 5 iterations, then mean
# > (min–max) over the 3 seeds (the table above); every run starts at learned reward 1.25, gold
# > reward 0.97.
# >
# > * **The KL term is the leash.** The gold-reward ranges do not overlap across the three β: the
# >   further the policy drifts, the more of the true quality it loses, and against the KL (bottom row
# >   of the figure) all nine runs lie on one curve. At β = 0 the KL passes 10 nats per answer between
# >   iterations 26 and 44 (by seed); β = 0.5 keeps it under 1 in most, not all, iterations.
# > * **Reward over-optimisation.** The learned reward hardly rises at this scale, yet the gap
# >   learned − gold widens: PPO finds answers the reward model scores like good ones and the judge
# >   does not (mixed-up words and casing such as `dog NEW HELLO to big`). Gao et al. (2023) measure
# >   the same curve on real reward models.
# > * **What the toy does not show.** The next-token entropy *rises* with the KL rather than
# >   collapsing, and the answers stay distinct: the drifting small policy writes strings the SFT
# >   model never would, and is unsure on them. The damage shows in *what* is said.

# %%
recorded = Path("..") / "docs" / "beta_sweep.json"
if not recorded.is_file():
    recorded = Path.cwd() / "docs" / "beta_sweep.json"
if recorded.is_file():
    ref = json.loads(recorded.read_text(encoding="utf-8"))
    print(f"{len(ref['seeds'])} seed; mỗi giá trị: trung bình (nhỏ nhất–lớn nhất) qua các seed "
          f"(each value: mean (min–max) over the seeds)")
    for name, s in ref["summary"].items():
        print(f"beta {name:>5}: học được (learned) {s['start_reward']['mean']:+.2f} -> "
              f"{describe(s['final_reward'], False, 2)}, "
              f"chuẩn (gold) {s['start_gold_reward']['mean']:+.2f} -> {describe(s['final_gold_reward'], False, 2)}, "
              f"KL {describe(s['final_kl_k1'], False, 2)}")
else:
    print("không tìm thấy docs/beta_sweep.json (hãy chạy `minift ppo --sweep 0,0.05,0.5 ...` để tạo) — "
          "docs/beta_sweep.json not found (run `minift ppo --sweep 0,0.05,0.5 ...` to make one)")
print(f"tổng cộng (total) {time.perf_counter() - T0:.0f} s")

# %% [markdown]
# ## Tóm tắt (summary)
#
# * Mô hình phần thưởng là Transformer SFT với một đầu ra vô hướng tại token thật cuối cùng, được khớp
#   bằng Bradley–Terry trên các cặp; nó xếp hạng các cặp giữ lại tốt hơn hẳn mức ngẫu nhiên nhưng chỉ
#   là một đại diện (proxy).
# * Một vòng lặp PPO: sinh mẫu bằng bộ lấy mẫu có bộ nhớ đệm → log-xác suất của chính sách và của mô
#   hình tham chiếu, giá trị, phần thưởng học được → phần thưởng theo từng token (có KL bên trong) → GAE
#   → lợi thế đã chuẩn hóa → các bước cập nhật có cắt. Tại tỉ số 1, hàm mất mát có cắt ≈ 0 nhưng
#   gradient của nó chính là gradient chính sách.
# * KL có thể nằm trong phần thưởng (InstructGPT) hoặc trong hàm mất mát (GRPO); cả hai đều kéo về phía
#   $\pi_{ref}$.
# * β là dây cương: β = 0 để PPO chạy theo những sai lầm của mô hình phần thưởng (phần thưởng học được
#   tăng, phần thưởng chuẩn giảm, KL lớn); β > 0 giữ chính sách ở gần mô hình SFT.
#
# Dòng lệnh: `minift rm --sft RUN --out RUN_RM`, rồi
# `minift ppo --sft RUN --rm RUN_RM --beta 0.05 --out RUN_PPO` (hoặc `--sweep 0,0.05,0.5`).
#
# > **English.** *Summary.*
# >
# > * The reward model is the SFT Transformer with a scalar head at the last real token, fitted by
# >   Bradley–Terry on pairs; it ranks held-out pairs well above chance but is only a proxy.
# > * One PPO iteration: rollout with the cached sampler → log-probs of policy and reference, values,
# >   learned reward → per-token rewards (KL inside) → GAE → whitened advantages → clipped updates.
# >   At ratio 1 the clipped loss is ≈ 0 but its gradient is the policy gradient.
# > * The KL can sit in the reward (InstructGPT) or in the loss (GRPO); both pull towards $\pi_{ref}$.
# > * β is the leash: β = 0 lets PPO chase the reward model's mistakes (learned reward up, gold reward
# >   down, large KL); β > 0 keeps the policy near the SFT model.
# >
# > Command line: `minift rm --sft RUN --out RUN_RM`, then
# > `minift ppo --sft RUN --rm RUN_RM --beta 0.05 --out RUN_PPO` (or `--sweep 0,0.05,0.5`).
