r"""How sure the model is, and whether it should be: confidence and calibration (§5, hallucination).

The article's §5 warns that an instruction-tuned model answers fluently whether or not it knows:
its softmax stays confident where the data said nothing. To *measure* that, each greedy answer gets
a confidence from the model's own token probabilities, and the confidences are compared with how
often the answers are right:

* ``answer_confidence`` — per answer, the sequence log-probability
  $\log P_\theta(Y\mid I)=\sum_t\log P_\theta(y_t\mid I, y_{<t})$ (the §3.1 chain rule), the mean token
  probability and the least sure token's probability.
* ``reliability_bins`` and ``expected_calibration_error`` — answers grouped by confidence; a
  calibrated model is right 80% of the time when it is 80% sure:
  $\mathrm{ECE}=\sum_b \frac{n_b}{n}\,\lvert\mathrm{acc}_b-\mathrm{conf}_b\rvert$ (Guo et al. 2017).

``score_answers`` / ``summarise_confidence`` / ``pool_bins`` / ``plot_reliability`` run the first §5 study: the same
model on answerable questions and on questions whose answer the data never contains
(``data/samples/ood.jsonl``), where the only right answer is to decline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from minift.data import Example
from minift.evaluate import answer_scored, exact_match


class Confidence(NamedTuple):
    """One answer's confidence, from the log-probabilities of its generated tokens (EOS included)."""

    sequence_log_prob: float  # log P(Y | I): the sum of the tokens' log-probabilities
    mean_token_prob: float  # the mean of the tokens' probabilities
    min_token_prob: float  # the least sure token's probability


def answer_confidence(logprobs: Sequence[float]) -> Confidence:
    r"""Confidence of one generated answer from its tokens' log-probabilities $\log P_\theta(y_t\mid I,y_{<t})$.

    $$\log P_\theta(Y\mid I)=\sum_{t=1}^{N}\log P_\theta(y_t\mid I,y_{<t}),\qquad
      \bar p=\frac1N\sum_t P_\theta(y_t\mid\cdot),\qquad p_{\min}=\min_t P_\theta(y_t\mid\cdot)$$

    ``logprobs`` are what ``minift.generate`` returns for the tokens it sampled (under the model's
    unfiltered distribution), the closing EOS included: stopping is part of the answer.
    """
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.size == 0:
        raise ValueError("answer_confidence: an answer of no token has no confidence; include its EOS")
    if np.any(lp > 0):
        raise ValueError(f"answer_confidence: log-probabilities must be <= 0, got {lp.max():g}")
    p = np.exp(lp)
    return Confidence(float(lp.sum()), float(p.mean()), float(p.min()))


