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
# 5. đo **tối ưu quá mức phần thưởng** (reward over-optimisation): khi người gán nhãn có thiên kiến,
#    PPO, GRPO, DPO và best-of-n cùng leo lên phần thưởng học được, và một giám khảo duy nhất cho thấy
#    phần thưởng chuẩn tăng rồi giảm theo KL — với 3 seed, kèm những gì *không* xảy ra ở quy mô này.
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
# > 5. measures **reward over-optimisation**: with biased annotators, PPO, GRPO, DPO and best-of-n
# >    all climb the learned reward, and one judge shows the gold reward rise, then fall, with the KL
# >    — over 3 seeds, with what does *not* happen at this scale.
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
from IPython.display import Image, display

import minift.rlhf as rlhf
from minift import data, loop, model
from minift.config import get_config
from minift.course.bundled import (
    PREFERENCES_FILE,
    SAMPLES_DIR,
    corpus_texts,
    course_examples,
    course_model,
    default_tokenizer,
    named_task_examples,
)
from minift.course.judge import judge
from minift.generate import Sampling, generate_tokens
from minift.preferences import load_preferences, split_pairs
from minift.rlhf import ppo, reward_model, study, sweep
from minift.rlhf.setting import Annotator, preference_probability
from minift.seeds import describe, spread

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
    examples = named_task_examples()
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
prompts = ppo.make_prompt_set(named_task_examples(), tok, TEMPLATE)
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
      f"(đầu ra giá trị lúc khởi tạo bằng 0 nên A_t = Σ_l (γλ)^l r_(t+l): đúng là tổng phần thưởng chỉ khi γλ = 1, "
      f"ở đây γλ = {settings.gamma * settings.lam:g} / value head is 0 at the start, so A_t = Σ_l (γλ)^l r_(t+l): "
      f"the reward sum only if γλ = 1; here γλ = {settings.gamma * settings.lam:g})")
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
loss_at_1 = rlhf.ppo_clip_loss(roll.logp_old, roll.logp_old, roll.advantages, roll.mask, settings.clip_eps)
stats = rlhf.ppo_diagnostics(roll.logp_old, roll.logp_old, roll.advantages, roll.mask, settings.clip_eps)
grad = jax.grad(lambda lp: rlhf.ppo_clip_loss(lp, roll.logp_old, roll.advantages, roll.mask))(roll.logp_old)
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
# biên dịch một lần cho các thiết lập này (β là một đối số, không phải hằng: β khác dùng lại chương trình)
# compiled once for these settings (β is an argument, not a constant: another β reuses the program)
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
# ## 4. Tối ưu quá mức phần thưởng, đo bằng một giám khảo (reward over-optimisation, measured with one judge)
#
# Vòng lặp PPO ở trên xuất phát từ một mô hình SFT mà giám khảo đã chấm gần điểm tối đa (phần thưởng
# chuẩn ≈ 0.97 trong lần chạy của khóa học): RL không còn gì để giành, nên một phép quét β ở đó chỉ cho
# thấy chính sách *trôi đi* khi không có dây cương, không phải việc tối ưu một phần thưởng học được làm
# hỏng nó. Để thấy hiện tượng của Gao và cs. (2023) cần hai điều, và `minift.rlhf.setting` dựng cả hai
# từ chính các tác vụ của khóa học:
#
# * **một chính sách còn chỗ để tiến bộ**: SFT ngắn (700 bước), phần thưởng chuẩn ≈ 0.34 (trần là 1);
# * **một phần thưởng đại diện (proxy) có thể bị lợi dụng**: người gán nhãn mô phỏng thích câu trả lời
#   tốt hơn theo giám khảo, *cộng* một điểm thưởng $b = 0.8$ cho câu mở đầu lịch sự ("Sure!",
#   "Vâng!") mà giám khảo không cho (nó trừ điểm), và có nhiễu:
#   $U(y) = R^\star(y) + b\,\mathbb{1}[\text{lịch sự}]$, $P(y_a \succ y_b) = \sigma\big((U(y_a)-U(y_b))/\tau\big)$.
#   Đây cũng là *thiên kiến của người gán nhãn* (annotator bias) của §5. Mô hình phần thưởng
#   Bradley–Terry học $U$, không học $R^\star$.
#
# Rồi bốn phương pháp leo lên cùng một phần thưởng đại diện, và cùng một giám khảo chấm chúng:
# **PPO** (KL k1 trong phần thưởng, như ở trên), **GRPO** (Shao và cs. 2024: lợi thế chuẩn hóa trong
# nhóm, `estimators.group_advantages`, KL k3 trong hàm mất mát, không có mạng giá trị), **DPO**
# (Rafailov và cs. 2023: mục tiêu của §4 giải dạng đóng rồi khớp thẳng lên các cặp,
# `estimators.dpo_loss`) và **best-of-n** (lấy $n$ mẫu SFT, giữ mẫu có phần thưởng đại diện cao nhất;
# không huấn luyện; $KL = \log n - (n-1)/n$, `estimators.best_of_n_kl`). Trục chung là khoảng cách
# $d = \sqrt{KL}$ tới $\pi_{ref}$; Gao và cs. khớp phần thưởng chuẩn bằng $R = d(\alpha - \beta d)$ cho
# best-of-n và $R = d(\alpha - \beta\log d)$ cho RL (`estimators.gao_fit`).
#
# > **English.** *Reward over-optimisation, measured with one judge.* The PPO loop above starts from
# > an SFT model the judge already scores near its ceiling (gold ≈ 0.97 in the course's run): RL
# > has nothing to win, so a β sweep there only shows a policy *drifting* without a leash, not a
# > learned reward being over-optimised. Gao et al. (2023)'s effect needs two things, and
# > `minift.rlhf.setting` builds both from the course's own tasks: **a policy with room** (a short
# > SFT, gold ≈ 0.34 of a ceiling of 1) and **a proxy that can be hacked** — simulated annotators
# > who prefer the judge's better answer *plus* a bonus $b = 0.8$ for a polite opening ("Sure!",
# > "Vâng!") that the judge does not give (it costs reward), with noise (the equations above; §5's
# > *annotator bias*). The Bradley–Terry reward model learns $U$, not $R^\star$. Four methods then
# > climb the same proxy and one judge scores them all: **PPO** (k1 in the reward, as above),
# > **GRPO** (group-standardised advantages, k3 in the loss, no value network), **DPO** (§4's
# > objective solved in closed form and fitted to the pairs) and **best-of-n** (keep the best of $n$
# > SFT samples by the proxy; no training; $KL = \log n - (n-1)/n$). The common axis is
# > $d = \sqrt{KL}$; Gao et al. fit $R = d(\alpha - \beta d)$ (best-of-n) and $R = d(\alpha - \beta\log d)$ (RL).

