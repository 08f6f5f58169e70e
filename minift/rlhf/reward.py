r"""The reward model's loss: Bradley–Terry on human preference pairs (§4).

The article's RLHF objective (§4) maximises a reward $R(x, y)$ "learned from human judgements".
People do not write down numbers; they say which of two responses to the same prompt they prefer.
InstructGPT (Ouyang et al. 2022, §3.5; after Stiennon et al. 2020) turns those comparisons into a
scalar reward with the Bradley–Terry model (Bradley & Terry 1952): the probability that the
chosen response $y_c$ beats the rejected one $y_r$ is a sigmoid of the reward margin,

$$P(y_c \succ y_r \mid x) = \sigma\big(R(x, y_c) - R(x, y_r)\big),$$

and the reward model is fitted by maximum likelihood on the pairs.

The module reads top to bottom: the loss and the accuracy (pure math); the network
$R_\phi(x, y)$ — the SFT Transformer with a scalar head read at the last real token; the
preference data (minift's ``preferences.jsonl`` and Anthropic's HH-RLHF dialogues, via
``minift.rlhf.hh``); the jit-compiled training step; checkpoints that say they hold a reward
model and which backbone; and the ``minift rm`` command.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from minift import checkpoint as ckpt
from minift import model, optim
from minift.config import ModelConfig


def bradley_terry_loss(r_chosen: Array, r_rejected: Array) -> Array:
    r"""Negative log-likelihood of the preferences under Bradley–Terry (§4; Ouyang et al. 2022, eq. 1).

    $$\mathcal{L}_{RM} = -\frac{1}{B}\sum_{b=1}^{B} \log \sigma\big(r_c^{(b)} - r_r^{(b)}\big)
                       = \frac{1}{B}\sum_{b=1}^{B} \operatorname{softplus}\big(-(r_c^{(b)} - r_r^{(b)})\big)$$

    Args:
        r_chosen: (B,) rewards of the preferred responses.
        r_rejected: (B,) rewards of the rejected responses to the same prompts.

    Returns:
        The scalar mean loss. Its gradient is
        $\partial\mathcal{L}/\partial r_c^{(b)} = -\big(1 - \sigma(\Delta_b)\big)/B$ and
        $\partial\mathcal{L}/\partial r_r^{(b)} = +\big(1 - \sigma(\Delta_b)\big)/B$, $\Delta_b = r_c^{(b)} - r_r^{(b)}$:
        a pair the model already ranks confidently ($\Delta \gg 0$) stops teaching it.
    """
    if r_chosen.shape != r_rejected.shape or r_chosen.ndim != 1:
        raise ValueError(
            "bradley_terry_loss (minift/rlhf/reward.py): r_chosen and r_rejected must both be (B,) "
            f"arrays of the same shape, got {r_chosen.shape} and {r_rejected.shape}; squeeze the "
            "reward head's last axis and pair each chosen response with its rejected one."
        )
    margin = r_chosen - r_rejected  # (B,)
    # log_sigmoid(m) = -softplus(-m): never forms sigmoid(m) and then its log, which underflows
    # to log(0) = -inf for margins below about -100 (float32) and so would give an infinite loss.
    return -jnp.mean(jax.nn.log_sigmoid(margin))


def preference_accuracy(r_chosen: Array, r_rejected: Array) -> Array:
    r"""Fraction of pairs the reward model ranks the human's way: $\frac1B\sum_b [r_c^{(b)} > r_r^{(b)}]$.

    A tie counts as half a correct pair — the accuracy of a coin flip — so that a reward model whose
    outputs are all equal (e.g. freshly initialised with a zero head) reads 0.5, not 0.

    Args:
        r_chosen: (B,) rewards of the preferred responses.
        r_rejected: (B,) rewards of the rejected responses.

    Returns:
        A scalar in [0, 1].
    """
    wins = (r_chosen > r_rejected).astype(jnp.float32)  # (B,)
    ties = (r_chosen == r_rejected).astype(jnp.float32)  # (B,)
    return jnp.mean(wins + 0.5 * ties)


# ============================================================================================
# The reward model: the SFT Transformer with a scalar head (InstructGPT §3.5)
# ============================================================================================
# Everything below builds the network $R_\phi(x, y)$ and its training loop on top of the loss
# above. Design (Ouyang et al. 2022; Stiennon et al. 2020):
#
# * the backbone is the SFT model's Transformer (``minift.model.hidden_states``), initialised from
#   its checkpoint: the reward model starts out already "reading" the course's language and tasks;
# * the LM head is dropped and replaced by one linear map $h \mapsto w^\top h + b$ from the final
#   hidden state of the *last real token* of prompt + response (the closing EOS) to a scalar: that
#   position is the only one which has seen the whole response (causal attention);
# * the head starts at zero, so a fresh reward model gives every response 0 and ranks pairs at the
#   accuracy of a coin (0.5): any accuracy above that was learned.


RewardParams = dict  # {"backbone": Transformer params without lm_head, "head": {"w": (D,), "b": ()}}
REWARD_MODEL_KIND = "reward_model"  # stored in the checkpoint metadata under "kind"
LENGTH_BUCKETS = (32, 48, 64, 96, 128, 192, 256, 384, 512)


# --------------------------------------------------------------------------------------------
# Reading a score at the last real token
# --------------------------------------------------------------------------------------------


def positions_from_mask(mask: Array) -> Array:
    """RoPE positions 0, 1, 2, ... over the real tokens of each row, whatever the padding: (B, T).

    Left padding (prompts in a rollout) and right padding (batches of pairs) both give the real
    tokens the positions they had when the sequence was alone; pads get 0 (they are masked anyway).
    """
    return jnp.maximum(jnp.cumsum(mask, axis=1) - 1, 0).astype(jnp.int32)  # (B, T)


def last_token_index(mask: Array) -> Array:
    """(B,) column of the last real token of each row (0 for an all-padding row)."""
    T = mask.shape[1]
    columns = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32)[None, :], mask.shape)  # (B, T)
    return jnp.maximum(jnp.max(jnp.where(mask > 0, columns, -1), axis=1), 0)  # (B,)


def init_reward_model(backbone: model.Params, config: ModelConfig) -> RewardParams:
    """A reward model from an (SFT) Transformer: its layers, no LM head, and a zero scalar head."""
    # A copy (training donates its buffers); the LM head is not part of the reward model.
    body = jax.tree.map(jnp.array, {name: value for name, value in backbone.items() if name != "lm_head"})
    head = {"w": jnp.zeros((config.d_model,), jnp.float32), "b": jnp.zeros((), jnp.float32)}
    return {"backbone": body, "head": head}


def reward_scores(rm_params: RewardParams, tokens: Array, mask: Array, config: ModelConfig) -> Array:
    r"""The reward $R_\phi(x, y) = w^\top h_{\text{last}}(x, y) + b$ of each sequence (§4): (B, T) -> (B,).

    ``tokens`` (B, T) hold [BOS] + prompt + response + [EOS] with any padding, ``mask`` (B, T) is 1
    on real tokens. The score is read at the last real token, so padding (left or right, any
    amount) does not change it: real tokens never attend to pads and keep their positions.
    """
    h = model.hidden_states(
        rm_params["backbone"], tokens, config, positions=positions_from_mask(mask), attention_mask=mask
    )  # (B, T, D)
    last = last_token_index(mask)  # (B,)
    h_last = jnp.take_along_axis(h, last[:, None, None], axis=1)[:, 0, :]  # (B, D)
    return jnp.einsum("bd,d->b", h_last, rm_params["head"]["w"]) + rm_params["head"]["b"]  # (B,)


# --------------------------------------------------------------------------------------------
# Preference data: the bundled pairs and the HH-RLHF dialogues
# --------------------------------------------------------------------------------------------


class PreferencePair(NamedTuple):
    """One human (or judge) comparison: for ``prompt``, ``chosen`` was preferred to ``rejected``.

    ``prompt`` is the text exactly as the model reads it (template applied); ``instruction`` and
    ``input`` are kept when known, so the gold judge can score responses to it.
    """

    prompt: str
    chosen: str
    rejected: str
    split: str = "train"
    task: str = ""
    instruction: str = ""
    input: str = ""


PREFERENCE_REQUIRED = ("prompt", "chosen", "rejected")


def _field(row: dict, field: str, where: str) -> str:
    if field not in row:
        raise ValueError(
            f"{where}: missing field {field!r}; every preference line needs "
            f"{', '.join(PREFERENCE_REQUIRED)} (and optionally instruction, input, split, task)."
        )
    value = row[field]
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {field!r} must be a string, got {type(value).__name__}.")
    return unicodedata.normalize("NFC", value)


def _jsonl_rows(path: Path) -> list[tuple[str, dict]]:
    """``("file:line", object)`` of a .jsonl or .jsonl.gz file; errors name the file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"preference file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg}); one object per line.") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}.")
            rows.append((f"{path}:{lineno}", row))
    return rows


