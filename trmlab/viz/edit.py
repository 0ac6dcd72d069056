"""Edit and continue, the drawing side: read an edit typed in the player, place it at a record, splice
the continued run onto the trajectory shown, mark what changed, and say whether the answer recovers.

The player (:class:`trmlab.viz.player.Player`) does not run the model: its ``continue_with(interventions)
-> Trace`` (given by the workbench, e.g. :meth:`trmlab.workbench.recursion.Recursion.continue_with`)
traces the same model on the same batch with the interventions of :mod:`trmlab.trace.interventions`.
Evaluation is deterministic, so that run's records before the first intervention point are bit-identical
to the trajectory shown; :func:`splice` checks it and keeps the shown records up to there, the new ones
from there on.

>>> iv = make_intervention(trace, k=40, kind="answer", cell="3,5", token="7", puzzle=0)
>>> edited = splice(shown, continue_with([iv]), first_affected(shown, iv))
>>> changed_cells(edited, trace, k=60, puzzle=0)          # bool [L]: y differs from the original there
>>> recovery(edited, trace, first_affected(shown, iv), 0)  # 'the answer is right again from ...'
"""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

from trmlab.trace.interventions import Intervention, Reset, SetAnswerCell, SetInputCell, Swap
from trmlab.trace.recorder import EVENTS, Trace
from trmlab.trace.tasks import SUDOKU_BLANK

#: the edits the player offers: key -> what the menu says
KINDS = {
    "answer": "answer cell (y)",
    "input": "puzzle cell (x)",
    "reset_z": "reset z",
    "reset_y": "reset y",
    "swap_z": "swap z with puzzle",
}
#: the kinds that need a cell, and those that need a token too
NEEDS_CELL = ("answer", "input")
#: per-record arrays drawn on a PCA plane (comparable only between traces projected on the same plane)
PCA_ARRAYS = ("y_pc", "z_pc", "y_cell_pc", "z_cell_pc")
#: the colour of the outline of the cells an edit changed
CHANGED_COLOUR = "#e600e6"


class EditError(ValueError):
    """An edit that cannot be made (a bad cell or token, a frame with no step after it); the message is
    what the player's status line says."""


# -- reading what was typed --------------------------------------------------------------------------------


def parse_cell(task, text: str) -> int:
    """A grid cell from ``"row,col"`` (counted from 1, as on the grid) or a cell index (from 0, as the
    interventions count: ``"22"`` or ``"#22"``)."""
    s = str(text).strip()
    rows, cols = task.rows, task.cols
    where = f"cell {s!r}" if s else "cell: empty"
    pair = re.fullmatch(r"\(?\s*(-?\d+)\s*[, ;xX]\s*(-?\d+)\s*\)?", s)
    if pair:
        r, c = int(pair.group(1)), int(pair.group(2))
        if not (1 <= r <= rows and 1 <= c <= cols):
            raise EditError(f"{where}: row and column count from 1; the grid has {rows} rows and {cols} columns")
        return (r - 1) * cols + (c - 1)
    single = re.fullmatch(r"#?\s*(-?\d+)", s)
    if single:
        k = int(single.group(1))
        if not 0 <= k < task.seq_len:
            raise EditError(f"{where}: a cell index counts from 0; the grid has {task.seq_len} cells "
                            f"(0..{task.seq_len - 1}), or give row,col from 1")
        return k
    raise EditError(f"{where}: give row,col (from 1, e.g. 3,5) or a cell index (from 0, e.g. 22)")


def token_choices(task) -> dict:
    """What may be typed as a token -> the token: the symbols the grids show (Sudoku digits, maze
    characters, ARC colours), plus ``.`` for a blank Sudoku cell; generic grids take token numbers."""
    if task.family == "generic":
        return {str(t): t for t in range(task.vocab_size)}
    out = {}
    for t in range(task.vocab_size):
        sym = task.symbol(t)
        if sym and sym not in out:
            out[sym] = t
    if task.family == "sudoku":
        out["."] = SUDOKU_BLANK
    return out


def parse_token(task, text: str) -> int:
    """The token of a typed symbol (see :func:`token_choices`); a clear message listing the valid ones."""
    s = str(text).strip()
    choices = token_choices(task)
    if task.family == "maze" and text and not s:
        s = " "  # an open maze cell is a space
    if s in choices:
        return int(choices[s])
    valid = ", ".join(repr(k) for k in choices)
    what = {"sudoku": "a digit (or . for blank)", "maze": "a maze character", "arc": "a colour 0-9"}.get(
        task.family, "a token number")
    raise EditError(f"token {s!r}: give {what} of this {task.name or task.family}: {valid}")


# -- where an edit acts ------------------------------------------------------------------------------------


def _key(event: str, s: int, t: int, i: int) -> tuple:
    """Records and hook points in the model's order: (step, recursion, latent step, phase)."""
    return (s, t, i, EVENTS.index(event))


