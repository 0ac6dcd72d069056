"""Sudoku datasets in the reference's format: token map, CSV reader, checks, augmentation, generator, builder.

Token map (reference, ``build_sudoku_dataset.py``): 0 PAD (never occurs), 1 blank, digit d -> d + 1.
9x9: vocab 11, seq_len 81. Smaller boards keep the rule: n x n -> vocab n + 2, seq_len n * n.
Boxes: 4x4 -> 2x2, 6x6 -> 2 rows x 3 columns, 9x9 -> 3x3.
"""
from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .augment import TokenTransforms
from .csvio import read_puzzle_csv, test_csv_for, write_puzzle_csv
from .format import (DataBuildError, DatasetMetadata, PuzzleFormatError, SkipLog, csv_val_rows,
                     fresh_questions, resolve_val, smallest_uint_dtype, split_generated,
                     write_shared_id_dataset)

BOXES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}
DIFFICULTIES = ("easy", "medium", "hard")
# Default minimum number of guesses for "hard" (a guess = a branching node of the backtracking solver).
HARD_MIN_GUESSES = {4: 0, 6: 1, 9: 50}
DEFAULT_OUT = "data/sudoku-extreme-1k-aug-1000"


def size_of(seq_len: int) -> int:
    n = int(round(seq_len ** 0.5))
    if n * n != seq_len or n not in BOXES:
        raise ValueError(f"no Sudoku board has {seq_len} cells (sizes: 4x4, 6x6, 9x9)")
    return n


# ------------------------------------------------------------------------------------------- encoding
def encode(grid: np.ndarray) -> np.ndarray:
    """Board (0 blank, digits 1..n) -> tokens (1 blank, d + 1), flattened, uint8."""
    return (np.asarray(grid, dtype=np.uint8).reshape(-1) + 1).astype(np.uint8)


def decode(tokens: np.ndarray, size: Optional[int] = None) -> np.ndarray:
    """Tokens -> board (0 blank, digits 1..n) of shape (n, n); PAD (0) also decodes to blank."""
    t = np.asarray(tokens).reshape(-1).astype(np.int64)
    n = size or size_of(t.size)
    return np.clip(t - 1, 0, None).reshape(n, n).astype(np.uint8)


BLANKS = ".0_"
RULES = "|+-"   # box rules of a drawn board: ignored, like white space


