r"""Anthropic's HH-RLHF preference format (Bai et al. 2022), read into minift's preference pairs (§4).

Each line of HH-RLHF holds two whole dialogues that share every turn but the last assistant one:

    {"chosen":   "\n\nHuman: ...\n\nAssistant: ...\n\nHuman: ...\n\nAssistant: <preferred answer>",
     "rejected": "\n\nHuman: ...\n\nAssistant: ...\n\nHuman: ...\n\nAssistant: <other answer>"}

The reward model of §4 needs (prompt $x$, chosen $y_c$, rejected $y_r$): the prompt is the
dialogue up to and including the last ``"\n\nAssistant:"``, the responses are what follows it.
The prompt is the *chosen* dialogue's prefix; the two prefixes are identical in the data (a pair
where they are not is still usable: the rejected answer is the text after its own last marker).
"""

from __future__ import annotations

import unicodedata

from minift.rlhf.reward import PreferencePair

ASSISTANT = "\n\nAssistant:"
HUMAN = "\n\nHuman:"


def split_dialogue(dialogue: str, where: str = "dialogue") -> tuple[str, str]:
    """(prompt up to and including the last ``"\n\nAssistant:"``, the final assistant answer)."""
    at = dialogue.rfind(ASSISTANT)
    if at < 0:
        raise ValueError(f"{where}: no {ASSISTANT!r} turn in the dialogue; is this HH-RLHF data?")
    cut = at + len(ASSISTANT)
    return dialogue[:cut], dialogue[cut:].strip()


def hh_pair(row: dict, where: str, split: str = "train") -> PreferencePair:
    """One HH-RLHF line (``chosen``, ``rejected`` dialogues) as a PreferencePair."""
    for field in ("chosen", "rejected"):
        if field not in row:
            raise ValueError(f"{where}: missing field {field!r}; HH-RLHF lines hold 'chosen' and 'rejected' dialogues.")
        if not isinstance(row[field], str):
            raise ValueError(f"{where}: field {field!r} must be a string, got {type(row[field]).__name__}.")
    prompt, chosen = split_dialogue(unicodedata.normalize("NFC", row["chosen"]), f"{where} (chosen)")
    _, rejected = split_dialogue(unicodedata.normalize("NFC", row["rejected"]), f"{where} (rejected)")
    return PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected, split=split, task="hh-rlhf")
