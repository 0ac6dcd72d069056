"""What every notebook calls first: find the project and make figures survive HTML export.

Notebooks take paths relative to the project root (:mod:`trmlab.paths`), so the same parameters work
whether a notebook is opened from ``notebooks/`` in JupyterLab or executed by papermill (``trmlab run``)
from the repository root or anywhere else.

>>> root = setup()                       # in a notebook's first code cell
>>> resolve("runs/demo-sudoku4")        # trmlab.paths.resolve: <root>/runs/demo-sudoku4
"""
from __future__ import annotations

from pathlib import Path

from ..paths import project_root


def setup(plotly_inline: bool = True) -> Path:
    """Prepare a notebook: plotly figures carry plotly.js inline (so an HTML report of the executed
    notebook shows them with no network), and return the project root."""
    if plotly_inline:
        import plotly.io as pio

        pio.renderers.default = "plotly_mimetype+notebook"
    return project_root()
