"""minift.formats: the loaders read the real datasets (../shared/data, skipped without it) and fail
on bad input naming the file, the line (or item) and the field."""

from __future__ import annotations

import json
import unicodedata

import pytest

from minift import formats
from minift.data import Example, encode_dataset
from minift.tokenizer import Tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Tokenizer:
    """A small tokenizer trained on a few sentences, independent of the committed model."""
    texts = ["The cat sat on the mat.", "Tôi yêu tiếng Việt.", "Add 12 and 30. The answer is 42."] * 3
    return train_tokenizer([], tmp_path_factory.mktemp("tok") / "tiny.model", 300, texts=texts)


# --- loaders: the real datasets ---------------------------------------------------------------


def test_load_alpaca_demo(shared_data, tok):
    path = shared_data / "alpaca-gpt4-sample" / "alpaca_en_demo.json"
    assert formats.detect_format(path) == "alpaca"
    examples = formats.load_examples(path)
    assert len(examples) == 999 and all(e.instruction and e.response for e in examples)
    assert sum(bool(e.input) for e in examples) > 0
    encoded, stats = encode_dataset(examples[:50], tok, 257)
    assert stats.kept == len(encoded) and stats.kept + stats.dropped_too_long == 50


def test_load_t0_prompt_completion_files(shared_data, tok):
    files = sorted((shared_data / "t0-style-templates").glob("*.jsonl"))
    assert len(files) == 15
    for path in files:
        examples = formats.load_examples(path)
        assert formats.detect_format(path) == "prompt_completion"
        assert len(examples) in (200, 91), path.name
        assert not any(e.response.endswith("<|endoftext|>") for e in examples)
        assert all(e.task == path.stem for e in examples)
    # this template's completions are all empty in the source: every example is skipped and counted
    trec = formats.load_examples(shared_data / "t0-style-templates" / "trec_what_category_best_describe.jsonl")
    _, stats = encode_dataset(trec, tok, 256)
    assert stats.skipped_empty_response == 200 and stats.kept == 0


def test_load_self_instruct_seed_tasks(shared_data):
    path = shared_data / "self-instruct-seed" / "seed_tasks.jsonl"
    examples = formats.load_examples(path)
    assert formats.detect_format(path) == "self_instruct"
    assert len(examples) == 175  # one instance per seed task
    assert examples[0].task == "breakfast_suggestion" and examples[0].response.startswith("Yes")


def test_load_superni_task(shared_data):
    examples = formats.load_examples(shared_data / "superni-tasks" / "task062_bigbench_repeat_copy_logic.json")
    assert len(examples) == 29 and all(e.instruction.startswith("This task evaluates") for e in examples)


# --- loaders: bad input -----------------------------------------------------------------------


def _write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps({"instruction": "Say hi", "input": "", "output": "hi", "task": "greet", "split": "train"})


def test_minift_jsonl_loads_with_nfc_and_blank_lines(tmp_path):
    nfd = unicodedata.normalize("NFD", "Việt")
    path = _write_lines(tmp_path / "ok.jsonl", [GOOD, "", json.dumps({"instruction": nfd, "output": "x"})])
    examples = formats.load_examples(path)
    assert formats.detect_format(path) == "minift"
    assert examples[0] == Example("Say hi", "", "hi", "greet", "train")
    assert examples[1].instruction == "Việt" == unicodedata.normalize("NFC", nfd)


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = _write_lines(tmp_path / "bad.jsonl", [GOOD, GOOD, '{"instruction": "x", "output": '])
    with pytest.raises(ValueError, match=r"bad.jsonl:3: not valid JSON"):
        formats.load_examples(path)


def test_missing_field_names_field_and_line(tmp_path):
    path = _write_lines(tmp_path / "missing.jsonl", [GOOD, json.dumps({"instruction": "x", "input": ""})])
    with pytest.raises(ValueError, match=r"missing.jsonl:2: missing field 'output'"):
        formats.load_examples(path)
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"output": "b"}]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"alpaca.json: item 1: missing field 'instruction'"):
        formats.load_examples(alpaca)


def test_wrong_field_type_is_named(tmp_path):
    path = _write_lines(tmp_path / "typed.jsonl", [json.dumps({"instruction": "x", "output": 42})])
    with pytest.raises(ValueError, match=r"typed.jsonl:1: field 'output' must be a string, got int"):
        formats.load_examples(path)


def test_non_utf8_file_is_named(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes((GOOD + "\n" + '{"instruction": "caf\xe9", "output": "x"}\n').encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.jsonl:2: not UTF-8"):
        formats.load_examples(path)


def test_unknown_format_lists_the_known_ones(tmp_path):
    path = _write_lines(tmp_path / "odd.jsonl", [json.dumps({"question": "q", "answer": "a"})])
    with pytest.raises(ValueError, match=r"cannot tell the format \(fields: \['answer', 'question'\]\)"):
        formats.load_examples(path)
    with pytest.raises(ValueError, match="unknown data format 'csv'; known formats: auto, minift, alpaca"):
        formats.load_examples(path, format="csv")
    with pytest.raises(FileNotFoundError, match="nothere.jsonl"):
        formats.load_examples(tmp_path / "nothere.jsonl")


def test_messages_format(tmp_path):
    one = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Xin chào"}]}
    path = _write_lines(tmp_path / "chat.jsonl", [json.dumps(one)])
    assert formats.load_examples(path) == [Example("Hi", "", "Xin chào")]
    multi = {"messages": one["messages"] * 2}
    path = _write_lines(tmp_path / "multi.jsonl", [json.dumps(one), json.dumps(multi)])
    assert len(formats.load_conversations(path)) == 2
    with pytest.raises(ValueError, match=r"multi.jsonl:2: .*use load_conversations\(\) and minift.chat.encode_messages\(\)"):
        formats.load_examples(path)


def test_prompt_completion_strips_end_of_text(tmp_path):
    path = _write_lines(tmp_path / "pc.jsonl", [json.dumps({"prompt": "2+2=\n", "completion": "4<|endoftext|>"})])
    assert formats.load_examples(path) == [Example("2+2=\n", "", "4", task="pc")]
