"""Helpers shared by the notebook build scripts (``notebooks/_build_0*.py``).

Notebooks are written from these scripts, not edited in Jupyter, so they stay diffable and are
stored without outputs (the test suite checks it and executes each one).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

md = new_markdown_cell


def code(source: str):
    cell = new_code_cell(source.strip("\n"))
    cell.outputs, cell.execution_count = [], None
    return cell


def write(cells: list, name: str) -> Path:
    """Validate and write ``notebooks/<name>`` from ``cells``."""
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # stable ids: rebuilding an unchanged notebook changes no byte
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    out = Path(__file__).resolve().parent / name
    nbformat.write(nb, out)
    print("wrote", out)
    return out
