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
# # 06 · Giới hạn của tinh chỉnh bằng chỉ thị (the limits of instruction tuning, §5), năng lực Zero-shot (§1) và fine-tuning truyền thống (§2)
#
# Bài viết khép lại (§5) bằng những điều mà tinh chỉnh bằng chỉ thị (instruction tuning) *không* khắc
# phục được: ảo giác (hallucination: những câu trả lời trôi chảy, tự tin nhưng bịa đặt), thiên kiến
# (bias: thói quen của người gán nhãn — annotator — được mô hình học lại và đôi khi còn bị khuếch đại) và
# chi phí dữ liệu (data cost: mỗi ví dụ chuẩn đều do một người viết ra). Bài viết mở đầu (§1) bằng một
# lời hứa — mô hình đã tinh chỉnh làm theo câu lệnh ngay cả với những tác vụ nó chưa từng thấy (năng lực
# suy luận Zero-shot, FLAN/T0) — và (§2) đối chiếu cách làm mỗi tác vụ một mô hình (fine-tuning truyền
# thống — traditional fine-tuning) với một mô hình cho nhiều tác vụ. Notebook này **đo** từng khẳng định
# ấy trên các mô hình của khóa học, bằng `minift.limits` (cùng mã với lệnh `minift limits`, có kết quả
# chạy ba seed được báo cáo trong README):
#
# | nghiên cứu (study) | đo gì (what is measured) | mã (code) |
# |---|---|---|
# | ảo giác (hallucination) | độ tin cậy và ECE trên câu hỏi trả lời được so với câu hỏi mà dữ liệu không hề có đáp án; thêm "Tôi không biết" vào dữ liệu SFT / *confidence and ECE on answerable vs never-in-the-data questions; "I don't know" added to the SFT data* | `limits.hallucination` |
# | thiên kiến (bias) | tỉ lệ nhãn được ưu ái trên các nhận xét mơ hồ so với mức 70% của người gán nhãn / *rate of the favoured label on ambiguous reviews vs the annotators' 70%* | `limits.bias` |
# | chi phí dữ liệu (data cost) | khớp chính xác theo số ví dụ, và theo số cách diễn đạt / *exact match vs number of examples, and vs number of wordings* | `limits.data_cost` |
# | Zero-shot (§1) | độ chính xác trên tác vụ giữ lại theo số họ tác vụ đã huấn luyện / *held-out-task accuracy vs number of trained task families* | `limits.zero_shot` |
# | fine-tuning truyền thống (traditional fine-tuning, §2) | một mô hình chỉ học cảm xúc so với mô hình tinh chỉnh bằng chỉ thị, trên mọi tác vụ / *a sentiment-only model vs the instruction-tuned one, on every task* | `limits.single_task` |
#
# Ở đây chỉ chạy một seed (một buổi học có vài phút chứ không có vài giờ): hãy đọc các con số như một
# minh họa, còn bảng ba seed của README mới là kết quả. Với `MINIFT_NOTEBOOK_SMALL=1` (bộ kiểm thử đặt
# biến này), mô hình và các lần chạy rất nhỏ và các con số không có ý nghĩa gì; khi không đặt biến này,
# cả notebook mất khoảng 8 phút trên CPU 2 nhân.
#
# > **English.** *The limits of instruction tuning (§5), zero-shot (§1) and traditional fine-tuning
# > (§2).* The article ends (§5) with what instruction tuning does *not* fix: hallucination (fluent,
# > confident, made-up answers), bias (the annotators' habits, learned and sometimes amplified) and
# > data cost (the cost of gold data: every example is written by a person). It starts (§1) with a
# > promise — a tuned model follows instructions for tasks it never saw (zero-shot, FLAN/T0) — and
# > (§2) contrasts one model per task (traditional fine-tuning) with one model for many. This notebook
# > **measures** each claim on the course's models, with `minift.limits` (the same code as `minift
# > limits`, whose 3-seed run the README reports); the table above lists the studies.
# >
# > One seed here (a class has minutes, not hours): read the numbers as an illustration and the
# > README's three-seed table as the result. With `MINIFT_NOTEBOOK_SMALL=1` (what the test suite sets)
# > the model and the runs are tiny and the numbers mean nothing; unset, the whole notebook takes
# > about 8 minutes on a 2-core CPU.

