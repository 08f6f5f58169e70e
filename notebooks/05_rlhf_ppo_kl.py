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
# # 05 · RLHF, PPO và độ phân kỳ KL (RLHF with PPO and a KL leash) — §4
#
# After instruction tuning (SFT), the article's §4 goes one step further: học tăng cường từ phản hồi
# của con người (*reinforcement learning from human feedback*, RLHF). People compare two answers;
# a **reward model** $R(x, y)$ learns their judgement; the policy $\pi_\theta$ is then trained with
# PPO to earn more reward, while a KL term (độ phân kỳ KL, *KL divergence*) keeps it near the SFT
# model $\pi_{ref}$:
#
# $$\mathcal{L}_{RL} = \mathbb{E}_{x\sim\mathcal{D},\,y\sim\pi_\theta}\big[R(x, y)\big] - \beta\, D_{KL}\big(\pi_\theta \,\Vert\, \pi_{ref}\big)$$
#
# "to avoid mode collapse" (sụp đổ chế độ). This notebook
#
# 1. starts from an SFT model, $\pi_{ref}$;
# 2. trains the reward model on the course's preference pairs (Bradley–Terry);
# 3. unrolls **one PPO iteration by hand**: rollout, log-probs, KL, per-token rewards, GAE, the
#    clipped loss — and why that loss reads ≈ 0 at ratio 1 while its gradient is not zero;
# 4. explains the two places the KL can go (in the reward, or in the loss);
# 5. runs the **β sweep**: β = 0, a small and a large β, and plots learned reward, gold reward, KL and
#    entropy.
#
# The course's "human" is a program, `minift.course.judge.judge` (the **gold reward**): it labelled
# the preference pairs, and we can ask it how good PPO's answers *really* are — which PPO never
# sees. Everything comes from `minift`; nothing is redefined here. `MINIFT_NOTEBOOK_SMALL=1` selects
# a tiny, fast setting (used by the test suite: numbers there are not meaningful). Set
# `MINIFT_SFT_RUN=<run folder>` to start from an SFT run you already have (e.g. from `minift sft`).

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
from minift.course.bundled import PREFERENCES_FILE, SAMPLES_DIR, corpus_texts, course_examples, default_tokenizer
from minift.course.judge import judge
from minift.generate import Sampling, generate_tokens
from minift.preferences import load_preferences, split_pairs
from minift.rlhf import ppo, reward_model, sweep
from minift.seeds import describe

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
WORK = Path(tempfile.mkdtemp(prefix="minift05_"))
if SMALL:  # seconds: a tiny model, a handful of steps — checks the notebook runs, not the science
    D, PRETRAIN, SFT, RM_STEPS, ITERS, BATCH, NEW, BUCKETS = 64, 20, 20, 20, 2, 8, 6, (96,)
else:      # minutes on 2 CPU cores: the setting whose numbers mean something
    D, PRETRAIN, SFT, RM_STEPS, ITERS, BATCH, NEW, BUCKETS = 128, 250, 550, 100, 25, 32, 12, (48, 64, 96)
tok = default_tokenizer()
T0 = time.perf_counter()
print("small setting" if SMALL else "full setting", "| work folder", WORK)

# %% [markdown]
# ## 0. The starting point: an SFT model, $\pi_{ref}$
#
# PPO starts from the instruction-tuned model and keeps a frozen copy of it as the reference
# $\pi_{ref}$. If `MINIFT_SFT_RUN` names a run folder we load it (`loop.load_model`); otherwise we
# make one here exactly as notebooks 01–04 do: pretrain a small Transformer on the course corpus
# (`loss="lm"`), then instruction-tune it on the train split (`loss="sft"`, the masked loss of §3.2).

