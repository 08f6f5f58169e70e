"""minift.calibration: confidence of an answer from its token log-probabilities, reliability bins and
the expected calibration error, against hand-computed cases."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from minift import loss, model
from minift.calibration import (
    answer_confidence,
    expected_calibration_error,
    is_abstention,
    pool_bins,
    reliability_bins,
    summarise_confidence,
)
from minift.config import get_config
from minift.data import Example
from minift.evaluate import prompt_ids
from minift.generate import generate_scored


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
    # unequal bins: three answers 90% sure, two right (acc 2/3); one 10% sure, wrong (acc 0):
    # ECE = 3/4 * |2/3 - 0.9| + 1/4 * |0 - 0.1| = 0.175 + 0.025 (an unweighted mean of the two
    # gaps would give 1/6, and a mean over all ten bins, the eight empty ones too, 1/30)
    assert expected_calibration_error([0.9, 0.9, 0.9, 0.1], [True, True, False, False]) == pytest.approx(0.2)
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


def test_is_abstention():
    assert is_abstention("I don't know.") and is_abstention("  tôi không BIẾT ") and is_abstention("I do not know")
    assert not is_abstention("I know") and not is_abstention("Paris")


def test_generated_log_probs_are_the_models_own_by_teacher_forcing(course_tokenizer, key):
    """The confidence comes from the sampler's log-probs; they equal loss.token_log_probs of the same
    tokens under model.forward (float32 rounding, ~1e-6), so P(answer) is log P(Y | I) of §3.1."""
    cfg = get_config("tiny", vocab_size=course_tokenizer.vocab_size)
    params = model.init_params(cfg, key)
    prompt = prompt_ids(Example("Give the first word.", "red cat", "red"), course_tokenizer, "inline")
    (ids, logprobs), = generate_scored(params, cfg, [prompt], max_new_tokens=6, eos_id=course_tokenizer.eos_id,
                                       pad_id=course_tokenizer.pad_id)
    generated = ids + ([course_tokenizer.eos_id] if len(logprobs) > len(ids) else [])
    seq = jnp.asarray([prompt + generated])
    logits = model.forward(params, seq[:, :-1], cfg)  # (1, T-1, V)
    forced = loss.token_log_probs(logits, seq[:, 1:])[0, len(prompt) - 1:]  # the generated tokens'
    np.testing.assert_allclose(np.asarray(forced), logprobs, atol=1e-5)
    assert answer_confidence(logprobs).sequence_log_prob == pytest.approx(float(jnp.sum(forced)), abs=1e-4)


def test_summarise_confidence_by_hand():
    rows = [{"p_answer": 0.9, "correct": True, "abstained": False, "mean_token_prob": 0.95, "min_token_prob": 0.9},
            {"p_answer": 0.9, "correct": False, "abstained": False, "mean_token_prob": 0.9, "min_token_prob": 0.8},
            {"p_answer": 0.2, "correct": True, "abstained": True, "mean_token_prob": 0.5, "min_token_prob": 0.3}]
    s = summarise_confidence(rows, n_bins=10)
    assert s["n"] == 3 and s["accuracy"] == pytest.approx(2 / 3) and s["abstention"] == pytest.approx(1 / 3)
    assert s["mean_confidence"] == pytest.approx(2.0 / 3) and s["mean_min_token_prob"] == pytest.approx(2.0 / 3)
    # bins: 0.9 x2 (acc 0.5, conf 0.9), 0.2 x1 (acc 1, conf 0.2): ECE = 2/3 * 0.4 + 1/3 * 0.8
    assert s["ece"] == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.8)


def test_pool_bins_equals_binning_the_pooled_answers():
    # Two "seeds" binned apart and pooled must equal one binning of all their answers together.
    conf_a, hit_a = [0.05, 0.15, 0.95, 0.92], [False, True, True, False]
    conf_b, hit_b = [0.12, 0.97, 0.55], [False, True, True]
    per_run = [summarise_confidence([{"p_answer": c, "correct": h, "abstained": False, "mean_token_prob": c,
                                      "min_token_prob": c}
                                     for c, h in zip(conf, hit)])["bins"]
               for conf, hit in ((conf_a, hit_a), (conf_b, hit_b))]
    pooled = pool_bins(per_run)
    together = reliability_bins(conf_a + conf_b, hit_a + hit_b)
    assert pooled["n"] == 7
    for got, want in zip(pooled["bins"], together):
        assert got["count"] == want.count
        assert got["accuracy"] == pytest.approx(want.accuracy) and got["confidence"] == pytest.approx(want.confidence)
    assert pooled["ece"] == pytest.approx(expected_calibration_error(conf_a + conf_b, hit_a + hit_b))
    with pytest.raises(ValueError, match="at least one run"):
        pool_bins([])