# %%
# Chế độ bài tập (exercise mode): với MINIFT_EXERCISES=<thư mục>, các hàm bạn viết thay cho hàm của minift.
# With MINIFT_EXERCISES=<folder>, your own functions replace minift's (see docs/exercises.md).
import minift.exercises

minift.exercises.install()

# %%
import json
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import minift

from minift.course import studies as S
from minift.course.bundled import course_examples, course_model, default_tokenizer, named_task_examples
from minift.limits.report import format_report
from minift.limits.run import LimitsSettings, prepare, run_limits

SMALL = os.environ.get("MINIFT_NOTEBOOK_SMALL") == "1"
if SMALL:
    settings = LimitsSettings(model_overrides={"n_layers": 2}, pretrain_steps=8, sft_steps=8, bias_steps=8,
                              single_task_steps=4, study_steps=4, zero_shot_steps=4, sizes=(32, 64),
                              wording_counts=(1,), budget=32, family_counts=(1, 2), limit=22)
else:
    # thiết lập cho buổi học: một seed, khoảng một nửa số bước của lần chạy trong README
    # the class setting: one seed, about half the README run's steps
    settings = LimitsSettings(pretrain_steps=200, sft_steps=800, bias_steps=300, single_task_steps=200,
                              study_steps=250, zero_shot_steps=600, sizes=(128, 1024, 0), wording_counts=(1,),
                              budget=1024, family_counts=(4, 92))
SEEDS = [0]
tok = default_tokenizer()
work = Path(tempfile.mkdtemp(prefix="minift-06-"))
print("thư mục chạy (runs in)", work)


def show(png):
    plt.figure(figsize=(10, 4))
    plt.imshow(plt.imread(png))
    plt.axis("off")
    plt.show()


def study(name):
    """Chạy một nghiên cứu (với mọi seed trong SEEDS) trên các mô hình chuẩn bị bên dưới; in báo cáo của nó.

    Run one study (for every seed in SEEDS) on the models prepared below; print its report."""
    summary = run_limits(work / name, SEEDS, studies=[name], base=str(MODELS[0]), tuned=str(MODELS[1]),
                         settings=settings, progress=False)
    print(format_report(summary["aggregate"]))
    print(f"\n({summary['seconds'][SEEDS[0]][name]:.0f} s)")
    show(work / name / f"{name}.png")
    return summary


# %% [markdown]
# ## 0. Mô hình nền tảng và mô hình đã tinh chỉnh (the base model and the instruction-tuned one)
#
# Như trong notebook 04: tiền huấn luyện trên văn bản thô (§1), rồi tinh chỉnh bằng chỉ thị với hàm mất
# mát có che (§3.2). Mọi nghiên cứu đều xuất phát từ hai mô hình này.
#
# > **English.** As in notebook 04: pretrain on raw text (§1), then instruction-tune with the masked
# > loss (§3.2). Every study starts from these two.

# %%
# Sau `make course-models` ta nạp hai mô hình đã huấn luyện sẵn; nếu không, huấn luyện chúng ở đây.
# After `make course-models` its two models are loaded; otherwise they are trained here.
COURSE = (None, None) if SMALL else (course_model("base"), course_model("sft"))
MODELS = prepare(work / "seed_0", SEEDS[0], *COURSE, settings, tok)
print("mô hình nền tảng, mô hình đã tinh chỉnh (base, tuned):", *MODELS)