# %%
# Người gán nhãn của nghiên cứu (the study's annotators): U = R* + b·[mở đầu lịch sự], b = 0.8, tau = 0.05
ann = Annotator()
ex = next(e for e in named_task_examples() if e.task == "max_number")
print("chỉ thị (instruction):", ex.instruction, "| đầu vào (input):", ex.input)
u = {}
for y in (ex.response, "Sure! " + ex.response, "Sure! 3"):
    gold_y = judge(ex.instruction, ex.input, y)
    u[y] = ann.utility(gold_y, y)
    print(f"{y!r:12} chuẩn (gold) R* = {gold_y:+.2f}   người gán nhãn (annotator) U = {u[y]:+.2f}")
print("P(chọn câu lịch sự thay vì câu trả lời trơn — picks the polite one over the bare one) =",
      round(preference_probability(u["Sure! " + ex.response], u[ex.response], ann.noise), 3))

# %% [markdown]
# Toàn bộ nghiên cứu là một hàm, `study.run_study` (dòng lệnh: `minift rlhf --out DIR --seeds 3`). Ô dưới
# chạy nó ở kích thước nhỏ nhất (`StudyConfig.quick()`: vài bước mỗi phương pháp, khoảng một phút) để
# thấy mọi phương pháp và mọi đầu ra; **các con số của nó không có ý nghĩa**. Lần chạy thật, 3 seed,
# được lưu trong `docs/rlhf_results.json` và được đọc ở ô sau.
#
# > **English.** The whole study is one function, `study.run_study` (command line: `minift rlhf --out
# > DIR --seeds 3`). The cell below runs it at its smallest size (`StudyConfig.quick()`: a few steps per
# > method, about a minute) to show every method and output; **its numbers mean nothing**. The real
# > three-seed run is stored in `docs/rlhf_results.json` and read in the cell after.

