"""The course's records: instructions (§2.1), preference pairs (§4) and out-of-distribution questions (§5).

Each ``build_*`` function returns the records of one file of ``data/samples/`` as plain dicts,
deterministically (fixed seeds, no network); ``minift.course.bundled.generate`` writes them.

* instructions — Instruction / Input / Output triples in five splits: ``train`` (the eleven
  named tasks and the trained families of the compositional space, ``minift.course.compose``); ``heldout_phrasing`` (trained tasks, held-out wordings genuinely unlike every
  trained one: does the model follow *instructions*, or memorise strings?);
  ``independent_wording`` (the same tasks in wordings written by someone who never saw the
  training ones, ``minift.course.independent``); ``heldout_task`` (compositional families never trained
  on, each a new combination of trained primitives: the zero-shot claim of §1); ``heldout_cluster``
  (the families of a primitive never trained at all, T0's held-out cluster). Training never uses
  a held-out input (``tasks.HELDOUT_INPUTS``), and no held-out family is asked about a trained input.
* preferences — chosen = the true answer, rejected = a plausible mistake, labelled by the judge.
* ood — questions whose true answer the data never contains (§5, hallucination).
"""

from __future__ import annotations

import random

from minift.course import compose
from minift.course.independent import INDEPENDENT_WORDINGS
from minift.course.judge import _normalise, judge, prompt_text
from minift.course.tasks import HELDOUT_INPUTS, SECTION1_EXAMPLE, TASKS, _spec, phrasings, solve
from minift.course.world import FACT_QUESTIONS, LEXICON, SEED, SENTIMENT_LABELS, _cap

SPLITS = ("train", "heldout_phrasing", "independent_wording", "heldout_task", "heldout_cluster")
INSTRUCTION_FIELDS = ("instruction", "input", "output", "task", "split")
PREFERENCE_FIELDS = ("prompt", "instruction", "input", "chosen", "rejected", "task", "kind", "split")
OOD_FIELDS = ("instruction", "input", "task", "resembles", "absent", "note")

# How many examples of each kind: sized so that the demo's SFT (1600 steps of 16) sees each one
# about 2.6 times; drawing twice as many distinct inputs as one would memorise is cheap here.
# Tasks that copy words from the input are learned slowest by a small model, so they get more
# examples; sentiment, counting and the facts are learned in a few hundred steps with fewer.
TRAIN_EXAMPLES: dict[str, int] = {
    "translate_en_vi": 880, "translate_vi_en": 880, "reverse_words": 1280, "uppercase": 1120,
    "count_words": 640, "first_word": 960, "last_word": 960, "sort_numbers": 1040, "max_number": 800,
    "sentiment": 560, "fact_qa": 720,
}
HELDOUT_PHRASING_PER_TASK = 48
# The compositional space: 24 examples of each of its 92 trained families (2,208, 18% of the train
# split: at the demo's budget, 64 each cut the named tasks' accuracy on independent wordings by a
# third, measured once), 8 of each held-out one. The zero-shot study draws its own, many more.
COMPOSED_PER_FAMILY = 24
HELDOUT_PER_FAMILY = 8
N_PREFERENCES = 2000
PREFERENCE_HELDOUT_FRACTION = 0.1


def _record(instruction: str, input: str, task: str, split: str) -> dict[str, str]:
    return {"instruction": instruction, "input": input, "output": solve(task, input),
            "task": task, "split": split}


def _composed(record: tuple[str, str, str, str], split: str) -> dict[str, str]:
    instruction, input, output, family = record
    return {"instruction": instruction, "input": input, "output": output, "task": family, "split": split}