def parse_board(text: str, size: Optional[int] = None) -> np.ndarray:
    """The Sudoku parser (typed puzzles, ``trmlab solve --sudoku``, the widgets, CSV rows): text -> board
    (n, n) uint8, 0 blank.

    Cells are digits 1..n, blanks '.', '0' or '_'; white space and the box rules '|', '+', '-' between
    cells are ignored. Either all n*n cells on one line (16, 36 or 81 for 4x4, 6x6, 9x9), or one line
    per row (lines holding only rules are skipped). ``size`` fixes n. Raises
    :class:`~trmlab.data.format.PuzzleFormatError` naming the character, row or unit at fault: a
    character outside the alphabet, a wrong number of cells or rows, ragged rows, a digit above n, a
    digit twice in a row, column or box of the givens, no givens at all.
    """
    if not isinstance(text, str) or not text.strip():
        raise PuzzleFormatError("empty Sudoku: type the cells row by row, '.' or '0' for a blank")
    rows: List[List[int]] = []
    if size is not None and len(text) == size * size and not text.strip(".0123456789"):   # a CSV row: fast path
        codes = np.frombuffer(text.encode(), dtype=np.uint8)
        rows.append((np.where(codes == ord("."), 0, codes - 48)).tolist())
    for li, line in enumerate(text.splitlines() if not rows else ()):
        cells = []
        for ci, ch in enumerate(line):
            if ch in BLANKS:
                cells.append(0)
            elif "1" <= ch <= "9":
                cells.append(ord(ch) - 48)
            elif not (ch.isspace() or ch in RULES):
                raise PuzzleFormatError(f"Sudoku: character {ch!r} at line {li + 1}, column {ci + 1} is not a "
                                        "digit, a blank ('.', '0', '_') or a box rule ('|', '+', '-')")
        if cells:
            rows.append(cells)
    sizes = ", ".join(f"{k}x{k}" for k in BOXES)
    if len(rows) == 1:
        n_cells = len(rows[0])
        n = size if size is not None else next((k for k in BOXES if k * k == n_cells), None)
        if n is None:
            raise PuzzleFormatError(f"Sudoku: {n_cells} cells; a {sizes} board has "
                                    f"{', '.join(str(k * k) for k in BOXES)} (or type one line per row)")
        if n_cells != n * n:
            raise PuzzleFormatError(f"Sudoku: {n_cells} cells, but a {n}x{n} board has {n * n}")
        board = np.array(rows[0], dtype=np.uint8).reshape(n, n)
    else:
        n = size if size is not None else len(rows)
        if n not in BOXES:
            raise PuzzleFormatError(f"Sudoku: {len(rows)} rows; a {sizes} board has "
                                    f"{', '.join(map(str, BOXES))} (or type all cells on one line)")
        if len(rows) != n:
            raise PuzzleFormatError(f"Sudoku: {len(rows)} rows, but a {n}x{n} board has {n}")
        for r, cells in enumerate(rows):
            if len(cells) != n:
                raise PuzzleFormatError(f"Sudoku {n}x{n}: row {r + 1} has {len(cells)} cells, expected {n}")
        board = np.array(rows, dtype=np.uint8)
    if n not in BOXES:
        raise PuzzleFormatError(f"Sudoku: a {n}x{n} board is not supported ({sizes})")
    if board.max() > n:
        r, c = np.argwhere(board > n)[0]
        raise PuzzleFormatError(f"Sudoku {n}x{n}: digit {board[r, c]} at row {r + 1}, column {c + 1} is above {n}")
    _check_givens(board)
    return board


