#!/usr/bin/env bash
# The GPU check of issue 12, prepared to run in one go (about 5 minutes on an H100/H200):
#   1. a CUDA build of jax from the package index, in its own venv (.venv-gpu);
#   2. the model, loss and train-step tests on the GPU (float32 matmuls at full precision, since
#      the tests' tolerances are float32's, not TF32's);
#   3. the train benchmark of the 124.7M-parameter Llama-style preset `llama-124m` at context 1024
#      in bf16 (mixed precision: float32 master weights) and in float32, with the MFU against the
#      card's datasheet dense bf16 peak (minift.bench.PEAK_BF16_TFLOPS, by device name);
#   4. the decode benchmark at batch 1 and 16.
# Usage, from anywhere:  bash scripts/gpu_bench.sh        (BATCH=8 for a smaller card)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BATCH=${BATCH:-16}
VENV=.venv-gpu

test -x $VENV/bin/python || $PY -m venv $VENV
$VENV/bin/python -m pip install -q --upgrade pip
# cuda13 wheels first (recent drivers), cuda12 otherwise; jax pins the matching jaxlib.
$VENV/bin/python -m pip install -q -e '.[dev]' 'jax[cuda13]' || $VENV/bin/python -m pip install -q -e '.[dev]' 'jax[cuda12]'

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
$VENV/bin/python -c "import jax; print('jax', jax.__version__, jax.devices())"

echo "== tests on the GPU"
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 240 $VENV/bin/python -m pytest -q -x -p no:cacheprovider \
    tests/test_model.py tests/test_loss.py tests/test_train_step.py || echo "(tests failed or timed out: see above)"

echo "== train: llama-124m, context 1024, batch $BATCH"
for dtype in bfloat16 float32; do
    $VENV/bin/python -m minift.bench train --preset llama-124m --batch "$BATCH" --seq 1024 --steps 10 \
        --dtype $dtype --attention fast --peak-tflops auto
done
$VENV/bin/python -m minift.bench train --preset llama-124m --batch "$BATCH" --seq 1024 --steps 10 \
    --dtype bfloat16 --attention reference --remat --peak-tflops auto

echo "== decode: llama-124m, prompt 128, 256 new tokens"
for b in 1 16; do
    $VENV/bin/python -m minift.bench decode --preset llama-124m --batch $b --seq 128 --new-tokens 256 --steps 3 \
        --dtype bfloat16
done
