"""Chat templates that travel with the model: minift's templates as Jinja, and a model's Jinja as minift's.

A Hugging Face folder (``chat_template.jinja``, or ``chat_template`` in ``tokenizer_config.json``)
and a GGUF file (``tokenizer.chat_template``) carry the model's chat format as a Jinja program that
``transformers.apply_chat_template`` runs. minift keeps each format as data (``minift.chat``), which
is what its loss mask needs; this module is the bridge both ways:

* ``chat_jinja(name)`` writes minift's template ``name`` as Jinja, and ``instruction_jinja(name)``
  a course instruction template (``minift.data``: the user turn is ``"instruction\\n\\ninput"``,
  cut at its first blank line, as ``minift.chat.example_messages`` joins them), so an exported
  model is prompted by ``transformers`` exactly as minift tuned it;
* ``match_chat_template(source)`` renders a few probe conversations with the model's own Jinja and
  with each of minift's templates, and names the one that writes every probe the same (or None).

Rendering follows ``transformers``: a sandboxed environment with ``trim_blocks`` and
``lstrip_blocks``, ``bos_token``/``eos_token`` as variables, and ``raise_exception`` for the
templates that reject a conversation. The Jinja needs the ``jinja2`` library (``minift[gguf]``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

from minift.chat import CHAT_FORMATS, ChatTemplate, get_chat_template, render_chat
from minift.data import get_template
from minift.files import read_text
from minift.tokenizer import AnyTokenizer, read_config

# Optional (``pip install 'minift[gguf]'``); looked up so that the import still sits at the module's top.
sandbox = importlib.import_module("jinja2.sandbox") if importlib.util.find_spec("jinja2") else None

# Conversations that tell the formats apart: with and without a system message, one and two turns,
# text that the Llama templates strip, and a prompt for the next turn.
PROBES: tuple[tuple[list[dict[str, str]], bool], ...] = (
    ([{"role": "user", "content": "Name a colour."}], True),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
      {"role": "assistant", "content": "Red."}, {"role": "user", "content": " And a fruit? "}], True),
    ([{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"}], False),
)


def _text(s: str) -> str:
    """A Jinja string literal of ``s`` (JSON's escapes are Jinja's too)."""
    return json.dumps(s)


def _wrap(pattern: str, content: str) -> str:
    """A Jinja expression for ``pattern`` (with one ``{content}``) around the expression ``content``."""
    before, _, after = pattern.partition("{content}")
    return " + ".join(p for p in (_text(before) if before else "", content, _text(after) if after else "") if p)


def chat_jinja(name: str) -> str:
    """minift's chat template ``name`` as the Jinja program ``transformers`` runs (module docstring)."""
    t: ChatTemplate = get_chat_template(name)
    content = "(message['content'] | trim)" if t.strip else "message['content']"
    end = "eos_token" if t.end_is_eos else _text(t.end)
    assistant = " + ".join(p for p in (_text(t.assistant) if t.assistant else "", _wrap(t.reply, content), end,
                                       _text(t.after_end) if t.after_end else "") if p)
    if t.llama2_turns:  # the system message goes inside the first user turn; BOS before each [INST]
        system_block = _wrap(t.system, "messages[0]['content']")
        return (
            "{%- if messages and messages[0]['role'] == 'system' -%}\n"
            f"{{%- set system = {system_block} -%}}{{%- set turns = messages[1:] -%}}\n"
            "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}\n"
            "{%- for message in turns -%}\n"
            "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
            "{{ raise_exception('roles must alternate user/assistant/user/...') }}{%- endif -%}\n"
            "{%- if message['role'] == 'assistant' -%}"
            f"{{{{ {assistant} }}}}\n"
            "{%- else -%}"
            f"{{%- set user = (system if loop.first else '') + message['content'] -%}}"
            f"{{{{ bos_token + {_wrap(t.user, '(user | trim)')} }}}}\n"
            "{%- endif -%}\n"
            "{%- endfor -%}\n"
        )
    lines = []
    if t.bos:
        lines.append("{{ bos_token }}")
    if t.default_system:
        lines.append("{%- if not messages or messages[0]['role'] != 'system' -%}"
                     f"{{{{ {_text(t.system.format(content=t.default_system))} }}}}{{%- endif -%}}")
    lines += [
        "{%- for message in messages -%}",
        f"{{%- if message['role'] == 'assistant' -%}}{{{{ {assistant} }}}}",
        f"{{%- elif message['role'] == 'user' -%}}{{{{ {_wrap(t.user, content)} }}}}",
        f"{{%- else -%}}{{{{ {_wrap(t.system, content)} }}}}",
        "{%- endif -%}",
        "{%- endfor -%}",
    ]
    if t.assistant:
        lines.append(f"{{%- if add_generation_prompt -%}}{{{{ {_text(t.assistant)} }}}}{{%- endif -%}}")
    return "\n".join(lines) + "\n"


