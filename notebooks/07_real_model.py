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
# # 07 · Một mô hình thật trên máy tính xách tay: SmolLM2-135M-Instruct (§1, §3.2)
#
# Sáu buổi trước dùng mô hình nhỏ của khóa học. Buổi này dùng một mô hình mà mọi người thật sự tải về:
# SmolLM2-135M-Instruct, một tệp GGUF 98 MB (định dạng của llama.cpp, Ollama, LM Studio), lượng tử hóa
# Q4_1. minift tự đọc tệp này: giải lượng tử từng tensor, đổi lại thứ tự hàng của q/k, dựng bộ tách từ và
# mẫu hội thoại từ siêu dữ liệu của tệp. Không cần torch, không cần tài khoản: `make real-model` lấy tệp.
# Biến `MINIFT_NOTEBOOK_SMALL=1` chọn cấu hình nhỏ (bộ kiểm thử dùng cấu hình này).
#
# > **English.** The six earlier meetings used the course's small model. This one uses a model people
# > really download: SmolLM2-135M-Instruct, a 98 MB GGUF file (llama.cpp's format, as used by Ollama and
# > LM Studio), quantized Q4_1. minift reads it itself: each tensor dequantized, the q/k rows put back in
# > order, the tokenizer and chat template rebuilt from the file's metadata. No torch, no account:
# > `make real-model` fetches the file. `MINIFT_NOTEBOOK_SMALL=1` picks the small setting (used by the tests).

# %%
import json
import os
import tempfile
import time
from pathlib import Path

from minift.course.bundled import course_examples, course_model, named_task_examples
from minift.evaluate import accuracy_table, answer
from minift.gguf_llama import save_gguf_llama
from minift.loop import TrainConfig
from minift.real_model import fetch_real_model
from minift.runs import load_any, tune

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
N_EVAL = 8 if SMALL else 48  # held-out questions per split
STEPS = 2 if SMALL else 80  # LoRA steps (about 5 s each at batch 8 x 127 tokens on 2 cores)
path = fetch_real_model()
t0 = time.time()
model = load_any(path)
print(f"{path.name}: {model.config.n_layers} lớp/layers, D={model.config.d_model}, V={model.config.vocab_size}; "
      f"chat template = {model.chat_template!r}; nạp/loaded in {time.time() - t0:.1f} s")

# %% [markdown]
# ## §1 trên một mô hình thật
#
# Câu hỏi mở đầu bài báo, hỏi qua mẫu hội thoại của chính mô hình (`smollm2`: ChatML với lời nhắc hệ
# thống riêng của nó). minift nhận ra mẫu này bằng cách dựng mẫu Jinja trong tệp và so với từng mẫu mình biết.
#
# > **English.** The article's opening question, asked through the model's own chat template (`smollm2`:
# > ChatML with its own system message). minift recognises it by rendering the file's Jinja template and
# > comparing it with each template it knows.

# %%
from minift.data import Example

questions = [Example("What is the capital of France?", "", ""), Example("Thủ đô của Việt Nam là gì?", "", "")]
for ex, reply in zip(questions, answer(model.params, model.config, model.tokenizer, questions,
                                       chat_template=model.chat_template, max_new_tokens=24, batch_size=2)):
    print(f"{ex.instruction!r} -> {reply!r}")

# %% [markdown]
# ## Các tác vụ của khóa học, hỏi không cần ví dụ (zero-shot)
#
# Cùng những câu lệnh mà mô hình của khóa học được tinh chỉnh bằng chỉ thị, giờ hỏi SmolLM2 chưa từng thấy
# chúng. Tiêu chí là khớp chính xác (exact match): một câu trả lời đúng nhưng dài dòng vẫn bị tính sai.
# Bảng dưới đặt hai mô hình cạnh nhau khi mô hình khóa học đã được huấn luyện (`make course-models`).
#
# > **English.** The same instructions the course model was instruction-tuned on, now asked of SmolLM2,
# > which never saw them. The measure is exact match: a right but wordy answer counts as wrong. The table
# > puts the two models side by side when the course model has been trained (`make course-models`).

