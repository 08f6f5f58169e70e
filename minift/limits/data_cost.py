"""§5, chi phí dữ liệu (the cost of gold data): how much does each labelled example buy?

Two curves at one training budget (the same number of steps for every run):

* quantity — exact match on new wordings of the trained tasks against the number of SFT examples
  (log-spaced, spread evenly over the tasks: ``course.studies.stratified_sample``);
* diversity — a fixed number of examples, each task asked in only 1, 4, 16 … wordings per language
  (``course.studies.reworded``): FLAN/T0's lesson is that wordings, not only examples, buy
  generalisation to new wordings.

Aggregated over seeds by ``minift.seeds.curve``; ``minift.seeds.flattening_point`` says where
more data stops paying.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from minift.course.bundled import course_examples, named_task_examples
from minift.course.phrasings import WORDINGS_PER_LANGUAGE
from minift.course.studies import reworded, stratified_sample
from minift.evaluate import evaluate
from minift.limits.common import TEMPLATE, evaluation_questions, tune
from minift.loop import load_model
from minift.tokenizer import Tokenizer

EVAL_SPLIT = "independent_wording"
SIZES = (64, 256, 1024, 4096, 0)  # 0 = all training examples
WORDING_COUNTS = (1, 4, 16)  # and all of them: the quantity run of the same size
DIVERSITY_BUDGET = 1024


def data_cost_study(out: Path, base: Path, tokenizer: Tokenizer, *, seed: int, steps: int,
                    sizes: Sequence[int] = SIZES, wording_counts: Sequence[int] = WORDING_COUNTS,
                    budget: int = DIVERSITY_BUDGET, limit: int = 0) -> dict:
    """``{"quantity": {n: accuracy}, "diversity": {wordings per language: accuracy}, "budget", "steps"}``."""
    train = named_task_examples()
    questions = evaluation_questions(EVAL_SPLIT, limit)

    def score(run: Path) -> float:
        params, config = load_model(run)
        return evaluate(params, config, tokenizer, questions, template=TEMPLATE, max_new_tokens=16)[0]["overall"]

    quantity = {}
    for n in sizes:
        n = n or len(train)
        quantity[n] = score(tune(out / f"examples_{n}", base, stratified_sample(train, n, seed), tokenizer,
                                 steps=steps, seed=seed))
    sample = stratified_sample(train, budget, seed)
    diversity = {k: score(tune(out / f"wordings_{k}", base, reworded(sample, k, seed), tokenizer, steps=steps,
                               seed=seed)) for k in wording_counts}
    diversity[WORDINGS_PER_LANGUAGE] = quantity[budget] if budget in quantity else score(
        tune(out / f"examples_{budget}", base, sample, tokenizer, steps=steps, seed=seed))
    return {"quantity": quantity, "diversity": diversity, "budget": budget, "steps": steps, "eval_split": EVAL_SPLIT}
