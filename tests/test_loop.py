"""minift.loop: exact resume bit for bit, NaN stop, Ctrl-C checkpoint, run folder, loading."""

from __future__ import annotations

import json
from dataclasses import replace

import jax
import numpy as np
import pytest

from minift import checkpoint as ckpt
from minift.config import get_config
from minift.data import Encoded, batches
from minift.loop import (
    TrainConfig,
    TrainingDiverged,
    fit,
    load_model,
    read_history,
    run_template,
)
from minift.model import init_params

CONFIG = get_config("tiny")


def _epoch_fn(n_rows: int = 24, seq: int = 17, batch_size: int = 4):
    rng = np.random.default_rng(0)
    rows = [
        Encoded(rng.integers(4, CONFIG.vocab_size, seq).astype(np.int32), np.ones(seq, np.float32))
        for _ in range(n_rows)
    ]
    return lambda epoch: batches(rows, batch_size, buckets=(seq - 1,), pad_id=0, seed=(7, epoch))


TRAIN = TrainConfig(steps=10, batch_size=4, learning_rate=3e-3, warmup_steps=2, loss="lm",
                    eval_every=0, checkpoint_every=4, keep_checkpoints=5)


@pytest.fixture(scope="module")
def params():
    return init_params(CONFIG, jax.random.PRNGKey(0))


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path, params):
    """10 steps in one go == 4 steps, stop, resume to 10 — bit for bit on CPU (6 batches = 1 epoch)."""
    full = fit(tmp_path / "full", CONFIG, params, _epoch_fn(), TRAIN, progress=False)
    assert full.step == 10

    part = tmp_path / "part"
    fit(part, CONFIG, params, _epoch_fn(), replace(TRAIN, steps=10, checkpoint_every=4),
        progress=False)
    # Pretend the run died after step 4: keep only that checkpoint, as a crash would have left it.
    for path in ckpt.list_checkpoints(part):
        if path != ckpt.checkpoint_path(part, 4):
            path.unlink()
    resumed = fit(part, CONFIG, params, _epoch_fn(), TRAIN, resume=True, progress=False)
    assert [r["step"] for r in resumed.history] == list(range(5, 11))

    losses_full = [r["loss"] for r in read_history(tmp_path / "full" / "metrics.jsonl")]
    losses_resumed = [r["loss"] for r in read_history(part / "metrics.jsonl")]
    assert losses_full == losses_resumed  # exact float equality, all 10 steps
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_run_folder_contents_and_load_model(tmp_path, params):
    run = tmp_path / "run"
    result = fit(run, CONFIG, params, _epoch_fn(), TRAIN, eval_batches=list(_epoch_fn()(0))[:2], progress=False,
                 info={"template": "compact"})
    info = json.loads((run / "run.json").read_text())
    assert info["model"] == CONFIG.to_dict() and info["info"]["template"] == "compact"
    assert (run / "loss.png").stat().st_size > 0
    hist = read_history(run / "metrics.jsonl")
    assert len(hist) == 10 and "eval_loss" in hist[-1]
    loaded, config = load_model(run)
    assert config == CONFIG
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(result.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The caller's params were not consumed by the donating step.
    assert np.isfinite(np.asarray(params["embed"])).all()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, params):
    run = tmp_path / "run"
    fit(run, CONFIG, params, _epoch_fn(), replace(TRAIN, steps=4), progress=False)
    good = ckpt.latest_checkpoint(run)
    before = good.read_bytes()
    poisoned = jax.tree.map(lambda w: w * np.nan, params)
    with pytest.raises(TrainingDiverged, match=r"nan at step 1.*step_00000004"):
        fit(run, CONFIG, poisoned, _epoch_fn(), TRAIN, progress=False)
    assert ckpt.latest_checkpoint(run) == good and good.read_bytes() == before


def test_ctrl_c_writes_a_checkpoint_of_the_last_completed_step(tmp_path, params):
    calls = {"n": 0}
    make = _epoch_fn()

    def interrupting(epoch):
        for batch in make(epoch):
            calls["n"] += 1
            if calls["n"] == 4:  # the user presses Ctrl-C while the 4th batch is being prepared
                raise KeyboardInterrupt
            yield batch

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match="checkpoint of step .* continue with --resume"):
        fit(run, CONFIG, params, interrupting, replace(TRAIN, checkpoint_every=0),
            progress=False)
    assert ckpt.latest_checkpoint(run) == ckpt.checkpoint_path(run, 3)


def test_resume_with_another_model_config_is_a_clear_error(tmp_path, params):
    run = tmp_path / "run"
    fit(run, CONFIG, params, _epoch_fn(), replace(TRAIN, steps=2, warmup_steps=0),
        progress=False)
    other = get_config("tiny", d_model=32)
    with pytest.raises(ValueError, match="d_model"):
        fit(run, other, init_params(other, jax.random.PRNGKey(0)), _epoch_fn(), TRAIN, resume=True, progress=False)


def test_bad_train_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(steps=5, warmup_steps=5)
    with pytest.raises(ValueError):
        TrainConfig(loss="nope")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_model(tmp_path)


def test_run_template_from_run_json_of_a_folder_or_a_checkpoint(tmp_path):
    assert run_template(tmp_path) == "alpaca"
    (tmp_path / "run.json").write_text(json.dumps({"info": {"template": "compact"}}), encoding="utf-8")
    assert run_template(tmp_path) == "compact"
    # a checkpoint file of the run reads the same run.json; other runs keep it at the top level
    assert run_template(tmp_path / "checkpoints" / "step_00000001.safetensors") == "compact"
    (tmp_path / "run.json").write_text(json.dumps({"template": "inline"}), encoding="utf-8")
    assert run_template(tmp_path) == "inline"
