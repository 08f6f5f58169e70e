r"""Measuring a policy on one fixed prompt set: the axes every method of the §4 study is drawn on.

For a policy $\pi$ (any Transformer with the reference's shape), the reference $\pi_{ref}$, the
learned reward $R_\phi$ and the gold judge $R^\star$, :func:`measure` samples one answer per
prompt at temperature 1 and returns

* ``kl``    — $\mathbb{E}_{y\sim\pi}\big[\sum_t \log\pi(y_t\mid\cdot) - \log\pi_{ref}(y_t\mid\cdot)\big]$,
  the k1 estimate of $D_{KL}(\pi\Vert\pi_{ref})$ per answer (``objectives.sequence_kl``);
* ``proxy`` — $\mathbb{E}[R_\phi(x, y)]$, what the methods optimise;
* ``gold``  — $\mathbb{E}[R^\star(x, y)]$, what we want and they never see;
* ``polite`` — the fraction of answers that open politely (the bias of ``minift.rlhf.setting``);

and :func:`collapse` the two mode-collapse numbers on a fixed prompt set: distinct answers per
prompt among ``m`` samples, and the policy's next-token entropy along its own samples.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from minift import model
from minift.config import ModelConfig
from minift.course.judge import judge
from minift.generate import Sampling, generate_tokens
from minift.rlhf.objectives import sequence_kl
from minift.rlhf.ppo import PromptSet, response_token_log_probs
from minift.rlhf.ppo_objective import entropy as masked_entropy
from minift.rlhf.reward_model import reward_scores
from minift.rlhf.setting import opens_politely

CHUNK = 64  # prompts per sampling call: one compiled shape for every measurement


class Samples(NamedTuple):
    """Answers sampled for some prompts, with what scoring them needs (numpy, one row per answer)."""

    index: np.ndarray  # (B,) which prompt of the PromptSet
    tokens: np.ndarray  # (B, P + N) prompt then answer
    attention_mask: np.ndarray  # (B, P + N)
    response: np.ndarray  # (B, N)
    mask: np.ndarray  # (B, N) 1 up to and including EOS
    text: list[str]


def decode(response: np.ndarray, mask: np.ndarray, tokenizer: Any) -> list[str]:
    """The text of each sampled answer (up to, without, its EOS)."""
    return [tokenizer.decode([int(t) for t, v in zip(row, m) if v and t != tokenizer.eos_id])
            for row, m in zip(np.asarray(response), np.asarray(mask))]


def sample(params: dict, config: ModelConfig, prompts: PromptSet, index: Sequence[int], key: Array, tokenizer: Any,
           max_new_tokens: int, temperature: float = 1.0) -> Samples:
    """One answer per entry of ``index`` (a prompt may repeat), sampled in chunks of ``CHUNK``."""
    index = np.asarray(index, dtype=np.int64)
    parts = []
    for start in range(0, len(index), CHUNK):
        rows = index[start : start + CHUNK]
        pad = CHUNK - len(rows)  # pad the last chunk so every call has one shape
        rows_full = np.concatenate([rows, np.repeat(rows[:1], pad)])
        pt, pm = jnp.asarray(prompts.tokens[rows_full]), jnp.asarray(prompts.mask[rows_full])
        gen = generate_tokens(params, pt, pm, jax.random.fold_in(key, start), config=config,
                              max_new_tokens=max_new_tokens, sampling=Sampling(temperature=temperature),
                              eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
        keep = slice(0, len(rows))
        parts.append((np.concatenate([np.asarray(pt), np.asarray(gen.tokens)], 1)[keep],
                      np.concatenate([np.asarray(pm), np.asarray(gen.mask)], 1)[keep],
                      np.asarray(gen.tokens)[keep], np.asarray(gen.mask)[keep]))
    tokens, attention, response, mask = (np.concatenate(p) for p in zip(*parts))
    return Samples(index, tokens, attention, response, mask, decode(response, mask, tokenizer))


def _scores_fn(config: ModelConfig):
    @jax.jit
    def scores(params, ref_params, rm_params, tokens, attention_mask, response, mask):
        logp = response_token_log_probs(params, tokens, attention_mask, response, config)  # (B, N)
        logp_ref = response_token_log_probs(ref_params, tokens, attention_mask, response, config)  # (B, N)
        return (sequence_kl(logp, logp_ref, mask, "k1"), reward_scores(rm_params, tokens, attention_mask, config))
    return scores


_SCORERS: dict[ModelConfig, Any] = {}


def score(params: dict, ref_params: dict, rm_params: dict, config: ModelConfig, s: Samples
          ) -> tuple[np.ndarray, np.ndarray]:
    """(k1 KL per answer, learned reward per answer) of samples ``s``, in chunks of ``CHUNK``."""
    fn = _SCORERS.setdefault(config, _scores_fn(config))
    kl, proxy = [], []
    for start in range(0, len(s.index), CHUNK):
        sl = slice(start, start + CHUNK)
        n = len(s.index[sl])
        pad = lambda a: np.concatenate([a[sl], np.repeat(a[sl][:1], CHUNK - n, 0)])  # noqa: E731
        k, r = fn(params, ref_params, rm_params, *(jnp.asarray(pad(a)) for a in
                                                   (s.tokens, s.attention_mask, s.response, s.mask)))
        kl.append(np.asarray(k)[:n])
        proxy.append(np.asarray(r)[:n])
    return np.concatenate(kl), np.concatenate(proxy)


def gold(prompts: PromptSet, s: Samples) -> np.ndarray:
    """The gold judge's reward of each sampled answer."""
    return np.asarray([judge(prompts.instructions[i], prompts.inputs[i], y, task=prompts.tasks[i] or None)
                       for i, y in zip(s.index, s.text)], dtype=np.float64)