# %%
splits = {name: course_examples(name)[:N_EVAL] for name in ("heldout_phrasing", "heldout_task")}


def score(m, examples, chat_template):
    predictions = answer(m.params, m.config, m.tokenizer, examples, chat_template=chat_template,
                         template="inline", max_new_tokens=24, batch_size=8)
    return accuracy_table(examples, predictions)["overall"], predictions


before = {name: score(model, examples, model.chat_template) for name, examples in splits.items()}
course = course_model("sft")
course_scores = ({name: score(load_any(course), ex, None)[0] for name, ex in splits.items()} if course else {})
for name in splits:
    theirs = f"{course_scores[name]:.0%}" if course else "chưa huấn luyện / not trained"
    print(f"{name:17s} SmolLM2 zero-shot {before[name][0]:.0%}   mô hình khóa học / course model {theirs}")
ex = splits["heldout_phrasing"][0]
print(f"\nví dụ / example: {ex.instruction!r} {ex.input!r} -> {before['heldout_phrasing'][1][0]!r} "
      f"(đáp án / reference {ex.response!r})")

# %% [markdown]
# ## Tinh chỉnh bằng chỉ thị với LoRA, trên CPU
#
# §3.2 trên mô hình thật: hàm mất mát NLL có che chỉ tính trên câu trả lời, qua mẫu hội thoại của
# mô hình; LoRA hạng 8 chỉ huấn luyện khoảng 2% tham số. Dữ liệu là mười một tác vụ có tên trong phần huấn
# luyện của khóa học (không có các họ tổ hợp).
# Ở cấu hình đầy đủ, 80 bước chạy trong vài phút trên CPU hai lõi.
#
# > **English.** §3.2 on a real model: the masked NLL loss on the replies only, through the model's chat
# > template; rank-8 LoRA trains about 2% of the parameters. The data is the eleven named tasks of the
# > course's training split (not the compositional families). In
# > the full setting, 80 steps take a few minutes on a two-core CPU.

# %%
work = Path(tempfile.mkdtemp(prefix="minift-07-"))
train_file = work / "course_train.jsonl"
train_file.write_text("".join(json.dumps({"instruction": e.instruction, "input": e.input, "output": e.response},
                                         ensure_ascii=False) + "\n" for e in named_task_examples()),
                      encoding="utf-8")
t0 = time.time()
train = TrainConfig(steps=STEPS, batch_size=2 if SMALL else 8, learning_rate=5e-4, warmup_steps=0 if SMALL else 8,
                    eval_every=STEPS, checkpoint_every=STEPS, lora_rank=8, lora_alpha=16.0)
result = tune(work / "lora", path, train, data=train_file, max_len=128, buckets=(127,), progress=not SMALL,
              report=print)
print(f"{STEPS} bước/steps in {time.time() - t0:.0f} s")
tuned = load_any(work / "lora")
after = {name: score(tuned, examples, tuned.chat_template) for name, examples in splits.items()}
for name in splits:
    print(f"{name:17s} trước/before {before[name][0]:.0%}  sau/after {after[name][0]:.0%}")

