"""Conversations (chat data) as training sequences: the loss on every assistant turn, nothing else.

A conversation is a list of ``{"role", "content"}`` messages (system, user, assistant), the
``messages`` format of chat datasets. Instruction tuning on it follows §3.2 exactly: every token
the model reads is in the input, and only the tokens the *assistant* wrote (and the token that
ends each of its turns) are in the loss.

Each model family was tuned with its own chat format, and a checkpoint answers well only in its
own. Here each format is a ``ChatTemplate``: a few strings and switches a student can read, not a
jinja program. ``render_chat`` writes a conversation as the family's official Hugging Face
template does (tested against ``transformers.apply_chat_template`` in ``tests/test_chat.py``):

    compact  <s>{system}\\n\\n### Instruction:\\n{user}\\n\\n### Response:\\n{assistant}</s>   (the course's)
    llama2   <s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {assistant} </s><s>[INST] ...
    llama3   <|begin_of_text|><|start_header_id|>user<|end_header_id|>\\n\\n{user}<|eot_id|>...
    chatml   <|im_start|>user\\n{user}<|im_end|>\\n<|im_start|>assistant\\n{assistant}<|im_end|>\\n

Choices, and why:

* **Segments are encoded separately** (as ``minift.data`` encodes prompt and response): the text
  between two replies is one ``encode`` call, each reply another, and BOS and the end-of-turn token
  are ids, never text (a SentencePiece model reads ``"<s>"`` as four characters, not BOS). So the
  loss mask is exact even where BPE would merge across a boundary -- the way TRL-style assistant
  masks are built too. With a ``tokenizer.json`` whose special tokens split the text (Llama-3,
  ChatML) the ids equal those of encoding the whole rendered string; one exception: a ChatML reply
  that *starts* with a newline (ChatML does not strip), which BPE would merge with the header's.
* **A SentencePiece model adds a space in front of every text** (``prefix_space``). Llama-2's reply
  is written ``" {content} "`` after ``[/INST]``: that first space is the one SentencePiece adds, so
  it is not written twice. The ids then equal Meta's own ``encode("[INST] {user} [/INST] {reply} ")``.
* **The loss covers the reply and its end token** -- ``</s>`` (the tokenizer's EOS) for compact and
  llama2, ``<|eot_id|>`` for llama3, ``<|im_end|>`` for chatml -- and nothing else: no BOS, header,
  system or user token. A row ends with the last end token: what a template writes after it
  (ChatML's newline, an unanswered user turn) is never trained on.
* **Truncation** cuts after the last *whole* assistant turn that fits ``max_len``; a conversation
  whose first reply does not fit gives ``None``. No turn is ever half in.
* Special-token strings inside a message (a user typing ``"<|eot_id|>"``) are encoded as the special
  token by a ``tokenizer.json``, as ``transformers`` does by default. Clean such data first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from minift.data import COMPACT, Encoded, Example
from minift.tokenizer import AnyTokenizer

ROLES = ("system", "user", "assistant")


class ChatTemplate(NamedTuple):
    """One chat format as data. ``{content}`` marks where a message's text goes."""

    bos: str  # written once at the start ("" = none); always encoded as the tokenizer's bos_id
    system: str  # a system message
    user: str  # a user message
    assistant: str  # what opens an assistant turn: the generation prompt. Not in the loss.
    reply: str  # the assistant's own text, and anything written before the end token. In the loss.
    end: str  # the token that ends an assistant turn. In the loss; generation stops on it.
    end_is_eos: bool  # True: ``end`` is the tokenizer's EOS, whatever its text; False: a vocabulary entry
    after_end: str = ""  # written after the end token; not in the loss
    strip: bool = False  # contents are .strip()-ed first (both Llama templates do)
    llama2_turns: bool = False  # BOS before every [INST]; the system message inside the first user
    # turn; roles must alternate user/assistant (Llama-2-chat's own template raises otherwise)
    default_system: str = ""  # written as a system message when the conversation has none (SmolLM2)