# %%
TEMPLATE = data.COURSE_TEMPLATE
if os.environ.get("MINIFT_SFT_RUN"):
    sft_params, cfg = loop.load_model(os.environ["MINIFT_SFT_RUN"])
    TEMPLATE = loop.run_template(os.environ["MINIFT_SFT_RUN"])
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
    print(f"pretrain loss {base.history[-1]['loss']:.3f}, SFT loss {sft_run.history[-1]['loss']:.3f}")
print(f"{model.count_params(sft_params):,} parameters, template {TEMPLATE!r}, {time.perf_counter() - T0:.0f} s so far")

# %% [markdown]
# ## 1. The reward model (mô hình phần thưởng)
#
# People do not write down scores; they say which of two answers they prefer. InstructGPT fits a
# scalar reward to such comparisons with the Bradley–Terry model:
#
# $$P(y_c \succ y_r \mid x) = \sigma\big(R_\phi(x, y_c) - R_\phi(x, y_r)\big),\qquad
# \mathcal{L}_{RM} = -\log\sigma\big(R_\phi(x, y_c) - R_\phi(x, y_r)\big)$$
#
# (`rlhf.bradley_terry_loss`). The network $R_\phi$ is the SFT Transformer with its LM head
# replaced by one linear map $w^\top h + b$ of the final hidden state at the **last real token**
# (the closing EOS — the only position that has read the whole answer); `reward_model.reward_scores`.
# The head starts at zero, so the untrained model ranks every pair as a tie: accuracy 0.5.
#
# Each line of `preferences.jsonl` pairs the true answer (chosen) with a plausible mistake
# (rejected): a wrong answer, a truncated one, the input copied, rambling, repetition. Rejected
# answers are more often *shorter* than the truth — a spurious cue "longer is better" a reward model
# can pick up, and that the gold judge (which charges 0.1 per extra word) will catch.

# %%
pairs = load_preferences(SAMPLES_DIR / PREFERENCES_FILE, template=TEMPLATE)
train_pairs, heldout_pairs = split_pairs(pairs)
print(len(train_pairs), "training pairs,", len(heldout_pairs), "held out. One pair:")
p = pairs[1]
print(repr(p.prompt), "\n  chosen:", repr(p.chosen), "\n  rejected:", repr(p.rejected))
print("gold reward of each:", judge(p.instruction, p.input, p.chosen), judge(p.instruction, p.input, p.rejected))

train_arrays, _ = reward_model.encode_pairs(train_pairs, tok, 96)
heldout_arrays, _ = reward_model.encode_pairs(heldout_pairs, tok, 96)
rm_params = reward_model.init_reward_model(sft_params, cfg)
print("held-out accuracy before training:",
      reward_model.evaluate_reward_model(rm_params, heldout_arrays, cfg)["accuracy"])
rm_params, rm_history = reward_model.train_reward_model(
    rm_params, cfg, train_arrays, reward_model.RMConfig(steps=RM_STEPS, batch_size=32, eval_every=0),
    eval_pairs=heldout_arrays)
rm_eval = reward_model.evaluate_reward_model(rm_params, heldout_arrays, cfg)
print(f"after {RM_STEPS} steps: held-out accuracy {rm_eval['accuracy']:.3f}, loss {rm_eval['loss']:.3f} "
      f"(chance: 0.5 and log 2 = 0.693)")

# %% [markdown]
# The learned reward is only a *proxy* of the judge. Score a few answers to one prompt with both:
# where they disagree is where PPO, which maximises the proxy, can go wrong.

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
    print(f"{a!r:32} learned {r:+.2f}   gold {judge(instruction, x, a, task='first_word'):+.2f}")

# %% [markdown]
# ## 2. One PPO iteration, unrolled by hand
#
# **Rollout.** Sample an answer to each prompt from $\pi_\theta$ at temperature 1 with the cached
# sampler (`minift.generate`); prompts are left-padded to one length so every iteration has the
# same shapes. For each sampled token $y_t$ we need three numbers, from one forward pass each over
# prompt + answer: $\log\pi_{old}(y_t)$ (the policy that sampled), $\log\pi_{ref}(y_t)$ (the frozen
# SFT model) and the value $V(s_t)$ (a linear head on the policy's hidden state); and one number
# per answer, the learned reward $R_\phi(x, y)$. `generate_tokens` samples; `ppo.score_rollout` does
# the rest (and the advantages below) in one jit-compiled function — as `ppo.train_ppo` does.

