"""minift.data: the loss mask covers exactly response + EOS, the shift keeps the first response token
and the EOS (also when pad == eos), truncation never cuts the response, buckets give fixed shapes
in a reproducible order. (The file loaders are tested in test_formats.py.)"""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minift import data
from minift.course.bundled import default_tokenizer
from minift.data import Encoded, Example, batches, encode, encode_dataset, format_prompt
from minift.formats import load_examples
from minift.tokenizer import Tokenizer, train_tokenizer

CORPUS = [
    "The cat sat on the mat. The dog sat on the log.",
    "Translate the sentence into Vietnamese. Hãy dịch câu này sang tiếng Việt.",
    "Tôi yêu tiếng Việt và những món ăn Việt Nam: phở, bún chả, bánh mì.",
    "Add 12 and 30. The answer is 42.",
] * 3
VOCAB = 400


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Tokenizer:
    """A small tokenizer (pad 0, unk 1, bos 2, eos 3), independent of the committed model."""
    texts = CORPUS + [t for tpl in data.TEMPLATES.values() for t in tpl]
    return train_tokenizer([], tmp_path_factory.mktemp("tok") / "tiny.model", VOCAB, texts=texts)


@pytest.fixture(scope="module")
def llama_tok(tmp_path_factory) -> Tokenizer:
    """Llama-2's layout: no pad piece, so pad_id == eos_id."""
    texts = CORPUS + [t for tpl in data.TEMPLATES.values() for t in tpl]
    path = tmp_path_factory.mktemp("llama") / "llama.model"
    train_tokenizer([], path, VOCAB, texts=texts, pad_id=-1, unk_id=0, bos_id=1, eos_id=2)
    return Tokenizer.load(path)


EX = Example("Translate the sentence into Vietnamese.", "The cat sat on the mat.", "Con mèo ngồi trên tấm thảm.")


# --- template ---------------------------------------------------------------------------------


def test_format_prompt_with_and_without_input():
    with_input = format_prompt(EX)
    assert with_input.startswith("Below is an instruction that describes a task, paired with an input")
    assert with_input.endswith(f"### Instruction:\n{EX.instruction}\n\n### Input:\n{EX.input}\n\n### Response:\n")
    no_input = format_prompt(EX._replace(input=" \n"))  # whitespace-only input counts as none
    assert "### Input:" not in no_input and no_input.endswith("### Response:\n")
    assert format_prompt(EX, "compact") == f"### Instruction:\n{EX.instruction}\n\n### Input:\n{EX.input}\n\n### Response:\n"
    # braces in the data are text, not format fields
    assert "{input}" in format_prompt(Example("say {input}", "", "x"))


def test_inline_template_gives_input_words_the_pieces_the_response_uses(course_tokenizer):
    # With a dummy-prefix tokenizer, a word after a newline is another piece than after a space:
    # copying the first input word needs a piece mapping with "compact", none with "inline".
    ex = Example("Give the first word.", "tiger fish", "tiger")
    answer = course_tokenizer.encode(ex.response)  # encoded alone, as minift.data encodes responses

    def contains(ids, part):
        return any(ids[i : i + len(part)] == part for i in range(len(ids)))

    assert contains(course_tokenizer.encode(format_prompt(ex, "inline")), answer)
    assert not contains(course_tokenizer.encode(format_prompt(ex, "compact")), answer)
    assert format_prompt(ex, "inline") == "### Instruction: Give the first word.\n### Input: tiger fish\n### Response:\n"


def test_unknown_template_lists_the_known_ones(tok):
    with pytest.raises(ValueError, match="unknown prompt template 'chatml'.*alpaca, compact"):
        encode(EX, tok, 100, template="chatml")


# --- encode: the loss mask --------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\u2581"), max_size=40)


@settings(max_examples=100, deadline=None)
@given(instruction=TEXT, input=TEXT, response=TEXT.filter(lambda s: s.strip()))
def test_loss_mask_is_exactly_response_and_eos(tok, instruction, input, response):
    ex = Example(*(unicodedata.normalize("NFC", s) for s in (instruction, input, response)))
    enc = encode(ex, tok, max_len=10_000)
    ids, mask = enc.ids, enc.loss_mask
    assert ids.dtype == np.int32 and mask.dtype == np.float32 and ids.shape == mask.shape
    response_ids = tok.encode(ex.response)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert np.all(np.diff(mask) >= 0)  # zeros (BOS + prompt), then ones (response + EOS)
    assert mask.sum() == len(response_ids) + 1
    assert ids[mask == 1].tolist() == response_ids + [tok.eos_id]
    assert tok.decode(ids[mask == 0]) == format_prompt(ex)  # the rest is exactly the prompt


