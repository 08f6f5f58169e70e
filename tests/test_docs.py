"""The course documents checked against the code, so that they cannot drift from it.

* ``docs/glossary.md``: every ``module.function`` it names exists in minift (a renamed function
  fails here); every function of the README's equation table and of exercise mode is in it; each
  row's § is in the function's docstring (or its module's; an exercise's own docstring always, as
  the stub a student gets carries only that); the article's Vietnamese terms appear in the
  notebooks, and its quotes in the article when ``../shared/seed/`` is there.
* ``docs/course.md`` and ``docs/course.vi.md`` name every notebook and every exercise (with its
  minutes); ``docs/exercises.md`` holds the exercise table exactly as ``EXERCISES`` gives it.
* Every ``minift …`` line in a code block of these pages (and ``README.vi.md``) parses with minift's
  own argument parser, so a subcommand or flag that does not exist fails; every ``make X`` is a
  Makefile target; every ``test_file.py::test_name`` they cite is a test that exists.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import shlex
import unicodedata
from pathlib import Path

import pytest

from minift.cli import build_parser
from minift.commands import COMMANDS
from minift.exercises import EXERCISES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GLOSSARY = DOCS / "glossary.md"
COURSE = {"en": DOCS / "course.md", "vi": DOCS / "course.vi.md"}
EXERCISES_DOC = DOCS / "exercises.md"
README_VI = ROOT / "README.vi.md"
SETUP = {"en": DOCS / "setup.md", "vi": DOCS / "setup.vi.md"}
PAGES = [GLOSSARY, *COURSE.values(), EXERCISES_DOC, README_VI, *SETUP.values()]
ARTICLE = ROOT.parent / "shared" / "seed" / "instruction-tuning.vi.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
MINUTES = {"en": "min", "vi": "phút"}


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def folded(text: str) -> str:
    """For comparing words: NFC (Vietnamese has two encodings of most letters) and case-folded."""
    return unicodedata.normalize("NFC", text).casefold()


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table of ``text``, as rows keyed by the header's cells."""
    found, lines = [], text.splitlines()
    for i in range(len(lines) - 1):
        if lines[i].startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()):
            if i > 0 and lines[i - 1].startswith("|"):
                continue
            header = [c.strip() for c in lines[i].strip().strip("|").split("|")]
            rows = []
            for line in lines[i + 2:]:
                if not line.startswith("|"):
                    break
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                assert len(cells) == len(header), f"a row with {len(cells)} cells under {header}: {line}"
                rows.append(dict(zip(header, cells)))
            found.append(rows)
    return found


def code_names(cell: str) -> list[str]:
    """The ``module.function`` names in a cell (backticked, dotted, lower-case module path)."""
    return re.findall(r"`([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*\.[A-Za-z_]\w*)`", cell)


def sections(cell: str) -> list[str]:
    return re.findall(r"§(\d+(?:\.\d+)?)", cell)


def mentions_section(text: str, number: str) -> bool:
    """``§3.1`` in ``text``, not as part of ``§3.10``; ``§3`` does not count as ``§3.1``."""
    return re.search(rf"§{re.escape(number)}(?!\d|\.\d)", text) is not None


def resolve(name: str):
    """``loss.sft_loss`` -> minift.loss.sft_loss, defined in that module (not merely imported there)."""
    module_name, attr = name.rsplit(".", 1)
    module = importlib.import_module(f"minift.{module_name}")
    assert hasattr(module, attr), f"the glossary names {name}, which minift/{module_name.replace('.', '/')}.py does not define"
    obj = getattr(module, attr)
    assert getattr(inspect.unwrap(obj), "__module__", None) == module.__name__, (
        f"the glossary names {name}, but {attr} is only imported into minift.{module_name}; name where it is defined")
    return module, obj


GLOSSARY_TABLES = tables(read(GLOSSARY))
GLOSSARY_ROWS = [row for table in GLOSSARY_TABLES[:2] for row in table]  # the third: everyday words, no §
GLOSSARY_FUNCTIONS = {name: row for row in GLOSSARY_ROWS for name in code_names(row["minift"])}
ARTICLE_TERMS = GLOSSARY_TABLES[0]