def _record_keys(trace: Trace) -> list:
    return [_key(trace.event_name(k), *(int(v) for v in trace.index[k])) for k in range(len(trace))]


def first_affected(trace: Trace, iv: Intervention) -> int:
    """The first record of ``trace`` at or after the point where ``iv`` acts (``len(trace)`` when none)."""
    p = iv.point()
    n = int(trace.meta["n_latent_steps"])
    if p.name == "start":
        point = (p.step, -1, -1, -1)
    elif p.name == "answer":
        point = _key("answer", p.step, p.recursion, n)
    else:
        point = _key("latent", p.step, p.recursion, p.latent_step)
    for k, key in enumerate(_record_keys(trace)):
        if key >= point:
            return k
    return len(trace)


def edit_point(trace: Trace, k: int, kind: str) -> tuple[dict, str]:
    """Where an edit made at record ``k`` acts, as the interventions' ``step``/``recursion``/``latent_step``,
    and in words. A latent or answer record: right there (the frame shows the edited state); the step's
    output, or any puzzle-cell edit (x is embedded once per step): the start of the next supervision step."""
    s, t, i = (int(v) for v in trace.index[k])
    ev = trace.event_name(k)
    N = int(trace.meta["n_supervision"])
    if kind == "input" or ev == "supervision":
        if s + 1 >= N:
            why = ("a puzzle-cell edit acts at the start of the next supervision step" if kind == "input"
                   else "this frame is the last step's output")
            raise EditError(f"{why}, and supervision step {s + 1} is the last of {N}: nothing runs after it; "
                            f"move to an earlier frame")
        return dict(step=s + 1), f"at the start of supervision step {s + 2}/{N}"
    if ev == "latent":
        return (dict(step=s, recursion=t, latent_step=i),
                f"at supervision step {s + 1}, recursion {t + 1}, after latent update z {i + 1}")
    return dict(step=s, recursion=t), f"at supervision step {s + 1}, recursion {t + 1}, after the answer update y"


def make_intervention(trace: Trace, k: int, kind: str, puzzle: int, cell: str = "", token: str = "",
                      other: Optional[int] = None) -> tuple[Intervention, str]:
    """The intervention the player's panel describes, acting at record ``k`` on ``puzzle`` (a batch row),
    and a line saying what and where (1-based, as the player's label counts)."""
    if kind not in KINDS:
        raise EditError(f"unknown edit {kind!r}; one of {', '.join(KINDS)}")
    at, where = edit_point(trace, k, kind)
    task = trace.task
    rows = (int(puzzle),)
    if kind in NEEDS_CELL:
        c = parse_cell(task, cell)
        tok = parse_token(task, token)
        r, col = divmod(c, task.cols)
        shown = task.symbol(tok) or "blank"
        if kind == "answer":
            return (SetAnswerCell(cell=c, token=tok, rows=rows, **at),
                    f"answer y at cell ({r + 1},{col + 1}) set to {shown} {where}")
        return (SetInputCell(cell=c, token=tok, rows=rows, **at),
                f"puzzle cell ({r + 1},{col + 1}) set to {shown} from the start of the next supervision step "
                f"({where[len('at the start of '):]}) on")
    if kind in ("reset_z", "reset_y"):
        state = "latent" if kind == "reset_z" else "answer"
        return Reset(state=state, rows=rows, **at), f"{'z' if state == 'latent' else 'y'} reset to its initial state {where}"
    if trace.n_puzzles < 2:
        raise EditError("swap z: the trace holds one puzzle, there is no other one to swap with")
    if other is None or not 0 <= int(other) < trace.n_puzzles or int(other) == int(puzzle):
        raise EditError(f"swap z: pick another puzzle of the trace (0..{trace.n_puzzles - 1}, not {puzzle})")
    return (Swap(state="latent", rows=(int(puzzle), int(other)), **at),
            f"z swapped between puzzles {puzzle} and {int(other)} {where}")


# -- the continued trajectory ------------------------------------------------------------------------------


