"""A compositional task space (§1's zero-shot claim): task families built from primitives.

FLAN and T0 claim that instruction tuning on many tasks lets a model do a task it was never
trained on, *if the instruction says what to do*. At course scale a "task it was never trained
on" is a combination of primitives never trained together. Every input is the same kind of
list: 5–6 English words of the course lexicon holding one animal, one colour, one food or drink,
two number words (one … ten) and at most one other word, shuffled. A family picks one word and
writes it out:

    select    which word: by position (first, last), by category (the animal, the colour, the
              food or drink) or by value (the largest or smallest number);
    case      as it is, UPPER CASE, or Capitalised;
    language  the English word, or its Vietnamese translation (the course lexicon);
    wrap      once, twice, or followed by a full stop;

or answers *where* a category word or the largest/smallest number is (its position, a digit):
7 × 3 × 2 × 3 + 5 = 131 families, and 18 more for the held-out cluster. Each instruction says
each choice in words, in English or Vietnamese, in one of several phrasings and with its clauses
in a random order, so a held-out family can only be answered by reading its instruction. The
split (``family_split``):

* ``trained`` — 70% of the families outside the cluster, drawn at random, every primitive kept;
* ``heldout`` — the other 30%: every primitive of each was trained, never this combination
  (``heldout_task`` in ``data/samples``): an unseen task *within* seen clusters, as FLAN counts;
* ``cluster`` — every family that selects the *third* word: a primitive no training instruction
  ever names, T0's held-out cluster (``heldout_cluster``); only pretraining could have taught
  the model what "third" means.

Measured while designing it (one seed, 1600 SFT steps; ``docs/zero_shot.md``): a 1M-parameter
model learns selection by category far faster than by position (on trained families: the animal
84%, the second / second-to-last word 25%), and whole-list transforms (reverse, sort, filter a
list) hardly at all with a few dozen examples per family (7% on trained families), so the space
keeps few selections and many ways of writing the answer.

A family is named by its primitives, e.g. ``animal.upper.vi.twice`` or ``position.colour``;
:func:`solve` answers any family on any input, so every answer is checked exactly, and
:func:`family_examples` draws fresh inputs.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from minift.course.world import EN_TO_VI, LEXICON_BY_CATEGORY, SEED, WORDS

POSITIONS = ("first", "last", "third")
CATEGORIES = ("animal", "colour", "food")
PROPERTIES = (*CATEGORIES, "largest", "smallest")
SELECTS = POSITIONS + PROPERTIES
CASES = ("plain", "upper", "title")
LANGUAGES = ("en", "vi")
WRAPS = ("once", "twice", "stop")
CLUSTER_SELECT = "third"  # the primitive held out of training in every combination
HELDOUT_FRACTION = 0.3

_IN = {cat: tuple(w for w in WORDS if w in {en for en, _ in LEXICON_BY_CATEGORY[cat]})
       for cat in (*CATEGORIES, "number")}
NUMBER_VALUE = {w: i for i, w in enumerate(("one", "two", "three", "four", "five", "six", "seven", "eight",
                                            "nine", "ten"), 1)}
OTHER_WORDS = tuple(w for w in WORDS if not any(w in v for v in _IN.values()))


class Family(NamedTuple):
    """One task family: a selection, then how the chosen word is written (or its position)."""

    select: str
    case: str = "plain"
    language: str = "en"
    wrap: str = "once"
    position: bool = False  # answer where the word is (1, 2, ...), not the word

    @property
    def name(self) -> str:
        if self.position:
            return f"position.{self.select}"
        return f"{self.select}.{self.case}.{self.language}.{self.wrap}"


def all_families() -> tuple[Family, ...]:
    """Every family of the space: the written ones, then where each property word is."""
    written = [Family(s, c, lang, w) for s in SELECTS for c in CASES for lang in LANGUAGES for w in WRAPS]
    return (*written, *(Family(p, position=True) for p in PROPERTIES))


FAMILIES: dict[str, Family] = {f.name: f for f in all_families()}


def family(name: str) -> Family:
    """The family called ``name`` (e.g. ``"animal.upper.vi.twice"``, ``"position.colour"``)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown task family {name!r}: a family is select.case.language.wrap with select "
                         f"in {'|'.join(SELECTS)}, case in {'|'.join(CASES)}, language in en|vi, wrap in "
                         f"{'|'.join(WRAPS)} (e.g. 'animal.upper.vi.twice'), or position.<{'|'.join(PROPERTIES)}>")
    return FAMILIES[name]