def test_first_response_token_and_eos_are_in_the_loss_after_the_shift(tok):
    enc = encode(EX, tok, 256)
    prompt_ids, response_ids = tok.encode(format_prompt(EX)), tok.encode(EX.response)
    (batch,) = batches([enc], 1, buckets=(256,), pad_id=tok.pad_id, seed=0)
    t = len(prompt_ids)  # step whose input is the last prompt token
    assert batch.tokens[0, t] == prompt_ids[-1]
    assert batch.targets[0, t] == response_ids[0]
    assert batch.loss_mask[0, t] == 1.0  # the first response token is trained on
    assert batch.loss_mask[0, t - 1] == 0.0  # predicting the last prompt token is not
    end = t + len(response_ids)
    assert batch.targets[0, end] == tok.eos_id and batch.loss_mask[0, end] == 1.0
    assert batch.loss_mask[0].sum() == len(response_ids) + 1
    assert batch.loss_mask[0, end + 1 :].sum() == 0  # padding


def test_eos_stays_in_the_loss_when_pad_is_eos(llama_tok):
    tok = llama_tok
    assert tok.pad_id == tok.eos_id
    short = encode(EX._replace(response="Con mèo."), tok, 256)
    long = encode(EX, tok, 256)
    (batch,) = batches([short, long], 2, buckets=(256,), pad_id=tok.pad_id, seed=0, shuffle=False)
    n_response = len(tok.encode("Con mèo."))
    row_targets, row_mask = batch.targets[0], batch.loss_mask[0]
    eos_step = len(short.ids) - 2
    assert row_targets[eos_step] == tok.eos_id and row_mask[eos_step] == 1.0
    assert row_mask.sum() == n_response + 1
    # the pitfall this guards against: a mask rebuilt as `targets != pad_id` drops the EOS
    naive = row_targets != tok.pad_id
    assert not naive[eos_step]


# --- truncation and the stats -----------------------------------------------------------------


def test_long_prompt_is_cut_from_the_left(tok):
    ex = EX._replace(input=" ".join(["The cat sat on the mat."] * 40))
    prompt_ids, response_ids = tok.encode(format_prompt(ex)), tok.encode(ex.response)
    max_len = len(response_ids) + 30
    enc, stats = encode_dataset([ex], tok, max_len)
    (enc,) = enc
    assert stats == data.EncodeStats(kept=1, prompt_truncated=1)
    assert len(enc.ids) == max_len and enc.ids[0] == tok.bos_id
    room = max_len - 2 - len(response_ids)
    assert enc.ids[1 : 1 + room].tolist() == prompt_ids[-room:]  # the prompt's end (the cue) is kept
    assert enc.ids[enc.loss_mask == 1].tolist() == response_ids + [tok.eos_id]  # response untouched


def test_response_that_cannot_fit_is_dropped_and_counted(tok):
    n = len(tok.encode(EX.response))
    assert encode(EX, tok, n + 3) is not None  # BOS + 1 prompt token + response + EOS
    assert encode(EX, tok, n + 2) is None
    examples = [EX, EX._replace(response=""), EX._replace(response="  \n"), EX._replace(response="ok")]
    encoded, stats = encode_dataset(examples, tok, n + 2)
    assert stats == data.EncodeStats(kept=1, prompt_truncated=1, dropped_too_long=1, skipped_empty_response=2)
    assert len(encoded) == stats.kept
    assert "kept 1 of 4" in str(stats)


@settings(max_examples=100, deadline=None)
@given(
    n_prompt_words=st.integers(0, 40), n_response_words=st.integers(1, 40), max_len=st.integers(3, 120)
)
def test_truncation_never_cuts_the_response(tok, n_prompt_words, n_response_words, max_len):
    words = "the cat sat on a mat and tôi yêu tiếng Việt".split()
    ex = Example(
        " ".join(words[i % len(words)] for i in range(n_prompt_words)), "",
        " ".join(words[i % len(words)] for i in range(n_response_words)),
    )
    enc = encode(ex, tok, max_len)
    response_ids = tok.encode(ex.response)
    if enc is None:
        assert max_len < len(response_ids) + 3  # dropped only when response + BOS + EOS + 1 cannot fit
    else:
        assert len(enc.ids) <= max_len
        assert enc.ids[enc.loss_mask == 1].tolist() == response_ids + [tok.eos_id]
        assert enc.loss_mask.sum() >= 2  # at least one response token and the EOS


# --- batches ----------------------------------------------------------------------------------


