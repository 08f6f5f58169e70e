"""minift.files: errors name the file and line; JSON Lines read plain or gzipped; writes are atomic."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from minift.files import (
    append_jsonl,
    read_json,
    read_jsonl,
    read_lines,
    read_text,
    write_atomic,
    write_json,
)


def test_non_utf8_file_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("fine\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt:2: not UTF-8"):
        read_lines(path)
    with pytest.raises(FileNotFoundError, match="corpus not found: .*absent.txt"):
        read_text(tmp_path / "absent.txt", "corpus")


def test_read_lines_drops_blank_lines_and_normalises_to_nfc(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("\ufeffVie\u0302\u0323t\n\n  \nsecond\n", encoding="utf-8")  # BOM, NFD, blank lines
    assert read_lines(path) == ["Việt", "second"]


def test_jsonl_plain_and_gzipped_give_the_same_records_and_name_bad_lines(tmp_path):
    lines = [json.dumps({"a": 1}), "", json.dumps({"a": "é"})]
    plain = tmp_path / "x.jsonl"
    plain.write_text("\n".join(lines) + "\n", encoding="utf-8")
    packed = tmp_path / "x.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_jsonl(plain) == read_jsonl(packed) == [{"a": 1}, {"a": "é"}]
    plain.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.jsonl:2: expected a JSON object"):
        read_jsonl(plain)
    plain.write_text('{"a": 1}\n{"b": 2}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.jsonl:2: missing field\(s\) a"):
        read_jsonl(plain, fields=("a",))
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "a": ,\n}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json:2: not valid JSON"):
        read_json(bad)


def test_write_json_and_append_jsonl_round_trip(tmp_path):
    write_json(tmp_path / "r.json", {"b": [1, 2], "a": "tiếng Việt"})
    assert read_json(tmp_path / "r.json") == {"a": "tiếng Việt", "b": [1, 2]}
    assert "tiếng Việt" in (tmp_path / "r.json").read_text(encoding="utf-8")  # readable, not \\u escapes
    for step in (1, 2):
        append_jsonl(tmp_path / "m.jsonl", {"step": step})
    assert read_jsonl(tmp_path / "m.jsonl") == [{"step": 1}, {"step": 2}]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    target = write_atomic(tmp_path / "f.txt", "old")
    assert oct(target.stat().st_mode & 0o777) == "0o644"

    def half_write(tmp):
        tmp.write_bytes(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_write)
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["f.txt"]
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new")
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["f.txt"]