def _draw(task: str, phrasings_by_lang: dict[str, tuple[str, ...]], n: int, split: str,
          rng: random.Random, avoid: frozenset[tuple[str, str]] = frozenset()) -> list[dict[str, str]]:
    """``n`` distinct (instruction, input) examples, cycling through the phrasings evenly.

    Training examples never use a held-out input (``tasks.HELDOUT_INPUTS``); evaluation ones may,
    but never repeat an (instruction, input) pair in ``avoid`` (the training pairs).
    """
    spec = _spec(task)
    excluded = HELDOUT_INPUTS.get(task, frozenset()) if split == "train" else frozenset()
    cycle = [(p, lang) for pair in zip(phrasings_by_lang["en"], phrasings_by_lang["vi"])
             for p, lang in zip(pair, ("en", "vi"))]
    seen: set[tuple[str, str]] = set()
    out = []
    for i in range(n):
        phrasing, lang = cycle[i % len(cycle)]
        for _ in range(1000):  # redraw duplicates; every pool is far larger than what is drawn
            x = spec.make_input(rng, lang)
            if (phrasing, x) not in seen and (phrasing, x) not in avoid and x not in excluded:
                break
        else:
            raise ValueError(f"{task}: cannot draw {n} distinct examples; lower its example count")
        seen.add((phrasing, x))
        out.append(_record(phrasing, x, task, split))
    return out


def build_instructions() -> list[dict[str, str]]:
    """All instruction examples: train (shuffled), then heldout_phrasing, independent_wording,
    heldout_task and heldout_cluster, by task."""
    train: list[dict[str, str]] = []
    heldout: list[dict[str, str]] = []
    independent: list[dict[str, str]] = []
    for task in TASKS:
        train += _draw(task, phrasings(task), TRAIN_EXAMPLES[task], "train",
                       random.Random(f"{SEED}:train:{task}"))
    trained = frozenset((r["instruction"], r["input"]) for r in train)
    for task in TASKS:
        heldout += _draw(task, phrasings(task, heldout=True), HELDOUT_PHRASING_PER_TASK, "heldout_phrasing",
                         random.Random(f"{SEED}:heldout_phrasing:{task}"))
        independent += _draw(task, INDEPENDENT_WORDINGS[task], HELDOUT_PHRASING_PER_TASK, "independent_wording",
                             random.Random(f"{SEED}:independent_wording:{task}"), avoid=trained)
    heldout += independent
    families = compose.family_split()
    composed = compose.family_examples(families["trained"], COMPOSED_PER_FAMILY, random.Random(f"{SEED}:composed"))
    trained_inputs = frozenset(r[1] for r in composed)
    for split, names in (("heldout_task", families["heldout"]), ("heldout_cluster", families["cluster"])):
        heldout += [_composed(r, split) for r in compose.family_examples(
            names, HELDOUT_PER_FAMILY, random.Random(f"{SEED}:{split}"), avoid=trained_inputs)]
    random.Random(f"{SEED}:shuffle").shuffle(train)
    composed_train = [_composed(r, "train") for r in composed]
    random.Random(f"{SEED}:shuffle:composed").shuffle(composed_train)
    return _interleave(train, composed_train, random.Random(f"{SEED}:interleave")) + heldout


def _interleave(a: list, b: list, rng: random.Random) -> list:
    """``a`` and ``b`` merged at random positions, each keeping its own order: the named tasks'
    examples stay in the order they had before the compositional space was added, so a study that
    trains on them alone (the §4 setting) sees the same data as before."""
    slots = [0] * len(a) + [1] * len(b)
    rng.shuffle(slots)
    its = (iter(a), iter(b))
    return [next(its[s]) for s in slots]


# preferences.jsonl: chosen = the true answer; rejected = a plausible mistake of one of five kinds

