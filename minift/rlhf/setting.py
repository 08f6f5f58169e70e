r"""The §4 study's setting: a policy with room to improve, and a learned reward that can be hacked.

Reward over-optimisation (Gao et al. 2023) needs two things the course's main pipeline lacks: an
SFT policy *below* the gold judge's ceiling (so optimising can help at first), and a reward model
whose optimum is not the judge's (so optimising it hard must hurt). Both are built here, from the
course's own tasks (``minift.course``), and both flaws are deliberate and documented:

* **The demonstrations** are the course's train split, a fraction of whose answers a
  demonstrator opened politely (``"Sure! Paris"``, ``"Vâng! Paris"``). The gold judge
  (``minift.course.judge``) wants the bare answer: a polite opening costs an exact answer about
  0.77 of its reward. The SFT run is short, so the policy is still often wrong (gold well below 1).
* **The annotators** (§4's "human feedback", §5's *annotator bias*) prefer the better answer by
  the judge's measure, *plus* a bonus for a polite opening that the judge does not give, and they
  are noisy: each label is drawn from a Bradley–Terry model of their utility,

  .. math:: U(y) = R^\star(y) + b\,\mathbb{1}[y\ \text{opens politely}],\qquad
            P(y_a \succ y_b) = \sigma\big((U(y_a) - U(y_b))/\tau\big).

  The pairs cover the course's train tasks and phrasings only (limited coverage), with candidate
  answers of the kinds ``minift.course.build`` writes (right, wrong, truncated, copied, rambling),
  each opened politely half the time.

A reward model fitted to these labels learns :math:`U`, not :math:`R^\star`: its highest-scoring
answer is a right answer opened politely, which the judge scores 0.23. PPO, DPO, GRPO and
best-of-n all climb the learned reward; how far the gold reward follows is the study
(``minift.rlhf.study``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

from minift.course.build import RAMBLE, REJECTION_KINDS, mistaken_response
from minift.course.judge import judge
from minift.course.tasks import TASKS, make_input, phrasing_language, phrasings, solve
from minift.data import Example, format_prompt
from minift.preferences import PreferencePair

# The polite openings, one word each: what the annotators like and the judge does not.
POLITE_OPENINGS: dict[str, tuple[str, ...]] = {"en": ("Sure!", "Certainly!"), "vi": ("Vâng!", "Dạ!")}
_ALL_OPENINGS = tuple(o for group in POLITE_OPENINGS.values() for o in group)


def opens_politely(response: str) -> bool:
    """Whether ``response`` starts with one of ``POLITE_OPENINGS`` (the surface feature of the bias)."""
    first = response.strip().split(maxsplit=1)
    return bool(first) and first[0] in _ALL_OPENINGS


def polite(response: str, lang: str, rng: random.Random) -> str:
    """``response`` opened politely in ``lang`` (``"en"`` or ``"vi"``)."""
    return f"{rng.choice(POLITE_OPENINGS[lang])} {response}"


@dataclass(frozen=True)
class Annotator:
    """The simulated labellers of §4: the judge's preference, a bias, and noise (see the module doc).

    ``polite_bonus`` is :math:`b`, what a polite opening is worth to them in units of the gold
    reward; ``noise`` is :math:`\\tau` (0 = every label follows :math:`U` exactly).
    """

    polite_bonus: float = 0.8  # > 0.77, what a polite opening costs a right answer with the judge
    noise: float = 0.05

    def __post_init__(self):
        if self.noise < 0 or not math.isfinite(self.noise):
            raise ValueError(f"Annotator: noise must be a number >= 0, got {self.noise!r}.")
        if not math.isfinite(self.polite_bonus):
            raise ValueError(f"Annotator: polite_bonus must be a finite number, got {self.polite_bonus!r}.")

    def utility(self, gold: float, response: str) -> float:
        r""":math:`U(y) = R^\star(y) + b\,\mathbb{1}[\text{polite}]`."""
        return gold + self.polite_bonus * opens_politely(response)


def preference_probability(u_a: float, u_b: float, noise: float) -> float:
    r"""Bradley–Terry probability that an annotator prefers :math:`y_a` (§4):
    :math:`\sigma\big((U_a - U_b)/\tau\big)`; with :math:`\tau = 0` the better one always wins (½ on a tie)."""
    if noise == 0:
        return 1.0 if u_a > u_b else 0.0 if u_a < u_b else 0.5
    z = (u_a - u_b) / noise
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def rambling(response: str, lang: str, rng: random.Random) -> str:
    """``response`` followed by filler in ``lang`` (``minift.course.build.RAMBLE``): what a verbose demonstrator writes."""
    return f"{response}, {rng.choice(RAMBLE[lang])}"


def demonstrations(examples: Sequence[Example], polite_fraction: float, rambling_fraction: float,
                   seed: int = 0) -> list[Example]:
    """``examples`` as a mixed team of demonstrators wrote them: a ``rambling_fraction`` of the answers
    trail off into filler, and a ``polite_fraction`` open politely (in the wording's language)."""
    for name, value in (("polite_fraction", polite_fraction), ("rambling_fraction", rambling_fraction)):
        if not 0 <= value <= 1:
            raise ValueError(f"demonstrations: {name} must be in [0, 1], got {value!r}.")
    rng = random.Random(f"demonstrations:{seed}")
    out = []
    for e in examples:
        lang = phrasing_language(e.task, e.instruction)
        response = rambling(e.response, lang, rng) if rng.random() < rambling_fraction else e.response
        if rng.random() < polite_fraction:
            response = polite(response, lang, rng)
        out.append(e._replace(response=response))
    return out


def candidate_answer(task: str, input: str, lang: str, rng: random.Random) -> str:
    """One answer an annotator is shown: the right one or a mistake (``REJECTION_KINDS``), polite half the time."""
    kinds, weights = zip(*(("right", 0.4), *((k, 0.6 * w) for k, w in REJECTION_KINDS)))
    truth = solve(task, input)
    answer = None
    while answer is None:
        kind = rng.choices(kinds, weights)[0]
        answer = truth if kind == "right" else mistaken_response(task, input, truth, lang, kind, rng)
    return polite(answer, lang, rng) if rng.random() < 0.5 else answer


def labelled_pair(instruction: str, input: str, task: str, a: str, b: str, annotator: Annotator,
                  rng: random.Random, template: str) -> PreferencePair:
    """Two answers to (instruction, input) shown to ``annotator``: the chosen one is drawn with
    :func:`preference_probability`. ``prompt`` is written in ``template``, so the reward model reads
    what the policy answers after."""
    u_a, u_b = (annotator.utility(judge(instruction, input, y, task=task), y) for y in (a, b))
    chosen, rejected = (a, b) if rng.random() < preference_probability(u_a, u_b, annotator.noise) else (b, a)
    prompt = format_prompt(Example(instruction, input, ""), template)
    return PreferencePair(prompt, chosen, rejected, "train", task, instruction, input)


def annotated_pairs(n: int, annotator: Annotator, template: str, seed: int = 0) -> list[PreferencePair]:
    """``n`` pairs of written candidate answers (:func:`candidate_answer`) to fresh questions of the
    train tasks and phrasings, labelled by ``annotator``."""
    if n < 1:
        raise ValueError(f"annotated_pairs: n must be >= 1, got {n}.")
    rng = random.Random(f"annotated_pairs:{seed}")
    pairs = []
    while len(pairs) < n:
        task = TASKS[len(pairs) % len(TASKS)]
        lang = rng.choice(("en", "vi"))
        instruction = rng.choice(phrasings(task)[lang])
        input = make_input(task, rng, lang)
        a, b = candidate_answer(task, input, lang, rng), candidate_answer(task, input, lang, rng)
        if a != b:
            pairs.append(labelled_pair(instruction, input, task, a, b, annotator, rng, template))
    return pairs


def annotate(questions: Sequence[Example], answers_a: Sequence[str], answers_b: Sequence[str],
             annotator: Annotator, template: str, seed: int = 0) -> list[PreferencePair]:
    """Pairs of given answers (e.g. two samples of the SFT policy, as InstructGPT labels them),
    labelled by ``annotator``; a question whose two answers are equal gives no pair."""
    if not len(questions) == len(answers_a) == len(answers_b):
        raise ValueError(f"annotate: {len(questions)} questions but {len(answers_a)} and {len(answers_b)} answers.")
    rng = random.Random(f"annotate:{seed}")
    return [labelled_pair(q.instruction, q.input, q.task, a, b, annotator, rng, template)
            for q, a, b in zip(questions, answers_a, answers_b) if a.strip() != b.strip()]
