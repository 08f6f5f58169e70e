"""minift.bench: the FLOP count it reports against XLA's own, and the compile benchmark's verdict.

Speed itself is never asserted (it depends on the machine); what is tested is that the numbers the
benchmark divides by are right and that its modes run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from minift import bench, optim
from minift.config import get_config
from minift.data import Batch
from minift.model import init_params
from minift.train import make_train_step


@pytest.mark.parametrize("overrides", [dict(n_layers=1), dict(n_layers=1, d_model=128, d_ff=352, vocab_size=2000)])
def test_flop_formula_matches_xlas_count_of_the_whole_train_step(overrides):
    # XLA's cost analysis counts every op of the compiled step: the matmuls the formula counts
    # (6 per weight per token, 12*L*T*D for attention) plus elementwise work (softmax, norms, SiLU,
    # AdamW), which adds a few percent. One layer, because XLA counts a scan body once, not L times.
    config = get_config("tiny", **overrides)
    params = init_params(config, jax.random.PRNGKey(0))
    optimizer = optim.make_optimizer(1e-3, 100, 1)
    B, T = 2, 32
    tokens = jnp.zeros((B, T), jnp.int32)
    step = make_train_step(config, optimizer, loss="sft")
    cost = step.lower(params, optimizer.init(params), Batch(tokens, tokens, jnp.ones((B, T)))).cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    ratio = cost["flops"] / (B * T) / bench.train_flops_per_token(config, T)
    assert 1.0 <= ratio <= 1.15, f"XLA counts {ratio:.3f}x the formula's FLOPs"


def test_compile_mode_finds_one_compilation_per_bucket(capsys):
    assert bench.main(["compile", "--preset", "tiny", "--batch", "16", "--examples", "300"]) == 0
    out = capsys.readouterr().out
    assert "compilations (one per shape)" in out


def test_train_mode_reports_the_share_of_a_peak_measured_in_the_same_run(capsys):
    assert bench.main(["train", "--preset", "tiny", "--batch", "2", "--seq", "16", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "matmul peak measured now" in out and out.count("% of the matmul peak") == 2


def test_profile_mode_times_every_part_of_the_step(capsys):
    assert bench.main(["profile", "--preset", "tiny", "--batch", "2", "--seq", "16", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    for part in ("train step (one jit", "gradient: blocks, lax.scan", "gradient: blocks, unrolled",
                 "gradient: one block's attention", "optimizer: AdamW"):
        assert part in out


def test_decode_mode_compares_the_cached_sampler_with_the_reference(capsys):
    assert bench.main(["decode", "--preset", "tiny", "--batch", "2", "--seq", "8", "--new-tokens", "4",
                       "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "cached" in out and "uncached (reference)" in out and "cached / uncached" in out


def test_peak_table_picks_the_longest_matching_device_name():
    assert bench.peak_tflops("NVIDIA H100 PCIe") == 756.0  # not the SXM figure of the shorter "NVIDIA H100"
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.peak_tflops("NVIDIA H200") == 989.0
    assert bench.peak_tflops("cpu") is None


def test_without_pytorch_vs_torch_says_what_to_install(monkeypatch):
    def missing(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(bench.importlib, "import_module", missing)
    with pytest.raises(SystemExit, match=r"pip install -e '\.\[bench\]'"):
        bench.main(["train", "--preset", "tiny", "--vs", "torch"])


def test_bf16_and_remat_options_reach_the_timed_model(capsys):
    assert bench.main(["train", "--preset", "tiny", "--batch", "2", "--seq", "16", "--steps", "1",
                       "--attention", "reference", "--dtype", "bfloat16", "--remat"]) == 0
    out = capsys.readouterr().out
    assert "bfloat16), attention=reference" in out and out.count("% of the matmul peak") == 1


def test_vs_torch_times_the_pytorch_baseline_in_the_same_run(capsys):
    pytest.importorskip("torch", reason="the optional [bench] extra (PyTorch) is not installed")
    pytest.importorskip("transformers", reason="the optional [bench] extra (transformers) is not installed")
    assert bench.main(["train", "--preset", "tiny", "--batch", "2", "--seq", "16", "--steps", "1",
                       "--attention", "reference", "--vs", "torch", "--no-torch-compile"]) == 0
    out = capsys.readouterr().out
    assert "PyTorch eager" in out and "minift / PyTorch eager:" in out
    assert bench.main(["decode", "--preset", "tiny", "--batch", "2", "--seq", "8", "--new-tokens", "4",
                       "--steps", "1", "--vs", "torch"]) == 0
    assert "minift cached / transformers" in capsys.readouterr().out


def test_the_pytorch_baseline_is_the_same_model():
    # The ratio means something only if both sides run the same network: equal parameter counts.
    torch_llama = pytest.importorskip("benchmarks.torch_llama", reason="the optional [bench] extra is not installed")
    for name in ("tiny", "course", "small"):
        config = get_config(name)
        net = torch_llama.llama_from_config(config)
        assert sum(p.numel() for p in net.parameters()) == config.n_params, name