def is_family(name: str) -> bool:
    """Whether ``name`` is a family of this space."""
    return name in FAMILIES


def family_split(seed: int = SEED) -> dict[str, tuple[str, ...]]:
    """``trained`` / ``heldout`` / ``cluster`` family names (see the module docstring).

    The held-out draw is redrawn until every primitive value is still in some trained family."""
    cluster = tuple(n for n, f in FAMILIES.items() if f.select == CLUSTER_SELECT)
    rest = [n for n in FAMILIES if n not in cluster]
    rng = random.Random(f"{seed}:compose:heldout")
    for _ in range(100):
        heldout = set(rng.sample(rest, round(HELDOUT_FRACTION * len(rest))))
        trained = tuple(n for n in rest if n not in heldout)
        if _covers([FAMILIES[n] for n in trained]):
            return {"trained": trained, "heldout": tuple(n for n in rest if n in heldout), "cluster": cluster}
    raise AssertionError("no held-out draw keeps every primitive trained")  # 30% never gets here


def _covers(families: list[Family]) -> bool:
    written = [f for f in families if not f.position]
    return ({f.select for f in written} == set(SELECTS) - {CLUSTER_SELECT}
            and {f.select for f in families if f.position} == set(PROPERTIES) - {CLUSTER_SELECT}
            and {f.case for f in written} == set(CASES) and {f.language for f in written} == set(LANGUAGES)
            and {f.wrap for f in written} == set(WRAPS))


# The one true answer of a family on an input

def _index(select: str, words: list[str]) -> int:
    """Where the selected word is in ``words`` (0-based)."""
    if select in POSITIONS:
        return {"first": 0, "third": 2, "last": len(words) - 1}[select]
    if select in ("largest", "smallest"):
        numbers = [w for w in words if w in NUMBER_VALUE]
        if not numbers:
            raise ValueError(f"{' '.join(words)!r} holds no number word (one … ten)")
        return words.index((max if select == "largest" else min)(numbers, key=NUMBER_VALUE.get))
    hits = [i for i, w in enumerate(words) if w in _IN[select]]  # a category
    if len(hits) != 1:
        raise ValueError(f"{' '.join(words)!r} must hold exactly one {select} word, it holds {len(hits)}")
    return hits[0]


def _render(word: str, case: str, language: str) -> str:
    if language == "vi":
        if word not in EN_TO_VI:
            raise ValueError(f"{word!r} is not in the course lexicon; cannot translate it")
        word = EN_TO_VI[word]
    return {"plain": word, "upper": word.upper(), "title": word[:1].upper() + word[1:]}[case]


def solve(name: str, input: str) -> str:
    """The answer of family ``name`` on ``input`` (course words separated by spaces)."""
    f = family(name)
    words = input.split()
    i = _index(f.select, words)
    if f.position:
        return str(i + 1)
    word = _render(words[i], f.case, f.language)
    return {"once": word, "twice": f"{word} {word}", "stop": f"{word}."}[f.wrap]


def make_input(rng: random.Random) -> str:
    """A fresh input: one animal, one colour, one food or drink, two number words and 0–1 other
    word, shuffled; every family can be asked about every input."""
    words = [rng.choice(_IN["animal"]), rng.choice(_IN["colour"]), rng.choice(_IN["food"]),
             *rng.sample(_IN["number"], 2), *rng.sample(OTHER_WORDS, rng.randint(0, 1))]
    rng.shuffle(words)
    return " ".join(words)


