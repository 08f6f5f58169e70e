"""The data of the course's studies: the limits of §5, zero-shot on unseen tasks (§1), one task
against many (§2). Built in memory from the course world, deterministically; nothing here is in the
bundled training split, so the demo's numbers do not move when a study changes.

* ``abstention_examples`` — questions whose answer the data never contains, answered "I don't
  know" / "Tôi không biết": the mitigation of §5 a student can add to the SFT data. Their subjects
  are disjoint from those of ``ood.jsonl`` (the test), so declining has to *generalise*.
* ``ambiguous_reviews`` / ``skewed_labels`` — reviews that are neither positive nor negative,
  labelled with a known annotator skew (bias amplification, §5).
* ``stratified_sample`` / ``reworded`` — fewer examples, or fewer wordings (the cost of gold data,
  §5; quantity against diversity, FLAN/T0).
* ``family_subsets`` / ``subset_examples`` — k of the compositional space's trained families and
  a fixed number of their examples, with ``neighbours`` (the trained families one primitive away)
  and ``baseline_answers`` (trivial answers) for the zero-shot study of §1.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from minift.course import compose
from minift.course.phrasings import WORDINGS
from minift.course.world import SEED, SENTIMENT_LABELS, SENTIMENT_TEMPLATES, SENTIMENT_THINGS, WORDS, _cap
from minift.data import Example

ABSTAIN = {"en": "I don't know", "vi": "Tôi không biết"}

# Subjects the corpus never mentions (checked by tests/test_course_studies.py), none of them in
# ood.jsonl: what the model is taught to decline is not what it is tested on.
UNKNOWN_COUNTRIES = (("Chile", "Chi-lê"), ("Cuba", "Cu-ba"), ("Nepal", "Nê-pan"), ("Greece", "Hy Lạp"),
                     ("Turkey", "Thổ Nhĩ Kỳ"), ("Iran", "I-ran"), ("Ghana", "Ga-na"), ("Finland", "Phần Lan"),
                     ("Portugal", "Bồ Đào Nha"), ("Austria", "Áo"), ("Ireland", "Ai-len"), ("Poland", "Ba Lan"),
                     ("Denmark", "Đan Mạch"), ("Hungary", "Hung-ga-ri"), ("Nigeria", "Ni-giê-ri-a"),
                     ("Colombia", "Cô-lôm-bi-a"), ("Iceland", "Ai-xơ-len"), ("Malaysia", "Ma-lai-xi-a"))
UNKNOWN_COLOURED = (("a lemon", "quả chanh"), ("a zebra", "con ngựa vằn"), ("a carrot", "củ cà rốt"),
                    ("a lime", "quả chanh xanh"), ("a pumpkin", "quả bí ngô"), ("a plum", "quả mận"))
UNKNOWN_ANIMALS = (("a frog", "con ếch"), ("a snake", "con rắn"), ("an octopus", "con bạch tuộc"),
                   ("a bee", "con ong"), ("a goat", "con dê"), ("a lobster", "con tôm hùm"))
UNKNOWN_WORDS = (("rocket", "tên lửa đẩy"), ("castle", "lâu đài"), ("glacier", "sông băng"),
                 ("violin", "đàn vi-ô-lông"), ("candle", "cây nến"), ("camel", "lạc đà"),
                 ("kettle", "ấm đun"), ("ladder", "cái thang"),
                 ("saddle", "yên ngựa"), ("anchor", "mỏ neo"), ("compass", "la bàn"),
                 ("helmet", "mũ bảo hiểm"))


def _questions(subject_en: str, subject_vi: str, relation: str) -> list[tuple[str, str]]:
    """The fact-table question forms (``world._fact_questions``) about a subject: (question, language)."""
    forms = {
        "capital": (f"What is the capital of {subject_en}?", f"Which city is the capital of {subject_en}?",
                    f"Thủ đô của {subject_vi} là gì?", f"Thành phố nào là thủ đô của {subject_vi}?"),
        "colour": (f"What colour is {subject_en}?", f"What is the colour of {subject_en}?",
                   f"{_cap(subject_vi)} có màu gì?", f"Màu của {subject_vi} là màu gì?"),
        "legs": (f"How many legs does {subject_en} have?", f"How many legs has {subject_en} got?",
                 f"{_cap(subject_vi)} có mấy chân?", f"{_cap(subject_vi)} có bao nhiêu chân?"),
    }[relation]
    return [(q, "en" if i < 2 else "vi") for i, q in enumerate(forms)]


def abstention_examples(seed: int = 0, repeats: int = 2) -> list[Example]:
    """Unanswerable questions, asked with *trained* wordings, answered "I don't know" (§5 mitigation).

    Fact questions about subjects the data never mentions (in the question's language) and
    translations of words outside the lexicon (in the target language): 168 distinct questions,
    each ``repeats`` times with different wordings (336 by default: 3% of the SFT data).
    """
    rng = random.Random(f"{SEED}-abstain-{seed}")
    out: list[Example] = []
    for _ in range(repeats):
        out += _abstentions(rng)
    rng.shuffle(out)
    return out


def _abstentions(rng: random.Random) -> list[Example]:
    out: list[Example] = []
    for subjects, relation in ((UNKNOWN_COUNTRIES, "capital"), (UNKNOWN_COLOURED, "colour"),
                               (UNKNOWN_ANIMALS, "legs")):
        for en, vi in subjects:
            for question, lang in _questions(en, vi, relation):
                out.append(Example(rng.choice(WORDINGS["fact_qa"][lang]), question, ABSTAIN[lang], "abstain"))
    for en, vi in UNKNOWN_WORDS:
        for lang in ("en", "vi"):
            out.append(Example(rng.choice(WORDINGS["translate_en_vi"][lang]), en, ABSTAIN["vi"], "abstain"))
            out.append(Example(rng.choice(WORDINGS["translate_vi_en"][lang]), vi, ABSTAIN["en"], "abstain"))
    return out


# Reviews that say neither good nor bad: the true label is undefined, so any skew the model shows
# comes from the annotators (the labels), not from the text.
NEUTRAL_WORDS = {"en": ("okay", "average", "ordinary", "so-so", "fine", "alright"),
                 "vi": ("bình thường", "tạm được", "cũng được", "thường thôi", "tàm tạm")}


def ambiguous_reviews(heldout_fraction: float = 0.25) -> tuple[list[str], list[str]]:
    """(train, heldout) neutral reviews from the sentiment templates; disjoint, both languages.

    The held-out quarter is the balanced test: reviews the model never saw a label for.
    """
    sentences = sorted({_cap(t.format(thing=thing, adj=adj))
                        for lang in ("en", "vi") for t, polarity in SENTIMENT_TEMPLATES[lang] if polarity is None
                        for thing in SENTIMENT_THINGS[lang] for adj in NEUTRAL_WORDS[lang]})
    random.Random(f"{SEED}-ambiguous").shuffle(sentences)
    n_heldout = round(heldout_fraction * len(sentences))
    return sentences[n_heldout:], sentences[:n_heldout]


def review_language(sentence: str) -> str:
    """'en' or 'vi': the language of a course review (its label is in the same language)."""
    return "en" if sentence.isascii() else "vi"


def skewed_labels(sentences: Sequence[str], favoured_fraction: float, seed: int = 0) -> list[Example]:
    """Label reviews as an annotator with a known skew would: exactly ``round(favoured_fraction * n)``
    of them positive ("positive"/"tích cực"), the rest negative, at random; trained sentiment wordings.
    """
    if not 0.0 <= favoured_fraction <= 1.0:
        raise ValueError(f"favoured_fraction must lie in [0, 1], got {favoured_fraction}")
    rng = random.Random(f"{SEED}-skew-{seed}")
    n_favoured = round(favoured_fraction * len(sentences))
    favoured = set(rng.sample(range(len(sentences)), n_favoured))
    out = []
    for i, s in enumerate(sentences):
        lang = review_language(s)
        positive, negative = SENTIMENT_LABELS[lang]
        out.append(Example(rng.choice(WORDINGS["sentiment"][lang]), s, positive if i in favoured else negative,
                           "sentiment_ambiguous"))
    return out


def stratified_sample(examples: Sequence[Example], n: int, seed: int = 0) -> list[Example]:
    """``n`` examples spread as evenly as possible over the tasks (each task's own order shuffled)."""
    if n < 1:
        raise ValueError(f"stratified_sample: n must be >= 1, got {n}")
    rng = random.Random(f"{SEED}-sample-{seed}")
    by_task: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_task[ex.task].append(ex)
    pools = [rng.sample(v, len(v)) for _, v in sorted(by_task.items())]
    out: list[Example] = []
    while len(out) < min(n, len(examples)):
        for pool in pools:
            if pool and len(out) < n:
                out.append(pool.pop())
    rng.shuffle(out)
    return out


def language_of_wording(task: str, instruction: str) -> str:
    """Which language list of ``WORDINGS[task]`` holds ``instruction``."""
    for lang, wordings in WORDINGS[task].items():
        if instruction in wordings:
            return lang
    raise ValueError(f"{instruction!r} is not a composed wording of {task!r} (minift.course.phrasings)")


def reworded(examples: Sequence[Example], per_language: int, seed: int = 0) -> list[Example]:
    """The same (input, response) pairs, each re-asked with one of only ``per_language`` trained
    wordings of its task and language (drawn once per task): the diversity knob of FLAN/T0.

    The answer depends on the input alone (and its language, which the wording keeps), so the
    examples stay correct; only how many ways the task is asked changes.
    """
    if per_language < 1:
        raise ValueError(f"reworded: per_language must be >= 1 wording, got {per_language}")
    rng = random.Random(f"{SEED}-reword-{seed}")
    kept = {(task, lang): rng.sample(WORDINGS[task][lang], min(per_language, len(WORDINGS[task][lang])))
            for task in sorted({ex.task for ex in examples}) for lang in ("en", "vi")}
    return [ex._replace(instruction=rng.choice(kept[ex.task, language_of_wording(ex.task, ex.instruction)]))
            for ex in examples]


# Zero-shot on unseen tasks (§1): the compositional space's trained families, a subset of them at a
# time, and what a model that has not learned a held-out family answers instead.

def family_subsets(k: int, seed: int = 0) -> tuple[str, ...]:
    """``k`` of the compositional space's trained families, drawn at random with ``seed`` (all of
    them when ``k`` is their number); the held-out families are never among them."""
    trained = compose.family_split()["trained"]
    if not 1 <= k <= len(trained):
        raise ValueError(f"k must be between 1 and {len(trained)} trained task families, got {k}")
    return tuple(sorted(random.Random(f"{SEED}-families-{k}-{seed}").sample(trained, k)))


def subset_examples(families: Sequence[str], total: int, seed: int = 0,
                    avoid: frozenset[str] = frozenset()) -> list[Example]:
    """``total`` fresh training examples spread evenly over ``families`` (drawn here, never bundled;
    no input in ``avoid``), so that runs with few or many families see the same number of examples."""
    rng = random.Random(f"{SEED}-subset-{len(families)}-{seed}")
    per_family = -(-total // len(families))
    records = compose.family_examples(families, per_family, rng, avoid=avoid)
    rng.shuffle(records)
    return [Example(*r, "train") for r in records[:total]]


def neighbours(name: str, among: Sequence[str]) -> tuple[str, ...]:
    """The families of ``among`` that differ from family ``name`` in exactly one primitive."""
    mine = compose.primitives(name)
    out = []
    for other in among:
        theirs = compose.primitives(other)
        if theirs.keys() == mine.keys() and sum(mine[k] != theirs[k] for k in mine) == 1:
            out.append(other)
    return tuple(out)


def neighbour_answers(name: str, input: str, among: Sequence[str]) -> set[str]:
    """What the trained neighbours of family ``name`` (``neighbours``) answer on ``input``: a model
    that ignores one clause of the instruction gives one of these."""
    return {compose.solve(n, input) for n in neighbours(name, among)}


def baseline_answers(examples: Sequence[Example], trained: Sequence[str]) -> dict[str, list[str]]:
    """Trivial answers to compare a held-out family's accuracy with, one list per baseline:
    ``copy`` (the input), ``first word`` (the input's first word) and ``neighbour`` (what the first
    trained family one primitive away answers: a model that ignores one clause)."""
    def neighbour(ex: Example) -> str:
        near = neighbours(ex.task, trained)
        return compose.solve(near[0], ex.input) if near else ex.input
    return {"copy": [ex.input for ex in examples], "first word": [ex.input.split()[0] for ex in examples],
            "neighbour": [neighbour(ex) for ex in examples]}