# Mistake kinds, how often each is drawn, and what it is. The mix is deliberately skewed: rejected
# answers are more often *shorter* than the chosen one (truncated) than longer (rambling, repeated),
# so a reward model can learn the spurious cue "longer is better", which the gold judge's length
# penalty punishes: the reward over-optimisation of §4 (cf. Singhal et al. 2023, length in RLHF).
REJECTION_KINDS: tuple[tuple[str, float], ...] = (
    ("wrong", 0.45), ("truncated", 0.35), ("copy_input", 0.10), ("rambling", 0.05), ("repeated", 0.05),
)
REJECTION_DESCRIPTIONS: dict[str, str] = {
    "wrong": "a plausible wrong answer: another lexicon entry or fact of the same kind, a shuffled "
             "list, a count off by one, another word or number of the input, the flipped label",
    "truncated": "the first half of the answer (of its words, or of its letters for one word)",
    "copy_input": "the input, unchanged",
    "rambling": "the answer followed by filler (\"..., I hope this helps you\")",
    "repeated": "the answer twice",
}
RAMBLE = {
    "en": ("and that is all I know", "I hope this helps you", "but I am not completely sure",
           "as everyone already knows", "which is a good answer"),
    "vi": ("và đó là tất cả những gì tôi biết", "hy vọng điều này giúp ích cho bạn",
           "nhưng tôi không chắc lắm", "như mọi người đều biết", "đó là một câu trả lời hay"),
}


def _wrong(task: str, input: str, truth: str, rng: random.Random) -> str:
    """A plausible wrong answer of the right type."""
    if task in ("translate_en_vi", "translate_vi_en"):
        return rng.choice([vi if task == "translate_en_vi" else en for en, vi in LEXICON])
    if task in ("reverse_words", "sort_numbers"):
        parts = input.split()
        rng.shuffle(parts)
        return " ".join(parts)
    if task == "uppercase":
        return " ".join(_cap(w) for w in input.split())
    if task == "count_words":
        return str(int(truth) + rng.choice((-1, 1)))
    if task in ("first_word", "last_word", "max_number"):
        return rng.choice(input.split())
    if task == "sentiment":
        for labels in SENTIMENT_LABELS.values():
            if truth in labels:
                return labels[1 - labels.index(truth)]
    if task == "fact_qa":  # another answer to the same kind of question, in the same language
        _, lang, relation = FACT_QUESTIONS[input]
        same_kind = {a for a, l, r in FACT_QUESTIONS.values() if (l, r) == (lang, relation)}
        return rng.choice(sorted(same_kind))
    raise ValueError(f"no wrong-answer rule for task {task!r}")