# %%
settings = ppo.PPOConfig(iterations=ITERS, batch_size=BATCH, max_new_tokens=NEW, beta=0.05)
prompts = ppo.make_prompt_set(course_examples("train"), tok, TEMPLATE)
policy = ppo.init_policy(sft_params, cfg)  # {"policy": copy of the SFT weights, "value_head": zeros}
index = np.arange(settings.batch_size)


def rollout(policy, key):
    """Steps 1-3 of an iteration: sample answers, then score them and compute the advantages."""
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
          f"learned {float(roll.scores[i]):+.2f}, gold {gold[i]:+.2f}")
print("shapes: tokens", roll.tokens.shape, "response", roll.response.shape)

# %% [markdown]
# **KL to the reference.** Per token, with $\log r_t = \log\pi_{ref}(y_t) - \log\pi_\theta(y_t)$,
# Schulman's estimators are $k_1 = -\log r$, $k_2 = \frac12(\log r)^2$, $k_3 = (r - 1) - \log r$
# (`rlhf.kl_estimate`). Before any update $\pi_\theta = \pi_{ref}$, so all are **exactly** 0.

# %%
k1 = rlhf.kl_estimate(roll.logp_old, roll.logp_ref, "k1")
print("max |k1| over the first rollout:", float(jnp.max(jnp.abs(k1))))
print("max |logp_old - logp from the sampler|:", float(jnp.max(jnp.abs(roll.mask * (roll.logp_old - roll.logp_sampler)))))

# %% [markdown]
# **Rewards, advantages.** The reward model scores the whole answer, so its score arrives once,
# at the last token; the KL is charged token by token (InstructGPT):
#
# $$r_t = -\beta\,\mathrm{KL}_t + \begin{cases}R(x,y) & t = \text{last token}\\ 0 & \text{otherwise}\end{cases}$$
#
# (`rlhf.per_token_rewards`). GAE turns rewards and values into advantages,
# $\delta_t = r_t + \gamma V_{t+1} - V_t$, $\hat A_t = \delta_t + \gamma\lambda\hat A_{t+1}$ (`rlhf.gae`),
# which are then whitened over the real tokens (`rlhf.masked_whiten`).

# %%
rewards = rlhf.per_token_rewards(roll.scores, k1, roll.mask, settings.beta)
adv, returns = rlhf.gae(rewards, roll.values, roll.mask, settings.gamma, settings.lam)
white = rlhf.masked_whiten(adv, roll.mask)
np.set_printoptions(precision=2, suppress=True, linewidth=120)
print("mask     ", np.asarray(roll.mask[0]))
print("reward   ", np.asarray(rewards[0]))
print("advantage", np.asarray(adv[0]), "(value head is 0 at the start: A = return)")
print("whitened ", np.asarray(white[0]))
print("same as the rollout's:", bool(jnp.allclose(white, roll.advantages)))

# %% [markdown]
# **The clipped loss at ratio 1.** PPO's policy loss is
#
# $$\mathcal{L}^{CLIP} = -\frac{1}{\sum_t m_t}\sum_t m_t \min\big(\rho_t\hat A_t,\ \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\hat A_t\big),\qquad \rho_t = e^{\log\pi_\theta(y_t) - \log\pi_{old}(y_t)}.$$
#
# On the first minibatch $\pi_\theta = \pi_{old}$, so $\rho_t = 1$ and the loss is $-\mathrm{mean}(\hat A)$:
# about **0**, because the advantages were whitened to mean 0. Yet its gradient with respect to
# $\log\pi_\theta(y_t)$ is $-m_t\hat A_t/\sum m$ — not zero at all: it raises the probability of
# tokens with positive advantage and lowers the others. The *value* of the surrogate means
# nothing; its *slope* is the policy gradient.