def splice(shown: Trace, continued: Trace, first: int) -> tuple[Trace, bool]:
    """``shown``'s records before ``first`` and ``continued``'s from ``first`` on, as one trace, and whether
    the PCA coordinates are on one plane (``continued`` projected on ``shown``'s planes). An EditError when
    ``continued`` is not the same recursion (other records) or its records before ``first`` are not
    bit-identical to ``shown``'s (the model not in eval mode, other trace arguments...). Off one plane, the
    PCA points after ``first`` are NaN (not drawn) rather than on axes they do not share."""
    if len(continued) != len(shown) or not (np.array_equal(continued.index, shown.index)
                                            and np.array_equal(continued.event, shown.event)):
        raise EditError(f"the continued run has other records ({len(continued)}) than the trajectory shown "
                        f"({len(shown)}): continue_with must trace with the original's arguments")
    for name, arr in shown.arrays.items():
        if name in PCA_ARRAYS:
            continue
        new = continued.arrays.get(name)
        if new is None or new.shape != arr.shape:
            raise EditError(f"the continued run has no {name} like the original's: continue_with must trace with "
                            f"the original's arguments")
        if not np.array_equal(new[:first], arr[:first], equal_nan=True):
            raise EditError(f"the continued run differs from the original before the edit ({name}): the model must "
                            f"run in eval mode with the original's arguments, deterministically")
    same_plane = all(np.array_equal(continued.arrays[n][:first], shown.arrays[n][:first], equal_nan=True)
                     for n in PCA_ARRAYS if n in shown.arrays)
    arrays = {}
    for name, arr in shown.arrays.items():
        tail = continued.arrays[name][first:]
        if name in PCA_ARRAYS and not same_plane:
            tail = np.full(tail.shape, np.nan, np.float32)
        arrays[name] = np.concatenate([arr[:first], tail.astype(arr.dtype, copy=False)])
    meta = dict(shown.meta)
    meta["interventions"] = continued.meta.get("interventions", [])
    meta["edited_from_record"] = int(first)
    return Trace(shown.task, shown.index, shown.event, shown.inputs, shown.labels, arrays, meta,
                 shown.planes), same_plane


def changed_cells(trace: Trace, original: Trace, k: int, puzzle: int, which: str = "y") -> np.ndarray:
    """Bool [L]: the cells where the decoded y (or z) at record ``k`` differs from the original's."""
    key = f"{which}_pred"
    return trace.arrays[key][k, puzzle] != original.arrays[key][k, puzzle]


def outline(task, cells: np.ndarray, crop: Optional[tuple] = None, name: str = "changed by the edit") -> dict:
    """A plotly scatter dict outlining ``cells`` (bool [L]) of a grid panel (within ``crop`` (h, w) when
    given), for the player's grids."""
    r, c = np.divmod(np.nonzero(np.asarray(cells, bool))[0], task.cols)
    if crop is not None:
        keep = (r < crop[0]) & (c < crop[1])
        r, c = r[keep], c[keep]
    h, w = crop if crop is not None else (task.rows, task.cols)
    size = max(6, min(36, int(260 / max(h, w, 1))))
    return dict(type="scatter", x=[int(v) for v in c], y=[int(v) for v in r], mode="markers", name=name,
                showlegend=False, hoverinfo="skip",
                marker=dict(symbol="square-open", size=size, color=CHANGED_COLOUR, line=dict(width=3, color=CHANGED_COLOUR)))


def recovery(trace: Trace, original: Trace, first: int, puzzle: int) -> str:
    """In words: from which frame on the answer is right again after the edit at record ``first`` (and stays
    right to the end), how many supervision steps after the edit, and what the original did."""
    b = puzzle
    if first >= len(trace):
        return "the edit acts after the last record: nothing changes"
    s0 = int(trace.index[first, 0])
    N = int(trace.meta["n_supervision"])
    diff = int(changed_cells(trace, original, len(trace) - 1, b).sum())
    if trace.labels is None:
        same = np.array([not changed_cells(trace, original, k, b).any() for k in range(first, len(trace))])
        if not same[-1]:
            back = f"at the last frame the answer differs from the original's in {diff} cell(s)"
        else:
            r = first + (int(np.nonzero(~same)[0][-1]) + 1 if (~same).any() else 0)
            steps = int(trace.index[r, 0]) - s0
            back = (f"the answer is the original's again from supervision step {int(trace.index[r, 0]) + 1}/{N} on "
                    f"({steps} supervision step(s) after the edit, {r - first} record(s))")
        return f"no solution known, so right or wrong cannot be said; {back}"
    exact = trace.exact("y", "to_fill")[:, b]
    acc = trace.accuracy("y", "to_fill")[:, b]
    orig_acc = original.accuracy("y", "to_fill")[-1, b]
    if not exact[-1]:
        return (f"not right again by the last frame (step {N}/{N}): {100 * acc[-1]:.0f}% of the cells to fill "
                f"right (the original: {100 * orig_acc:.0f}%); {diff} cell(s) differ from the original's answer")
    wrong = np.nonzero(~exact[first:])[0]
    if not len(wrong):
        return (f"the answer is right at the edit and at every frame after it ({diff} cell(s) differ from the "
                f"original's at the last frame)")
    r = first + int(wrong[-1]) + 1  # right from here to the end
    s = int(trace.index[r, 0])
    steps = s - s0
    later = "in the same supervision step" if steps == 0 else f"{steps} supervision step{'s' * (steps != 1)} later"
    return (f"the answer is right again from supervision step {s + 1}/{N} on ({later}, {r - first} record(s) "
            f"after the edit: {trace.step_label(r)})")