def test_the_glossary_has_both_tables_and_the_article_terms_are_all_there():
    assert len(GLOSSARY_TABLES) == 3
    assert set(ARTICLE_TERMS[0]) == {"§", "tiếng Việt", "English", "symbol", "minift", "in the article"}
    assert set(GLOSSARY_TABLES[1][0]) == {"§", "tiếng Việt", "English", "symbol", "minift"}
    assert len(ARTICLE_TERMS) >= 15  # the 15 rows of the seed README's table (one split in two)
    assert len(GLOSSARY_FUNCTIONS) > 30


@pytest.mark.parametrize("name", sorted(GLOSSARY_FUNCTIONS))
def test_every_function_the_glossary_names_exists(name):
    _, obj = resolve(name)
    assert callable(obj), name


def test_every_exercise_is_in_the_glossary_with_its_section():
    for ex in EXERCISES:
        short = ex.key.removeprefix("minift.")
        rows = [row for row in GLOSSARY_ROWS if short in code_names(row["minift"])]
        assert rows, f"exercise {ex.key} is not in docs/glossary.md"
        assert any(sections(row["§"]) == [ex.section.lstrip("§")] for row in rows), (
            f"docs/glossary.md gives {short} {[row['§'] for row in rows]}; EXERCISES says {ex.section}")
        assert any("✎" in row["tiếng Việt"] for row in rows), f"mark the exercise {short} with ✎ in docs/glossary.md"
    marked = {n for row in GLOSSARY_ROWS if "✎" in row["tiếng Việt"] for n in code_names(row["minift"])}
    assert marked == {ex.key.removeprefix("minift.") for ex in EXERCISES}, "✎ marks exactly the exercises"


def readme_equation_functions() -> set[str]:
    text = read(ROOT / "README.md")
    section = text[text.index("## The article, equation by equation"):text.index("## Modules")]
    return {n for n in re.findall(r"`([^`]+)`", section)
            if re.fullmatch(r"[a-z_.]+\.[a-zA-Z_]+", n) and not n.endswith(".py") and not n.startswith("optax.")}


def test_every_function_of_the_readme_equation_table_is_in_the_glossary():
    names = readme_equation_functions()
    assert len(names) > 25
    missing = sorted(names - set(GLOSSARY_FUNCTIONS))
    assert not missing, f"README's equation table names {missing}; add them to docs/glossary.md"


@pytest.mark.parametrize("row", GLOSSARY_ROWS, ids=lambda row: row["minift"].replace("`", ""))
def test_each_row_section_is_in_the_docstrings(row):
    exercises = {ex.key.removeprefix("minift."): ex for ex in EXERCISES}
    for name in code_names(row["minift"]):
        module, obj = resolve(name)
        own, modules = inspect.getdoc(obj) or "", inspect.getdoc(module) or ""
        for number in sections(row["§"]):
            if name in exercises:
                assert mentions_section(own, number), f"{name}'s docstring (the exercise stub's) does not say §{number}"
            else:
                assert mentions_section(own, number) or mentions_section(modules, number), (
                    f"docs/glossary.md puts {name} in §{number}; neither its docstring nor its module's says so")


def test_the_article_terms_are_the_notebooks_terms():
    notebooks = folded("\n".join(read(p) for p in NOTEBOOKS))
    assert len(NOTEBOOKS) == 7
    for row in ARTICLE_TERMS:
        for term in row["tiếng Việt"].split(" / "):
            assert folded(term.strip()) in notebooks, f"the glossary's term {term!r} appears in no notebook"


@pytest.mark.skipif(not ARTICLE.is_file(), reason="the article (../shared/seed/) is not beside this checkout")
def test_the_article_quotes_are_in_the_article():
    article = folded(read(ARTICLE))
    for row in ARTICLE_TERMS:
        assert folded(row["in the article"]) in article, f"{row['in the article']!r} is not in the article"


# --- the course plan and the exercise guide ------------------------------------------------------


@pytest.mark.parametrize("lang", sorted(COURSE))
def test_the_course_names_every_notebook_and_every_exercise_with_its_minutes(lang):
    text = read(COURSE[lang])
    for notebook in NOTEBOOKS:
        assert notebook.stem in text, f"{COURSE[lang].name} never names notebook {notebook.stem}"
    for ex in EXERCISES:
        assert re.search(rf"`{ex.name}`[^\n|]*?\b{ex.minutes} {MINUTES[lang]}\b", text), (
            f"{COURSE[lang].name} does not give `{ex.name}` with its {ex.minutes} {MINUTES[lang]}")


