r"""Preference data for the reward model of §4: (prompt, chosen, rejected) triples from files.

People do not write down rewards; they say which of two responses to the same prompt they
prefer. A ``PreferencePair`` is one such judgement. Two file layouts are read, both JSON Lines:

* minift's ``preferences.jsonl`` — ``prompt``, ``chosen``, ``rejected`` (and ``instruction``,
  ``input``, ``split``, ``task``). With a template and an ``instruction``, the prompt is rewritten
  in the SFT template, so the reward model reads the exact text the policy answers after.
* Anthropic's HH-RLHF (Bai et al. 2022), also ``.jsonl.gz`` — each line holds two whole
  dialogues that share every turn but the last assistant one::

    {"chosen":   "\n\nHuman: ...\n\nAssistant: ...\n\nHuman: ...\n\nAssistant: <preferred answer>",
     "rejected": "\n\nHuman: ...\n\nAssistant: ...\n\nHuman: ...\n\nAssistant: <other answer>"}

  The prompt is the chosen dialogue up to and including the last ``"\n\nAssistant:"``; the
  responses are what follows it in each dialogue.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from minift.data import Example, format_prompt
from minift.files import numbered_jsonl


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
ASSISTANT = "\n\nAssistant:"
HUMAN = "\n\nHuman:"


def _field(row: dict, field: str, where: str, required: Sequence[str] = PREFERENCE_REQUIRED) -> str:
    """Field ``field`` of ``row`` as NFC text; errors name the place and the fields a line needs."""
    if field not in row:
        raise ValueError(
            f"{where}: missing field {field!r}; every preference line needs "
            f"{', '.join(required)} (minift lines may add instruction, input, split, task)."
        )
    value = row[field]
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {field!r} must be a string, got {type(value).__name__}.")
    return unicodedata.normalize("NFC", value)


def split_dialogue(dialogue: str, where: str = "dialogue") -> tuple[str, str]:
    """(prompt up to and including the last ``"\n\nAssistant:"``, the final assistant answer)."""
    at = dialogue.rfind(ASSISTANT)
    if at < 0:
        raise ValueError(f"{where}: no {ASSISTANT!r} turn in the dialogue; is this HH-RLHF data?")
    cut = at + len(ASSISTANT)
    return dialogue[:cut], dialogue[cut:].strip()


def hh_pair(row: dict, where: str, split: str = "train") -> PreferencePair:
    """One HH-RLHF line (``chosen``, ``rejected`` dialogues) as a PreferencePair."""
    required = ("chosen", "rejected")
    prompt, chosen = split_dialogue(_field(row, "chosen", where, required), f"{where} (chosen)")
    _, rejected = split_dialogue(_field(row, "rejected", where, required), f"{where} (rejected)")
    return PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected, split=split, task="hh-rlhf")


def load_preferences(path: str | Path, template: str | None = "alpaca") -> list[PreferencePair]:
    """Preference pairs of a JSONL file: minift's ``preferences.jsonl`` or HH-RLHF dialogues.

    HH-RLHF is recognised by its first line holding ``chosen`` and ``rejected`` but no ``prompt``.
    """
    path = Path(path)
    rows = list(numbered_jsonl(path, "preference file"))
    if rows and "prompt" not in rows[0][1] and {"chosen", "rejected"} <= set(rows[0][1]):
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
