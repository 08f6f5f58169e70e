"""The command line, as a user drives it: help, a tiny pretrain -> sft -> generate -> eval chain."""

from __future__ import annotations

import json
import subprocess
import sys

from minift.cli import COMMANDS, main
from minift.course.bundled import course_examples


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "minift", "--help"], capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert name in out.stdout


def test_tiny_pretrain_sft_generate_eval_chain(tmp_path, capsys):
    base, tuned = tmp_path / "base", tmp_path / "sft"
    common = ["--steps", "2", "--warmup", "0", "--batch-size", "4", "--no-progress"]
    assert main(["pretrain", "--preset", "tiny", "--seq-len", "32", "--out", str(base), *common]) == 0
    assert main(["sft", "--base", str(base), "--out", str(tuned), *common]) == 0
    info = json.loads((tuned / "run.json").read_text())
    assert info["info"]["template"] == "inline" and info["train"]["loss"] == "sft"  # the course default
    assert main(["sft", "--base", str(base), "--out", str(tmp_path / "unmasked"), "--unmasked", *common]) == 0
    assert json.loads((tmp_path / "unmasked" / "run.json").read_text())["train"]["loss"] == "lm"

    capsys.readouterr()
    assert main(["generate", "--model", str(tuned), "--instruction", "Reverse the words", "--input", "red cat",
                 "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.endswith("\n")
    results = tmp_path / "results.json"
    assert main(["eval", str(base), str(tuned), "--splits", "heldout_task", "--max-new-tokens", "4",
                 "--json", str(results)]) == 0
    table = json.loads(results.read_text())
    assert set(table) == {"base", "sft"} and table["sft"]["heldout_task"]["n"] == len(course_examples("heldout_task"))


def test_user_errors_are_one_line_messages_not_tracebacks(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path), "--prompt", "x", "--instruction", "y"]) == 2
    assert "exactly one of --instruction" in capsys.readouterr().err
    assert main(["generate", "--model", str(tmp_path / "missing"), "--prompt", "x"]) == 2
    err = capsys.readouterr().err
    assert "missing: no such run folder or checkpoint file" in err and "Traceback" not in err


def test_demo_over_seeds_reports_mean_and_spread(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--pretrain-steps", "5", "--sft-steps", "5", "--eval-limit", "3",
                 "--seeds", "2", "--seed", "7", "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert result["seeds"] == [7, 8] and len(result["per_seed"]) == 2 and result["machine"]["cpus"] >= 1
    assert result["command"].startswith("minift demo --preset tiny")
    overall = result["aggregate"]["models"]["sft_masked"]["independent_wording"]["overall"]
    assert overall["n"] == 2 and overall["min"] <= overall["mean"] <= overall["max"]
    assert [s["models"]["sft_masked"]["independent_wording"]["overall"] for s in result["per_seed"]] == overall["values"]
    assert set(result["aggregate"]["comparisons"]) == {"masked_minus_unmasked", "masked_minus_base"}
    assert (out / "accuracy.png").is_file() and (out / "seed_7" / "sft_masked" / "run.json").is_file()
    assert "mean (min–max)" in capsys.readouterr().out


def test_limits_runs_the_studies_over_seeds_and_writes_results_and_figures(tmp_path, capsys):
    # Tiny, short, one seed: this checks the wiring (models trained when none are given, the studies
    # run, aggregated, drawn and printed); the metrics and the aggregation over several seeds are
    # tested in test_limits.py, every study in notebook 06.
    out = tmp_path / "limits"
    assert main(["limits", "--out", str(out), "--seeds", "0", "--studies", "hallucination", "single_task",
                 "--preset", "tiny", "--pretrain-steps", "4", "--sft-steps", "4", "--single-task-steps", "2",
                 "--limit", "11", "--no-progress"]) == 0
    result = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert result["seeds"] == [0] and result["studies"] == ["hallucination", "single_task"]
    first = result["per_seed"][0]
    assert first["tuned"] == str(out / "seed_0" / "sft") and first["base"] == str(out / "seed_0" / "base")
    ood = first["hallucination"]["before"]["unanswerable"]
    assert ood["n"] == 34 and 0.0 <= ood["mean_confidence"] <= 1.0 and 0.0 <= ood["ece"] <= 1.0
    assert first["hallucination"]["after"]["answerable"]["n"] == 11
    assert (out / "seed_0" / "hallucination" / "sft_abstain" / "run.json").is_file()
    stat = result["aggregate"]["hallucination"]["unanswerable.abstention"]["after_minus_before"]
    assert stat["n"] == 1 and stat["interval95"]["half_width"] is None  # one seed: no interval
    assert set(result["aggregate"]["single_task"]["models"]) == {"single_task", "instruction_tuned"}
    assert (out / "hallucination.png").is_file() and (out / "single_task.png").is_file()
    assert set(result["seconds"]["0"]) == {"models", "hallucination", "single_task"}
    printed = capsys.readouterr().out
    assert "§5 ảo giác (hallucination)" in printed and "§2 fine-tuning truyền thống" in printed  # Vietnamese first
    assert "(traditional fine-tuning" in printed and "seconds per part" in printed  # and the English beside it
    # Re-running one study into the same folder keeps the other's results (and reuses the runs).
    assert main(["limits", "--out", str(out), "--seeds", "0", "--studies", "single_task", "--preset", "tiny",
                 "--pretrain-steps", "4", "--sft-steps", "4", "--single-task-steps", "2", "--limit", "11",
                 "--no-progress"]) == 0
    again = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert again["studies"] == ["hallucination", "single_task"] and len(again["commands"]) == 2
    assert again["per_seed"][0]["hallucination"] == first["hallucination"]
    assert again["per_seed"][0]["single_task"]["models"] == first["single_task"]["models"]  # same runs, same answers
