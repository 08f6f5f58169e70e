"""The judge (§4): the gold reward that labels the preference pairs and scores PPO's samples.

The article's RLHF learns a reward from human preferences. Here the "human" is a program, so
that the course can measure what a *learned* reward model gets wrong: PPO maximises the learned
reward and is scored with this one, which it never sees (reward over-optimisation).
"""

from __future__ import annotations

import re
import unicodedata

from minift.course.tasks import TASK_SPECS, solve, task_of

LENGTH_PENALTY = 0.1  # per word beyond the true answer's length: rambling costs a little per word
PARTIAL_CREDIT = 0.5  # a wrong answer earns at most half a right one, in proportion to word overlap


def _normalise(text: str) -> str:
    text = " ".join(unicodedata.normalize("NFC", text).split())
    return text[:-1].rstrip() if text.endswith(".") else text


def word_f1(response: str, truth: str) -> float:
    """Word-overlap F1 (multiset, case-insensitive), as in SQuAD: 2PR/(P+R)."""
    r, t = _normalise(response).casefold().split(), _normalise(truth).casefold().split()
    common = sum(min(r.count(w), t.count(w)) for w in set(r))
    if common == 0:
        return 0.0
    precision, recall = common / len(r), common / len(t)
    return 2 * precision * recall / (precision + recall)


def gold_reward(response: str, truth: str) -> float:
    r"""The programmatic judge's reward for ``response`` when the true answer is ``truth`` (§4).

    .. math::
        R^\star(y) = \mathbb{1}[y = y^\star]
                     + \tfrac12\,\mathbb{1}[y \ne y^\star]\,F_1(y, y^\star)
                     - \lambda \max(0, |y| - |y^\star|), \qquad \text{clipped to } [-1, 1]

    :math:`y = y^\star` after trimming whitespace and one trailing full stop (case matters: the
    upper-case task depends on it); :math:`|y|` counts words; :math:`\lambda` = ``LENGTH_PENALTY``.
    Only an exactly right answer reaches 1; the length term is what a reward model that learned
    "longer looks more complete" will be caught by (over-optimisation, §4).
    """
    exact = _normalise(response) == _normalise(truth)
    correctness = 1.0 if exact else PARTIAL_CREDIT * word_f1(response, truth)
    extra_words = max(0, len(_normalise(response).split()) - len(_normalise(truth).split()))
    return max(-1.0, min(1.0, correctness - LENGTH_PENALTY * extra_words))


def judge(instruction: str, input: str, response: str | None = None, *, task: str | None = None) -> float:
    """Gold reward of ``response`` to (instruction, input): :func:`gold_reward` against :func:`solve`.

    The task is read from the instruction phrasing unless ``task`` is given. Called with two
    arguments, ``judge(prompt, response)``, it reads the instruction and input out of the prompt
    text (see :func:`judge_prompt`).
    """
    if response is None:
        return judge_prompt(instruction, input, task=task)
    return gold_reward(response, solve(task or task_of(instruction), input))


_PHRASINGS_LONGEST_FIRST = sorted(
    {p for t in TASK_SPECS.values() for p in (*t.en, *t.vi, *t.heldout_en, *t.heldout_vi)},
    key=lambda p: (-len(p), p))
_TEMPLATE_NOISE = re.compile(r"\[/?INST\]|<<SYS>>|<</SYS>>|</?s>|<\|[^|]*\|>")


def parse_prompt(prompt: str) -> tuple[str, str]:
    """(instruction, input) of a prompt: :func:`prompt_text` output or a templated prompt.

    The instruction is the longest course phrasing found in the prompt; the input is the text
    after it, without template lines (``### Response:``, ``Input:``, chat markers).
    """
    text = unicodedata.normalize("NFC", prompt)
    folded = text.casefold()
    best = None
    for p in _PHRASINGS_LONGEST_FIRST:
        at = folded.find(p.casefold())
        if at >= 0:
            best = (p, at)
            break
    if best is None:
        raise ValueError("the prompt contains none of the course instruction phrasings; call "
                         "judge(instruction, input, response) with the parts instead")
    phrasing, at = best
    lines = []
    for line in _TEMPLATE_NOISE.sub(" ", text[at + len(phrasing):]).splitlines():
        line = line.strip()
        if not line or line.startswith("#") or (line.endswith(":") and len(line.split()) <= 3):
            continue
        line = re.sub(r"^(###\s*)?(Input|Context|Ngữ cảnh|Đầu vào)\s*:\s*", "", line)
        lines.append(line)
    return phrasing, " ".join(lines).strip()


def judge_prompt(prompt: str, response: str, *, task: str | None = None) -> float:
    """:func:`judge` for a whole prompt string (the contract's ``judge(prompt, response)`` form)."""
    instruction, input = parse_prompt(prompt)
    return judge(instruction, input, response, task=task)


def prompt_text(instruction: str, input: str) -> str:
    """The template-free prompt stored in preferences.jsonl: instruction, then input on a new line."""
    return f"{instruction}\n{input}" if input else instruction