# %%
loss_at_1, stats = rlhf.ppo_clip_loss(roll.logp_old, roll.logp_old, roll.advantages, roll.mask, settings.clip_eps)
grad = jax.grad(lambda lp: rlhf.ppo_clip_loss(lp, roll.logp_old, roll.advantages, roll.mask)[0])(roll.logp_old)
expected = -roll.mask * roll.advantages / jnp.sum(roll.mask)
print(f"loss at ratio 1: {float(loss_at_1):+.2e}   ratio mean {float(stats.ratio_mean)}   clip fraction {float(stats.clip_frac)}")
print(f"|gradient| = {float(jnp.linalg.norm(grad)):.3f}, equal to -m*A/sum(m): {bool(jnp.allclose(grad, expected, atol=1e-7))}")

# %% [markdown]
# **The update.** `ppo.ppo_update` runs `epochs` passes over the batch in shuffled
# minibatches — clipped policy loss + ½·clipped value loss (− entropy bonus, 0 here) — as *one*
# jit-compiled function (two nested `lax.scan`s). Its statistics are per (epoch, minibatch): the
# first minibatch has ratio 1 and clips nothing; later ones have moved.

# %%
opt_state = ppo.ppo_optimizer(settings.update_settings()).init(policy)
# compiled once for these settings; the sweep below (other betas, same settings) reuses the program
policy, opt_state, stats = ppo.ppo_update(policy, opt_state, roll, jax.random.PRNGKey(1), jnp.float32(settings.beta),
                                          config=cfg, settings=settings.update_settings())
for name in ("ratio_mean", "clip_frac", "approx_kl", "value_loss"):
    print(f"{name:10}", np.asarray(stats[name]).round(4).tolist())
roll2 = rollout(policy, jax.random.PRNGKey(2))
print("after one update, KL to the reference:", {k: round(v, 4) for k, v in ppo.rollout_metrics(roll2).items()
                                                 if k.startswith("kl")})

# %% [markdown]
# ## 3. Two places for the KL
#
# | | KL **in the reward** (`per_token_rewards`) | KL **in the loss** (`kl_loss_term`) |
# |---|---|---|
# | used by | InstructGPT, Ziegler et al. 2019 (PPO) | GRPO (Shao et al. 2024) and "KL loss" recipes |
# | how the policy feels it | as a reward: $r_t = -\beta\,\mathrm{KL}_t$, credit-assigned by GAE and clipped like any reward | as its own gradient, $\beta\nabla_\theta\,\overline{k}$, added to the clipped surrogate |
# | estimator (default) | k1: the reward needs the KL's *value*, and k1's is unbiased (one batch can be negative) | k3; k2 also works; **k1 is an error** |
# | the direction its gradient follows | $D_{KL}(\pi_\theta\Vert\pi_{ref})$, the article's | k3: $D_{KL}(\pi_{ref}\Vert\pi_\theta)$; k2: $D_{KL}(\pi_\theta\Vert\pi_{ref})$ |
# | what β multiplies | the per-answer **sum** of $\mathrm{KL}_t$ (nats per answer) | the per-token **mean** (nats per token) |
#
# Why k1 cannot go in the loss. The tokens are sampled from $\pi_\theta$ and the sampling is not
# differentiated, so what the loss's gradient does *on average* is
# $\mathbb{E}_{y\sim\pi_\theta}[\nabla_\theta k(y)]$. For $k_1 = \log\pi_\theta(y) - \log\pi_{ref}(y)$ that is
# $\mathbb{E}[\nabla_\theta\log\pi_\theta(y)] = \sum_y\nabla_\theta\pi_\theta(y) = \nabla_\theta 1 = 0$: an unbiased
# estimate of the KL's *value* whose gradient pulls nowhere — noise and no leash. k3's expected
# gradient is $\nabla_\theta D_{KL}(\pi_{ref}\Vert\pi_\theta)$ and k2's is $\nabla_\theta D_{KL}(\pi_\theta\Vert\pi_{ref})$:
# both are 0 at $\pi_{ref}$ and pull towards it (checked by enumeration in
# `tests/test_rlhf_objectives.py`). `PPOConfig(kl_placement="loss", kl_kind="k1")` raises an error
# that says so.
#
# And one β is not the same strength in both places: an answer of $N$ tokens feels in the loss
# about $1/N$ of the pull the same β gives in the reward. In the reward the KL also changes *which*
# answers look good (a drifting token lowers every advantage before it); in the loss it is a
# separate pull applied at every minibatch whatever the advantages. `PPOConfig(kl_placement=...)`
# selects one; the numbers below are both, for the policy after one update.

