"""The §4 study: its setting (biased annotators, demonstrations), GRPO and DPO loops, and the command.

The setting's flaws are asserted as flaws: with no bias and no noise the annotators agree with the
judge on every pair; with the bias they prefer a polite right answer to a plain right one. The
loops are checked for what they are for (DPO raises the chosen answer's log-probability over the
rejected one's; GRPO with equal rewards in every group does not move), the command for its
schema, its invariants (every trained curve starts at KL 0; best-of-n's KL is log n - (n-1)/n)
and its errors.
"""

from __future__ import annotations

import json
import math
import random

import jax
import numpy as np
import pytest

from minift import cli, data, model
from minift.config import get_config
from minift.course.bundled import default_tokenizer, named_task_examples
from minift.course.judge import judge
from minift.rlhf import dpo as D
from minift.rlhf import grpo as G
from minift.rlhf import measure
from minift.rlhf import setting as S
from minift.rlhf.ppo import make_prompt_set
from minift.rlhf.reward_model import init_reward_model

TEMPLATE = data.COURSE_TEMPLATE


@pytest.fixture(scope="module")
def tok():
    return default_tokenizer()


@pytest.fixture(scope="module")
def cfg(tok):
    return get_config("tiny", vocab_size=tok.vocab_size)


@pytest.fixture(scope="module")
def params(cfg):
    return model.init_params(cfg, jax.random.PRNGKey(0))


def test_polite_openings_and_the_bradley_terry_label_probability():
    assert S.opens_politely("Sure! Paris") and S.opens_politely("Vâng! Pa-ri")
    assert not S.opens_politely("Paris") and not S.opens_politely("Surely Paris") and not S.opens_politely("")
    assert S.preference_probability(1.0, 0.5, 0.25) == pytest.approx(1 / (1 + math.exp(-2.0)), abs=1e-15)
    assert S.preference_probability(-800.0, 800.0, 1.0) == pytest.approx(0.0, abs=1e-300)  # no overflow
    assert (S.preference_probability(1, 0, 0), S.preference_probability(0, 1, 0), S.preference_probability(1, 1, 0)) == (
        1.0, 0.0, 0.5)
    a = S.Annotator(polite_bonus=0.8, noise=0.0)
    assert a.utility(0.2, "Sure! x") == pytest.approx(1.0) and a.utility(0.2, "x") == pytest.approx(0.2)


def test_unbiased_noiseless_annotators_agree_with_the_judge_and_biased_ones_do_not():
    for pair in S.annotated_pairs(300, S.Annotator(polite_bonus=0.0, noise=0.0), TEMPLATE):
        c, r = (judge(pair.instruction, pair.input, y, task=pair.task) for y in (pair.chosen, pair.rejected))
        assert c >= r
    biased = S.Annotator(polite_bonus=0.8, noise=0.0)
    rng = random.Random(0)
    q = named_task_examples()[0]
    wins = [S.labelled_pair(q.instruction, q.input, q.task, q.response, S.polite(q.response, "en", rng), biased, rng,
                            TEMPLATE).chosen for _ in range(20)]
    # the judge gives the bare right answer 1 and the polite one about 0.23; these annotators pick the polite one
    assert all(S.opens_politely(w) for w in wins)
    assert judge(q.instruction, q.input, q.response, task=q.task) == 1.0
    assert judge(q.instruction, q.input, wins[0], task=q.task) < 0.5
    pairs = S.annotated_pairs(50, biased, TEMPLATE)
    assert all(p.prompt == data.format_prompt(data.Example(p.instruction, p.input, ""), TEMPLATE) for p in pairs)


def test_demonstrations_open_politely_and_ramble_at_their_rates():
    train = named_task_examples()[:2000]
    demos = S.demonstrations(train, polite_fraction=0.1, rambling_fraction=0.3)
    polite = np.mean([S.opens_politely(d.response) for d in demos])
    rambling = np.mean([d.response != e.response and not S.opens_politely(d.response) or ", " in d.response
                        for d, e in zip(demos, train)])
    # binomial(2000, p): 4 standard deviations are 0.027 (p = 0.1) and 0.041 (p = 0.3)
    assert abs(polite - 0.1) < 0.027 and abs(rambling - 0.3) < 0.041
    assert [d.instruction for d in demos] == [e.instruction for e in train]
    assert S.demonstrations(train[:5], 0.0, 0.0) == train[:5]


