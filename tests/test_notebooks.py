"""Every notebook runs top to bottom, at the small setting MINIFT_NOTEBOOK_SMALL=1.

Notebooks import minift and never redefine it, so running them here checks that the course
material and the library agree. They are stored without outputs, and each ``.ipynb`` is paired
with a jupytext percent-format ``.py`` holding the same cells (checked too): a teacher edits
either one, and ``jupytext --sync`` (or Jupyter with jupytext installed) brings the other along.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} cell {i} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_and_its_py_twin_hold_the_same_cells(path):
    jupytext = pytest.importorskip("jupytext")
    twin = path.with_suffix(".py")
    assert twin.is_file(), f"{twin.name} is missing: run `jupytext --set-formats ipynb,py:percent {path.name}`"
    stored = json.loads(path.read_text(encoding="utf-8"))
    from_py = jupytext.read(twin)

    def cells(nb):
        return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
                for c in nb["cells"]]

    assert cells(stored) == cells(from_py), (
        f"{path.name} and {twin.name} differ: run `jupytext --sync notebooks/{twin.name}` after editing either"
    )
    assert stored["metadata"].get("jupytext", {}).get("formats") == "ipynb,py:percent"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MINIFT_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
