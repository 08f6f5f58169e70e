#!/usr/bin/env bash
# One prepared GPU check (issues 12 and 13), for a machine whose python3 already has a CUDA jax
# (the lent H200's image: jax 0.11 + CUDA 13, optax, torch, transformers); with pip, use gpu_bench.sh.
#   1. a 1.1B Llama-layout model (TinyLlama's shapes, random weights) instruction-tuned on the Alpaca
#      sample, LoRA then every weight (scripts/gpu_tune.py): tokens/s, memory, MFU;
#   2. the model, loss, LoRA and train-step tests on the GPU (float32 matmuls at full precision);
#   3. the llama-124m train benchmark in bf16 against transformers' Llama in PyTorch (bf16 autocast).
# Usage: DATA=path/to/alpaca_en_demo.json bash scripts/gpu_check.sh   (OUT=folder keeps the logs)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp}
DATA=${DATA:-../shared/data/alpaca-gpt4-sample/alpaca_en_demo.json}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, optax; print('jax', jax.__version__, 'optax', optax.__version__, jax.devices())"
python3 -c "import minift, os, jax.numpy as jnp; jnp.ones(2).sum().block_until_ready(); print('XLA_FLAGS', os.environ.get('XLA_FLAGS'))"

echo "== 1. tune a 1.1B model"
timeout 330 python3 scripts/gpu_tune.py --data "$DATA" --steps 20 --batch 8 2>&1 | tee "$OUT/tune.log"

echo "== 2. tests on the GPU (4 workers: each must not preallocate 75% of the card)"
XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_DEFAULT_MATMUL_PRECISION=highest timeout 200 python3 -m pytest -q \
    -p no:cacheprovider -p no:benchmark -n 4 tests/test_model.py tests/test_loss.py tests/test_lora.py \
    tests/test_train_step.py 2>&1 | tail -4

echo "== 3. llama-124m, bf16, against PyTorch"
timeout 120 python3 -m minift.bench train --preset llama-124m --batch 16 --seq 1024 --steps 10 --dtype bfloat16 \
    --attention fast --peak-tflops auto --vs torch --no-torch-compile 2>&1 | tee "$OUT/bench.log"