# %%
# mô hình nền của `make course-models` nếu có, nếu không thì mô hình SFT của notebook (the course's base model, else ours)
base_params, base_cfg = (loop.load_model(course_model("base")) if course_model("base") and not SMALL
                         else (sft_params, cfg))
live = study.run_study(base_params, base_cfg, tok, WORK / "study", seeds=[0], study=study.StudyConfig.quick())
print("curves[method] ->", {m: list(s) for m, s in live["curves"].items()})
print("collapse['ppo']['0']['0'] ->", live["collapse"]["ppo"]["0"]["0"])
print(f"đã chạy {time.perf_counter() - T0:.0f} s (so far)")

# %% [markdown]
# **Lần chạy thật (the real run).** `minift rlhf --out runs/rlhf --seeds 3` (21 phút trên 2 nhân CPU),
# từ mô hình nền của `make course-models` (4 lớp, 128 chiều): SFT 700 bước; 2 121 cặp, trong đó người
# gán nhãn đồng ý với giám khảo ở 78%; mô hình phần thưởng xếp đúng 73% số cặp giữ lại, và tương quan
# 0.49 với giám khảo trên các mẫu của chính sách SFT. PPO 40 vòng lặp × 32 lần sinh mẫu cho mỗi β,
# GRPO 30 vòng lặp, DPO 150 bước, best-of-n từ 64 mẫu SFT cho mỗi lời nhắc. Mỗi ô: trung bình (nhỏ
# nhất–lớn nhất) qua 3 seed của trung bình trượt 5 điểm; *đỉnh* là điểm cao nhất của đường đó, *cuối*
# là điểm cuối cùng; ba cột sau đo trên chính sách cuối, 8 mẫu ở nhiệt độ 1 cho mỗi lời nhắc trong 16
# lời nhắc cố định. Chính sách SFT (best-of-1): phần thưởng chuẩn 0.34, 0.70 câu trả lời khác nhau,
# entropy 0.77, 3% mở đầu lịch sự.
#
# | phương pháp | β hoặc n | chuẩn: đỉnh (gold peak) | chuẩn: cuối (gold final) | KL cuối (nats) | khác nhau (distinct) | entropy | lịch sự (polite) |
# |---|---|---|---|---|---|---|---|
# | PPO | 0 | 0.47 (0.43–0.51) | **0.06** (−0.09–0.23) | **9.82** (4.41–14.16) | 0.73 | 1.26 | 0.32 (0.04–0.76) |
# | PPO | 0.05 | 0.48 (0.46–0.52) | 0.16 (0.12–0.23) | 5.25 (3.60–6.09) | 0.75 | 1.03 | 0.26 |
# | PPO | 0.2 | 0.48 (0.46–0.51) | 0.34 (0.31–0.36) | 2.42 (1.83–2.81) | 0.66 | 1.10 | 0.09 |
# | PPO | 0.5 | 0.48 (0.46–0.51) | **0.42** (0.39–0.44) | **1.31** (1.24–1.40) | 0.59 | 0.98 | 0.02 |
# | GRPO | 0 | 0.45 (0.40–0.48) | 0.16 (0.07–0.29) | 4.31 (2.60–5.74) | 0.81 | 0.91 | 0.45 (0.41–0.52) |
# | GRPO | 0.2 | 0.46 (0.41–0.48) | 0.29 (0.25–0.34) | 1.47 (1.40–1.56) | 0.69 | 1.01 | 0.20 |
# | DPO | 0.05 | 0.44 (0.40–0.46) | 0.39 (0.37–0.42) | 1.24 (1.15–1.33) | 0.75 | 1.00 | 0.29 (0.23–0.33) |
# | DPO | 0.2 | 0.46 (0.43–0.49) | 0.43 (0.40–0.48) | 0.69 (0.62–0.74) | 0.68 | 1.01 | 0.15 |
# | DPO | 1 | 0.49 (0.46–0.53) | 0.49 (0.46–0.53) | 0.21 (0.16–0.25) | 0.60 | 0.92 | 0.05 |
# | best-of-n | 1 → 2 → 4 → 8 → 16 → 32 → 64 | | 0.34 → **0.51** → 0.49 → 0.40 → 0.31 → 0.24 → **0.17** (mỗi giá trị trong ±0.02 qua 3 seed) | 0 → 0.19 → 0.64 → 1.20 → 1.84 → 2.50 → 3.17 | 0.70 → … → **0.12** | 0.77 → … → 1.10 | 0.03 → … → 0.38 (0.31–0.44) |
#
# Những gì 3 seed cho phép nói:
#
# * **Phần thưởng đại diện tăng ở mọi lần chạy** (PPO β = 0: từ 0.53 / −0.12 / −0.44 ở lần sinh mẫu
#   đầu tiên lên 1.62–2.22; best-of-n: 0.47 → 2.38 khi n đi từ 1 đến 64), **còn phần thưởng chuẩn
#   tăng rồi giảm.** PPO β = 0 đạt đỉnh 0.43–0.51 trong 8 vòng lặp đầu, rồi kết thúc ở −0.09–0.23 khi KL
#   lên tới 4.4–14.2 nats; GRPO β = 0 từ đỉnh 0.40–0.48 xuống 0.07–0.29; best-of-n lên 0.51 ở n = 2 rồi
#   rơi xuống dưới cả chính sách SFT từ n = 16. Đó là tối ưu quá mức phần thưởng: càng leo lên phần
#   thưởng học được, chất lượng thật càng mất.
# * **β mua được gì.** Trên cả 3 seed và cho cả ba phương pháp có huấn luyện, β lớn hơn kết thúc ở KL
#   thấp hơn và ở phần thưởng chuẩn cuối cao hơn hoặc bằng (PPO: 0.06 → 0.16 → 0.34 → 0.42 khi β = 0 →
#   0.5; DPO: 0.39 → 0.43 → 0.49 khi β = 0.05 → 1). Nhưng *đỉnh* thì gần như không đổi (PPO ≈ 0.48 với
#   mọi β): dây cương không đưa chính sách lên cao hơn, nó chặn đà rơi — trong 40 vòng lặp, β = 0.5 giữ
#   KL dưới 1.4 nats và phần thưởng chuẩn ở 0.42, gần đỉnh.
# * **Cách lợi dụng, thành lời.** Sau PPO β = 0 (ô dưới in mẫu của cả 3 seed): `Vâng! 6`, `Vâng! Dạ!
#   brown`, `Hertainly! negative` — câu mở đầu lịch sự (hoặc một bản viết sai của nó) mà người gán nhãn thích và giám khảo trừ điểm —
#   và những chuỗi tên màu dài (`black yellow white black …`) mà mô hình phần thưởng chấm cao. Tỉ lệ câu
#   mở đầu lịch sự: 3% ở SFT, 45% sau GRPO β = 0, 29% sau DPO β = 0.05, 38% ở best-of-64 — cao hơn SFT
#   trên mọi seed; sau PPO β = 0 trung bình 32%, nhưng 4% / 76% / 17% theo seed: mỗi seed tìm ra cách
#   lợi dụng của riêng nó. β càng lớn, câu lịch sự càng ít (PPO β = 0.5: 2%, DPO β = 1: 5%).
# * **Điều không xảy ra ở quy mô này.** (1) Không có sụp đổ chế độ (mode collapse) ở các
#   chính sách được huấn luyện: số câu trả lời khác nhau vẫn ở 0.59–0.81 (SFT 0.70) và entropy *tăng*
#   (0.91–1.26, SFT 0.77) — chính sách trôi xa viết ra những chuỗi linh tinh đa dạng. Chỉ best-of-n mới
#   suy sụp theo nghĩa này (0.12 câu khác nhau ở n = 64: lựa chọn ưa thích của mô hình phần thưởng
#   trong 64 mẫu cứ lặp lại). (2) DPO không có một đỉnh rõ ràng: trong 150 bước KL của nó không vượt
#   1.33 nats; với β = 0.05 phần thưởng chuẩn kết thúc thấp hơn đỉnh 0.02–0.09, và ở seed 0 nó không
#   bao giờ vượt lần đo đầu tiên. (3) Dạng RL của Gao và cs. khớp kém (R² 0.20–0.35, các điểm 32 lần
#   sinh mẫu rất nhiễu); dạng best-of-n khớp tốt (R² 0.93, α = 0.38, β = 0.28, đỉnh tại
#   $d = \alpha/2\beta = 0.69$). Đừng đọc các hệ số RL như một định luật.
# * **Khoảng tiến bộ thật là nhỏ.** Không phương pháp nào đưa phần thưởng chuẩn quá ≈ 0.5 (trần là 1):
#   +0.15 so với SFT, trước khi phần thưởng đại diện chiếm lấy.
#
# > **English.** *The real run.* `minift rlhf --out runs/rlhf --seeds 3` (21 minutes on 2 CPU cores),
# > from `make course-models`' base model (4 layers, width 128): SFT 700 steps; 2,121 pairs on which
# > the annotators agree with the judge 78% of the time; a reward model at 73% held-out pairwise
# > accuracy and 0.49 correlation with the judge on the SFT policy's samples. PPO 40 iterations of
# > 32 rollouts per β, GRPO 30 iterations, DPO 150 steps, best-of-n from 64 SFT samples per prompt.
# > Each cell of the table: mean (min–max) over 3 seeds of a 5-point trailing average; *peak* is its
# > highest point, *final* its last; the last three columns are measured on the final policy, 8
# > samples at temperature 1 for each of 16 fixed prompts. The SFT policy (best-of-1): gold 0.34,
# > 0.70 distinct answers, entropy 0.77, 3% opening politely. What 3 seeds support:
# >
# > * **The proxy rises on every run and the gold reward rises, then falls.** PPO β = 0 peaks at
# >   0.43–0.51 within its first 8 iterations and ends at −0.09–0.23 at a KL of 4.4–14.2 nats; GRPO
# >   β = 0 falls from 0.40–0.48 to 0.07–0.29; best-of-n reaches 0.51 at n = 2 and drops below the
# >   SFT policy from n = 16 on, while its proxy climbs 0.47 → 2.38. That is reward over-optimisation.
# > * **What β buys.** On all 3 seeds and for all three trained methods, a larger β ends at a lower
# >   KL and an equal or higher final gold (PPO 0.06 → 0.42 from β = 0 to 0.5; DPO 0.39 → 0.49 from
# >   β = 0.05 to 1). The *peak* hardly moves (≈ 0.48 for every PPO β): the leash does not lift the
# >   policy higher, it stops the fall — within 40 iterations β = 0.5 holds the KL under 1.4 nats
# >   and the gold at 0.42, near its peak.
# > * **The exploit, in words.** After PPO at β = 0: `Vâng! 6`, `Vâng! Dạ! brown`, `Hertainly!
# >   negative` — the polite opening (or a misspelling of it) the annotators like and the judge penalises — and long lists of
# >   colour words (`black yellow white black …`) the reward model scores high. Polite
# >   openings: 3% in the SFT policy, 45% after GRPO β = 0, 29% after DPO β = 0.05, 38% in best-of-64 —
# >   above SFT on every seed; after PPO β = 0, 32% on average but 4% / 76% / 17% by seed: each seed
# >   finds its own exploit. The larger β, the fewer (PPO β = 0.5: 2%, DPO β = 1: 5%).
# > * **What does not happen at this scale.** (1) No mode collapse in the trained policies: distinct
# >   answers stay at 0.59–0.81 (SFT 0.70) and the entropy *rises* (0.91–1.26, SFT 0.77) — the
# >   drifting policies write varied junk. Only best-of-n collapses in this sense (0.12 distinct at
# >   n = 64: the reward model's favourite of 64 samples keeps coming back). (2) DPO shows no clear
# >   peak: its KL stays under 1.33 nats in 150 steps; at β = 0.05 its gold ends 0.02–0.09 below its
# >   peak, and on seed 0 never rises above its first measurement. (3) Gao et al.'s RL form fits
# >   poorly (R² 0.20–0.35; 32-rollout points are noisy); the best-of-n form fits well (R² 0.93,
# >   α = 0.38, β = 0.28, peak at $d = \alpha/2\beta = 0.69$). Do not read the RL coefficients as a law.
# > * **The real gain is small.** No method takes the gold reward past ≈ 0.5 (of 1): +0.15 over SFT
# >   before the proxy takes over.

