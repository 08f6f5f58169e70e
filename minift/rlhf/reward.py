r"""The reward model's loss: Bradley–Terry on human preference pairs (§4).

The article's RLHF objective (§4) maximises a reward $R(x, y)$ "learned from human judgements".
People do not write down numbers; they say which of two responses to the same prompt they prefer.
InstructGPT (Ouyang et al. 2022, §3.5; after Stiennon et al. 2020) turns those comparisons into a
scalar reward with the Bradley–Terry model (Bradley & Terry 1952): the probability that the
chosen response $y_c$ beats the rejected one $y_r$ is a sigmoid of the reward margin,

$$P(y_c \succ y_r \mid x) = \sigma\big(R(x, y_c) - R(x, y_r)\big),$$

and the reward model is fitted by maximum likelihood on the pairs.

This module holds only the pure math (the loss and the accuracy used to monitor it); the reward
network and its training loop are built on top of it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array


def bradley_terry_loss(r_chosen: Array, r_rejected: Array) -> Array:
    r"""Negative log-likelihood of the preferences under Bradley–Terry (§4; Ouyang et al. 2022, eq. 1).

    $$\mathcal{L}_{RM} = -\frac{1}{B}\sum_{b=1}^{B} \log \sigma\big(r_c^{(b)} - r_r^{(b)}\big)
                       = \frac{1}{B}\sum_{b=1}^{B} \operatorname{softplus}\big(-(r_c^{(b)} - r_r^{(b)})\big)$$

    Args:
        r_chosen: (B,) rewards of the preferred responses.
        r_rejected: (B,) rewards of the rejected responses to the same prompts.

    Returns:
        The scalar mean loss. Its gradient is
        $\partial\mathcal{L}/\partial r_c^{(b)} = -\big(1 - \sigma(\Delta_b)\big)/B$ and
        $\partial\mathcal{L}/\partial r_r^{(b)} = +\big(1 - \sigma(\Delta_b)\big)/B$, $\Delta_b = r_c^{(b)} - r_r^{(b)}$:
        a pair the model already ranks confidently ($\Delta \gg 0$) stops teaching it.
    """
    if r_chosen.shape != r_rejected.shape or r_chosen.ndim != 1:
        raise ValueError(
            "bradley_terry_loss (minift/rlhf/reward.py): r_chosen and r_rejected must both be (B,) "
            f"arrays of the same shape, got {r_chosen.shape} and {r_rejected.shape}; squeeze the "
            "reward head's last axis and pair each chosen response with its rejected one."
        )
    margin = r_chosen - r_rejected  # (B,)
    # log_sigmoid(m) = -softplus(-m): never forms sigmoid(m) and then its log, which underflows
    # to log(0) = -inf for margins below about -100 (float32) and so would give an infinite loss.
    return -jnp.mean(jax.nn.log_sigmoid(margin))


def preference_accuracy(r_chosen: Array, r_rejected: Array) -> Array:
    r"""Fraction of pairs the reward model ranks the human's way: $\frac1B\sum_b [r_c^{(b)} > r_r^{(b)}]$.

    A tie counts as half a correct pair — the accuracy of a coin flip — so that a reward model whose
    outputs are all equal (e.g. freshly initialised with a zero head) reads 0.5, not 0.

    Args:
        r_chosen: (B,) rewards of the preferred responses.
        r_rejected: (B,) rewards of the rejected responses.

    Returns:
        A scalar in [0, 1].
    """
    wins = (r_chosen > r_rejected).astype(jnp.float32)  # (B,)
    ties = (r_chosen == r_rejected).astype(jnp.float32)  # (B,)
    return jnp.mean(wins + 0.5 * ties)