def measure(params: dict, ref_params: dict, rm_params: dict, config: ModelConfig, prompts: PromptSet, key: Array,
            tokenizer: Any, max_new_tokens: int) -> dict[str, float]:
    """One point of a curve: {"kl", "proxy", "gold", "polite"} of one answer per prompt (see the module doc)."""
    s = sample(params, config, prompts, np.arange(prompts.tokens.shape[0]), key, tokenizer, max_new_tokens)
    kl, proxy = score(params, ref_params, rm_params, config, s)
    return {"kl": float(np.mean(kl)), "proxy": float(np.mean(proxy)), "gold": float(np.mean(gold(prompts, s))),
            "polite": float(np.mean([opens_politely(y) for y in s.text]))}


def distinct_per_prompt(texts: Sequence[str], m: int) -> float:
    """Mean over prompts of (distinct answers / m), for ``texts`` laid out prompt-major, ``m`` per prompt.

    1 = every sample differs; 1/m = one answer per prompt, always the same (collapse).
    """
    if m < 1 or len(texts) % m:
        raise ValueError(f"distinct_per_prompt: {len(texts)} answers is not a whole number of groups of {m}.")
    groups = [texts[i : i + m] for i in range(0, len(texts), m)]
    return float(np.mean([len(set(g)) / m for g in groups]))


def _entropy_fn(config: ModelConfig):
    @jax.jit
    def ent(params, tokens, attention_mask, mask):
        n = mask.shape[1]
        logits = model.forward(params, tokens, config, positions=model.positions_from_mask(attention_mask),
                               attention_mask=attention_mask)[:, -n - 1 : -1, :]  # (B, N, V)
        return masked_entropy(logits, mask)
    return ent


_ENTROPY: dict[ModelConfig, Any] = {}


def token_entropy(params: dict, config: ModelConfig, s: Samples) -> float:
    """Mean next-token entropy (nats) of ``params`` along the answers ``s`` (token-weighted over chunks)."""
    fn = _ENTROPY.setdefault(config, _entropy_fn(config))
    total, count = 0.0, 0.0
    for start in range(0, len(s.index), CHUNK):
        sl = slice(start, start + CHUNK)
        rows = len(s.index[sl])
        pad = lambda a, fill=None: np.concatenate(  # noqa: E731  rows of zero mask: counted nowhere
            [a[sl], np.zeros_like(a[sl][:1]).repeat(CHUNK - rows, 0) if fill is None else a[sl][:1].repeat(CHUNK - rows, 0)])
        n_tok = float(s.mask[sl].sum())
        if n_tok:
            total += float(fn(params, jnp.asarray(pad(s.tokens, True)), jnp.asarray(pad(s.attention_mask, True)),
                              jnp.asarray(pad(s.mask)))) * n_tok
            count += n_tok
    return total / count if count else 0.0


def collapse(params: dict, config: ModelConfig, prompts: PromptSet, n_prompts: int, m: int, key: Array,
             tokenizer: Any, max_new_tokens: int) -> dict[str, float]:
    """Mode collapse, measured: ``m`` samples at temperature 1 for each of the first ``n_prompts`` prompts;
    {"distinct": distinct answers per prompt / m, "entropy": next-token entropy along them,
    "polite": the fraction of them that open politely (the exploit of ``minift.rlhf.setting``'s bias)}."""
    index = np.repeat(np.arange(n_prompts), m)
    s = sample(params, config, prompts, index, key, tokenizer, max_new_tokens)
    return {"distinct": distinct_per_prompt(s.text, m), "entropy": token_entropy(params, config, s),
            "polite": float(np.mean([opens_politely(y) for y in s.text]))}
