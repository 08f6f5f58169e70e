"""Every figure the prose quotes with its spread is a record of the results file it comes from.

README, README.vi, ``docs/*.md`` and the notebooks quote results as ``74.9% (72.3–78.2)`` (mean and
min–max over seeds), ``86.2% [79.6, 92.7]`` (mean and 95% interval), ``+13.6 points (+11.7 to
+14.6)`` (a paired difference) or ``0.47 (0.43–0.51)`` (a reward, in its own units). This test
finds each such figure and asserts that one record of the committed results -- a ``{mean, min,
max}`` or ``{mean, low, high}`` of ``docs/*.json``, or, for the §4 study, the same summary
computed from ``docs/rlhf_results.json``'s curves the way its table is made -- gives all three
numbers at the precision quoted. Three numbers must agree at once, so a figure that drifted from a
rerun (or was typed from memory) fails here; a coincidental match of all three is unlikely.

A single number without its spread ("sentiment 89.6%") is not checked here; the directions a
sentence states are asserted in ``test_rlhf_results.py`` and ``test_zero_shot_results.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import pytest

from minift.rlhf.sweep import smooth

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", ROOT / "README.vi.md", *sorted(DOCS.glob("*.md")), *sorted((ROOT / "notebooks").glob("*.py"))]
RESULTS = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DOCS.glob("*.json"))}


class Record(NamedTuple):
    source: str  # "limits_results.json: aggregate.zero_shot.by_count.92.heldout_task"
    mean: float
    low: float  # min over seeds, or the interval's low end
    high: float


def records(node, where: str) -> Iterator[Record]:
    """Every ``{mean, min, max}`` and ``{mean, low, high}`` in a results tree."""
    if isinstance(node, dict):
        if isinstance(node.get("mean"), (int, float)):
            for lo, hi in (("min", "max"), ("low", "high")):
                if isinstance(node.get(lo), (int, float)) and isinstance(node.get(hi), (int, float)):
                    yield Record(where, float(node["mean"]), float(node[lo]), float(node[hi]))
        for key, child in node.items():
            yield from records(child, f"{where}.{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from records(child, f"{where}[{i}]")


def over_seeds(source: str, per_seed: list[float]) -> Record:
    values = np.asarray(per_seed, dtype=float)
    return Record(source, float(values.mean()), float(values.min()), float(values.max()))


def rlhf_records(results: dict) -> Iterator[Record]:
    """The §4 table (README, notebook 05): per method and β, mean (min–max) over seeds of the
    5-point trailing average's peak and last point, and of the final policy's collapse figures."""
    for method, settings in results["curves"].items():
        for setting, runs in settings.items():
            where = f"rlhf_results.json: {method} {setting}"
            curves = {key: [smooth([p[key] for p in points]) for points in runs.values()] for key in ("gold", "kl", "proxy")}
            yield over_seeds(f"{where} gold peak", [c.max() for c in curves["gold"]])
            for key, per_seed in curves.items():
                yield over_seeds(f"{where} {key} final", [c[-1] for c in per_seed])
            for key in ("distinct", "entropy", "polite"):
                yield over_seeds(f"{where} {key}", [seed[key] for seed in results["collapse"][method][setting].values()])


ALL = [r for name, tree in RESULTS.items() if name != "rlhf_results.json" for r in records(tree, name + ":")]
ALL += list(rlhf_records(RESULTS["rlhf_results.json"]))

NUMBER = r"([+−-]?\d+(?:\.\d+)?)"
BOLD = r"\**"
OPEN = r"\s*\((?:[^():\n]{0,40}:\s*)?"  # "(", or "(95% interval: ", "(khoảng tin cậy 95%: "
END = r"(?![\d.])"
# (the figure's scale against the stored fraction, its pattern): mean (min–max), mean [low, high]
FIGURES = (
    (100, re.compile(NUMBER + r"%" + BOLD + OPEN + NUMBER + r"%?\s*[–-]\s*" + NUMBER + END)),
    (100, re.compile(NUMBER + r"%" + BOLD + r"\s*\[" + NUMBER + r"%?,\s*" + NUMBER + r"%?\]")),
    (100, re.compile(NUMBER + r" (?:points|điểm)" + BOLD + r"\s*\(" + NUMBER + r" (?:to|đến) " + NUMBER + r"\)")),
    (100, re.compile(NUMBER + r" (?:pts|points|điểm)" + BOLD + r"\s*\[" + NUMBER + r",\s*" + NUMBER + r"\]")),
    (100, re.compile(r"(?<![\w.%])([+−]\d+(?:\.\d+)?)" + BOLD + r"\s*\[" + NUMBER + r",\s*" + NUMBER + r"\]")),
    (1, re.compile(r"(?<![\w.%+−-])(\d+\.\d+)" + BOLD + r"\s*\[" + NUMBER + r",\s*" + NUMBER + r"\]")),
    (1, re.compile(r"(?<![\w.%+−-])([+−-]?\d+\.\d+)" + BOLD + r"\s*\(" + NUMBER + r"\s*[–-]\s*" + NUMBER + END)),
)


class Quote(NamedTuple):
    page: str
    line: int
    text: str
    scale: int
    numbers: tuple[str, str, str]


def quotes(path: Path) -> Iterator[Quote]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":  # a notebook's markdown: a figure may wrap onto the next "# > " line
        text = re.sub(r"\n# (?:> ?)?", "\n", text)
    for scale, pattern in FIGURES:
        for m in pattern.finditer(text):
            yield Quote(str(path.relative_to(ROOT)), text.count("\n", 0, m.start()) + 1,
                        " ".join(m.group(0).split()), scale, m.groups())


def agrees(quoted: str, value: float, scale: int) -> bool:
    """``quoted`` is ``value`` rounded to the decimals it shows (a clipped interval end, 100%, too)."""
    number = float(quoted.replace("−", "-"))
    decimals = len(quoted.partition(".")[2])
    return abs(scale * value - number) <= 0.5 * 10 ** -decimals + 1e-9 or (scale == 100 and number == 100 and value > 1)


def sources(quote: Quote) -> list[str]:
    return [r.source for r in ALL
            if all(agrees(q, v, quote.scale) for q, v in zip(quote.numbers, (r.mean, r.low, r.high)))]


QUOTES = [q for page in PAGES for q in quotes(page)]


def test_the_pages_quote_figures_with_their_spread():
    # the patterns find the tables and sentences (so a change of format cannot empty this test)
    assert len(QUOTES) >= 120
    assert {q.page for q in QUOTES} >= {"README.md", "README.vi.md", "docs/zero_shot.md",
                                       "notebooks/05_rlhf_ppo_kl.py", "notebooks/06_limitations.py"}


@pytest.mark.parametrize("quote", QUOTES, ids=lambda q: f"{q.page}:{q.line}")
def test_each_quoted_figure_is_a_record_of_its_results(quote):
    assert sources(quote), (f"{quote.page}, line {quote.line}: '{quote.text}' is no mean and spread of "
                            f"docs/*.json; rerun its study or correct the sentence")


def test_a_drifted_figure_is_caught():
    # the check fails for a figure one unit off in its last decimal, at any of its three places
    quote = next(q for q in QUOTES if q.page == "README.md" and q.scale == 100 and "." in q.numbers[0])
    assert sources(quote)
    for i in range(3):
        numbers = list(quote.numbers)
        shown = float(numbers[i].replace("−", "-")) + 10 ** -len(numbers[i].partition(".")[2])
        numbers[i] = f"{shown:.{len(numbers[i].partition('.')[2])}f}"
        assert not sources(quote._replace(numbers=tuple(numbers))), numbers


def test_the_words_of_the_held_out_wordings_are_counted_as_the_prose_says():
    # README and notebook 04: "on average 41% of the words of a heldout_phrasing wording appear in no
    # training instruction, and 130 of its 132 wordings have at least one such word; 9% on the
    # independent wordings" -- a fact of the bundled data, recomputed here
    from minift.course.bundled import course_examples

    def words(text: str) -> set[str]:
        return set(re.findall(r"\w+", text.lower()))

    trained = set().union(*(words(ex.instruction) for ex in course_examples("train")))

    def unseen(split: str) -> tuple[float, int, int]:
        wordings = sorted({ex.instruction for ex in course_examples(split)})
        shares = [len(words(w) - trained) / len(words(w)) for w in wordings]
        return float(np.mean(shares)), sum(share > 0 for share in shares), len(wordings)

    share, with_one, n = unseen("heldout_phrasing")
    assert (round(100 * share), with_one, n) == (41, 130, 132)
    assert round(100 * unseen("independent_wording")[0]) == 9
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "On average 41% of the words" in readme and "130 of its 132 wordings" in readme and "it is 9%" in readme
    notebook = (ROOT / "notebooks" / "04_instruction_tuning.py").read_text(encoding="utf-8")
    assert notebook.count("41%") == 2 and notebook.count("130") == 2
