"""Exact-match evaluation of instruction following (§1, §2).

The article's claim is measured, not asserted: greedy-decode the answer to each held-out
instruction and count the exact matches, per task and overall, on

* ``heldout_phrasing`` / ``independent_wording`` — trained tasks asked with instruction wordings
  never seen in training (does the model follow *instructions*, or memorise strings?), and
* ``heldout_task`` / ``heldout_cluster`` — task families never trained on: new combinations of
  trained primitives, and a primitive never trained (the zero-shot claim of FLAN / T0;
  ``minift.course.compose``).

Greedy decoding makes the score a deterministic function of the parameters.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from typing import Sequence

import numpy as np

from minift.chat import chat_prompt_ids, example_messages, turn_end_ids
from minift.config import ModelConfig
from minift.course.phrasings import MAX_JACCARD, jaccard
from minift.data import Example, format_prompt
from minift.generate import GREEDY, Sampling, generate_scored


def normalize_answer(text: str) -> str:
    """The comparison form of an answer: NFC, surrounding whitespace stripped, inner runs collapsed.

    Case and punctuation are kept: "PARIS" is not the answer to "upper-case 'paris'" unless it is.
    """
    return " ".join(unicodedata.normalize("NFC", text).split())


def exact_match(prediction: str, reference: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(reference)


def prompt_ids(example: Example, tokenizer, template: str = "alpaca", chat_template: str | None = None) -> list[int]:
    """The token ids the model sees before it answers: BOS + the formatted prompt, or, with a
    ``chat_template`` (a real chat model), the example as one user turn and the assistant header.

    The same tokenisation as ``minift.data.encode`` / ``minift.chat.encode_chat`` use in training.
    """
    if chat_template:
        return chat_prompt_ids(example_messages(example)[:1], tokenizer, chat_template)
    return [tokenizer.bos_id] + tokenizer.encode(format_prompt(example, template))


def answer_scored(
    params,
    config: ModelConfig,
    tokenizer,
    examples: Sequence[Example],
    *,
    template: str = "alpaca",
    chat_template: str | None = None,
    max_new_tokens: int = 32,
    batch_size: int = 64,
    sampling: Sampling = GREEDY,
    key=None,
) -> list[tuple[str, list[float]]]:
    """The model's decoded answers to ``examples`` with their tokens' log-probabilities (EOS
    included), in batches of a fixed size (one compilation). With ``chat_template`` the prompt is
    that chat format's and an answer ends at its end-of-turn token."""
    answers: list[tuple[str, list[float]]] = []
    for start in range(0, len(examples), batch_size):
        chunk = list(examples[start : start + batch_size])
        prompts = [prompt_ids(ex, tokenizer, template, chat_template) for ex in chunk]
        # Pad the last chunk with copies so every call has the same batch shape.
        prompts += [prompts[0]] * (batch_size - len(prompts))
        out = generate_scored(
            params, config, prompts, max_new_tokens=max_new_tokens,
            eos_id=tuple(turn_end_ids(tokenizer, chat_template)) if chat_template else tokenizer.eos_id,
            pad_id=tokenizer.pad_id, sampling=sampling, key=key,
        )
        answers += [(tokenizer.decode(ids), logprobs) for ids, logprobs in out[: len(chunk)]]
    return answers


def answer(params, config: ModelConfig, tokenizer, examples: Sequence[Example], **settings) -> list[str]:
    """The model's decoded answers to ``examples`` (``settings`` as ``answer_scored``)."""
    return [text for text, _ in answer_scored(params, config, tokenizer, examples, **settings)]


