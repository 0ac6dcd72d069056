"""Small HTML tables for notebooks: shown as HTML in JupyterLab and kept as HTML in exported reports."""
from __future__ import annotations

import html
import math
from typing import Optional, Sequence


def format_value(v) -> str:
    """A cell's text: floats to 4 significant digits, None/NaN as an empty cell, tuples joined."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(format_value(x) for x in v)
    return str(v)


class Table:
    """Rows of dicts as a table. ``columns``: the keys to show, in order (default: the first row's);
    ``headers``: column titles (default: the keys); ``empty``: what to say when there is no row. Displays as HTML in a notebook; ``str()`` is text."""

    def __init__(self, rows: Sequence[dict], columns: Optional[Sequence[str]] = None,
                 headers: Optional[Sequence[str]] = None, title: str = "", empty: str = "(no rows)"):
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns) if columns is not None else (list(self.rows[0]) if self.rows else [])
        self.headers = list(headers) if headers is not None else list(self.columns)
        if len(self.headers) != len(self.columns):
            raise ValueError(f"Table: {len(self.headers)} headers for {len(self.columns)} columns")
        self.title = title
        self.empty = empty

    def cells(self) -> list[list[str]]:
        return [[format_value(r.get(c)) for c in self.columns] for r in self.rows]

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p><b>{html.escape(self.title)}</b> {html.escape(self.empty)}</p>"
        head = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in self.cells())
        caption = f"<caption style='text-align:left;font-weight:bold'>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table style='border-collapse:collapse'>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        if not self.rows:
            return f"{self.title} {self.empty}".strip()
        rows = [self.headers] + self.cells()
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.headers))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return ((self.title + "\n") if self.title else "") + "\n".join(lines)

    __repr__ = __str__
