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
# # 04 · Tinh chỉnh bằng chỉ thị (Instruction Tuning): từ mô hình nền tảng đến mô hình làm theo câu lệnh — §1, §2
#
# Luận điểm trung tâm của bài viết, được đo đạc thực tế. Một **mô hình nền tảng** (foundation/base
# model, §1) chỉ được huấn luyện trên văn bản thô thì biết từ ngữ và sự kiện nhưng chưa từng thấy một
# câu lệnh nào: khi được yêu cầu *"Hãy dịch câu này sang tiếng Việt"*, nó cứ viết tiếp thay vì dịch.
# **Tinh chỉnh bằng chỉ thị** (instruction tuning, §2) — huấn luyện có giám sát trên nhiều tác vụ, mỗi
# tác vụ được diễn đạt thành một Câu lệnh (Instruction) bằng ngôn ngữ tự nhiên, một Ngữ cảnh bổ trợ
# (Input) tùy chọn và một Phản hồi mong đợi (Target Output) — dạy mô hình *cách làm theo* chỉ dẫn; các
# bài báo FLAN và T0 còn khẳng định khả năng này chuyển sang được cả những câu lệnh và tác vụ chưa từng
# gặp khi huấn luyện (năng lực suy luận Zero-shot — zero-shot ability).
#
# Notebook này chạy toàn bộ quy trình ở quy mô nhỏ — chính là `make demo`, từng bước một:
#
# 1. tiền huấn luyện (pretrain) một mô hình nền tảng trên `data/samples/corpus.txt` (hàm mất mát dự
#    đoán token tiếp theo, tính trên mọi token);
# 2. tinh chỉnh bằng chỉ thị mô hình đó hai lần: với hàm mất mát **có che** (masked) của §3.2 (chỉ các
#    token của phản hồi) và với hàm mất mát **không che** (unmasked: cả các token của lời nhắc);
# 3. so sánh ba mô hình bằng tỉ lệ khớp chính xác (exact match) khi giải mã tham lam (greedy decoding),
#    trên những *cách diễn đạt* được giữ lại (held-out) của các tác vụ đã huấn luyện và trên những
#    *tác vụ* được giữ lại.
#
# Với `MINIFT_NOTEBOOK_SMALL=1` (bộ kiểm thử đặt biến này), mô hình và các lần chạy rất nhỏ nên các con
# số hầu như không có ý nghĩa; bỏ biến này đi để chạy một bản thu nhỏ của demo (200 bước tiền huấn luyện
# và 800 bước SFT, một nửa của demo: khoảng 5 phút trên CPU 2 nhân).
#
# > **English.** *From a base model to one that follows instructions.* The article's central claim,
# > measured. A **base model** (§1) trained only on raw text knows words and facts but has never seen
# > an instruction: asked *"Hãy dịch câu này sang tiếng Việt"* it keeps writing instead of
# > translating. **Instruction tuning** (§2) — supervised training on many tasks, each phrased as a
# > natural-language instruction, an optional input and a target response — teaches it *to follow
# > instructions*, and the FLAN/T0 papers claim this even carries over to instructions and tasks
# > never seen in training (zero-shot ability).
# >
# > This notebook runs the whole pipeline at a small scale — it is `make demo` step by step:
# >
# > 1. pretrain a base model on `data/samples/corpus.txt` (next-token loss on every token);
# > 2. instruction-tune it twice: with the **masked** loss of §3.2 (only response tokens) and with
# >    the **unmasked** loss (prompt tokens too);
# > 3. compare the three with greedy exact match on held-out *phrasings* of the trained tasks and on
# >    held-out *tasks*.
# >
# > With `MINIFT_NOTEBOOK_SMALL=1` (what the test suite sets) the model and the runs are tiny and the
# > numbers mean little; unset it for a smaller version of the demo (200 pretraining and 800 SFT
# > steps, half the demo's: about 5 minutes on a 2-core CPU).

# %%
# Chế độ bài tập (exercise mode): với MINIFT_EXERCISES=<thư mục>, các hàm bạn viết thay cho hàm của minift.
# With MINIFT_EXERCISES=<folder>, your own functions replace minift's (see docs/exercises.md).
import minift.exercises

