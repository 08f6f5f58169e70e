"""The end-to-end demo of the article's central claim (§1–§3), what ``make demo`` runs.

1. tokenizer — the committed SentencePiece model of the course data;
2. base model — pretrained on raw text only (§1): it knows the words and facts, never saw an
   instruction, so it *continues* "Hãy dịch câu này sang tiếng Việt" instead of translating;
3. instruction tuning with the **masked** loss (§3.2): only response tokens in the loss;
4. the same tuning with the **unmasked** loss (prompt tokens in the loss too — the ablation);
5. greedy exact match of all three on held-out wordings of the trained tasks (genuinely new ones,
   and ones written by someone who never saw the training wordings), with seen and unseen inputs
   apart, and on held-out task families (the zero-shot claim: new combinations of trained
   primitives, and a primitive never trained, ``minift.course.compose``); the §1 example
   before/after, asked with an input never trained on; loss curves; ``results.json``.

``run_demo`` does the work and returns the summary; ``minift demo`` (``minift.commands``) prints it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from matplotlib.figure import Figure

from minift import data as D
from minift import runs
from minift.config import get_config
from minift.course.bundled import course_examples, default_tokenizer
from minift.course.tasks import SECTION1_EXAMPLE, SECTION1_UNSEEN
from minift.evaluate import answer, evaluate, novelty_subsets
from minift.files import write_json
from minift.loop import TrainConfig, load_model, read_history
from minift.seeds import aggregate, machine, plot_accuracy

SPLITS = ("heldout_phrasing", "independent_wording", "heldout_task", "heldout_cluster")
# the headline comparisons, paired seed by seed: (a, b) reads "a minus b"
COMPARISONS = {"masked_minus_unmasked": ("sft_masked", "sft_unmasked"), "masked_minus_base": ("sft_masked", "base")}
MODELS = ("base", "sft_masked", "sft_unmasked")


def plot_curves(folders: dict[str, Path], path: Path) -> Path:
    """Pretraining loss (left) and both SFT runs' losses (right), train and eval, as one PNG."""
    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    for name, folder in folders.items():
        hist = read_history(folder / "metrics.jsonl")
        ax = axes[0] if name == "base" else axes[1]
        ax.plot([r["step"] for r in hist], [r["loss"] for r in hist], lw=1, label=f"{name} huấn luyện (train)")
        ev = [(r["step"], r["eval_loss"]) for r in hist if "eval_loss" in r]
        if ev:
            ax.plot(*zip(*ev), "o--", label=f"{name} đánh giá (eval)")
    axes[0].set(title="tiền huấn luyện (pretraining): văn bản thô, mọi token\n(raw text, every token)",
                xlabel="bước (step)", ylabel="nats / token", yscale="log")
    axes[1].set(title="tinh chỉnh bằng chỉ thị (instruction tuning)\nmất mát của từng lần chạy (each run's own loss)",
                xlabel="bước (step)", yscale="log")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def section1_examples() -> dict[str, D.Example]:
    """The article's own example (§1), 'Hãy dịch câu này sang tiếng Việt' + 'I love my family' (an
    input never trained on), and the same asked with a held-out wording too."""
    return {name: D.Example(ex["instruction"], ex["input"], ex["output"], ex["task"])
            for name, ex in (("article wording", SECTION1_EXAMPLE), ("held-out wording", SECTION1_UNSEEN))}


