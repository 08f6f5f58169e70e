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

Real checkpoints come in two tokenizer formats, and ``load_tokenizer`` reads both behind one
interface (``vocab_size``, ``bos_id``, ``eos_id``, ``pad_id``, ``unk_id``, ``stop_ids``, ``path``,
``encode``, ``decode``, ``id_to_piece``, ``pieces``, ``token_id``):

* ``tokenizer.model`` (SentencePiece: Llama-2, TinyLlama) -> ``Tokenizer``;
* ``tokenizer.json`` (Hugging Face ``tokenizers``: Llama-3, SmolLM, Qwen) -> ``JsonTokenizer``, a
  byte-level BPE in those families. It needs the optional ``tokenizers`` library
  (``pip install 'minift[hf]'``).

``encode`` never adds BOS or EOS on its own (a ``tokenizer.json`` may carry a rule that puts
``<|begin_of_text|>`` in front of every text; minift asks for ``bos=True`` instead, so one place
decides). A special token *written in the text*, e.g. ``"<|eot_id|>"``, is encoded to its one id:
chat templates are text with such tokens in it. ``decode`` drops special tokens.

Which ids are BOS, EOS and padding is the *model's* word, not the tokenizer file's: a checkpoint
folder's ``generation_config.json`` / ``config.json`` (``bos_token_id``, ``eos_token_id``,
``pad_token_id``) decide, then ``tokenizer_config.json``'s ``bos_token``/``eos_token``/``pad_token``
strings. ``eos_token_id`` may be a list (Llama-3-Instruct: ``[<|end_of_text|>, <|eot_id|>]``): the
first is ``eos_id``, all of them are ``stop_ids`` (generation stops on any). No pad id -> padding is
written with EOS, which is safe for the reason given above.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from minift.files import read_json, read_lines, write_atomic

# Optional: only ``JsonTokenizer`` (a Hugging Face tokenizer.json) needs it; ``pip install 'minift[hf]'``.
# Looked up rather than imported in a try block so that the import still sits at the module's top.
tokenizers = importlib.import_module("tokenizers") if importlib.util.find_spec("tokenizers") else None

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
        self.stop_ids: list[int] = [self.eos_id]  # ids that end a generation; a checkpoint may add more
        # True when every text is read as if it followed a space (the dummy prefix, as in Llama-2):
        # a chat template's own space before a reply is then already there (see minift.chat).
        self.prefix_space: bool = processor.Normalize("a").startswith("\u2581")

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

    def token_id(self, piece: str) -> int | None:
        """The id of one vocabulary entry, e.g. ``"</s>"`` or ``"▁the"``; None if there is none."""
        i = self.sp.PieceToId(piece)  # an unknown piece gives unk_id, hence the check
        return i if self.sp.IdToPiece(i) == piece else None

    def __repr__(self) -> str:
        return (
            f"Tokenizer(path={str(self.path)!r}, vocab_size={self.vocab_size}, "
            f"pad_id={self.pad_id}, unk_id={self.unk_id}, bos_id={self.bos_id}, eos_id={self.eos_id})"
        )


# What a bare tokenizer.json calls BOS, EOS and padding, by family, most specific first. A checkpoint
# folder's config files say it for sure (``load_tokenizer``); these are only the fallback.
BOS_TOKENS = ("<|begin_of_text|>", "<s>", "<bos>", "<|endoftext|>")
EOS_TOKENS = ("<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>")
PAD_TOKENS = ("<pad>",)  # Llama-3, SmolLM, Qwen have none: padding is EOS unless a config names one


