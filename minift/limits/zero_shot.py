"""§1, zero-shot on unseen tasks: does training on more task families help with families never seen?

FLAN's experiment at course scale, on the compositional space (``minift.course.compose``): tune
the base model on k of its trained families (a random subset per seed,
``course.studies.family_subsets``), always on the same number of examples and steps, and score
exact match on the families no run ever trains on — ``heldout_task`` (new combinations of trained
primitives) and ``heldout_cluster`` (every family of a primitive never trained, T0-style). Next to
each, trivial baselines measured the same way, and how often the model answered as a trained
family one primitive away would: the model's own account of what it did instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from minift.course import compose
from minift.course.bundled import course_examples
from minift.course.studies import baseline_answers, family_subsets, neighbour_answers, subset_examples
from minift.data import Example
from minift.evaluate import accuracy_table, evaluate, normalize_answer
from minift.limits.common import TEMPLATE, tune
from minift.loop import load_model
from minift.tokenizer import Tokenizer

SPLITS = ("heldout_task", "heldout_cluster")
FAMILY_COUNTS = (4, 16, 48, len(compose.family_split()["trained"]))
EXAMPLES = 4000  # training examples of every run, whatever its number of families
STEPS = 600  # 12 runs (4 counts x 3 seeds) fit the study's 20 minutes on a 2-core CPU


def zero_shot_questions() -> dict[str, list]:
    """The held-out questions by split: new combinations, and the held-out primitive's families."""
    return {split: course_examples(split) for split in SPLITS}


def trained_family_questions(families: Sequence[str], train, seed: int, n: int = 192) -> list:
    """About ``n`` questions of the run's *own* families on fresh inputs: the accuracy a held-out
    family would have if composing cost nothing (the ceiling of the zero-shot number)."""
    rng = random.Random(f"zero-shot-trained-{seed}-{len(families)}")
    names = rng.sample(list(families), min(len(families), 48))
    avoid = frozenset(ex.input for ex in train)
    return [Example(*r, "trained_families") for r in
            compose.family_examples(names, max(1, n // len(names)), rng, avoid=avoid)]


def neighbour_rate(examples, predictions, trained: Sequence[str]) -> float:
    """The share of answers that equal what some family of ``trained`` one primitive away from the
    question's family would answer (and are wrong): the model followed all but one clause."""
    hits = [normalize_answer(p) != normalize_answer(ex.response)
            and normalize_answer(p) in {normalize_answer(a) for a in neighbour_answers(ex.task, ex.input, trained)}
            for ex, p in zip(examples, predictions, strict=True)]
    return sum(hits) / len(hits)


def baselines() -> dict[str, dict[str, float]]:
    """Overall accuracy of each trivial baseline, per held-out split."""
    out: dict[str, dict[str, float]] = {}
    for split, questions in zero_shot_questions().items():
        for name, answers in baseline_answers(questions, compose.family_split()["trained"]).items():
            out.setdefault(name, {})[split] = accuracy_table(questions, answers)["overall"]
    return out


def zero_shot_study(out: Path, base: Path, tokenizer: Tokenizer, *, seed: int, steps: int,
                    family_counts: Sequence[int] = FAMILY_COUNTS, examples: int = EXAMPLES, limit: int = 0) -> dict:
    """One run per family count (its subset drawn with ``seed``); returns per count the families,
    each held-out split's accuracy table and neighbour rate, the accuracy on the run's own families
    (fresh inputs), and a few answers. ``limit``: at most that many questions per split (0 = all)."""
    questions = {split: qs[: limit or None] for split, qs in zero_shot_questions().items()}
    asked = frozenset(q.input for qs in questions.values() for q in qs)
    by_count = {}
    for k in family_counts:
        families = family_subsets(k, seed)
        train = subset_examples(families, examples, seed, avoid=asked)
        run = tune(out / f"families_{k}", base, train, tokenizer, steps=steps, seed=seed)
        params, config = load_model(run)
        row: dict = {"families": list(families)}
        own = trained_family_questions(families, train, seed, n=limit or 192)
        for split, qs in {**questions, "trained_families": own}.items():
            table, predictions = evaluate(params, config, tokenizer, qs, template=TEMPLATE, max_new_tokens=16)
            row[split] = table
            if split != "trained_families":
                row[f"{split}_as_neighbour"] = neighbour_rate(qs, predictions, families)
            row[f"{split}_examples"] = [{"task": q.task, "instruction": q.instruction, "input": q.input,
                                         "expected": q.response, "answer": p}
                                        for q, p in list(zip(qs, predictions))[::25]]
        row["accuracy"] = row["heldout_task"]  # the headline split, under the schema's name
        by_count[k] = row
    return {"by_count": by_count}
