"""minift.tokenizer: exact round trips (English, Vietnamese, any Unicode), deterministic training,
Llama-style models without a pad piece, and errors that name the file."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minift import cli
from minift.tokenizer import SPECIAL_IDS, Tokenizer, train_tokenizer

CORPUS = [
    "The cat sat on the mat. The dog sat on the log.",
    "Translate the sentence into Vietnamese.",
    "Hãy dịch câu này sang tiếng Việt.",
    "Tôi yêu tiếng Việt và những món ăn Việt Nam.",
    "Người Việt Nam rất thân thiện; phở, bún chả, bánh mì.",
    "### Instruction:\nAdd 12 and 30.\n\n### Response:\n42",
    "Mười hai cộng ba mươi bằng bốn mươi hai.",
] * 3
TINY_VOCAB = 360  # 4 specials + 256 byte pieces + ~62 characters of CORPUS + ~38 merges


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Tokenizer:
    return train_tokenizer([], tmp_path_factory.mktemp("tok") / "tiny.model", TINY_VOCAB, texts=CORPUS)


ROUND_TRIP = [
    "The cat sat on the mat.",
    "Hãy dịch câu này sang tiếng Việt.",
    "Đây là những chữ có dấu: ă â đ ê ô ơ ư, Ạ Ả Ấ Ầ Ẩ Ẫ Ậ ỹ ỷ ỵ.",
    "  leading spaces, two  inside,\ttab and trailing  ",
    "### Instruction:\nline one\n\nline three\r\nwindows line",
    "emoji 😀, CJK 日本語, Arabic مرحبا, ligature ﬁ, full-width ｆ, superscript ², NUL \x00",
    "",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_is_exact(tok, text):
    # identity normalisation + byte fallback: nothing is folded, squeezed or lost
    assert tok.decode(tok.encode(text)) == text


def test_vietnamese_letters_seen_in_training_are_pieces_not_bytes(tok):
    # character_coverage=1.0: every character of the corpus has its own piece
    pieces = tok.pieces("Hãy dịch câu này sang tiếng Việt")
    assert not any(p.startswith("<0x") for p in pieces), pieces
    # ... and an unseen one still encodes, as its UTF-8 bytes (3 pieces for a 3-byte character)
    assert tok.pieces("日") == ["▁", "<0xE6>", "<0x97>", "<0xA5>"]  # the dummy-prefix space, then bytes


def test_nfd_text_also_round_trips(tok):
    # no normalisation at all: even decomposed text comes back as it went in (NFC is the loader's job)
    nfd = unicodedata.normalize("NFD", "Tiếng Việt")
    assert nfd != "Tiếng Việt"
    assert tok.decode(tok.encode(nfd)) == nfd


# Policy: decode(encode(s)) == s for every string without U+2581 ("▁", SentencePiece's space
# symbol) and without surrogates (not encodable as UTF-8). Tested on raw text and on its NFC form.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\u2581"), max_size=60)


@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_round_trip_any_unicode(tok, text):
    assert tok.decode(tok.encode(text)) == text
    nfc = unicodedata.normalize("NFC", text)
    assert tok.decode(tok.encode(nfc)) == nfc


def test_the_space_symbol_is_the_one_exception(tok):
    # documents the exception: a literal "▁" in the input comes back as a space
    assert tok.decode(tok.encode("a\u2581b")) == "a b"


def test_a_word_has_the_same_piece_at_the_start_as_in_the_middle(tok):
    # the dummy prefix: a separately encoded response starts with the pieces the input used
    for text in ("Hãy dịch", "cat blue"):
        assert tok.encode(text) == tok.encode("x " + text)[len(tok.encode("x")):]
    a, b = "### Response:\n", "Hãy dịch"
    assert tok.decode(tok.encode(a) + tok.encode(b)) == a + " " + b


def test_special_ids_and_bos_eos(tok):
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == tuple(
        SPECIAL_IDS[k] for k in ("pad_id", "unk_id", "bos_id", "eos_id")
    ) == (0, 1, 2, 3)
    assert tok.vocab_size == TINY_VOCAB
    ids = tok.encode("cat", bos=True, eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and ids[1:-1] == tok.encode("cat")
    # special pieces, padding included, are dropped when decoding
    assert tok.decode([tok.bos_id, *tok.encode("cat"), tok.eos_id, tok.pad_id, tok.pad_id]) == "cat"
    assert tok.id_to_piece(tok.bos_id) == "<s>"


def test_training_is_deterministic_and_stores_no_path(tmp_path):
    # same text from files at different paths -> byte-identical models
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "corpus.txt").write_text("\n".join(CORPUS), encoding="utf-8")
        train_tokenizer([tmp_path / name / "corpus.txt"], tmp_path / name / "m.model", TINY_VOCAB)
    assert (tmp_path / "a" / "m.model").read_bytes() == (tmp_path / "b" / "m.model").read_bytes()


def test_llama_style_model_without_pad_uses_eos_for_padding(tmp_path):
    path = tmp_path / "llama.model"
    tok = train_tokenizer([], path, TINY_VOCAB, texts=CORPUS, pad_id=-1, unk_id=0, bos_id=1, eos_id=2)
    assert tok.sp.pad_id() == -1  # the model itself has no pad piece, like Llama-2
    loaded = Tokenizer.load(path)
    assert (loaded.unk_id, loaded.bos_id, loaded.eos_id) == (0, 1, 2)
    assert loaded.pad_id == loaded.eos_id == 2


def test_missing_model_names_the_path(tmp_path):
    path = tmp_path / "nope.model"
    with pytest.raises(FileNotFoundError, match="nope.model"):
        Tokenizer.load(path)


def test_corrupt_model_names_the_path(tmp_path):
    path = tmp_path / "broken.model"
    path.write_bytes(b"this is not a protobuf \x00\xff")
    with pytest.raises(ValueError, match="broken.model.*not a SentencePiece model"):
        Tokenizer.load(path)


def test_out_of_vocabulary_id_is_a_clear_error(tok):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])


def test_too_large_vocabulary_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="could not train a 5000-piece model"):
        train_tokenizer([], tmp_path / "m.model", 5000, texts=CORPUS)


def test_cli_encode_prints_pieces(tmp_path, capsys):
    path = tmp_path / "cli.model"
    train_tokenizer([], path, TINY_VOCAB, texts=CORPUS)
    assert cli.main(["tokenizer", "--model", str(path), "--encode", "Việt"]) == 0
    out = capsys.readouterr().out
    assert "decoded: 'Việt'" in out and "tokens" in out
    # a bad path is reported by the CLI without a traceback
    assert cli.main(["tokenizer", "--model", str(tmp_path / "missing.model")]) == 2
    assert "missing.model" in capsys.readouterr().err
