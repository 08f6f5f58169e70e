"""The tokenizer inside a GGUF file (llama.cpp's ``tokenizer.ggml.*`` metadata), in and out.

A GGUF file carries its vocabulary as metadata, not as a ``tokenizer.model`` or ``tokenizer.json``:

    tokenizer.ggml.model        "llama" (SentencePiece: Llama-2, TinyLlama) or "gpt2" (byte-level BPE:
                                Llama-3, SmolLM)
    tokenizer.ggml.tokens       every vocabulary entry, by id
    tokenizer.ggml.scores       SentencePiece's piece scores ("llama")
    tokenizer.ggml.token_type   1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte --
                                the same numbers as SentencePiece's ``ModelProto.SentencePiece.Type``
    tokenizer.ggml.merges       the BPE merges, "a b" strings ("gpt2")
    tokenizer.ggml.pre          which split rule runs before BPE ("smollm", "llama-bpe", "gpt2", ...)
    tokenizer.ggml.{bos,eos,padding,unknown}_token_id, tokenizer.ggml.add_space_prefix
    tokenizer.chat_template     the model's Jinja chat template (``minift.chat_jinja``)

``tokenizer_from_gguf`` rebuilds the tokenizer with the library that defines it -- a SentencePiece
model from its protobuf (SentencePiece's own ``sentencepiece_model_pb2``), a byte-level BPE with
``tokenizers`` -- behind minift's one interface (``minift.tokenizer``). ``gguf_vocab`` writes it back.

Choices, and why:

* **SentencePiece models are rebuilt as SentencePiece**, not converted to another BPE, so a GGUF's
  Llama-2 tokenizer encodes exactly as its ``tokenizer.model`` would. The normaliser is "identity"
  with the dummy prefix of ``add_space_prefix`` (true unless the file says otherwise), as Llama-2's.
* **The split rule is a table** (``PRE_TOKENIZERS``): llama.cpp names the rule, it does not store
  it. A name minift does not know is an error, never a silent guess (a wrong split gives other ids).
* A byte-level vocabulary writes a space as "Ġ" (GPT-2's bytes-to-unicode map); tokens are stored
  as the file spells them, and ``decode`` undoes the map.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from typing import Any

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_model

from minift.tokenizer import AnyTokenizer, JsonTokenizer, Tokenizer

tokenizers = importlib.import_module("tokenizers") if importlib.util.find_spec("tokenizers") else None

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6  # llama.cpp = SentencePiece
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# tokenizer.ggml.pre -> the tokenizers pre-tokenizer (as JSON) that the model's tokenizer.json has.
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
PRE_TOKENIZERS: dict[str, dict] = {
    "default": _BYTE_LEVEL,
    "gpt2": _BYTE_LEVEL,
    # SmolLM: every digit its own piece, then GPT-2's split
    "smollm": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]},
    # Llama-3: its own regex (numbers in groups of up to three), then bytes
    "llama-bpe": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": False},
        {**_BYTE_LEVEL, "use_regex": False}]},
}


def field(fields: dict, key: str, default: Any = None) -> Any:
    """One metadata value of a ``gguf.GGUFReader``'s fields (a str, number, bool or list)."""
    return fields[key].contents() if key in fields else default


def tokenizer_from_gguf(fields: dict, where: str) -> AnyTokenizer:
    """The tokenizer a GGUF file's metadata describes, with its BOS/EOS/pad ids (module docstring)."""
    kind = field(fields, "tokenizer.ggml.model")
    if kind == "llama":
        tokenizer: AnyTokenizer = _sentencepiece(fields, where)
    elif kind == "gpt2":
        tokenizer = _byte_level_bpe(fields, where)
    else:
        raise ValueError(f"{where}: tokenizer.ggml.model {kind!r} is not supported (minift reads 'llama', "
                         "a SentencePiece vocabulary, and 'gpt2', a byte-level BPE)")
    for attr, key in (("bos_id", "bos_token_id"), ("eos_id", "eos_token_id"), ("pad_id", "padding_token_id")):
        value = field(fields, f"tokenizer.ggml.{key}")
        if value is not None:
            if not 0 <= int(value) < tokenizer.vocab_size:
                raise ValueError(f"{where}: tokenizer.ggml.{key} = {value} is outside the vocabulary "
                                 f"[0, {tokenizer.vocab_size})")
            setattr(tokenizer, attr, int(value))
    if field(fields, "tokenizer.ggml.padding_token_id") is None:
        tokenizer.pad_id = tokenizer.eos_id  # as minift.tokenizer: the loss mask decides, not the id
    stops = [tokenizer.eos_id] + [int(v) for v in (field(fields, "tokenizer.ggml.eot_token_id"),) if v is not None]
    tokenizer.stop_ids = list(dict.fromkeys(stops))
    if tokenizer.bos_id is None or tokenizer.eos_id is None:
        raise ValueError(f"{where}: no tokenizer.ggml.bos_token_id / eos_token_id; minift needs both")
    return tokenizer


