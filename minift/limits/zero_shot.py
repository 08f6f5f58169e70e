"""§1, zero-shot on unseen tasks: does training on more task families help with families never seen?

FLAN's experiment at course scale: tune on 1, 3, 6 … of the eleven trained families (a random subset
per seed, ``course.studies.family_subsets``), always the same number of steps, and score exact
match on the held-out families — the three of ``heldout_task`` (lowercase ~ uppercase, second word ~
first word, smallest ~ largest) and two that *compose* trained skills (first word in capitals,
reverse in capitals; ``course.studies.COMPOSED_TASKS``). Next to each, trivial baselines measured the
same way (copy the input, the trained neighbour's answer, the task's commonest answer) and how
often the model answered *as the neighbour task*: the model's own account of what it did instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from minift.course.bundled import course_examples
from minift.course.studies import baseline_answers, composed_examples, family_subsets, neighbour_answer
from minift.course.tasks import TASKS
from minift.evaluate import accuracy_table, evaluate, exact_match
from minift.limits.common import TEMPLATE, share_by_task, tune
from minift.loop import load_model
from minift.tokenizer import Tokenizer

FAMILY_COUNTS = (1, 3, 6, len(TASKS))


def zero_shot_questions() -> list:
    """The held-out-task questions: ``heldout_task`` and the composed tasks."""
    return course_examples("heldout_task") + composed_examples()


def neighbour_rate(examples, predictions) -> dict[str, float]:
    """Per held-out task: the share of answers equal to what its trained neighbour task would answer."""
    return share_by_task(examples, [exact_match(pred, neighbour_answer(ex.task, ex.input))
                                    for ex, pred in zip(examples, predictions, strict=True)])


def baselines() -> dict[str, dict]:
    """Accuracy tables of the trivial baselines on the held-out-task questions."""
    questions = zero_shot_questions()
    return {name: accuracy_table(questions, answers) for name, answers in baseline_answers(questions).items()}


def zero_shot_study(out: Path, base: Path, tokenizer: Tokenizer, *, seed: int, steps: int,
                    family_counts: Sequence[int] = FAMILY_COUNTS) -> dict:
    """One run per family count (its subset drawn with ``seed``); returns per count the families,
    the held-out-task accuracy table and the neighbour rates."""
    train = course_examples("train")
    questions = zero_shot_questions()
    by_count = {}
    for k in family_counts:
        families = family_subsets(k, 1, seed)[0]
        run = tune(out / f"families_{k}", base, [ex for ex in train if ex.task in families], tokenizer,
                   steps=steps, seed=seed)
        params, config = load_model(run)
        table, predictions = evaluate(params, config, tokenizer, questions, template=TEMPLATE, max_new_tokens=16)
        by_count[k] = {"families": list(families), "accuracy": table,
                       "answers_as_neighbour": neighbour_rate(questions, predictions),
                       "examples": [{"task": q.task, "instruction": q.instruction, "input": q.input,
                                     "expected": q.response, "answer": p}
                                    for q, p in list(zip(questions, predictions))[::20]]}
    return {"by_count": by_count}