# %%
recorded = next((p for p in (Path("..") / "docs" / "rlhf_results.json", Path.cwd() / "docs" / "rlhf_results.json")
                 if p.is_file()), None)
if recorded is None:
    print("không tìm thấy docs/rlhf_results.json — hãy chạy `minift rlhf --out runs/rlhf --seeds 3` "
          "(docs/rlhf_results.json not found: run `minift rlhf --out runs/rlhf --seeds 3`)")
else:
    ref = json.loads(recorded.read_text(encoding="utf-8"))
    s = ref["setting"]
    print(f"thiết lập (setting): SFT gold {s['sft_gold']:.2f}, proxy {s['sft_proxy']:.2f}; "
          f"{s['pairs']} cặp (pairs), giám khảo đồng ý (judge agrees) {s['pairs_judge_agreement']:.2f}; "
          f"RM held-out accuracy {s['rm_heldout_accuracy']:.2f}, tương quan với gold trên mẫu SFT "
          f"(correlation with gold on SFT samples) {s['rm_gold_correlation_on_sft_samples']:.2f}; "
          f"{ref['seconds'] / 60:.1f} phút (minutes)")
    print(f"{len(ref['seeds'])} seed; mỗi ô: trung bình (nhỏ nhất–lớn nhất) của trung bình trượt 5 điểm "
          "(each cell: mean (min–max) over seeds of a 5-point trailing average); peak = cao nhất, final = cuối")
    cell = lambda xs: describe(spread(xs), False, 2).removesuffix(f", {len(xs)} seeds)") + ")"  # noqa: E731
    print(f"{'method':>6} {'β / n':>5} {'gold peak':>17} {'gold final':>17} {'proxy final':>17} "
          f"{'KL final':>18} {'distinct':>8} {'entropy':>8} {'polite':>7}")
    for method in ("ppo", "grpo", "dpo", "bon"):
        for name, runs in sorted(ref["curves"][method].items(), key=lambda kv: float(kv[0])):
            sm = [{k: sweep.smooth([p[k] for p in pts]) for k in ("kl", "proxy", "gold")} for pts in runs.values()]
            col = list(ref["collapse"][method][name].values())
            print(f"{method:>6} {name:>5} {cell([v['gold'].max() for v in sm]):>17} "
                  f"{cell([v['gold'][-1] for v in sm]):>17} {cell([v['proxy'][-1] for v in sm]):>17} "
                  f"{cell([v['kl'][-1] for v in sm]):>18} {np.mean([c['distinct'] for c in col]):>8.2f} "
                  f"{np.mean([c['entropy'] for c in col]):>8.2f} {np.mean([c.get('polite', np.nan) for c in col]):>7.2f}")
    for method, fit in ref["fits"].items():
        print(f"Gao et al. ({fit['form']}) {method}: alpha {fit['alpha']:+.3f}, beta {fit['beta']:+.3f}, "
              f"R² {fit['r2']:.2f}")
    for seed, sample_text in ref["samples"]["ppo"]["0"].items():
        print(f"PPO β = 0, seed {seed}: trước (before) {sample_text['first']} → sau (after) {sample_text['last']}")
    display(Image(filename=str(recorded.with_name("rlhf.png"))))