def instruction_jinja(name: str) -> str:
    """A course instruction template (``minift.data``) as Jinja: BOS, each user turn written as the
    prompt of ``"instruction\\n\\ninput"`` (cut at its first blank line), each reply then EOS."""
    t = get_template(name)
    with_input = t.with_input.replace("{instruction}", "{content}").split("{input}")
    return (
        "{{ bos_token }}\n"
        "{%- for message in messages -%}\n"
        "{%- if message['role'] == 'assistant' -%}{{ message['content'] + eos_token }}\n"
        "{%- elif message['role'] == 'user' -%}\n"
        "{%- set parts = message['content'].split('\\n\\n', 1) -%}\n"
        "{%- if parts | length > 1 and parts[1] | trim -%}"
        f"{{{{ {_wrap(with_input[0], 'parts[0]')} + parts[1] + {_text(with_input[1])} }}}}\n"
        f"{{%- else -%}}{{{{ {_wrap(t.without_input.replace('{instruction}', '{content}'), 'parts[0]')} }}}}"
        "{%- endif -%}\n"
        "{%- endif -%}\n"
        "{%- endfor -%}\n"
    )


def render_jinja(source: str, messages: Sequence[dict[str, str]], *, add_generation_prompt: bool = False,
                 bos_token: str = "<s>", eos_token: str = "</s>") -> str:
    """``messages`` rendered by the Jinja chat template ``source``, as ``transformers`` renders it."""
    if sandbox is None:
        raise ImportError("rendering a Jinja chat template needs the `jinja2` library: pip install 'minift[gguf]'")

    def raise_exception(message: str) -> None:
        raise ValueError(f"chat template: {message}")

    env = sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source).render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                                          bos_token=bos_token, eos_token=eos_token)


def match_chat_template(source: str, *, bos_token: str = "<s>", eos_token: str = "</s>") -> str | None:
    """The name of minift's chat template that renders every probe conversation exactly as the Jinja
    ``source`` does, or None. ``bos_token``/``eos_token``: the model's (the text ``source`` writes)."""
    rendered = []
    for messages, prompt in PROBES:
        try:
            rendered.append(render_jinja(source, messages, add_generation_prompt=prompt, bos_token=bos_token,
                                         eos_token=eos_token))
        except Exception:  # a template that rejects a probe (e.g. a system message) is not a known one
            rendered.append(None)
    for name, t in CHAT_FORMATS.items():
        ours = []
        for messages, prompt in PROBES:
            text = render_chat(messages, name, add_generation_prompt=prompt)
            if t.end_is_eos:  # minift writes the template's own BOS/EOS text; the model's may differ
                text = text.replace(t.end, eos_token)
            ours.append(text.replace(t.bos, bos_token, 1) if t.bos else text)
        if ours == rendered:
            return name
    return None


def model_chat_template(source: str | None, tokenizer: AnyTokenizer) -> str | None:
    """The minift chat template a model's own Jinja ``source`` is, with the model's BOS/EOS text."""
    if not source:
        return None
    return match_chat_template(source, bos_token=tokenizer.id_to_piece(tokenizer.bos_id),
                               eos_token=tokenizer.id_to_piece(tokenizer.eos_id))


def read_chat_jinja(folder: str | Path) -> str | None:
    """A Hugging Face folder's chat template: ``chat_template.jinja``, else ``tokenizer_config.json``'s
    ``chat_template`` (a string, or a list of named ones: the one called "default")."""
    folder = Path(folder)
    if (folder / "chat_template.jinja").is_file():
        return read_text(folder / "chat_template.jinja", "chat template")
    value = read_config(folder / "tokenizer_config.json").get("chat_template")
    if isinstance(value, list):
        value = next((t.get("template") for t in value if isinstance(t, dict) and t.get("name") == "default"), None)
    return value if isinstance(value, str) else None
