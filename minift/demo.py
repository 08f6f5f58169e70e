"""The end-to-end demo of the article's central claim (§1–§3), what ``make demo`` runs.

1. tokenizer — the committed SentencePiece model of the course data;
2. base model — pretrained on raw text only (§1): it knows the words and facts, never saw an
   instruction, so it *continues* "Hãy dịch câu này sang tiếng Việt" instead of translating;
3. instruction tuning with the **masked** loss (§3.2): only response tokens in the loss;
4. the same tuning with the **unmasked** loss (prompt tokens in the loss too — the ablation);
5. greedy exact match of all three on held-out phrasings of trained tasks and on held-out tasks
   (the zero-shot claim), one table, the §1 example before/after, loss curves, ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minift import coursedata  # noqa: E402
from minift import data as D  # noqa: E402
from minift import runs  # noqa: E402
from minift.config import get_config  # noqa: E402
from minift.evaluate import answer, evaluate, format_table, prompt_ids  # noqa: E402
from minift.tokenizer import default_tokenizer  # noqa: E402
from minift.train import TrainConfig, read_history  # noqa: E402

SPLITS = ("heldout_phrasing", "heldout_task")
MODELS = ("base", "sft_masked", "sft_unmasked")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="demo folder (default runs/demo-<time>)")
    p.add_argument("--preset", default="course")
    p.add_argument("--pretrain-steps", type=int, default=runs.PRETRAIN_DEFAULTS["steps"])
    p.add_argument("--sft-steps", type=int, default=runs.SFT_DEFAULTS["steps"])
    p.add_argument("--template", default=D.COURSE_TEMPLATE, choices=sorted(D.TEMPLATES))
    p.add_argument("--eval-limit", type=int, default=0, help="evaluate on the first N examples per split (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def plot_curves(folders: dict[str, Path], path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, folder in folders.items():
        hist = read_history(folder / "metrics.jsonl")
        ax = axes[0] if name == "base" else axes[1]
        ax.plot([r["step"] for r in hist], [r["loss"] for r in hist], lw=1, label=f"{name} train")
        ev = [(r["step"], r["eval_loss"]) for r in hist if "eval_loss" in r]
        if ev:
            ax.plot(*zip(*ev), "o--", label=f"{name} eval")
    axes[0].set(title="pretraining (raw text, every token)", xlabel="step", ylabel="nats / token", yscale="log")
    axes[1].set(title="instruction tuning (each run's own loss)", xlabel="step", yscale="log")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run(args) -> int:
    t_start = time.perf_counter()
    out = args.out or runs.RUNS_DIR / time.strftime("demo-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    tok = default_tokenizer()
    config = get_config(args.preset, vocab_size=tok.vocab_size)
    progress = not args.no_progress
    print(f"minift demo -> {out}\ntokenizer: {tok.vocab_size} pieces; model '{args.preset}': "
          f"{config.n_params / 1e6:.2f}M parameters")
    ex = coursedata.SECTION1_EXAMPLE
    example = D.Example(ex["instruction"], ex["input"], ex["output"])
    ids = prompt_ids(example, tok, args.template)
    print(f"\n§1 example, as the model sees it ({len(ids)} tokens):\n  "
          + " ".join(tok.id_to_piece(i).replace("\n", "↵") for i in ids))

    folders = {name: out / name for name in MODELS}
    timings: dict[str, float] = {}
    t = time.perf_counter()
    pre = TrainConfig(**{**runs.PRETRAIN_DEFAULTS, "steps": args.pretrain_steps, "seed": args.seed,
                         "warmup_steps": min(runs.PRETRAIN_DEFAULTS["warmup_steps"], args.pretrain_steps // 5)})
    runs.pretrain(folders["base"], config, pre, tok, progress=progress)
    timings["base"] = time.perf_counter() - t

    train_ex, eval_ex = runs.course_examples("train"), runs.course_examples("heldout_phrasing")
    for name, loss in (("sft_masked", "sft"), ("sft_unmasked", "lm")):
        t = time.perf_counter()
        cfg = TrainConfig(**{**runs.SFT_DEFAULTS, "steps": args.sft_steps, "loss": loss, "seed": args.seed,
                             "warmup_steps": min(runs.SFT_DEFAULTS["warmup_steps"], args.sft_steps // 5)})
        runs.sft(folders[name], folders["base"], cfg, tok, examples=train_ex, eval_examples=eval_ex,
                 template=args.template, progress=progress)
        timings[name] = time.perf_counter() - t

    from minift.train import load_model

    results: dict[str, dict] = {}
    section1: dict[str, str] = {}
    t = time.perf_counter()
    for name in MODELS:
        params, cfg = load_model(folders[name])
        results[name] = {}
        for split in SPLITS:
            examples = runs.course_examples(split)
            if args.eval_limit:
                examples = examples[: args.eval_limit]
            results[name][split], _ = evaluate(params, cfg, tok, examples, template=args.template,
                                               max_new_tokens=16)
        section1[name] = answer(params, cfg, tok, [example], template=args.template, max_new_tokens=16,
                                batch_size=1)[0]
    timings["eval"] = time.perf_counter() - t

    print("\n§1 — 'Hãy dịch câu này sang tiếng Việt' before and after instruction tuning")
    print(f"  instruction: {example.instruction}\n  input:       {example.input}\n  expected:    {example.response}")
    for name in MODELS:
        print(f"  {name:<13} -> {section1[name]!r}")
    for split in SPLITS:
        print(f"\nexact match on {split} ({results['base'][split]['n']} questions)")
        print(format_table(results, split))

    curves = plot_curves(folders, out / "loss_curves.png")
    wall = time.perf_counter() - t_start
    summary = {
        "models": results,
        "section1_example": {"instruction": example.instruction, "input": example.input,
                             "expected": example.response, "outputs": section1},
        "steps": {"base": args.pretrain_steps, "sft_masked": args.sft_steps, "sft_unmasked": args.sft_steps},
        "seconds": {**{k: round(v, 1) for k, v in timings.items()}, "total": round(wall, 1)},
        "preset": args.preset, "n_params": config.n_params, "template": args.template,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True),
                                      encoding="utf-8")
    print(f"\nloss curves: {curves}\nresults:     {out / 'results.json'}\nrun folders: "
          + ", ".join(str(f) for f in folders.values()) + f"\nwall time:   {wall / 60:.1f} min")
    return 0
