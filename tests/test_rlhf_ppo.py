"""Tests for the PPO loop of §4 (minift/rlhf/ppo.py, the part above the pure math).

Invariants of one iteration on a tiny random model: the KL to the reference is exactly 0 for the
first rollout (policy == reference); the first minibatch of the update has ratio exactly 1 and
clips nothing; the frozen reference never changes; the update compiles once across iterations
(static shapes); every logged statistic is finite, for both KL placements and the adaptive β.
And the bad inputs: β < 0, an empty rollout batch, a reward model of another backbone.
The equations themselves are tested in test_rlhf_objectives.py and test_rlhf_ppo_objective.py.
"""

from __future__ import annotations

import math
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from minift import model
from minift.config import get_config
from minift.course.bundled import course_examples, default_tokenizer
from minift.generate import Sampling, generate_tokens
from minift.rlhf import ppo as P
from minift.rlhf import reward_model as R
from minift.rlhf import sweep

SETTINGS = P.PPOConfig(iterations=2, batch_size=8, max_new_tokens=5, epochs=2, minibatches=2, beta=0.1,
                       learning_rate=1e-3)


@pytest.fixture(scope="module")
def tok():
    return default_tokenizer()


@pytest.fixture(scope="module")
def cfg(tok):
    return get_config("tiny", vocab_size=tok.vocab_size)


@pytest.fixture(scope="module")
def sft(cfg):
    return model.init_params(cfg, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def rm(sft, cfg):
    rm = R.init_reward_model(sft, cfg)
    rm["head"]["w"] = 0.1 * jax.random.normal(jax.random.PRNGKey(1), (cfg.d_model,))
    return rm


@pytest.fixture(scope="module")
def prompts(tok):
    return P.make_prompt_set(course_examples("train")[:32], tok, "compact")


def rollout(params, sft, rm, prompts, tok, cfg, ppo=SETTINGS, seed=0):
    """Steps 1-3 of an iteration, as train_ppo does them: sample, then score."""
    index = np.arange(ppo.batch_size) + seed
    prompt_tokens, prompt_mask = jnp.asarray(prompts.tokens[index]), jnp.asarray(prompts.mask[index])
    gen = generate_tokens(params["policy"], prompt_tokens, prompt_mask, jax.random.PRNGKey(seed), config=cfg,
                          max_new_tokens=ppo.max_new_tokens, sampling=Sampling(temperature=1.0),
                          eos_id=tok.eos_id, pad_id=tok.pad_id)
    return P.score_rollout(params, sft, rm, prompt_tokens, prompt_mask, gen, jnp.float32(ppo.beta), config=cfg,
                           settings=ppo.update_settings())


def test_first_rollout_kl_is_exactly_zero_and_logps_match_the_sampler(sft, rm, prompts, tok, cfg):
    r = rollout(P.init_policy(sft, cfg), sft, rm, prompts, tok, cfg)
    # policy == reference, same forward pass: the log-ratio is 0 bit for bit, so is every estimator
    assert np.all(np.asarray(r.logp_old) == np.asarray(r.logp_ref))
    m = P.rollout_metrics(r)
    assert m["kl_k1"] == 0.0 and m["kl_k3"] == 0.0
    # the cached sampler computed the same log-probs along another path: float32 rounding only
    assert m["sampler_logp_gap"] < 1e-4
    assert r.tokens.shape == (8, prompts.tokens.shape[1] + 5) and float(jnp.sum(r.mask)) > 0


def test_update_first_minibatch_ratio_one_no_clip_and_reference_frozen(sft, rm, prompts, tok, cfg):
    ref_before = jax.tree.map(np.array, sft)
    params = P.init_policy(sft, cfg)
    opt_state = P.ppo_optimizer(SETTINGS.update_settings()).init(params)
    compiled_before = P.ppo_update._cache_size()
    for it in range(2):
        # the runs of a beta sweep share the compiled update: beta is an argument, not a setting
        run = replace(SETTINGS, beta=[0.1, 0.5][it], seed=it, iterations=it + 1)
        r = rollout(params, sft, rm, prompts, tok, cfg, ppo=run, seed=it)
        params, opt_state, stats = P.ppo_update(params, opt_state, r, jax.random.PRNGKey(10 + it),
                                                jnp.float32(run.beta), config=cfg, settings=run.update_settings())
        assert stats["ratio_mean"].shape == (SETTINGS.epochs, SETTINGS.minibatches)
        # logp_old is recomputed with the update's own forward pass, so before any step the ratio is
        # 1 up to float32 rounding (the minibatch is a different batch shape: ~1e-7 per token)
        assert abs(float(stats["ratio_mean"][0, 0]) - 1.0) < 1e-6
        assert float(stats["clip_frac"][0, 0]) == 0.0  # nothing is anywhere near 1 +- 0.2
        assert float(stats["approx_kl"][0, 0]) < 1e-10  # k3 ~ (log ratio)^2 / 2 ~ 1e-14
        assert all(np.all(np.isfinite(np.asarray(v))) for v in stats.values())
    # one compiled program for both iterations and both runs: shapes and settings are static
    assert P.ppo_update._cache_size() == compiled_before + 1
    # the reference is untouched (the update donates and changes only its own copy) ...
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), ref_before, jax.tree.map(np.array, sft)))
    # ... while the policy did move
    moved = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - b))), params["policy"], ref_before)
    assert max(jax.tree.leaves(moved)) > 0


