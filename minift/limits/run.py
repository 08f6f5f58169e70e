"""All the studies over seeds: train what is missing, run each study, aggregate, draw, write.

``run_limits`` writes ``<out>/results.json`` (per-seed results, the aggregate, the seconds each
part took, the machine and the command) after every seed, so an interrupted run keeps what it
measured, and re-running it resumes the training runs (``limits.common.tune``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from minift import runs
from minift.calibration import pool_bins
from minift.config import get_config
from minift.course.bundled import course_examples, default_tokenizer, named_task_examples
from minift.files import read_json, write_json
from minift.limits import bias, data_cost, figures, hallucination, single_task, zero_shot
from minift.limits.common import STUDY_STEPS, Clock, tune
from minift.loop import TrainConfig
from minift.seeds import curve, flattening_point, interval95, machine, spread

STUDIES = ("hallucination", "bias", "single_task", "data_cost", "zero_shot")
TUNE_FREE = ("zero_shot", "data_cost", "bias")  # studies that tune their own runs from the base


@dataclass(frozen=True)
class LimitsSettings:
    """The sizes of the studies. The defaults are the measured README run; the notebook's are smaller."""

    preset: str = "course"
    pretrain_steps: int = runs.PRETRAIN_DEFAULTS["steps"]  # a base model, when none is given
    sft_steps: int = runs.SFT_DEFAULTS["steps"]  # the instruction-tuned model and its "I don't know" twin
    bias_steps: int = 400
    single_task_steps: int = 300
    study_steps: int = STUDY_STEPS  # every data-cost run
    zero_shot_steps: int = zero_shot.STEPS  # every zero-shot run
    sizes: tuple[int, ...] = data_cost.SIZES
    wording_counts: tuple[int, ...] = data_cost.WORDING_COUNTS
    budget: int = data_cost.DIVERSITY_BUDGET
    family_counts: tuple[int, ...] = zero_shot.FAMILY_COUNTS
    limit: int = 0  # at most this many answerable questions per evaluation (0 = all)
    model_overrides: dict = field(default_factory=dict)  # e.g. {"n_layers": 2} for a tiny class run


