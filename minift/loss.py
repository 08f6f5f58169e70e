"""Log-probabilities and the masked negative log-likelihood (§3.1–§3.2 of the article).

The autoregressive model of §3.1 factorises the probability of a sequence,

$$P_\\theta(X)=\\prod_{t=1}^{T}P_\\theta(x_t\\mid x_{<t}),$$

so its logarithm is a sum of per-token terms. Instruction tuning (§3.2, SFT) maximises only the
terms that belong to the response $Y=(y_1,\\dots,y_N)$ given the instruction $I$:

$$\\mathcal{L}_{SFT}(\\theta)=-\\frac{1}{N}\\sum_{i=1}^{N}\\log P_\\theta(y_i\\mid I,y_{<i}).$$

In code the "given $I$" is a mask: every target position carries ``loss_mask`` 1 on response
tokens (and the closing EOS) and 0 on prompt tokens and padding. The prompt's terms are
multiplied by zero, so the prompt sends no gradient (the article's point), while the model still
*reads* the prompt through attention.

Conventions: ``logits (B, T, V)`` are the model's scores for the token *after* each position, so
``targets (B, T)`` are the input tokens shifted by one (``targets[:, t] = x_{t+1}``; the data layer
does the shift). Everything goes through ``jax.nn.log_softmax``, never ``log(softmax)``: the
latter underflows to ``log(0) = -inf`` as soon as one logit dominates by ~100 in float32.

Deviation from the article: it writes one example; a batch needs a choice of how to average
(``reduction``, see ``sft_loss``), and it needs a rule for a batch without any response token
(the loss is then exactly 0, with zero gradients, instead of 0/0 = NaN).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, Real

Reduction = Literal["token", "sequence"]
REDUCTIONS = ("token", "sequence")


def token_log_probs(logits: Float[Array, "*B V"], targets: Int[Array, "*B"]) -> Float[Array, "*B"]:
    """$\\log P_\\theta(x_t\\mid x_{<t})$ for every position (§3.1): ``(B, T, V), (B, T) -> (B, T)``.

    $$\\log P_\\theta(x_t\\mid x_{<t}) = z_{t,x_t} - \\log\\sum_{v=1}^{V} e^{z_{t,v}}$$

    ``log_softmax`` subtracts the max logit before exponentiating, so the result is finite for
    logits of any size; half-precision logits are promoted to float32 first (float64 stays).
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"loss.token_log_probs: logits {logits.shape} must be targets {targets.shape} + (V,); "
            "pass targets = tokens shifted by one, one target per logits position."
        )
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    log_p = jax.nn.log_softmax(logits.astype(dtype), axis=-1)  # (B, T, V)
    return jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]  # (B, T)


def sequence_log_prob(
    logits: Float[Array, "*B T V"], targets: Int[Array, "*B T"], mask: Real[Array, "*B T"]
) -> Float[Array, "*B"]:
    """$\\log P_\\theta(X)=\\sum_t m_t\\log P_\\theta(x_t\\mid x_{<t})$ per sequence (§3.1): ``-> (B,)``.

    The product of §3.1 becomes a sum of logs; ``mask`` picks which positions count (the
    response only, for $\\log P_\\theta(Y\\mid I)$: the probability the model gives a whole
    answer). Per-token values, which PPO needs, are ``token_log_probs``.
    """
    return jnp.sum(mask * token_log_probs(logits, targets), axis=-1)  # (B,)


def safe_divide(total: jax.Array, count: jax.Array) -> jax.Array:
    """``total / count``, and 0 where ``count == 0`` — with finite gradients everywhere.

    The "where trap": ``jnp.where(count > 0, total / count, 0)`` has the right *value* but NaN
    *gradients*, because the unused branch ``total / 0`` is still differentiated and
    ``0 * inf = NaN``. Replacing the denominator first keeps both branches finite. When
    ``count == 0`` every masked term is zero, so ``total`` is 0 and so is the result.
    """
    return total / jnp.where(count > 0, count, 1.0)


