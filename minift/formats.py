"""Instruction data from files: the formats people publish instruction datasets in (§2.1).

Every loader turns one format into ``minift.data.Example``s (instruction, input, response),
NFC-normalised, with errors that name the file, the line (or item) and the field:

========================  ========================================================================
``minift``                JSONL: instruction, output, optional input, task, split (the course data)
``alpaca``                JSON list of {instruction, input, output} (Stanford Alpaca, Alpaca-GPT4)
``prompt_completion``     JSONL: prompt, completion (T0/P3-style prompted data, GPT-3 fine-tuning)
``self_instruct``         JSONL: instruction, instances [{input, output}] (Self-Instruct seed tasks)
``superni``               JSON: Definition, Instances (a Super-NaturalInstructions task)
``messages``              JSONL: messages [{role, content}] (chat data; ``load_conversations``)
========================  ========================================================================

``load_examples(path)`` detects the format from the first record unless told.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from minift.chat import check_messages
from minift.data import Example
from minift.files import numbered_jsonl, read_json

# format name -> what it looks like (shown in error messages)
FORMATS: dict[str, str] = {
    "minift": "JSONL: instruction, output, optional input, task, split (data/samples/instructions.jsonl)",
    "alpaca": "JSON list of {instruction, input, output} (Stanford Alpaca)",
    "prompt_completion": "JSONL: prompt, completion (a trailing '<|endoftext|>' is removed)",
    "self_instruct": "JSONL: instruction, instances [{input, output}] (Self-Instruct seed tasks)",
    "superni": "JSON: Definition, Instances [{input, output [..]}] (a Super-NaturalInstructions task)",
    "messages": "JSONL: messages [{role, content}]; load_examples takes one user->assistant exchange "
    "per line, load_conversations any number of turns",
}
END_OF_TEXT = "<|endoftext|>"


def _text(row: dict[str, Any], field: str, where: str, fmt: str, required: bool = True) -> str:
    """Field ``field`` of ``row`` as NFC text; a missing optional field or ``null`` is ``""``."""
    if field not in row or (row[field] is None and not required):
        if required:
            raise ValueError(f"{where}: missing field {field!r} (format {fmt!r}: {FORMATS[fmt]})")
        return ""
    value = row[field]
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    return unicodedata.normalize("NFC", value)


def _minift(path: Path) -> list[Example]:
    return [
        Example(
            instruction=_text(row, "instruction", where, "minift"),
            input=_text(row, "input", where, "minift", required=False),
            response=_text(row, "output", where, "minift"),
            task=_text(row, "task", where, "minift", required=False),
            split=_text(row, "split", where, "minift", required=False),
        )
        for where, row in numbered_jsonl(path)
    ]


def _alpaca(path: Path) -> list[Example]:
    items = read_json(path)
    if not isinstance(items, list):
        raise ValueError(f"{path}: format 'alpaca' is a JSON list of objects, got {type(items).__name__}")
    examples = []
    for i, row in enumerate(items):
        where = f"{path}: item {i}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object {{...}}, got {type(row).__name__}")
        examples.append(
            Example(
                instruction=_text(row, "instruction", where, "alpaca"),
                input=_text(row, "input", where, "alpaca", required=False),
                response=_text(row, "output", where, "alpaca"),
            )
        )
    return examples


def _prompt_completion(path: Path) -> list[Example]:
    examples = []
    for where, row in numbered_jsonl(path):
        completion = _text(row, "completion", where, "prompt_completion")
        if completion.endswith(END_OF_TEXT):  # GPT-3 fine-tuning's end marker; minift appends EOS
            completion = completion[: -len(END_OF_TEXT)]
        examples.append(Example(_text(row, "prompt", where, "prompt_completion"), "", completion, task=path.stem))
    return examples


def _self_instruct(path: Path) -> list[Example]:
    examples = []
    for where, row in numbered_jsonl(path):
        instruction = _text(row, "instruction", where, "self_instruct")
        instances = row.get("instances")
        if not isinstance(instances, list):
            raise ValueError(f"{where}: missing field 'instances' (format 'self_instruct': {FORMATS['self_instruct']})")
        task = str(row.get("name", row.get("id", "")))
        for j, instance in enumerate(instances):
            at = f"{where}: instance {j}"
            if not isinstance(instance, dict):
                raise ValueError(f"{at}: expected a JSON object {{input, output}}")
            examples.append(
                Example(instruction, _text(instance, "input", at, "self_instruct", required=False),
                        _text(instance, "output", at, "self_instruct"), task=task)
            )
    return examples


def _superni(path: Path) -> list[Example]:
    task = read_json(path)
    if not isinstance(task, dict):
        raise ValueError(f"{path}: format 'superni' is one JSON object, got {type(task).__name__}")
    definition = task.get("Definition")
    if isinstance(definition, list):  # newer task files hold a list of one definition
        definition = " ".join(definition)
    definition = _text({"Definition": definition}, "Definition", str(path), "superni")
    instances = task.get("Instances")
    if not isinstance(instances, list):
        raise ValueError(f"{path}: missing field 'Instances' (format 'superni': {FORMATS['superni']})")
    examples = []
    for j, instance in enumerate(instances):
        at = f"{path}: instance {j}"
        if not isinstance(instance, dict):
            raise ValueError(f"{at}: expected a JSON object {{input, output}}")
        output = instance.get("output")
        if isinstance(output, list):  # several acceptable answers: train on the first
            output = output[0] if output else ""
        examples.append(
            Example(definition, _text(instance, "input", at, "superni", required=False),
                    _text({"output": output}, "output", at, "superni"), task=path.stem)
        )
    return examples


def _conversations(path: Path) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """``("file:line", messages)`` for each conversation of a ``messages`` JSONL file."""
    for where, row in numbered_jsonl(path):
        if "messages" not in row:
            raise ValueError(f"{where}: missing field 'messages' (format 'messages': {FORMATS['messages']})")
        check_messages(row["messages"], where)
        yield where, [
            {"role": m["role"], "content": unicodedata.normalize("NFC", m["content"])} for m in row["messages"]
        ]


def load_conversations(path: str | Path) -> list[list[dict[str, str]]]:
    """The ``messages`` lists of a JSONL file, checked (roles, contents), text NFC-normalised."""
    return [messages for _, messages in _conversations(Path(path))]


def _messages(path: Path) -> list[Example]:
    """Conversations of one user turn and one assistant turn, as Examples."""
    examples = []
    for where, messages in _conversations(path):
        roles = [m["role"] for m in messages]
        if roles != ["user", "assistant"]:
            raise ValueError(
                f"{where}: the conversation has turns {roles}; load_examples takes exactly one "
                f"user turn then one assistant turn. For other conversations use "
                f"load_conversations() and minift.chat.encode_messages()."
            )
        examples.append(Example(messages[0]["content"], "", messages[1]["content"]))
    return examples


LOADERS = {
    "minift": _minift,
    "alpaca": _alpaca,
    "prompt_completion": _prompt_completion,
    "self_instruct": _self_instruct,
    "superni": _superni,
    "messages": _messages,
}


def detect_format(path: str | Path) -> str:
    """Guess a file's format from its first record's fields (``.json``: alpaca or superni)."""
    path = Path(path)
    if path.suffix == ".json":
        data = read_json(path)
        if isinstance(data, list):
            return "alpaca"
        if isinstance(data, dict) and "Instances" in data:
            return "superni"
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
    else:
        first = next(numbered_jsonl(path), None)
        if first is None:
            raise ValueError(f"{path}: no records (the file is empty)")
        row = first[1]
        for fmt, fields in (
            ("messages", {"messages"}),
            ("prompt_completion", {"prompt", "completion"}),
            ("self_instruct", {"instruction", "instances"}),
            ("minift", {"instruction"}),
        ):
            if fields <= row.keys():
                return fmt
        keys = sorted(row)
    known = "\n".join(f"  {name}: {desc}" for name, desc in FORMATS.items())
    raise ValueError(f"{path}: cannot tell the format (fields: {keys}). Pass format=... Known formats:\n{known}")


def load_examples(path: str | Path, format: str = "auto") -> list[Example]:
    """Read instruction examples from ``path`` in one of ``FORMATS`` (``"auto"``: detect it).

    Text is NFC-normalised. Examples with an empty response are kept here and skipped (and
    counted) by ``encode_dataset``.
    """
    path = Path(path)
    if format == "auto":
        format = detect_format(path)
    if format not in LOADERS:
        raise ValueError(f"unknown data format {format!r}; known formats: auto, {', '.join(LOADERS)}")
    return LOADERS[format](path)
