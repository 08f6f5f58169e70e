"""minift.chat: a conversation trains on every assistant turn and its EOS, nothing else; one
exchange with the Alpaca preamble is exactly the Alpaca encoding of the same example."""

from __future__ import annotations

import numpy as np
import pytest

from minift import data
from minift.chat import encode_messages
from minift.data import Example, encode
from minift.tokenizer import Tokenizer, train_tokenizer

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