def test_annotate_skips_equal_answers_and_bad_settings_are_errors():
    qs = named_task_examples()[:3]
    pairs = S.annotate(qs, ["a", "b", "c"], ["a", "x", "y"], S.Annotator(), TEMPLATE)
    assert len(pairs) == 2 and {frozenset((p.chosen, p.rejected)) for p in pairs} == {frozenset("bx"), frozenset("cy")}
    with pytest.raises(ValueError, match="noise"):
        S.Annotator(noise=-1)
    with pytest.raises(ValueError, match="polite_fraction"):
        S.demonstrations(qs, 1.5, 0.0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        S.annotated_pairs(0, S.Annotator(), TEMPLATE)
    with pytest.raises(ValueError, match="answers"):
        S.annotate(qs, ["a"], ["b"], S.Annotator(), TEMPLATE)


def test_distinct_per_prompt_counts_collapse():
    assert measure.distinct_per_prompt(["a", "a", "b", "c"], 2) == pytest.approx(0.75)
    assert measure.distinct_per_prompt(["a"] * 8, 4) == pytest.approx(0.25)  # 1/m: fully collapsed
    with pytest.raises(ValueError, match="groups"):
        measure.distinct_per_prompt(["a", "b", "c"], 2)


def test_dpo_steps_raise_the_chosen_over_the_rejected(params, cfg, tok):
    pairs = S.annotated_pairs(16, S.Annotator(), TEMPLATE)
    tokens = D.encode_pair_tokens(pairs, tok, 96)
    before = D.pair_log_probs(params, tokens, config=cfg)
    trained, history = D.train_dpo(params, cfg, tokens, D.DPOConfig(steps=6, batch_size=16, learning_rate=1e-3,
                                                                      beta=0.5, measure_every=3))
    after = D.pair_log_probs(trained, tokens, config=cfg)
    margin = lambda lp: np.asarray(lp[0] - lp[1])  # noqa: E731
    assert np.mean(margin(after) - margin(before)) > 0.5  # nats; random init starts near 0 on average
    assert history[-1]["loss"] < math.log(2)  # below the loss at the reference
    with pytest.raises(ValueError, match="beta must be > 0"):
        D.DPOConfig(beta=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        D.train_dpo(params, cfg, tokens, D.DPOConfig(batch_size=64))


def test_grpo_does_not_move_when_every_group_ties_and_does_otherwise(params, cfg, tok):
    prompts = make_prompt_set(named_task_examples()[:8], tok, TEMPLATE)
    rm = init_reward_model(params, cfg)  # a zero head: every answer scores 0, every advantage is 0
    g = G.GRPOConfig(iterations=1, prompts_per_iteration=4, group_size=4, beta=0.0, max_new_tokens=5,
                     learning_rate=1e-2)
    same, history = G.train_grpo(params, cfg, rm, prompts, tok, g)
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # the first samples come from the reference
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(params)):
        np.testing.assert_array_equal(a, b)
    rm = jax.tree.map(lambda x: x, rm)
    rm["head"] = jax.tree.map(lambda x: x + 0.5, rm["head"])
    moved, _ = G.train_grpo(params, cfg, rm, prompts, tok, g)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(moved), jax.tree.leaves(params)))
    with pytest.raises(ValueError, match="group_size"):
        G.GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="beta"):
        G.GRPOConfig(beta=-0.1)


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("rlhf")
    mp = pytest.MonkeyPatch()
    mp.setenv("MINIFT_COURSE_MODELS", str(out / "none"))  # a tiny random model, not runs/course
    try:
        assert cli.main(["rlhf", "--out", str(out), "--seeds", "2", "--quick", "--no-progress"]) == 0
    finally:
        mp.undo()
    return out, json.loads((out / "rlhf_results.json").read_text(encoding="utf-8"))


def test_rlhf_quick_writes_the_schema_with_its_invariants(quick_results):
    out, r = quick_results
    assert set(r["curves"]) == {"ppo", "grpo", "dpo", "bon"} == set(r["collapse"])
    for method, settings in r["curves"].items():
        for name, runs in settings.items():
            assert set(runs) == {"0", "1"}
            for seed, points in runs.items():
                assert points and all(set(p) >= {"kl", "proxy", "gold"} for p in points)
                assert all(math.isfinite(p[k]) for p in points for k in ("kl", "proxy", "gold"))
                if method == "bon":
                    assert len(points) == 1 and points[0]["kl"] == pytest.approx(
                        math.log(int(name)) - (int(name) - 1) / int(name), abs=1e-12)
                else:  # every trained policy starts as the reference: KL exactly 0 to float rounding
                    assert points[0]["kl"] == pytest.approx(0.0, abs=1e-4)
                c = r["collapse"][method][name][seed]
                assert 0 < c["distinct"] <= 1 and c["entropy"] >= 0 and 0 <= c["polite"] <= 1
    ppo = r["curves"]["ppo"]
    first = {name: runs["0"][0]["proxy"] for name, runs in ppo.items()}
    assert len(set(first.values())) == 1  # same seed, same first rollout, whatever beta
    assert set(r["fits"]) <= {"ppo", "grpo", "dpo", "bon"} and r["setting"]["pairs"] > 0
    assert (out / "rlhf.png").read_bytes()[:4] == b"\x89PNG"


def test_rlhf_bad_input_is_a_one_line_error(tmp_path, capsys):
    for flag, value, words in (("--ppo-betas", "0,-1", ">= 0"), ("--bon-n", "0,4", ">= 1"),
                               ("--dpo-betas", "0", "> 0")):
        with pytest.raises(SystemExit):
            cli.main(["rlhf", "--out", str(tmp_path), "--quick", flag, value])
        err = capsys.readouterr().err
        assert flag in err and words in err
    empty = tmp_path / "prefs.jsonl"
    empty.write_text("\n", encoding="utf-8")
    assert cli.main(["rlhf", "--out", str(tmp_path), "--quick", "--preferences", str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "no preference pairs" in err
