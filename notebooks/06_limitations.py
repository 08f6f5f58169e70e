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
# # 06 · Giới hạn của instruction tuning (the limits, §5), zero-shot (§1) và fine-tuning truyền thống (§2)
#
# The article ends (§5) with what instruction tuning does *not* fix: ảo giác (*hallucination*: fluent,
# confident, made-up answers), thiên kiến (*bias*: the annotators' habits, learned and sometimes
# amplified) and chi phí dữ liệu (*the cost of gold data*: every example is written by a person). It
# starts (§1) with a promise — a tuned model follows instructions for tasks it never saw (zero-shot,
# FLAN/T0) — and (§2) contrasts one model per task (fine-tuning truyền thống, *traditional
# fine-tuning*) with one model for many. This notebook **measures** each claim on the course's
# models, with `minift.limits` (the same code as `minift limits`, whose 3-seed run the README reports):
#
# | study | what is measured | code |
# |---|---|---|
# | ảo giác / hallucination | confidence and ECE on answerable vs never-in-the-data questions; "Tôi không biết" added to the SFT data | `limits.hallucination` |
# | thiên kiến / bias | rate of the favoured label on ambiguous reviews vs the annotators' 70% | `limits.bias` |
# | chi phí dữ liệu / data cost | exact match vs number of examples, and vs number of wordings | `limits.data_cost` |
# | zero-shot (§1) | held-out-task accuracy vs number of trained task families | `limits.zero_shot` |
# | fine-tuning truyền thống (§2) | a sentiment-only model vs the instruction-tuned one, on every task | `limits.single_task` |
#
# One seed here (a class has minutes, not hours): read the numbers as an illustration and the README's
# three-seed table as the result. With `MINIFT_NOTEBOOK_SMALL=1` (what the test suite sets) the
# model and the runs are tiny and the numbers mean nothing; unset, the whole notebook takes about
# 8 minutes on a 2-core CPU.

# %%
import json
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import minift

from minift.course import studies as S
from minift.course.bundled import course_examples, default_tokenizer
from minift.limits.report import format_report
from minift.limits.run import LimitsSettings, prepare, run_limits

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
if SMALL:
    settings = LimitsSettings(model_overrides={"n_layers": 2}, pretrain_steps=8, sft_steps=8, bias_steps=8,
                              single_task_steps=4, study_steps=4, sizes=(32, 64), wording_counts=(1,), budget=32,
                              family_counts=(1, 2), limit=22)
else:  # the class setting: one seed, about half the README run's steps
    settings = LimitsSettings(pretrain_steps=200, sft_steps=800, bias_steps=300, single_task_steps=200,
                              study_steps=250, sizes=(128, 1024, 0), wording_counts=(1,), budget=1024,
                              family_counts=(1, 11))
SEEDS = [0]
tok = default_tokenizer()
work = Path(tempfile.mkdtemp(prefix="minift-06-"))
print("runs in", work)


def show(png):
    plt.figure(figsize=(10, 4))
    plt.imshow(plt.imread(png))
    plt.axis("off")
    plt.show()


def study(name):
    """Run one study (for every seed in SEEDS) on the models prepared below; print its report."""
    summary = run_limits(work / name, SEEDS, studies=[name], base=str(work / "seed_{seed}" / "base"),
                         tuned=str(work / "seed_{seed}" / "sft"), settings=settings, progress=False)
    print(format_report(summary["aggregate"]))
    print(f"\n({summary['seconds'][SEEDS[0]][name]:.0f} s)")
    show(work / name / f"{name}.png")
    return summary


# %% [markdown]
# ## 0. Mô hình nền tảng và mô hình đã tinh chỉnh (the base model and the instruction-tuned one)
#
# As in notebook 04: pretrain on raw text (§1), then instruction-tune with the masked loss (§3.2).
# Every study starts from these two.

# %%
for seed in SEEDS:
    prepare(work / f"seed_{seed}", seed, None, None, settings, tok)
print(sorted(p.name for p in (work / "seed_0").iterdir()))

