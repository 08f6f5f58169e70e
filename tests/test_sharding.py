"""minift.sharding: on 4 devices, data parallel (DP) and fully sharded (FSDP) training compute what
one device computes; the layouts are the ones the docstrings promise; checkpoints of a sharded run
load on one device; two processes joined by ``jax.distributed`` train like one.

JAX fixes its device count when its backend starts, and this pytest process has one CPU device. So
the 4-device checks run in *one* subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (this file run as a script: ``probe``),
which prints its measurements as JSON and leaves its run folders for the tests below; the
multi-host check runs this file as two processes of 2 devices each (``two_hosts``), joined over
localhost. ``fsdp_spec`` is a pure function of a shape and is tested here directly.

Tolerance: DP and FSDP add the per-device partial sums of the loss and gradients in another order
than one device does, so float32 results agree to rounding, not bit for bit. Measured on CPU, 4
AdamW steps of the tiny model: losses differ by <= 1e-6 (2 float32 ulps at 6.2), so ``LOSS_RTOL``
is 10x that. Parameters: almost every element within 5e-7 (they are ~0.02-1; one step moves them
by at most lr = 3e-3), hence ``PARAM_ATOL`` = 5e-6 for all but 0.1% of them. The rest is AdamW's
doing: its update g / (sqrt(v) + eps) is a ratio, and where |g| is as small as eps = 1e-8 the last
bits of g change the update by a visible fraction of lr (seen: 4e-5 = 0.8% of lr = 5e-3, in 2 of
22528 elements). So every element must also be within ``ADAM_ATOL`` = 2% of lr. A real bug (a
gradient not summed over the devices, a wrong mean) moves the loss in the 3rd decimal and most
parameters by ~lr.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from minift import checkpoint as ckpt
from minift import lora
from minift.commands import common
from minift.config import get_config
from minift.data import Batch, Encoded, batches
from minift.loop import TrainConfig, fit, read_history
from minift.model import init_params
from minift.optim import make_optimizer
from minift.runs import PRETRAIN_DEFAULTS
from minift.sharding import check_batch_size, fsdp_spec, initialize_distributed, make_mesh, shard_batch, shard_state

N_DEVICES = 4
CONFIG = get_config("tiny")  # V=512, D=64, L=2, H=4, G=2, K=16, F=176
B, T = 8, 16
TRAIN = TrainConfig(steps=4, batch_size=B, learning_rate=3e-3, warmup_steps=1, loss="sft", eval_every=2,
                    checkpoint_every=2, keep_checkpoints=5)
# See the module docstring for how these were measured and why each is what it is.
LOSS_RTOL, PARAM_ATOL, PARAM_FAR_FRACTION, ADAM_ATOL = 1e-5, 5e-6, 1e-3, 0.02 * TRAIN.learning_rate


# --- fsdp_spec: the rule, as a pure function of the shape ------------------------------------------


def test_fsdp_spec_splits_the_longest_divisible_axis():
    assert fsdp_spec((512, 64), 4) == P("data", None)  # embed (V, D): V is longest
    assert fsdp_spec((64, 512), 4) == P(None, "data")  # lm_head (D, V)
    assert fsdp_spec((64, 100), 8) == P("data", None)  # 100 is longer, but only 64 divides by 8
    assert fsdp_spec((64, 64), 4) == P(None, "data")  # a tie goes to the later axis


def test_fsdp_spec_keeps_the_layer_axis_whole_unless_nothing_else_divides():
    assert fsdp_spec((8, 64, 176), 4, stacked=True) == P(None, None, "data")  # w_gate (L, D, F)
    assert fsdp_spec((256, 64, 176), 4, stacked=True) == P(None, None, "data")  # L longest, still skipped
    assert fsdp_spec((256, 64, 176), 4) == P("data", None, None)  # ...but not when it is not a layer axis
    assert fsdp_spec((8, 33, 1001), 8, stacked=True) == P("data", None, None)  # only L divides: split L


def test_fsdp_spec_replicates_small_leaves_and_undivisible_ones():
    assert fsdp_spec((), 4) == P()  # an optimizer step count
    assert fsdp_spec((2, 64), 4, stacked=True) == P()  # a norm gain: 128 < MIN_SHARDED_SIZE elements
    assert fsdp_spec((2, 64), 4, stacked=True, min_size=0) == P(None, "data")
    assert fsdp_spec((99, 101), 4) == P()  # no axis divides by 4
    assert fsdp_spec((512, 64), 1) == P()  # one device: nothing to split


def test_batch_size_must_split_over_the_devices():
    check_batch_size(8, 4)
    with pytest.raises(ValueError, match=r"batch_size=6 does not split evenly over 4 devices.*multiple of 4"):
        check_batch_size(6, 4, "TrainConfig.batch_size")
    with pytest.raises(ValueError, match="TrainConfig.sharding='ddp'"):
        TrainConfig(sharding="ddp")


def test_distributed_settings_are_both_given_or_neither():
    # Refused before jax.distributed is touched: half a setting would otherwise hang or auto-detect.
    with pytest.raises(ValueError, match="set both MINIFT_NUM_PROCESSES and MINIFT_PROCESS_ID"):
        initialize_distributed({"MINIFT_PROCESS_ID": "0"})
    with pytest.raises(ValueError, match="must be integers"):
        initialize_distributed({"MINIFT_PROCESS_ID": "0", "MINIFT_NUM_PROCESSES": "two"})


def test_the_command_line_sets_the_strategy_and_joins_the_hosts_first(monkeypatch):
    parser = argparse.ArgumentParser()
    common.add_train_arguments(parser, PRETRAIN_DEFAULTS)
    joined = []
    monkeypatch.setattr(common, "initialize_distributed", lambda: joined.append(True) or (0, 1))
    train = common.train_config(parser.parse_args(["--sharding", "fsdp"]), PRETRAIN_DEFAULTS)
    assert train.sharding == "fsdp" and joined == []
    train = common.train_config(parser.parse_args(["--distributed", "--sharding", "dp"]), PRETRAIN_DEFAULTS)
    assert train.sharding == "dp" and joined == [True]
    assert common.train_config(parser.parse_args([]), PRETRAIN_DEFAULTS).sharding == "none"
    with pytest.raises(SystemExit):
        parser.parse_args(["--sharding", "ddp"])


# --- the subprocesses: this file run as a script --------------------------------------------------------


def random_batch(seed: int) -> Batch:
    """(B, T) next-token pairs with a loss mask over ~70% of the targets."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, CONFIG.vocab_size, (B, T + 1)).astype(np.int32)
    return Batch(ids[:, :-1], ids[:, 1:], (rng.random((B, T)) < 0.7).astype(np.float32))