# %% [markdown]
# ## 1. Ảo giác (hallucination): chắc chắn cả khi không biết
#
# Mỗi câu trả lời giải mã tham lam (greedy) nhận một độ tin cậy (confidence) tính từ chính các xác suất
# token của mô hình, $P_\theta(Y\mid I)=\exp\sum_t\log P_\theta(y_t\mid I,y_{<t})$
# (`calibration.answer_confidence`), và các câu trả lời được chia thành các ngăn (bins) theo độ tin cậy:
# một mô hình được hiệu chuẩn tốt (calibrated) sẽ đúng 80% số lần khi nó chắc chắn 80%. Độ lệch giữa hai
# đại lượng đó là sai số hiệu chuẩn kỳ vọng (expected calibration error, ECE),
#
# $$\mathrm{ECE}=\sum_{b}\frac{n_b}{n}\,\big|\mathrm{acc}_b-\mathrm{conf}_b\big|.$$
#
# Các câu hỏi gồm: những câu *trả lời được* (tác vụ đã huấn luyện, cách diễn đạt do người khác viết) và
# 34 câu mà dữ liệu không bao giờ chứa đáp án (`data/samples/ood.jsonl`: thủ đô của những nước không có
# trong bảng sự kiện, những từ nằm ngoài bộ từ vựng — lexicon), với chúng câu trả lời đúng duy nhất là
# "Tôi không biết".
#
# **Biện pháp giảm nhẹ (the mitigation)**: thêm vào dữ liệu SFT những câu hỏi không trả lời được, kèm
# đáp án "I don't know" / "Tôi không biết" — về những nước và những từ *khác* với các câu hỏi kiểm thử,
# để việc từ chối buộc phải tổng quát hóa:
#
# > **English.** *Hallucination: sure even when it does not know.* Each greedy answer gets a
# > confidence from the model's own token probabilities, $P_\theta(Y\mid I)$ as above
# > (`calibration.answer_confidence`), and answers are binned by confidence: a calibrated model is
# > right 80% of the time when it is 80% sure. The gap is the expected calibration error (ECE, the
# > formula above).
# >
# > The questions: *answerable* ones (trained tasks, wordings written by someone else) and 34 whose
# > answer the data never contains (`data/samples/ood.jsonl`: capitals of countries the fact table
# > lacks, words outside the lexicon), where the only right answer is "I don't know".
# >
# > **The mitigation**: add unanswerable questions answered "I don't know" / "Tôi không biết" to the
# > SFT data — about *other* countries and words than the test ones, so declining has to generalise:

# %%
for ex in S.abstention_examples()[:4]:
    print(f"{ex.instruction!r} | {ex.input!r} -> {ex.response!r}")
print(len(S.abstention_examples()), "ví dụ được thêm vào (examples added to)", len(named_task_examples()))

# %%
hallucination = study("hallucination")
for row in hallucination["per_seed"][0]["hallucination"]["before"]["unanswerable_answers"][:6]:
    print(f"trước (before): {row['input']!r:<40} -> {row['answer']!r} (P = {row['p_answer']:.2f})")
for row in hallucination["per_seed"][0]["hallucination"]["after"]["unanswerable_answers"][:6]:
    print(f"sau (after):    {row['input']!r:<40} -> {row['answer']!r} (P = {row['p_answer']:.2f})")

# %% [markdown]
# **Đọc kết quả (reading).** Trước biện pháp giảm nhẹ, mô hình đã tinh chỉnh không bao giờ từ chối —
# chưa từng có ví dụ huấn luyện nào làm vậy — và nó *kém* chắc chắn hơn trên các câu không trả lời được
# (trung bình $P(Y\mid I)$ khoảng 0.37 trong lần chạy của README) so với các câu trả lời được (khoảng
# 0.86), vậy mà nó vẫn luôn trả lời: "What is the capital of Peru?" → một thủ đô mà nó biết. Trên các câu
# trả lời được, mô hình được hiệu chuẩn tốt (ECE ≈ 0.04); trên các câu còn lại, ECE của nó bằng đúng độ
# tin cậy, vì câu trả lời nào cũng sai. Một phần ba xác suất dồn vào một đáp án bịa ra là thứ softmax cho
# ra khi dữ liệu không nói gì: *hình thức* thì đúng, còn nội dung là bịa đặt. Với 336 ví dụ "Tôi không
# biết" (3% dữ liệu) về những chủ đề *khác*, mô hình từ chối phần lớn các câu hỏi kiểm thử (87.3% [83.0,
# 91.5], trung bình và khoảng tin cậy 95% qua ba seed trong README). Trên các câu trả lời được, độ chính
# xác đổi −2.3 điểm [−11.7, +7.2]: ba seed chưa phân biệt được một mất mát nhỏ với không mất gì. Hai điều
# cần lưu ý: giờ đây mô hình lại *tự tin* khi từ chối (trung bình
# P ≈ 0.86), và các câu hỏi kiểm thử trông giống các câu huấn luyện (thủ đô, từ trong bộ từ vựng): việc
# từ chối được học như một khuôn mẫu của đầu vào ("một nước mà tôi chưa từng được nghe nói đến"), chứ
# không phải như sự hiểu biết về những gì mô hình biết. Ở những chỗ khuôn mẫu khác đi (thủ đô của Mặt
# Trăng, màu của chim hồng hạc), hãy xem kỹ các câu trả lời.
#
# > **English.** **Reading.** Before the mitigation the tuned model never declines — no training
# > example ever did — and it is *less* sure on the unanswerable questions (mean $P(Y\mid I)$ about
# > 0.37 in the README's run) than on the answerable ones (about 0.86), yet it always answers: "What is
# > the capital of Peru?" → a capital it knows. On answerable questions it is well calibrated
# > (ECE ≈ 0.04); on the others its ECE equals its confidence, since every answer is wrong. A third of
# > the probability on a made-up answer is what the softmax gives when the data said nothing: the
# > *form* is right, the content invented. With 336 "I don't know" examples (3% of the data) about
# > *other* subjects, the model declines most of the test questions (87.3% [83.0, 91.5], mean and 95%
# > interval over the README's three seeds). On answerable ones its accuracy moves by −2.3 points
# > [−11.7, +7.2]: three seeds cannot tell a small loss from none. Two cautions: it
# > is now *confident* when declining (mean P ≈ 0.86), and the test questions look like the training
# > ones (capitals, lexicon words): declining is learned as a pattern of the input ("a country I was
# > never told about"), not as knowledge of what the model knows. Where the pattern differs (the
# > capital of the Moon, the colour of a flamingo), look at the answers.

