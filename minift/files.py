"""Reading and writing files safely: UTF-8 text, JSON Lines, atomic writes (the data layer's floor).

Every file minift reads or writes goes through these few functions, so every error names the
file (and the line), and no crash ever leaves half a file behind:

* ``read_text`` — a UTF-8 file's text; a byte that is not UTF-8 is reported with its line.
* ``numbered_jsonl`` / ``read_jsonl`` — JSON Lines (``.jsonl``, or ``.jsonl.gz`` as HH-RLHF ships
  it), one object per line; errors say ``file:line``. Blank lines are skipped.
* ``write_atomic`` — write to a temporary file beside the target, flush it to disk, then rename:
  readers see the old file or the new one, never a mix (checkpoints, the tokenizer, metrics).
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def read_text(path: str | os.PathLike, what: str = "text file") -> str:
    """A UTF-8 file's text (``.gz`` files are decompressed); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # -sig: a leading byte-order mark is dropped, not parsed
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}). "
            f"Re-save the file as UTF-8."
        ) from None


def numbered_jsonl(path: str | os.PathLike, what: str = "data file") -> Iterator[tuple[str, dict[str, Any]]]:
    """``("file:line", object)`` for each non-blank line of a JSON Lines file (``.gz`` too)."""
    path = Path(path)
    for lineno, line in enumerate(read_text(path, what).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{where}: not valid JSON ({err.msg}, column {err.colno}); each line of a .jsonl "
                f"file must be one JSON object"
            ) from None
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object {{...}}, got {type(row).__name__}")
        yield where, row


def read_jsonl(path: str | os.PathLike, what: str = "data file", fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The objects of a JSON Lines file; errors name the file and line, and any missing ``fields``."""
    rows = []
    for where, row in numbered_jsonl(path, what):
        missing = [f for f in fields if f not in row]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
        rows.append(row)
    return rows


def read_json(path: str | os.PathLike, what: str = "data file") -> Any:
    """A JSON file's value; a syntax error names the file and line."""
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg}, column {err.colno})") from None


def write_json(path: str | os.PathLike, value: Any, indent: int | None = 2) -> Path:
    """Write ``value`` as UTF-8 JSON (keys sorted, non-ASCII kept readable), atomically."""
    return write_atomic(path, json.dumps(value, indent=indent, ensure_ascii=False, sort_keys=True) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON object as a line (a run's ``metrics.jsonl``: one record per step)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


def write_atomic(path: str | os.PathLike, write: Callable[[Path], Any] | bytes | str) -> Path:
    """Create or replace ``path`` atomically: a crash leaves the old file or the new one, never half.

    ``write`` is the content (bytes, or str written as UTF-8), or a function that writes the
    content to the temporary path it is given (e.g. ``safetensors.numpy.save_file``). The
    temporary file sits in the target's folder (``os.replace`` is atomic only within one
    filesystem) and is flushed to disk before the rename publishes it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if callable(write):
            write(tmp)
        else:
            tmp.write_bytes(write.encode("utf-8") if isinstance(write, str) else write)
        with open(tmp, "rb+") as f:  # the bytes must be on disk before the rename publishes them
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private (0600); ours are ordinary data
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; not every OS lets a directory be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_lines(path: str | os.PathLike, what: str = "text file") -> list[str]:
    """The non-empty lines of a UTF-8 text file, NFC-normalised (one document or sentence each).

    NFC is the form in which each Vietnamese letter with its diacritics ("ệ") is one code point,
    so the same word always gets the same tokens (see ``minift.tokenizer``).
    """
    return [unicodedata.normalize("NFC", line) for line in read_text(path, what).splitlines() if line.strip()]