def epoch_fn(epoch: int):
    """32 random rows with ~70% of targets in the loss: 4 batches an epoch, shuffled by the epoch."""
    rng = np.random.default_rng(0)
    rows = [Encoded(rng.integers(4, CONFIG.vocab_size, T + 1).astype(np.int32),
                    (rng.random(T + 1) < 0.7).astype(np.float32)) for _ in range(4 * B)]
    return batches(rows, B, buckets=(T,), pad_id=0, seed=(7, epoch))


def fit_run(out: Path, strategy: str, **kw):
    """4 AdamW steps of ``fit`` (masked loss, evaluation every 2 steps, checkpoints at 2 and 4)."""
    params = init_params(CONFIG, jax.random.PRNGKey(0))
    return fit(out, CONFIG, params, epoch_fn, replace(TRAIN, sharding=strategy), eval_batches=[random_batch(99)],
               progress=False, **kw)


def lora_run(out: Path, strategy: str):
    """The same 4 steps training rank-4 LoRA adapters on the frozen model (minift.lora)."""
    params = init_params(CONFIG, jax.random.PRNGKey(0))
    config = lora.LoraConfig(rank=4)
    tree = lora.with_adapters(params, lora.init_adapters(params, config, jax.random.PRNGKey(1)))
    train = replace(TRAIN, sharding=strategy, lora_rank=config.rank, lora_alpha=config.alpha)
    return fit(out, CONFIG, tree, epoch_fn, train, eval_batches=[random_batch(99)], progress=False)


