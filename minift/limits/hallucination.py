"""§5, hallucination (ảo giác): confident where the data said nothing — and one mitigation, measured.

The model is asked answerable questions (trained tasks in wordings it never saw), questions
whose answer the data never contains (``data/samples/ood.jsonl``), and questions of task families
it was never trained on (``heldout_task``). For each group: accuracy (for an
unanswerable question, right = declining), how often it declines, its mean confidence
$P_\theta(Y\\mid I)$ and the expected calibration error (``minift.calibration``). Then the same
SFT run with "I don't know" / "Tôi không biết" answers to *other* unanswerable questions added
(``course.studies.abstention_examples``): does it now decline on the test questions, and what does
that cost on the answerable ones — above all on questions whose input only pretraining taught?
"""

from __future__ import annotations

from pathlib import Path

from minift.calibration import score_answers, summarise_confidence
from minift.course.bundled import OOD_FILE, SAMPLES_DIR, course_examples, named_task_examples, read_records
from minift.course.studies import abstention_examples
from minift.data import Example
from minift.evaluate import novelty_subsets
from minift.limits.common import TEMPLATE, evaluation_questions, tune
from minift.loop import load_model
from minift.tokenizer import Tokenizer

ANSWERABLE_SPLIT = "independent_wording"


def unanswerable_questions() -> list[Example]:
    """The test questions of §5: ``ood.jsonl``, whose answers appear nowhere in the data."""
    return [Example(r["instruction"], r["input"], "", "ood") for r in read_records(SAMPLES_DIR / OOD_FILE)]


def measure(model: Path, tokenizer: Tokenizer, *, limit: int = 0) -> dict:
    """Calibration of one model (``summarise_confidence``) on three groups: answerable questions
    (with the accuracy on those whose input training never showed), unanswerable ones, and questions
    of task families never trained (answerable in principle, out of distribution for the model)."""
    params, config = load_model(model)
    answerable = evaluation_questions(ANSWERABLE_SPLIT, limit)
    rows = score_answers(params, config, tokenizer, answerable, answerable=True, template=TEMPLATE)
    unseen = novelty_subsets(answerable, named_task_examples())["unseen input"]
    unseen_rows = [r for r, flag in zip(rows, unseen) if flag]
    ood_rows = score_answers(params, config, tokenizer, unanswerable_questions(), answerable=False,
                             template=TEMPLATE)
    heldout_task = course_examples("heldout_task")[: limit or None]
    task_rows = score_answers(params, config, tokenizer, heldout_task, answerable=True, template=TEMPLATE)
    answerable_summary = summarise_confidence(rows)
    answerable_summary["unseen_input_accuracy"] = (sum(r["correct"] for r in unseen_rows) / len(unseen_rows)
                                                   if unseen_rows else 0.0)
    return {"answerable": answerable_summary, "unanswerable": summarise_confidence(ood_rows),
            "heldout_task": summarise_confidence(task_rows),
            "unanswerable_answers": [{k: r[k] for k in ("input", "answer", "p_answer")} for r in ood_rows]}


def hallucination_study(out: Path, base: Path, before: Path, tokenizer: Tokenizer, *, seed: int, steps: int,
                        limit: int = 0) -> dict:
    """``before`` (an SFT run of ``steps`` steps from ``base``) against the same run with "I don't
    know" examples added; returns ``{"before": measure, "after": measure, "abstention_examples": n}``."""
    extra = abstention_examples(seed)
    after = tune(out / "sft_abstain", base, named_task_examples() + extra, tokenizer, steps=steps, seed=seed)
    return {"before": measure(before, tokenizer, limit=limit), "after": measure(after, tokenizer, limit=limit),
            "abstention_examples": len(extra)}


# The numbers aggregated over seeds (group, key), and how the README names them.
METRICS = {
    # Vietnamese first, the English in brackets (the course is Vietnamese-first; see notebook 06).
    ("answerable", "accuracy"): "trả lời được (answerable): khớp chính xác (exact match)",
    ("answerable", "unseen_input_accuracy"): "trả lời được, input chưa học (input never trained): khớp chính xác",
    ("answerable", "abstention"): "trả lời được (answerable): từ chối, sai (declined, wrongly)",
    ("answerable", "ece"): "trả lời được (answerable): ECE",
    ("unanswerable", "abstention"): "không trả lời được (unanswerable): từ chối, đúng (declined, right)",
    ("unanswerable", "mean_confidence"): "không trả lời được (unanswerable): P(answer) trung bình (mean)",
    ("unanswerable", "ece"): "không trả lời được (unanswerable): ECE",
    ("heldout_task", "accuracy"): "tác vụ chưa học (task never trained): khớp chính xác (exact match)",
    ("heldout_task", "mean_confidence"): "tác vụ chưa học (task never trained): P(answer) trung bình (mean)",
    ("heldout_task", "ece"): "tác vụ chưa học (task never trained): ECE",
}
