"""minift.chat_jinja: every minift chat template, written as Jinja, renders as minift renders it; the
official templates (and SmolLM2's) are recognised as the minift template they are; a course
instruction template's Jinja writes the course prompt. Rendering is the one ``transformers`` uses
(sandboxed, trim_blocks, lstrip_blocks); with transformers installed it is also checked live."""

from __future__ import annotations

from pathlib import Path

import pytest

from minift.chat import CHAT_FORMATS, CHAT_TEMPLATES, render_chat
from minift.chat_jinja import PROBES, chat_jinja, instruction_jinja, match_chat_template, render_jinja
from minift.data import TEMPLATES, Example, format_prompt
from minift.files import read_json

pytest.importorskip("jinja2")
FIXTURE = read_json(Path(__file__).parent / "fixtures" / "tokenizers" / "chat_templates.json")
CONVERSATIONS = FIXTURE["conversations"] + [p[0] for p in PROBES]
# SmolLM2-135M-Instruct's own template, as its GGUF file (tokenizer.chat_template) carries it.
SMOLLM2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>"
           "system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
           "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIALS = {"llama2": ("<s>", "</s>"), "llama3": ("<|begin_of_text|>", "<|end_of_text|>"), "chatml": ("<s>", "</s>")}


@pytest.mark.parametrize("name", CHAT_TEMPLATES)
def test_each_template_as_jinja_renders_as_minift_does(name):
    source, checked = chat_jinja(name), 0
    t = CHAT_FORMATS[name]  # the model's BOS/EOS text is what minift's template writes for them
    specials = dict(bos_token=t.bos or "<s>", eos_token=t.end if t.end_is_eos else "</s>")
    for messages in CONVERSATIONS:
        for prompt in (False, True):
            try:
                ours = render_chat(messages, name, add_generation_prompt=prompt)
            except ValueError:  # llama2 refuses roles that do not alternate; so must its Jinja
                with pytest.raises(ValueError, match="alternate"):
                    render_jinja(source, messages, add_generation_prompt=prompt, **specials)
                continue
            assert render_jinja(source, messages, add_generation_prompt=prompt, **specials) == ours
            checked += 1
    assert checked >= 2 * len(FIXTURE["conversations"])
    assert match_chat_template(source, **specials) == name


@pytest.mark.parametrize("name", sorted(SPECIALS))
def test_the_official_templates_are_recognised(name):
    bos, eos = SPECIALS[name]
    assert match_chat_template(FIXTURE["templates"][name]["jinja"], bos_token=bos, eos_token=eos) == name


def test_smollm2s_template_is_chatml_with_its_system_message():
    assert match_chat_template(SMOLLM2, bos_token="<|im_start|>", eos_token="<|im_end|>") == "smollm2"
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    assert render_jinja(SMOLLM2, messages, add_generation_prompt=True) == render_chat(messages, "smollm2", True)
    assert render_chat(messages, "smollm2", True).startswith("<|im_start|>system\nYou are a helpful AI")


def test_an_unknown_template_is_not_matched():
    assert match_chat_template("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}") is None
    assert match_chat_template("{{ raise_exception('no') }}") is None


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_instruction_template_as_jinja_writes_the_course_prompt(template):
    source = instruction_jinja(template)
    for ex in (Example("Reverse the words.", "mèo chó gà", "gà chó mèo"), Example("Name a colour.", "", "red"),
               Example("Count the words.", "  ", "0")):
        user = f"{ex.instruction}\n\n{ex.input}" if ex.input else ex.instruction
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": ex.response}]
        assert render_jinja(source, messages) == "<s>" + format_prompt(ex, template) + ex.response + "</s>"
        assert render_jinja(source, messages[:1]) == "<s>" + format_prompt(ex, template)
