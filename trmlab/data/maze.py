"""Maze datasets in the reference's format: token map, CSV reader, BFS checks, generator, builder.

Token map (reference, ``build_maze_dataset.py``): PAD 0, '#' wall 1, ' ' free 2, 'S' start 3, 'G' goal 4,
'o' path 5; vocab 6; a size x size maze is a sequence of size * size tokens (30x30 -> 900).
The question holds '#', ' ', 'S', 'G'; the answer is the question with the cells of a shortest path
from S to G (S and G excluded) marked 'o'. Path length = number of moves from S to G.
"""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from .augment import dihedral
from .csvio import read_puzzle_csv, test_csv_for, write_puzzle_csv
from .format import (DataBuildError, DatasetMetadata, PuzzleFormatError, SkipLog, csv_val_rows,
                     fresh_questions, resolve_val, split_generated, write_shared_id_dataset)

CHARSET = "# SGo"
QUESTION_CHARS = "# SG"
DEFAULT_OUT = "data/maze-30x30-hard-1k"
_CHAR2ID = np.zeros(256, dtype=np.uint8)
_CHAR2ID[np.frombuffer(CHARSET.encode(), dtype=np.uint8)] = np.arange(1, len(CHARSET) + 1)
_ID2CHAR = np.frombuffer((" " + CHARSET).encode(), dtype=np.uint8)   # 0 (PAD) shows as ' '


def default_min_path(size: int) -> int:
    """Maze-Hard's bar (> 110 moves on 30x30), scaled with the area for smaller mazes."""
    return 110 if size == 30 else max(1, int(round(110 * size * size / 900)))


# ------------------------------------------------------------------------------------------- encoding
def to_chars(text: str, size: Optional[int] = None) -> np.ndarray:
    """A CSV row (size*size characters, no line breaks) -> (size, size) array of single characters ('<U1').
    Typed or file mazes go through :func:`parse_maze`."""
    n = size or int(round(len(text) ** 0.5))
    if n * n != len(text):
        raise ValueError(f"{len(text)} characters is not a square maze")
    return np.array(list(text), dtype="<U1").reshape(n, n)


def _cells(grid: np.ndarray, ch: str) -> str:
    return " and ".join(f"row {r + 1}, column {c + 1}" for r, c in np.argwhere(grid == ch)[:4])


