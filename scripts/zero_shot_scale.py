"""Assemble §1's scale study from its runs into docs/zero_shot_results.json and docs/zero_shot.png.

The runs (2-core CPU, 55 minutes in all; each writes its own results.json):

    minift limits --studies zero_shot --seeds 0 1 2 --base runs/course/base --out runs/limits_zs
    minift limits --studies zero_shot --seeds 0 1 2 --preset tiny --out runs/limits_zs_tiny
    for s in 300 1200; do minift limits --studies zero_shot --seeds 0 --base runs/course/base \\
        --families 92 --zero-shot-steps $s --out runs/zs_steps/steps_$s; done
    minift limits --studies zero_shot --seeds 0 1 2 --base runs/course/base --families 92 \\
        --zero-shot-steps 2400 --out runs/zs_steps/steps_2400

then ``python scripts/zero_shot_scale.py`` (the 600-step point is the first run's seed 0; 2,400
steps has three seeds, the other budgets one).
"""

from __future__ import annotations

import sys
from pathlib import Path

from minift.config import get_config
from minift.course.bundled import default_tokenizer
from minift.files import read_json, write_json
from minift.limits import figures
from minift.limits.zero_shot import FAMILY_COUNTS, STEPS


def main(runs: Path = Path("runs"), docs: Path = Path("docs")) -> dict:
    course, tiny = read_json(runs / "limits_zs" / "results.json"), read_json(runs / "limits_zs_tiny" / "results.json")
    everything = str(FAMILY_COUNTS[-1])
    steps = {str(STEPS): _one_seed(course, 0, everything)}
    for folder in sorted((runs / "zs_steps").glob("steps_*")):
        steps[folder.name.split("_")[1]] = read_json(folder / "results.json")["aggregate"]["zero_shot"]["by_count"][everything]
    vocab = default_tokenizer().vocab_size
    summary = {
        "sizes": {"course": course["aggregate"]["zero_shot"], "tiny": tiny["aggregate"]["zero_shot"]},
        "n_params": {name: get_config(name, vocab_size=vocab).n_params for name in ("course", "tiny")},
        "steps": steps,
        "seconds": {"course": course["seconds"], "tiny": tiny["seconds"]},
        "commands": [*course["commands"], *tiny["commands"]],
        "machine": course["machine"],
        "note": "course: one base model (runs/course/base, seed 0) for every seed; seeds vary the family "
                "subsets, the drawn examples and the SFT order. tiny: a base pretrained per seed. "
                f"steps: {everything} families; seed 0 only except 2400 steps (seeds 0, 1, 2); the {STEPS}-step "
                "point is the course run's seed 0.",
    }
    write_json(docs / "zero_shot_results.json", summary)
    figures.zero_shot_scale(summary, docs / "zero_shot.png")
    return summary


def _one_seed(result: dict, seed: int, count: str) -> dict:
    """One seed's row in the aggregate's form (a 'spread' over one value), to sit beside the others."""
    row = next(r for r in result["per_seed"] if r["seed"] == seed)["zero_shot"]["by_count"][count]
    def one(v):
        return {"mean": v, "min": v, "max": v, "n": 1, "values": [v],
                "interval95": {"mean": v, "low": None, "high": None, "half_width": None, "n": 1}}
    return {split: one(row[split]["overall"]) for split in ("heldout_task", "heldout_cluster", "trained_families")}


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:]))
