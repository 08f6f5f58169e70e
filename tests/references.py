"""Reference helpers shared by the §4 math tests: float64 inputs, a NumPy log-softmax, ragged masks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import settings

# Hypothesis draws are derandomised (seeded by the test itself) so every run sees the same cases.
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)


def f64(a) -> jax.Array:
    return jnp.asarray(np.asarray(a, dtype=np.float64))


def log_softmax_np(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# A ragged batch of response masks: full, short, length one, empty, and one that starts late (a
# mask over prompt + response where the prompt positions are 0).
RAGGED_MASK = np.array(
    [
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 1, 0],
    ],
    dtype=np.float64,
)