CHAT_FORMATS: dict[str, ChatTemplate] = {
    # The course's headers (minift.data.COMPACT); one user + one assistant turn gives exactly the
    # ids of minift.data.encode with the "compact" prompt template.
    "compact": ChatTemplate(
        bos="<s>", system="{content}\n\n", user=COMPACT.without_input.replace("{instruction}", "{content}"),
        assistant="", reply="{content}", end="</s>", end_is_eos=True,
    ),
    "llama2": ChatTemplate(
        bos="<s>", system="<<SYS>>\n{content}\n<</SYS>>\n\n", user="[INST] {content} [/INST]",
        assistant="", reply=" {content} ", end="</s>", end_is_eos=True, strip=True, llama2_turns=True,
    ),
    "llama3": ChatTemplate(
        bos="<|begin_of_text|>",
        system="<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",
        user="<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>",
        assistant="<|start_header_id|>assistant<|end_header_id|>\n\n",
        reply="{content}", end="<|eot_id|>", end_is_eos=False, strip=True,
    ),
    "chatml": ChatTemplate(
        bos="", system="<|im_start|>system\n{content}<|im_end|>\n", user="<|im_start|>user\n{content}<|im_end|>\n",
        assistant="<|im_start|>assistant\n", reply="{content}", end="<|im_end|>", end_is_eos=False, after_end="\n",
    ),
}
# SmolLM2-Instruct: ChatML, with a system message of its own when the conversation brings none.
CHAT_FORMATS["smollm2"] = CHAT_FORMATS["chatml"]._replace(
    default_system="You are a helpful AI assistant named SmolLM, trained by Hugging Face")
CHAT_TEMPLATES: tuple[str, ...] = tuple(CHAT_FORMATS)


def get_chat_template(name: str) -> ChatTemplate:
    """The chat template called ``name``; a ValueError lists the known ones."""
    if name not in CHAT_FORMATS:
        raise ValueError(f"unknown chat template {name!r}; known chat templates: {', '.join(CHAT_TEMPLATES)}")
    return CHAT_FORMATS[name]


# --- a conversation as segments: text, BOS, end-of-turn -----------------------------------------


def segments(
    messages: Sequence[dict[str, str]], t: ChatTemplate, *, add_generation_prompt: bool = False,
    prefix_space: bool = False,
) -> Iterator[tuple[str, str, bool]]:
    """The conversation as ``(kind, text, in_loss)``; kind is ``"bos"``, ``"end"`` or ``"text"``.

    Joining the texts gives the rendered conversation. ``prefix_space``: the tokenizer writes a
    space in front of every text itself, so a reply's leading space is left to it (module docstring).
    """
    system, turns = None, list(messages)
    if t.llama2_turns:
        if turns and turns[0]["role"] == "system":
            system, turns = turns[0]["content"], turns[1:]
        roles = [m["role"] for m in turns]
        if roles != [("user", "assistant")[i % 2] for i in range(len(roles))]:
            raise ValueError(
                f"template 'llama2': after one optional first system message, roles must alternate "
                f"user/assistant/user/... (as Llama-2-chat's template requires); got {roles}"
            )
    elif t.bos:
        yield "bos", t.bos, False
    if t.default_system and not (turns and turns[0]["role"] == "system"):
        yield "text", t.system.format(content=t.default_system), False
    reply = t.reply[1:] if prefix_space and t.reply.startswith(" ") else t.reply
    for i, message in enumerate(turns):
        role, content = message["role"], message["content"]
        if system is not None and i == 0:
            content = t.system.format(content=system) + content  # Llama-2: stripped together below
        if t.strip:
            content = content.strip()
        if role == "assistant":
            yield "text", t.assistant, False
            yield "text", reply.format(content=content), True
            yield "end", t.end, True
            yield "text", t.after_end, False
            continue
        if t.llama2_turns:
            yield "bos", t.bos, False
        yield "text", (t.user if role == "user" else t.system).format(content=content), False
    if add_generation_prompt:
        yield "text", t.assistant, False


def render_chat(messages: Sequence[dict[str, str]], template: str, add_generation_prompt: bool = False) -> str:
    """The conversation as text, as the family's official template renders it (for reading, and
    for checking against ``transformers``). BOS and end tokens appear as the template writes them.
    ``add_generation_prompt`` appends what opens the assistant's next turn."""
    check_messages(messages, "conversation", need_assistant=False)
    t = get_chat_template(template)
    return "".join(text for _, text, _ in segments(messages, t, add_generation_prompt=add_generation_prompt))


def end_id(tokenizer: AnyTokenizer, template: str) -> int:
    """The id of the token that ends an assistant turn in ``template``; a ValueError if there is none."""
    t = get_chat_template(template)
    if t.end_is_eos:
        return tokenizer.eos_id
    token = tokenizer.token_id(t.end)
    if token is None:
        raise ValueError(
            f"chat template {template!r} ends each turn with {t.end!r}, which is not one entry of the "
            f"vocabulary of {tokenizer.path}. Use the model family's own tokenizer, or a template that "
            f"ends turns with EOS ('compact', 'llama2')."
        )
    return token