def prepare(folder: Path, seed: int, base: Path | None, tuned: Path | None, s: LimitsSettings,
            tok, need_tuned: bool = True) -> tuple[Path, Path | None]:
    """The seed's base model and instruction-tuned model: the given run folders, or trained here
    (no tuned model when no study needs one: ``need_tuned=False``, the zero-shot study alone)."""
    if base is None:
        base = folder / "base"
        pre = TrainConfig(**{**runs.PRETRAIN_DEFAULTS, "steps": s.pretrain_steps, "seed": seed,
                             "warmup_steps": min(runs.PRETRAIN_DEFAULTS["warmup_steps"], s.pretrain_steps // 5)})
        runs.pretrain(base, get_config(s.preset, vocab_size=tok.vocab_size, **s.model_overrides), pre, tok,
                      resume=True, progress=False)
    if tuned is None and need_tuned:
        tuned = tune(folder / "sft", base, named_task_examples(), tok, steps=s.sft_steps, seed=seed)
    return base, tuned


def run_one(study: str, folder: Path, base: Path, tuned: Path, tok, seed: int, s: LimitsSettings) -> dict:
    if study == "hallucination":
        return hallucination.hallucination_study(folder / study, base, tuned, tok, seed=seed, steps=s.sft_steps,
                                                 limit=s.limit)
    if study == "bias":
        return bias.bias_study(folder / study, base, tok, seed=seed, steps=s.bias_steps)
    if study == "single_task":
        return single_task.single_task_study(folder / study, base, tuned, tok, seed=seed, steps=s.single_task_steps,
                                             limit=s.limit)
    if study == "data_cost":
        return data_cost.data_cost_study(folder / study, base, tok, seed=seed, steps=s.study_steps, sizes=s.sizes,
                                         wording_counts=s.wording_counts, budget=s.budget, limit=s.limit)
    if study == "zero_shot":
        return zero_shot.zero_shot_study(folder / study, base, tok, seed=seed, steps=s.zero_shot_steps,
                                         family_counts=s.family_counts, limit=s.limit)
    raise ValueError(f"unknown study {study!r}; the studies are {', '.join(STUDIES)}")


def _stat(values: Sequence[float]) -> dict:
    return {**spread(values), "interval95": interval95(values)}


def aggregate(per_seed: Sequence[dict]) -> dict:
    """Mean, range and 95% interval over seeds of every study's headline numbers (those present)."""
    out: dict = {}
    present = lambda study: [r[study] for r in per_seed if study in r]  # noqa: E731
    if h := present("hallucination"):
        out["hallucination"] = {
            f"{group}.{key}": {"before": _stat([r["before"][group][key] for r in h]),
                               "after": _stat([r["after"][group][key] for r in h]),
                               "after_minus_before": _stat([r["after"][group][key] - r["before"][group][key]
                                                            for r in h])}
            for group, key in hallucination.METRICS if group in h[0]["before"]}
        out["hallucination_reliability"] = {
            f"{group} ({when})": pool_bins([r[when][group]["bins"] for r in h])
            for group in ("answerable", "unanswerable", "heldout_task") if group in h[0]["before"]
            for when in ("before", "after")}
    if b := present("bias"):
        out["bias"] = {"data_rate": b[0]["data_rate"], "by_step": [
            {"step": rows[0]["step"], **{k: _stat([r[k] for r in rows]) for k in rows[0] if k != "step"}}
            for rows in zip(*[r["by_step"] for r in b])]}
    if t := present("single_task"):
        out["single_task"] = {"task": t[0]["task"], "models": {
            name: {"accuracy": {task: _stat([r["models"][name]["accuracy"]["per_task"][task] for r in t])
                                for task in t[0]["models"][name]["accuracy"]["per_task"]},
                   "answers_as_single_task": {
                       task: _stat([r["models"][name]["answers_as_single_task"][task] for r in t])
                       for task in t[0]["models"][name]["answers_as_single_task"]}}
            for name in t[0]["models"]}}
    if d := present("data_cost"):
        # int(): keys read back from results.json are strings, and "64" sorts after "1024"
        q = curve({int(n): [r["quantity"][n] for r in d] for n in d[0]["quantity"]})
        v = curve({int(k): [r["diversity"][k] for r in d] for k in d[0]["diversity"]})
        out["data_cost"] = {"quantity": q, "diversity": v, "quantity_flattens_at": flattening_point(q),
                            "budget": d[0]["budget"], "steps": d[0]["steps"]}
    if z := present("zero_shot"):
        counts = sorted(z[0]["by_count"], key=int)

        def zero_shot_row(k) -> dict:
            rows = [r["by_count"][k] for r in z]
            row = {"overall": _stat([r["heldout_task"]["overall"] for r in rows]),
                   "families": [r["families"] for r in rows]}
            for split in zero_shot.SPLITS + ("trained_families",):
                row[split] = _stat([r[split]["overall"] for r in rows])
            for split in zero_shot.SPLITS:
                row[f"{split}_as_neighbour"] = _stat([r[f"{split}_as_neighbour"] for r in rows])
            return row

        out["zero_shot"] = {"baselines": zero_shot.baselines(), "by_count": {k: zero_shot_row(k) for k in counts}}
    return out


def run_limits(out: Path, seeds: Sequence[int], *, studies: Sequence[str] = STUDIES, base: str | None = None,
               tuned: str | None = None, settings: LimitsSettings = LimitsSettings(), command: str = "",
               progress: bool = True, report: Callable[[str], None] = lambda message: None) -> dict:
    """Every study in ``studies`` for every seed; ``base``/``tuned`` are run-folder patterns with
    ``{seed}`` (e.g. ``runs/demo/seed_{seed}/base``) or None to train them under ``out``.

    Studies in an earlier ``out/results.json`` that are not run now are kept (at the settings they
    were run with), when that file holds them for every seed asked for; the summary covers both.
    """
    unknown = sorted(set(studies) - set(STUDIES))
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {', '.join(STUDIES)}")
    if not seeds:
        raise ValueError("run_limits: give at least one seed")
    todo = [name for name in STUDIES if name in studies]
    tok = default_tokenizer()
    out.mkdir(parents=True, exist_ok=True)
    # Studies not run now are kept from an earlier results.json in the same folder: a class can run
    # the studies one at a time, or re-run one after changing it, without redoing the others.
    previous = read_json(out / "results.json", "limits results") if (out / "results.json").is_file() else {}
    kept = {r["seed"]: r for r in previous.get("per_seed", [])}
    studies = [name for name in STUDIES if name in studies or (
        name in previous.get("studies", ()) and all(seed in kept and name in kept[seed] for seed in seeds))]
    commands = [*previous.get("commands", []), command]
    per_seed, seconds = [], {}
    bar = tqdm(total=len(seeds) * (len(todo) + 1), disable=not progress, desc="limits", unit="part")
    for seed in seeds:
        folder, clock = out / f"seed_{seed}", Clock()
        bar.set_postfix_str(f"seed {seed}: base and tuned models")
        with clock("models"):
            b, t = prepare(folder, seed, Path(base.format(seed=seed)) if base else None,
                           Path(tuned.format(seed=seed)) if tuned else None, settings, tok,
                           need_tuned=any(st not in TUNE_FREE for st in todo))
        bar.update()
        results = {**kept.get(seed, {}), "seed": seed, "base": str(b), "tuned": str(t)}
        for study in todo:
            bar.set_postfix_str(f"seed {seed}: {study}")
            with clock(study):
                results[study] = run_one(study, folder, b, t, tok, seed, settings)
            bar.update()
            report(f"seed {seed}: {study} took {clock.seconds[study]:.0f} s")
        per_seed.append({k: v for k, v in results.items() if k in ("seed", "base", "tuned", *studies)})
        seconds[seed] = {**previous.get("seconds", {}).get(str(seed), {}), **clock.seconds}
        summary = {"seeds": list(seeds)[: len(per_seed)], "studies": list(studies), "commands": commands,
                   "machine": machine(), "settings": asdict(settings), "seconds": seconds,
                   "aggregate": aggregate(per_seed), "per_seed": per_seed}
        write_json(out / "results.json", summary)
    bar.close()
    summary["figures"] = [str(p) for p in figures.draw(summary["aggregate"], out)]
    write_json(out / "results.json", summary)
    return summary
