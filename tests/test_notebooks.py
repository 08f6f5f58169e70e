"""Every notebook runs top to bottom, at the small setting MINIFT_NOTEBOOK_SMALL=1.

Notebooks import minift and never redefine it, so running them here checks that the course
material and the library agree. They are stored without outputs, and each ``.ipynb`` is paired
with a jupytext percent-format ``.py`` holding the same cells (checked too): a teacher edits
either one, and ``jupytext --sync`` (or Jupyter with jupytext installed) brings the other along.

The course is taught in Vietnamese, with the English beside it (issue 14): every markdown cell is
Vietnamese first, then its English as a ``> **English.**`` block quote, and each notebook uses the
article's own Vietnamese terms (checked too).
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest

from minift.real_model import real_model_path

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} cell {i} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_and_its_py_twin_hold_the_same_cells(path):
    jupytext = pytest.importorskip("jupytext")
    twin = path.with_suffix(".py")
    assert twin.is_file(), f"{twin.name} is missing: run `jupytext --set-formats ipynb,py:percent {path.name}`"
    stored = json.loads(path.read_text(encoding="utf-8"))
    from_py = jupytext.read(twin)

    def cells(nb):
        return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
                for c in nb["cells"]]

    assert cells(stored) == cells(from_py), (
        f"{path.name} and {twin.name} differ: run `jupytext --sync notebooks/{twin.name}` after editing either"
    )
    assert stored["metadata"].get("jupytext", {}).get("formats") == "ipynb,py:percent"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    if path.stem == "07_real_model" and real_model_path() is None:
        pytest.skip("the real model is not fetched: `make real-model` (make test and make test-real fetch it)")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MINIFT_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()


@pytest.mark.notebook
def test_a_notebook_runs_in_exercise_mode_on_the_students_functions(tmp_path, monkeypatch):
    """MINIFT_EXERCISES=<folder>: the first cell puts the student's written functions in place (here the
    library's own bodies, written out as a student would, plus one still a stub) and the notebook runs on them."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from minift import exercises

    folder = tmp_path / "exercises"
    for module in dict.fromkeys(ex.module for ex in exercises.EXERCISES):
        path = exercises.student_file(folder, module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(exercises.stub_source(module, solutions=module != "minift.calibration"), encoding="utf-8")
    monkeypatch.setenv("MINIFT_EXERCISES", str(folder))
    monkeypatch.setenv("MINIFT_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = NOTEBOOKS[[p.stem for p in NOTEBOOKS].index("02_instruction_data_and_masked_loss")]
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    first = next(c for c in nb.cells if c.cell_type == "code")
    shown = "".join(o.get("data", {}).get("text/plain", "") for o in first.outputs)
    assert "'sft_loss'" in shown.split("minift=")[0]  # the student's sft_loss is in use
    assert "'expected_calibration_error'" in shown.split("minift=")[1]  # a stub stays minift's


# --- Vietnamese first, English beside it (issue 14) ---

# Letters that, among Latin-script languages, only Vietnamese writes: ă, đ, ơ, ư, and any vowel
# carrying a dot below or a hook above, alone or stacked on a breve/circumflex/horn. Plain acute or
# grave accents (á, à, é) and bare circumflexes (â, ê, ô) are left out: French and Spanish use them,
# so an English cell quoting "café" or "rôle" must not count as Vietnamese.
VIETNAMESE_ONLY = frozenset("ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")
VIETNAMESE_ONLY |= frozenset(c.upper() for c in VIETNAMESE_ONLY)
ENGLISH_MARK = "> **English.**"
MIN_WORDS = 12  # shorter cells (a heading, an equation, a one-line caption) need no translation
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)  # display and inline LaTeX: one copy, in no language


def markdown_cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            yield i, "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def vietnamese_part(text):
    """The cell before its ``> **English.**`` line (all of it when there is none)."""
    lines = text.splitlines()
    for j, line in enumerate(lines):
        if line.startswith(ENGLISH_MARK):
            return "\n".join(lines[:j])
    return text


def words(text):
    return MATH.sub(" ", text).split()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_reads_in_vietnamese_with_the_english_beside_it(path):
    """Rule, for every markdown cell of 12 words or more outside LaTeX that is not only headings
    (a heading is already bilingual on its own line: "Tóm tắt (Summary)"; an equation is one copy
    in no language; a short caption is not worth two copies):

    1. it has a line starting with ``> **English.**`` and everything from there on is block quote,
       so the English comes after the Vietnamese, in the same cell;
    2. the text before that line is Vietnamese prose, not English with a few Vietnamese terms in
       brackets: at least a fifth of its words carry a letter only Vietnamese writes (ordinary
       Vietnamese prose has two in five or more; "the Câu lệnh (Instruction)" style has far fewer);
    3. leaving out its heading lines, the Vietnamese is at least half as long as the English (one
       Vietnamese heading over an English paragraph is not a translation).

    The text is stored NFC (composed), the form every editor and search expects."""
    source = path.read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", source), f"{path.name} is not NFC: run unicodedata.normalize('NFC', ...)"
    checked = 0
    for i, text in markdown_cells(path):
        lines = [line for line in text.splitlines() if line.strip()]
        if all(line.startswith("#") for line in lines) or len(words(text)) < MIN_WORDS:
            continue
        checked += 1
        where = f"{path.name} markdown cell {i} ({lines[0][:60]!r})"
        marks = [j for j, line in enumerate(lines) if line.startswith(ENGLISH_MARK)]
        assert marks, f"{where}: no English beside the Vietnamese; add a block quote starting {ENGLISH_MARK!r}"
        assert all(line.startswith(">") for line in lines[marks[0]:]), (
            f"{where}: the English block quote must come last, after the Vietnamese"
        )
        english = "\n".join(lines[marks[0]:])
        vietnamese = vietnamese_part(text)
        vi_words = words(vietnamese)
        share = sum(any(c in VIETNAMESE_ONLY for c in w) for w in vi_words) / max(len(vi_words), 1)
        assert share >= 0.2, f"{where}: the text before the English reads as English ({share:.0%} Vietnamese words)"
        body = words("\n".join(line for line in vietnamese.splitlines() if not line.startswith("#")))
        assert len(body) >= len(words(english)) / 2, (
            f"{where}: {len(body)} Vietnamese words for {len(words(english))} English ones: translate it all"
        )
    assert checked, f"{path.name}: no markdown cell was long enough to check"


# The article's Vietnamese terms for each notebook's sections (shared/seed/README.md), one tuple of
# alternatives per term. Few on purpose: the words a lesson on that section cannot avoid. Matched
# as whole words, case-insensitively, in the Vietnamese part of the markdown cells.
ARTICLE_TERMS = {
    "01_autoregressive_model": [("tự hồi quy",), ("tinh chỉnh bằng chỉ thị",), ("hàm mất mát",)],
    "02_instruction_data_and_masked_loss": [
        ("câu lệnh",), ("ngữ cảnh bổ trợ",), ("phản hồi mong đợi",), ("che", "mặt nạ"), ("hàm mất mát",),
    ],
    "03_gradient_descent_and_adamw": [("gradient descent", "suy giảm độ dốc"), ("adamw",), ("tốc độ học",)],
    "04_instruction_tuning": [("mô hình nền tảng",), ("tinh chỉnh bằng chỉ thị",), ("câu lệnh",)],
    "05_rlhf_ppo_kl": [("rlhf",), ("kl",), ("phần thưởng",)],
    "06_limitations": [("ảo giác",), ("thiên kiến",)],
    "07_real_model": [("tinh chỉnh bằng chỉ thị",), ("mẫu hội thoại",), ("lượng tử hóa",)],
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_uses_the_article_terms(path):
    assert path.stem in ARTICLE_TERMS, f"add {path.stem!r} and the article terms of its sections to ARTICLE_TERMS"
    # Whitespace joined, so that a term broken across two source lines still counts.
    vietnamese = " ".join(" ".join(vietnamese_part(text) for _, text in markdown_cells(path)).split())
    for alternatives in ARTICLE_TERMS[path.stem]:
        assert any(re.search(rf"\b{re.escape(term)}\b", vietnamese, re.I) for term in alternatives), (
            f"{path.name}: the Vietnamese text never says {' / '.join(map(repr, alternatives))} (the article's term)"
        )


# --- expected outputs: each notebook executed at the class setting, to read without running (issue 24) ---
EXPECTED = Path(__file__).resolve().parents[1] / "docs" / "expected"
EXPECTED_NOTEBOOKS = NOTEBOOKS


def code_cells(nb):
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", EXPECTED_NOTEBOOKS, ids=[p.stem for p in EXPECTED_NOTEBOOKS])
def test_each_notebook_has_an_executed_copy_of_its_current_code(path):
    copy = EXPECTED / path.name
    rerun = f"run `python scripts/expected_outputs.py {path.name[:2]}` after `make course-models`"
    assert copy.is_file(), f"docs/expected/{path.name} is missing: {rerun}"
    ran, now = json.loads(copy.read_text(encoding="utf-8")), json.loads(path.read_text(encoding="utf-8"))
    assert code_cells(ran) == code_cells(now), f"{path.name}'s code changed since docs/expected/ was made: {rerun}"
    assert ran["metadata"]["minift_expected"]["setting"].startswith("class")
    for i, cell in enumerate(c for c in ran["cells"] if c["cell_type"] == "code"):
        assert cell["execution_count"] is not None, f"docs/expected/{path.name}: code cell {i} did not run"
        assert not [o for o in cell["outputs"] if o["output_type"] == "error"], f"docs/expected/{path.name}: cell {i} raised"
    timings = json.loads((EXPECTED / "timings.json").read_text(encoding="utf-8"))
    assert timings["notebooks"][path.stem] == ran["metadata"]["minift_expected"]["seconds"]
