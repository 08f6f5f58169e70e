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

import pytest

from minift import coursedata as cd
from minift.cli import main as cli_main


@pytest.fixture(scope="module")
def instructions() -> list[dict]:
    return cd.read_jsonl(cd.SAMPLES_DIR / cd.INSTRUCTIONS_FILE, cd.INSTRUCTION_FIELDS)


@pytest.fixture(scope="module")
def preferences() -> list[dict]:
    return cd.read_jsonl(cd.SAMPLES_DIR / cd.PREFERENCES_FILE, cd.PREFERENCE_FIELDS)


@pytest.fixture(scope="module")
def ood() -> list[dict]:
    return cd.read_jsonl(cd.SAMPLES_DIR / cd.OOD_FILE, cd.OOD_FIELDS)


@pytest.fixture(scope="module")
def corpus() -> str:
    return (cd.SAMPLES_DIR / cd.CORPUS_FILE).read_text(encoding="utf-8")


def test_generate_reproduces_the_committed_files_byte_for_byte(tmp_path):
    written = cd.generate(tmp_path)
    assert set(written) == set(cd.GENERATED_FILES)
    for name in cd.GENERATED_FILES:
        committed = (cd.SAMPLES_DIR / name).read_bytes()
        assert (tmp_path / name).read_bytes() == committed, (
            f"data/samples/{name} is not what minift.coursedata.generate writes: run `python -m minift data`")


