"""minift.chat: a conversation trains on every assistant turn and its end token, nothing else; one
exchange with the Alpaca preamble is exactly the Alpaca encoding of the same example; each chat
template renders exactly as its family's official template does in `transformers`.

Fixtures (tests/fixtures/tokenizers/, written by make_fixtures.py there): chat_templates.json holds the
official jinja templates (with their sources), the test conversations, and the text
`transformers.apply_chat_template` rendered for each, so the rendering tests run without
transformers; with it installed they also compare live. llama3_style/ is a Llama-3-layout
tokenizer.json (see tests/test_tokenizer.py).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest

from minift import data
from minift.chat import (
    CHAT_FORMATS,
    CHAT_TEMPLATES,
    chat_prompt_ids,
    encode_chat,
    encode_messages,
    example_messages,
    render_chat,
    turn_end_ids,
)
from minift.data import Example, encode
from minift.files import read_json, read_text
from minift.formats import load_examples
from minift.tokenizer import Tokenizer, load_tokenizer, train_tokenizer

try:
    import transformers
except ImportError:  # the live comparison needs it; the committed goldens do not
    transformers = None

FIXTURES = Path(__file__).parent / "fixtures" / "tokenizers"
CHAT_FIXTURE = read_json(FIXTURES / "chat_templates.json")
CONVERSATIONS = CHAT_FIXTURE["conversations"]
OFFICIAL = ("llama2", "llama3", "chatml")
CHAT_SYMBOLS = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>"]

EX = Example("Translate the sentence into Vietnamese.", "The cat sat on the mat.", "Con mèo ngồi trên tấm thảm.")


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Tokenizer:
    texts = [EX.instruction, EX.input, EX.response, "Tôi yêu tiếng Việt. 42"] * 3
    texts += [t for tpl in data.TEMPLATES.values() for t in tpl]
    return train_tokenizer([], tmp_path_factory.mktemp("tok") / "tiny.model", 400, texts=texts)


def test_single_exchange_conversation_equals_the_alpaca_encoding(tok):
    ex = EX._replace(input="")
    preamble = data.ALPACA.without_input.split("\n\n### Instruction:")[0]
    messages = [
        {"role": "system", "content": preamble},
        {"role": "user", "content": ex.instruction},
        {"role": "assistant", "content": ex.response},
    ]
    a, b = encode_messages(messages, tok, 256), encode(ex, tok, 256)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.loss_mask, b.loss_mask)


def test_every_assistant_turn_and_its_eos_is_in_the_loss(tok):
    replies = ["Con mèo.", "Tôi yêu tiếng Việt.", "42"]
    messages = []
    for i, reply in enumerate(replies):
        messages += [{"role": "user", "content": f"Question {i}"}, {"role": "assistant", "content": reply}]
    enc = encode_messages(messages, tok, 1000)
    expected = [i for r in replies for i in tok.encode(r) + [tok.eos_id]]
    assert enc.ids[enc.loss_mask == 1].tolist() == expected
    # too long: cut after the last assistant turn that fits whole
    two = encode_messages(messages[:4], tok, 1000)
    cut = encode_messages(messages, tok, len(two.ids) + 2)
    np.testing.assert_array_equal(cut.ids, two.ids)
    assert encode_messages(messages, tok, 3) is None
    with pytest.raises(ValueError, match="known roles: system, user, assistant"):
        encode_messages([{"role": "bot", "content": "x"}], tok, 100)
    with pytest.raises(ValueError, match="no 'assistant' message"):
        encode_messages([{"role": "user", "content": "x"}], tok, 100)


# --- shared: the two tokenizer formats -----------------------------------------------------------


@pytest.fixture(scope="module")
def json_tok():
    """Llama-3 layout tokenizer.json: BOS 400, EOS 401, stop ids [401, <|eot_id|> 404]."""
    return load_tokenizer(FIXTURES / "llama3_style")


@pytest.fixture(scope="module")
def sp_tok(tmp_path_factory) -> Tokenizer:
    """A Llama-2-layout SentencePiece model (unk 0, bos 1, eos 2, no pad: pad_id == eos_id) that also
    has the chat tokens as pieces, so every template works on it."""
    texts = [m["content"] for c in CONVERSATIONS for m in c] * 2 + [t for tpl in data.TEMPLATES.values() for t in tpl]
    path = tmp_path_factory.mktemp("sp") / "tokenizer.model"
    return train_tokenizer([], path, 600, texts=texts, pad_id=-1, unk_id=0, bos_id=1, eos_id=2, user_symbols=CHAT_SYMBOLS)


@pytest.fixture(params=["json", "sentencepiece"])
def any_tok(request, json_tok, sp_tok):
    return json_tok if request.param == "json" else sp_tok


def loss_runs(enc) -> list[list[int]]:
    """The ids of each maximal run of loss_mask == 1 (one run per assistant turn)."""
    runs, current = [], []
    for i, m in zip(enc.ids.tolist(), enc.loss_mask.tolist()):
        if m == 1:
            current.append(i)
        elif current:
            runs, current = runs + [current], []
    return runs + [current] if current else runs


def replies(messages) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "assistant"]


def until_last_reply(messages):
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[: last + 1]


# --- (a) rendering: the official templates, via transformers --------------------------------------


@pytest.mark.parametrize("template", OFFICIAL)
@pytest.mark.parametrize("i", range(len(CONVERSATIONS)))
def test_render_equals_the_official_template(template, i):
    golden = CHAT_FIXTURE["golden"][template][i]
    assert render_chat(CONVERSATIONS[i], template) == golden["text"]
    assert render_chat(CONVERSATIONS[i], template, add_generation_prompt=True) == golden["prompt"]


@pytest.fixture(scope="module")
def hf_tokenizer():
    if transformers is None:
        pytest.skip("transformers is not installed; the committed goldens above cover the rendering")
    return transformers.AutoTokenizer.from_pretrained(FIXTURES / "llama3_style")


def official(hf_tokenizer, template: str, messages, add_generation_prompt: bool = False) -> str:
    t = CHAT_FIXTURE["templates"][template]
    return hf_tokenizer.apply_chat_template(
        messages, chat_template=t["jinja"], tokenize=False, add_generation_prompt=add_generation_prompt,
        bos_token=t["bos_token"], eos_token=t["eos_token"],
    )


@pytest.mark.parametrize("template", OFFICIAL)
def test_render_equals_transformers_live(hf_tokenizer, template):
    extra = [  # beyond the goldens: empty contents, one turn, a long multi-turn exchange
        [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}],
        [{"role": "user", "content": "Tôi yêu tiếng Việt."}],
        [m for i in range(4) for m in ({"role": "user", "content": f" câu hỏi {i} "},
                                       {"role": "assistant", "content": f"trả lời {i}\n"})],
    ]
    for messages in CONVERSATIONS + extra:
        for gen in (False, True):
            assert render_chat(messages, template, gen) == official(hf_tokenizer, template, messages, gen)


def test_llama2_refuses_what_the_official_template_refuses(hf_tokenizer):
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]
    with pytest.raises(ValueError, match="roles must alternate"):
        render_chat(bad, "llama2")
    with pytest.raises(Exception, match="Conversation roles must alternate"):
        official(hf_tokenizer, "llama2", bad)
    render_chat(bad, "llama3")  # the others accept any order


# --- (b) ids and the loss mask ---------------------------------------------------------------------


@pytest.mark.parametrize("template", CHAT_TEMPLATES)
@pytest.mark.parametrize("i", range(len(CONVERSATIONS)))
def test_the_loss_is_each_reply_and_its_end_token_only(any_tok, template, i):
    messages = CONVERSATIONS[i]
    enc = encode_chat(messages, any_tok, 10_000, template)
    end = turn_end_ids(any_tok, template)[0]
    runs = loss_runs(enc)
    assert len(runs) == len(replies(messages))  # one run per assistant turn
    for run, reply in zip(runs, replies(messages)):
        assert run[-1] == end and end not in run[:-1]
        # the reply's own text, nothing else (llama2 writes a space on each side of it)
        assert any_tok.decode(run[:-1]).strip() == reply.strip()
    assert enc.loss_mask.sum() == sum(map(len, runs))
    assert enc.ids[-1] == end and enc.loss_mask[-1] == 1  # a row ends with the last end token
    if CHAT_FORMATS[template].bos:  # ChatML (and SmolLM2's) writes no BOS
        assert enc.ids[0] == any_tok.bos_id and enc.loss_mask[0] == 0


def test_eos_stays_in_the_loss_when_padding_is_eos(sp_tok):
    # Llama-2 has no pad piece: pad_id == eos_id. A loss mask computed as `target != pad_id` would drop
    # the EOS that ends every reply -- the model would never learn to stop. The mask is explicit.
    assert sp_tok.pad_id == sp_tok.eos_id
    for template in ("compact", "llama2"):
        enc = encode_chat(CONVERSATIONS[2], sp_tok, 10_000, template)
        (batch,) = data.batches([enc], 2, buckets=(256,), pad_id=sp_tok.pad_id, seed=0, shuffle=False)
        eos_targets = (batch.targets[0] == sp_tok.eos_id) & (batch.loss_mask[0] == 1)
        assert eos_targets.sum() == 2  # both replies' EOS are trained on
        assert batch.loss_mask.sum() == enc.loss_mask[1:].sum()  # and no padding is


@pytest.mark.parametrize("template", CHAT_TEMPLATES)
def test_truncation_keeps_whole_turns_only(any_tok, template):
    messages = CONVERSATIONS[2] + [{"role": "user", "content": "Và 7 cộng 8?"}, {"role": "assistant", "content": "15"}]
    full = encode_chat(messages, any_tok, 10_000, template)
    end = turn_end_ids(any_tok, template)[0]
    turn_ends = [n + 1 for n, (i, m) in enumerate(zip(full.ids, full.loss_mask)) if i == end and m == 1]
    assert len(turn_ends) == 3 and turn_ends[-1] == len(full.ids)
    for max_len in range(1, len(full.ids) + 2):
        cut = encode_chat(messages, any_tok, max_len, template)
        fitting = [n for n in turn_ends if n <= max_len]
        if not fitting:
            assert cut is None  # the first reply does not fit: nothing to train on
            continue
        np.testing.assert_array_equal(cut.ids, full.ids[: fitting[-1]])
        np.testing.assert_array_equal(cut.loss_mask, full.loss_mask[: fitting[-1]])


@pytest.mark.parametrize("template", ["llama3", "chatml"])
@pytest.mark.parametrize("i", range(len(CONVERSATIONS)))
def test_segment_ids_equal_the_whole_rendered_string(json_tok, template, i):
    # special tokens split the text, so encoding segment by segment changes nothing -- except where a
    # ChatML reply starts with a newline, which BPE merges with the header's ("\n" + "\n" -> "ĊĊ")
    messages = until_last_reply(CONVERSATIONS[i])
    rendered = render_chat(messages, template).removesuffix(CHAT_FORMATS[template].after_end)
    same = encode_chat(messages, json_tok, 10_000, template).ids.tolist() == json_tok.encode(rendered)
    starts_with_newline = any(r.startswith("\n") for r in replies(messages))
    assert same == (template == "llama3" or not starts_with_newline)


def test_llama2_ids_equal_metas_own_encoding(sp_tok):
    # Meta's llama/generation.py: each exchange is encode(f"[INST] {user} [/INST] {reply} ", bos, eos),
    # with the system block inside the first user message
    system, *turns = CONVERSATIONS[2]
    expected = []
    for k in range(0, len(turns), 2):
        user = turns[k]["content"]
        if k == 0:
            user = f"<<SYS>>\n{system['content']}\n<</SYS>>\n\n{user}"
        text = f"[INST] {user.strip()} [/INST] {turns[k + 1]['content'].strip()} "
        expected += sp_tok.encode(text, bos=True, eos=True)
    assert encode_chat(CONVERSATIONS[2], sp_tok, 10_000, "llama2").ids.tolist() == expected


@pytest.mark.parametrize("template", CHAT_TEMPLATES)
def test_generation_prompt_is_the_training_prefix(any_tok, template):
    # what the model reads when it generates is exactly what it read in training before the reply
    question = CONVERSATIONS[4]
    prompt = chat_prompt_ids(question, any_tok, template)
    trained = encode_chat(question + [{"role": "assistant", "content": "Pháp."}], any_tok, 10_000, template)
    assert trained.ids[: len(prompt)].tolist() == prompt
    first_reply, _ = loss_runs(trained)
    assert trained.loss_mask[: len(prompt)].sum() == len(first_reply)  # the earlier reply, whole
    assert trained.loss_mask[len(prompt)] == 1  # the next id is the reply's first
    if template in ("llama3", "chatml") and any_tok.prefix_space is False:
        assert prompt == any_tok.encode(render_chat(question, template, add_generation_prompt=True))
    with pytest.raises(ValueError, match="ends with the user's message"):
        chat_prompt_ids(CONVERSATIONS[0], any_tok, template)


def test_turn_end_ids(json_tok, sp_tok, tok):
    assert turn_end_ids(json_tok, "llama3") == [404, 401]  # <|eot_id|>, then the model's other stop id
    assert turn_end_ids(json_tok, "chatml") == [406, 401, 404]
    assert turn_end_ids(json_tok, "compact") == turn_end_ids(json_tok, "llama2") == [401, 404]
    assert turn_end_ids(sp_tok, "llama2") == [2]
    with pytest.raises(ValueError, match="'llama3' ends each turn with '<\\|eot_id\\|>', which is not one entry"):
        encode_chat(CONVERSATIONS[0], tok, 100, "llama3")  # a tokenizer without the chat tokens
    with pytest.raises(ValueError, match="known chat templates: compact, llama2, llama3, chatml"):
        render_chat(CONVERSATIONS[0], "zephyr")


def test_compact_template_is_encode_messages(tok):
    for messages in CONVERSATIONS:
        if any(m["role"] == "assistant" for m in messages):
            a, b = encode_chat(messages, tok, 10_000, "compact"), encode_messages(messages, tok, 10_000)
            np.testing.assert_array_equal(a.ids, b.ids)
            np.testing.assert_array_equal(a.loss_mask, b.loss_mask)


def test_example_messages(tok):
    assert example_messages(EX) == [
        {"role": "user", "content": f"{EX.instruction}\n\n{EX.input}"}, {"role": "assistant", "content": EX.response}
    ]
    no_input = EX._replace(input="  ")
    assert example_messages(no_input)[0]["content"] == EX.instruction
    # without an input, the compact chat encoding is the compact prompt-template encoding
    a, b = encode_chat(example_messages(no_input), tok, 256), encode(no_input._replace(input=""), tok, 256, "compact")
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.loss_mask, b.loss_mask)


# --- (c) the real datasets, every template, both tokenizer formats --------------------------------

ROWS = 50  # per file: enough to meet real text, fast enough for every run
# The test tokenizers are tiny (400-600 entries, ~2-3 characters a token): at 1024 ids every
# Self-Instruct, SuperNI and NTREX row fits, while long Alpaca-GPT4 answers and XQuAD passages do not.
MAX_LEN = 1024
def real_examples(root: Path) -> dict[str, list[Example]]:
    src = read_text(root / "ntrex-en-vi" / "newstest2019-src.eng.txt").splitlines()
    ref = read_text(root / "ntrex-en-vi" / "newstest2019-ref.vie.txt").splitlines()
    assert len(src) == len(ref)
    nfc = lambda s: unicodedata.normalize("NFC", s)  # noqa: E731
    ntrex = [Example("Translate the sentence into Vietnamese.", nfc(e), nfc(v)) for e, v in zip(src, ref)]
    squad = read_json(root / "xquad-vi" / "xquad.vi.json")
    xquad = [
        Example(nfc(qa["question"]), nfc(p["context"]), nfc(qa["answers"][0]["text"]))
        for article in squad["data"] for p in article["paragraphs"] for qa in p["qas"]
    ]
    (superni,) = sorted((root / "superni-tasks").glob("*.json"))
    return {
        "alpaca-gpt4": load_examples(root / "alpaca-gpt4-sample" / "alpaca_en_demo.json")[:ROWS],
        "self-instruct": load_examples(root / "self-instruct-seed" / "seed_tasks.jsonl")[:ROWS],
        "superni": load_examples(superni)[:ROWS],
        "ntrex-en-vi": ntrex[:ROWS],
        "xquad-vi": xquad[:: len(xquad) // ROWS][:ROWS],  # spread over the articles
    }


def test_real_datasets_in_every_template(shared_data, json_tok, sp_tok):
    examples = real_examples(shared_data)
    dropped = {}
    for name, rows in examples.items():
        assert len(rows) == min(ROWS, 29 if name == "superni" else ROWS)
        for tok_name, tok in (("json", json_tok), ("sentencepiece", sp_tok)):
            for template in CHAT_TEMPLATES:
                end = turn_end_ids(tok, template)[0]
                kept = 0
                for ex in rows:
                    messages = example_messages(ex)
                    full = encode_chat(messages, tok, 1 << 20, template)
                    enc = encode_chat(messages, tok, MAX_LEN, template)
                    if enc is None:  # dropped exactly when the whole exchange is longer than MAX_LEN
                        assert len(full.ids) > MAX_LEN
                        continue
                    kept += 1
                    np.testing.assert_array_equal(enc.ids, full.ids)  # one turn: never cut
                    (run,) = loss_runs(enc)
                    assert run[-1] == end and len(run) >= 1
                    assert tok.decode(run[:-1]).strip() == ex.response.strip(), (name, template)
                dropped[name, tok_name, template] = len(rows) - kept
    # nothing is lost silently: the short datasets lose nothing, the long ones lose exactly the rows
    # whose rendered text (encoded in one piece, not by segments) is longer than MAX_LEN
    for (name, tok_name, template), n in dropped.items():
        if name not in ("alpaca-gpt4", "xquad-vi"):
            assert n == 0, (name, tok_name, template, n)
    for name in ("alpaca-gpt4", "xquad-vi"):
        too_long = [len(json_tok.encode(render_chat(example_messages(ex), "llama3"))) > MAX_LEN for ex in examples[name]]
        assert dropped[name, "json", "llama3"] == sum(too_long) > 0