def accuracy_table(examples: Sequence[Example], predictions: Sequence[str],
                   subsets: dict[str, Sequence[bool]] | None = None) -> dict:
    """{"overall": fraction, "n": count, "per_task": {task: fraction}} of exact matches.

    ``subsets`` (name -> one flag per example) adds ``"subsets": {name: {"overall", "n"}}``: the
    accuracy on the examples flagged, e.g. those whose input was seen in training.
    """
    if len(examples) != len(predictions):
        raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
    hits = [exact_match(pred, ex.response) for ex, pred in zip(examples, predictions)]
    by_task = defaultdict(list)
    for ex, hit in zip(examples, hits):
        by_task[ex.task].append(hit)
    table = {
        "overall": float(np.mean(hits)) if hits else 0.0,
        "n": len(hits),
        "per_task": {task: float(np.mean(h)) for task, h in sorted(by_task.items())},
    }
    if subsets:
        for name, flags in subsets.items():
            if len(flags) != len(examples):
                raise ValueError(f"subset {name!r} has {len(flags)} flags for {len(examples)} examples")
        table["subsets"] = {name: {"overall": float(np.mean(chosen)) if chosen else 0.0, "n": len(chosen)}
                            for name, flags in subsets.items()
                            for chosen in [[h for h, f in zip(hits, flags) if f]]}
    return table


def evaluate(params, config: ModelConfig, tokenizer, examples: Sequence[Example], *,
             subsets: dict[str, Sequence[bool]] | None = None, **settings) -> tuple[dict, list[str]]:
    """Exact-match accuracy of the model's answers to ``examples``: (table, predictions).

    ``settings`` go to ``answer`` (``template``, ``max_new_tokens``, ``batch_size``; greedy unless
    a ``sampling`` is given); ``subsets`` to ``accuracy_table``.
    """
    predictions = answer(params, config, tokenizer, examples, **settings)
    return accuracy_table(examples, predictions, subsets), predictions


def format_table(results: dict[str, dict[str, dict]], split: str) -> str:
    """A plain-text table: one row per task, one column per model, for one split.

    results: model name -> split -> accuracy table (as returned by ``accuracy_table``).
    """
    models = list(results)
    tasks = sorted({t for m in models for t in results[m].get(split, {}).get("per_task", {})})
    names = list(dict.fromkeys(n for m in models for n in results[m].get(split, {}).get("subsets", {})))
    task_label, overall_label = "tác vụ (task)", "tổng (overall)"  # Vietnamese first, as the course
    width = max([len(task_label)] + [len(t) for t in tasks] + [len(overall_label)] + [len(n) + 2 for n in names])
    header = f"{task_label:<{width}} " + " ".join(f"{m:>13}" for m in models)
    lines = [header, "-" * len(header)]
    for task in tasks + ["overall"]:
        cells = []
        for m in models:
            table = results[m].get(split, {})
            value = table.get("overall") if task == "overall" else table.get("per_task", {}).get(task)
            cells.append(f"{'—':>13}" if value is None else f"{100 * value:>12.1f}%")
        lines.append(f"{overall_label if task == 'overall' else task:<{width}} " + " ".join(cells))
    for name in names:  # e.g. the questions whose input was (not) seen in training, with their count
        cells = []
        for m in models:
            sub = results[m].get(split, {}).get("subsets", {}).get(name)
            cells.append(f"{'—':>13}" if sub is None else f"{100 * sub['overall']:>5.1f}% ({sub['n']:>3})")
        lines.append(f"{'  ' + name:<{width}} " + " ".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)


def novelty_subsets(examples: Sequence[Example], train_examples: Sequence[Example]) -> dict[str, list[bool]]:
    """Which evaluation questions are new, and how: flags for ``accuracy_table``'s ``subsets``.

    ``seen input`` / ``unseen input``: whether the same task was trained on this very input.
    ``new wording``: whether the instruction shares less than half its words (Jaccard < 0.5,
    ``course.phrasings.jaccard``) with every wording the task was trained with.
    """
    inputs, wordings = defaultdict(set), defaultdict(set)
    for ex in train_examples:
        inputs[ex.task].add(ex.input)
        wordings[ex.task].add(ex.instruction)
    seen = [ex.input in inputs[ex.task] for ex in examples]
    new = [all(jaccard(ex.instruction, w) < MAX_JACCARD for w in wordings[ex.task]) for ex in examples]
    return {"seen input": seen, "unseen input": [not s for s in seen], "new wording": new}
