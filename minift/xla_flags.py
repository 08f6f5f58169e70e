"""The one XLA:CPU flag minift turns on, and why (issue 12's profile, written down in docs/speed.md).

XLA:CPU hands matrix products to a library (YNNPACK in jaxlib 0.10). By default it does so one
``dot`` at a time ("individual dot"): every matmul is its own library call, and everything around
it (the SiLU and its derivative, the sum of the two gradient paths into an MLP input, the
reductions of RMSNorm and softmax) runs as separate XLA loops that write their intermediate
arrays to memory. With ``--xla_cpu_experimental_ynn_fusion_type=dot,reduce`` XLA builds library
subgraphs that take a dot together with its elementwise neighbours, and the reductions too: in
the MLP's gradient, 9 loop fusions and 5 library calls become 7 and 4, and the backward pass
writes fewer (B, T, F) arrays. The weight-gradient matmuls (contracting over batch and time) stay
on XLA's generic kernel after a transpose either way; that remains the gap to PyTorch.

    train step, 2-core x86, float32     default     with the flag
    course  (1.0M params, 16 x 128)     ~230 ms     ~190 ms   (1.2x)
    small  (15.7M params, 16 x 256)     ~4.1 s      ~3.0 s    (1.35x)

The numerics stay float32 and seeded runs stay bit-reproducible on one machine; only the order of
some float additions changes, as it does between two CPUs anyway.

The flag is read when JAX first creates its CPU backend, so it is set in the environment when
``minift`` is imported (before any array exists). It is added only when the user's ``XLA_FLAGS``
does not already name it, only for the jaxlib versions it was measured on (an unknown flag is a
fatal error in XLA), and not at all with ``MINIFT_XLA_DEFAULTS=0``.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

FLAG = "--xla_cpu_experimental_ynn_fusion_type=dot,reduce"
MEASURED_JAXLIB = ((0, 10), (0, 11))  # (major, minor) releases that know the flag and were measured


def _jaxlib_release() -> tuple[int, int] | None:
    try:
        major, minor = version("jaxlib").split(".")[:2]
        return int(major), int(minor)
    except (PackageNotFoundError, ValueError):  # not installed, or an unusual version: leave XLA alone
        return None


def apply_cpu_flags(environ: dict | None = None) -> bool:
    """Add ``FLAG`` to ``XLA_FLAGS`` in ``environ`` (default ``os.environ``); True when it is set."""
    env = os.environ if environ is None else environ
    current = env.get("XLA_FLAGS", "")
    if "xla_cpu_experimental_ynn_fusion_type" in current:
        return FLAG in current.split()
    if env.get("MINIFT_XLA_DEFAULTS", "1") == "0" or _jaxlib_release() not in MEASURED_JAXLIB:
        return False
    env["XLA_FLAGS"] = f"{current} {FLAG}".strip()
    return True
