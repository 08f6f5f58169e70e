"""minift.tokenizer: exact round trips (English, Vietnamese, any Unicode), deterministic training,
Llama-style models without a pad piece, Hugging Face tokenizer.json files and checkpoint folders
(the same ids as `transformers`), and errors that name the file.

tests/fixtures/tokenizers/llama3_style/ is a checkpoint folder's tokenizer files in Llama-3's layout,
written by the `tokenizers` library (make_fixtures.py there): byte-level BPE, 400 entries, then 7
special tokens (ids 400-406), tokenizer_config.json saying eos_token <|eot_id|>, and config.json
saying bos_token_id 400 and eos_token_id [401, 404] (<|end_of_text|>, <|eot_id|>).
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minift import cli
from minift import tokenizer as tokenizer_module
from minift.tokenizer import SPECIAL_IDS, JsonTokenizer, Tokenizer, load_tokenizer, train_tokenizer

try:
    import transformers
except ImportError:  # the parity test needs it; everything else runs without it
    transformers = None

LLAMA3_STYLE = Path(__file__).parent / "fixtures" / "tokenizers" / "llama3_style"
BOS, END_OF_TEXT, EOT, IM_END = 400, 401, 404, 406  # ids in the fixture

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


# --- Hugging Face tokenizer.json and checkpoint folders ------------------------------------------


@pytest.fixture(scope="module")
def json_tok() -> JsonTokenizer:
    return load_tokenizer(LLAMA3_STYLE)


@pytest.fixture
def folder(tmp_path) -> Path:
    """A writable copy of the llama3_style checkpoint folder."""
    return Path(shutil.copytree(LLAMA3_STYLE, tmp_path / "ckpt"))


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_json_round_trip_is_exact(json_tok, text):
    # byte-level BPE: every string is bytes, and the bytes come back (no normalisation at all)
    assert json_tok.decode(json_tok.encode(text)) == text


@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_json_round_trip_any_unicode(json_tok, text):
    assert json_tok.decode(json_tok.encode(text)) == text
    nfd = unicodedata.normalize("NFD", text)
    assert json_tok.decode(json_tok.encode(nfd)) == nfd


def test_special_token_strings_in_text_are_one_id_and_decode_drops_them(json_tok):
    assert json_tok.encode("<|eot_id|>") == [EOT] == [json_tok.token_id("<|eot_id|>")]
    ids = json_tok.encode("Xin chào!<|eot_id|><|im_end|>")
    assert ids[-2:] == [EOT, IM_END] and ids[:-2] == json_tok.encode("Xin chào!")
    assert json_tok.decode(ids) == "Xin chào!"
    assert json_tok.pieces("a<|eot_id|>") == ["a", "<|eot_id|>"]
    assert json_tok.token_id("<|not_a_token|>") is None


def test_json_encode_adds_bos_and_eos_only_when_asked(json_tok):
    # the file's post-processor puts <|begin_of_text|> in front of every text; encode does not
    assert json_tok.hf.encode("cat").ids[0] == BOS
    plain = json_tok.encode("cat")
    assert BOS not in plain
    assert json_tok.encode("cat", bos=True, eos=True) == [BOS, *plain, END_OF_TEXT]
    assert json_tok.id_to_piece(json_tok.encode(" the")[0]) == "Ġthe"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        json_tok.decode([json_tok.vocab_size])


def test_tokenizer_json_file_alone_finds_bos_and_eos_by_name():
    tok = load_tokenizer(LLAMA3_STYLE / "tokenizer.json")
    assert isinstance(tok, JsonTokenizer) and tok.vocab_size == 407
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.stop_ids, tok.unk_id) == (BOS, END_OF_TEXT, END_OF_TEXT, [END_OF_TEXT], None)
    assert not tok.prefix_space


def test_checkpoint_folder_config_sets_bos_eos_and_stop_ids(json_tok):
    # config.json: eos_token_id [<|end_of_text|>, <|eot_id|>] beats tokenizer_config.json's "<|eot_id|>"
    assert (json_tok.bos_id, json_tok.eos_id, json_tok.stop_ids) == (BOS, END_OF_TEXT, [END_OF_TEXT, EOT])
    assert json_tok.pad_id == json_tok.eos_id  # no pad anywhere: padding is written with EOS


def test_tokenizer_config_strings_are_the_fallback(folder):
    (folder / "config.json").unlink()
    tok = load_tokenizer(folder)
    assert (tok.bos_id, tok.eos_id, tok.stop_ids, tok.pad_id) == (BOS, EOT, [EOT], EOT)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["pad_token"] = {"content": "<|im_end|>", "special": True}  # the object form
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert load_tokenizer(folder).pad_id == IM_END


def test_generation_config_beats_config_json(folder):
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": EOT, "pad_token_id": IM_END}))
    tok = load_tokenizer(folder)
    assert (tok.bos_id, tok.eos_id, tok.stop_ids, tok.pad_id) == (BOS, EOT, [EOT], IM_END)


def test_sentencepiece_checkpoint_folder(tmp_path):
    # Llama-2 / TinyLlama: tokenizer.model wins over tokenizer.json; config.json's ids apply to it
    train_tokenizer([], tmp_path / "tokenizer.model", TINY_VOCAB, texts=CORPUS, pad_id=-1, unk_id=0, bos_id=1, eos_id=2)
    shutil.copy(LLAMA3_STYLE / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": [2, 5]}))
    tok = load_tokenizer(tmp_path)
    assert isinstance(tok, Tokenizer) and tok.prefix_space
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.stop_ids) == (1, 2, 2, [2, 5])
    assert (tok.token_id("</s>"), tok.token_id("<unk>"), tok.token_id("no such piece")) == (2, 0, None)
    assert isinstance(load_tokenizer(tmp_path / "tokenizer.model"), Tokenizer)


def test_user_symbols_are_single_pieces(tmp_path):
    tok = train_tokenizer([], tmp_path / "m.model", TINY_VOCAB, texts=CORPUS, user_symbols=["<|im_end|>"])
    end = tok.token_id("<|im_end|>")
    assert end is not None and tok.encode("cat<|im_end|>")[-1] == end
    assert tok.encode("cat<|im_end|>").count(end) == 1


@pytest.mark.parametrize(
    "file, content, error",
    [
        ("config.json", {"eos_token_id": [401, 9999]}, r"config.json: eos_token_id = 9999 is outside the vocabulary \[0, 407\)"),
        ("config.json", {"bos_token_id": "400"}, "config.json: bos_token_id must be a token id"),
        ("config.json", {"eos_token_id": []}, "config.json: eos_token_id must be a token id or a non-empty list"),
        ("generation_config.json", {"pad_token_id": -1}, "generation_config.json: pad_token_id = -1 is outside"),
        ("tokenizer_config.json", {"eos_token": "</s>"}, "tokenizer_config.json: eos_token = '</s>' is not one entry"),
        ("config.json", [1, 2], r"config.json: expected a JSON object"),
    ],
)
def test_bad_checkpoint_ids_name_the_file_and_field(tmp_path, file, content, error):
    shutil.copy(LLAMA3_STYLE / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / file).write_text(json.dumps(content))
    with pytest.raises(ValueError, match=error):
        load_tokenizer(tmp_path)


def test_missing_and_corrupt_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer.model or tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError, match="absent.json"):
        load_tokenizer(tmp_path / "absent.json")
    with pytest.raises(FileNotFoundError, match="absent.model"):
        load_tokenizer(tmp_path / "absent.model")
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "BPE"')
    with pytest.raises(ValueError, match="tokenizer.json: not a Hugging Face tokenizer.json"):
        load_tokenizer(tmp_path)
    shutil.copy(LLAMA3_STYLE / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "config.json").write_text('{"eos_token_id": 401,\n oops}')
    with pytest.raises(ValueError, match="config.json:2: not valid JSON"):
        load_tokenizer(tmp_path)


def test_tokenizer_json_without_known_bos_says_to_load_the_folder(tmp_path):
    data = json.loads((LLAMA3_STYLE / "tokenizer.json").read_text(encoding="utf-8"))
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "<|begin_of_text|>"]
    data["post_processor"] = None
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="cannot tell which tokens are BOS and EOS.*Load the checkpoint folder"):
        load_tokenizer(tmp_path / "tokenizer.json")
    (tmp_path / "config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 401}))
    assert load_tokenizer(tmp_path).bos_id == 0  # ... which works


def test_without_the_tokenizers_library_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(tokenizer_module, "tokenizers", None)
    with pytest.raises(ImportError, match=r"pip install 'minift\[hf\]'"):
        load_tokenizer(LLAMA3_STYLE)


PARITY_TEXTS = ROUND_TRIP + [
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nXin chào!<|eot_id|>",
    "<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>\n",
    "Người Việt Nam rất thân thiện; 1234567 ... ''s it's   \n\n\n x",
]


@pytest.fixture(scope="module")
def reference():
    """transformers' own tokenizer of the fixture folder (the parity tests skip without transformers)."""
    if transformers is None:
        pytest.skip("transformers is not installed (pip install -e '.[bench]'); the other tests cover the rest")
    return transformers.AutoTokenizer.from_pretrained(LLAMA3_STYLE)


@pytest.mark.parametrize("text", PARITY_TEXTS)
def test_same_ids_as_transformers(json_tok, reference, text):
    assert json_tok.encode(text) == reference.encode(text, add_special_tokens=False)
    assert json_tok.decode(json_tok.encode(text)) == reference.decode(
        reference.encode(text, add_special_tokens=False), skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