def mistaken_response(task: str, input: str, truth: str, lang: str, kind: str, rng: random.Random) -> str | None:
    """A mistaken response of ``kind`` (``REJECTION_KINDS``); None when that kind cannot differ from the truth here."""
    if kind == "wrong":
        candidate = _wrong(task, input, truth, rng)
    elif kind == "truncated":
        words = truth.split()
        if len(words) > 1:
            candidate = " ".join(words[: max(1, len(words) // 2)])
        else:
            candidate = truth[: len(truth) // 2]
    elif kind == "copy_input":
        candidate = input
    elif kind == "rambling":
        candidate = f"{truth}, {rng.choice(RAMBLE[lang])}"
    else:  # repeated
        candidate = f"{truth} {truth}"
    ok = candidate.strip() and _normalise(candidate) != _normalise(truth)
    return candidate if ok else None


def build_preferences() -> list[dict[str, str]]:
    """N_PREFERENCES pairs over the trained tasks and train phrasings, labelled by :func:`judge`."""
    rng = random.Random(f"{SEED}:preferences")
    kinds, weights = zip(*REJECTION_KINDS)
    seen: set[tuple[str, str]] = set()
    n_heldout = int(N_PREFERENCES * PREFERENCE_HELDOUT_FRACTION)
    pairs = []
    while len(pairs) < N_PREFERENCES:
        task = TASKS[len(pairs) % len(TASKS)]
        lang = rng.choice(("en", "vi"))
        instruction = rng.choice(phrasings(task)[lang])
        input = _spec(task).make_input(rng, lang)
        if (instruction, input) in seen:
            continue
        truth = solve(task, input)
        kind = rng.choices(kinds, weights)[0]
        rejected = mistaken_response(task, input, truth, lang, kind, rng)
        if rejected is None:
            continue
        seen.add((instruction, input))
        # The label comes from the judge, as a human label would come from a person.
        chosen_score = judge(instruction, input, truth, task=task)
        rejected_score = judge(instruction, input, rejected, task=task)
        if not chosen_score > rejected_score:
            raise AssertionError(f"judge does not prefer the truth for {task}: {truth!r} vs {rejected!r}")
        split = "heldout" if len(pairs) >= N_PREFERENCES - n_heldout else "train"
        pairs.append({"prompt": prompt_text(instruction, input), "instruction": instruction, "input": input,
                      "chosen": truth, "rejected": rejected, "task": task, "kind": kind, "split": split})
    return pairs


# ood.jsonl (§5): things the data never says; any confident answer is made up

OOD_COUNTRIES = (("Peru", "Pê-ru"), ("Kenya", "Kê-ni-a"), ("Norway", "Na Uy"), ("Mongolia", "Mông Cổ"),
                 ("Brazil", "Bra-xin"), ("Mexico", "Mê-hi-cô"), ("Sweden", "Thụy Điển"),
                 ("Argentina", "Ác-hen-ti-na"))
OOD_EN_WORDS = ("telescope", "volcano", "umbrella", "dragon", "penguin", "piano", "library", "island")
OOD_VI_WORDS = (("cái ô", "umbrella"), ("con rồng", "dragon"), ("thư viện", "library"),
                ("chim cánh cụt", "penguin"))
OOD_THINGS = (("What colour is a flamingo?", "flamingo"), ("How many legs does a crab have?", "crab"),
              ("Con cua có mấy chân?", "con cua"), ("Quả dâu tây có màu gì?", "dâu tây"))


def build_ood() -> list[dict[str, str | None]]:
    """~30 questions phrased like trained tasks, whose answers appear nowhere in the data.

    Each is asked with a trained wording of the task it resembles (the first of each language)."""
    ask_en, ask_vi = phrasings("fact_qa")["en"][0], phrasings("fact_qa")["vi"][0]
    out: list[dict[str, str | None]] = []
    for en, vi in OOD_COUNTRIES:
        out.append({"instruction": ask_en, "input": f"What is the capital of {en}?",
                    "task": "ood", "resembles": "fact_qa", "absent": en,
                    "note": f"{en} is not in the fact table; its capital is never mentioned"})
        out.append({"instruction": ask_vi, "input": f"Thủ đô của {vi} là gì?",
                    "task": "ood", "resembles": "fact_qa", "absent": vi,
                    "note": f"{vi} ({en}) is not in the fact table; its capital is never mentioned"})
    for word in OOD_EN_WORDS:
        out.append({"instruction": SECTION1_EXAMPLE["instruction"], "input": word, "task": "ood",
                    "resembles": "translate_en_vi", "absent": word,
                    "note": f'"{word}" is not in the lexicon; the data never gives its Vietnamese'})
    for vi, en in OOD_VI_WORDS:
        out.append({"instruction": phrasings("translate_vi_en")["vi"][0], "input": vi, "task": "ood",
                    "resembles": "translate_vi_en", "absent": vi,
                    "note": f'"{vi}" ({en}) is not in the lexicon; the data never gives its English'})
    for question, absent in OOD_THINGS:
        instruction = ask_en if question.isascii() else ask_vi
        out.append({"instruction": instruction, "input": question, "task": "ood", "resembles": "fact_qa",
                    "absent": absent, "note": f'"{absent}" is not in the fact table'})
    out.append({"instruction": ask_en, "input": "What is the capital of the Moon?",
                "task": "ood", "resembles": "fact_qa", "absent": None,
                "note": "the question has no true answer; the right response is to say so"})
    out.append({"instruction": ask_vi, "input": "Thủ đô của mặt trăng là gì?",
                "task": "ood", "resembles": "fact_qa", "absent": None,
                "note": "the question has no true answer; the right response is to say so"})
    return out
