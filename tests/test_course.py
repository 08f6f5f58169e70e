"""The bundled course data: regenerated bit for bit, and designed the way the course needs it.

Invariants checked: the committed files are exactly what the generator writes; the held-out
splits are really held out; every target is the true answer; the judge prefers every chosen
response; the base-model corpus never shows the instruction format.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from minift.cli import main as cli_main
from minift.course import build, bundled, compose, independent, judge, phrasings, tasks, world


@pytest.fixture(scope="module")
def instructions() -> list[dict]:
    return bundled.read_records(bundled.SAMPLES_DIR / bundled.INSTRUCTIONS_FILE, build.INSTRUCTION_FIELDS)


@pytest.fixture(scope="module")
def preferences() -> list[dict]:
    return bundled.read_records(bundled.SAMPLES_DIR / bundled.PREFERENCES_FILE, build.PREFERENCE_FIELDS)


@pytest.fixture(scope="module")
def ood() -> list[dict]:
    return bundled.read_records(bundled.SAMPLES_DIR / bundled.OOD_FILE, build.OOD_FIELDS)


@pytest.fixture(scope="module")
def corpus() -> str:
    return (bundled.SAMPLES_DIR / bundled.CORPUS_FILE).read_text(encoding="utf-8")


def test_generate_reproduces_the_committed_files_byte_for_byte(tmp_path):
    written = bundled.generate(tmp_path)
    assert set(written) == set(bundled.GENERATED_FILES)
    for name in bundled.GENERATED_FILES:
        committed = (bundled.SAMPLES_DIR / name).read_bytes()
        assert (tmp_path / name).read_bytes() == committed, (
            f"data/samples/{name} is not what minift.course.bundled.generate writes: run `python -m minift data`")


def test_cli_writes_into_out(tmp_path, capsys):
    assert cli_main(["data", "--out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(bundled.GENERATED_FILES)
    assert "instructions.jsonl" in capsys.readouterr().out


def test_files_are_nfc_utf8_and_small():
    total = 0
    for name in bundled.GENERATED_FILES:
        raw = (bundled.SAMPLES_DIR / name).read_bytes()
        total += len(raw)
        text = raw.decode("utf-8")  # raises if not UTF-8
        assert unicodedata.is_normalized("NFC", text), name
    assert total < 5_000_000  # "a few MB" at most: the course data ships in the repository


def test_json_lines_have_the_documented_fields_in_order(instructions, preferences, ood):
    for records, fields in ((instructions, build.INSTRUCTION_FIELDS), (preferences, build.PREFERENCE_FIELDS),
                            (ood, build.OOD_FIELDS)):
        for r in records:
            assert tuple(r) == fields
    assert {r["split"] for r in instructions} == set(build.SPLITS)
    assert {r["split"] for r in preferences} == {"train", "heldout"}
    assert all(r["task"] == "ood" for r in ood)


def test_read_jsonl_names_file_line_and_field(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"instruction": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.jsonl:2: not valid JSON"):
        bundled.read_records(bad)
    with pytest.raises(ValueError, match=r"x\.jsonl:1: missing field\(s\) input"):
        bundled.read_records(bad, ("instruction", "input"))
    with pytest.raises(FileNotFoundError, match="minift data"):
        bundled.read_records(tmp_path / "absent.jsonl")


def test_task_families_and_phrasings():
    assert len(tasks.TASKS) >= 10
    every_phrasing = []
    for task in tasks.TASKS:
        train, held = tasks.phrasings(task), tasks.phrasings(task, heldout=True)
        for lang in ("en", "vi"):
            assert len(train[lang]) + len(held[lang]) >= 8 and len(held[lang]) >= 2, (task, lang)
        every_phrasing += [*train["en"], *train["vi"], *held["en"], *held["vi"]]
        # English phrasings are ASCII; Vietnamese ones carry diacritics (a crude but sure language check).
        assert all(p.isascii() for p in (*train["en"], *held["en"])), task
        # ("In hoa", upper-case, is Vietnamese without a diacritic: most, not all, carry one)
        assert sum(not p.isascii() for p in (*train["vi"], *held["vi"])) >= 0.9 * len((*train["vi"], *held["vi"])), task
    # No phrasing is shared between tasks (or repeated): the instruction alone names the task.
    keys = [tasks._key(p) for p in every_phrasing]
    assert len(keys) == len(set(keys))
    for p in every_phrasing:
        assert tasks.task_of(p) in tasks.TASKS
        assert tasks.task_of("  " + p.upper() + " ") == tasks.task_of(p)
    with pytest.raises(ValueError, match="not one of the course phrasings"):
        tasks.task_of("Write a poem.")


def test_splits_hold_out_what_they_claim(instructions):
    by_split = defaultdict(list)
    for r in instructions:
        by_split[r["split"]].append(r)
    train_instructions = {r["instruction"] for r in by_split["train"]}
    train_pairs = {(r["instruction"], r["input"]) for r in by_split["train"]}
    families = compose.family_split()
    assert {r["task"] for r in by_split["train"]} == {*tasks.TASKS, *families["trained"]}
    assert {r["task"] for r in by_split["heldout_phrasing"]} == set(tasks.TASKS)
    assert {r["task"] for r in by_split["independent_wording"]} == set(tasks.TASKS)
    assert {r["task"] for r in by_split["heldout_task"]} == set(families["heldout"])
    assert {r["task"] for r in by_split["heldout_cluster"]} == set(families["cluster"])
    for r in by_split["heldout_phrasing"]:
        assert r["instruction"] not in train_instructions
    for r in by_split["heldout_phrasing"] + by_split["independent_wording"] + by_split["heldout_task"]:
        assert (r["instruction"], r["input"]) not in train_pairs
    # a held-out family is never asked about an input any family was trained on
    composed_inputs = {r["input"] for r in by_split["train"] if compose.is_family(r["task"])}
    for r in by_split["heldout_task"] + by_split["heldout_cluster"]:
        assert r["input"] not in composed_inputs and r["output"] == compose.solve(r["task"], r["input"])
    for task in tasks.TASKS:  # every trained phrasing is used in train, every held-out one in heldout_phrasing
        assert {r["instruction"] for r in by_split["train"] if r["task"] == task} == {
            *tasks.phrasings(task)["en"], *tasks.phrasings(task)["vi"]}
        assert {r["instruction"] for r in by_split["heldout_phrasing"] if r["task"] == task} == {
            *tasks.phrasings(task, heldout=True)["en"], *tasks.phrasings(task, heldout=True)["vi"]}
        assert {r["instruction"] for r in by_split["independent_wording"] if r["task"] == task} == {
            *independent.INDEPENDENT_WORDINGS[task]["en"], *independent.INDEPENDENT_WORDINGS[task]["vi"]}
    # no training example uses a held-out input; the evaluation splits do, so unseen inputs exist
    for task, held in tasks.HELDOUT_INPUTS.items():
        assert not any(r["input"] in held for r in by_split["train"] if r["task"] == task), task
        assert any(r["input"] in held for r in by_split["heldout_phrasing"] if r["task"] == task), task
    counts = Counter((r["split"], r["task"]) for r in instructions)
    named = [r for r in by_split["train"] if r["task"] in tasks.TASKS]
    assert len(named) == sum(build.TRAIN_EXAMPLES.values()) == 9840
    assert len(by_split["train"]) - len(named) == build.COMPOSED_PER_FAMILY * len(families["trained"])
    assert all(40 <= counts[split, t] <= 60 for t in tasks.TASKS for split in ("heldout_phrasing", "independent_wording"))
    assert all(counts["heldout_task", t] == build.HELDOUT_PER_FAMILY for t in families["heldout"])
    assert len(train_pairs) == len(by_split["train"])  # no duplicate examples


def test_wordings_are_many_and_held_out_ones_genuinely_new():
    for task in tasks.TASKS:
        trained, held = tasks.phrasings(task), tasks.phrasings(task, heldout=True)
        for lang in ("en", "vi"):
            # dozens of trained wordings per task and language, of every form
            assert len(trained[lang]) >= 40, (task, lang)
            assert any(w.endswith("?") for w in trained[lang]) and any(w[-1:].isalpha() for w in trained[lang])
            assert len(set(trained[lang])) == len(trained[lang])
            # new word choices, not one-word edits: under half the words shared with every trained one
            for wording in held[lang]:
                worst = max(phrasings.jaccard(wording, t) for t in (*trained["en"], *trained["vi"]))
                assert worst < phrasings.MAX_JACCARD, (task, wording, worst)


def test_jaccard_by_hand():
    assert phrasings.jaccard("Give the first word.", "give THE first word") == 1.0  # case, punctuation
    assert phrasings.jaccard("Give the first word.", "Give the last word.") == 3 / 5
    assert phrasings.jaccard("Từ đầu tiên là gì?", "Từ cuối cùng là gì?") == 3 / 7
    assert phrasings.jaccard("a b", "c d") == 0.0


def test_every_output_is_the_true_answer(instructions):
    for r in instructions:
        assert r["output"].strip() and r["input"].strip()
        assert r["output"] == tasks.solve(r["task"], r["input"]), r


@pytest.mark.parametrize("task, input, expected", [
    ("translate_en_vi", "dog", "con chó"), ("translate_vi_en", "con mèo", "cat"),
    ("reverse_words", "red dog runs", "runs dog red"), ("uppercase", "big cat", "BIG CAT"),
    ("count_words", "a b c d", "4"), ("first_word", "sun moon", "sun"), ("last_word", "sun moon", "moon"),
    ("sort_numbers", "12 3 7", "3 7 12"), ("max_number", "12 3 30", "30"),
    ("sentiment", "This movie is great", "positive"), ("sentiment", "Tôi ghét bộ phim này", "tiêu cực"),
    ("fact_qa", "What is the capital of Vietnam?", "Hanoi"), ("fact_qa", "Con nhện có mấy chân?", "8"),
    ("animal.upper.vi.twice", "two cat red nine eat", "CON MÈO CON MÈO"), ("position.largest", "two cat red nine eat", "4"),
])
def test_solve_by_hand(task, input, expected):
    assert tasks.solve(task, input) == expected


def test_solve_refuses_what_the_data_does_not_know():
    with pytest.raises(ValueError, match="not in the course lexicon"):
        tasks.solve("translate_en_vi", "telescope")
    with pytest.raises(ValueError, match="unknown task"):
        tasks.solve("poetry", "x")


def test_closed_world_is_one_to_one_and_small():
    assert len(world.EN_TO_VI) == len(world.VI_TO_EN) == len(world.LEXICON) <= 150
    assert 30 <= world.N_FACTS <= 40
    assert all(w.islower() and " " not in w for w in world.WORDS)


def test_section1_example_is_in_the_data(instructions):
    ex = tasks.SECTION1_EXAMPLE
    assert ex["instruction"] == "Hãy dịch câu này sang tiếng Việt"
    assert ex["instruction"] in tasks.phrasings("translate_en_vi")["vi"]  # trained, as in the article's story
    assert tasks.task_of(ex["instruction"]) == ex["task"] == "translate_en_vi"
    assert ex["input"] in world.EN_TO_VI and tasks.solve(ex["task"], ex["input"]) == ex["output"]
    assert any(r["instruction"] == ex["instruction"] and r["split"] == "train" for r in instructions)
    # its input is never trained on, so the demo's before/after is not a memorised answer; the
    # second version also asks it with a held-out wording
    assert not any(r["input"] == ex["input"] and r["split"] == "train" for r in instructions)
    unseen = tasks.SECTION1_UNSEEN
    assert unseen["input"] == ex["input"] and unseen["instruction"] in tasks.phrasings("translate_en_vi", heldout=True)["vi"]


def test_judge_prefers_every_chosen_response(preferences):
    for p in preferences:
        chosen = judge.judge(p["instruction"], p["input"], p["chosen"])
        rejected = judge.judge(p["instruction"], p["input"], p["rejected"])
        assert chosen == 1.0 and rejected < chosen, p
        assert p["chosen"] == tasks.solve(p["task"], p["input"]) and tasks.task_of(p["instruction"]) == p["task"]
        assert p["prompt"] == judge.prompt_text(p["instruction"], p["input"])
    pairs = [(p["instruction"], p["input"]) for p in preferences]
    assert len(pairs) == len(set(pairs))
    train = {q for p, q in zip(preferences, pairs) if p["split"] == "train"}
    assert not train & {q for p, q in zip(preferences, pairs) if p["split"] == "heldout"}
    assert 1000 <= len(preferences) <= 3000


def test_gold_reward_by_hand():
    # Exact values: the formula is 1[exact] + 0.5*(1-exact)*F1 - 0.1*extra_words, clipped to [-1, 1].
    assert judge.gold_reward("Hà Nội.", "Hà Nội") == 1.0  # one trailing full stop and spaces don't matter
    assert judge.gold_reward("hanoi", "Hanoi") == pytest.approx(0.5)  # case matters for exactness, not F1
    assert judge.gold_reward("Hà", "Hà Nội") == pytest.approx(0.5 * 2 / 3)  # P=1, R=1/2 -> F1=2/3
    assert judge.gold_reward("Paris Paris", "Paris") == pytest.approx(0.5 * 2 / 3 - 0.1)  # P=1/2, R=1
    assert judge.gold_reward("Berlin", "Paris") == 0.0
    assert judge.gold_reward(" ".join(["x"] * 40), "Paris") == -1.0  # clipped
    assert judge.gold_reward("", "Paris") == 0.0


def test_judge_reads_prompts_in_template_or_plain_form():
    instruction, input, response = "Hãy dịch câu này sang tiếng Việt", "I love my family", "tôi yêu gia đình tôi"
    alpaca = (f"Below is an instruction that describes a task, paired with an input.\n\n"
              f"### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
    for prompt in (judge.prompt_text(instruction, input), alpaca, f"<s>[INST] {instruction}\n{input} [/INST]"):
        assert judge.parse_prompt(prompt) == (instruction, input)
        assert judge.judge(prompt, response) == judge.judge_prompt(prompt, response) == 1.0
        assert judge.judge(prompt, "con chó") == 0.0
    with pytest.raises(ValueError, match="none of the course instruction phrasings"):
        judge.judge_prompt("Write a poem about the sea.", "the sea")


def test_corpus_has_no_instruction_format(corpus):
    lines = corpus.splitlines()
    assert len(lines) >= 1000 and all(line.strip() for line in lines)
    assert 100_000 < len(corpus.encode("utf-8")) < 1_000_000
    for marker in ("###", "Instruction", "Response:", "Input:", "Output:", "[INST]", "<|", "<s>",
                   "Câu lệnh", "Phản hồi", "Question:", "Answer:"):
        assert marker not in corpus, marker
    folded = corpus.casefold()
    # No instruction wording of four words or more appears in the corpus (a short label such as
    # "first word" is ordinary language, and the corpus must state it: "The first word of ...").
    wordings = [p for t in tasks.TASK_SPECS.values() for p in (*t.en, *t.vi, *t.heldout_en, *t.heldout_vi)]
    leaked = [p for p in wordings if len(p.split()) >= 4 and p.casefold().rstrip(".?") in folded]
    assert not leaked, leaked
    # The base model must know what the tasks use: every lexicon pair is stated in one document,
    # as plain words. No quote marks: after '"' a word is another SentencePiece piece ('dog', not
    # '▁dog'), so what the base model learnt about "dog" would not be about the token SFT uses.
    assert '"' not in corpus
    for en, vi in world.LEXICON:
        words = [re.compile(rf"(^|\s){re.escape(w)}[\s.,]") for w in (en, vi)]
        assert any(all(w.search(line) for w in words) for line in lines), (en, vi)
    for country, _, capital, _ in world.CAPITALS:
        assert country in corpus and capital in corpus


def test_ood_answers_are_absent_from_all_data(ood, corpus, instructions, preferences):
    assert 20 <= len(ood) <= 40
    text = (corpus + json.dumps(instructions, ensure_ascii=False)
            + json.dumps(preferences, ensure_ascii=False)).casefold()
    for r in ood:
        assert r["instruction"] in {p for t in tasks.TASKS for p in (*tasks.phrasings(t)["en"], *tasks.phrasings(t)["vi"])}
        assert r["resembles"] in tasks.TASKS and r["note"]
        if r["absent"] is not None:
            assert not re.search(rf"\b{re.escape(r['absent'].casefold())}\b", text), r["absent"]
            with pytest.raises(ValueError):
                tasks.solve(r["resembles"], r["input"])


def test_default_tokenizer_is_committed_and_exact():
    tok = bundled.default_tokenizer()
    assert tok.path == bundled.SAMPLES_DIR / bundled.TOKENIZER_FILE
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    text = "Hãy dịch câu này sang tiếng Việt: \"The weather is nice today.\"\n"
    assert tok.decode(tok.encode(text)) == text


def test_default_tokenizer_matches_the_course_data(tmp_path):
    # Retraining takes ~0.2 s. If this fails, the course data changed after the tokenizer was trained:
    # run `python -m minift tokenizer --train` and commit data/samples/tokenizer.model.
    rebuilt = bundled.build_default_tokenizer(model_path=tmp_path / "tokenizer.model")
    assert Path(rebuilt.path).read_bytes() == (bundled.SAMPLES_DIR / bundled.TOKENIZER_FILE).read_bytes(), (
        "data/samples/tokenizer.model is out of date: run `python -m minift tokenizer --train`"
    )


def test_course_model_is_found_only_once_trained(tmp_path, monkeypatch):
    from minift.course.bundled import course_model

    monkeypatch.setenv("MINIFT_COURSE_MODELS", str(tmp_path))
    assert course_model("sft") is None  # `make course-models` not run: notebooks train their own
    (tmp_path / "sft" / "checkpoints").mkdir(parents=True)
    assert course_model("sft") is None  # a folder without a checkpoint is not a model
    (tmp_path / "sft" / "checkpoints" / "step_00001600.safetensors").write_bytes(b"")
    assert course_model("sft") == tmp_path / "sft"