def load_preferences(path: str | Path, template: str | None = "alpaca") -> list[PreferencePair]:
    """Preference pairs of a JSONL file: minift's ``preferences.jsonl`` or HH-RLHF dialogues.

    minift lines carry ``prompt``, ``chosen``, ``rejected`` (and ``instruction``, ``input``,
    ``split``, ``task``). With ``template`` set and an ``instruction`` present, the prompt is
    re-written in the SFT template (``minift.data.format_prompt``), so the reward model reads the
    exact text the policy will produce its answers after. Lines with only ``chosen`` and
    ``rejected`` (Anthropic's HH-RLHF, also ``.jsonl.gz``) are split by ``minift.rlhf.hh``.
    """
    from minift.data import Example, format_prompt

    path = Path(path)
    rows = _jsonl_rows(path)
    if rows and "prompt" not in rows[0][1] and {"chosen", "rejected"} <= set(rows[0][1]):
        from minift.rlhf.hh import hh_pair

        return [hh_pair(row, where) for where, row in rows]
    pairs = []
    for where, row in rows:
        prompt, chosen, rejected = (_field(row, f, where) for f in PREFERENCE_REQUIRED)
        instruction = _field(row, "instruction", where) if "instruction" in row else ""
        input = _field(row, "input", where) if "input" in row else ""
        if template and instruction:
            prompt = format_prompt(Example(instruction, input, ""), template)
        pairs.append(PreferencePair(prompt, chosen, rejected, str(row.get("split", "train")),
                                    str(row.get("task", "")), instruction, input))
    if not pairs:
        raise ValueError(f"{path}: no preference pairs in the file.")
    return pairs