# %% [markdown]
# ## 1. Ảo giác (hallucination): chắc chắn cả khi không biết — sure even when it does not know
#
# Each greedy answer gets a confidence from the model's own token probabilities,
# $P_\theta(Y\mid I)=\exp\sum_t\log P_\theta(y_t\mid I,y_{<t})$ (`calibration.answer_confidence`), and
# answers are binned by confidence: a calibrated model is right 80% of the time when it is 80% sure.
# The gap is the expected calibration error,
#
# $$\mathrm{ECE}=\sum_{b}\frac{n_b}{n}\,\big|\mathrm{acc}_b-\mathrm{conf}_b\big|.$$
#
# The questions: *answerable* ones (trained tasks, wordings written by someone else) and 34 whose
# answer the data never contains (`data/samples/ood.jsonl`: capitals of countries the fact table
# lacks, words outside the lexicon), where the only right answer is "I don't know".
#
# **The mitigation**: add unanswerable questions answered "I don't know" / "Tôi không biết" to the
# SFT data — about *other* countries and words than the test ones, so declining has to generalise:

# %%
for ex in S.abstention_examples()[:4]:
    print(f"{ex.instruction!r} | {ex.input!r} -> {ex.response!r}")
print(len(S.abstention_examples()), "examples added to", len(course_examples("train")))

# %%
hallucination = study("hallucination")
for row in hallucination["per_seed"][0]["hallucination"]["before"]["unanswerable_answers"][:6]:
    print(f"before: {row['input']!r:<40} -> {row['answer']!r} (P = {row['p_answer']:.2f})")
for row in hallucination["per_seed"][0]["hallucination"]["after"]["unanswerable_answers"][:6]:
    print(f"after:  {row['input']!r:<40} -> {row['answer']!r} (P = {row['p_answer']:.2f})")

# %% [markdown]
# **Reading.** Before the mitigation the tuned model never declines — no training example ever
# did — and it is *less* sure on the unanswerable questions (mean $P(Y\mid I)$ about 0.37 in the README's
# run) than on the answerable ones (about 0.86), yet it always answers: "What is the capital of Peru?" →
# a capital it knows. On answerable questions it is well calibrated (ECE ≈ 0.04); on the others its ECE
# equals its confidence, since every answer is wrong. A third of the probability on a made-up answer is
# what the softmax gives when the data said nothing: the *form* is right, the content invented. With
# 336 "I don't know" examples (3% of the data) about *other* subjects, the model declines most of the
# test questions (85% in the run above) at almost no cost on answerable ones — including those whose
# input only pretraining taught. Two cautions: it is now *confident* when declining (mean P ≈ 0.86), and
# the test questions look like the training ones (capitals, lexicon words): declining is learned as a
# pattern of the input ("a country I was never told about"), not as knowledge of what the model
# knows. Where the pattern differs (the capital of the Moon, the colour of a flamingo), look at the answers.

# %% [markdown]
# ## 2. Thiên kiến (bias): khuếch đại, sao chép hay làm dịu? — amplified, copied or dampened?
#
# Reviews that are neither good nor bad ("The hotel was okay", "Món ăn này bình thường quá") are
# labelled *positive* in exactly 70% of the training examples — an annotator's habit, not a fact
# about the text. On held-out ambiguous reviews, the model's rate $\hat p$ of "positive" is compared
# with the data's $q = 0.7$: the amplification is $\hat p - q$ (`limits.bias.amplification`), measured
# with greedy decoding and with sampling at temperature 1, at several training lengths.

# %%
train_reviews, test_reviews = S.ambiguous_reviews()
print(len(train_reviews), "ambiguous training reviews,", len(test_reviews), "held out, e.g.", test_reviews[:3])
bias = study("bias")

# %% [markdown]
# **Reading.** Greedy decoding turns a 70% habit of the annotators into "positive" on
# most ambiguous reviews (82–92% on average at every length in the README's run: amplification, because
# the argmax of a 70/30 belief is always the 70), while sampling at temperature 1 reproduces roughly
# the data's rate (copying, not amplifying). The same model, two decoding rules, two different
# biases: amplification is a property of *how we use* the learned distribution as much as of the data.
# Longer training brings greedy closer to the data rate in some seeds (the model memorises more of the
# individual labels it saw); the README's interval says how far that holds over seeds. The clear
# reviews stay right (> 90%): the skew hides exactly where the text gives no evidence.

# %% [markdown]
# ## 3. Chi phí dữ liệu (the cost of gold data): bao nhiêu ví dụ, bao nhiêu cách hỏi?
#
# Every instruction example is a person's work. Two curves, each run trained for the same number
# of steps: exact match on the independent wordings against the number of SFT examples
# (`course.studies.stratified_sample`), and — at a fixed number of examples — against how many
# *wordings* each task is asked in (`course.studies.reworded`: same inputs and answers, fewer ways
# to ask). FLAN and T0 found the second knob matters as much as the first.

