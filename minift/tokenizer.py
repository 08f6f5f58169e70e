"""Text <-> token ids with SentencePiece (article §2.1: instructions, inputs and responses are
"chuỗi token", sequences of tokens, before any probability is computed over them).

The model minift trains reads ids, not characters. This module trains a small byte-pair-encoding
(BPE) SentencePiece model on the course data and wraps any SentencePiece ``.model`` file --
minift's own or a real Llama-2 / TinyLlama ``tokenizer.model`` -- behind one small class.

Choices, and why:

* **Special ids** of a model trained here: ``pad=0, unk=1, bos=2, eos=3`` (``SPECIAL_IDS``).
  Llama-2 uses ``unk=0, bos=1, eos=2`` and has *no* pad piece (``pad_id() == -1``); loading such
  a model gives ``pad_id == eos_id``. That is safe in minift because the loss reads an explicit
  ``loss_mask``, never ``token != pad`` (see ``minift.data``).
* **byte_fallback**: a character the vocabulary lacks is spelled as its UTF-8 bytes (pieces
  ``<0x00>``..``<0xFF>``), so every Unicode string encodes and nothing becomes ``<unk>``.
* **No normalisation** (``normalization_rule_name="identity"``, no whitespace clean-up):
  ``decode(encode(s)) == s`` exactly, for every string ``s`` that does not contain U+2581
  ("▁", SentencePiece's own symbol for a space, which decodes back to a space). SentencePiece's
  default ``nmt_nfkc`` would turn the template's newlines and tabs into spaces, squeeze repeated
  spaces, and NFKC-fold characters such as "ﬁ" -> "fi", "²" -> "2", "ｆ" -> "f" -- so a decoded
  prompt would no longer be the prompt. Unicode normalisation is the data loader's job:
  ``minift.data`` turns text into NFC, the form in which each Vietnamese letter with its
  diacritics ("ệ") is one code point, which is also how the tokenizer was trained.
* **A dummy prefix** (``add_dummy_prefix=True``, as in Llama): every ``encode`` call reads its
  text as if it followed a space, so a word has the *same* piece at the start of a text as in
  the middle of one ("▁cat" in "cat" and in "a cat"). This matters for instruction data: the
  prompt and the response are encoded separately, and without the prefix the first word of
  every response would be a different, rarer piece than the same word in the input — copying a
  word (reverse, first word, upper-case...) would need a learned translation for each word.
  ``decode`` removes the prefix again, so ``decode(encode(s)) == s`` still holds, while
  ``decode(encode(a) + encode(b))`` is ``a + " " + b``, as in Hugging Face's Llama tokenizer.
* **Deterministic training**: one thread, every sentence used in file order, the model written
  from memory (so no input path is stored in it): the same text gives a byte-identical model.
"""

from __future__ import annotations

import io
import os
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from minift.files import read_lines, write_atomic

DEFAULT_VOCAB_SIZE = 2000

# The ids of the special pieces in a model trained by ``train_tokenizer``.
SPECIAL_IDS = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3}


