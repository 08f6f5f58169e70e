"""The bundled course data (``data/samples/``), designed so the whole article can be taught on a laptop CPU.

Every file in ``data/samples/`` except ``tokenizer.model`` is written by ``bundled.generate`` from
a small closed world, with fixed seeds and no network (``minift data`` rewrites it byte for byte).
Each file serves one section:

* ``corpus.txt`` (§1): raw English and Vietnamese text for the *base model* (mô hình nền tảng):
  the lexicon, facts, sentiment words, numbers and letter case in ordinary sentences, never an
  instruction followed by its answer.
* ``instructions.jsonl`` (§2, §2.1): Instruction / Input / Output triples for the task families in
  FLAN/T0 style, in English and Vietnamese, with held-out wordings and held-out task families.
* ``preferences.jsonl`` (§4): chosen/rejected responses labelled by the programmatic judge, which
  is also the *gold* reward PPO is scored with.
* ``ood.jsonl`` (§5): questions whose true answer the data never contains (hallucination).

The modules, bottom to top (each imports only those above it in this list):

* ``world``  — the data tables: lexicon, facts, sentiment reviews;
* ``phrasings`` — how people ask for each task: dozens of composed wordings, held-out ones new;
* ``independent`` — wordings written by someone who never saw the training ones (evaluation only);
* ``tasks``  — the task families: solver, input sampler, wordings; ``solve``, ``task_of``;
* ``judge``  — the gold reward of §4;
* ``corpus`` — the base model's raw text;
* ``build``  — the instruction, preference and OOD records;
* ``readme`` — ``data/samples/README.md``;
* ``studies`` — the data of the §5/§1/§2 studies (``minift.limits``), built in memory, never bundled;
* ``bundled`` — where the files live, ``generate`` (writes them), readers of the bundled data,
  and the course tokenizer (``default_tokenizer``).

Deviation from the article: the "human" judgements of §4 are a program (``judge.judge``), so that
the course can measure what a learned reward model gets wrong (reward over-optimisation).
"""
