"""data/samples/README.md: what each course file is, its fields and counts, and how it was made."""

from __future__ import annotations

from minift.course.build import (
    HELDOUT_PHRASING_PER_TASK,
    COMPOSED_PER_FAMILY,
    HELDOUT_PER_FAMILY,
    REJECTION_DESCRIPTIONS,
    REJECTION_KINDS,
    SPLITS,
    TRAIN_EXAMPLES,
)
from minift.course.judge import LENGTH_PENALTY
from minift.course.phrasings import MAX_JACCARD
from minift.course import compose
from minift.course.tasks import HELDOUT_INPUTS, SECTION1_EXAMPLE, TASK_SPECS, TASKS
from minift.course.world import (
    CAPITALS,
    COLOURS_OF,
    LEGS_OF,
    LEXICON,
    LEXICON_BY_CATEGORY,
    N_FACTS,
    SENTIMENT_SENTENCES,
)


def _count(records: list[dict], **where: str) -> int:
    return sum(all(r[k] == v for k, v in where.items()) for r in records)


def build_readme(corpus: list[str], instructions: list[dict], ood: list[dict],
                 preferences: list[dict]) -> str:
    """data/samples/README.md: what each file is, its fields and counts, and how it was made."""
    ex = {r["task"]: r for r in reversed(instructions)}  # first example of each task
    task_rows = []
    for task in TASKS:
        spec, r = TASK_SPECS[task], ex[task]
        kind = "trained" if task in TASKS else "held out"
        example = f"`{r['input']}` → `{r['output']}`"
        task_rows.append(f"| `{task}` | {kind} | {spec.description} | {spec.en[0]} / {spec.vi[0]} | {example} |")
    split_rows = [f"| `{s}` | {_count(instructions, split=s)} |" for s in SPLITS]
    kind_rows = [f"| `{k}` | {_count(preferences, kind=k)} | {REJECTION_DESCRIPTIONS[k]} |"
                 for k, _ in REJECTION_KINDS]
    longer = sum(len(p["chosen"]) > len(p["rejected"]) for p in preferences)
    shorter = sum(len(p["chosen"]) < len(p["rejected"]) for p in preferences)
    n_train, n_held = len(TASK_SPECS[TASKS[0]].en), len(TASK_SPECS[TASKS[0]].heldout_en)
    n_fam = {k: len(v) for k, v in compose.family_split().items()}
    n_inputs = ", ".join(f"{len(v)} {k}" for k, v in HELDOUT_INPUTS.items())

    def longest(field: str) -> int:
        return max(len(r[field].split()) for r in instructions)

    return f"""# minift course data

Written by `python -m minift data` (`minift.course.bundled.generate`), deterministically: fixed seeds,
no network, pure Python. Do not edit these files by hand; change `minift/course/` and
regenerate. `tests/test_course.py` regenerates them and compares bytes. `tokenizer.model` is
not written by this command (see `minift tokenizer`).

License: Apache-2.0, like minift. Every sentence was written by minift's generator from the
small word lists and fact table in `minift/course/world.py`; nothing is copied from another dataset.

## The closed world

* a bilingual lexicon of {len(LEXICON)} English–Vietnamese entries (animals, food, people, nature,
  objects, colours, adjectives, verbs, numbers one–ten, times, {len(LEXICON_BY_CATEGORY['phrase'])} short phrases),
  one-to-one in both directions;
* a fact table of {N_FACTS} facts: {len(CAPITALS)} capitals, {len(COLOURS_OF)} colours, {len(LEGS_OF)} leg counts;
* {len(SENTIMENT_SENTENCES)} short reviews (English and Vietnamese) built from
  positive and negative adjectives.

Inputs are 1–6 words, 3–4 numbers from 1 to 9, a review or a question (at most {longest('input')}
words); outputs are at most {longest('output')} words; instructions at most {longest('instruction')} words
(Vietnamese words are syllables). This is what lets a model of a few million parameters learn the
tasks on a CPU.

## Files

| file | rows | what it is |
|---|---|---|
| `corpus.txt` | {len(corpus)} lines | raw text to pretrain the base model (§1): one document (2–4 sentences) per line, English and Vietnamese. It states the lexicon, the facts, sentiment words, numbers and letter case in plain sentences, but contains no instruction/response format and none of the longer instruction wordings: a model trained on it *continues* "Hãy dịch câu này sang tiếng Việt" instead of translating. |
| `instructions.jsonl` | {len(instructions)} | instruction data (§2.1), fields below |
| `preferences.jsonl` | {len(preferences)} | preference pairs for the reward model (§4) |
| `ood.jsonl` | {len(ood)} | out-of-distribution questions for the hallucination lesson (§5) |

All text is UTF-8, Vietnamese in NFC; JSON lines are objects with the fields below, in this order.

### instructions.jsonl

`instruction` (Câu lệnh: what to do), `input` (Ngữ cảnh bổ trợ: the text to work on; never empty
here), `output` (Phản hồi mong đợi: the target response, equal to `solve(task, input)`), `task`,
`split`.

| split | rows |
|---|---|
{chr(10).join(split_rows)}

* `train`: the {len(TASKS)} named tasks, {min(TRAIN_EXAMPLES.values())}–{max(TRAIN_EXAMPLES.values())} examples each
  (more for the tasks that copy from the input, which a small model learns slowest), each asked
  with one of {n_train} English and {n_train} Vietnamese wordings per task (`minift.course.phrasings`:
  imperative, question and label cores in polite, terse and question frames); and the
  {n_fam["trained"]} trained families of the compositional space (`minift.course.compose`),
  {COMPOSED_PER_FAMILY} examples each; shuffled. No training example uses a held-out input ({n_inputs};
  the corpus still states them).
* `heldout_phrasing`: the named tasks, {HELDOUT_PHRASING_PER_TASK} examples each, asked with {n_held} English
  and {n_held} Vietnamese wordings from held-out cores, each sharing less than half of its words
  (Jaccard < {MAX_JACCARD}) with every trained wording of its task: new word choices, not one-word
  edits. Inputs are fresh draws; some were never trained on.
* `independent_wording`: the named tasks, {HELDOUT_PHRASING_PER_TASK} examples each, asked with 12 English and
  12 Vietnamese wordings written by someone who never saw the training wordings
  (`minift.course.independent`); some coincide with trained ones, as real users' wordings would.
* `heldout_task`: {n_fam["heldout"]} families of the compositional space never trained on, {HELDOUT_PER_FAMILY}
  examples each (the zero-shot claim of §1): each is a new combination of primitives that are
  all trained in other families (which word: by position or property; its case; its language;
  written once, twice or with a full stop). No input was trained on.
* `heldout_cluster`: the {n_fam["cluster"]} families that select the *{compose.CLUSTER_SELECT}* word, a primitive no
  training instruction ever uses, {HELDOUT_PER_FAMILY} examples each: T0's held-out cluster.
  FLAN (Wei et al. 2022) found that instruction tuning helps on unseen task *clusters* only for
  models of tens of billions of parameters, and hurts models of 8B and smaller.

The wordings of a task: `minift.course.tasks.phrasings(task)` and `phrasings(task, heldout=True)`. Sentiment and fact
questions are asked in the language of the phrasing and answered in it; translation inputs are in
the source language; the word and number tasks use English words and digits.

| task | kind | what | an English / a Vietnamese phrasing | example |
|---|---|---|---|---|
{chr(10).join(task_rows)}

`sentiment` is the "traditional fine-tuning" task of §2: one task, one label set.
The article's instruction is a trained wording: `{SECTION1_EXAMPLE['instruction']}`; its input
`{SECTION1_EXAMPLE['input']}` → `{SECTION1_EXAMPLE['output']}` is never trained on
(`minift.course.tasks.SECTION1_EXAMPLE`, and `SECTION1_UNSEEN` with a held-out wording).

### preferences.jsonl

`prompt` (instruction and input joined by a newline: `prompt_text(instruction, input)`),
`instruction`, `input`, `chosen`, `rejected`, `task`, `kind` (how the rejected response is wrong),
`split` (`train`: {_count(preferences, split='train')}, `heldout`: {_count(preferences, split='heldout')}).
Prompts use the train phrasings of the trained tasks; no (instruction, input) repeats.

`chosen` is the true answer. `rejected` is a plausible mistake:

| kind | rows | rejected response |
|---|---|---|
{chr(10).join(kind_rows)}

The pairs are labelled by a programmatic judge, `minift.course.judge.judge(instruction, input,
response)`, which is also the *gold* reward used to score PPO samples:

    R*(y) = 1[y = y*] + 0.5 · 1[y ≠ y*] · F1(y, y*) − {LENGTH_PENALTY} · max(0, |y| − |y*|),  clipped to [−1, 1]

where `y* = solve(task, input)`, F1 is word overlap and |y| counts words. The judge scores the
chosen response above the rejected one in every pair. By design the chosen response is longer
(in characters) than the rejected one in {longer} pairs and shorter in only {shorter}: a reward
model can learn the spurious cue "longer is better", which the gold judge's length penalty
punishes. Reward over-optimisation is the learned reward rising under PPO while this gold
reward falls.

### ood.jsonl

`instruction` (a trained phrasing), `input`, `task` (`"ood"`), `resembles` (the trained task it
looks like), `absent` (the key term the data never contains; null when the question has no
answer at all), `note`. Capitals of countries outside the fact table, words outside the lexicon,
colours and leg counts of things outside the table: whatever the model answers is made up (§5).
"""
