"""Conversations (chat data) as training sequences: the loss on every assistant turn, nothing else.

A conversation is a list of ``{"role", "content"}`` messages (system, user, assistant), the
``messages`` format of chat datasets. Instruction tuning on it follows §3.2 exactly: every token
the model reads is in the input, and only the tokens the *assistant* wrote (and the EOS that ends
each of its turns) are in the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minift.data import COMPACT, Encoded
from minift.tokenizer import Tokenizer

ROLES = ("system", "user", "assistant")


def encode_messages(messages: Sequence[dict[str, str]], tokenizer: Tokenizer, max_len: int) -> Encoded | None:
    """A conversation (``[{"role", "content"}, ...]``) as ids, with the loss on every assistant turn.

    Rendered in the ``compact`` template's words: a system message is plain text followed by a
    blank line, a user turn is ``"### Instruction:\\n{content}\\n\\n### Response:\\n"``, and an
    assistant turn is its content followed by EOS. So ``[system: the Alpaca preamble, user: I,
    assistant: R]`` gives exactly the ids of ``encode`` with the ``alpaca`` template. The loss mask
    is 1 on each assistant turn and its EOS. A conversation longer than ``max_len`` is cut after
    the last assistant turn that fits whole; ``None`` if not even the first one fits.
    """
    check_messages(messages, "conversation")
    ids: list[int] = [tokenizer.bos_id]
    mask: list[float] = [0.0]
    end = 0  # length of the longest prefix that ends with an assistant EOS and fits
    prompt = ""
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            prompt += content + "\n\n"
        elif role == "user":
            prompt += COMPACT.without_input.format(instruction=content)
        else:
            # Text between two assistant turns is encoded as one string, as ``encode`` does.
            prompt_ids, prompt = tokenizer.encode(prompt), ""
            reply_ids = tokenizer.encode(content) + [tokenizer.eos_id]
            ids += prompt_ids + reply_ids
            mask += [0.0] * len(prompt_ids) + [1.0] * len(reply_ids)
            if len(ids) > max_len:
                break
            end = len(ids)
    if end == 0:
        return None
    return Encoded(np.asarray(ids[:end], dtype=np.int32), np.asarray(mask[:end], dtype=np.float32))


def check_messages(messages: Any, where: str) -> None:
    """A ValueError naming ``where`` and the message unless ``messages`` is a trainable conversation."""
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"{where}: message {i} needs the fields 'role' and 'content'")
        if m["role"] not in ROLES:
            raise ValueError(f"{where}: message {i} has role {m['role']!r}; known roles: {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise ValueError(f"{where}: message {i}: 'content' must be a string")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError(f"{where}: no 'assistant' message, so nothing to train on")