# %%
k1_now = rlhf.kl_estimate(roll2.logp_old, roll2.logp_ref, "k1")
in_reward = rlhf.per_token_rewards(roll2.scores, k1_now, roll2.mask, settings.beta)
print("KL in the reward: sum of rewards per answer = R - beta * sum KL:",
      np.asarray(jnp.sum(in_reward, axis=1)[:4]).round(3), "vs R:", np.asarray(roll2.scores[:4]).round(3))
print("KL in the loss: beta * mean k3 =", float(rlhf.kl_loss_term(roll2.logp_old, roll2.logp_ref, roll2.mask, settings.beta)))
print("the article's objective E[R] - beta KL:",
      float(rlhf.rlhf_objective(roll2.scores, roll2.logp_old, roll2.logp_ref, roll2.mask, settings.beta)))

# %% [markdown]
# ## 4. The β sweep: what the KL leash does
#
# Same SFT model, reward model, prompts and seed; only β changes (`sweep.run_sweep`). We watch the
# learned reward (what PPO maximises), the gold reward (what we actually want), the KL to
# $\pi_{ref}$ and the entropy of the policy's next-token distributions.

# %%
results = sweep.run_sweep([0.0, 0.05, 0.5], sft_params, cfg, rm_params, cfg, prompts, tok, settings, WORK / "sweep")
start = results["summary"]["0"]
print(f"{'beta':>6} {'learned R':>10} {'gold R':>8} {'KL k1':>7} {'entropy':>8}   (start: learned "
      f"{start['start_reward']['mean']:+.2f}, gold {start['start_gold_reward']['mean']:+.2f})")
for name, s in results["summary"].items():  # each value: mean over the seeds run (one here)
    print(f"{name:>6} {s['final_reward']['mean']:+10.3f} {s['final_gold_reward']['mean']:+8.3f} "
          f"{s['final_kl_k1']['mean']:7.2f} {s['final_entropy']['mean']:8.3f}")
print("final samples:", results["final_samples"])
print(f"{time.perf_counter() - T0:.0f} s so far")

# %% [markdown]
# `run_sweep` drew the figure `sweep.plot_sweep` makes (lines: moving averages over 5 iterations,
# the mean over seeds when several are run, with a band from the lowest to the highest seed). Top: each quantity against the PPO iteration. Bottom:
# learned reward, gold reward and entropy against the KL, and the over-optimisation gap
# learned − gold.

# %%
from IPython.display import Image, display

display(Image(filename=str(WORK / "sweep" / "beta_sweep.png")))