class Tokenizer:
    """A SentencePiece model: ``encode`` text to ids, ``decode`` ids to text.

    Load one with ``Tokenizer.load(path)``; the course's is ``minift.course.bundled.default_tokenizer()``.
    """

    def __init__(self, processor: spm.SentencePieceProcessor, path: Path | None = None):
        self.sp = processor
        self.path = path
        self.vocab_size: int = processor.GetPieceSize()
        self.unk_id: int = processor.unk_id()
        self.bos_id: int = processor.bos_id()
        self.eos_id: int = processor.eos_id()
        if self.bos_id < 0 or self.eos_id < 0:
            raise ValueError(
                f"{path or 'tokenizer model'}: has no BOS or EOS piece (bos_id={self.bos_id}, "
                f"eos_id={self.eos_id}); minift needs both to mark where a sequence starts and ends."
            )
        # Llama-2 has no pad piece (pad_id() == -1). Padding is then written with EOS; the loss
        # mask, not the token value, decides which positions count, so this changes nothing.
        pad = processor.pad_id()
        self.pad_id: int = pad if pad >= 0 else self.eos_id

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Load a SentencePiece ``.model`` file (minift's, or e.g. TinyLlama's ``tokenizer.model``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"tokenizer model not found: {path}. Train one with `python -m minift tokenizer "
                f"--train` (for the course model) or minift.tokenizer.train_tokenizer(...)."
            )
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(path.read_bytes())
        except RuntimeError as err:
            raise ValueError(
                f"{path}: not a SentencePiece model ({err}). Is it the right file, or was it cut "
                f"short? Retrain it with `python -m minift tokenizer --train`."
            ) from None
        return cls(processor, path)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """The ids of ``text``, optionally with BOS in front and EOS at the end."""
        if not isinstance(text, str):
            raise TypeError(f"Tokenizer.encode expects a str, got {type(text).__name__}")
        ids = self.sp.EncodeAsIds(text)
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``. Special pieces (BOS, EOS, pad) are dropped, so padding is ignored."""
        ids = [int(i) for i in ids]  # accepts numpy / jax arrays too
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is outside the vocabulary [0, {self.vocab_size})")
        return self.sp.DecodeIds(ids)

    def id_to_piece(self, token_id: int) -> str:
        """The vocabulary entry of one id, e.g. ``'▁the'`` or ``'<0x0A>'`` (a byte-fallback piece)."""
        if not 0 <= int(token_id) < self.vocab_size:
            raise ValueError(f"token id {token_id} is outside the vocabulary [0, {self.vocab_size})")
        return self.sp.IdToPiece(int(token_id))

    def pieces(self, text: str) -> list[str]:
        """The pieces ``text`` is cut into (for looking at a tokenization; ``encode`` gives ids)."""
        return self.sp.EncodeAsPieces(text)

    def __repr__(self) -> str:
        return (
            f"Tokenizer(path={str(self.path)!r}, vocab_size={self.vocab_size}, "
            f"pad_id={self.pad_id}, unk_id={self.unk_id}, bos_id={self.bos_id}, eos_id={self.eos_id})"
        )


def train_tokenizer(
    text_files: Sequence[str | os.PathLike],
    model_path: str | os.PathLike,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    *,
    texts: Iterable[str] = (),
    model_type: str = "bpe",
    pad_id: int = SPECIAL_IDS["pad_id"],
    unk_id: int = SPECIAL_IDS["unk_id"],
    bos_id: int = SPECIAL_IDS["bos_id"],
    eos_id: int = SPECIAL_IDS["eos_id"],
    write_vocab: bool = False,
) -> Tokenizer:
    """Train a SentencePiece model on ``text_files`` (one document per line) and ``texts``.

    Deterministic: the same text (in the same order) and settings give a byte-identical file.
    ``texts`` are extra documents (they may contain newlines, e.g. a prompt template). The model
    is written atomically to ``model_path``; with ``write_vocab`` a ``.vocab`` file (piece, score
    per line, for reading) is written beside it. Pass ``pad_id=-1, unk_id=0, bos_id=1, eos_id=2``
    for Llama-2's layout. Returns the trained ``Tokenizer``.
    """
    documents = [line for f in text_files for line in read_lines(f)]
    documents += [unicodedata.normalize("NFC", t) for t in texts if t.strip()]
    if not documents:
        raise ValueError("no text to train the tokenizer on: the files and texts are all empty")
    model_path = Path(model_path)
    buffer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter(documents),
            model_writer=buffer,  # from memory: no input path ends up inside the model file
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,  # every character seen gets a piece; unseen ones fall back to bytes
            byte_fallback=True,
            normalization_rule_name="identity",  # see the module docstring: keeps decode(encode(s)) == s
            remove_extra_whitespaces=False,
            add_dummy_prefix=True,  # see the module docstring
            split_digits=True,  # one piece per digit: numbers are read digit by digit, as in Llama
            pad_id=pad_id,
            unk_id=unk_id,
            bos_id=bos_id,
            eos_id=eos_id,
            num_threads=1,  # determinism
            input_sentence_size=0,  # use every sentence, no random sampling
            shuffle_input_sentence=False,
            max_sentence_length=1 << 20,  # whole documents (bytes); the default 4192 drops long ones
            minloglevel=2,  # SentencePiece's progress log would flood the terminal
        )
    except RuntimeError as err:
        raise ValueError(
            f"SentencePiece could not train a {vocab_size}-piece model on {len(documents)} "
            f"documents: {err}"
        ) from None
    model_bytes = buffer.getvalue()
    write_atomic(model_path, model_bytes)
    tokenizer = Tokenizer.load(model_path)
    if write_vocab:
        lines = [
            f"{tokenizer.sp.IdToPiece(i)}\t{tokenizer.sp.GetScore(i):g}\n"
            for i in range(tokenizer.vocab_size)
        ]
        write_atomic(model_path.with_suffix(".vocab"), "".join(lines).encode("utf-8"))
    return tokenizer
