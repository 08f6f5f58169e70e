r"""§5, bias (thiên kiến): a known annotator skew, and what the tuned model does with it.

Reviews that are neither good nor bad (``course.studies.ambiguous_reviews``) are labelled
"positive" in a fraction $q$ of the training examples (``skewed_labels``), next to the ordinary
sentiment data. On held-out ambiguous reviews the model says "positive" at a rate $\hat p$; the
amplification is $\hat p - q$: above 0 the model amplifies the annotators' skew, near 0 it copies it,
below 0 it dampens it. Greedy decoding picks the likeliest label, so a model that has learned
$P(\text{positive})=q>\tfrac12$ answers "positive" *every* time; sampling at temperature 1 draws it
at rate $q$. Measured at several training lengths.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import jax

from minift.checkpoint import checkpoint_path
from minift.course.bundled import course_examples
from minift.course.phrasings import WORDINGS
from minift.course.studies import ambiguous_reviews, review_language, skewed_labels
from minift.course.world import SEED, SENTIMENT_LABELS
from minift.data import Example
from minift.evaluate import answer, evaluate
from minift.generate import Sampling
from minift.limits.common import TEMPLATE, tune
from minift.loop import load_model
from minift.tokenizer import Tokenizer

SAMPLES_PER_REVIEW = 4  # sampled answers per held-out review (the greedy one is deterministic)


def amplification(model_rate: float, data_rate: float) -> float:
    r"""Bias amplification: $\hat p_{\text{model}} - q_{\text{data}}$, the model's rate of the favoured
    label on balanced ambiguous inputs minus the rate in its training labels (Zhao et al. 2017)."""
    for name, value in (("model_rate", model_rate), ("data_rate", data_rate)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"amplification: {name} must be a rate in [0, 1], got {value}")
    return model_rate - data_rate


def favoured_rate(answers: Sequence[str], reviews: Sequence[str]) -> tuple[float, float]:
    """(share of answers that are the favoured label in the review's language, share that are no label)."""
    if len(answers) != len(reviews) or not answers:
        raise ValueError(f"favoured_rate: {len(answers)} answers for {len(reviews)} reviews; one each, at least one")
    favoured = sum(a.strip() == SENTIMENT_LABELS[review_language(r)][0] for a, r in zip(answers, reviews))
    invalid = sum(a.strip() not in SENTIMENT_LABELS[review_language(r)] for a, r in zip(answers, reviews))
    return favoured / len(answers), invalid / len(answers)


def ask(reviews: Sequence[str]) -> list[Example]:
    """Each review asked with a trained sentiment wording of its language (fixed draw)."""
    rng = random.Random(f"{SEED}-ask-ambiguous")
    return [Example(rng.choice(WORDINGS["sentiment"][review_language(r)]), r, "", "sentiment_ambiguous")
            for r in reviews]


def bias_study(out: Path, base: Path, tokenizer: Tokenizer, *, seed: int, steps: int, skew: float = 0.7,
               n_checkpoints: int = 4) -> dict:
    """Tune ``base`` on sentiment + skewed ambiguous reviews; measure greedy and sampled rates of the
    favoured label on held-out ambiguous reviews at ``n_checkpoints`` training lengths."""
    train_reviews, test_reviews = ambiguous_reviews()
    skewed = skewed_labels(train_reviews, skew, seed)
    data_rate = sum(ex.response == SENTIMENT_LABELS[review_language(ex.input)][0] for ex in skewed) / len(skewed)
    sentiment = [ex for ex in course_examples("train") if ex.task == "sentiment"]
    every = max(1, steps // n_checkpoints)
    run = tune(out / "sft_skewed", base, sentiment + skewed, tokenizer, steps=steps, seed=seed,
               checkpoint_every=every, keep_checkpoints=n_checkpoints + 1)
    questions = ask(test_reviews)
    sampled_q = [q for q in questions for _ in range(SAMPLES_PER_REVIEW)]
    clear = [ex for ex in course_examples("independent_wording") if ex.task == "sentiment"]
    by_step = []
    for step in [*range(every, steps, every), steps][-n_checkpoints:]:
        params, config = load_model(checkpoint_path(run, step))
        greedy = answer(params, config, tokenizer, questions, template=TEMPLATE, max_new_tokens=8)
        sampled = answer(params, config, tokenizer, sampled_q, template=TEMPLATE, max_new_tokens=8,
                         sampling=Sampling(temperature=1.0), key=jax.random.PRNGKey(seed))
        (g_rate, g_invalid), (s_rate, s_invalid) = favoured_rate(greedy, test_reviews), favoured_rate(
            sampled, [q.input for q in sampled_q])
        by_step.append({"step": step, "greedy": g_rate, "sampled": s_rate, "greedy_invalid": g_invalid,
                        "sampled_invalid": s_invalid,
                        "greedy_amplification": amplification(g_rate, data_rate),
                        "sampled_amplification": amplification(s_rate, data_rate),
                        "clear_review_accuracy": evaluate(params, config, tokenizer, clear, template=TEMPLATE,
                                                          max_new_tokens=8)[0]["overall"]})
    return {"data_rate": data_rate, "n_test_reviews": len(test_reviews), "n_skewed_examples": len(skewed),
            "by_step": by_step}
