"""The face of minift: every ``minift …`` command, one module each (argparse and printing only).

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``, and
calls the library below it; nothing below this package parses arguments or prints. ``minift.cli``
finds them by name.
"""

# name -> one-line help; the module is minift.commands.<name>. Order = the course's order.
COMMANDS: dict[str, str] = {
    "data": "regenerate the bundled course data in data/samples/",
    "tokenizer": "train or inspect the SentencePiece tokenizer",
    "pretrain": "pretrain a base model on the raw corpus (§1)",
    "sft": "instruction-tune a base model with the masked loss (§2, §3.2); --init: a real model",
    "export": "write a model as a Hugging Face Llama folder or a GGUF file, with its chat template",
    "real-model": "fetch the course's real model, SmolLM2-135M-Instruct as GGUF (98 MB, no torch)",
    "generate": "generate text from a trained model",
    "chat": "a small terminal chat with an instruction-tuned model",
    "eval": "exact-match accuracy per task on the held-out splits",
    "rm": "train the reward model on preference pairs (§4)",
    "ppo": "PPO with a KL penalty against the SFT model (§4); --sweep runs the β sweep",
    "rlhf": "§4's over-optimisation study: PPO, GRPO, DPO and best-of-n on one gold judge and KL axis",
    "demo": "the end-to-end demo (what `make demo` runs)",
    "exercises": "exercise mode: write the equation functions yourself (stubs in exercises/)",
    "grade": "score your exercise functions with minift's own gradient and equation tests",
    "limits": "the limits of §5, measured: confidence where the model knows nothing (calibration)",
}
