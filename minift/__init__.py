"""minift: instruction tuning from scratch in JAX, written to be read.

The article this package teaches is "Instruction Tuning" (see ``README.md``): a base model
trained on raw text (§1), instruction data (§2.1), the autoregressive model and the masked NLL
loss (§3.1–§3.2), gradient descent and AdamW (§3.3), RLHF with PPO and a KL penalty (§4), and
the limits of all this (§5).

Modules are layered; each imports only its own layer and the ones below it (the README's module
table lists them; tests/test_architecture.py checks it):

    face     cli, __main__, commands.*, bench
    studies  evaluate, calibration, seeds, demo, rlhf.sweep, exercises
    loops    train, loop, generate, checkpoint, hf_llama, sharding, runs, rlhf.reward_model, rlhf.ppo
    math     config, rope, lora, model, loss, optim, rlhf.objectives, rlhf.ppo_objective
    data     xla_flags, files, tokenizer, data, chat, formats, preferences, course.*
"""

from minift.xla_flags import apply_cpu_flags

__version__ = "0.1.0"

# Before any array exists: the XLA:CPU flag that makes the backward pass 1.2-1.35x faster
# (minift.xla_flags says which, why, and how to turn it off).
apply_cpu_flags()
