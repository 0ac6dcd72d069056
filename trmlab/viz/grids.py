"""Grid renderers: Sudoku (4x4, 6x6, 9x9), mazes and ARC as plotly traces.

Every panel is two traces: an RGB ``go.Image`` (one pixel per cell, so a 30x30 grid is a 30x30x3
array, cheap to redraw) and a ``go.Scatter`` on top with the cells' text (Sudoku digits, maze S/G) and
marks (ARC: an x on wrong cells, a dot on unsure ones). The colour code of a predicted answer:

* Sudoku: givens grey with dark digits; predictions green when right, red when wrong, blue when the
  label is unknown, paler the less confident the model is (white = probability 0).
* Maze: walls dark, open cells white, S blue, G orange; a predicted path cell green (right) or red
  (not on the true path), paler when unsure; a true path cell the model missed is pale yellow.
* ARC: the standard 10-colour palette; wrong cells carry a white-edged x, cells predicted with
  probability < 0.5 a small grey dot; PAD is light grey and EOS dark grey.

``cell_panel`` computes (rgb, text, marks) with numpy; two renderers draw that panel: ``panel_traces``
(plotly: the two traces, with ``grid_axes`` for the axes and Sudoku box lines) and ``draw_panel``
(matplotlib, the same picture on an Axes: PNG strips, ``trmlab data show --png``). ``grid_figure``
draws a single grid on its own plotly figure; ``draw_example`` one example of a built dataset with
matplotlib.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from trmlab.data import maze
from trmlab.data.arc import crop_sizes
from trmlab.data.view import describe_example
from trmlab.trace.tasks import (ARC_EOS, ARC_PAD, MAZE_GOAL, MAZE_PATH, MAZE_START, MAZE_WALL,
                                SUDOKU_BLANK, TaskSpec, maze_spec, sudoku_spec)

#: the standard ARC palette, colours 0..9
ARC_COLOURS = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B",
               "#7FDBFF", "#870C25"]


def _rgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[k:k + 2], 16) for k in (0, 2, 4)], np.float64)


WHITE = _rgb("#ffffff")
RIGHT = _rgb("#2ca02c")
WRONG = _rgb("#d62728")
UNKNOWN = _rgb("#1f77b4")
GIVEN = _rgb("#d9d9d9")
WALL = _rgb("#2b2b2b")
START = _rgb("#1f77b4")
GOAL = _rgb("#ff7f0e")
MISSED = _rgb("#fde9a9")
ARC_PAD_RGB = _rgb("#eeeeee")
ARC_EOS_RGB = _rgb("#555555")
ARC_RGB = np.stack([_rgb(c) for c in ARC_COLOURS])


def _blend(colour: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """White blended towards ``colour`` by ``strength`` in [0, 1] (per cell): [..., 3]."""
    s = np.clip(np.asarray(strength, np.float64), 0, 1)[..., None]
    s = 0.15 + 0.85 * s  # keep a faint tint even at probability 0
    return WHITE * (1 - s) + colour * s


def region(task: TaskSpec, inputs, labels=None, preds=None) -> tuple[int, int]:
    """(rows, cols) of the part of the canvas to draw: the whole grid, or for ARC the answer's extent
    (the label's when known, else the largest extent predicted, at least the input's)."""
    if task.family != "arc":
        return task.rows, task.cols
    if labels is not None and (np.asarray(labels) >= 0).any():
        lab = np.where(np.asarray(labels) < 0, ARC_PAD, labels)
        h, w = crop_sizes(lab)[0]
        if h and w:
            return min(h + 1, task.rows), min(w + 1, task.cols)  # + the EOS row/column
    sizes = crop_sizes(inputs)
    if preds is not None:
        sizes = np.concatenate([sizes, crop_sizes(np.asarray(preds).reshape(-1, task.seq_len))])
    h, w = (int(v) for v in sizes.max(axis=0))
    return min(max(h, 1) + 1, task.rows), min(max(w, 1) + 1, task.cols)


def cell_panel(task: TaskSpec, tokens, conf=None, correct=None, givens=None, labels=None,
               crop: Optional[tuple] = None, role: str = "answer"):
    """One grid as (rgb uint8 [h, w, 3], text [h, w] str, marks list of (row, col, kind)).

    ``role="puzzle"`` draws the question (no confidence, givens plain); ``"answer"`` colours predicted
    cells by ``conf`` [L] and ``correct`` [L] (bool, or None when the label is unknown).
    """
    R, C = task.rows, task.cols
    tok = np.asarray(tokens).reshape(R, C)
    cf = np.ones((R, C)) if conf is None else np.asarray(conf, np.float64).reshape(R, C)
    ok = None if correct is None else np.asarray(correct, bool).reshape(R, C)
    gv = np.zeros((R, C), bool) if givens is None else np.asarray(givens, bool).reshape(R, C)
    lab = None if labels is None else np.asarray(labels).reshape(R, C)
    rgb = np.empty((R, C, 3))
    text = np.full((R, C), "", dtype=object)
    marks = []
    fam = task.family
    if fam == "sudoku":
        if role == "puzzle":
            rgb[:] = WHITE
            rgb[gv] = GIVEN
        else:
            colour = np.where((ok if ok is not None else np.ones((R, C), bool))[..., None], RIGHT, WRONG)
            if ok is None:
                colour = np.broadcast_to(UNKNOWN, (R, C, 3))
            rgb[:] = _blend(colour, cf)
            rgb[gv] = GIVEN
        digits = np.where(tok > SUDOKU_BLANK, tok - 1, 0)
        text[:] = np.where(digits > 0, digits.astype(str), "")
    elif fam == "maze":
        rgb[:] = WHITE
        rgb[tok == MAZE_WALL] = WALL
        if role != "puzzle":
            path = tok == MAZE_PATH
            if ok is not None and lab is not None:
                missed = (lab == MAZE_PATH) & ~path
                rgb[missed] = MISSED
                right = path & (lab == MAZE_PATH)
                rgb[right] = _blend(RIGHT, cf)[right]
                wrong = path & (lab != MAZE_PATH)
                rgb[wrong] = _blend(WRONG, cf)[wrong]
            else:
                rgb[path] = _blend(UNKNOWN, cf)[path]
        rgb[tok == MAZE_START] = START
        rgb[tok == MAZE_GOAL] = GOAL
        text[tok == MAZE_START] = "S"
        text[tok == MAZE_GOAL] = "G"
    elif fam == "arc":
        colours = np.clip(tok - 2, 0, 9)
        rgb[:] = ARC_RGB[colours]
        rgb[tok == ARC_PAD] = ARC_PAD_RGB
        rgb[tok == ARC_EOS] = ARC_EOS_RGB
        if role != "puzzle":
            h, w = crop if crop is not None else (R, C)
            for r, c in zip(*np.nonzero(cf[:h, :w] < 0.5)):
                marks.append((int(r), int(c), "unsure"))
            if ok is not None and lab is not None:
                for r, c in zip(*np.nonzero(~ok[:h, :w] & (lab[:h, :w] >= 0))):
                    marks.append((int(r), int(c), "wrong"))
    else:  # generic: grey levels by token, confidence as tint
        levels = tok / max(task.vocab_size - 1, 1)
        rgb[:] = (1 - levels[..., None]) * 255
        text[:] = tok.astype(str)
    if crop is not None:
        h, w = crop
        rgb, text = rgb[:h, :w], text[:h, :w]
    return np.clip(rgb, 0, 255).astype(np.uint8), text, marks


_MARK_STYLE = {"wrong": ("x", 9, "#ffffff"), "unsure": ("circle", 5, "#888888")}


def panel_traces(rgb: np.ndarray, text: np.ndarray, marks=(), name: str = "", hover=None) -> list[dict]:
    """The two plotly trace dicts of a panel: an Image and a text/marks Scatter (same order always)."""
    h, w = rgb.shape[:2]
    rows, cols = np.nonzero(text != "")
    xs, ys, tx, sym, size, colour = list(cols), list(rows), list(text[rows, cols]), [], [], []
    sym += ["circle"] * len(xs)
    size += [0] * len(xs)
    colour += ["rgba(0,0,0,0)"] * len(xs)
    for r, c, kind in marks:
        s, sz, col = _MARK_STYLE[kind]
        xs.append(c), ys.append(r), tx.append(""), sym.append(s), size.append(sz), colour.append(col)
    font = max(8, min(18, int(220 / max(h, w))))
    image = dict(type="image", z=rgb, name=name, hoverinfo="skip")
    if hover is not None:
        image.update(hovertext=hover, hoverinfo="text")
    scatter = dict(type="scatter", x=[int(v) for v in xs], y=[int(v) for v in ys], text=tx, mode="markers+text",
                   textfont=dict(size=font, color="#111111"), name=name, showlegend=False, hoverinfo="skip",
                   marker=dict(symbol=sym, size=size, color=colour, line=dict(width=1, color="#222222")))
    return [image, scatter]


def draw_panel(ax, rgb: np.ndarray, text: Optional[np.ndarray] = None, marks=(), task: Optional[TaskSpec] = None,
               title: str = "", fontsize: Optional[float] = None) -> None:
    """The matplotlib renderer of a panel (``cell_panel``'s rgb, text, marks) on ``ax``: the picture the
    plotly renderer (``panel_traces`` + ``grid_axes``) draws, with the same Sudoku box lines."""
    h, w = rgb.shape[:2]
    ax.imshow(rgb, interpolation="nearest")
    fs = fontsize or max(4, min(10, int(90 / max(h, w))))
    if text is not None:
        for r, c in zip(*np.nonzero(text != "")):
            ax.text(c, r, str(text[r, c]), ha="center", va="center", fontsize=fs, color="#111111")
    for r, c, kind in marks:
        symbol, size, colour = _MARK_STYLE[kind]
        ax.plot(c, r, marker="x" if symbol == "x" else "o", color=colour, markersize=size / 3,
                mew=1 if symbol == "x" else 0)
    if task is not None:
        for line in grid_axes(task, (h, w))[2]:
            ax.plot([line["x0"], line["x1"]], [line["y0"], line["y1"]], color=line["line"]["color"],
                    linewidth=line["line"]["width"])
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def grid_axes(task: TaskSpec, shape: tuple) -> tuple[dict, dict, list]:
    """(xaxis, yaxis, shapes) settings of a grid panel: square cells, no ticks, Sudoku box lines."""
    h, w = shape
    xa = dict(range=[-0.5, w - 0.5], showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    ya = dict(range=[h - 0.5, -0.5], showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    shapes = []
    if task.family == "sudoku" and task.box:
        br, bc = task.box
        for r in range(0, h + 1, br):
            shapes.append(dict(type="line", x0=-0.5, x1=w - 0.5, y0=r - 0.5, y1=r - 0.5, line=dict(width=2, color="#333")))
        for c in range(0, w + 1, bc):
            shapes.append(dict(type="line", x0=c - 0.5, x1=c - 0.5, y0=-0.5, y1=h - 0.5, line=dict(width=2, color="#333")))
    return xa, ya, shapes


def stack_grids(grids: list, gap: int = 1, horizontal: bool = True) -> np.ndarray:
    """Place RGB grids side by side (or stacked) on a white canvas with ``gap`` pixels between them."""
    if not grids:
        return np.full((1, 1, 3), 255, np.uint8)
    if horizontal:
        H = max(g.shape[0] for g in grids)
        W = sum(g.shape[1] for g in grids) + gap * (len(grids) - 1)
    else:
        H = sum(g.shape[0] for g in grids) + gap * (len(grids) - 1)
        W = max(g.shape[1] for g in grids)
    out = np.full((H, W, 3), 255, np.uint8)
    pos = 0
    for g in grids:
        if horizontal:
            out[: g.shape[0], pos: pos + g.shape[1]] = g
            pos += g.shape[1] + gap
        else:
            out[pos: pos + g.shape[0], : g.shape[1]] = g
            pos += g.shape[0] + gap
    return out


def arc_rgb(grid) -> np.ndarray:
    """An ARC grid of colours 0..9 as RGB."""
    return ARC_RGB[np.clip(np.asarray(grid, int), 0, 9)].astype(np.uint8)


def arc_task_image(demos: list, test_input, gap: int = 2) -> np.ndarray:
    """The demonstration pairs (input -> output, one pair a row) above the test input, as one RGB image."""
    rows = []
    for d in demos:
        rows.append(stack_grids([arc_rgb(d["input"]), arc_rgb(d["output"])], gap=gap, horizontal=True))
    rows.append(arc_rgb(test_input))
    return stack_grids(rows, gap=gap, horizontal=False)


def grid_figure(task: TaskSpec, tokens, conf=None, correct=None, givens=None, labels=None, title: str = "",
                role: str = "answer", size: int = 360) -> go.Figure:
    """One grid on its own figure (puzzle or answer)."""
    crop = region(task, tokens, labels) if task.family == "arc" else None
    rgb, text, marks = cell_panel(task, tokens, conf, correct, givens, labels, crop=crop, role=role)
    fig = go.Figure([go.Image(**{k: v for k, v in t.items() if k != "type"}) if t["type"] == "image"
                     else go.Scatter(**{k: v for k, v in t.items() if k != "type"})
                     for t in panel_traces(rgb, text, marks)])
    xa, ya, shapes = grid_axes(task, rgb.shape[:2])
    fig.update_layout(xaxis=xa, yaxis=ya, shapes=shapes, width=size, height=size, title=title,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10), plot_bgcolor="white")
    return fig


def example_panels(example: dict) -> list:
    """The panels of one dataset example as ``trmlab.data.view.describe_example`` describes it:
    [(title, (rgb, text, marks), task or None)], the ARC demonstration pairs first."""
    fam = example["family"]
    q, a = np.asarray(example["question"]), np.asarray(example["answer"])
    if fam == "arc":
        panels = []
        for k, (x, y) in enumerate(example.get("demonstrations") or []):
            panels += [(f"demo {k + 1} input", (arc_rgb(x), None, ()), None),
                       (f"demo {k + 1} output", (arc_rgb(y), None, ()), None)]
        return panels + [("question", (arc_rgb(q), None, ()), None), ("answer", (arc_rgb(a), None, ()), None)]
    n = q.shape[0]
    if fam == "sudoku":
        task = sudoku_spec(n)
        givens = (q > 0).reshape(-1)
        q_tok, a_tok = q.reshape(-1) + 1, a.reshape(-1) + 1
        question = cell_panel(task, q_tok, givens=givens, role="puzzle")
        answer = cell_panel(task, a_tok, givens=givens, role="puzzle")
    elif fam == "maze":
        task = maze_spec(n)
        q_tok, a_tok = maze.encode(q), maze.encode(a)
        question = cell_panel(task, q_tok, role="puzzle")
        answer = cell_panel(task, a_tok, correct=np.ones(a_tok.shape, bool), labels=a_tok)
    else:
        raise ValueError(f"cannot draw an example of task family {fam!r}")
    return [("question", question, task), ("answer", answer, task)]


def draw_example(root=None, split: str = "test", index: int = 0, example: Optional[dict] = None, ax=None):
    """Draw one example of a built dataset with matplotlib (question and answer; ARC: the demonstration
    pairs above them, one pair a row); returns the figure. ``ax``: one or two Axes to draw the question
    (and answer) on instead of a new figure."""
    import matplotlib.pyplot as plt

    ex = example or describe_example(root, split, index)
    panels = example_panels(ex)
    if ax is not None:
        axes = np.atleast_1d(ax)
        for a, (title, panel, task) in zip(axes, panels[-2:]):
            draw_panel(a, *panel, task=task, title=title)
        return axes[0].figure
    rows = len(panels) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(6, 3 * rows), squeeze=False)
    for k, (title, panel, task) in enumerate(panels):
        draw_panel(axes[k // 2, k % 2], *panel, task=task, title=title, fontsize=None)
    fig.suptitle(f"{ex['family']} {ex['split']}[{ex['index']}] {ex['puzzle_name']}", fontsize=10)
    fig.tight_layout()
    return fig