# How each primitive is said, in English and Vietnamese; "" says nothing (the default)

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "select.first": ("the first word", "the word at the start"),
        "select.last": ("the last word", "the word at the end"),
        "select.animal": ("the animal", "the word that names an animal"),
        "select.colour": ("the colour", "the word that names a colour"),
        "select.food": ("the food or drink", "the word that names a food or drink"),
        "select.third": ("the third word", "the word in third place"),
        "select.largest": ("the largest number", "the biggest number word"),
        "select.smallest": ("the smallest number", "the lowest number word"),
        "case.plain": ("", "in small letters"),
        "case.upper": ("in capital letters", "in upper case"),
        "case.title": ("with a capital first letter", "capitalised"),
        "language.en": ("", "in English"),
        "language.vi": ("in Vietnamese", "translated into Vietnamese"),
        "wrap.once": ("", "once"),
        "wrap.twice": ("twice", "two times"),
        "wrap.stop": ("followed by a full stop", "with a full stop after it"),
    },
    "vi": {
        "select.first": ("từ đầu tiên", "từ ở đầu"),
        "select.last": ("từ cuối cùng", "từ ở cuối"),
        "select.animal": ("con vật", "từ chỉ con vật"),
        "select.colour": ("màu sắc", "từ chỉ màu"),
        "select.food": ("đồ ăn thức uống", "từ chỉ đồ ăn hoặc đồ uống"),
        "select.third": ("từ thứ ba", "từ đứng ở vị trí thứ ba"),
        "select.largest": ("số lớn nhất", "từ chỉ số lớn nhất"),
        "select.smallest": ("số nhỏ nhất", "từ chỉ số bé nhất"),
        "case.plain": ("", "bằng chữ thường"),
        "case.upper": ("bằng chữ in hoa", "viết hoa toàn bộ"),
        "case.title": ("viết hoa chữ cái đầu", "viết hoa chữ đầu"),
        "language.en": ("", "bằng tiếng Anh"),
        "language.vi": ("bằng tiếng Việt", "dịch sang tiếng Việt"),
        "wrap.once": ("", "một lần"),
        "wrap.twice": ("hai lần", "lặp lại hai lần"),
        "wrap.stop": ("kèm dấu chấm ở cuối", "rồi thêm dấu chấm"),
    },
}
VERBS = {"en": ("write", "give", "copy", "say", "show", "tell me"),
         "vi": ("viết", "cho biết", "chép lại", "ghi ra", "đưa ra", "nói")}
WHERE = {"en": ("at which position is {s}", "what is the position of {s}", "where is {s}, counting from 1"),
         "vi": ("{s} ở vị trí thứ mấy", "vị trí của {s} là bao nhiêu", "{s} đứng thứ mấy, đếm từ 1")}
ASK = {"en": ("{B}?", "Tell me: {b}?", "Question: {b}?"), "vi": ("{B}?", "Cho tôi hỏi, {b}?", "Câu hỏi: {b}?")}
FRAMES = {"en": ("{B}.", "{B}", "Please {b}.", "Task: {b}.", "Can you {b}?"),
          "vi": ("{B}.", "{B}", "Hãy {b}.", "Nhiệm vụ: {b}.", "Bạn hãy {b}.")}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def instruction(name: str, lang: str, rng: random.Random) -> str:
    """One wording of family ``name`` in ``lang``: a verb and the selection, then the family's
    other choices as clauses in a random order (a default may go unsaid)."""
    f = family(name)
    say = PHRASES[lang]
    selection = rng.choice(say[f"select.{f.select}"])
    if f.position:
        body = rng.choice(WHERE[lang]).format(s=selection)
        return rng.choice(ASK[lang]).format(b=body, B=_cap(body))
    clauses = [c for c in (rng.choice(say[f"{kind}.{getattr(f, kind)}"]) for kind in ("case", "language", "wrap"))
               if c]
    rng.shuffle(clauses)
    body = ", ".join([f"{rng.choice(VERBS[lang])} {selection}", *clauses])
    return rng.choice(FRAMES[lang]).format(b=body, B=_cap(body))


def family_examples(names, per_family: int, rng: random.Random, avoid: frozenset[str] = frozenset()
                    ) -> list[tuple[str, str, str, str]]:
    """``per_family`` (instruction, input, output, family) records of each family, wordings
    alternating English and Vietnamese; no input in ``avoid`` is drawn."""
    out = []
    for name in names:
        for i in range(per_family):
            for _ in range(1000):  # the input space holds ~10^6 lists; a redraw is rare
                x = make_input(rng)
                if x not in avoid:
                    break
            else:
                raise ValueError(f"{name}: cannot draw an input outside the avoided set")
            out.append((instruction(name, LANGUAGES[i % 2], rng), x, solve(name, x), name))
    return out


def primitives(name: str) -> dict[str, str]:
    """The primitive values of family ``name`` by kind (``select`` and ``case``, ``language``,
    ``wrap``, or ``position``)."""
    f = family(name)
    if f.position:
        return {"select": f.select, "position": "yes"}
    return {"select": f.select, "case": f.case, "language": f.language, "wrap": f.wrap}
