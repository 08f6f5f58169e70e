"""minift.xla_flags: the XLA:CPU flag is added only where it should be, and it changes the program.

Its speed is the benchmark's business (python -m minift.bench); here: the environment rules, and that
with the flag XLA compiles the MLP's backward pass into fewer separate loops (the intermediate
(B, T, F) arrays it no longer writes are where the time went).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minift import xla_flags
from minift.xla_flags import FLAG, apply_cpu_flags

MEASURED = xla_flags._jaxlib_release() in xla_flags.MEASURED_JAXLIB


@pytest.fixture
def measured(monkeypatch):
    monkeypatch.setattr(xla_flags, "_jaxlib_release", lambda: xla_flags.MEASURED_JAXLIB[0])


def test_adds_the_flag_after_the_users_own(measured):
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert apply_cpu_flags(env) is True
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=4 {FLAG}"
    empty: dict = {}
    assert apply_cpu_flags(empty) is True and empty["XLA_FLAGS"] == FLAG


def test_never_overrides_a_user_choice_or_an_opt_out(measured):
    own = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=dot"}
    assert apply_cpu_flags(own) is False and own["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=dot"
    off = {"MINIFT_XLA_DEFAULTS": "0"}
    assert apply_cpu_flags(off) is False and "XLA_FLAGS" not in off


def test_an_unmeasured_jaxlib_is_left_alone(monkeypatch):
    # An unknown flag is a fatal error in XLA: better slow than broken on a release we never ran.
    monkeypatch.setattr(xla_flags, "_jaxlib_release", lambda: (0, 4))
    env: dict = {}
    assert apply_cpu_flags(env) is False and env == {}


PROBE = """
import re, jax, jax.numpy as jnp
import minift  # sets the flag, before the first array
from minift import model
x, w, wd = jnp.ones((8, 64, 128)), jnp.ones((128, 352)), jnp.ones((352, 128))
grad = jax.grad(lambda a, b, c, x: jnp.sum(model.swiglu_mlp(x, a, b, c)), argnums=(0, 1, 2, 3))
text = jax.jit(grad).lower(w, w, wd, x).compile().as_text()
entry = text[text.index("ENTRY"):]
print(len(re.findall(r"kind=kLoop", entry)))
"""


def _loop_fusions(**env) -> int:
    environ = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "MINIFT_XLA_DEFAULTS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**environ, **env}, capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not MEASURED, reason="this jaxlib is not one the flag was measured on, so minift leaves XLA alone")
def test_importing_minift_makes_xla_fuse_the_mlp_backward_into_fewer_loops():
    assert _loop_fusions() < _loop_fusions(MINIFT_XLA_DEFAULTS="0")
