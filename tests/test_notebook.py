"""The tour notebook runs top to bottom, on a small configuration of its scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "tour.ipynb"


def test_the_tour_runs_top_to_bottom(tmp_path, template_db):
    import shutil

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if c.cell_type == "code" and "WEEKS" in c.source)
    db = tmp_path / "nb.db"
    shutil.copy(template_db, db)
    params.source = (
        "WEEKS, ROWS, SHIFT_WEEK, CONCEPT_WEEK = 5, 500, 2, 4\n"
        f'TRACKING_URI = "sqlite:///{db}"\nMODEL = "credit-notebook"'
    )
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {i: c.get("outputs", []) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    text = "\n".join(
        str(o.get("data", {}).get("text/plain", "")) for out in outputs.values() for o in out
    )
    assert "promote 1 -> 2" in text  # the ledger's first promotion
    assert any("image/png" in o.get("data", {}) for out in outputs.values() for o in out)