def run_demo(
    out: Path, *, preset: str = "course", pretrain_steps: int = runs.PRETRAIN_DEFAULTS["steps"],
    sft_steps: int = runs.SFT_DEFAULTS["steps"], template: str = D.COURSE_TEMPLATE, eval_limit: int = 0,
    seed: int = 0, progress: bool = True, report: Callable[[str], None] = lambda message: None,
) -> dict:
    """Pretrain, tune masked and unmasked, evaluate; write ``out/results.json`` and the curves.

    Returns the summary stored in ``results.json``: ``models`` (name -> split -> accuracy table),
    ``section1_example``, ``steps``, ``seconds``, ``preset``, ``n_params``, ``template``.
    """
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tok = default_tokenizer()
    config = get_config(preset, vocab_size=tok.vocab_size)
    report(f"tokenizer: {tok.vocab_size} pieces; model '{preset}': {config.n_params / 1e6:.2f}M parameters")
    section1 = section1_examples()

    folders = {name: out / name for name in MODELS}
    timings: dict[str, float] = {}
    t = time.perf_counter()
    pre = TrainConfig(**{**runs.PRETRAIN_DEFAULTS, "steps": pretrain_steps, "seed": seed,
                         "warmup_steps": min(runs.PRETRAIN_DEFAULTS["warmup_steps"], pretrain_steps // 5)})
    runs.pretrain(folders["base"], config, pre, tok, progress=progress)
    timings["base"] = time.perf_counter() - t

    train_ex, eval_ex = course_examples("train"), course_examples("heldout_phrasing")
    for name, loss in (("sft_masked", "sft"), ("sft_unmasked", "lm")):
        t = time.perf_counter()
        cfg = TrainConfig(**{**runs.SFT_DEFAULTS, "steps": sft_steps, "loss": loss, "seed": seed,
                             "warmup_steps": min(runs.SFT_DEFAULTS["warmup_steps"], sft_steps // 5)})
        runs.sft(folders[name], folders["base"], cfg, tok, examples=train_ex, eval_examples=eval_ex,
                 template=template, progress=progress, report=report)
        timings[name] = time.perf_counter() - t

    results: dict[str, dict] = {}
    outputs: dict[str, dict[str, str]] = {}
    splits = {split: course_examples(split)[: eval_limit or None] for split in SPLITS}
    subsets = {split: novelty_subsets(examples, train_ex) for split, examples in splits.items()
               if split not in ("heldout_task", "heldout_cluster")}  # a new family has no trained input or wording
    t = time.perf_counter()
    for name in MODELS:
        params, cfg = load_model(folders[name])
        results[name] = {split: evaluate(params, cfg, tok, examples, subsets=subsets.get(split), template=template,
                                         max_new_tokens=16)[0] for split, examples in splits.items()}
        replies = answer(params, cfg, tok, list(section1.values()), template=template, max_new_tokens=16,
                         batch_size=len(section1))
        outputs[name] = dict(zip(section1, replies))
    timings["eval"] = time.perf_counter() - t

    plot_curves(folders, out / "loss_curves.png")
    summary = {
        "models": results,
        "section1_example": {case: {"instruction": ex.instruction, "input": ex.input, "expected": ex.response,
                                    "outputs": {name: outputs[name][case] for name in MODELS}}
                             for case, ex in section1.items()},
        "steps": {"base": pretrain_steps, "sft_masked": sft_steps, "sft_unmasked": sft_steps},
        "seconds": {**{k: round(v, 1) for k, v in timings.items()},
                    "total": round(time.perf_counter() - t_start, 1)},
        "preset": preset, "n_params": config.n_params, "template": template,
    }
    write_json(out / "results.json", summary)
    return summary


def run_demo_over_seeds(out: Path, seeds: list[int], *, command: str = "", **settings) -> dict:
    """``run_demo`` once per seed (``out/seed_<s>``), then mean and spread over the seeds.

    Writes ``out/results.json`` (``per_seed`` summaries, ``aggregate`` from ``minift.seeds``, the
    ``machine`` and the ``command``) and ``out/accuracy.png``; returns that dictionary.
    """
    summaries = [run_demo(out / f"seed_{seed}", seed=seed, **settings) for seed in seeds]
    result = {"seeds": list(seeds), "command": command, "machine": machine(), "per_seed": summaries,
              "aggregate": aggregate(summaries, MODELS, SPLITS, COMPARISONS)}
    write_json(out / "results.json", result)
    plot_accuracy(result["aggregate"], SPLITS, out / "accuracy.png")
    return result