def _rows(lengths, seed=0) -> list[Encoded]:
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(lengths):
        ids = rng.integers(4, VOCAB, size=n).astype(np.int32)
        ids[0] = 10_000 + i  # a row id, to find each row again in the batches
        mask = (np.arange(n) >= n // 2).astype(np.float32)
        rows.append(Encoded(ids, mask))
    return rows


def _row_ids(batch):
    first = batch.tokens[:, 0]
    return [int(x) - 10_000 for x in first if x >= 10_000]


@pytest.mark.parametrize("group_by_length", [False, True])
def test_batches_have_fixed_bucket_shapes_and_cover_every_row_once(group_by_length):
    lengths = np.random.default_rng(1).integers(2, 200, size=53)
    rows = _rows(lengths)
    buckets = (32, 64, 128, 256)
    out = list(batches(rows, 8, buckets=buckets, pad_id=0, seed=3, group_by_length=group_by_length))
    seen = []
    for batch in out:
        B, T = batch.tokens.shape
        assert (B, T) == batch.targets.shape == batch.loss_mask.shape and B == 8 and T in buckets
        assert batch.tokens.dtype == batch.targets.dtype == np.int32 and batch.loss_mask.dtype == np.float32
        ids = _row_ids(batch)
        longest = max(len(rows[i].ids) - 1 for i in ids)
        assert T == min(b for b in buckets if b >= longest)  # the smallest bucket that fits
        for b, i in enumerate(ids):  # each row is the shifted example, then padding
            n = len(rows[i].ids) - 1
            np.testing.assert_array_equal(batch.tokens[b, :n], rows[i].ids[:-1])
            np.testing.assert_array_equal(batch.targets[b, :n], rows[i].ids[1:])
            np.testing.assert_array_equal(batch.loss_mask[b, :n], rows[i].loss_mask[1:])
            assert batch.loss_mask[b, n:].sum() == 0 and np.all(batch.tokens[b, n:] == 0)
        assert batch.loss_mask[len(ids) :].sum() == 0  # filler rows never count
        seen += ids
    assert sorted(seen) == list(range(len(rows)))


def test_batches_are_random_samples_unless_grouped_by_length():
    # In instruction data length goes with the task, so length-grouped batches are one-task
    # batches; by default a batch mixes short and long rows like the data does.
    rows = _rows(np.random.default_rng(4).integers(2, 120, size=64))
    buckets = (32, 64, 128)

    def buckets_per_batch(**kw):
        return [{data.bucket_length(len(rows[i].ids) - 1, buckets) for i in _row_ids(b)}
                for b in batches(rows, 8, buckets=buckets, pad_id=0, seed=5, **kw)]

    assert sum(len(s) > 1 for s in buckets_per_batch()) >= 4
    assert all(len(s) == 1 for s in buckets_per_batch(group_by_length=True))


def test_batch_order_is_seeded_and_reproducible():
    rows = _rows(np.random.default_rng(2).integers(2, 120, size=40))

    def order(seed, **kw):
        return [_row_ids(b) for b in batches(rows, 4, pad_id=0, seed=seed, **kw)]

    assert order(7) == order(7)
    assert order(7) != order(8)
    assert order(0, shuffle=False) == order(1, shuffle=False)
    epochs = list(data.epoch_batches(rows, 4, num_epochs=2, seed=7, pad_id=0))
    first = [_row_ids(b) for e, b in epochs if e == 0]
    second = [_row_ids(b) for e, b in epochs if e == 1]
    assert first != second and sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(40))


def test_drop_last_and_too_long_rows():
    rows = _rows([10] * 10)
    assert len(list(batches(rows, 4, pad_id=0, seed=0))) == 3
    assert len(list(batches(rows, 4, pad_id=0, seed=0, drop_last=True))) == 2
    with pytest.raises(ValueError, match="longer than the largest bucket"):
        list(batches(_rows([300]), 4, pad_id=0, seed=0))


def test_lm_batches_make_every_token_a_target_once(tok):
    texts = CORPUS[:4]
    stream = [i for t in texts for i in tok.encode(t, bos=True, eos=True)]
    out = list(data.lm_batches(texts, tok, seq_len=16, batch_size=3, seed=0, shuffle=False))
    assert all(b.tokens.shape == (3, 16) for b in out)
    targets = np.concatenate([b.targets[b.loss_mask == 1] for b in out])
    assert targets.tolist() == stream[1:]
    # shuffled: the same windows in another order
    shuffled = list(data.lm_batches(texts, tok, seq_len=16, batch_size=3, seed=0))
    assert sorted(np.concatenate([b.targets[b.loss_mask == 1] for b in shuffled]).tolist()) == sorted(stream[1:])


# --- the committed course tokenizer -------------------------------------------------------------


def test_course_tokenizer_encodes_the_course_data():
    tok = default_tokenizer()
    examples = load_examples(tok.path.parent / "instructions.jsonl")
    encoded, stats = encode_dataset(examples, tok, 257)
    assert stats.kept + stats.dropped_too_long + stats.skipped_empty_response == len(examples)
    for ex in examples[:20]:
        enc = encode(ex, tok, 257)
        assert enc is None or enc.ids[enc.loss_mask == 1].tolist() == tok.encode(ex.response) + [tok.eos_id]
        # prompt and response are encoded apart, each with the tokenizer's dummy-prefix space
        assert enc is None or tok.decode(enc.ids) == format_prompt(ex) + " " + ex.response
    batch = next(batches(encoded, 8, pad_id=tok.pad_id, seed=0))
    assert batch.tokens.shape[0] == 8
