"""``minift export``: a trained model (course run, tuned run, LoRA merged, GGUF or Hugging Face model) as a
Hugging Face Llama folder (``--format hf``) or one GGUF file (``--format gguf``), with its tokenizer and
the chat template it was tuned with, so that ``transformers`` or llama.cpp prompt it as minift did."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import jax.numpy as jnp

from minift import data as D
from minift.chat_jinja import chat_jinja, instruction_jinja, model_chat_template
from minift.files import write_atomic, write_json
from minift.gguf_llama import WRITE_TYPES, save_gguf_llama
from minift.hf_llama import save_hf_llama
from minift.loop import run_info, run_template
from minift.runs import RUNS_DIR, Loaded, load_any
from minift.tokenizer import Tokenizer, read_config

# The tokenizer's own files, copied as they are from the folder the model was loaded from.
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json")
DTYPES = {"hf": ("float32", "bfloat16"), "gguf": WRITE_TYPES}
ALIASES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=RUNS_DIR / "sft", help="run folder, checkpoint, HF folder or GGUF file")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for config.json + model.safetensors (--format hf), or the .gguf file (--format gguf)")
    p.add_argument("--format", choices=tuple(DTYPES), help="default: gguf when --out ends with .gguf, else hf")
    p.add_argument("--dtype", choices=sorted({*ALIASES, *DTYPES["hf"], *DTYPES["gguf"]}),
                   help="stored dtype: hf float32|bfloat16 (default: the model's); gguf f32|f16|q8_0 (default f32)")


def export_jinja(model: Loaded, model_path: Path) -> str:
    """The Jinja chat template the export carries: the model's own when it was tuned with (or is)
    that format, else minift's template as Jinja; for a course model its instruction template."""
    if model.chat_jinja and (model.chat_template is None
                             or model_chat_template(model.chat_jinja, model.tokenizer) == model.chat_template):
        return model.chat_jinja
    if model.chat_template:
        return chat_jinja(model.chat_template)
    return instruction_jinja(run_template(model_path, D.COURSE_TEMPLATE))


def run(args: argparse.Namespace) -> int:
    fmt = args.format or ("gguf" if args.out.suffix == ".gguf" else "hf")
    dtype = ALIASES.get(args.dtype, args.dtype)
    if dtype and dtype not in DTYPES[fmt]:
        raise ValueError(f"--dtype {args.dtype}: --format {fmt} stores {' or '.join(DTYPES[fmt])}")
    model = load_any(args.model)
    tok, jinja = model.tokenizer, export_jinja(model, args.model)
    if fmt == "gguf":
        path = save_gguf_llama(model.params, model.config, args.out, tok, dtype=dtype or "float32",
                               chat_template=jinja, name=args.model.stem)
        print(f"wrote {path}: {dtype or 'float32'}, tokenizer and chat template inside")
        return 0
    folder = save_hf_llama(model.params, model.config, args.out, dtype=jnp.dtype(dtype) if dtype else None,
                           bos_id=tok.bos_id, eos_id=tok.stop_ids if len(tok.stop_ids) > 1 else tok.eos_id,
                           pad_id=tok.pad_id)
    source = Path(run_info(args.model).get("info", {}).get("init") or args.model)
    copied = [name for name in TOKENIZER_FILES if source.is_dir() and (source / name).is_file()]
    for name in copied:
        shutil.copyfile(source / name, folder / name)
    if not {"tokenizer.model", "tokenizer.json"} & set(copied):  # a course model, or one from a GGUF file
        copied.append(write_tokenizer(tok, folder))
    write_tokenizer_config(tok, folder, jinja)
    write_atomic(folder / "chat_template.jinja", jinja)
    print(f"wrote {folder}: config.json, model.safetensors, {', '.join(dict.fromkeys(copied))}, "
          "tokenizer_config.json, chat_template.jinja")
    return 0


def write_tokenizer(tok, folder: Path) -> str:
    """The tokenizer as its own file: SentencePiece's ``tokenizer.model`` or a ``tokenizer.json``."""
    if isinstance(tok, Tokenizer):
        write_atomic(folder / "tokenizer.model", tok.sp.serialized_model_proto())
        return "tokenizer.model"
    write_atomic(folder / "tokenizer.json", tok.hf.to_str())
    return "tokenizer.json"


def write_tokenizer_config(tok, folder: Path, jinja: str) -> None:
    """``tokenizer_config.json`` as ``AutoTokenizer`` reads it: the tokenizer's class, its special
    tokens, and the chat template (the same text as chat_template.jinja, whichever transformers reads)."""
    config = read_config(folder / "tokenizer_config.json")
    if not config:
        piece = tok.id_to_piece
        config = {"tokenizer_class": "LlamaTokenizer" if isinstance(tok, Tokenizer) else "PreTrainedTokenizerFast",
                  "bos_token": piece(tok.bos_id), "eos_token": piece(tok.eos_id), "pad_token": piece(tok.pad_id),
                  "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False}
        if tok.unk_id is not None:
            config["unk_token"] = piece(tok.unk_id)
        if isinstance(tok, Tokenizer):
            # legacy: the text after BOS gets SentencePiece's dummy-prefix space, as minift encodes the
            # prompt (ids then equal minift's; one known difference: text that *starts* with spaces)
            config["legacy"] = True
    write_json(folder / "tokenizer_config.json", {**config, "chat_template": jinja})