class Bin(NamedTuple):
    """One confidence bin of a reliability diagram: [low, high), its count, accuracy and mean confidence."""

    low: float
    high: float
    count: int
    accuracy: float  # 0 for an empty bin
    confidence: float  # 0 for an empty bin


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> list[Bin]:
    """Answers grouped into ``n_bins`` equal-width confidence bins on [0, 1] (1.0 falls in the last)."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if conf.shape != hit.shape or conf.ndim != 1:
        raise ValueError(f"reliability_bins: {conf.shape} confidences for {hit.shape} answers; one each")
    if conf.size and (conf.min() < 0 or conf.max() > 1):
        raise ValueError("reliability_bins: confidences must lie in [0, 1] (probabilities, not log-probabilities)")
    if n_bins < 1:
        raise ValueError(f"reliability_bins: n_bins must be >= 1, got {n_bins}")
    index = np.minimum((conf * n_bins).astype(int), n_bins - 1)  # (n,) bin of each answer
    bins = []
    for b in range(n_bins):
        chosen = index == b
        count = int(chosen.sum())
        bins.append(Bin(b / n_bins, (b + 1) / n_bins, count,
                        float(hit[chosen].mean()) if count else 0.0, float(conf[chosen].mean()) if count else 0.0))
    return bins


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    r"""Expected calibration error (§5; Guo et al. 2017): the gap between being sure and being right.

    $$\mathrm{ECE}=\sum_{b=1}^{B}\frac{n_b}{n}\,\big\lvert\mathrm{acc}_b-\mathrm{conf}_b\big\rvert$$

    over ``n_bins`` equal-width confidence bins; 0 for a perfectly calibrated model, up to 1 for
    one that is always sure and always wrong. No answers: 0.
    """
    bins = reliability_bins(confidence, correct, n_bins)
    n = sum(b.count for b in bins)
    return float(sum(b.count / n * abs(b.accuracy - b.confidence) for b in bins)) if n else 0.0


# --------------------------------------------------------------------------------------------
# The §5 study: confident where it knows nothing?
# --------------------------------------------------------------------------------------------

ABSTENTIONS = ("i don't know", "i do not know", "tôi không biết")  # what counts as declining to answer


def is_abstention(answer: str) -> bool:
    """Whether an answer declines ("I don't know", "Tôi không biết"), case and punctuation aside."""
    text = " ".join(answer.casefold().replace("’", "'").split()).strip(" .!")
    return text in ABSTENTIONS


def score_answers(params, config, tokenizer, examples: Sequence[Example], *, answerable: bool,
                  template: str, max_new_tokens: int = 16) -> list[dict]:
    """Each greedy answer with its confidence (``answer_confidence``) and whether it is right.

    For an answerable question, right = exact match; for one whose answer the data never contains
    (``ood.jsonl``), the only right answer is to decline (``is_abstention``).
    """
    rows = []
    for ex, (text, logprobs) in zip(examples, answer_scored(params, config, tokenizer, examples, template=template,
                                                             max_new_tokens=max_new_tokens)):
        conf = answer_confidence(logprobs)
        abstained = is_abstention(text)
        rows.append({"instruction": ex.instruction, "input": ex.input, "answer": text, "abstained": abstained,
                     "correct": exact_match(text, ex.response) if answerable else abstained,
                     "p_answer": math.exp(conf.sequence_log_prob), **conf._asdict()})
    return rows


def summarise_confidence(rows: Sequence[dict], n_bins: int = 10) -> dict:
    """Accuracy, abstention rate, mean confidence P(Y | I) (and mean of the mean and of the least sure
    token probability), ECE and the reliability bins of scored answers."""
    conf, hit = [r["p_answer"] for r in rows], [r["correct"] for r in rows]
    return {"n": len(rows), "accuracy": float(np.mean(hit)) if rows else 0.0,
            "abstention": float(np.mean([r["abstained"] for r in rows])) if rows else 0.0,
            "mean_confidence": float(np.mean(conf)) if rows else 0.0,
            "mean_token_prob": float(np.mean([r["mean_token_prob"] for r in rows])) if rows else 0.0,
            "mean_min_token_prob": float(np.mean([r["min_token_prob"] for r in rows])) if rows else 0.0,
            "ece": expected_calibration_error(conf, hit, n_bins),
            "bins": [b._asdict() for b in reliability_bins(conf, hit, n_bins)]}


def pool_bins(runs: Sequence[Sequence[dict]]) -> dict:
    """Reliability bins of several runs (e.g. seeds) pooled as if their answers were one set.

    ``runs``: per run, its ``summarise_confidence(...)["bins"]``. Returns ``{"bins", "n", "ece"}``:
    counts added, each bin's accuracy and confidence count-weighted, and the ECE of the pool.
    """
    if not runs or len({len(r) for r in runs}) != 1:
        raise ValueError("pool_bins: give at least one run, every run with the same bins")
    bins = []
    for same in zip(*runs):
        count = sum(b["count"] for b in same)
        mean = (lambda key: sum(b[key] * b["count"] for b in same) / count if count else 0.0)  # noqa: E731
        bins.append({"low": same[0]["low"], "high": same[0]["high"], "count": count,
                     "accuracy": mean("accuracy"), "confidence": mean("confidence")})
    n = sum(b["count"] for b in bins)
    ece = sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins) if n else 0.0
    return {"bins": bins, "n": n, "ece": float(ece)}


def plot_reliability(summaries: dict[str, dict], path: str | Path) -> Path:
    """Reliability diagram: accuracy against confidence per bin, one line per group; the diagonal is calibrated."""
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="hiệu chuẩn hoàn hảo (calibrated)")
    for i, (name, s) in enumerate(summaries.items()):
        used = [b for b in s["bins"] if b["count"]]
        ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], "o-", color=f"C{i}",
                label=f"{name}: ECE {s['ece']:.2f}, n = {s['n']}")
    ax.set(xlabel="độ tin cậy (confidence) P(answer | prompt)", ylabel="tỉ lệ đúng (fraction right)",
           xlim=(0, 1), ylim=(0, 1.02), title="§5: chắc chắn, và đúng? (sure, and right?)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)