class JsonTokenizer:
    """A Hugging Face ``tokenizer.json`` (Llama-3, SmolLM, ...) with ``Tokenizer``'s interface.

    Load one with ``JsonTokenizer.load(path)``, or a checkpoint folder with ``load_tokenizer``.
    ``unk_id`` is None when the model has no unknown token (a byte-level BPE spells everything).
    """

    def __init__(self, tokenizer: tokenizers.Tokenizer, path: Path | None = None):
        self.hf = tokenizer
        self.path = path
        self.vocab_size: int = tokenizer.get_vocab_size(with_added_tokens=True)
        unk = getattr(tokenizer.model, "unk_token", None)
        self.unk_id: int | None = tokenizer.token_to_id(unk) if unk else None
        self.bos_id = self._first_of(BOS_TOKENS)
        self.eos_id = self._first_of(EOS_TOKENS)
        pad = self._first_of(PAD_TOKENS)
        self.pad_id = pad if pad is not None else self.eos_id  # as Tokenizer: the loss mask decides
        self.stop_ids: list[int] = [] if self.eos_id is None else [self.eos_id]
        first = tokenizer.encode("a", add_special_tokens=False).tokens
        self.prefix_space: bool = bool(first) and first[0].startswith(("\u2581", "\u0120"))  # "▁a" / "Ġa"

    def _first_of(self, names: Sequence[str]) -> int | None:
        return next((i for i in map(self.token_id, names) if i is not None), None)

    @classmethod
    def load(cls, path: str | os.PathLike) -> JsonTokenizer:
        """Load a ``tokenizer.json`` file; its BOS/EOS are found by name (see ``BOS_TOKENS``)."""
        path = Path(path)
        tokenizer = cls(read_tokenizer_json(path), path)
        check_special_ids(tokenizer, path)
        return tokenizer

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """The ids of ``text``, optionally with BOS in front and EOS at the end.

        The file's own rule for special tokens (e.g. BOS in front of every text) is not applied:
        ``bos``/``eos`` decide. Special-token strings in ``text`` become their ids.
        """
        if not isinstance(text, str):
            raise TypeError(f"JsonTokenizer.encode expects a str, got {type(text).__name__}")
        ids = self.hf.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; special tokens (BOS, EOS, ``<|eot_id|>``, padding...) are dropped."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is outside the vocabulary [0, {self.vocab_size})")
        return self.hf.decode(ids, skip_special_tokens=True)

    def id_to_piece(self, token_id: int) -> str:
        """The vocabulary entry of one id, e.g. ``'Ġthe'`` (byte-level BPE writes a space as 'Ġ')."""
        if not 0 <= int(token_id) < self.vocab_size:
            raise ValueError(f"token id {token_id} is outside the vocabulary [0, {self.vocab_size})")
        return self.hf.id_to_token(int(token_id))

    def pieces(self, text: str) -> list[str]:
        """The pieces ``text`` is cut into (for looking at a tokenization; ``encode`` gives ids)."""
        return self.hf.encode(text, add_special_tokens=False).tokens

    def token_id(self, piece: str) -> int | None:
        """The id of one vocabulary entry, e.g. ``"<|eot_id|>"``; None if there is none."""
        return self.hf.token_to_id(piece)

    def __repr__(self) -> str:
        return (
            f"JsonTokenizer(path={str(self.path)!r}, vocab_size={self.vocab_size}, "
            f"pad_id={self.pad_id}, unk_id={self.unk_id}, bos_id={self.bos_id}, eos_id={self.eos_id})"
        )


AnyTokenizer = Tokenizer | JsonTokenizer  # for annotations: either format, one interface


def read_tokenizer_json(path: Path) -> tokenizers.Tokenizer:
    """A ``tokenizer.json`` as a ``tokenizers.Tokenizer``; errors name the file and what to do."""
    if tokenizers is None:
        raise ImportError(
            f"{path}: reading a Hugging Face tokenizer.json needs the `tokenizers` library: "
            f"pip install 'minift[hf]' (or pip install 'tokenizers>=0.19')"
        )
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    try:
        return tokenizers.Tokenizer.from_file(str(path))
    except Exception as err:  # the Rust library raises a bare Exception for every parse error
        raise ValueError(
            f"{path}: not a Hugging Face tokenizer.json ({err}). Is it the right file, or was it cut short?"
        ) from None


def check_special_ids(tokenizer: AnyTokenizer, where: Path) -> None:
    """A ValueError naming ``where`` unless BOS and EOS are known (minift needs both)."""
    if tokenizer.bos_id is None or tokenizer.eos_id is None:
        raise ValueError(
            f"{where}: cannot tell which tokens are BOS and EOS (bos_id={tokenizer.bos_id}, "
            f"eos_id={tokenizer.eos_id}; looked for {', '.join(BOS_TOKENS)} and {', '.join(EOS_TOKENS)}). "
            f"Load the checkpoint folder instead: its config.json / tokenizer_config.json say which."
        )


# --- a checkpoint folder: its tokenizer file, then the ids its config files name ----------------

ID_FIELDS = {"bos_token_id": "bos_token", "eos_token_id": "eos_token", "pad_token_id": "pad_token"}