def test_cli_writes_into_out(tmp_path, capsys):
    assert cli_main(["data", "--out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(cd.GENERATED_FILES)
    assert "instructions.jsonl" in capsys.readouterr().out


def test_files_are_nfc_utf8_and_small():
    total = 0
    for name in cd.GENERATED_FILES:
        raw = (cd.SAMPLES_DIR / name).read_bytes()
        total += len(raw)
        text = raw.decode("utf-8")  # raises if not UTF-8
        assert unicodedata.is_normalized("NFC", text), name
    assert total < 4_000_000  # "a few MB" at most: the course data ships in the repository


def test_json_lines_have_the_documented_fields_in_order(instructions, preferences, ood):
    for records, fields in ((instructions, cd.INSTRUCTION_FIELDS), (preferences, cd.PREFERENCE_FIELDS),
                            (ood, cd.OOD_FIELDS)):
        for r in records:
            assert tuple(r) == fields
    assert {r["split"] for r in instructions} == set(cd.SPLITS)
    assert {r["split"] for r in preferences} == {"train", "heldout"}
    assert all(r["task"] == "ood" for r in ood)


def test_read_jsonl_names_file_line_and_field(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"instruction": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.jsonl:2: not valid JSON"):
        cd.read_jsonl(bad)
    with pytest.raises(ValueError, match=r"x\.jsonl:1: missing field\(s\) input"):
        cd.read_jsonl(bad, ("instruction", "input"))
    with pytest.raises(FileNotFoundError, match="minift data"):
        cd.read_jsonl(tmp_path / "absent.jsonl")


def test_task_families_and_phrasings():
    assert len(cd.TASKS) >= 10 and 2 <= len(cd.HELDOUT_TASKS) <= 3
    assert not set(cd.TASKS) & set(cd.HELDOUT_TASKS)
    every_phrasing = []
    for task in cd.TASKS:
        train, held = cd.phrasings(task), cd.phrasings(task, heldout=True)
        for lang in ("en", "vi"):
            assert len(train[lang]) + len(held[lang]) >= 8 and len(held[lang]) >= 2, (task, lang)
        every_phrasing += [*train["en"], *train["vi"], *held["en"], *held["vi"]]
        # English phrasings are ASCII; Vietnamese ones carry diacritics (a crude but sure language check).
        assert all(p.isascii() for p in (*train["en"], *held["en"])), task
        assert all(not p.isascii() for p in (*train["vi"], *held["vi"])), task
    for task in cd.HELDOUT_TASKS:
        every_phrasing += [*cd.phrasings(task)["en"], *cd.phrasings(task)["vi"]]
    # No phrasing is shared between tasks (or repeated): the instruction alone names the task.
    keys = [cd._key(p) for p in every_phrasing]
    assert len(keys) == len(set(keys))
    for p in every_phrasing:
        assert cd.task_of(p) in (*cd.TASKS, *cd.HELDOUT_TASKS)
        assert cd.task_of("  " + p.upper() + " ") == cd.task_of(p)
    with pytest.raises(ValueError, match="not one of the course phrasings"):
        cd.task_of("Write a poem.")


def test_splits_hold_out_what_they_claim(instructions):
    by_split = defaultdict(list)
    for r in instructions:
        by_split[r["split"]].append(r)
    train_instructions = {r["instruction"] for r in by_split["train"]}
    train_pairs = {(r["instruction"], r["input"]) for r in by_split["train"]}
    assert {r["task"] for r in by_split["train"]} == set(cd.TASKS)
    assert {r["task"] for r in by_split["heldout_phrasing"]} == set(cd.TASKS)
    assert {r["task"] for r in by_split["heldout_task"]} == set(cd.HELDOUT_TASKS)
    for r in by_split["heldout_phrasing"] + by_split["heldout_task"]:
        assert r["instruction"] not in train_instructions
        assert (r["instruction"], r["input"]) not in train_pairs
    for task in cd.TASKS:  # every trained phrasing is used in train, every held-out one in heldout_phrasing
        assert {r["instruction"] for r in by_split["train"] if r["task"] == task} == {
            *cd.phrasings(task)["en"], *cd.phrasings(task)["vi"]}
        assert {r["instruction"] for r in by_split["heldout_phrasing"] if r["task"] == task} == {
            *cd.phrasings(task, heldout=True)["en"], *cd.phrasings(task, heldout=True)["vi"]}
    counts = Counter((r["split"], r["task"]) for r in instructions)
    assert len(by_split["train"]) == sum(cd.TRAIN_EXAMPLES.values()) == 9840
    assert all(40 <= counts["heldout_phrasing", t] <= 60 for t in cd.TASKS)
    assert all(counts["heldout_task", t] >= 30 for t in cd.HELDOUT_TASKS)
    assert len(train_pairs) == len(by_split["train"])  # no duplicate examples


def test_every_output_is_the_true_answer(instructions):
    for r in instructions:
        assert r["output"].strip() and r["input"].strip()
        assert r["output"] == cd.solve(r["task"], r["input"]), r


@pytest.mark.parametrize("task, input, expected", [
    ("translate_en_vi", "dog", "con chó"), ("translate_vi_en", "con mèo", "cat"),
    ("reverse_words", "red dog runs", "runs dog red"), ("uppercase", "big cat", "BIG CAT"),
    ("count_words", "a b c d", "4"), ("first_word", "sun moon", "sun"), ("last_word", "sun moon", "moon"),
    ("sort_numbers", "12 3 7", "3 7 12"), ("max_number", "12 3 30", "30"),
    ("sentiment", "This movie is great", "positive"), ("sentiment", "Tôi ghét bộ phim này", "tiêu cực"),
    ("fact_qa", "What is the capital of Vietnam?", "Hanoi"), ("fact_qa", "Con nhện có mấy chân?", "8"),
    ("lowercase", "BIG CAT", "big cat"), ("second_word", "a b c", "b"), ("min_number", "7 3 9", "3"),
])
def test_solve_by_hand(task, input, expected):
    assert cd.solve(task, input) == expected


def test_solve_refuses_what_the_data_does_not_know():
    with pytest.raises(ValueError, match="not in the course lexicon"):
        cd.solve("translate_en_vi", "telescope")
    with pytest.raises(ValueError, match="unknown task"):
        cd.solve("poetry", "x")


def test_closed_world_is_one_to_one_and_small():
    assert len(cd.EN_TO_VI) == len(cd.VI_TO_EN) == len(cd.LEXICON) <= 150
    assert 30 <= cd.N_FACTS <= 40
    assert all(w.islower() and " " not in w for w in cd.WORDS)


def test_section1_example_is_in_the_data(instructions):
    ex = cd.SECTION1_EXAMPLE
    assert ex["instruction"] == "Hãy dịch câu này sang tiếng Việt"
    assert ex["instruction"] in cd.phrasings("translate_en_vi")["vi"]  # trained, as in the article's story
    assert cd.task_of(ex["instruction"]) == ex["task"] == "translate_en_vi"
    assert ex["input"] in cd.EN_TO_VI and cd.solve(ex["task"], ex["input"]) == ex["output"]
    assert any(r["instruction"] == ex["instruction"] and r["split"] == "train" for r in instructions)


def test_judge_prefers_every_chosen_response(preferences):
    for p in preferences:
        chosen = cd.judge(p["instruction"], p["input"], p["chosen"])
        rejected = cd.judge(p["instruction"], p["input"], p["rejected"])
        assert chosen == 1.0 and rejected < chosen, p
        assert p["chosen"] == cd.solve(p["task"], p["input"]) and cd.task_of(p["instruction"]) == p["task"]
        assert p["prompt"] == cd.prompt_text(p["instruction"], p["input"])
    pairs = [(p["instruction"], p["input"]) for p in preferences]
    assert len(pairs) == len(set(pairs))
    train = {q for p, q in zip(preferences, pairs) if p["split"] == "train"}
    assert not train & {q for p, q in zip(preferences, pairs) if p["split"] == "heldout"}
    assert 1000 <= len(preferences) <= 3000


def test_gold_reward_by_hand():
    # Exact values: the formula is 1[exact] + 0.5*(1-exact)*F1 - 0.1*extra_words, clipped to [-1, 1].
    assert cd.gold_reward("Hà Nội.", "Hà Nội") == 1.0  # one trailing full stop and spaces don't matter
    assert cd.gold_reward("hanoi", "Hanoi") == pytest.approx(0.5)  # case matters for exactness, not F1
    assert cd.gold_reward("Hà", "Hà Nội") == pytest.approx(0.5 * 2 / 3)  # P=1, R=1/2 -> F1=2/3
    assert cd.gold_reward("Paris Paris", "Paris") == pytest.approx(0.5 * 2 / 3 - 0.1)  # P=1/2, R=1
    assert cd.gold_reward("Berlin", "Paris") == 0.0
    assert cd.gold_reward(" ".join(["x"] * 40), "Paris") == -1.0  # clipped
    assert cd.gold_reward("", "Paris") == 0.0


def test_judge_reads_prompts_in_template_or_plain_form():
    instruction, input, response = "Hãy dịch câu này sang tiếng Việt", "I love my family", "tôi yêu gia đình tôi"
    alpaca = (f"Below is an instruction that describes a task, paired with an input.\n\n"
              f"### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
    for prompt in (cd.prompt_text(instruction, input), alpaca, f"<s>[INST] {instruction}\n{input} [/INST]"):
        assert cd.parse_prompt(prompt) == (instruction, input)
        assert cd.judge(prompt, response) == cd.judge_prompt(prompt, response) == 1.0
        assert cd.judge(prompt, "con chó") == 0.0
    with pytest.raises(ValueError, match="none of the course instruction phrasings"):
        cd.judge_prompt("Write a poem about the sea.", "the sea")


def test_corpus_has_no_instruction_format(corpus):
    lines = corpus.splitlines()
    assert len(lines) >= 1000 and all(line.strip() for line in lines)
    assert 100_000 < len(corpus.encode("utf-8")) < 1_000_000
    for marker in ("###", "Instruction", "Response:", "Input:", "Output:", "[INST]", "<|", "<s>",
                   "Câu lệnh", "Phản hồi", "Question:", "Answer:"):
        assert marker not in corpus, marker
    folded = corpus.casefold()
    phrasings = [p for t in cd.TASK_SPECS.values() for p in (*t.en, *t.vi, *t.heldout_en, *t.heldout_vi)]
    leaked = [p for p in phrasings if p.casefold().rstrip(".?") in folded]
    assert not leaked, leaked
    # The base model must know what the tasks use: every lexicon pair is stated in one document,
    # as plain words. No quote marks: after '"' a word is another SentencePiece piece ('dog', not
    # '▁dog'), so what the base model learnt about "dog" would not be about the token SFT uses.
    assert '"' not in corpus
    for en, vi in cd.LEXICON:
        words = [re.compile(rf"(^|\s){re.escape(w)}[\s.,]") for w in (en, vi)]
        assert any(all(w.search(line) for w in words) for line in lines), (en, vi)
    for country, _, capital, _ in cd.CAPITALS:
        assert country in corpus and capital in corpus


def test_ood_answers_are_absent_from_all_data(ood, corpus, instructions, preferences):
    assert 20 <= len(ood) <= 40
    text = (corpus + json.dumps(instructions, ensure_ascii=False)
            + json.dumps(preferences, ensure_ascii=False)).casefold()
    for r in ood:
        assert r["instruction"] in {p for t in cd.TASKS for p in (*cd.phrasings(t)["en"], *cd.phrasings(t)["vi"])}
        assert r["resembles"] in cd.TASKS and r["note"]
        if r["absent"] is not None:
            assert not re.search(rf"\b{re.escape(r['absent'].casefold())}\b", text), r["absent"]
            with pytest.raises(ValueError):
                cd.solve(r["resembles"], r["input"])