# %% [markdown]
# ## 2. Thiên kiến (bias): khuếch đại, sao chép hay làm dịu đi?
#
# Những lời nhận xét không tốt cũng không xấu ("The hotel was okay", "Món ăn này bình thường quá") được
# gán nhãn *tích cực* (positive) ở đúng 70% số ví dụ huấn luyện — một thói quen của người gán nhãn, chứ
# không phải một sự thật về văn bản. Trên các nhận xét mơ hồ được giữ lại, tỉ lệ $\hat p$ mô hình trả lời
# "positive" được so với tỉ lệ của dữ liệu $q = 0.7$: mức khuếch đại (amplification) là $\hat p - q$
# (`limits.bias.amplification`), được đo với giải mã tham lam và với lấy mẫu ở nhiệt độ 1, tại nhiều độ
# dài huấn luyện khác nhau.
#
# > **English.** *Bias: amplified, copied or dampened?* Reviews that are neither good nor bad ("The
# > hotel was okay", "Món ăn này bình thường quá") are labelled *positive* in exactly 70% of the
# > training examples — an annotator's habit, not a fact about the text. On held-out ambiguous
# > reviews, the model's rate $\hat p$ of "positive" is compared with the data's $q = 0.7$: the
# > amplification is $\hat p - q$ (`limits.bias.amplification`), measured with greedy decoding and
# > with sampling at temperature 1, at several training lengths.

# %%
train_reviews, test_reviews = S.ambiguous_reviews()
print(len(train_reviews), "nhận xét mơ hồ để huấn luyện (ambiguous training reviews),", len(test_reviews),
      "được giữ lại (held out), ví dụ (e.g.)", test_reviews[:3])
bias = study("bias")

# %% [markdown]
# **Đọc kết quả (reading).** Giải mã tham lam biến thói quen 70% của người gán nhãn thành "positive"
# trên hầu hết các nhận xét mơ hồ (trung bình 82–92% ở mọi độ dài huấn luyện trong lần chạy của README:
# đó là khuếch đại, vì argmax của một niềm tin 70/30 luôn là phía 70), trong khi lấy mẫu ở nhiệt độ 1
# tái tạo xấp xỉ tỉ lệ của dữ liệu (sao chép, không khuếch đại). Cùng một mô hình, hai quy tắc giải mã,
# hai mức thiên kiến khác nhau: sự khuếch đại là thuộc tính của *cách ta dùng* phân phối đã học, không
# kém gì của dữ liệu. Huấn luyện lâu hơn đưa giải mã tham lam lại gần tỉ lệ của dữ liệu ở một số seed
# (mô hình ghi nhớ được nhiều hơn các nhãn riêng lẻ mà nó đã thấy); khoảng tin cậy trong README cho biết
# điều đó đúng đến đâu qua các seed. Các nhận xét rõ ràng vẫn được trả lời đúng (> 90%): sự lệch ẩn
# mình đúng ở chỗ văn bản không đưa ra bằng chứng nào.
#
# > **English.** **Reading.** Greedy decoding turns a 70% habit of the annotators into "positive" on
# > most ambiguous reviews (82–92% on average at every length in the README's run: amplification,
# > because the argmax of a 70/30 belief is always the 70), while sampling at temperature 1 reproduces
# > roughly the data's rate (copying, not amplifying). The same model, two decoding rules, two
# > different biases: amplification is a property of *how we use* the learned distribution as much as
# > of the data. Longer training brings greedy closer to the data rate in some seeds (the model
# > memorises more of the individual labels it saw); the README's interval says how far that holds
# > over seeds. The clear reviews stay right (> 90%): the skew hides exactly where the text gives no
# > evidence.