def _sentencepiece(fields: dict, where: str) -> Tokenizer:
    tokens, scores = field(fields, "tokenizer.ggml.tokens"), field(fields, "tokenizer.ggml.scores")
    types = field(fields, "tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    if not tokens or scores is None or len(scores) != len(tokens) or len(types) != len(tokens):
        raise ValueError(f"{where}: tokenizer.ggml.tokens, .scores and .token_type must be lists of one length")
    proto = sp_model.ModelProto()
    for token, score, kind in zip(tokens, scores, types):
        proto.pieces.add(piece=token, score=float(score), type=int(kind))
    proto.trainer_spec.model_type = sp_model.TrainerSpec.BPE
    proto.trainer_spec.byte_fallback = BYTE in types
    for name, key, default in (("unk_id", "unknown_token_id", 0), ("bos_id", "bos_token_id", 1),
                               ("eos_id", "eos_token_id", 2), ("pad_id", "padding_token_id", -1)):
        setattr(proto.trainer_spec, name, int(field(fields, f"tokenizer.ggml.{key}", default)))
    norm = proto.normalizer_spec
    norm.name, norm.add_dummy_prefix = "identity", bool(field(fields, "tokenizer.ggml.add_space_prefix", True))
    norm.remove_extra_whitespaces, norm.escape_whitespaces = False, True
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(proto.SerializeToString())
    except RuntimeError as err:
        raise ValueError(f"{where}: the SentencePiece vocabulary does not load ({err})") from None
    return Tokenizer(processor, None)


def _byte_level_bpe(fields: dict, where: str) -> JsonTokenizer:
    if tokenizers is None:
        raise ImportError(f"{where}: a byte-level BPE vocabulary needs the `tokenizers` library: "
                          "pip install 'minift[gguf]'")
    pre = field(fields, "tokenizer.ggml.pre", "default")
    if pre not in PRE_TOKENIZERS:
        raise ValueError(f"{where}: tokenizer.ggml.pre {pre!r} is a split rule minift does not know "
                         f"(known: {', '.join(PRE_TOKENIZERS)})")
    tokens, merges = field(fields, "tokenizer.ggml.tokens"), field(fields, "tokenizer.ggml.merges")
    types = field(fields, "tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    if not tokens:
        raise ValueError(f"{where}: a 'gpt2' vocabulary needs tokenizer.ggml.tokens")
    merges = merges or []
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": k == CONTROL} for i, (t, k) in enumerate(zip(tokens, types))
             if k in (CONTROL, USER_DEFINED)]
    spec = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": PRE_TOKENIZERS[pre], "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": pre == "llama-bpe", "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": [m.split(" ", 1) for m in merges]},
    }
    try:
        tokenizer = JsonTokenizer(tokenizers.Tokenizer.from_str(json.dumps(spec)), None)
    except Exception as err:  # the Rust library raises a bare Exception for every inconsistency
        raise ValueError(f"{where}: the BPE vocabulary does not load ({err})") from None
    tokenizer.gguf_pre = pre
    return tokenizer


def gguf_vocab(tokenizer: AnyTokenizer) -> dict[str, Any]:
    """The ``tokenizer.ggml.*`` metadata for ``tokenizer`` (inverse of ``tokenizer_from_gguf``)."""
    out: dict[str, Any] = {"bos_token_id": tokenizer.bos_id, "eos_token_id": tokenizer.eos_id,
                           "padding_token_id": tokenizer.pad_id}
    if isinstance(tokenizer, Tokenizer):
        proto = sp_model.ModelProto.FromString(tokenizer.sp.serialized_model_proto())
        if proto.trainer_spec.model_type != sp_model.TrainerSpec.BPE:
            raise ValueError(f"{tokenizer.path}: a SentencePiece {sp_model.TrainerSpec.ModelType.Name(proto.trainer_spec.model_type)} "
                             "model; llama.cpp's 'llama' vocabulary is BPE")
        out.update(model="llama", tokens=[p.piece for p in proto.pieces], scores=[p.score for p in proto.pieces],
                   token_type=[int(p.type) for p in proto.pieces], add_space_prefix=tokenizer.prefix_space,
                   add_bos_token=True)
        if tokenizer.unk_id >= 0:
            out["unknown_token_id"] = tokenizer.unk_id
        return out
    spec = json.loads(tokenizer.hf.to_str())
    model = spec["model"]
    if model.get("type") != "BPE" or not _is_byte_level(spec.get("pre_tokenizer")):
        raise ValueError(f"{tokenizer.path}: only byte-level BPE tokenizer.json files can go into a GGUF file")
    vocab = {i: t for t, i in model["vocab"].items()}
    special = {a["id"]: a for a in spec.get("added_tokens", [])}
    vocab.update({i: a["content"] for i, a in special.items()})
    if sorted(vocab) != list(range(len(vocab))):
        raise ValueError(f"{tokenizer.path}: the vocabulary's ids have gaps; GGUF lists every id in order")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    types = [CONTROL if special.get(i, {}).get("special") else USER_DEFINED if i in special else NORMAL
             for i in range(len(vocab))]
    out.update(model="gpt2", pre=getattr(tokenizer, "gguf_pre", None) or pre_name(spec["pre_tokenizer"]),
               tokens=[vocab[i] for i in range(len(vocab))], token_type=types, merges=merges, add_bos_token=False)
    return out


def _is_byte_level(pre: dict | None) -> bool:
    parts = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else [pre or {}]
    return any(p.get("type") == "ByteLevel" for p in parts)


def pre_name(pre: dict | None) -> str:
    """llama.cpp's name for a tokenizer.json's split rule: the ``PRE_TOKENIZERS`` entry it equals, by
    the fields that decide the split; a ValueError for one minift does not know."""
    def shape(p: dict | None) -> Any:
        if not p:
            return None
        if p.get("type") == "Sequence":
            return tuple(shape(q) for q in p["pretokenizers"])
        keep = {"ByteLevel": ("use_regex",), "Digits": ("individual_digits",), "Split": ("pattern", "behavior")}
        return (p["type"],) + tuple(json.dumps(p.get(k)).lower() for k in keep.get(p["type"], ()))
    for name, known in PRE_TOKENIZERS.items():
        if shape(known) == shape(pre):
            return name
    raise ValueError(f"the tokenizer's pre_tokenizer {json.dumps(pre)[:200]} is not one minift can name for "
                     f"llama.cpp (known: {', '.join(PRE_TOKENIZERS)})")