print(f"tổng cộng (total) {time.perf_counter() - T0:.0f} s")

# %% [markdown]
# ## Tóm tắt (summary)
#
# * Mô hình phần thưởng là Transformer SFT với một đầu ra vô hướng tại token thật cuối cùng, được khớp
#   bằng Bradley–Terry trên các cặp; nó xếp hạng các cặp giữ lại tốt hơn hẳn mức ngẫu nhiên nhưng chỉ
#   là một đại diện (proxy) — và nếu người gán nhãn có thiên kiến, nó học luôn thiên kiến đó.
# * Một vòng lặp PPO: sinh mẫu bằng bộ lấy mẫu có bộ nhớ đệm → log-xác suất của chính sách và của mô
#   hình tham chiếu, giá trị, phần thưởng học được → phần thưởng theo từng token (có KL bên trong) → GAE
#   → lợi thế đã chuẩn hóa → các bước cập nhật có cắt. Tại tỉ số 1, hàm mất mát có cắt ≈ 0 nhưng
#   gradient của nó chính là gradient chính sách.
# * KL có thể nằm trong phần thưởng (InstructGPT) hoặc trong hàm mất mát (GRPO); cả hai đều kéo về phía
#   $\pi_{ref}$ — trừ k1 đặt trong hàm mất mát, có gradient kỳ vọng bằng 0.
# * Tối ưu một phần thưởng học được thì có hại khi đi quá xa: ở cả PPO, GRPO và best-of-n, phần thưởng
#   chuẩn tăng rồi giảm trong khi phần thưởng đại diện cứ tăng. β không nâng đỉnh lên; nó giữ chính
#   sách ở KL thấp, nơi phần thưởng chuẩn chưa rơi. Ở quy mô này không có sụp đổ chế độ ở các
#   chính sách được huấn luyện, và DPO không cho thấy một đỉnh rõ ràng.
#
# Dòng lệnh: `minift rm --sft RUN --out RUN_RM`, rồi
# `minift ppo --sft RUN --rm RUN_RM --beta 0.05 --out RUN_PPO` (hoặc `--sweep 0,0.05,0.5`); cả nghiên
# cứu ở mục 4: `minift rlhf --out runs/rlhf --seeds 3` (`--methods ppo dpo`, `--ppo-betas`, `--bon-n`, …).
#
# > **English.** *Summary.*
# >
# > * The reward model is the SFT Transformer with a scalar head at the last real token, fitted by
# >   Bradley–Terry on pairs; it ranks held-out pairs well above chance but is only a proxy — and
# >   when the annotators are biased, it learns their bias too.
# > * One PPO iteration: rollout with the cached sampler → log-probs of policy and reference, values,
# >   learned reward → per-token rewards (KL inside) → GAE → whitened advantages → clipped updates.
# >   At ratio 1 the clipped loss is ≈ 0 but its gradient is the policy gradient.
# > * The KL can sit in the reward (InstructGPT) or in the loss (GRPO); both pull towards
# >   $\pi_{ref}$ — except k1 in the loss, whose expected gradient is zero.
# > * Optimising a learned reward hurts when it goes too far: with PPO, GRPO and best-of-n the gold
# >   reward rises, then falls, while the proxy keeps rising. β does not raise the peak; it keeps the
# >   policy at a low KL, where the gold has not fallen yet. At this scale the trained policies do not
# >   mode-collapse, and DPO shows no clear peak.
# >
# > Command line: `minift rm --sft RUN --out RUN_RM`, then
# > `minift ppo --sft RUN --rm RUN_RM --beta 0.05 --out RUN_PPO` (or `--sweep 0,0.05,0.5`); the
# > whole study of section 4: `minift rlhf --out runs/rlhf --seeds 3` (`--methods ppo dpo`,
# > `--ppo-betas`, `--bon-n`, …).
