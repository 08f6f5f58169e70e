"""The course's named tasks (§2, §2.1): how to solve each one, draw its input, and ask for it.

Each task is a function of its input (``solve``), so every answer can be checked and rewarded
exactly. Eleven named tasks are trained, each phrased in English and Vietnamese, FLAN/T0 style;
some phrasings are held out of training to measure whether the model follows *instructions* or
memorises strings. The tasks never trained on (the zero-shot claim of §1) are the held-out
families of the compositional space, ``minift.course.compose``; ``solve`` answers those too.
"""

from __future__ import annotations

import random
import unicodedata
from typing import Callable, NamedTuple

from minift.course import compose
from minift.course.phrasings import WORDINGS
from minift.course.world import (
    EN_TO_VI,
    FACT_QUESTIONS,
    LEXICON,
    SENTIMENT_LABELS,
    SENTIMENT_SENTENCES,
    VI_TO_EN,
    WORDS,
)


class Task(NamedTuple):
    """One task family: its solver, an input sampler, and its instruction phrasings.

    ``en``/``vi`` are the phrasings used for training (or, for a held-out task, for evaluation);
    ``heldout_en``/``heldout_vi`` are kept out of training for the ``heldout_phrasing`` split.
    ``make_input(rng, lang)`` draws an input; ``lang`` is the language of the chosen phrasing.
    """

    name: str
    description: str
    solve: Callable[[str], str]
    make_input: Callable[[random.Random, str], str]
    en: tuple[str, ...]
    vi: tuple[str, ...]
    heldout_en: tuple[str, ...] = ()
    heldout_vi: tuple[str, ...] = ()


def _words(text: str) -> list[str]:
    return text.split()


def _numbers(text: str) -> list[int]:
    try:
        return [int(w) for w in text.split()]
    except ValueError:
        raise ValueError(f"expected whitespace-separated integers, got {text!r}") from None


def _translate(table: dict[str, str], direction: str) -> Callable[[str], str]:
    def solve(text: str) -> str:
        if text not in table:
            raise ValueError(f"{text!r} is not in the course lexicon ({direction}); "
                             "see minift.course.world.LEXICON for the words the data knows")
        return table[text]
    return solve


def _lookup(table: dict[str, str], what: str) -> Callable[[str], str]:
    def solve(text: str) -> str:
        if text not in table:
            raise ValueError(f"{text!r} is not one of the course's {what}; "
                             f"see minift.course.world for the closed list")
        return table[text]
    return solve


def _word_list(lo: int, hi: int) -> Callable[[random.Random, str], str]:
    def make(rng: random.Random, lang: str) -> str:
        return " ".join(rng.sample(WORDS, rng.randint(lo, hi)))
    return make


def _number_list(rng: random.Random, lang: str) -> str:
    # One-digit numbers: the tokenizer splits digits, so each number is one token and sorting is
    # about ordering 9 symbols, which a small model learns in a few hundred steps.
    return " ".join(str(n) for n in rng.sample(range(1, 10), rng.randint(3, 4)))


def _english_entry(rng: random.Random, lang: str) -> str:
    return rng.choice(LEXICON)[0]


def _vietnamese_entry(rng: random.Random, lang: str) -> str:
    return rng.choice(LEXICON)[1]


def _in_language(language_of: dict[str, str]) -> Callable[[random.Random, str], str]:
    """Inputs in the language of the phrasing, so the answer's language matches the instruction's."""
    by_lang: dict[str, list[str]] = {"en": [], "vi": []}
    for text, lang in language_of.items():
        by_lang[lang].append(text)

    def make(rng: random.Random, lang: str) -> str:
        return rng.choice(by_lang[lang])
    return make


TASKS: tuple[str, ...] = (
    "translate_en_vi", "translate_vi_en", "reverse_words", "uppercase", "count_words",
    "first_word", "last_word", "sort_numbers", "max_number", "sentiment", "fact_qa",
)

def _wordings(task: str) -> dict[str, tuple[str, ...]]:
    """The composed wordings of a trained task (``minift.course.phrasings``), as Task fields."""
    return dict(WORDINGS[task])