minift.exercises.install()

# %%
import os, tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from minift import data as D
from minift import runs
from minift.config import get_config
from minift.course.bundled import course_examples, course_model, default_tokenizer
from minift.course.tasks import TASKS
from minift.demo import plot_curves, section1_examples
from minift.evaluate import answer, evaluate, format_table, novelty_subsets
from minift.loop import TrainConfig, load_model

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
PRETRAIN_STEPS, SFT_STEPS, PER_TASK = (16, 24, 4) if SMALL else (200, 800, 16)
# "inline": mỗi trường đứng ngay sau tiêu đề của nó, xem minift.data
TEMPLATE = D.COURSE_TEMPLATE  # "inline": each field after its header, see minift.data
tok = default_tokenizer()
config = get_config("course", vocab_size=tok.vocab_size, **(dict(n_layers=2) if SMALL else {}))
work = Path(tempfile.mkdtemp(prefix="minift-04-"))
print(f"mô hình (model): {config.n_params / 1e6:.2f}M tham số (parameters); thư mục chạy (runs in) {work}")

# %% [markdown]
# ## 1. Dữ liệu (the data) — §2.1: Câu lệnh / Ngữ cảnh bổ trợ / Phản hồi mong đợi
#
# Mười một tác vụ có tên (named tasks), mỗi tác vụ được hỏi bằng hàng chục cách diễn đạt (wordings)
# tiếng Anh và tiếng Việt (bài học của FLAN: nhiều cách diễn đạt cho mỗi tác vụ dạy mô hình làm theo
# *câu lệnh* chứ không phải làm theo một khuôn mẫu; `minift.course.phrasings` ghép chúng từ các phần lõi
# (cores) và khung câu (frames)). Các cách diễn đạt sinh ra từ những phần lõi giữ lại riêng không được
# dùng để huấn luyện (`heldout_phrasing`), các cách diễn đạt do người khác viết độc lập cũng vậy
# (`independent_wording`). Bên cạnh đó là một không gian tác vụ tổ hợp (`minift.course.compose`): mỗi họ
# chọn một từ trong đầu vào (theo vị trí, theo loại, theo giá trị) rồi viết nó ra theo một kiểu chữ,
# một ngôn ngữ và một cách trình bày; câu lệnh nói rõ từng lựa chọn. Một phần các họ được huấn luyện;
# `heldout_task` là những tổ hợp chưa bao giờ được huấn luyện, `heldout_cluster` là các họ của một lựa
# chọn ("từ thứ ba") không câu lệnh huấn luyện nào nhắc đến.
#
# > **English.** *The data (§2.1: instruction / input / target response).* Eleven named tasks, each
# > asked in dozens of English and Vietnamese wordings (FLAN's lesson: many wordings per task teach
# > the model to follow the *instruction*, not a template; `minift.course.phrasings` composes them
# > from cores and frames). Wordings from separate held-out cores are kept out of training
# > (`heldout_phrasing`), so are wordings written independently (`independent_wording`). Beside them,
# > a compositional task space (`minift.course.compose`): each family picks one word of the input (by
# > position, category or value) and writes it in a case, a language and a form, and its instruction
# > says each choice. Some families are trained; `heldout_task` holds combinations never trained,
# > `heldout_cluster` the families of a choice ("the third word") no training instruction names.

# %%
train_ex = course_examples("train")
by_split = {s: course_examples(s) for s in ("heldout_phrasing", "independent_wording", "heldout_task",
                                            "heldout_cluster")}
print(len(train_ex), "ví dụ huấn luyện (training examples);", {s: len(v) for s, v in by_split.items()})
first = {}  # the first example of each named task, then of three composed families
for ex in train_ex:
    first.setdefault(ex.task, ex)
composed = [t for t in first if t not in TASKS][:3]
for task in (*TASKS, *composed):
    ex = first[task]
    print(f"{task:>22}: {ex.instruction!r} | {ex.input!r} -> {ex.response!r}")
for s in ("heldout_task", "heldout_cluster"):
    ex = by_split[s][0]
    print(f"{s}: {len({e.task for e in by_split[s]})} họ (families), ví dụ (e.g.) {ex.task}: "
          f"{ex.instruction!r} | {ex.input!r} -> {ex.response!r}")
