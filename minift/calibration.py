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

The §5 studies (in- vs out-of-distribution questions, the reliability diagram) build on these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


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
    r"""Expected calibration error (Guo et al. 2017): the gap between being sure and being right.

    $$\mathrm{ECE}=\sum_{b=1}^{B}\frac{n_b}{n}\,\big\lvert\mathrm{acc}_b-\mathrm{conf}_b\big\rvert$$

    over ``n_bins`` equal-width confidence bins; 0 for a perfectly calibrated model, up to 1 for
    one that is always sure and always wrong. No answers: 0.
    """
    bins = reliability_bins(confidence, correct, n_bins)
    n = sum(b.count for b in bins)
    return float(sum(b.count / n * abs(b.accuracy - b.confidence) for b in bins)) if n else 0.0