# %% [markdown]
# **What a real run shows.** `docs/beta_sweep.json` and `docs/beta_sweep.png` hold the sweep
# made from the masked SFT model of the demo's seed 0 (0.99M parameters; pretrained 600 steps,
# SFT 1,600), a reward model at 0.79 held-out pairwise accuracy, PPO for 50 iterations of 32
# rollouts, three PPO seeds per β (`minift ppo --sweep 0,0.05,0.5 --seeds 3 --iterations 50`, about
# 12 minutes on 2 CPU cores). Final values are the mean of the last 5 iterations, then mean
# (min–max) over the 3 seeds; every run starts at learned reward 1.25, gold reward 0.97:
#
# | β | learned reward | gold reward | KL (nats / answer) | entropy (nats / token) |
# |---|---|---|---|---|
# | 0    | 1.28 (1.08–1.45) | 0.40 (0.33–0.44) | 16.2 (11.4–24.7) | 1.02 (0.72–1.42) |
# | 0.05 | 1.42 (1.39–1.45) | 0.73 (0.66–0.77) | 2.65 (1.72–4.12) | 0.35 (0.31–0.39) |
# | 0.5  | 1.41 (1.34–1.46) | 0.87 (0.85–0.90) | 0.84 (0.31–1.35) | 0.24 (0.21–0.28) |
#
# * **The KL term is the leash.** The gold-reward ranges do not overlap across the three β: the
#   further the policy drifts, the more of the true quality it loses, and against the KL (bottom row
#   of the figure) all nine runs lie on one curve. At β = 0 the KL passes 10 nats per answer between
#   iterations 26 and 44 (by seed); β = 0.5 keeps it under 1 in most, not all, iterations.
# * **Reward over-optimisation.** The learned reward hardly rises at this scale, yet the gap
#   learned − gold widens: PPO finds answers the reward model scores like good ones and the judge
#   does not (mixed-up words and casing such as `dog NEW HELLO to big`). Gao et al. (2023) measure
#   the same curve on real reward models.
# * **What the toy does not show.** The next-token entropy *rises* with the KL rather than
#   collapsing, and the answers stay distinct: the drifting small policy writes strings the SFT
#   model never would, and is unsure on them. The damage shows in *what* is said.

# %%
recorded = Path("..") / "docs" / "beta_sweep.json"
if not recorded.is_file():
    recorded = Path.cwd() / "docs" / "beta_sweep.json"
if recorded.is_file():
    ref = json.loads(recorded.read_text(encoding="utf-8"))
    print(f"{len(ref['seeds'])} seeds; each value: mean (min–max) over the seeds")
    for name, s in ref["summary"].items():
        print(f"beta {name:>5}: learned {s['start_reward']['mean']:+.2f} -> {describe(s['final_reward'], False, 2)}, "
              f"gold {s['start_gold_reward']['mean']:+.2f} -> {describe(s['final_gold_reward'], False, 2)}, "
              f"KL {describe(s['final_kl_k1'], False, 2)}")
else:
    print("docs/beta_sweep.json not found (run `minift ppo --sweep 0,0.05,0.5 ...` to make one)")
print(f"total {time.perf_counter() - T0:.0f} s")

# %% [markdown]
# ## Summary
#
# * The reward model is the SFT Transformer with a scalar head at the last real token, fitted by
#   Bradley–Terry on pairs; it ranks held-out pairs well above chance but is only a proxy.
# * One PPO iteration: rollout with the cached sampler → log-probs of policy and reference, values,
#   learned reward → per-token rewards (KL inside) → GAE → whitened advantages → clipped updates.
#   At ratio 1 the clipped loss is ≈ 0 but its gradient is the policy gradient.
# * The KL can sit in the reward (InstructGPT) or in the loss (GRPO); both pull towards $\pi_{ref}$.
# * β is the leash: β = 0 lets PPO chase the reward model's mistakes (learned reward up, gold reward
#   down, large KL); β > 0 keeps the policy near the SFT model.
#
# Command line: `minift rm --sft RUN --out RUN_RM`, then
# `minift ppo --sft RUN --rm RUN_RM --beta 0.05 --out RUN_PPO` (or `--sweep 0,0.05,0.5`).