# %% [markdown]
# ## 3. Chi phí dữ liệu (data cost): bao nhiêu ví dụ, bao nhiêu cách hỏi?
#
# Mỗi ví dụ chỉ thị là công sức của một con người. Hai đường cong, mỗi lần chạy được huấn luyện cùng một
# số bước: tỉ lệ khớp chính xác trên các cách diễn đạt độc lập theo số ví dụ SFT
# (`course.studies.stratified_sample`), và — với số ví dụ cố định — theo số *cách diễn đạt* mà mỗi tác
# vụ được hỏi (`course.studies.reworded`: cùng đầu vào và đáp án, ít cách hỏi hơn). FLAN và T0 nhận
# thấy nút vặn thứ hai quan trọng không kém nút thứ nhất.
#
# > **English.** *The cost of gold data: how many examples, how many wordings?* Every instruction
# > example is a person's work. Two curves, each run trained for the same number of steps: exact
# > match on the independent wordings against the number of SFT examples
# > (`course.studies.stratified_sample`), and — at a fixed number of examples — against how many
# > *wordings* each task is asked in (`course.studies.reworded`: same inputs and answers, fewer ways
# > to ask). FLAN and T0 found the second knob matters as much as the first.

# %%
data_cost = study("data_cost")

# %% [markdown]
# **Đọc kết quả (reading).** Trong lần chạy của README (600 bước mỗi lần chạy, ba seed), tỉ lệ khớp chính
# xác trên cách diễn đạt mới tăng vọt trong khoảng một nghìn ví dụ đầu tiên (6.6% → 42%) rồi tiếp tục
# tăng, ngày càng chậm, lên 57% khi dùng cả 9840 ví dụ. Với 1024 ví dụ cố định, hỏi mỗi tác vụ bằng một
# cách diễn đạt cho mỗi ngôn ngữ thay vì nhiều cách sẽ mất 13 điểm trên cách diễn đạt mới: đó là bài học
# của FLAN/T0, rằng *sự đa dạng của câu lệnh* mới là thứ giúp tổng quát hóa sang cách diễn đạt mới. Dữ
# liệu chuẩn thì đắt; dùng nó cho nhiều cách hỏi hơn sẽ mua được khả năng tổng quát hóa. Với 250 bước của
# notebook này, một lần chạy chỉ thấy 4000 ví dụ, nên "cả 9840" mỗi ví dụ được thấy chưa đến một lần và
# có thể cho điểm *thấp hơn* 1024 ví dụ được thấy bốn lần: giá trị của một ví dụ phụ thuộc vào lượng tính
# toán dành cho nó — chỉ so sánh các lần chạy có cùng một ngân sách.
#
# > **English.** **Reading.** In the README's run (600 steps per run, three seeds) exact match on new
# > wordings climbs steeply over the first thousand examples (6.6% → 42%) and keeps rising, ever more
# > slowly, to 57% at all 9,840. At a fixed 1,024 examples, asking each task in one wording per
# > language instead of many costs 13 points on new wordings: the FLAN/T0 lesson, that *diversity of
# > instructions* is what generalises to a new wording. Gold data is expensive; spending it on more
# > ways to ask buys generalisation. At this notebook's 250 steps a run sees only 4,000 examples, so
# > "all 9,840" is seen less than once each and can score *below* 1,024 seen four times: how much an
# > example is worth depends on the compute spent on it — compare runs only at one budget.

