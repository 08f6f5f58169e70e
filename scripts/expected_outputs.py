"""Run every notebook at the class setting and keep its outputs, to read without running.

    make course-models                      # the models notebooks 04-06 load (5 min 19 s measured)
    python scripts/expected_outputs.py      # or: make expected-outputs

Each ``notebooks/NN_*.ipynb`` is executed top to bottom with nbclient, exactly as a teacher runs it
in class (``MINIFT_NOTEBOOK_SMALL`` unset, the course models of ``runs/course/`` loaded), and the
executed copy, outputs and figures included, is written to ``docs/expected/``. The wall time of each
run goes into ``docs/expected/timings.json`` with the machine, so the course guide can say how long
each notebook took. The notebooks themselves stay stored without outputs; ``tests/test_notebooks.py``
checks that each expected copy holds the notebook's current code cells, so a code change that is
not re-run here fails the suite.

Options: ``python scripts/expected_outputs.py 04 05`` runs only those notebooks.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import nbclient
import nbformat

import jax
from minift.course.bundled import course_model

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "docs" / "expected"


def run(path: Path) -> float:
    """Execute one notebook in a fresh kernel from ``notebooks/``; write its executed copy; its seconds."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=3600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    seconds = time.perf_counter() - start
    nb.metadata["minift_expected"] = {"seconds": round(seconds, 1), "setting": "class (MINIFT_NOTEBOOK_SMALL unset)"}
    OUT.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, OUT / path.name)
    return seconds


def main(only: list[str]) -> dict:
    if not all(course_model(name) for name in ("base", "sft", "rm")):
        sys.exit("runs/course/ lacks the course models: run `make course-models` first (5 minutes)")
    os.environ.pop("MINIFT_NOTEBOOK_SMALL", None)
    os.environ.pop("MINIFT_EXERCISES", None)
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend, so each figure is kept as an image
    timings_file = OUT / "timings.json"
    timings = json.loads(timings_file.read_text(encoding="utf-8")) if timings_file.is_file() else {"notebooks": {}}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if only and path.name[:2] not in only:
            continue
        print(f"{path.name} ...", flush=True)
        seconds = run(path)
        print(f"{path.name}: {seconds:.0f} s", flush=True)
        timings["notebooks"][path.stem] = round(seconds, 1)
    timings["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version(), "jax": jax.__version__,
                          "backend": jax.default_backend()}
    timings_file.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return timings


if __name__ == "__main__":
    main(sys.argv[1:])