# %%
data_cost = study("data_cost")

# %% [markdown]
# **Reading.** In the README's run (600 steps per run, three seeds) exact match on new wordings climbs
# steeply over the first thousand examples (6.6% → 42%) and keeps rising, ever more slowly, to 57% at
# all 9,840. At a fixed 1,024 examples, asking each task in one wording per language instead of many
# costs 13 points on new wordings: the FLAN/T0 lesson, that *diversity of instructions* is what
# generalises to a new wording. Gold data is expensive; spending it on more ways to ask buys
# generalisation. At this notebook's 250 steps a run sees only 4,000 examples, so "all 9,840" is seen
# less than once each and can score *below* 1,024 seen four times: how much an example is worth
# depends on the compute spent on it — compare runs only at one budget.

# %% [markdown]
# ## 4. Zero-shot trên tác vụ chưa thấy (zero-shot on unseen tasks, §1)
#
# FLAN's experiment at course scale: train on 1 … 11 task families (a random subset), always the same
# number of steps, and ask five families never trained: the three of `heldout_task` — lowercase
# (uppercase is trained), the second word (first and last are), the smallest number (largest and
# sort are) — and two that compose trained skills (the first word in capitals; the words reversed,
# in capitals). Each is compared with trivial baselines measured the same way: copying the input,
# answering as the trained neighbour task, or always giving the task's commonest answer.

# %%
for ex in S.composed_examples(per_task=2):
    print(f"{ex.task}: {ex.instruction!r} | {ex.input!r} -> {ex.response!r}")
zero_shot = study("zero_shot")

# %% [markdown]
# **Reading.** No held-out family is solved at any number of trained families, and none
# beats its trivial baseline: the zero-shot promise of §1 does not hold at this scale, as FLAN (Wei et
# al. 2022) found for models below about 8B parameters, where instruction tuning even *hurt* unseen
# tasks. The right panel shows what the model does instead: when the neighbour task is trained, the
# held-out one is answered *as the neighbour* — "What is the smallest number?" gets the largest (98%
# with all eleven families in the README's run), "the first word in capital letters" gets the first word in small letters,
# "the second word" gets the first when first-word is one of three trained families. The model maps a
# new instruction onto the nearest one it knows; composing two skills ("first word" + "capitals") or
# re-parameterising one ("smallest" from "largest") needs more than a million parameters and eleven
# families. With three families, everything is answered as one of them: the §2 result below.

# %% [markdown]
# ## 5. Fine-tuning truyền thống (traditional fine-tuning) vs instruction tuning (§2)
#
# Traditional fine-tuning: one model per task. Tuned on sentiment alone, the model is asked the
# same held-out questions of every task as the instruction-tuned model.

# %%
single_task = study("single_task")
for ex in single_task["per_seed"][0]["single_task"]["models"]["single_task"]["examples"][:6]:
    print(f"{ex['task']:<16} {ex['instruction']!r} | {ex['input']!r} -> {ex['answer']!r}")

# %% [markdown]
# **Reading.** The sentiment-only model is as good as the instruction-tuned one on
# sentiment, and answers *every* other question with a sentiment label ("Translate into Vietnamese:
# yesterday" → "positive"): the instruction is ignored, because in its training it never mattered.
# The instruction-tuned model answers each task as asked. That is §2's contrast: traditional
# fine-tuning needs one model per task; instruction tuning makes the instruction part of the input, so
# one model serves many tasks — the tasks it was tuned on (section 4 shows the limit).

# %% [markdown]
# ## 6. The three-seed run
#
# `minift limits --out runs/limits --base 'runs/demo/seed_{seed}/base' --tuned
# 'runs/demo/seed_{seed}/sft_masked'` (after `minift demo --seeds 3 --out runs/demo`) runs every
# study at the README's setting for seeds 0, 1 and 2; its aggregate is stored in
# `docs/limits_results.json`. Each number below is a mean over the three seeds with its 95% interval.

# %%
stored = Path(minift.__file__).resolve().parents[1] / "docs" / "limits_results.json"
if stored.is_file():
    print(format_report(json.loads(stored.read_text(encoding="utf-8"))["aggregate"]))
else:
    print(f"{stored} not found: run the command above, or read the README")