# %% [markdown]
# Con số trên là một lần chạy, một hạt giống, trên 48 câu mỗi phần (8 ở cấu hình nhỏ): đủ để thấy
# hướng thay đổi, không đủ để khẳng định một mức chính xác. Lưu ý `heldout_task` là những họ tác vụ
# không có trong dữ liệu huấn luyện.
#
# Một lần chạy ở cấu hình đầy đủ (CPU 2 nhân, 2026-12-07, *trước khi* không gian tác vụ tổ hợp thay thế
# các họ giữ lại cũ — chữ thường, từ thứ hai, số nhỏ nhất — trong `heldout_task`; 80 bước LoRA mất 587
# giây, cả notebook 11 phút 40 giây) cho: SmolLM2 zero-shot 0% ở cả hai phần, mô hình của khóa học 50% (`heldout_phrasing`) và 0%
# (`heldout_task`); sau LoRA, SmolLM2 được 0% và 10% (5 trên 48 câu). Điều thay đổi rõ nhất là *dạng*
# câu trả lời: "The capital of France is Paris." thành "Paris", và câu hỏi tiếng Việt (trước đó mô hình
# đã trả lời vô nghĩa) giờ nhận câu trả lời "2". Tinh chỉnh ngắn dạy mô hình kiểu trả lời cụt của dữ liệu
# khóa học trước khi dạy được tác vụ. Với một hạt giống và 48 câu, chênh lệch 10 điểm chưa phải là một
# kết quả. Một lần chạy lại hỏi các họ tổ hợp mới (`minift.course.compose`), nên các con số khác: lần chạy
# ngày 2026-12-08 (`docs/expected/07_real_model.ipynb`, 8 phút 53 giây) cho mô hình của khóa học 48% và 23%,
# SmolLM2 sau LoRA vẫn 0% và 0%, và vẫn rút câu trả lời về "Paris".
#
# > **English.** The figures above are one run, one seed, on 48 questions per split (8 in the small
# > setting): enough to see the direction of change, not to claim an accuracy. Note that `heldout_task`
# > holds task families that are not in the training data.
# >
# > One run at the full setting (2-core CPU, 2026-12-07, *before* the compositional task space replaced
# > the old held-out families — lowercase, second word, smallest number — in `heldout_task`; the 80 LoRA
# > steps took 587 s, the whole notebook 11 min 40 s) gave: SmolLM2 zero-shot 0% on both splits, the course model 50% (`heldout_phrasing`) and
# > 0% (`heldout_task`); after LoRA, SmolLM2 0% and 10% (5 of 48). What changed most is the *form* of the
# > answers: "The capital of France is Paris." became "Paris", and the Vietnamese question (answered with
# > nonsense before) now gets "2". A short tune teaches the course data's terse answer style before it
# > teaches the tasks. With one seed and 48 questions, a 10-point difference is not a result. A rerun
# > asks the new compositional families (`minift.course.compose`), so its figures differ: the run of
# > 2026-12-08 (`docs/expected/07_real_model.ipynb`, 8 min 53 s) gave the course model 48% and 23%,
# > SmolLM2 after LoRA still 0% and 0%, and the answer still shrinking to "Paris".

# %% [markdown]
# ## Xuất ra GGUF và nạp lại
#
# Mô hình đã tinh chỉnh (LoRA đã gộp vào trọng số) được ghi thành một tệp GGUF Q8_0, mang theo bộ tách
# từ và mẫu hội thoại mà nó đã được tinh chỉnh; llama.cpp hay Ollama đọc được tệp này. Nạp lại bằng
# minift, nó trả lời như trước khi xuất (sai khác nhỏ do lượng tử hóa Q8_0).
#
# > **English.** The tuned model (LoRA merged into the weights) is written as a Q8_0 GGUF file carrying the
# > tokenizer and the chat template it was tuned with; llama.cpp or Ollama can read it. Reloaded by minift,
# > it answers as before the export (small differences come from the Q8_0 quantization).

# %%
from minift.commands.export import export_jinja

out = save_gguf_llama(tuned.params, tuned.config, work / "tuned.q8_0.gguf", tuned.tokenizer, dtype="q8_0",
                      chat_template=export_jinja(tuned, work / "lora"))
reloaded = load_any(out)
print(f"{out.name}: {out.stat().st_size / 1e6:.0f} MB, chat template {reloaded.chat_template!r}")
for ex, a, b in zip(questions, answer(tuned.params, tuned.config, tuned.tokenizer, questions,
                                      chat_template=tuned.chat_template, max_new_tokens=16, batch_size=2),
                    answer(reloaded.params, reloaded.config, reloaded.tokenizer, questions,
                           chat_template=reloaded.chat_template, max_new_tokens=16, batch_size=2)):
    print(f"{ex.instruction!r}: trước khi xuất/before export {a!r} | sau khi nạp lại/reloaded {b!r}")
