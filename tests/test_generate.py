"""The sampler: cached == uncached, padding side, EOS handling, filters, one compile per shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from minift.config import get_config
from minift.generate import (
    Sampling,
    filter_logits,
    generate,
    generate_tokens,
    generate_uncached,
    left_pad,
)
from minift.model import init_params

EOS, PAD = 3, 0


@pytest.fixture(scope="module")
def model():
    # Larger-than-default init so an untrained model's greedy choices vary with the context
    # (with 0.02 init every row repeats one token and padding bugs could hide).
    config = get_config("tiny")
    params = init_params(config, jax.random.PRNGKey(0))
    params = jax.tree.map(lambda w: w * 8.0 if w.ndim >= 2 else w, params)
    return config, params


PROMPTS = [[2, 17, 30, 41, 52, 60, 71], [2, 99], [2, 11, 12, 13]]


def test_left_pad_puts_every_prompt_flush_right():
    tokens, mask = left_pad(PROMPTS, PAD, buckets=(8, 16))
    assert tokens.shape == (3, 8) and mask.shape == (3, 8)
    np.testing.assert_array_equal(np.asarray(tokens[1]), [PAD] * 6 + [2, 99])
    np.testing.assert_array_equal(np.asarray(mask).sum(1), [7, 2, 4])
    with pytest.raises(ValueError, match="at least one prompt"):
        left_pad([], PAD)


@pytest.mark.parametrize("sampling", [Sampling(), Sampling(temperature=1.0, top_k=20, top_p=0.9)])
def test_cached_equals_uncached(model, sampling):
    """Same tokens and log-probs with and without the KV cache (same keys, so sampling too).

    Tolerance 1e-4 on log-probs: float32 sums in a different order over a tiny model.
    """
    config, params = model
    tokens, mask = left_pad(PROMPTS, PAD)
    key = jax.random.PRNGKey(1)
    kw = dict(config=config, max_new_tokens=6, sampling=sampling, eos_id=EOS, pad_id=PAD)
    fast = generate_tokens(params, tokens, mask, key, **kw)
    slow = generate_uncached(params, tokens, mask, key, **kw)
    np.testing.assert_array_equal(np.asarray(fast.tokens), np.asarray(slow.tokens))
    np.testing.assert_array_equal(np.asarray(fast.mask), np.asarray(slow.mask))
    np.testing.assert_allclose(np.asarray(fast.logprobs), np.asarray(slow.logprobs), atol=1e-4)


def test_batched_prompts_of_different_lengths_match_each_prompt_alone(model):
    """Left padding + key mask + positions: a row's output does not depend on its neighbours."""
    config, params = model
    together = generate(params, config, PROMPTS, max_new_tokens=8, eos_id=EOS, pad_id=PAD)
    alone = [generate(params, config, [p], max_new_tokens=8, eos_id=EOS, pad_id=PAD)[0] for p in PROMPTS]
    assert together == alone
    assert len({tuple(r) for r in together}) > 1  # the rows really differ: the check has teeth


def test_right_padding_would_change_the_answer(model):
    """The bug the left padding avoids: pads between the prompt and the answer change the output."""
    config, params = model
    prompt = PROMPTS[1]
    good = generate(params, config, [prompt], max_new_tokens=6, eos_id=EOS, pad_id=PAD)[0]
    tokens = jnp.asarray([prompt + [PAD] * 6], jnp.int32)  # right-padded, mask says all real
    out = generate_tokens(params, tokens, jnp.ones_like(tokens, jnp.float32), jax.random.PRNGKey(0),
                          config=config, max_new_tokens=6, eos_id=EOS, pad_id=PAD)
    assert [int(t) for t in out.tokens[0]] != good


def test_tokens_after_eos_are_padding_and_masked(model):
    config, params = model
    tokens, mask = left_pad(PROMPTS, PAD)
    kw = dict(config=config, max_new_tokens=5, pad_id=PAD)
    free = generate_tokens(params, tokens, mask, jax.random.PRNGKey(0), eos_id=-1, **kw)  # never stops
    eos = int(free.tokens[0, 0])  # declare row 0's first token to be EOS: row 0 must stop at once
    out = generate_tokens(params, tokens, mask, jax.random.PRNGKey(0), eos_id=eos, **kw)
    np.testing.assert_array_equal(np.asarray(out.mask[0]), [1, 0, 0, 0, 0])  # EOS itself counts
    np.testing.assert_array_equal(np.asarray(out.tokens[0]), [eos, PAD, PAD, PAD, PAD])
    np.testing.assert_array_equal(np.asarray(out.logprobs[0, 1:]), 0.0)
    assert generate(params, config, PROMPTS, max_new_tokens=5, eos_id=eos, pad_id=PAD)[0] == []


def test_any_of_several_stop_ids_ends_a_row(model):
    """Llama-3 ends a chat turn with <|eot_id|> and a text with <|end_of_text|>: either must stop a row."""
    config, params = model
    tokens, mask = left_pad(PROMPTS, PAD)
    kw = dict(config=config, max_new_tokens=5, pad_id=PAD)
    free = generate_tokens(params, tokens, mask, jax.random.PRNGKey(0), eos_id=-1, **kw)
    first, second = int(free.tokens[0, 0]), int(free.tokens[1, 2])  # row 0 stops at once, row 1 at its 3rd
    assert second != first and second not in [int(t) for t in free.tokens[1, :2]]  # distinct with this seed
    out = generate_tokens(params, tokens, mask, jax.random.PRNGKey(0), eos_id=(second, first), **kw)
    np.testing.assert_array_equal(np.asarray(out.mask[0]), [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(out.mask[1]), [1, 1, 1, 0, 0])
    rows = generate(params, config, PROMPTS, max_new_tokens=5, eos_id=(second, first), pad_id=PAD)
    assert rows[0] == [] and rows[1] == [int(t) for t in free.tokens[1, :2]]  # the stop id itself is cut


def test_filters_keep_only_allowed_tokens():
    logits = jnp.log(jnp.asarray([[0.5, 0.3, 0.15, 0.05]]))
    top2 = filter_logits(logits, Sampling(temperature=1.0, top_k=2))
    assert np.isfinite(np.asarray(top2)).tolist() == [[True, True, False, False]]
    # top-p 0.7: 0.5 alone is below 0.7, so the second token is needed; the third is not.
    nucleus = filter_logits(logits, Sampling(temperature=1.0, top_p=0.7))
    assert np.isfinite(np.asarray(nucleus)).tolist() == [[True, True, False, False]]
    keys = jax.random.split(jax.random.PRNGKey(0), 500)
    draws = jax.vmap(lambda k: jax.random.categorical(k, nucleus[0]))(keys)
    assert set(np.asarray(draws).tolist()) == {0, 1}


def test_bad_sampling_settings_are_refused():
    for kwargs in ({"temperature": -1.0}, {"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(ValueError):
            Sampling(**kwargs)


def test_sampler_compiles_once_per_shape(model):
    config, params = model
    generate_tokens.clear_cache() if hasattr(generate_tokens, "clear_cache") else None
    kw = dict(max_new_tokens=4, eos_id=EOS, pad_id=PAD)
    generate(params, config, [[2, 5, 6]], **kw)
    before = generate_tokens._cache_size()
    generate(params, config, [[2, 9, 9, 9, 9]], **kw)  # same bucket (16): no new compilation
    generate(params, config, [[2, 1]], **kw)
    assert generate_tokens._cache_size() == before