def encode_segments(
    parts: Iterator[tuple[str, str, bool]], tokenizer: AnyTokenizer, end: int
) -> tuple[list[int], list[float], list[int]]:
    """Ids, loss mask and the length after each end-of-turn token, one ``encode`` call per segment.

    Untrained text between two replies (headers, user and system turns) is encoded as one string,
    as ``minift.data`` encodes a prompt; BOS and the end token are ids.
    """
    ids: list[int] = []
    mask: list[float] = []
    ends: list[int] = []
    waiting = ""  # untrained text not yet encoded

    def add(new_ids: list[int], in_loss: bool) -> None:
        ids.extend(new_ids)
        mask.extend([1.0 if in_loss else 0.0] * len(new_ids))

    for kind, text, in_loss in parts:
        if kind == "text" and not in_loss:
            waiting += text
            continue
        if waiting:
            add(tokenizer.encode(waiting), False)
            waiting = ""
        if kind == "bos":
            add([tokenizer.bos_id], in_loss)
        elif kind == "end":
            add([end], in_loss)
            ends.append(len(ids))
        else:
            add(tokenizer.encode(text), in_loss)
    if waiting:  # the generation prompt, or what follows the last reply
        add(tokenizer.encode(waiting), False)
    return ids, mask, ends


def encode_chat(
    messages: Sequence[dict[str, str]], tokenizer: AnyTokenizer, max_len: int, template: str = "compact"
) -> Encoded | None:
    """A conversation as ids in ``template``'s format, with the loss on every assistant reply and
    the token that ends it (module docstring). Cut after the last assistant turn that fits
    ``max_len`` whole; ``None`` if not even the first one fits."""
    check_messages(messages, "conversation")
    t = get_chat_template(template)
    parts = segments(messages, t, prefix_space=tokenizer.prefix_space)
    ids, mask, ends = encode_segments(parts, tokenizer, end_id(tokenizer, template))
    fits = [n for n in ends if n <= max_len]
    if not fits:
        return None
    return Encoded(np.asarray(ids[: fits[-1]], dtype=np.int32), np.asarray(mask[: fits[-1]], dtype=np.float32))


def encode_messages(messages: Sequence[dict[str, str]], tokenizer: AnyTokenizer, max_len: int) -> Encoded | None:
    """``encode_chat`` with the ``compact`` template (the course's own chat format).

    A system message is plain text followed by a blank line, a user turn is
    ``"### Instruction:\\n{content}\\n\\n### Response:\\n"``, and an assistant turn is its content
    followed by EOS. So ``[system: the Alpaca preamble, user: I, assistant: R]`` gives exactly the
    ids of ``minift.data.encode`` with the ``alpaca`` template.
    """
    return encode_chat(messages, tokenizer, max_len, "compact")


def chat_prompt_ids(messages: Sequence[dict[str, str]], tokenizer: AnyTokenizer, template: str) -> list[int]:
    """Ids to generate the next assistant turn from: the conversation so far (ending with a user
    turn), encoded as in training, then the template's generation prompt (the assistant header)."""
    check_messages(messages, "conversation", need_assistant=False)
    if messages[-1]["role"] != "user":
        raise ValueError(
            f"conversation: the last message is a {messages[-1]['role']!r} message; a prompt for the "
            f"assistant's next turn ends with the user's message"
        )
    t = get_chat_template(template)
    parts = segments(messages, t, add_generation_prompt=True, prefix_space=tokenizer.prefix_space)
    return encode_segments(parts, tokenizer, end_id(tokenizer, template))[0]


def turn_end_ids(tokenizer: AnyTokenizer, template: str) -> list[int]:
    """The ids generation stops on: the template's end of turn, then the model's own stop ids."""
    end = end_id(tokenizer, template)
    return [end] + [i for i in tokenizer.stop_ids if i != end]


def example_messages(example: Example) -> list[dict[str, str]]:
    """An Alpaca-style example as ``[user, assistant]``, so any chat template can tune on it.

    The user turn is the instruction, then a blank line and the input when there is one (an input
    of only whitespace counts as none, as in ``minift.data.format_prompt``).
    """
    user = f"{example.instruction}\n\n{example.input}" if example.input.strip() else example.instruction
    return [{"role": "user", "content": user}, {"role": "assistant", "content": example.response}]


def check_messages(messages: Any, where: str, need_assistant: bool = True) -> None:
    """A ValueError naming ``where`` and the message unless ``messages`` is a valid conversation
    (with ``need_assistant``: one with an assistant turn to train on)."""
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"{where}: message {i} needs the fields 'role' and 'content'")
        if m["role"] not in ROLES:
            raise ValueError(f"{where}: message {i} has role {m['role']!r}; known roles: {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise ValueError(f"{where}: message {i}: 'content' must be a string")
    if need_assistant and not any(m["role"] == "assistant" for m in messages):
        raise ValueError(f"{where}: no 'assistant' message, so nothing to train on")
