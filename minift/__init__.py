"""minift: instruction tuning from scratch in JAX, written to be read.

The article this package teaches is "Instruction Tuning" (see ``README.md``): a base model
trained on raw text (§1), instruction data (§2.1), the autoregressive model and the masked NLL
loss (§3.1–§3.2), gradient descent and AdamW (§3.3), RLHF with PPO and a KL penalty (§4), and
the limits of all this (§5).

Modules are layered; each imports only the layers below it:

    face    cli, __main__, demo
    studies evaluate, rlhf
    loops   train, generate, checkpoint
    math    loss, optim, model, config
    data    data, tokenizer, coursedata
"""

__version__ = "0.1.0"
