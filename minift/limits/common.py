"""What every study shares: one short SFT run from a base model, the evaluation split, a clock."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from minift import data as D
from minift import runs
from minift.course.bundled import course_examples
from minift.course.studies import stratified_sample
from minift.loop import TrainConfig
from minift.tokenizer import Tokenizer

TEMPLATE = D.COURSE_TEMPLATE
# A study run: the demo's SFT settings, shorter (600 steps reach ~55% on new wordings, the demo's
# 1600 ~86%: a study compares runs at one budget, it does not chase the best number).
STUDY_STEPS = 600


def tune(run_dir: Path, base: Path, examples: Sequence[D.Example], tokenizer: Tokenizer, *, steps: int,
         seed: int, checkpoint_every: int = 0, keep_checkpoints: int = 2) -> Path:
    """Instruction-tune ``base`` on ``examples`` for ``steps`` steps (masked loss); return the run folder.

    An interrupted or finished run in ``run_dir`` is resumed (exactly: ``minift.loop.fit``), so
    re-running a study picks up where it stopped.
    """
    cfg = TrainConfig(**{**runs.SFT_DEFAULTS, "steps": steps, "seed": seed, "eval_every": 0,
                         "warmup_steps": min(runs.SFT_DEFAULTS["warmup_steps"], steps // 5),
                         "checkpoint_every": checkpoint_every, "keep_checkpoints": keep_checkpoints})
    runs.sft(run_dir, base, cfg, tokenizer, examples=examples, template=TEMPLATE, progress=False, resume=True)
    return run_dir


def evaluation_questions(split: str, limit: int = 0) -> list[D.Example]:
    """The questions of a course split; with ``limit``, that many spread evenly over its tasks."""
    questions = course_examples(split)
    return stratified_sample(questions, limit) if limit else questions


def share_by_task(examples: Sequence[D.Example], flags: Sequence[bool]) -> dict[str, float]:
    """Per task of ``examples``: the share of its ``flags`` (one per example) that are true."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for ex, flag in zip(examples, flags, strict=True):
        hits[ex.task].append(bool(flag))
    return {task: sum(h) / len(h) for task, h in sorted(hits.items())}


class Clock:
    """Seconds spent in each named part of a study (``with clock("bias"): ...``)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, part: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = round(self.seconds.get(part, 0.0) + time.perf_counter() - t, 1)
