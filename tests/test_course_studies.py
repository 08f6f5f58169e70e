"""minift.course.studies: the studies' data is what it claims — unanswerable, ambiguous, stratified,
reworded without changing an answer, composed correctly — and never leaks into the bundled data."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from minift.calibration import is_abstention
from minift.course import compose
from minift.course import studies as S
from minift.course.bundled import OOD_FILE, SAMPLES_DIR, corpus_texts, course_examples, named_task_examples, read_records
from minift.course.phrasings import WORDINGS
from minift.course.tasks import TASKS, solve
from minift.course.world import LEXICON, SENTIMENT_LABELS, SENTIMENT_SENTENCES
from minift.data import Example


def mentions(text: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase.casefold()) + r"(?!\w)", text.casefold()) is not None


def test_abstention_subjects_are_unknown_to_the_data_and_disjoint_from_the_test():
    corpus = "\n".join(corpus_texts())
    lexicon = {w for pair in LEXICON for w in pair}
    ood = " ".join(f"{r['input']} {r['absent'] or ''}" for r in read_records(SAMPLES_DIR / OOD_FILE))
    subjects = [s.removeprefix("a ").removeprefix("an ") for pairs in (S.UNKNOWN_COUNTRIES, S.UNKNOWN_COLOURED,
                                                                       S.UNKNOWN_ANIMALS, S.UNKNOWN_WORDS)
                for pair in pairs for s in pair]
    for s in subjects:
        assert not mentions(corpus, s), f"{s!r} is in the corpus: the base model could know it"
        assert s not in lexicon and not mentions(ood, s), f"{s!r} is in the lexicon or the test (ood.jsonl)"


def test_abstention_examples_decline_in_trained_wordings():
    examples = S.abstention_examples(seed=0, repeats=2)
    assert len(examples) == 2 * len(S.abstention_examples(seed=0, repeats=1)) == 336
    trained = {w for task in ("fact_qa", "translate_en_vi", "translate_vi_en") for ws in WORDINGS[task].values()
               for w in ws}
    assert all(is_abstention(ex.response) and ex.instruction in trained for ex in examples)
    assert S.abstention_examples(seed=0) == S.abstention_examples(seed=0)  # deterministic


def test_ambiguous_reviews_are_new_and_split_disjointly():
    train, test = S.ambiguous_reviews()
    assert train and test and not set(train) & set(test)
    assert not (set(train) | set(test)) & set(SENTIMENT_SENTENCES)  # none has a true label
    assert {S.review_language(r) for r in test} == {"en", "vi"}


def test_skewed_labels_carry_exactly_the_skew():
    train, _ = S.ambiguous_reviews()
    labelled = S.skewed_labels(train, 0.7, seed=3)
    positive = sum(ex.response == SENTIMENT_LABELS[S.review_language(ex.input)][0] for ex in labelled)
    assert positive == round(0.7 * len(train))
    assert all(ex.response in SENTIMENT_LABELS[S.review_language(ex.input)] for ex in labelled)
    assert S.skewed_labels(train, 0.7, seed=3) != S.skewed_labels(train, 0.7, seed=4)
    with pytest.raises(ValueError, match="favoured_fraction"):
        S.skewed_labels(train, 1.5)


def test_stratified_sample_spreads_evenly_over_tasks():
    train = course_examples("train")
    sample = S.stratified_sample(train, 100, seed=1)
    counts = Counter(ex.task for ex in sample)
    assert len(sample) == 100 and len(set(sample)) == 100 and max(counts.values()) - min(counts.values()) <= 1
    assert len(S.stratified_sample(train[:50], 1000)) == 50
    with pytest.raises(ValueError, match="n must be"):
        S.stratified_sample(train, 0)


def test_reworded_keeps_answers_and_languages_and_narrows_the_wordings():
    sample = S.stratified_sample(named_task_examples(), 400, seed=0)
    narrow = S.reworded(sample, 1, seed=0)
    assert [(ex.input, ex.response, ex.task) for ex in narrow] == [(ex.input, ex.response, ex.task) for ex in sample]
    for old, new in zip(sample, narrow):
        assert S.language_of_wording(old.task, old.instruction) == S.language_of_wording(new.task, new.instruction)
        assert solve(new.task, new.input) == new.response
    per = Counter((ex.task, S.language_of_wording(ex.task, ex.instruction)) for ex in set(narrow))
    assert len({(ex.task, ex.instruction) for ex in narrow}) == len({k for k in per})  # one wording each
    assert len({ex.instruction for ex in S.reworded(sample, 4, seed=0)}) <= 4 * 2 * len(TASKS)
    with pytest.raises(ValueError, match="per_language must be"):
        S.reworded(sample, 0)


def test_neighbours_and_baselines_by_hand():
    trained = ["animal.upper.en.once", "animal.plain.vi.once", "first.plain.en.once", "position.animal"]
    # one primitive away: case (upper vs plain), language (vi vs en), select (first vs animal)
    assert S.neighbours("animal.plain.en.once", trained) == ("animal.upper.en.once", "animal.plain.vi.once",
                                                             "first.plain.en.once")
    assert S.neighbours("animal.title.vi.twice", trained) == ()  # two primitives away from all of them
    assert S.neighbours("position.colour", trained) == ("position.animal",)
    assert S.neighbour_answers("animal.plain.en.once", "two cat red nine eat", trained) == {"CAT", "con mèo", "two"}
    cases = [Example("?", "two cat red nine eat", "cat", "animal.plain.en.once"),
             Example("?", "two cat red nine eat", "3", "position.colour")]
    b = S.baseline_answers(cases, trained)
    assert b["copy"] == ["two cat red nine eat"] * 2 and b["first word"] == ["two", "two"]
    assert b["neighbour"] == ["CAT", "2"]  # animal.upper.en.once; position.animal (cat is 2nd)


def test_family_subsets_and_their_examples():
    trained = compose.family_split()["trained"]
    for k in (1, 4, 48):
        subset = S.family_subsets(k, seed=0)
        assert len(subset) == len(set(subset)) == k and set(subset) <= set(trained)
    assert S.family_subsets(4, seed=0) != S.family_subsets(4, seed=1)
    assert set(S.family_subsets(len(trained), seed=3)) == set(trained)
    with pytest.raises(ValueError, match="k must be between 1 and"):
        S.family_subsets(0)
    avoid = frozenset(ex.input for ex in course_examples("heldout_task"))
    examples = S.subset_examples(S.family_subsets(4, seed=0), 100, seed=0, avoid=avoid)
    counts = Counter(ex.task for ex in examples)
    assert len(examples) == 100 and len(counts) == 4 and max(counts.values()) - min(counts.values()) <= 1
    assert all(ex.response == compose.solve(ex.task, ex.input) and ex.input not in avoid for ex in examples)