print(f"lời nhắc mà mô hình nhìn thấy, khuôn mẫu {TEMPLATE} (the prompt the model sees, {TEMPLATE} template):")
print(D.format_prompt(train_ex[0], TEMPLATE))

# %% [markdown]
# ## 2. Mô hình nền tảng (the base model) — §1
#
# Tiền huấn luyện cực đại hóa $\log P_\theta(X)=\sum_t\log P_\theta(x_t\mid x_{<t})$ trên văn bản thô:
# đó là hàm mất mát không che, tính trên mọi token (`loss="lm"`). Kho ngữ liệu (corpus) nêu ra những từ
# ngữ và sự kiện mà các tác vụ cần đến, dưới dạng câu văn — không bao giờ dưới dạng cặp câu lệnh/đáp án.
#
# > **English.** *The base model (§1).* Pretraining maximises the log-likelihood above on raw text: the
# > unmasked loss on every token (`loss="lm"`). The corpus states the words and facts the tasks use,
# > in sentences — never as instruction/answer pairs.

# %%
pre = TrainConfig(**{**runs.PRETRAIN_DEFAULTS, "steps": PRETRAIN_STEPS,
                     "warmup_steps": min(20, PRETRAIN_STEPS // 5)})
# Sau `make course-models` ta nạp mô hình nền tảng đã huấn luyện sẵn (600 bước) thay vì huấn luyện trong giờ học.
# After `make course-models`, load its base model (600 steps) instead of pretraining during the class.
BASE = None if SMALL else course_model("base")
if BASE is None:
    BASE = work / "base"
    runs.pretrain(BASE, config, pre, tok, progress=False)
print("mô hình nền tảng (base model):", BASE)
ex1 = section1_examples()["article wording"]
params, cfg = load_model(BASE)
print("mô hình nền tảng, khi được hỏi câu của §1 (base model, asked the §1 question):",
      repr(answer(params, cfg, tok, [ex1], template=TEMPLATE, batch_size=1)[0]))

# %% [markdown]
# ## 3. Tinh chỉnh bằng chỉ thị, có che và không che (instruction tuning, masked and unmasked) — §3.2
#
# $$\mathcal{L}_{SFT}(\theta) = -\frac{1}{N}\sum_{i=1}^{N}\log P_\theta(y_i\mid I, y_{<i})$$
#
# Cả hai lần chạy đều xuất phát từ cùng một mô hình nền tảng và nhìn thấy cùng những batch như nhau. Lần
# chạy có che chỉ lấy tổng trên các token phản hồi $y_i$ (lời nhắc $I$ bị nhân với 0); lần chạy không
# che còn dạy mô hình *viết ra lời nhắc*, tức là tiêu tốn sức chứa (capacity) và gradient của mô hình
# cho những đoạn văn bản mà nó sẽ không bao giờ phải tự sinh ra.
#
# > **English.** *Instruction tuning, masked and unmasked (§3.2).* Both runs start from the same base
# > model and see the same batches. The masked run sums only over the response tokens $y_i$ (the
# > prompt $I$ is multiplied by 0); the unmasked run also trains the model to *write prompts*, which
# > spends capacity and gradient on text it will never have to produce.

# %%
for name, loss in (("sft_masked", "sft"), ("sft_unmasked", "lm")):
    cfg_train = TrainConfig(**{**runs.SFT_DEFAULTS, "steps": SFT_STEPS, "loss": loss,
                               "warmup_steps": min(30, SFT_STEPS // 5)})
    runs.sft(work / name, BASE, cfg_train, tok, examples=train_ex,
             eval_examples=by_split["heldout_phrasing"], template=TEMPLATE, progress=False)
folders = {"base": BASE, **{n: work / n for n in ("sft_masked", "sft_unmasked")}}  # BASE: runs/course/base or work/base
plot_curves(folders, work / "curves.png")
plt.imshow(plt.imread(work / "curves.png")); plt.axis("off"); plt.show()


# %% [markdown]
# ## 4. Mô hình có làm theo câu lệnh không? Khớp chính xác trên dữ liệu giữ lại (does it follow instructions?)
#
# Ba phép thử: `heldout_phrasing`, các cách diễn đạt dựng từ những phần lõi giữ lại, có chung chưa đến
# một nửa số từ với mọi cách diễn đạt đã huấn luyện; `independent_wording`, các cách diễn đạt do một
# người chưa từng thấy dữ liệu huấn luyện viết ra; `heldout_task`, các họ tác vụ chưa bao giờ được
# huấn luyện. Dưới mỗi bảng là hai nhóm câu hỏi: những câu có đầu vào (input) đã xuất hiện khi huấn
# luyện và những câu có đầu vào chưa xuất hiện. Ta giải mã tham lam, nên mỗi điểm số là một hàm tất
# định của bộ trọng số. Đường cong hàm mất mát của lần chạy không che không so sánh được với đường của
# lần chạy có che (nó lấy trung bình cả trên các token của lời nhắc); độ chính xác thì so sánh được.
#
# > **English.** *Does it follow instructions? Exact match on held-out wordings and tasks.* Three
# > tests: `heldout_phrasing`, wordings built from held-out cores that share under half their words
# > with every trained wording; `independent_wording`, wordings written by someone who never saw the
# > training ones; `heldout_task`, task families never trained on. Under each table, the questions
# > whose input was seen in training and those whose input was not. Greedy decoding, so each score
# > is a deterministic function of the weights. The unmasked loss's curve is not comparable with the
# > masked one (it averages over prompt tokens too); accuracy is.

# %%
def first_per_task(examples, k):
    out, count = [], {}
    for ex in examples:
        if count.get(ex.task, 0) < k:
            out.append(ex); count[ex.task] = count.get(ex.task, 0) + 1
    return out

# two questions per composed family (39 + 18 families), PER_TASK per named task
asked = {s: first_per_task(v, 2 if s in ("heldout_task", "heldout_cluster") else PER_TASK) for s, v in by_split.items()}
# những câu hỏi nào dùng lại một đầu vào đã thấy khi huấn luyện, và những cách diễn đạt nào có chung
# chưa đến một nửa số từ với mọi cách diễn đạt đã huấn luyện của cùng tác vụ (evaluate.novelty_subsets)
# which questions reuse an input seen in training, and which wordings share under half their words
# with every trained wording of their task (evaluate.novelty_subsets)
subsets = {s: novelty_subsets(v, train_ex) for s, v in asked.items() if s not in ("heldout_task", "heldout_cluster")}
results, section1 = {}, {}
for name, folder in folders.items():
    params, cfg = load_model(folder)
    results[name] = {s: evaluate(params, cfg, tok, v, subsets=subsets.get(s), template=TEMPLATE,
                                 max_new_tokens=16)[0] for s, v in asked.items()}
    section1[name] = answer(params, cfg, tok, [ex1], template=TEMPLATE, batch_size=1)[0]
for split in by_split:
    print(f"\nkhớp chính xác (exact match), {split}\n" + format_table(results, split))
print(f"\n§1: {ex1.instruction} | {ex1.input}  (đáp án mong đợi / expected {ex1.response!r})")
for name, out in section1.items():
    print(f"  {name:>13} -> {out!r}")

# %% [markdown]
# ## Cần để ý điều gì (what to look for)
#
# (Các con số ở thiết lập của notebook này đến từ một seed và một nửa ngân sách huấn luyện của demo;
# README có các con số của demo trên ba seed, kèm theo độ dao động giữa các seed.)
#
# * **Mô hình nền tảng và mô hình SFT.** Mô hình nền tảng được điểm 0: nó viết tiếp lời nhắc như thể đó
#   là văn bản trong kho ngữ liệu. Sau khi tinh chỉnh bằng chỉ thị, mô hình đã biết *trả lời* — đúng
#   ngôn ngữ, đúng loại từ. Với ngân sách của demo, nó trả lời chính xác 75% câu hỏi trong các cách
#   diễn đạt viết độc lập (từ 72 đến 78% qua ba seed). Các tác vụ phải chép từ ngữ từ đầu vào (viết
#   hoa, từ đầu tiên, đảo ngược thứ tự từ) đứng cuối: chép lại từ ngữ cảnh là điều một mô hình nhỏ học
#   chậm nhất.
# * **Có che và không che.** Trên các cách diễn đạt độc lập, mô hình có che thắng ở mọi seed (hơn 12
#   đến 15 điểm với ngân sách của demo). Mọi gradient của hàm mất mát có che đều dành cho việc sinh ra
#   đáp án, còn hàm mất mát không che thưởng cả việc đoán câu lệnh và đầu vào — những thứ mô hình không
#   bao giờ biết trước được. Trên `heldout_phrasing`, nơi trung bình 41% số từ của một câu lệnh không có
#   trong câu lệnh huấn luyện nào (130 trên 132 cách diễn đạt có ít nhất một từ như vậy), cả hai đều quanh
#   mức 40% và ba seed chưa phân định được chênh lệch: một
#   câu lệnh không được hiểu thì không được làm theo, bất kể hàm mất mát nào đã dạy mô hình.
# * **Đầu vào đã thấy và chưa thấy.** Một câu hỏi về một từ, một sự kiện hay một lời nhận xét mà dữ liệu
#   SFT chưa từng dùng (chỉ kho ngữ liệu tiền huấn luyện nhắc đến) ít được trả lời đúng hơn: tinh chỉnh
#   bằng chỉ thị dạy *định dạng* của tác vụ; còn những gì mô hình biết thì đến từ tiền huấn luyện.
# * **Họ tác vụ chưa học.** Với ngân sách của demo, mô hình có che trả lời đúng 11% (8–15% qua ba seed)
#   câu hỏi của các họ tổ hợp chưa từng được huấn luyện, còn mô hình nền tảng được 0%. Mỗi họ đó ghép lại
#   những lựa chọn đã học theo một cách mới. Một lựa chọn chưa từng được dạy ("từ thứ ba") gần như không
#   được suy ra (3%). FLAN (Wei và cs., 2022) chỉ thấy lợi ích trên cả một *cụm* tác vụ chưa thấy ở các
#   mô hình lớn hơn nhiều, trên khoảng 8 tỉ tham số. Notebook 06 đo đường cong theo số họ đã học. §5 của
#   bài viết (và `data/samples/ood.jsonl`) bàn về việc một mô hình như vậy nói gì khi nó không biết.
#
# > **English.** *What to look for.* (Numbers at this notebook's setting are from one seed and half
# > the demo's budget; the README has the demo's, over three seeds, with their spread.)
# >
# > * **Base vs SFT.** The base model scores zero: it continues the prompt as if it were corpus text.
# >   After instruction tuning the model *answers* — in the right language, with the right kind of
# >   word. At the demo's budget it gets 75% of the questions in the independently written wordings
# >   exactly right (72–78% over three seeds). Tasks that copy words from the input (upper-case,
# >   first word, reverse) come last: copying from context is what a small model learns slowest.
# > * **Masked vs unmasked.** On the independent wordings the masked model wins in every seed (by 12
# >   to 15 points at the demo's budget). Every gradient of the masked loss goes to producing
# >   answers, while the unmasked loss also rewards predicting instructions and inputs, which the
# >   model can never know in advance. On `heldout_phrasing`, where on average 41% of an instruction's
# >   words appear in no training instruction (130 of 132 wordings have at least one such word), both
# >   are near 40% and three seeds do not resolve the gap:
# >   an instruction that is not understood is not followed, whatever the loss learned from.
# > * **Seen vs unseen inputs.** A question about a word, fact or review the SFT data never used (only
# >   the pretraining corpus mentions it) is answered correctly less often: instruction tuning
# >   teaches the *format* of a task; what the model knows comes from pretraining.
# > * **Held-out families.** At the demo's budget, the masked model gets 11% (8–15% over three seeds)
# >   of the questions of compositional families never trained on; the base model gets 0%. Each of
# >   those families combines trained choices in a new way. A choice never taught ("the third word")
# >   is hardly inferred (3%). FLAN (Wei et al. 2022) saw the benefit on a whole unseen task
# >   *cluster* only for much larger models, above about 8B parameters. Notebook 06 measures the
# >   curve against the number of trained families. §5 of the article (and
# >   `data/samples/ood.jsonl`) is about what such a model says when it does not know.
