"""Tests for the reward model of §4 (minift/rlhf/reward_model.py).

Kinds: invariants (the score is read at the last *real* token: padding of any amount and side,
and the token ids under padding, never change it; a zero head ranks every pair a tie, 0.5);
a short seeded training run on the bundled pairs that must beat chance on held-out pairs;
checkpoints and clear errors. The Bradley–Terry loss itself is tested in
tests/test_rlhf_objectives.py; the preference files in tests/test_preferences.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from minift import checkpoint as ckpt
from minift import model
from minift.config import get_config
from minift.course.bundled import PREFERENCES_FILE, SAMPLES_DIR, default_tokenizer
from minift.preferences import load_preferences, split_pairs
from minift.rlhf import reward_model as R

score_jit = jax.jit(R.reward_scores, static_argnames="config")


@pytest.fixture(scope="module")
def tok():
    return default_tokenizer()


@pytest.fixture(scope="module")
def cfg(tok):
    return get_config("tiny", vocab_size=tok.vocab_size)


@pytest.fixture(scope="module")
def rm_params(cfg):
    params = model.init_params(cfg, jax.random.PRNGKey(0))
    rm = R.init_reward_model(params, cfg)
    rm["head"]["w"] = jax.random.normal(jax.random.PRNGKey(1), (cfg.d_model,))  # a non-trivial head
    return rm


def test_init_reward_model_drops_lm_head_and_starts_at_zero(tok):
    cfg = get_config("tiny", vocab_size=tok.vocab_size, tie_embeddings=False)
    params = model.init_params(cfg, jax.random.PRNGKey(0))
    rm = R.init_reward_model(params, cfg)
    assert "lm_head" not in rm["backbone"] and rm["head"]["w"].shape == (cfg.d_model,)
    tokens = jnp.asarray([[2, 50, 60, 3], [2, 70, 3, 0]], jnp.int32)
    mask = jnp.asarray([[1, 1, 1, 1], [1, 1, 1, 0]], jnp.float32)
    scores = score_jit(rm, tokens, mask, config=cfg)
    assert np.all(np.asarray(scores) == 0.0)  # zero head: every response scores exactly 0
    assert float(R.preference_accuracy(scores[:1], scores[1:])) == 0.5  # a tie is a coin flip


def test_reward_reads_last_real_token_whatever_the_padding(rm_params, cfg):
    rng = np.random.default_rng(0)
    seq = rng.integers(4, cfg.vocab_size, size=11).astype(np.int32)
    L = len(seq)

    def score(tokens, mask):
        return float(score_jit(rm_params, jnp.asarray(tokens)[None], jnp.asarray(mask, jnp.float32)[None], config=cfg)[0])

    alone = score(seq, np.ones(L))
    for pad in (1, 9):
        junk = rng.integers(0, cfg.vocab_size, size=pad).astype(np.int32)  # ids under padding: anything
        right = score(np.concatenate([seq, junk]), np.r_[np.ones(L), np.zeros(pad)])
        left = score(np.concatenate([junk, seq]), np.r_[np.zeros(pad), np.ones(L)])
        # float32 reductions over different T reorder sums: agreement to 1e-5 relative is exact enough
        assert right == pytest.approx(alone, rel=1e-5, abs=1e-5)
        assert left == pytest.approx(alone, rel=1e-5, abs=1e-5)
    # ... while the last real token itself matters (it is the one that is read)
    changed = seq.copy()
    changed[-1] = (seq[-1] + 1) % cfg.vocab_size
    assert abs(score(changed, np.ones(L)) - alone) > 1e-4


def test_short_training_beats_chance_on_heldout_pairs(tok, cfg):
    pairs = load_preferences(SAMPLES_DIR / PREFERENCES_FILE, template="compact")
    train_list, heldout_list = split_pairs(pairs)
    train, _ = R.encode_pairs(train_list, tok, 48)
    heldout, _ = R.encode_pairs(heldout_list, tok, 48)
    rm = R.init_reward_model(model.init_params(cfg, jax.random.PRNGKey(0)), cfg)
    before = R.evaluate_reward_model(rm, heldout, cfg)
    assert before["accuracy"] == 0.5  # zero head: all ties
    settings = R.RMConfig(steps=40, batch_size=32, learning_rate=1e-3, warmup_steps=5, eval_every=0)
    trained, history = R.train_reward_model(rm, cfg, train, settings, eval_pairs=heldout)
    after = R.evaluate_reward_model(trained, heldout, cfg)
    # 200 held-out pairs: chance is 0.5 with SE ~0.035, so 0.6 is ~3 SE above chance
    assert after["accuracy"] > 0.6, after
    assert history[-1]["eval_accuracy"] == after["accuracy"]
    assert after["loss"] < np.log(2)  # better than the coin's Bradley–Terry loss
    assert np.all(np.asarray(rm["head"]["w"]) == 0.0)  # the caller's params were not touched


def test_checkpoint_round_trip_and_kind(tmp_path, rm_params, cfg):
    path = R.save_reward_model(tmp_path / "rm" / "checkpoints" / "step_00000001.safetensors", rm_params, cfg,
                               step=1, metadata={"template": "compact"})
    loaded, config, meta = R.load_reward_model(tmp_path / "rm")
    assert config == cfg and meta["kind"] == "reward_model" and meta["backbone_config"] == cfg.to_dict()
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), loaded, rm_params))
    sft = ckpt.save_checkpoint(tmp_path / "sft.safetensors", params=rm_params["backbone"], step=0, config=cfg)
    with pytest.raises(ValueError, match="not a reward-model checkpoint"):
        R.load_reward_model(sft)
    assert path.is_file()


def test_backbone_mismatch_is_a_clear_error(cfg):
    other = get_config("tiny", vocab_size=cfg.vocab_size, d_model=32)
    with pytest.raises(ValueError, match=r"d_model: reward model 32 vs policy 64"):
        R.check_backbone_matches(other, cfg)
    R.check_backbone_matches(get_config("tiny", vocab_size=cfg.vocab_size, attention="fast"), cfg)  # same numbers