def _check_givens(board: np.ndarray) -> None:
    """Raise PuzzleFormatError when a digit repeats in a row, column or box, or nothing is given."""
    n = board.shape[0]
    br, bc = BOXES[n]
    if not board.any():
        raise PuzzleFormatError(f"Sudoku {n}x{n}: no givens at all")
    # unit k of each kind as (row, col) index arrays; counts of each digit per unit, vectorised
    r_idx, c_idx = np.indices((n, n))
    box_id = (r_idx // br) * (n // bc) + c_idx // bc
    digits = board.reshape(-1).astype(np.int64)
    for kind, unit in (("row", r_idx), ("column", c_idx), ("box", box_id)):
        counts = np.bincount(unit.reshape(-1) * (n + 1) + digits, minlength=n * (n + 1)).reshape(n, n + 1)
        counts[:, 0] = 0
        if (counts > 1).any():
            k, d = np.argwhere(counts > 1)[0]
            cells = " and ".join(f"row {r + 1}, column {c + 1}" for r, c in np.argwhere((unit == k) & (board == d)))
            raise PuzzleFormatError(f"Sudoku {n}x{n}: digit {d} appears twice in {kind} {k + 1} (at {cells})")


def board_to_text(board: np.ndarray, blank: str = ".") -> str:
    return "".join(blank if v == 0 else str(int(v)) for v in np.asarray(board).reshape(-1))


# --------------------------------------------------------------------------------------------- checks
def check_solution(question: np.ndarray, answer: np.ndarray) -> Optional[str]:
    """None if ``answer`` is a complete valid board agreeing with ``question``'s givens, else the reason."""
    q = np.asarray(question)
    a = np.asarray(answer)
    n = a.shape[0]
    br, bc = BOXES[n]
    full = set(range(1, n + 1))
    if a.shape != (n, n) or q.shape != (n, n):
        return f"shape {a.shape} / {q.shape}, expected ({n}, {n})"
    if (a == 0).any():
        r, c = np.argwhere(a == 0)[0]
        return f"answer has a blank at row {r + 1}, column {c + 1}"
    for r in range(n):
        if set(a[r].tolist()) != full:
            return f"answer row {r + 1} repeats a digit"
    for c in range(n):
        if set(a[:, c].tolist()) != full:
            return f"answer column {c + 1} repeats a digit"
    for r0 in range(0, n, br):
        for c0 in range(0, n, bc):
            if set(a[r0:r0 + br, c0:c0 + bc].reshape(-1).tolist()) != full:
                return f"answer box at row {r0 + 1}, column {c0 + 1} repeats a digit"
    given = q != 0
    if (q[given] != a[given]).any():
        r, c = np.argwhere(given & (q != a))[0]
        return f"answer {int(a[r, c])} contradicts the given {int(q[r, c])} at row {r + 1}, column {c + 1}"
    return None


# --------------------------------------------------------------------------------------- augmentation
def random_transforms(n: int, k: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """``k`` random validity-preserving transforms of an n x n board.

    Returns ``(src, digit_map)``: ``src`` [k, n*n] source cell of every target cell, ``digit_map``
    [k, n+1] with 0 (blank) fixed. As the reference: transpose (p = 0.5, square boxes only), then a
    band/row and stack/column shuffle, then a digit relabelling.
    """
    br, bc = BOXES[n]
    nb, ns = n // br, n // bc
    digit_map = np.zeros((k, n + 1), dtype=np.uint8)
    digit_map[:, 1:] = rng.permuted(np.tile(np.arange(1, n + 1, dtype=np.uint8), (k, 1)), axis=1)
    transpose = (rng.random(k) < 0.5) if br == bc else np.zeros(k, dtype=bool)
    bands = rng.permuted(np.tile(np.arange(nb), (k, 1)), axis=1)                       # [k, nb]
    inner_r = rng.permuted(np.tile(np.arange(br), (k * nb, 1)), axis=1).reshape(k, nb, br)
    row_perm = (bands[:, :, None] * br + inner_r).reshape(k, n)
    stacks = rng.permuted(np.tile(np.arange(ns), (k, 1)), axis=1)
    inner_c = rng.permuted(np.tile(np.arange(bc), (k * ns, 1)), axis=1).reshape(k, ns, bc)
    col_perm = (stacks[:, :, None] * bc + inner_c).reshape(k, n)
    r = row_perm[:, :, None]
    c = col_perm[:, None, :]
    src = np.where(transpose[:, None, None], c * n + r, r * n + c).reshape(k, n * n)
    return src.astype(np.int64), digit_map


def apply_transforms(boards: np.ndarray, src: np.ndarray, digit_map: np.ndarray) -> np.ndarray:
    """Apply transforms to one board (n, n) -> [k, n*n] (digits, 0 blank)."""
    flat = np.asarray(boards, dtype=np.uint8).reshape(-1)
    cells = flat[src]                                       # [k, n*n]
    return np.take_along_axis(digit_map, cells.astype(np.int64), axis=1).astype(np.uint8)


def token_transforms(n: int, k: int, rng: np.random.Generator, identity_first: bool = True) -> TokenTransforms:
    """``k`` validity-preserving transforms of an n x n puzzle in tokens (1 blank, digit d -> d + 1, 0 pad):
    :func:`random_transforms` (transposition, bands, stacks, rows within a band, columns within a stack,
    digit relabelling) as cell permutations and token maps. Transform 0 is the identity when
    ``identity_first`` (so k = 1 is the puzzle itself)."""
    src, digit_map = random_transforms(n, k, rng)
    token_map = np.zeros((k, n + 2), dtype=np.int64)
    token_map[:, 1:] = digit_map.astype(np.int64) + 1          # blank (digit 0) stays blank, pad stays 0
    if identity_first:
        src[0] = np.arange(n * n)
        token_map[0] = np.arange(n + 2)
    return TokenTransforms(src, token_map)


# ------------------------------------------------------------------------------------------ generator
class _Solver:
    """Bitmask backtracking solver: most-constrained cell first; counts solutions (to a limit) and guesses."""

    def __init__(self, n: int):
        self.n = n
        br, bc = BOXES[n]
        self.N = n * n
        self.row = [i // n for i in range(self.N)]
        self.col = [i % n for i in range(self.N)]
        self.box = [(i // n) // br * (n // bc) + (i % n) // bc for i in range(self.N)]
        self.full = (1 << (n + 1)) - 2   # bits 1..n
        self.bits = [[d for d in range(1, n + 1) if m >> d & 1] for m in range(1 << (n + 1))]

    def _setup(self, cells):
        n = self.n
        rows = [0] * n
        cols = [0] * n
        boxes = [0] * n
        for i, v in enumerate(cells):
            if v:
                b = 1 << v
                if rows[self.row[i]] & b or cols[self.col[i]] & b or boxes[self.box[i]] & b:
                    return None
                rows[self.row[i]] |= b
                cols[self.col[i]] |= b
                boxes[self.box[i]] |= b
        return rows, cols, boxes

    def search(self, cells: List[int], limit: int = 2, rnd: Optional[random.Random] = None):
        """Returns (number of solutions found up to ``limit``, guesses, first solution or None)."""
        st = self._setup(cells)
        if st is None:
            return 0, 0, None
        rows, cols, boxes = st
        cells = list(cells)
        empties = [i for i, v in enumerate(cells) if not v]
        R, C, B, full, bits = self.row, self.col, self.box, self.full, self.bits
        state = {"count": 0, "guesses": 0, "sol": None}

        def rec(empties):
            if not empties:
                state["count"] += 1
                if state["sol"] is None:
                    state["sol"] = list(cells)
                return state["count"] >= limit
            best = -1
            best_mask = 0
            best_n = 99
            for j, i in enumerate(empties):
                m = full & ~(rows[R[i]] | cols[C[i]] | boxes[B[i]])
                if not m:
                    return False
                c = len(bits[m])
                if c < best_n:
                    best, best_mask, best_n = j, m, c
                    if c == 1:
                        break
            i = empties[best]
            rest = empties[:best] + empties[best + 1:]
            ds = bits[best_mask]
            if best_n > 1:
                state["guesses"] += 1
                if rnd is not None:
                    ds = list(ds)
                    rnd.shuffle(ds)
            r, c, b = R[i], C[i], B[i]
            for d in ds:
                bit = 1 << d
                rows[r] |= bit
                cols[c] |= bit
                boxes[b] |= bit
                cells[i] = d
                stop = rec(rest)
                rows[r] &= ~bit
                cols[c] &= ~bit
                boxes[b] &= ~bit
                cells[i] = 0
                if stop:
                    return True
            return False

        rec(empties)
        return state["count"], state["guesses"], state["sol"]


def rate(question: np.ndarray) -> Tuple[int, int]:
    """(number of solutions up to 2, guesses): the difficulty rating is the number of branching nodes the
    backtracking solver (most-constrained cell first, digits in ascending order) visits to solve the puzzle
    and prove it has no second solution. 0 means singles alone solve it."""
    q = np.asarray(question)
    count, guesses, _ = _Solver(q.shape[0]).search([int(v) for v in q.reshape(-1)], limit=2)
    return count, guesses


def generate_puzzle(n: int, rnd: random.Random, difficulty: str = "hard", min_guesses: Optional[int] = None,
                    max_tries: int = 1000, givens: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, int]:
    """One puzzle with exactly one solution: returns (question, answer, rating).

    easy: cells are removed (random order) while the puzzle stays unique and solvable without guessing;
    medium: removed while unique (a minimal puzzle); hard: a minimal puzzle whose rating >= min_guesses
    (default ``HARD_MIN_GUESSES[n]``), retried until one is found.
    ``givens``: stop removing once this many givens are left (more givens, fewer rounds of deduction: an
    easier puzzle); a puzzle that reaches its difficulty's limit first keeps more givens.
    """
    if givens is not None and not 1 <= givens <= n * n:
        raise ValueError(f"givens must be in 1..{n * n} for {n}x{n}, got {givens}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    solver = _Solver(n)
    if min_guesses is None:
        min_guesses = HARD_MIN_GUESSES[n] if difficulty == "hard" else 0
    for _ in range(max_tries):
        _, _, sol = solver.search([0] * (n * n), limit=1, rnd=rnd)
        cells = list(sol)
        order = list(range(n * n))
        rnd.shuffle(order)
        left = n * n
        for i in order:
            if givens is not None and left <= givens:
                break
            v = cells[i]
            cells[i] = 0
            count, guesses, _ = solver.search(cells, limit=2)
            if count != 1 or (difficulty == "easy" and guesses > 0):
                cells[i] = v
            else:
                left -= 1
        count, guesses, _ = solver.search(cells, limit=2)
        if count == 1 and guesses >= min_guesses:
            q = np.array(cells, dtype=np.uint8).reshape(n, n)
            a = np.array(sol, dtype=np.uint8).reshape(n, n)
            return q, a, guesses
    raise DataBuildError(f"no {n}x{n} puzzle with >= {min_guesses} guesses in {max_tries} tries; "
                         "lower --min-guesses")


def generate_puzzles(count: int, n: int = 9, seed: int = 0, difficulty: str = "hard",
                     min_guesses: Optional[int] = None, progress: bool = False,
                     exclude: Optional[set] = None, givens: Optional[int] = None) -> List[Tuple[np.ndarray, np.ndarray, int]]:
    """``count`` distinct puzzles (seeded: same seed, same puzzles), each checked by :func:`check_solution`."""
    if n not in BOXES:
        raise DataBuildError(f"--size must be one of 4, 6, 9, got {n}")
    rnd = random.Random(int(np.random.default_rng(seed).integers(2 ** 63)))
    seen = set(exclude or ())
    out = []
    bar = _bar(count, f"generating {n}x{n} sudoku", progress)
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 50 * count + 1000:
            raise DataBuildError(f"could only make {len(out)} distinct {n}x{n} puzzles of {count} asked")
        q, a, g = generate_puzzle(n, rnd, difficulty, min_guesses, givens=givens)
        key = q.tobytes()
        if key in seen:
            continue
        reason = check_solution(q, a)
        if reason:  # cannot happen unless the generator is broken
            raise DataBuildError(f"generated puzzle {len(out)}: {reason}")
        seen.add(key)
        out.append((q, a, g))
        bar.update(1)
    bar.close()
    return out


def _bar(total, desc, enabled):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


# ------------------------------------------------------------------------------------------- loading
def load_csv(path, size: Optional[int], skips: SkipLog, min_rating: Optional[float] = None):
    """Read and check a Sudoku CSV; returns (questions [N,n,n], answers, ratings, size)."""
    qs, as_, rs = [], [], []
    for where, source, q, a, rating in read_puzzle_csv(path, skips):
        n = size
        if n is None:
            try:
                n = size_of(len(q))
            except ValueError as e:
                skips.skip(where, f"question: {e}")
                continue
            size = n
        try:
            qb = parse_board(q, n)
        except ValueError as e:
            skips.skip(where, f"question: {e}")
            continue
        try:
            ab = parse_board(a, n)
        except ValueError as e:
            skips.skip(where, f"answer: {e}")
            continue
        reason = check_solution(qb, ab)
        if reason:
            skips.skip(where, reason)
            continue
        try:
            r = float(rating) if rating.strip() else 0.0
        except ValueError:
            r = 0.0
        if min_rating is not None and r < min_rating:
            continue
        qs.append(qb)
        as_.append(ab)
        rs.append(r)
    if not qs:
        raise DataBuildError(f"{path}: no usable puzzles ({len(skips)} rows skipped)")
    return np.stack(qs), np.stack(as_), np.array(rs), size


# ------------------------------------------------------------------------------------------- building
def _split_arrays(qs: np.ndarray, as_: np.ndarray, num_aug: int, rng: np.random.Generator, progress: bool):
    """Groups of 1 + num_aug puzzles (original first), one example each."""
    g, n = qs.shape[0], qs.shape[1]
    per = 1 + num_aug
    dt = smallest_uint_dtype(n + 2)
    inputs = np.empty((g * per, n * n), dtype=dt)
    labels = np.empty((g * per, n * n), dtype=dt)
    bar = _bar(g, "augmenting" if num_aug else "encoding", progress)
    for i in range(g):
        inputs[i * per] = encode(qs[i])
        labels[i * per] = encode(as_[i])
        if num_aug:
            src, dmap = random_transforms(n, num_aug, rng)
            inputs[i * per + 1:(i + 1) * per] = apply_transforms(qs[i], src, dmap) + 1
            labels[i * per + 1:(i + 1) * per] = apply_transforms(as_[i], src, dmap) + 1
        bar.update(1)
    bar.close()
    arrays = {
        "inputs": inputs, "labels": labels,
        "puzzle_identifiers": np.zeros(g * per, dtype=np.int32),
        "puzzle_indices": np.arange(g * per + 1, dtype=np.int32),
        "group_indices": np.arange(0, g * per + 1, per, dtype=np.int32),
    }
    meta = DatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=n + 2, seq_len=n * n,
                           num_puzzle_identifiers=1, total_groups=g, mean_puzzle_examples=1, total_puzzles=g,
                           sets=["all"])
    return meta, arrays


def build_sudoku(out=DEFAULT_OUT, *, csv=None, generate: Optional[int] = None, size: Optional[int] = None,
                 subsample: Optional[int] = None, num_aug: int = 1000, seed: int = 0, test_csv=None,
                 test_generate: Optional[int] = None, val: Optional[int] = None, difficulty: str = "hard",
                 min_guesses: Optional[int] = None, min_rating: Optional[float] = None, strict: bool = False,
                 force: bool = False, progress: bool = True, echo=print, givens: Optional[int] = None) -> dict:
    """Build a Sudoku dataset; returns the ``build.json`` dict. See ``trmlab data sudoku --help``.

    ``val``: puzzles in the validation split (``val/``, unaugmented, disjoint from train and test);
    None: 10% of the training puzzles, at least 1, at most 1000 (:func:`~.format.default_val_count`);
    0: none. Generated builds generate them after the train and test puzzles (so train and test are the
    bytes a build without them gives); CSV builds hold them out of the training CSV's rows
    (:func:`~.format.choose_rows`).
    """
    t0 = time.time()
    if (csv is None) == (generate is None):
        raise DataBuildError("give exactly one of --csv FILE or --generate N")
    if num_aug < 0:
        raise DataBuildError(f"--num-aug must be >= 0, got {num_aug}")
    if size is not None and size not in BOXES:
        raise DataBuildError(f"--size must be one of 4, 6, 9, got {size}")
    if givens is not None and generate is None and test_generate is None:
        raise DataBuildError("--givens applies to generated puzzles (--generate N or --test-generate N), not to a CSV")
    if givens is not None and not 1 <= givens <= (size or 9) ** 2:
        raise DataBuildError(f"--givens must be in 1..{(size or 9) ** 2} for {size or 9}x{size or 9}, got {givens}")
    out = Path(out)
    if out.exists() and not force:
        raise DataBuildError(f"{out}: already exists; pass --force to overwrite it")
    skips = SkipLog(strict, echo)
    rng = np.random.default_rng(seed)
    source: Dict[str, object] = {}
    notes: List[str] = []
    if csv is not None:
        qs, as_, rs, size = load_csv(csv, size, skips, min_rating)
        source["train"] = str(csv)
        tr, vi, n_val = csv_val_rows(csv, len(qs), subsample, val, seed, rng, notes)
        vq, va = qs[vi], as_[vi]
        qs, as_, rs = qs[tr], as_[tr], rs[tr]
        if n_val:
            source["val"] = f"{n_val} rows of {csv} held out of training (seed {seed})"
        test_csv = test_csv_for(csv, test_csv, test_generate)
        if test_csv is not None:
            tq, ta, _, tsize = load_csv(test_csv, size, skips, min_rating)
            source["test"] = str(test_csv)
        else:
            pz = generate_puzzles(test_generate, size, seed + 1, difficulty, min_guesses, progress,
                                  exclude={q.tobytes() for q in np.concatenate([qs, vq])}, givens=givens)
            tq, ta = np.stack([p[0] for p in pz]), np.stack([p[1] for p in pz])
            source["test"] = f"generated {test_generate} ({difficulty}, seed {seed + 1})"
    else:
        size = size or 9
        if generate <= 0:
            raise DataBuildError(f"--generate must be > 0, got {generate}")
        n_val = resolve_val(val, generate)
        ntest = generate if test_generate is None else test_generate
        exclude = None
        if test_csv is not None:
            tq, ta, _, _ = load_csv(test_csv, size, skips, min_rating)
            ntest = 0
            exclude = {q.tobytes() for q in tq}
            source["test"] = str(test_csv)
        pz = generate_puzzles(generate + ntest + n_val, size, seed, difficulty, min_guesses, progress, exclude,
                              givens=givens)
        (qs, as_, rs), test, (vq, va) = split_generated(pz, generate, ntest)
        source["train"] = f"generated {generate} ({difficulty}, seed {seed})"
        if test is not None:
            tq, ta = test
            source["test"] = f"generated {ntest} ({difficulty}, seed {seed}, after the train puzzles)"
        if n_val:
            source["val"] = f"generated {n_val} ({difficulty}, seed {seed}, after the train and test puzzles)"
    keep = fresh_questions(vq, qs, tq)
    if not keep.all():
        notes.append(f"{int((~keep).sum())} validation puzzle(s) dropped: the same question is in train or test")
        vq, va = vq[keep], va[keep]
    train_meta, train_arrays = _split_arrays(qs, as_, num_aug, rng, progress)
    test_meta, test_arrays = _split_arrays(tq, ta, 0, rng, progress)
    val_split = _split_arrays(vq, va, 0, rng, progress) if len(vq) else None
    if val_split is None and not notes:
        notes.append("no validation split (--val 0): the trainer writes no best.pt; the last checkpoint is reported")
    info = {
        "family": "sudoku", "grid_shape": [size, size], "box_shape": list(BOXES[size]), "source": source,
        "arguments": {"csv": str(csv) if csv else None, "generate": generate, "size": size, "subsample": subsample,
                      "num_aug": num_aug, "seed": seed, "test_csv": str(test_csv) if test_csv else None,
                      "test_generate": test_generate, "val": val, "difficulty": difficulty,
                      "min_guesses": min_guesses, "min_rating": min_rating, "strict": strict, "givens": givens},
        "counts": {"train_groups": int(len(qs)), "train_examples": int(train_arrays["inputs"].shape[0]),
                   "val_examples": int(len(vq)), "test_examples": int(test_arrays["inputs"].shape[0]),
                   "train_mean_rating": float(np.mean(rs)) if len(rs) else 0.0,
                   "train_mean_givens": float(np.mean((qs > 0).sum(axis=(1, 2)))) if len(qs) else 0.0},
        "notes": notes, "skipped": len(skips), "skips": skips.items[:1000],
    }
    for n in notes:
        echo("note: " + n)
    return write_shared_id_dataset(out, force, (train_meta, train_arrays), (test_meta, test_arrays), info, t0, echo,
                                   val=val_split)


def write_generated_csv(path, count: int, size: int = 9, seed: int = 0, difficulty: str = "hard",
                        min_guesses: Optional[int] = None, progress: bool = False) -> None:
    """Generated puzzles in the public CSV format (source ``trmlab``, rating = guesses)."""
    pz = generate_puzzles(count, size, seed, difficulty, min_guesses, progress)
    write_puzzle_csv(path, [("trmlab", board_to_text(q), board_to_text(a), g) for q, a, g in pz])