def load_tokenizer(path: str | os.PathLike) -> AnyTokenizer:
    """A tokenizer from a ``.model`` file, a ``tokenizer.json`` file or a Hugging Face checkpoint folder.

    A folder is read through its ``tokenizer.model`` if it has one, else its ``tokenizer.json``;
    then its config files set BOS, EOS, the stop ids and padding (module docstring).
    """
    path = Path(path)
    if path.is_dir():
        sp_file, json_file = path / "tokenizer.model", path / "tokenizer.json"
        if sp_file.is_file():
            tokenizer: AnyTokenizer = Tokenizer.load(sp_file)
        elif json_file.is_file():
            tokenizer = JsonTokenizer(read_tokenizer_json(json_file), json_file)
        else:
            raise FileNotFoundError(f"{path}: no tokenizer.model or tokenizer.json in this folder")
        apply_checkpoint_ids(tokenizer, path)
        check_special_ids(tokenizer, path)
        return tokenizer
    if path.suffix == ".json":
        return JsonTokenizer.load(path)
    if path.suffix == ".model" or not path.exists():
        return Tokenizer.load(path)  # a missing file: Tokenizer.load's error says how to make one
    raise ValueError(f"{path}: expected a SentencePiece .model file, a tokenizer.json or a checkpoint folder")


def apply_checkpoint_ids(tokenizer: AnyTokenizer, folder: Path) -> None:
    """Set ``tokenizer``'s BOS/EOS/pad/stop ids from ``folder``'s config files, where they say.

    Per id, the first file that names it wins: generation_config.json, config.json (ids), then
    tokenizer_config.json (token strings, or ``{"content": ...}`` objects). Every id is checked
    against the vocabulary, and an error names the file and the field.
    """
    found: dict[str, tuple[list[int], str]] = {}  # field -> (ids, "file: field")
    for name in ("generation_config.json", "config.json"):
        config = read_config(folder / name)
        for field in ID_FIELDS:
            value = config.get(field)
            if field in found or value is None:
                continue
            where = f"{folder / name}: {field}"
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise ValueError(f"{where} must be a token id or a non-empty list of ids, got {value!r}")
            found[field] = (values, where)
    config = read_config(folder / "tokenizer_config.json")
    for field, key in ID_FIELDS.items():
        token = config.get(key)
        if field in found or token is None:
            continue
        where = f"{folder / 'tokenizer_config.json'}: {key}"
        text = token.get("content") if isinstance(token, dict) else token
        token_id = tokenizer.token_id(text) if isinstance(text, str) else None
        if token_id is None:
            raise ValueError(f"{where} = {token!r} is not one entry of the vocabulary of {tokenizer.path}")
        found[field] = ([token_id], where)
    for values, where in found.values():
        bad = [v for v in values if not 0 <= v < tokenizer.vocab_size]
        if bad:
            raise ValueError(
                f"{where} = {bad[0]} is outside the vocabulary [0, {tokenizer.vocab_size}) of {tokenizer.path}"
            )
    pad_is_eos = tokenizer.pad_id == tokenizer.eos_id  # the file had no pad: padding follows EOS
    if "bos_token_id" in found:
        tokenizer.bos_id = found["bos_token_id"][0][0]
    if "eos_token_id" in found:
        tokenizer.eos_id, tokenizer.stop_ids = found["eos_token_id"][0][0], list(found["eos_token_id"][0])
    if "pad_token_id" in found:
        tokenizer.pad_id = found["pad_token_id"][0][0]
    elif pad_is_eos:
        tokenizer.pad_id = tokenizer.eos_id


def read_config(path: Path) -> dict:
    """A checkpoint's JSON config as a dict; ``{}`` if the file is absent (every one is optional)."""
    if not path.is_file():
        return {}
    config = read_json(path, "checkpoint config")
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object {{...}}, got {type(config).__name__}")
    return config


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
    user_symbols: Sequence[str] = (),
    write_vocab: bool = False,
) -> Tokenizer:
    """Train a SentencePiece model on ``text_files`` (one document per line) and ``texts``.

    Deterministic: the same text (in the same order) and settings give a byte-identical file.
    ``texts`` are extra documents (they may contain newlines, e.g. a prompt template). The model
    is written atomically to ``model_path``; with ``write_vocab`` a ``.vocab`` file (piece, score
    per line, for reading) is written beside it. Pass ``pad_id=-1, unk_id=0, bos_id=1, eos_id=2``
    for Llama-2's layout. ``user_symbols`` are strings that become one piece each, found in any
    text (e.g. a chat template's ``"<|im_end|>"``). Returns the trained ``Tokenizer``.
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
            user_defined_symbols=list(user_symbols),
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