def parse_maze(text: str, size: Optional[int] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """The maze parser (typed mazes, ``trmlab solve --maze FILE``, the widgets): text, one line per row,
    -> (question, answer) character grids (size, size) '<U1'.

    '#' wall, ' ' or '.' open, 'S' start, 'G' goal, 'o' path. A path, when given, makes the answer
    (the question is the maze without it); else the answer is None. Empty lines before and after the
    maze are skipped. Raises :class:`~trmlab.data.format.PuzzleFormatError` naming the row and column at
    fault: a character outside the alphabet, ragged rows (write '.' for open cells at the end of a line:
    editors drop trailing spaces), a maze that is not square or not ``size`` x ``size``, not exactly one
    S and one G.
    """
    if not isinstance(text, str) or not text.strip():
        raise PuzzleFormatError("empty maze: one line per row, '#' wall, ' ' or '.' open, 'S' start, 'G' goal")
    lines = text.replace("\r", "").split("\n")
    while not lines[0]:
        lines.pop(0)
    while not lines[-1]:
        lines.pop()
    width = len(lines[0])
    for r, line in enumerate(lines):
        for c, ch in enumerate(line):
            if ch not in CHARSET and ch != ".":
                raise PuzzleFormatError(f"maze: character {ch!r} at row {r + 1}, column {c + 1}; allowed: '#' wall, "
                                        "' ' or '.' open, 'S' start, 'G' goal, 'o' path")
        if len(line) != width:
            raise PuzzleFormatError(f"maze: row {r + 1} has {len(line)} characters, expected {width} (as row 1); "
                                    "write '.' for open cells at the end of a line (editors drop trailing spaces)")
    h = len(lines)
    if h != width:
        raise PuzzleFormatError(f"maze: {h} rows of {width} characters; the maze must be square")
    if size is not None and h != size:
        raise PuzzleFormatError(f"maze: {h}x{h}, but the model reads {size}x{size} mazes")
    grid = np.array([list(line.replace(".", " ")) for line in lines], dtype="<U1")
    for mark in "SG":
        count = int((grid == mark).sum())
        if count != 1:
            where = f" (at {_cells(grid, mark)})" if count else ""
            raise PuzzleFormatError(f"maze: {count} '{mark}' cells{where}, expected exactly one")
    if not (grid == "o").any():
        return grid, None
    return np.where(grid == "o", " ", grid), grid


def encode(chars: np.ndarray) -> np.ndarray:
    """(n, n) character grid -> flat uint8 tokens."""
    b = np.frombuffer("".join(np.asarray(chars).reshape(-1).tolist()).encode("latin-1"), dtype=np.uint8)
    return _CHAR2ID[b]


def decode(tokens: np.ndarray, size: Optional[int] = None) -> np.ndarray:
    """Flat tokens -> (n, n) character grid."""
    t = np.asarray(tokens).reshape(-1).astype(np.int64)
    n = size or int(round(t.size ** 0.5))
    return np.array(list(_ID2CHAR[np.clip(t, 0, 5)].tobytes().decode()), dtype="<U1").reshape(n, n)


# ---------------------------------------------------------------------------------------------- BFS
def _bfs(free: np.ndarray, start: int) -> np.ndarray:
    """Distances (moves) from flat index ``start`` over 4-connected free cells; -1 where unreachable."""
    h, w = free.shape
    f = free.reshape(-1)
    dist = np.full(h * w, -1, dtype=np.int64)
    dist[start] = 0
    q = deque([start])
    while q:
        i = q.popleft()
        r, c = divmod(i, w)
        d = dist[i] + 1
        for j, ok in ((i - w, r > 0), (i + w, r < h - 1), (i - 1, c > 0), (i + 1, c < w - 1)):
            if ok and f[j] and dist[j] < 0:
                dist[j] = d
                q.append(j)
    return dist.reshape(h, w)


def count_shortest_paths(free: np.ndarray, s: Tuple[int, int], g: Tuple[int, int], cap: int = 2) -> int:
    """Number of shortest S->G paths (capped at ``cap``); 0 if G is unreachable."""
    h, w = free.shape
    ds = _bfs(free, s[0] * w + s[1])
    if ds[g] < 0:
        return 0
    cnt = np.zeros((h, w), dtype=np.int64)
    cnt[s] = 1
    order = np.argsort(ds.reshape(-1), kind="stable")
    dflat = ds.reshape(-1)
    for i in order:
        if dflat[i] <= 0:
            continue
        r, c = divmod(int(i), w)
        tot = 0
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < h and 0 <= cc < w and ds[rr, cc] == dflat[i] - 1:
                tot += cnt[rr, cc]
        cnt[r, c] = min(tot, cap)
    return int(cnt[g])


def check_maze(question: np.ndarray, answer: np.ndarray) -> Tuple[Optional[str], int]:
    """Check one maze by BFS. Returns (reason or None, path length in moves).

    Rules: the question uses '# SG' with exactly one S and one G; the answer equals the question except
    free cells turned 'o'; the 'o' cells with S and G form a shortest S->G path through free cells.
    """
    q = np.asarray(question)
    a = np.asarray(answer)
    if q.shape != a.shape:
        return f"question shape {q.shape} and answer shape {a.shape} differ", 0
    bad = ~np.isin(q, list(QUESTION_CHARS))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        return f"question character {q[r, c]!r} at row {r}, column {c} is outside '# SG'", 0
    bad = ~np.isin(a, list(CHARSET))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        return f"answer character {a[r, c]!r} at row {r}, column {c} is outside '# SGo'", 0
    for ch, name in (("S", "start"), ("G", "goal")):
        k = int((q == ch).sum())
        if k != 1:
            return f"question has {k} '{ch}' ({name}) cells, expected exactly 1", 0
    diff = q != a
    if (diff & ~((q == " ") & (a == "o"))).any():
        r, c = np.argwhere(diff & ~((q == " ") & (a == "o")))[0]
        return f"answer changes {q[r, c]!r} to {a[r, c]!r} at row {r}, column {c} (only ' ' -> 'o' allowed)", 0
    free = q != "#"
    s = tuple(np.argwhere(q == "S")[0])
    g = tuple(np.argwhere(q == "G")[0])
    d = _bfs(free, s[0] * q.shape[1] + s[1])[g]
    if d < 0:
        return "G is not reachable from S", 0
    on_path = (a == "o") | (q == "S") | (q == "G")
    dp = _bfs(on_path, s[0] * q.shape[1] + s[1])[g]
    n_o = int((a == "o").sum())
    if dp != d or n_o != d - 1:
        return (f"labelled path ({n_o} 'o' cells, {'connected' if dp >= 0 else 'not connected'}) is not a "
                f"shortest path (shortest has {d} moves, {d - 1} 'o' cells)"), int(d)
    return None, int(d)


# ------------------------------------------------------------------------------------------ generator
def generate_maze(size: int, min_path: int, rng: np.random.Generator, density: Tuple[float, float] = (0.36, 0.44),
                  max_tries: int = 2000) -> Tuple[np.ndarray, np.ndarray, int]:
    """One maze: (question chars, answer chars, path length in moves).

    Walls are placed at random (density drawn from ``density``); S and G are drawn among free cells so that
    the shortest path has more than ``min_path`` moves; then every free cell that lies on some *other*
    shortest path is walled, which keeps the chosen path and makes it the unique shortest path.
    """
    h = w = size
    for _ in range(max_tries):
        walls = rng.random((h, w)) < rng.uniform(*density)
        free = ~walls
        fr = np.flatnonzero(free)
        if fr.size < 2:
            continue
        d0 = _bfs(free, int(rng.choice(fr)))
        far = int(np.argmax(d0))
        dg = _bfs(free, far)
        cand = np.flatnonzero(dg.reshape(-1) > min_path)
        if cand.size == 0:
            continue
        s_flat = int(rng.choice(cand))
        ds = _bfs(free, s_flat)
        cand = np.flatnonzero(ds.reshape(-1) > min_path)
        g_flat = int(rng.choice(cand))
        dg = _bfs(free, g_flat)
        s, g = divmod(s_flat, w), divmod(g_flat, w)
        d = int(ds[g])
        # one random shortest path, walked back from G
        path = [g]
        cur = g
        while cur != s:
            r, c = cur
            prev = [(rr, cc) for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                    if 0 <= rr < h and 0 <= cc < w and ds[rr, cc] == ds[r, c] - 1]
            cur = prev[int(rng.integers(len(prev)))]
            path.append(cur)
        on_path = np.zeros((h, w), dtype=bool)
        on_path[tuple(np.array(path).T)] = True
        other = free & (ds >= 0) & (ds + dg == d) & ~on_path
        free = free & ~other
        q = np.where(free, " ", "#").astype("<U1")
        q[s] = "S"
        q[g] = "G"
        a = q.copy()
        a[on_path & (q == " ")] = "o"
        reason, plen = check_maze(q, a)
        if reason is not None or plen != d or count_shortest_paths(free, s, g) != 1:
            raise DataBuildError(f"maze generator broke its own rules ({reason})")
        return q, a, d
    raise DataBuildError(f"no {size}x{size} maze with a path longer than {min_path} moves in {max_tries} tries; "
                         "lower --min-path")


def generate_mazes(count: int, size: int = 30, min_path: Optional[int] = None, seed: int = 0,
                   progress: bool = False, exclude: Optional[set] = None):
    """``count`` distinct mazes (seeded)."""
    if size < 4 or size > 64:
        raise DataBuildError(f"--size must be in 4..64, got {size}")
    min_path = default_min_path(size) if min_path is None else min_path
    if min_path >= size * size // 2:
        raise DataBuildError(f"--min-path {min_path} is too long for a {size}x{size} maze")
    rng = np.random.default_rng(seed)
    seen = set(exclude or ())
    out = []
    from tqdm.auto import tqdm
    bar = tqdm(total=count, desc=f"generating {size}x{size} mazes", disable=not progress, leave=False)
    while len(out) < count:
        q, a, d = generate_maze(size, min_path, rng)
        key = "".join(q.reshape(-1))
        if key in seen:
            continue
        seen.add(key)
        out.append((q, a, d))
        bar.update(1)
    bar.close()
    return out


# ------------------------------------------------------------------------------------------- loading
def load_csv(path, skips: SkipLog, size: Optional[int] = None):
    """Read and check a maze CSV. Returns (questions [N,n,n] chars, answers, path lengths, size, non_unique)."""
    qs, as_, ds = [], [], []
    non_unique = 0
    for where, source, q, a, rating in read_puzzle_csv(path, skips):
        n = size or int(round(len(q) ** 0.5))
        if n * n != len(q) or len(a) != len(q):
            skips.skip(where, f"question has {len(q)} and answer {len(a)} characters; expected {n * n} "
                              f"for a {n}x{n} maze")
            continue
        if size is None:
            size = n
        qc, ac = to_chars(q, n), to_chars(a, n)
        reason, d = check_maze(qc, ac)
        if reason:
            skips.skip(where, reason)
            continue
        s = tuple(np.argwhere(qc == "S")[0])
        g = tuple(np.argwhere(qc == "G")[0])
        if count_shortest_paths(qc != "#", s, g) > 1:
            non_unique += 1
        qs.append(qc)
        as_.append(ac)
        ds.append(d)
    if not qs:
        raise DataBuildError(f"{path}: no usable mazes ({len(skips)} rows skipped)")
    return np.stack(qs), np.stack(as_), np.array(ds), size, non_unique


# ------------------------------------------------------------------------------------------- building
def _split_arrays(qs, as_, aug: bool):
    g, n = qs.shape[0], qs.shape[1]
    per = 8 if aug else 1
    inputs = np.empty((g * per, n * n), dtype=np.uint8)
    labels = np.empty((g * per, n * n), dtype=np.uint8)
    k = 0
    for i in range(g):
        qi, ai = encode(qs[i]).reshape(n, n), encode(as_[i]).reshape(n, n)
        for t in range(per):
            inputs[k] = dihedral(qi, t).reshape(-1)
            labels[k] = dihedral(ai, t).reshape(-1)
            k += 1
    arrays = {"inputs": inputs, "labels": labels, "puzzle_identifiers": np.zeros(g * per, dtype=np.int32),
              "puzzle_indices": np.arange(g * per + 1, dtype=np.int32),
              "group_indices": np.arange(0, g * per + 1, per, dtype=np.int32)}
    # As the reference writes it: total_puzzles counts groups, mean_puzzle_examples 1.
    meta = DatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=len(CHARSET) + 1,
                           seq_len=n * n, num_puzzle_identifiers=1, total_groups=g, mean_puzzle_examples=1,
                           total_puzzles=g, sets=["all"])
    return meta, arrays