def exercise_table() -> str:
    """The table of docs/exercises.md, exactly as EXERCISES gives it."""
    lines = ["| function | § | notebook | minutes | graded by (tests/…) | the common mistake |",
             "|---|---|---|---|---|---|"]
    for ex in EXERCISES:
        tests = "<br>".join(f"`{t}`" for t in ex.tests)
        lines.append(f"| `{ex.key.removeprefix('minift.')}` | {ex.section} | {ex.notebook} | {ex.minutes} | {tests} "
                     f"| {ex.mistake} |")
    return "\n".join(lines)


def test_the_exercise_guide_table_is_the_exercises_list():
    want = exercise_table()
    assert want in read(EXERCISES_DOC), "docs/exercises.md's table is not EXERCISES; replace it with:\n\n" + want


# --- commands, make targets and tests the pages cite ---------------------------------------------


def code_lines(text: str) -> list[str]:
    """The lines of the fenced code blocks, continuation lines joined, comments kept."""
    lines = []
    for block in re.findall(r"^[ \t]*```[a-z]*\n(.*?)^[ \t]*```", text, re.M | re.S):  # list items indent them
        lines += block.replace("\\\n", " ").splitlines()
    return lines


def minift_commands(text: str) -> list[list[str]]:
    commands = []
    for line in code_lines(text):
        # a Windows venv (PowerShell) and a Colab cell's "!" run the same commands
        line = line.replace(".venv\\Scripts\\python", ".venv/bin/python").removeprefix("!")
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # not shell (PowerShell quoting, Python): only a line naming minift must parse
            assert "minift " not in line, f"cannot read the command line {line!r}"
            continue
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value before the command
            words = words[1:]
        if words[1:3] == ["-m", "minift"] and words[0] in ("python", ".venv/bin/python"):
            words = ["minift", *words[3:]]
        if words and words[0] in ("minift", ".venv/bin/minift"):
            commands.append(words[1:])
    return commands


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_minift_command_shown_parses(page):
    for argv in minift_commands(read(page)):
        assert argv and argv[0] in COMMANDS, f"{page.name}: `minift {shlex.join(argv)}`: no such subcommand"
        try:
            build_parser(argv[0]).parse_args(argv)
        except SystemExit:
            pytest.fail(f"{page.name}: `minift {shlex.join(argv)}` does not parse (see the usage above)")


def test_the_course_pages_show_minift_commands():
    assert all(minift_commands(read(COURSE[lang])) for lang in COURSE)  # the test above has something to check


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_make_target_shown_exists(page):
    targets = set(re.findall(r"^([a-z][a-z-]*):", read(ROOT / "Makefile"), re.M))
    for line in code_lines(read(page)):
        for target in re.findall(r"(?:^|&&|;)\s*make ([a-z][a-z-]*)", line):
            assert target in targets, f"{page.name} shows `make {target}`, which the Makefile does not define"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_test_cited_exists(page):
    for file, name in re.findall(r"(test_\w+\.py)::(test_\w+)", read(page)):
        source = ROOT / "tests" / file
        assert source.is_file(), f"{page.name} cites {file}, which tests/ does not have"
        assert re.search(rf"^def {name}\(", read(source), re.M), f"{page.name} cites {file}::{name}, which does not exist"


def test_readme_links_the_vietnamese_readme():
    head = read(ROOT / "README.md").splitlines()[:6]
    assert any("README.vi.md" in line for line in head), "README.md links README.vi.md near its title"
    text = read(README_VI)
    for target in ("docs/course.vi.md", "docs/glossary.md", "docs/exercises.md"):
        assert f"]({target})" in text, f"README.vi.md links {target}"


def test_no_source_file_holds_a_tab():
    """A ``"\\theta"`` in a docstring that is not raw is a TAB followed by ``heta``: the LaTeX a
    reader sees breaks silently. No minift source needs a literal TAB, so none may hold one."""
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "minift").rglob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "\t" in line]
    assert not found, f"literal TAB (a non-raw '\\t' in LaTeX?) at {found}"