def split_pairs(pairs: Sequence[PreferencePair], heldout_fraction: float = 0.1
                ) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, held-out): by the ``split`` field, or the last ``heldout_fraction`` when none is marked."""
    heldout = [p for p in pairs if p.split != "train"]
    if heldout:
        return [p for p in pairs if p.split == "train"], heldout
    n = max(1, int(round(len(pairs) * heldout_fraction)))
    return list(pairs[:-n]), list(pairs[-n:])


# --------------------------------------------------------------------------------------------
# Pairs -> fixed-shape arrays
# --------------------------------------------------------------------------------------------


class PairBatch(NamedTuple):
    """Chosen and rejected sequences, each [BOS] + prompt + response + [EOS], right-padded."""

    chosen: np.ndarray  # (B, T) int32
    chosen_mask: np.ndarray  # (B, T) float32, 1 = real token
    rejected: np.ndarray  # (B, T) int32
    rejected_mask: np.ndarray  # (B, T) float32


def encode_sequence(prompt: str, response: str, tokenizer: Any, max_len: int) -> list[int] | None:
    """[BOS] + prompt + response + [EOS] as ids (the SFT layout); the prompt is cut from the left.

    ``None`` when the response alone does not fit ``max_len``.
    """
    from minift.data import join_prompt_response

    prompt_ids, response_ids = tokenizer.encode(prompt), tokenizer.encode(response)
    room = max_len - 2 - len(response_ids)
    if room < 1:
        return None
    return [int(i) for i in join_prompt_response(prompt_ids[-room:], response_ids,
                                                 tokenizer.bos_id, tokenizer.eos_id).ids]


def encode_pairs(pairs: Sequence[PreferencePair], tokenizer: Any, max_len: int
                 ) -> tuple[PairBatch, int]:
    """All pairs as one PairBatch padded to the smallest bucket that fits; also how many were dropped."""
    rows = []
    for p in pairs:
        c = encode_sequence(p.prompt, p.chosen, tokenizer, max_len)
        r = encode_sequence(p.prompt, p.rejected, tokenizer, max_len)
        if c is not None and r is not None:
            rows.append((c, r))
    if not rows:
        raise ValueError(f"no preference pair fits max_len={max_len} tokens; raise --max-len.")
    longest = max(max(len(c), len(r)) for c, r in rows)
    T = next((b for b in LENGTH_BUCKETS if b >= longest), longest)
    arrays = [np.full((len(rows), T), tokenizer.pad_id, np.int32) if i % 2 == 0 else
              np.zeros((len(rows), T), np.float32) for i in range(4)]
    for b, (c, r) in enumerate(rows):
        arrays[0][b, : len(c)], arrays[1][b, : len(c)] = c, 1.0
        arrays[2][b, : len(r)], arrays[3][b, : len(r)] = r, 1.0
    return PairBatch(*arrays), len(pairs) - len(rows)


def take(batch: PairBatch, index: np.ndarray) -> PairBatch:
    return PairBatch(*(a[index] for a in batch))


# --------------------------------------------------------------------------------------------
# Training: one jit region per step
# --------------------------------------------------------------------------------------------


def pair_scores(rm_params: RewardParams, batch: PairBatch, config: ModelConfig) -> tuple[Array, Array]:
    """(r_chosen, r_rejected), each (B,), in one forward pass over the 2B sequences."""
    tokens = jnp.concatenate([jnp.asarray(batch.chosen), jnp.asarray(batch.rejected)], axis=0)  # (2B, T)
    mask = jnp.concatenate([jnp.asarray(batch.chosen_mask), jnp.asarray(batch.rejected_mask)], axis=0)  # (2B, T)
    scores = reward_scores(rm_params, tokens, mask, config)  # (2B,)
    B = batch.chosen.shape[0]
    return scores[:B], scores[B:]


def make_rm_train_step(config: ModelConfig, optimizer: optax.GradientTransformation) -> Callable:
    """A jit-compiled ``step(rm_params, opt_state, batch) -> (rm_params, opt_state, metrics)``.

    Loss, gradient, optimizer update and apply in one region; params and state are donated.
    """

    def loss_fn(rm_params: RewardParams, batch: PairBatch) -> tuple[Array, Array]:
        r_chosen, r_rejected = pair_scores(rm_params, batch, config)
        return bradley_terry_loss(r_chosen, r_rejected), preference_accuracy(r_chosen, r_rejected)

    def step(rm_params: RewardParams, opt_state: optax.OptState, batch: PairBatch):
        (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(rm_params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, rm_params)
        metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.tree.norm(grads)}
        return optax.apply_updates(rm_params, updates), opt_state, metrics

    return jax.jit(step, donate_argnums=(0, 1))


_pair_scores_jit = jax.jit(pair_scores, static_argnames="config")


def evaluate_reward_model(rm_params: RewardParams, pairs: PairBatch, config: ModelConfig,
                          batch_size: int = 64) -> dict[str, float]:
    """Pairwise accuracy and Bradley–Terry loss over every pair (the last batch padded, then cut)."""
    n = pairs.chosen.shape[0]
    chosen, rejected = [], []
    for start in range(0, n, batch_size):
        index = np.arange(start, start + batch_size) % n  # fixed shape: wrap around, cut below
        rc, rr = _pair_scores_jit(rm_params, take(pairs, index), config)
        keep = min(batch_size, n - start)
        chosen.append(np.asarray(rc)[:keep])
        rejected.append(np.asarray(rr)[:keep])
    rc, rr = jnp.asarray(np.concatenate(chosen)), jnp.asarray(np.concatenate(rejected))
    return {"accuracy": float(preference_accuracy(rc, rr)), "loss": float(bradley_terry_loss(rc, rr)),
            "margin": float(jnp.mean(rc - rr))}


@dataclass(frozen=True)
class RMConfig:
    """Settings of one reward-model training run."""

    steps: int = 150
    batch_size: int = 32
    learning_rate: float = 3e-4  # the backbone is already trained: a gentler rate than pretraining
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_len: int = 96
    eval_every: int = 50
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"RMConfig: steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}.")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"RMConfig: warmup_steps must be in [0, steps={self.steps}), got {self.warmup_steps}.")


def train_reward_model(
    rm_params: RewardParams,
    config: ModelConfig,
    train_pairs: PairBatch,
    rm: RMConfig,
    *,
    eval_pairs: PairBatch | None = None,
    log: Callable[[dict], None] | None = None,
) -> tuple[RewardParams, list[dict]]:
    """Fit the reward model by Bradley–Terry on ``train_pairs``; returns (params, history).

    Minibatches are drawn without replacement, a new seeded permutation each epoch, so the run is
    a pure function of ``rm.seed``. The caller's ``rm_params`` are not modified.
    """
    optimizer = optim.make_optimizer(rm.learning_rate, rm.steps, rm.warmup_steps, weight_decay=rm.weight_decay)
    params = jax.tree.map(jnp.copy, rm_params)
    opt_state = optimizer.init(params)
    step_fn = make_rm_train_step(config, optimizer)
    n = train_pairs.chosen.shape[0]
    if n < rm.batch_size:
        raise ValueError(f"only {n} training pairs for batch_size={rm.batch_size}; lower --batch-size.")
    rng = np.random.default_rng(rm.seed)
    order, cursor = rng.permutation(n), 0
    history: list[dict] = []
    for step in range(1, rm.steps + 1):
        if cursor + rm.batch_size > n:
            order, cursor = rng.permutation(n), 0
        index = order[cursor : cursor + rm.batch_size]
        cursor += rm.batch_size
        params, opt_state, metrics = step_fn(params, opt_state, take(train_pairs, index))
        record = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        if eval_pairs is not None and ((rm.eval_every and step % rm.eval_every == 0) or step == rm.steps):
            record.update({f"eval_{k}": v for k, v in evaluate_reward_model(params, eval_pairs, config).items()})
        history.append(record)
        if log is not None:
            log(record)
    return params, history


# --------------------------------------------------------------------------------------------
# Checkpoints: a reward model says what it is and which backbone it has
# --------------------------------------------------------------------------------------------


def save_reward_model(path: str | Path, rm_params: RewardParams, config: ModelConfig, *, step: int = 0,
                      metadata: dict | None = None) -> Path:
    """Save as a minift safetensors checkpoint tagged ``kind: reward_model`` with its backbone config."""
    meta = {"kind": REWARD_MODEL_KIND, "backbone_config": config.to_dict(), **(metadata or {})}
    return ckpt.save_checkpoint(path, params=rm_params, step=step, config=config, metadata=meta)


def load_reward_model(path: str | Path) -> tuple[RewardParams, ModelConfig, dict]:
    """(params, backbone config, metadata) of a reward model: a run folder or a .safetensors file."""
    path = Path(path)
    if path.is_dir():
        last = ckpt.latest_checkpoint(path)
        if last is None:
            raise FileNotFoundError(f"{path}: no checkpoint under {path / ckpt.CHECKPOINT_DIR}; train one with `minift rm`.")
        path = last
    state = ckpt.load_checkpoint(path)
    if state.metadata.get("kind") != REWARD_MODEL_KIND:
        raise ValueError(
            f"{path} is not a reward-model checkpoint (metadata kind is {state.metadata.get('kind')!r}); "
            "pass the folder written by `minift rm --out`, not an SFT or PPO run."
        )
    return state.params, ModelConfig.from_dict(state.config_dict), state.metadata


def check_backbone_matches(rm_config: ModelConfig, policy_config: ModelConfig, where: str = "reward model") -> None:
    """A ValueError naming every differing field when the reward model's backbone is not the policy's.

    The reward model must read the very token ids the policy writes (same vocabulary), and in
    minift it is initialised from the SFT model, so its whole shape must agree; only the attention
    implementation (a speed choice, same numbers) may differ.
    """
    a, b = rm_config.to_dict(), policy_config.to_dict()
    differing = [k for k in a if k != "attention" and a[k] != b.get(k)]
    if differing:
        detail = ", ".join(f"{k}: reward model {a[k]!r} vs policy {b.get(k)!r}" for k in differing)
        raise ValueError(
            f"{where}: its backbone config does not match the policy's ({detail}). Train the reward "
            "model from the same SFT run (`minift rm --sft RUN`) that PPO starts from."
        )


# --------------------------------------------------------------------------------------------
# `minift rm`
# --------------------------------------------------------------------------------------------


def sft_template(run: str | Path) -> str:
    """The prompt template an SFT run trained with (run.json), default "alpaca"."""
    run = Path(run)
    info_path = (run if run.is_dir() else run.parent.parent) / "run.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        for source in (info, info.get("info", {}), info.get("data", {})):
            if isinstance(source, dict) and isinstance(source.get("template"), str):
                return source["template"]
    return "alpaca"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from minift.coursedata import PREFERENCES_FILE, SAMPLES_DIR

    parser.add_argument("--sft", required=True, type=Path, help="SFT run folder (or .safetensors) to start from")
    parser.add_argument("--out", required=True, type=Path, help="run folder to write the reward model into")
    parser.add_argument("--data", type=Path, default=SAMPLES_DIR / PREFERENCES_FILE,
                        help="preference pairs: minift JSONL or HH-RLHF chosen/rejected (.jsonl[.gz])")
    parser.add_argument("--template", default=None, help="prompt template (default: the SFT run's)")
    defaults = RMConfig()
    for name in ("steps", "batch_size", "learning_rate", "max_len", "eval_every", "seed"):
        value = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value,
                            help=f"RMConfig.{name} (default {value})")


def run(args: argparse.Namespace) -> int:
    from minift.tokenizer import default_tokenizer
    from minift.train import load_model

    params, config = load_model(args.sft)
    tokenizer = default_tokenizer()
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"{args.sft}: the model's vocabulary ({config.vocab_size}) is not the course "
                         f"tokenizer's ({tokenizer.vocab_size}).")
    template = args.template or sft_template(args.sft)
    rm = RMConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                  warmup_steps=min(10, args.steps - 1), max_len=args.max_len, eval_every=args.eval_every,
                  seed=args.seed)
    train_list, heldout_list = split_pairs(load_preferences(args.data, template))
    train_pairs, dropped = encode_pairs(train_list, tokenizer, rm.max_len)
    eval_pairs, _ = encode_pairs(heldout_list, tokenizer, rm.max_len)
    print(f"{len(train_list)} training pairs ({dropped} too long), {len(heldout_list)} held out; template {template!r}")
    rm_params = init_reward_model(params, config)
    before = evaluate_reward_model(rm_params, eval_pairs, config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(out / "metrics.jsonl", "w", encoding="utf-8") as f:
        def log(record: dict) -> None:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            if "eval_accuracy" in record:
                print(f"step {record['step']}: loss {record['loss']:.3f}, held-out accuracy {record['eval_accuracy']:.3f}")

        rm_params, history = train_reward_model(rm_params, config, train_pairs, rm, eval_pairs=eval_pairs, log=log)
    after = evaluate_reward_model(rm_params, eval_pairs, config)
    summary = {"heldout_accuracy_before": before["accuracy"], "heldout_accuracy": after["accuracy"],
               "heldout_loss": after["loss"], "seconds": time.perf_counter() - t0}
    meta = {"sft": str(args.sft), "data": str(args.data), "template": template, "rm": asdict(rm), **summary}
    path = save_reward_model(ckpt.checkpoint_path(out, rm.steps), rm_params, config, step=rm.steps, metadata=meta)
    (out / "run.json").write_text(json.dumps({"model": config.to_dict(), "kind": REWARD_MODEL_KIND, **meta},
                                             indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"held-out pairwise accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f}; saved {path}")
    return 0