def build_maze(out=DEFAULT_OUT, *, csv=None, generate: Optional[int] = None, size: Optional[int] = None,
               min_path: Optional[int] = None, aug: bool = True, seed: int = 0, test_csv=None,
               test_generate: Optional[int] = None, val: Optional[int] = None, subsample: Optional[int] = None,
               strict: bool = False, force: bool = False, progress: bool = True, echo=print) -> dict:
    """Build a maze dataset; returns the ``build.json`` dict. See ``trmlab data maze --help``.

    ``val``: mazes in the validation split (``val/``, unaugmented, disjoint from train and test); None:
    10% of the training mazes, at least 1, at most 1000; 0: none. Generated after the train and test
    mazes, or held out of the training CSV's rows (as :func:`~.sudoku.build_sudoku`).
    """
    t0 = time.time()
    if (csv is None) == (generate is None):
        raise DataBuildError("give exactly one of --csv FILE or --generate N")
    out = Path(out)
    if out.exists() and not force:
        raise DataBuildError(f"{out}: already exists; pass --force to overwrite it")
    skips = SkipLog(strict, echo)
    source = {}
    notes = []
    non_unique = 0
    if csv is not None:
        qs, as_, ds, size, nu = load_csv(csv, skips, size)
        non_unique += nu
        source["train"] = str(csv)
        tr, vi, n_val = csv_val_rows(csv, len(qs), subsample, val, seed, np.random.default_rng(seed), notes)
        vq, va = qs[vi], as_[vi]
        qs, as_, ds = qs[tr], as_[tr], ds[tr]
        if n_val:
            source["val"] = f"{n_val} rows of {csv} held out of training (seed {seed})"
        test_csv = test_csv_for(csv, test_csv, test_generate)
        if test_csv is not None:
            tq, ta, _, _, nu = load_csv(test_csv, skips, size)
            non_unique += nu
            source["test"] = str(test_csv)
        else:
            mz = generate_mazes(test_generate, size, min_path, seed + 1, progress,
                                exclude={"".join(q.reshape(-1)) for q in np.concatenate([qs, vq])})
            tq, ta = np.stack([m[0] for m in mz]), np.stack([m[1] for m in mz])
            source["test"] = f"generated {test_generate} (seed {seed + 1})"
    else:
        size = size or 30
        if generate <= 0:
            raise DataBuildError(f"--generate must be > 0, got {generate}")
        n_val = resolve_val(val, generate)
        ntest = generate if test_generate is None else test_generate
        exclude = None
        if test_csv is not None:
            tq, ta, _, _, nu = load_csv(test_csv, skips, size)
            non_unique += nu
            source["test"] = str(test_csv)
            ntest = 0
            exclude = {"".join(q.reshape(-1)) for q in tq}
        mz = generate_mazes(generate + ntest + n_val, size, min_path, seed, progress, exclude)
        (qs, as_, ds), test, (vq, va) = split_generated(mz, generate, ntest)
        source["train"] = f"generated {generate} (seed {seed})"
        if test is not None:
            tq, ta = test
            source["test"] = f"generated {ntest} (seed {seed}, after the train mazes)"
        if n_val:
            source["val"] = f"generated {n_val} (seed {seed}, after the train and test mazes)"
    if tq.shape[1:] != qs.shape[1:]:
        raise DataBuildError(f"train mazes are {qs.shape[1]}x{qs.shape[2]} but test mazes {tq.shape[1]}x{tq.shape[2]}")
    keep = fresh_questions(vq, qs, tq)
    if not keep.all():
        notes.append(f"{int((~keep).sum())} validation maze(s) dropped: the same question is in train or test")
        vq, va = vq[keep], va[keep]
    train_meta, train_arrays = _split_arrays(qs, as_, aug)
    test_meta, test_arrays = _split_arrays(tq, ta, False)
    val_split = _split_arrays(vq, va, False) if len(vq) else None
    if val_split is None and not notes:
        notes.append("no validation split (--val 0): the trainer writes no best.pt; the last checkpoint is reported")
    info = {
        "family": "maze", "grid_shape": [int(size), int(size)], "source": source,
        "arguments": {"csv": str(csv) if csv else None, "generate": generate, "size": size, "min_path": min_path,
                      "aug": aug, "seed": seed, "test_csv": str(test_csv) if test_csv else None,
                      "test_generate": test_generate, "val": val, "subsample": subsample, "strict": strict},
        "counts": {"train_groups": int(len(qs)), "train_examples": int(train_arrays["inputs"].shape[0]),
                   "val_examples": int(len(vq)), "test_examples": int(test_arrays["inputs"].shape[0]),
                   "train_min_path": int(ds.min()), "train_mean_path": float(ds.mean()),
                   "several_shortest_paths": int(non_unique)},
        "notes": notes, "skipped": len(skips), "skips": skips.items[:1000],
    }
    for n in notes:
        echo("note: " + n)
    return write_shared_id_dataset(out, force, (train_meta, train_arrays), (test_meta, test_arrays), info, t0, echo,
                                   val=val_split)


def write_generated_csv(path, count: int, size: int = 30, min_path: Optional[int] = None, seed: int = 0,
                        progress: bool = False) -> None:
    mz = generate_mazes(count, size, min_path, seed, progress)
    write_puzzle_csv(path, [("trmlab", "".join(q.reshape(-1)), "".join(a.reshape(-1)), d) for q, a, d in mz])