def masked_mean(x: Float[Array, "*shape"], mask: Real[Array, "*shape"], axis: int | None = None) -> Float[Array, "..."]:
    r"""Mean of ``x`` over the positions where ``mask`` is 1: $\sum_t m_t x_t / \sum_t m_t$.

    Padding never enters: masked positions are selected away (not multiplied by 0, so a NaN or inf
    there cannot leak in), and the denominator counts real tokens only. With no real token at all
    the mean is 0 (and so is its gradient) instead of 0/0.

    Args:
        x: (B, T) values (any shape equal to ``mask``'s).
        mask: (B, T) 1 = real token, 0 = padding.
        axis: None for one scalar over everything, or the axis to average (e.g. 1 for per-sequence).
    """
    if x.shape != mask.shape:
        raise ValueError(
            f"loss.masked_mean: x has shape {x.shape} but mask has shape {mask.shape}; "
            "they must match — pass the (B, T) response mask that belongs to these values."
        )
    return safe_divide(jnp.sum(jnp.where(mask > 0, x, 0.0), axis=axis), jnp.sum(mask, axis=axis))


def nll_sum_and_count(
    logits: Float[Array, "B T V"], targets: Int[Array, "B T"], loss_mask: Real[Array, "B T"],
    reduction: Reduction = "token",
) -> tuple[Float[Array, ""], Real[Array, ""]]:
    """The numerator and denominator of ``sft_loss``, both additive over micro-batches.

    For ``reduction="token"``: $\\big(\\sum_{b,t} m_{b,t}\\,(-\\log P_\\theta),\\ \\sum_{b,t} m_{b,t}\\big)$,
    the summed masked NLL and the number of response tokens.
    For ``reduction="sequence"``: (sum over sequences of each one's mean NLL, number of sequences
    with at least one response token).

    Because both parts add up across micro-batches, gradient accumulation can sum them over $K$
    micro-batches and divide once, giving exactly the loss (and gradient) of the full batch —
    unlike averaging per-micro-batch means, which weights a micro-batch of short answers as much
    as one of long answers.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"loss: reduction={reduction!r} is not one of {REDUCTIONS}.")
    if loss_mask.shape != targets.shape:
        raise ValueError(
            f"loss: loss_mask {loss_mask.shape} must have the shape of targets {targets.shape}."
        )
    nll = -loss_mask * token_log_probs(logits, targets)  # (B, T), zero off the response
    if reduction == "token":
        return jnp.sum(nll), jnp.sum(loss_mask)
    per_sequence = safe_divide(jnp.sum(nll, axis=-1), jnp.sum(loss_mask, axis=-1))  # (B,)
    has_response = (jnp.sum(loss_mask, axis=-1) > 0).astype(per_sequence.dtype)  # (B,)
    return jnp.sum(per_sequence), jnp.sum(has_response)


def sft_loss(
    logits: Float[Array, "B T V"], targets: Int[Array, "B T"], loss_mask: Real[Array, "B T"],
    reduction: Reduction = "token",
) -> Float[Array, ""]:
    """The masked NLL of instruction tuning (§3.2): a scalar.

    $$\\mathcal{L}_{SFT}(\\theta)=-\\frac{1}{N}\\sum_{i=1}^{N}\\log P_\\theta(y_i\\mid I,y_{<i})
      =-\\frac{\\sum_{b,t} m_{b,t}\\log P_\\theta(x_{b,t}\\mid x_{b,<t})}{\\sum_{b,t} m_{b,t}}$$

    ``loss_mask`` $m$ is 1 on response tokens, 0 on the prompt and on padding.

    ``reduction="token"`` (default): $N$ is the number of response tokens in the whole batch, so
    every response token weighs the same — the gradient is that of the batch's total
    log-likelihood, it does not depend on how examples are grouped into (micro-)batches, and it
    matches the article's $\\frac1N\\sum_i$ read over the batch.
    ``reduction="sequence"``: the mean over sequences of each sequence's per-token mean, so every
    *example* weighs the same and a token of a short answer counts more than one of a long answer.
    The two agree when every response has the same length.

    A batch with no response token at all gives exactly 0 with zero (finite) gradients.
    """
    return safe_divide(*nll_sum_and_count(logits, targets, loss_mask, reduction))


def lm_loss(
    logits: Float[Array, "B T V"], targets: Int[Array, "B T"], mask: Real[Array, "B T"] | None = None
) -> Float[Array, ""]:
    """Plain language-model NLL, the unmasked special case used for pretraining (§1, §3.1).

    $$\\mathcal{L}_{LM}(\\theta)=-\\frac{1}{T}\\sum_{t=1}^{T}\\log P_\\theta(x_t\\mid x_{<t})$$

    Every target counts; ``mask`` (1 = real token) only removes padding.
    """
    if mask is None:
        mask = jnp.ones(targets.shape, dtype=jnp.float32)
    return sft_loss(logits, targets, mask, reduction="token")
