"""§2, fine-tuning truyền thống (traditional fine-tuning) against instruction tuning.

Traditional fine-tuning trains one model per task: tuned on sentiment alone, a model answers every
prompt as a sentiment label — whatever the instruction says. The instruction-tuned model, one model
for many tasks, follows the instruction. Both are asked the same held-out questions of every task;
the table gives, per task, each model's exact match and how often its answer is *one of the single
task's answers* (for sentiment: a label), i.e. how often it answered its own task instead.
"""

from __future__ import annotations

from pathlib import Path

from minift.course.bundled import course_examples, named_task_examples
from minift.evaluate import evaluate
from minift.limits.common import TEMPLATE, evaluation_questions, share_by_task, tune
from minift.loop import load_model
from minift.tokenizer import Tokenizer

EVAL_SPLIT = "independent_wording"


def as_task_rate(examples, predictions, task_answers: set[str]) -> dict[str, float]:
    """Per task of ``examples``: the share of predictions that are one of ``task_answers``."""
    return share_by_task(examples, [pred.strip() in task_answers for pred in predictions])


def single_task_study(out: Path, base: Path, tuned: Path, tokenizer: Tokenizer, *, seed: int, steps: int,
                      task: str = "sentiment", limit: int = 0) -> dict:
    """Tune ``base`` on ``task`` alone; compare it with the instruction-tuned ``tuned`` on every task."""
    train = named_task_examples()
    own = [ex for ex in train if ex.task == task]
    if not own:
        raise ValueError(f"single_task_study: no training example of task {task!r}")
    single = tune(out / f"single_{task}", base, own, tokenizer, steps=steps, seed=seed)
    task_answers = {ex.response for ex in own}
    questions = evaluation_questions(EVAL_SPLIT, limit)
    models = {}
    for name, run in (("single_task", single), ("instruction_tuned", tuned)):
        params, config = load_model(run)
        table, predictions = evaluate(params, config, tokenizer, questions, template=TEMPLATE, max_new_tokens=16)
        models[name] = {"accuracy": table, "answers_as_single_task": as_task_rate(questions, predictions, task_answers),
                        "examples": [{"task": q.task, "instruction": q.instruction, "input": q.input, "answer": p}
                                     for q, p in list(zip(questions, predictions))[::40]]}
    return {"task": task, "training_examples": len(own), "models": models}