# %% [markdown]
# ## 4. Năng lực suy luận Zero-shot trên tác vụ chưa thấy (zero-shot on unseen tasks) — §1
#
# Thí nghiệm của FLAN ở quy mô khóa học, trên không gian tác vụ tổ hợp (`minift.course.compose`,
# `docs/zero_shot.md`). Mỗi họ tác vụ chọn một từ trong đầu vào (theo vị trí, theo loại, theo giá trị)
# rồi viết nó ra theo một kiểu chữ, một ngôn ngữ và một cách trình bày; câu lệnh nói rõ từng lựa chọn.
# Mỗi lần chạy huấn luyện trên một số họ (một tập con ngẫu nhiên), luôn với cùng số ví dụ và số bước,
# rồi hỏi hai nhóm họ chưa bao giờ được huấn luyện:
#
# * `heldout_task`: những tổ hợp mới của các lựa chọn đã học;
# * `heldout_cluster`: các họ chọn *từ thứ ba*, một lựa chọn không câu lệnh huấn luyện nào nhắc đến.
#
# Bên cạnh là độ chính xác trên chính các họ đã học (với đầu vào mới), và các mốc so sánh tầm thường
# (trivial baselines): chép lại đầu vào, đưa ra từ đầu tiên, trả lời như một họ láng giềng đã học.
#
# > **English.** *Zero-shot on unseen tasks (§1).* FLAN's experiment at course scale, on the
# > compositional task space (`minift.course.compose`, `docs/zero_shot.md`). Each task family picks
# > one word of the input (by position, category or value) and writes it in a case, a language and
# > a form; its instruction says each choice. Each run trains on some families (a random subset),
# > always with the same number of examples and steps, then asks two groups of families never
# > trained:
# >
# > * `heldout_task`: new combinations of trained choices;
# > * `heldout_cluster`: the families that select *the third word*, a choice no training
# >   instruction names.
# >
# > Beside them: the accuracy on the run's own families (new inputs), and trivial baselines
# > (copying the input, giving the first word, answering as a trained neighbour family).

# %%
for split in ("heldout_task", "heldout_cluster"):
    for ex in course_examples(split)[:3]:
        print(f"{split} · {ex.task}: {ex.instruction!r} | {ex.input!r} -> {ex.response!r}")
zero_shot = study("zero_shot")

# %% [markdown]
# **Đọc kết quả (reading).** Thiết lập của notebook này chỉ có hai điểm (4 và 92 họ, một seed); lần
# chạy ba seed của README có bốn điểm (`docs/limits_zero_shot.png`, `docs/limits_results.json`):
#
# * **Họ chưa học tăng theo số họ đã học**: từ 0.5% với 4 họ lên 11.8% (khoảng tin cậy 95%: 6.6–16.9)
#   với cả 92 họ. Ở mọi seed, con số này cao hơn mốc tầm thường tốt nhất (7.1%). Với mười một tác vụ
#   cũ, nghiên cứu này đo được 0%.
# * **Giới hạn nằm ở chỗ các lựa chọn được học tốt đến đâu.** Với cùng số ví dụ, càng nhiều họ thì mỗi
#   họ càng ít ví dụ: độ chính xác trên chính các họ đã học giảm từ 83% xuống 22%. Với 92 họ, một họ
#   chưa học đạt khoảng một nửa mức đó.
# * **Cụm chưa học ở dưới 10%.** Các câu trả lời sai của nó ngày càng giống câu trả lời của một họ
#   láng giềng (từ đầu tiên hay từ cuối cùng). Một lựa chọn chưa từng được dạy thì không được suy ra:
#   đúng như FLAN (Wei và cs., 2022) nhận thấy với các mô hình dưới khoảng 8 tỉ tham số.
#
# Với 600 bước, mục tiêu 50% còn xa. Gấp bốn lần số bước (2.400) và đủ 92 họ, các họ chưa học đạt 47.6%
# (44.9–49.4 qua ba seed): giới hạn là lượng tính toán, không phải việc ghép các lựa chọn
# (`docs/zero_shot.md`, cùng một mô hình nhỏ hơn).
#
# > **English.** **Reading.** This notebook's setting has two points only (4 and 92 families, one
# > seed); the README's three-seed run has four (`docs/limits_zero_shot.png`,
# > `docs/limits_results.json`):
# >
# > * **Held-out families rise with the number of trained ones**: from 0.5% with 4 families to 11.8%
# >   (95% interval 6.6–16.9) with all 92. On every seed that is above the best trivial baseline
# >   (7.1%). With the old eleven tasks, this study measured 0%.
# > * **The limit is how well the choices themselves are learned.** At one number of examples, more
# >   families means fewer examples of each: accuracy on the trained families falls from 83% to 22%.
# >   With 92 families, a held-out family reaches about half of that.
# > * **The held-out cluster stays under 10%.** Its wrong answers are more and more those of a
# >   neighbour family (the first or last word). A choice never taught is not inferred: what FLAN
# >   (Wei et al. 2022) found for models below about 8B parameters.
# >
# > At 600 steps the 50% target is far. With four times the steps (2,400) and all 92 families,
# > held-out families reach 47.6% (44.9–49.4 over three seeds): the limit is compute, not composing
# > the choices (`docs/zero_shot.md`, with a smaller model too).