TASK_SPECS: dict[str, Task] = {t.name: t for t in (
    Task("translate_en_vi", "translate an English word or phrase of the lexicon into Vietnamese",
         _translate(EN_TO_VI, "English to Vietnamese"), _english_entry,
         **_wordings("translate_en_vi")),
    Task("translate_vi_en", "translate a Vietnamese word or phrase of the lexicon into English",
         _translate(VI_TO_EN, "Vietnamese to English"), _vietnamese_entry,
         **_wordings("translate_vi_en")),
    Task("reverse_words", "write the words in reverse order",
         lambda s: " ".join(reversed(_words(s))), _word_list(2, 3),
         **_wordings("reverse_words")),
    Task("uppercase", "write the text in capital letters",
         str.upper, _word_list(1, 2),
         **_wordings("uppercase")),
    Task("count_words", "count the words (the answer is a digit)",
         lambda s: str(len(_words(s))), _word_list(2, 6),
         **_wordings("count_words")),
    Task("first_word", "give the first word",
         lambda s: _words(s)[0], _word_list(2, 5),
         **_wordings("first_word")),
    Task("last_word", "give the last word",
         lambda s: _words(s)[-1], _word_list(2, 5),
         **_wordings("last_word")),
    Task("sort_numbers", "sort 3-4 one-digit numbers in ascending order",
         lambda s: " ".join(str(n) for n in sorted(_numbers(s))), _number_list,
         **_wordings("sort_numbers")),
    Task("max_number", "give the largest of 3-4 one-digit numbers",
         lambda s: str(max(_numbers(s))), _number_list,
         **_wordings("max_number")),
    Task("sentiment", "label a short review positive/negative (tích cực/tiêu cực), in its language",
         _lookup(SENTIMENT_SENTENCES, "review sentences"),
         _in_language({s: "en" if y in SENTIMENT_LABELS["en"] else "vi"
                       for s, y in SENTIMENT_SENTENCES.items()}),
         **_wordings("sentiment")),
    Task("fact_qa", "answer a question from the fact table, in the question's language",
         _lookup({q: a for q, (a, _, _) in FACT_QUESTIONS.items()}, "fact questions"),
         _in_language({q: lang for q, (_, lang, _) in FACT_QUESTIONS.items()}),
         **_wordings("fact_qa")),
)}

# Inputs never used in training (the corpus still states them, so the base model knows them): a
# held-out question can then ask a trained task about something only pretraining taught, and the
# evaluation reports held-out questions with a seen and with an unseen input apart. One lexicon
# entry in eight (the §1 sentence among them), one fact question in six, one review in eight.
_HELDOUT_ENTRIES = (*LEXICON[::8], ("I love my family", EN_TO_VI["I love my family"]))
HELDOUT_INPUTS: dict[str, frozenset[str]] = {
    "translate_en_vi": frozenset(en for en, _ in _HELDOUT_ENTRIES),
    "translate_vi_en": frozenset(vi for _, vi in _HELDOUT_ENTRIES),
    "fact_qa": frozenset(sorted(FACT_QUESTIONS)[::6]),
    "sentiment": frozenset(sorted(SENTIMENT_SENTENCES)[::8]),
}

# The article's own example (§1): the instruction a base model continues instead of following. Its
# input is never trained on; SECTION1_UNSEEN asks the same with a held-out wording too.
SECTION1_EXAMPLE: dict[str, str] = {
    "instruction": "Hãy dịch câu này sang tiếng Việt",
    "input": "I love my family",
    "output": "tôi yêu gia đình tôi",
    "task": "translate_en_vi",
}
SECTION1_UNSEEN: dict[str, str] = {**SECTION1_EXAMPLE, "instruction": WORDINGS["translate_en_vi"]["heldout_vi"][0]}


def phrasings(task: str, *, heldout: bool = False) -> dict[str, tuple[str, ...]]:
    """The instruction phrasings of ``task`` by language: the trained ones, or the held-out ones."""
    spec = _spec(task)
    return {"en": spec.heldout_en, "vi": spec.heldout_vi} if heldout else {"en": spec.en, "vi": spec.vi}


def make_input(task: str, rng: random.Random, lang: str) -> str:
    """A fresh input of ``task`` drawn with ``rng``, for a phrasing in ``lang`` (``"en"`` or ``"vi"``)."""
    return _spec(task).make_input(rng, lang)


def phrasing_language(task: str, instruction: str) -> str:
    """``"en"`` or ``"vi"``: the language of one of ``task``'s phrasings (trained or held out)."""
    spec = _spec(task)
    if instruction in (*spec.vi, *spec.heldout_vi):
        return "vi"
    if instruction in (*spec.en, *spec.heldout_en):
        return "en"
    raise ValueError(f"{instruction!r} is not a phrasing of the course task {task!r}")


def _spec(task: str) -> Task:
    if task not in TASK_SPECS:
        raise ValueError(f"unknown task {task!r}; the course tasks are {', '.join(TASK_SPECS)}")
    return TASK_SPECS[task]


def _key(instruction: str) -> str:
    return " ".join(unicodedata.normalize("NFC", instruction).split()).casefold()


PHRASING_TO_TASK: dict[str, str] = {
    _key(p): t.name for t in TASK_SPECS.values() for p in (*t.en, *t.vi, *t.heldout_en, *t.heldout_vi)
}


def solve(task: str, input: str) -> str:
    """The one true answer of ``task`` (a named task or a compositional family) on ``input``
    (every course task is a function of its input)."""
    if compose.is_family(task):
        return compose.solve(task, input)
    return _spec(task).solve(input)


def task_of(instruction: str) -> str:
    """Which task an instruction phrasing asks for (whitespace and case are ignored)."""
    task = PHRASING_TO_TASK.get(_key(instruction))
    if task is None:
        raise ValueError(f"instruction {instruction!r} is not one of the course phrasings; pass task= "
                         "explicitly, or see minift.course.tasks.phrasings(task) for the known ones")
    return task