def make_recipes() -> dict[str, list[str]]:
    """Each Makefile target's commands, as a user without make types them."""
    names = {"$(BIN)": ".venv/bin", "$(VENV)": ".venv", "$(PYTHON)": "python3"}
    recipes, target = {}, None
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("\t") and target:
            command = line.strip().lstrip("-")
            for name, value in names.items():
                command = command.replace(name, value)
            command = re.sub(r"^test -[xfd] \S+ \|\| ", "", command)  # a guard: the table says "when ..."
            if not command.startswith("touch "):
                recipes[target].append(command)
        elif re.match(r"^[\w$().-]+:", line) and not line.startswith("."):
            target = line.split(":")[0]
            recipes[target] = []
    recipes["install"] = recipes.pop("$(STAMP)")
    return recipes


@pytest.mark.parametrize("name", ["setup.md", "setup.vi.md"])
def test_the_setup_page_gives_every_make_target_as_its_commands(name):
    page = read(DOCS / name)
    rows = {m.group(1): re.findall(r"`([^`]+)`", m.group(2))
            for m in re.finditer(r"^\| `([\w-]+)` \| (.+) \|$", page, re.M)}
    for target in ("install", "demo", "test", "exercises", "grade", "course-models"):
        commands = [c for c in rows[target] if c.startswith((".venv", "python3"))]
        assert commands == make_recipes()[target], f"docs/{name}'s `{target}` row is not the Makefile's recipe"


def meetings(text: str) -> dict[int, str]:
    parts = re.split(r"^## (?:Meeting|Buổi) (\d)\b.*$", text, flags=re.M)
    return {int(n): body.split("\n## ")[0] for n, body in zip(parts[1::2], parts[2::2])}


@pytest.mark.parametrize("lang", COURSE)
def test_each_meeting_has_a_timed_agenda_of_at_most_90_minutes_and_homework(lang):
    timings = json.loads(read(DOCS / "expected" / "timings.json"))["notebooks"]
    for n, body in meetings(read(COURSE[lang])).items():
        if n == 7:  # optional, on the real model
            continue
        spans = [tuple(map(int, m)) for m in re.findall(r"^  \| (\d+)–(\d+) \|", body, re.M)]
        assert spans and spans[0][0] == 0, f"meeting {n} ({lang}) has no agenda starting at minute 0"
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), f"meeting {n} ({lang}): the agenda has a gap"
        assert spans[-1][1] <= 90, f"meeting {n} ({lang}) lasts {spans[-1][1]} minutes"
        assert "**Homework**" in body or "**Bài tập về nhà**" in body, f"meeting {n} ({lang}) has no homework"
        # the notebook's running time is the measured one (docs/expected/timings.json)
        stem = next(s for s in timings if s.startswith(f"0{n}_"))
        minutes, seconds = divmod(round(timings[stem]), 60)
        said = (f"{minutes} min {seconds} s" if minutes else f"{seconds} s") if lang == "en" else \
            (f"{minutes} phút {seconds} giây" if minutes else f"{seconds} giây")
        assert said in body, f"meeting {n} ({lang}) does not quote the notebook's measured time, {said}"


def test_the_everyday_words_are_in_the_glossary_and_are_the_notebooks_words():
    """The third table: the course's everyday words in Vietnamese (prompt, template, policy, ...), each
    used by the notebooks, each minift name real, and no Vietnamese word given to two English ones."""
    words = GLOSSARY_TABLES[2]
    assert set(words[0]) == {"tiếng Việt", "English", "nghĩa là", "minift"}
    vi = [row["tiếng Việt"] for row in words]
    assert {"lời nhắc", "mẫu lời nhắc", "chính sách", "lợi thế", "mô hình phần thưởng", "logit", "batch",
            "ngăn", "nhóm độ dài", "khuôn mẫu", "sụp đổ chế độ"} <= set(vi)
    assert len(set(vi)) == len(vi) and len({row["English"] for row in words}) == len(words)  # one word per concept
    notebooks = " ".join(read(p) for p in NOTEBOOKS).lower()
    for term in vi:
        assert term.lower() in notebooks, f"docs/glossary.md lists '{term}', which no notebook uses"
    for row in words:
        for name in code_names(row["minift"]):
            resolve(name)