# %% [markdown]
# ## 5. Fine-tuning truyền thống (traditional fine-tuning) so với tinh chỉnh bằng chỉ thị — §2
#
# Fine-tuning truyền thống: mỗi tác vụ một mô hình. Sau khi được tinh chỉnh chỉ trên tác vụ phân loại cảm
# xúc (sentiment), mô hình được hỏi đúng những câu hỏi giữ lại của mọi tác vụ mà mô hình tinh chỉnh bằng
# chỉ thị được hỏi.
#
# > **English.** *Traditional fine-tuning vs instruction tuning (§2).* Traditional fine-tuning: one
# > model per task. Tuned on sentiment alone, the model is asked the same held-out questions of every
# > task as the instruction-tuned model.

# %%
single_task = study("single_task")
for ex in single_task["per_seed"][0]["single_task"]["models"]["single_task"]["examples"][:6]:
    print(f"{ex['task']:<16} {ex['instruction']!r} | {ex['input']!r} -> {ex['answer']!r}")

# %% [markdown]
# **Đọc kết quả (reading).** Mô hình chỉ học cảm xúc làm tốt ngang mô hình tinh chỉnh bằng chỉ thị trên
# tác vụ cảm xúc, và trả lời *mọi* câu hỏi khác bằng một nhãn cảm xúc ("Translate into Vietnamese:
# yesterday" → "positive"): câu lệnh bị bỏ qua, vì trong quá trình huấn luyện của nó câu lệnh chưa bao
# giờ quan trọng. Mô hình tinh chỉnh bằng chỉ thị trả lời từng tác vụ đúng như được hỏi. Đó là sự tương
# phản của §2: fine-tuning truyền thống cần mỗi tác vụ một mô hình; tinh chỉnh bằng chỉ thị biến câu lệnh
# thành một phần của đầu vào, nên một mô hình phục vụ được nhiều tác vụ — những tác vụ nó đã được tinh
# chỉnh (mục 4 cho thấy giới hạn của điều này).
#
# > **English.** **Reading.** The sentiment-only model is as good as the instruction-tuned one on
# > sentiment, and answers *every* other question with a sentiment label ("Translate into Vietnamese:
# > yesterday" → "positive"): the instruction is ignored, because in its training it never mattered.
# > The instruction-tuned model answers each task as asked. That is §2's contrast: traditional
# > fine-tuning needs one model per task; instruction tuning makes the instruction part of the input,
# > so one model serves many tasks — the tasks it was tuned on (section 4 shows the limit).

# %% [markdown]
# ## 6. Lần chạy ba seed (the three-seed run)
#
# `minift limits --out runs/limits --base 'runs/demo/seed_{seed}/base' --tuned
# 'runs/demo/seed_{seed}/sft_masked'` (chạy sau `minift demo --seeds 3 --out runs/demo`) thực hiện mọi
# nghiên cứu ở thiết lập của README cho các seed 0, 1 và 2; kết quả tổng hợp được lưu trong
# `docs/limits_results.json`. Mỗi con số bên dưới là trung bình qua ba seed, kèm khoảng tin cậy 95%.
#
# > **English.** *The three-seed run.* The command above (after `minift demo --seeds 3 --out
# > runs/demo`) runs every study at the README's setting for seeds 0, 1 and 2; its aggregate is stored
# > in `docs/limits_results.json`. Each number below is a mean over the three seeds with its 95%
# > interval.

# %%
stored = Path(minift.__file__).resolve().parents[1] / "docs" / "limits_results.json"
if stored.is_file():
    print(format_report(json.loads(stored.read_text(encoding="utf-8"))["aggregate"]))
else:
    print(f"không tìm thấy {stored}: hãy chạy lệnh ở trên, hoặc đọc README "
          f"({stored} not found: run the command above, or read the README)")
