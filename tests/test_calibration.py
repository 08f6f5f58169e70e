"""minift.calibration: confidence of an answer from its token log-probabilities, reliability bins and
the expected calibration error, against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minift.calibration import answer_confidence, expected_calibration_error, reliability_bins


def test_answer_confidence_by_hand():
    c = answer_confidence([math.log(0.5), math.log(0.8), math.log(1.0)])
    assert c.sequence_log_prob == pytest.approx(math.log(0.4))  # 0.5 * 0.8 * 1.0, the chain rule
    assert c.mean_token_prob == pytest.approx((0.5 + 0.8 + 1.0) / 3)
    assert c.min_token_prob == pytest.approx(0.5)
    with pytest.raises(ValueError, match="include its EOS"):
        answer_confidence([])
    with pytest.raises(ValueError, match="must be <= 0"):
        answer_confidence([0.3])


def test_ece_by_hand():
    # two answers 90% sure, one right (acc 0.5); two 10% sure, none right (acc 0):
    # ECE = 2/4 * |0.5 - 0.9| + 2/4 * |0 - 0.1| = 0.2 + 0.05
    assert expected_calibration_error([0.9, 0.9, 0.1, 0.1], [True, False, False, False]) == pytest.approx(0.25)
    # always sure and always wrong: the worst case
    assert expected_calibration_error([1.0, 1.0], [False, False]) == pytest.approx(1.0)
    # right exactly as often as sure, in every bin: calibrated
    conf = [0.75] * 4 + [0.25] * 4
    assert expected_calibration_error(conf, [1, 1, 1, 0, 1, 0, 0, 0]) == pytest.approx(0.0)
    assert expected_calibration_error([], []) == 0.0


def test_reliability_bins_and_bad_input():
    bins = reliability_bins([0.05, 0.55, 0.58, 1.0], [True, False, True, True], n_bins=2)
    assert [(b.low, b.high, b.count) for b in bins] == [(0.0, 0.5, 1), (0.5, 1.0, 3)]  # 1.0 in the last bin
    assert bins[1].accuracy == pytest.approx(2 / 3) and bins[1].confidence == pytest.approx(np.mean([0.55, 0.58, 1.0]))
    with pytest.raises(ValueError, match="one each"):
        reliability_bins([0.5], [True, False])
    with pytest.raises(ValueError, match="not log-probabilities"):
        reliability_bins([-0.7], [True])
