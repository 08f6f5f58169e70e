"""The bundled course data on disk: where it lives, how it is written, and how it is read back.

``generate`` writes ``data/samples/`` from ``minift.course.build``, ``corpus`` and ``readme``
(deterministic: the same bytes on every run and machine); the readers below give the rest of
minift the course's instructions, corpus and tokenizer without knowing the file layout.
The committed ``tokenizer.model`` is trained on this data by ``build_default_tokenizer``.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

from minift.course import compose
from minift.course.tasks import TASKS
from minift.course.build import build_instructions, build_ood, build_preferences
from minift.course.corpus import build_corpus
from minift.course.readme import build_readme
from minift.data import COURSE_TEMPLATE, TEMPLATES, Example, format_prompt
from minift.files import read_jsonl, read_lines, write_atomic
from minift.formats import load_examples
from minift.tokenizer import DEFAULT_VOCAB_SIZE, Tokenizer, train_tokenizer

# <repo>/data/samples: the course data, and the tokenizer trained on it.
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "data" / "samples"
# Where `make course-models` trains the course's base, SFT and reward models (MINIFT_COURSE_MODELS overrides).
COURSE_MODELS_DIR = Path(__file__).resolve().parents[2] / "runs" / "course"
CORPUS_FILE = "corpus.txt"
INSTRUCTIONS_FILE = "instructions.jsonl"
OOD_FILE = "ood.jsonl"
PREFERENCES_FILE = "preferences.jsonl"
README_FILE = "README.md"
TOKENIZER_FILE = "tokenizer.model"
GENERATED_FILES = (CORPUS_FILE, INSTRUCTIONS_FILE, OOD_FILE, PREFERENCES_FILE, README_FILE)


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def generate(out_dir: str | Path = SAMPLES_DIR) -> dict[str, Path]:
    """Write the course data files into ``out_dir`` (default data/samples/); returns name -> path.

    Deterministic: the same bytes on every run and machine. ``tokenizer.model`` is left alone.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus, instructions = build_corpus(), build_instructions()
    ood, preferences = build_ood(), build_preferences()
    texts = {
        CORPUS_FILE: "".join(line + "\n" for line in corpus),
        INSTRUCTIONS_FILE: _jsonl(instructions),
        OOD_FILE: _jsonl(ood),
        PREFERENCES_FILE: _jsonl(preferences),
        README_FILE: build_readme(corpus, instructions, ood, preferences),
    }
    return {name: write_atomic(out / name, unicodedata.normalize("NFC", text)) for name, text in texts.items()}


def read_records(path: str | os.PathLike, fields: tuple[str, ...] = ()) -> list[dict]:
    """Records of one of the course's JSON Lines files; errors name the file, line and missing field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `python -m minift data` to write the course data")
    return read_jsonl(path, "course data file", fields)


def course_examples(split: str, path: str | os.PathLike | None = None) -> list[Example]:
    """The bundled instructions of one split (``train``, ``heldout_phrasing``, ``independent_wording``,
    ``heldout_task``, ``heldout_cluster``)."""
    return [ex for ex in load_examples(path or SAMPLES_DIR / INSTRUCTIONS_FILE) if ex.split == split]


def named_task_examples(split: str = "train") -> list[Example]:
    """The examples of ``split`` whose task is one of the eleven named tasks (``tasks.TASKS``), in
    their bundled order: what the §4 and §5 studies train on, without the compositional space."""
    return [ex for ex in course_examples(split) if ex.task in TASKS]


def corpus_texts(samples_dir: str | os.PathLike = SAMPLES_DIR) -> list[str]:
    """The raw corpus of §1, one document per line (NFC)."""
    path = Path(samples_dir) / CORPUS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the course corpus is missing; regenerate it with `minift data`")
    return read_lines(path, "course corpus")


def course_model(name: str) -> Path | None:
    """``runs/course/<name>`` (``base``, ``sft`` or ``rm``) once ``make course-models`` has trained it,
    else None: notebooks 04-06 then load it instead of training one during the class."""
    folder = Path(os.environ.get("MINIFT_COURSE_MODELS") or COURSE_MODELS_DIR) / name
    return folder if any((folder / "checkpoints").glob("step_*.safetensors")) else None


def default_tokenizer() -> Tokenizer:
    """The course tokenizer committed in ``data/samples/tokenizer.model`` (no training needed)."""
    return Tokenizer.load(SAMPLES_DIR / TOKENIZER_FILE)


def tokenizer_training_texts(samples_dir: str | os.PathLike = SAMPLES_DIR) -> list[str]:
    """The documents the course tokenizer is trained on, from the course data in ``samples_dir``.

    The raw corpus (one document per line); the prompt and response of every *train* instruction,
    each as its own document because ``minift.data`` encodes them separately; every prompt
    template, bare; and the train preference pairs. Held-out and out-of-distribution text is left
    out so that the evaluation data stays unseen by every trained component. The compositional
    space's examples (``minift.course.compose``, added later) are left out too: their words are all
    course words, and the tokenizer, with every model trained before them, stays as it was.
    """
    samples_dir = Path(samples_dir)
    texts = corpus_texts(samples_dir)
    for example in load_examples(samples_dir / INSTRUCTIONS_FILE):
        if example.split in ("", "train") and not compose.is_family(example.task):
            texts += [format_prompt(example, COURSE_TEMPLATE), example.response]
    for template in TEMPLATES.values():
        texts += [template.with_input, template.without_input]
    preferences = samples_dir / PREFERENCES_FILE
    if preferences.is_file():
        for row in read_jsonl(preferences):
            if row.get("split", "train") == "train":
                texts += [str(row.get(k, "")) for k in ("prompt", "chosen", "rejected")]
    return texts


def build_default_tokenizer(
    samples_dir: str | os.PathLike = SAMPLES_DIR,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    model_path: str | os.PathLike | None = None,
) -> Tokenizer:
    """Retrain ``data/samples/tokenizer.model`` (and ``.vocab``) from the course data.

    ``model_path`` writes elsewhere (e.g. to check that the committed model is up to date).
    """
    samples_dir = Path(samples_dir)
    return train_tokenizer(
        [],
        Path(model_path) if model_path is not None else samples_dir / TOKENIZER_FILE,
        vocab_size,
        texts=tokenizer_training_texts(samples_dir),
        write_vocab=True,
    )
