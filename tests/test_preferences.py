"""minift.preferences: the bundled pairs in the SFT template, HH-RLHF dialogues (the real file when
../shared/data is there), and errors that name the file, line and field."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from minift.course.bundled import PREFERENCES_FILE, SAMPLES_DIR, default_tokenizer
from minift.preferences import load_preferences, split_dialogue, split_pairs
from minift.rlhf.reward_model import encode_pairs


@pytest.fixture(scope="module")
def tok():
    return default_tokenizer()


def test_bundled_preferences_load_in_the_sft_template():
    pairs = load_preferences(SAMPLES_DIR / PREFERENCES_FILE, template="compact")
    assert len(pairs) == 2000
    train, heldout = split_pairs(pairs)
    assert len(heldout) == 200 and {p.split for p in train} == {"train"}
    p = pairs[0]
    assert p.prompt.startswith("### Instruction:\n" + p.instruction) and p.prompt.endswith("### Response:\n")
    raw = load_preferences(SAMPLES_DIR / PREFERENCES_FILE, template=None)
    assert raw[0].prompt == f"{p.instruction}\n{p.input}"


def test_missing_preference_field_names_file_line_and_field(tmp_path):
    path = tmp_path / "prefs.jsonl"
    good = {"prompt": "Count the words.\na b", "chosen": "2", "rejected": "3"}
    bad = {"prompt": "Count the words.\na b c", "chosen": "3"}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"prefs\.jsonl:3: missing field 'rejected'"):
        load_preferences(path)


def test_hh_rlhf_dialogue_split():
    row = {"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 4",
           "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: five, I think"}
    prompt, answer = split_dialogue(row["chosen"])
    assert prompt == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant:" and answer == "4"
    with pytest.raises(ValueError, match="Assistant"):
        split_dialogue("\n\nHuman: no answer")


def test_hh_rlhf_loader_on_a_gz_file(tmp_path):
    path = tmp_path / "hh.jsonl.gz"
    rows = [{"chosen": "\n\nHuman: a\n\nAssistant: yes", "rejected": "\n\nHuman: a\n\nAssistant: no"},
            {"chosen": "\n\nHuman: b\n\nAssistant: ok"}]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"hh\.jsonl\.gz:2: missing field 'rejected'"):
        load_preferences(path)


def test_hh_rlhf_real_file(shared_data, tok):
    path = shared_data / "hh-rlhf" / "test.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    pairs = load_preferences(path)
    assert len(pairs) == 2312
    assert all(p.prompt.startswith("\n\nHuman:") and p.prompt.endswith("\n\nAssistant:") for p in pairs)
    assert sum(p.chosen != p.rejected for p in pairs) > 0.95 * len(pairs)
    with gzip.open(path, "rt", encoding="utf-8") as f:  # the split gives the dialogue back
        first = json.loads(f.readline())
    assert pairs[0].prompt + " " + pairs[0].chosen == first["chosen"].rstrip()
    batch, dropped = encode_pairs(pairs[:50], tok, max_len=256)
    assert batch.chosen.shape[1] <= 256 and batch.chosen.shape[0] + dropped == 50
    assert np.all(batch.chosen[:, 0] == tok.bos_id)  # prompts are cut from the left, after BOS