# KL in the loss with a fixed beta, and KL in the reward with the adaptive beta (the fixed-beta,
# KL-in-reward update is the one tested above): each case compiles its own programs, ~10 s.
@pytest.mark.parametrize("placement,target", [("loss", 0.0), ("reward", 0.5)])
def test_ppo_iterations_end_to_end_give_finite_stats(sft, rm, prompts, tok, cfg, tmp_path, placement, target):
    ppo = replace(SETTINGS, kl_placement=placement, kl_target=target)
    state, history = P.train_ppo(sft, cfg, rm, cfg, prompts, tok, ppo, run_dir=tmp_path)
    assert len(history) == 2 and state.iteration == 2
    for record in history:
        for name in ("reward", "gold_reward", "kl_k1", "kl_k3", "entropy", "clip_frac", "value_loss"):
            assert math.isfinite(record[name]), (name, record)
        assert -1.0 <= record["gold_reward"] <= 1.0  # the judge's range
    assert history[0]["kl_k1"] == 0.0  # first rollout: policy == reference
    assert history[1]["kl_k3"] > 0.0  # after one update the policy has moved
    lines = (tmp_path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    if target > 0:  # adaptive: the KL is below target, so beta falls
        assert history[1]["beta"] < history[0]["beta"]
    else:
        assert history[1]["beta"] == history[0]["beta"] == 0.1


def test_negative_beta_is_rejected():
    with pytest.raises(ValueError, match="beta = -0.1 is negative"):
        P.PPOConfig(beta=-0.1)
    with pytest.raises(ValueError, match="kl_placement"):
        P.PPOConfig(kl_placement="prior")


def test_empty_rollout_batch_is_rejected(sft, rm, prompts, tok, cfg):
    r = rollout(P.init_policy(sft, cfg), sft, rm, prompts, tok, cfg)
    empty = r._replace(mask=jnp.zeros_like(r.mask))
    with pytest.raises(ValueError, match="empty rollout batch"):
        P.check_rollout(empty)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        P.PPOConfig(batch_size=0)  # so the loop can never draw an empty batch of prompts
    with pytest.raises(ValueError, match="prompt list is empty"):
        P.make_prompt_set([], tok, "compact")


def test_reward_model_of_another_backbone_is_rejected(sft, rm, prompts, tok, cfg):
    other = get_config("tiny", vocab_size=cfg.vocab_size, n_layers=3)
    with pytest.raises(ValueError, match=r"n_layers: reward model 3 vs policy 2"):
        P.train_ppo(sft, cfg, rm, other, prompts, tok, SETTINGS)


def test_kl_estimator_defaults_per_placement_and_k1_in_the_loss_is_rejected():
    assert P.PPOConfig().kl_estimator == "k1"  # in the reward the KL's value is what counts
    assert P.PPOConfig(kl_placement="loss").kl_estimator == "k3"  # in the loss its gradient is
    assert P.PPOConfig(kl_placement="loss", kl_kind="k2").kl_estimator == "k2"
    with pytest.raises(ValueError, match="cannot be used as a loss"):
        P.PPOConfig(kl_placement="loss", kl_kind="k1")
    # switching the placement of a config keeps meaning "the placement's default"
    assert replace(P.PPOConfig(), kl_placement="loss").kl_estimator == "k3"


def exact_kl_to(reference, policy, prompts, cfg) -> float:
    """KL(pi_theta || pi_ref) per token, summed over the whole vocabulary (no sampling), at every
    position of the prompt set: a deterministic measure of how far the policy has drifted."""
    tokens, mask = jnp.asarray(prompts.tokens), jnp.asarray(prompts.mask)
    pos = model.positions_from_mask(mask)
    logp = jax.nn.log_softmax(model.forward(policy, tokens, cfg, positions=pos, attention_mask=mask))
    logp_ref = jax.nn.log_softmax(model.forward(reference, tokens, cfg, positions=pos, attention_mask=mask))
    kl = jnp.sum(jnp.exp(logp) * (logp - logp_ref), axis=-1)  # (B, T)
    return float(jnp.sum(kl * mask) / jnp.sum(mask))


def test_kl_in_the_loss_holds_the_policy_closer_to_the_reference(sft, rm, prompts, tok, cfg):
    # Same seeds, prompts and reward model; only beta differs. The learning rate is high enough for
    # the policy to drift far within 4 iterations when nothing holds it (measured: 1.3 nats/token at
    # beta = 0, 0.08 at beta = 1). k1 in the loss would be the beta = 0 run plus noise.
    base = replace(SETTINGS, iterations=4, learning_rate=2e-2, kl_placement="loss")
    free, _ = P.train_ppo(sft, cfg, rm, cfg, prompts, tok, replace(base, beta=0.0))
    held, _ = P.train_ppo(sft, cfg, rm, cfg, prompts, tok, replace(base, beta=1.0))
    kl_free = exact_kl_to(sft, free.params["policy"], prompts, cfg)
    kl_held = exact_kl_to(sft, held.params["policy"], prompts, cfg)
    assert kl_held < 0.25 * kl_free, (kl_held, kl_free)


def test_beta_sweep_over_seeds_summarises_mean_and_spread(sft, rm, prompts, tok, cfg, tmp_path):
    settings = replace(SETTINGS, iterations=2)
    results = sweep.run_sweep([0.0, 0.5], sft, cfg, rm, cfg, prompts, tok, settings, tmp_path, seeds=[0, 1])
    for beta in ("0", "0.5"):
        final_gold = results["summary"][beta]["final_gold_reward"]
        assert final_gold["n"] == 2 and final_gold["min"] <= final_gold["mean"] <= final_gold["max"]
        assert set(results["history"][beta]) == {"0", "1"}
        assert (tmp_path / f"beta_{beta}" / "seed_1" / "metrics.jsonl").is_file()
    # the seeds draw different prompts and samples: two runs, not one run twice
    assert results["final_samples"]["0"]["0"] != results["final_samples"]["0"]["1"]
    assert (tmp_path / "beta_sweep.png").read_bytes()[:4] == b"\x89PNG"