def layout(tree) -> dict:
    """{leaf path: [spec, shape of one device's shard]} for every array leaf."""
    return {jax.tree_util.keystr(path): [str(x.sharding.spec), list(x.addressable_shards[0].data.shape)]
            for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def probe(out: Path) -> dict:
    """Everything the 4-device tests assert on, in one process (one import, few compiles)."""
    mesh = make_mesh()
    result: dict = {"devices": jax.device_count(), "mesh": dict(mesh.shape)}

    # Where shard_state puts the training state (nothing is compiled for this).
    params = init_params(CONFIG, jax.random.PRNGKey(0))
    opt_state = make_optimizer(TRAIN.learning_rate, TRAIN.steps, TRAIN.warmup_steps).init(params)
    for strategy in ("dp", "fsdp"):
        placed = shard_state(params, opt_state, mesh, strategy)
        result[f"{strategy}_layout"], result[f"{strategy}_opt_layout"] = layout(placed[0]), layout(placed[1])

    # The batch is split on B, also with K micro-batches (K, B, T); an uneven B is refused.
    result["batch_layout"] = layout(shard_batch(random_batch(0), mesh))
    result["micro_batch_layout"] = layout(shard_batch(Batch(*(np.stack([x, x]) for x in random_batch(0))), mesh))
    try:
        shard_batch(Batch(*(x[:6] for x in random_batch(0))), mesh)
    except ValueError as err:
        result["uneven_batch_error"] = str(err)

    # fit on one device, DP and FSDP; each leaves its run folder (checkpoints of steps 2 and 4).
    for strategy in ("none", "dp", "fsdp"):
        fitted = fit_run(out / strategy, strategy)
        result[f"fit_{strategy}"] = fitted.history
        if strategy != "none":
            result[f"fit_{strategy}_layout"] = layout(fitted.params)
            result[f"fit_{strategy}_opt_layout"] = layout(fitted.opt_state)
    # LoRA on one device and with FSDP: only the adapters train, sharded or not.
    for strategy in ("none", "fsdp"):
        result[f"lora_{strategy}"] = lora_run(out / f"lora_{strategy}", strategy).history
    # The FSDP run again from its step-2 checkpoint, as if it had died after step 2.
    fsdp_step_4 = ckpt.checkpoint_path(out / "fsdp", 4)
    fsdp_step_4.rename(out / "fsdp_uninterrupted.safetensors")
    resumed = fit_run(out / "fsdp", "fsdp", resume=True)
    result["fit_fsdp_resumed"] = resumed.history
    result["fit_fsdp_resumed_layout"] = layout(resumed.params)
    return result


def two_hosts(out: Path) -> dict:
    """One of two processes: join the other (jax.distributed), then the FSDP run over all 4 devices."""
    index, count = initialize_distributed()  # before any array exists
    fitted = fit_run(out, "fsdp")
    return {"process": [index, count], "devices": [jax.local_device_count(), jax.device_count()],
            "history": fitted.history, "layout": layout(fitted.params)}


def start(mode: str, out: Path, n_devices: int, **env: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    environ.update(env, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}")
    return subprocess.Popen([sys.executable, __file__, mode, str(out)], env=environ, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def four(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("four_devices")
    return finish(start("probe", out, N_DEVICES)), out


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> tuple[list[dict], Path]:
    out = tmp_path_factory.mktemp("two_hosts")
    env = {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{free_port()}", "MINIFT_NUM_PROCESSES": "2"}
    procs = [start("two_hosts", out / f"p{i}", 2, MINIFT_PROCESS_ID=str(i), **env) for i in range(2)]
    return [finish(proc) for proc in procs], out


def stored(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint, read here (one device), by name."""
    state = ckpt.load_checkpoint(path)
    return {**ckpt.flatten_with_names(state.params, "params"), **ckpt.flatten_with_names(state.opt_state, "opt_state")}


def assert_close_to_rounding(got: dict, want: dict, what: str) -> None:
    """Equal up to summation order: see the module docstring for the three bounds."""
    assert got.keys() == want.keys()
    diffs = np.concatenate([np.abs(np.asarray(got[k], np.float64) - np.asarray(want[k], np.float64)).ravel()
                            for k in want])
    assert diffs.max() <= ADAM_ATOL, f"{what}: max difference {diffs.max():.2e}"
    assert np.mean(diffs > PARAM_ATOL) <= PARAM_FAR_FRACTION, f"{what}: {np.mean(diffs > PARAM_ATOL):.2%} beyond"


def assert_same_losses(history: list[dict], reference: list[dict], what: str) -> None:
    assert [r["step"] for r in history] == [r["step"] for r in reference]
    for key in ("loss", "eval_loss"):
        got, want = [r[key] for r in history if key in r], [r[key] for r in reference if key in r]
        assert len(got) == len(want) > 0
        np.testing.assert_allclose(got, want, rtol=LOSS_RTOL, err_msg=f"{what} {key}")
    assert [r["n_tokens"] for r in history] == [r["n_tokens"] for r in reference]


@pytest.mark.slow
def test_the_probe_ran_on_a_four_device_mesh(four):
    result, _ = four
    assert result["devices"] == N_DEVICES and result["mesh"] == {"data": N_DEVICES}


@pytest.mark.slow
def test_fit_with_dp_and_fsdp_trains_like_one_device(four):
    """Same losses and evaluation losses; same parameters and AdamW moments in the step-4 checkpoints,
    which this one-device process reads back (a sharded run's checkpoint is an ordinary one)."""
    result, out = four
    assert jax.device_count() == 1  # this pytest process
    reference = stored(ckpt.checkpoint_path(out / "none", 4))
    for strategy in ("dp", "fsdp"):
        assert_same_losses(result[f"fit_{strategy}"], result["fit_none"], strategy)
        final = out / "fsdp_uninterrupted.safetensors" if strategy == "fsdp" else ckpt.checkpoint_path(out / strategy, 4)
        assert_close_to_rounding(stored(final), reference, strategy)


@pytest.mark.slow
def test_lora_with_fsdp_trains_the_adapters_like_one_device(four):
    """LoRA composes with sharding: the same losses and adapters as on one device, the base untouched."""
    result, out = four
    assert_same_losses(result["lora_fsdp"], result["lora_none"], "lora fsdp")
    one, sharded = (stored(ckpt.checkpoint_path(out / f"lora_{s}", 4)) for s in ("none", "fsdp"))
    assert_close_to_rounding(sharded, one, "lora fsdp")
    start_base = init_params(CONFIG, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(sharded["params/base/layers/wq"], np.asarray(start_base["layers"]["wq"]))
    assert np.abs(sharded["params/lora/wq/b"]).max() > 0  # the adapters moved


@pytest.mark.slow
def test_dp_replicates_and_fsdp_splits_the_training_state(four):
    result, _ = four
    for path, (spec, shard) in {**result["dp_layout"], **result["dp_opt_layout"]}.items():
        assert spec == "P()", path
    fsdp = result["fsdp_layout"]
    assert fsdp["['embed']"] == ["P('data', None)", [512 // N_DEVICES, 64]]
    assert fsdp["['layers']['w_gate']"] == ["P(None, None, 'data')", [2, 64, 176 // N_DEVICES]]
    assert fsdp["['layers']['wq']"] == ["P(None, 'data', None, None)", [2, 64 // N_DEVICES, 4, 16]]
    assert fsdp["['layers']['attn_norm']"] == ["P()", [2, 64]]  # small: replicated
    # AdamW's moments are split like their parameters: mu of wq is 1/4 of wq on each device.
    moments = [v for p, v in result["fsdp_opt_layout"].items() if "mu['layers']['wq']" in p]
    assert moments == [fsdp["['layers']['wq']"]]
    # Training kept both layouts (keep_layout: without it XLA splits the small leaves after one update).
    assert result["fit_fsdp_layout"] == fsdp and result["fit_dp_layout"] == result["dp_layout"]
    assert result["fit_fsdp_opt_layout"] == result["fsdp_opt_layout"]


@pytest.mark.slow
def test_the_batch_is_split_on_b_and_an_uneven_one_is_refused(four):
    result, _ = four
    for name in ("tokens", "targets", "loss_mask"):
        assert result["batch_layout"][f".{name}"] == ["P('data', None)", [B // N_DEVICES, T]]
        assert result["micro_batch_layout"][f".{name}"] == ["P(None, 'data', None)", [2, B // N_DEVICES, T]]
    assert "B=6 does not split evenly over 4 devices" in result["uneven_batch_error"]


@pytest.mark.slow
def test_a_resumed_fsdp_run_is_sharded_again_and_repeats_the_uninterrupted_one(four):
    result, out = four
    assert result["fit_fsdp_resumed_layout"] == result["fsdp_layout"]
    assert [r["step"] for r in result["fit_fsdp_resumed"]] == [3, 4]
    assert [r["loss"] for r in result["fit_fsdp_resumed"]] == [r["loss"] for r in result["fit_fsdp"][2:]]
    assert [r["loss"] for r in read_history(out / "fsdp" / "metrics.jsonl")] == [r["loss"] for r in result["fit_fsdp"]]
    resumed = stored(ckpt.checkpoint_path(out / "fsdp", 4))
    uninterrupted = stored(out / "fsdp_uninterrupted.safetensors")
    for name, array in uninterrupted.items():
        np.testing.assert_array_equal(resumed[name], array, err_msg=name)  # bit for bit


@pytest.mark.slow
def test_two_processes_of_two_devices_train_like_one_device(two, four):
    """The multi-host path on one machine: jax.distributed over gloo, a mesh over both processes'
    devices, each process feeding its own rows, the checkpoint gathered across processes."""
    results, out = two
    (reference, four_out) = four
    assert [r["process"] for r in results] == [[0, 2], [1, 2]]
    assert all(r["devices"] == [2, 4] for r in results)
    for i, result in enumerate(results):
        assert_same_losses(result["history"], reference["fit_none"], f"process {i}")
        assert result["layout"] == reference["fsdp_layout"]  # the same split, over two hosts' devices
    final = [stored(ckpt.checkpoint_path(out / f"p{i}", 4)) for i in range(2)]
    for name, array in final[0].items():
        np.testing.assert_array_equal(final[1][name], array, err_msg=name)  # both gathered the same state
    assert_close_to_rounding(final[0], stored(ckpt.checkpoint_path(four_out / "none", 4)), "two processes")


if __name__ == "__main__":  # python tests/test_sharding.py probe|two_hosts OUT_DIR
    jax.config.update("jax_numpy_rank_promotion", "raise")
    jax.config.update("jax_default_matmul_precision", "highest")  # as conftest.py does for the suite
    mode, out_dir = sys.argv[1], Path(sys.argv[2])
    print(json.dumps({"probe": probe, "two_hosts": two_hosts}[mode](out_dir)))
