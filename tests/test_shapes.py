"""The shape annotations of the math layer are true: each annotated function, checked at run time
with jaxtyping + beartype (tests only), accepts the shapes its docstring promises and rejects a
call whose dimensions disagree (B, T, V named once per call, as in the README's shape table).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from beartype import beartype
from jaxtyping import TypeCheckError, jaxtyped

from minift import loss, model
from minift.config import get_config
from minift.rlhf import objectives, ppo_objective

B, T, V = 3, 4, 7
D, F, H, G, K = 8, 12, 4, 2, 6
CFG = get_config("tiny", vocab_size=V)
PARAMS = model.init_params(CFG, jax.random.PRNGKey(0))


def f(*shape):
    return jnp.linspace(-1.0, 1.0, num=int(jnp.prod(jnp.asarray(shape))) if shape else 1).reshape(shape)


def i(*shape):
    return jnp.zeros(shape, jnp.int32)


def ones(*shape):
    return jnp.ones(shape, jnp.float32)


def causal(*shape):
    return jnp.ones(shape, bool)


# (function, arguments with the promised shapes, the same call with one dimension wrong)
CASES = [
    (model.rms_norm, (f(B, T, D), f(D), 1e-6), (f(B, T, D), f(D + 1), 1e-6)),
    (model.apply_rotary, (f(B, T, H, K), f(B, T, K), f(B, T, K)), (f(B, T, H, K), f(B, T, K + 2), f(B, T, K + 2))),
    (model.reference_attention, (f(B, T, H, K), f(B, T, G, K), f(B, T, G, K), causal(B, T, T)),
     (f(B, T, H, K), f(B, T, G, K), f(B, T + 1, G, K), causal(B, T, T))),
    (model.fast_attention, (f(B, T, H, K), f(B, T, G, K), f(B, T, G, K), causal(B, T, T)),
     (f(B, T, H, K), f(B, T, G, K), f(B, T, G, K), causal(B, T, T + 1))),
    (model.swiglu_mlp, (f(B, T, D), f(D, F), f(D, F), f(F, D)), (f(B, T, D), f(D, F), f(D, F + 1), f(F, D))),
    (model.positions_from_mask, (ones(B, T),), (ones(B),)),
    (model.last_token_index, (ones(B, T),), (ones(B, T, 1),)),
    (model.scalar_head, ({"w": f(D), "b": f()}, f(B, T, D)), ({"w": f(D), "b": f()}, f(B, T))),
    (loss.token_log_probs, (f(B, T, V), i(B, T)), (f(B, T, V), i(B, T + 1))),
    (loss.sequence_log_prob, (f(B, T, V), i(B, T), ones(B, T)), (f(B, T, V), i(B, T), ones(B + 1, T))),
    (loss.masked_mean, (f(B, T), ones(B, T)), (f(B, T), ones(B, T + 1))),
    (loss.sft_loss, (f(B, T, V), i(B, T), ones(B, T)), (f(B, T, V), i(B, T), ones(B, T + 1))),
    (loss.lm_loss, (f(B, T, V), i(B, T)), (f(B, T, V), i(B + 1, T))),
    (objectives.bradley_terry_loss, (f(B), f(B)), (f(B), f(B + 1))),
    (objectives.preference_accuracy, (f(B), f(B)), (f(B), f(B + 1))),
    (objectives.kl_estimate, (f(B, T), f(B, T)), (f(B, T), f(B, T + 1))),
    (objectives.sequence_kl, (f(B, T), f(B, T), ones(B, T)), (f(B, T), f(B, T), ones(B, T + 1))),
    (objectives.per_token_rewards, (f(B), f(B, T), ones(B, T), 0.1), (f(B + 1), f(B, T), ones(B, T), 0.1)),
    (objectives.rlhf_objective, (f(B), f(B, T), f(B, T), ones(B, T), 0.1), (f(B), f(B, T), f(B, T + 1), ones(B, T), 0.1)),
    (objectives.kl_loss_term, (f(B, T), f(B, T), ones(B, T), 0.1), (f(B, T), f(B, T), ones(B + 1, T), 0.1)),
    (ppo_objective.gae, (f(B, T), f(B, T), ones(B, T)), (f(B, T), f(B, T + 1), ones(B, T))),
    (ppo_objective.masked_whiten, (f(B, T), ones(B, T)), (f(B, T), ones(B, T + 1))),
    (ppo_objective.ppo_clip_loss, (f(B, T), f(B, T), f(B, T), ones(B, T)), (f(B, T), f(B, T), f(B + 1, T), ones(B, T))),
    (ppo_objective.ppo_diagnostics, (f(B, T), f(B, T), f(B, T), ones(B, T)), (f(B, T), f(B, T), f(B, T), ones(B + 1, T))),
    (ppo_objective.value_loss, (f(B, T), f(B, T), f(B, T), ones(B, T)), (f(B, T), f(B, T), f(B, T), ones(B, T + 1))),
    (ppo_objective.entropy, (f(B, T, V), ones(B, T)), (f(B, T, V), ones(B, T + 1))),
]


def test_forward_and_lm_head_promise_logits_of_shape_b_t_v():
    checked = jaxtyped(typechecker=beartype)(model.forward)
    logits = checked(PARAMS, i(B, T), CFG, attention_mask=ones(B, T))
    assert logits.shape == (B, T, CFG.vocab_size)
    with pytest.raises(TypeCheckError):
        checked(PARAMS, i(B, T), CFG, attention_mask=ones(B, T + 1))
    checked_head = jaxtyped(typechecker=beartype)(model.lm_head)
    assert checked_head(PARAMS, f(B, T, CFG.d_model), CFG).shape == (B, T, CFG.vocab_size)


@pytest.mark.parametrize("fn, good, bad", CASES, ids=[c[0].__name__ for c in CASES])
def test_annotations_accept_the_promised_shapes_and_reject_disagreeing_ones(fn, good, bad):
    checked = jaxtyped(typechecker=beartype)(fn)
    checked(*good)  # the promised shapes pass, return value included
    with pytest.raises(TypeCheckError):
        checked(*bad)
