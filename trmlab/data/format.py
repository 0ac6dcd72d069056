"""The reference's (and HRM's) on-disk dataset format: metadata, a validating reader, an atomic writer.

Layout of a dataset folder ``root``::

    root/train/dataset.json, root/test/dataset.json
    root/val/dataset.json                       trmlab only, optional: the validation split (same format)
    root/<split>/<set>__inputs.npy              [N_examples, seq_len]  smallest unsigned int type
    root/<split>/<set>__labels.npy              [N_examples, seq_len]
    root/<split>/<set>__puzzle_identifiers.npy  [N_puzzles]   int32
    root/<split>/<set>__puzzle_indices.npy      [N_puzzles+1] int32  CSR offsets puzzle -> examples
    root/<split>/<set>__group_indices.npy       [N_groups+1]  int32  CSR offsets group -> puzzles
    root/identifiers.json                       list: id -> puzzle name ("<blank>" for 0)
    root/test_puzzles.json                      ARC only
    root/val_puzzles.json                       ARC only, with a validation split
    root/build.json                             trmlab only (readers never require it)

The validation split (``val/``) holds puzzles disjoint from train and test; the trainer chooses
``best.pt`` on it and never on the test split. The reference has no such split; datasets without one
(older trmlab builds, the reference's own) keep working: then nothing is selected and the last
checkpoint is the one reported.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import shutil
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

ARRAY_NAMES = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
SPLITS = ("train", "val", "test")
VAL_SPLIT = "val"
#: default size of a Sudoku/Maze validation split: this fraction of the training puzzles, at least
#: VAL_MIN, at most VAL_MAX (a fixed cap keeps the evaluation cheap on million-row CSVs)
VAL_FRACTION, VAL_MIN, VAL_MAX = 0.1, 1, 1000


class DatasetError(ValueError):
    """A dataset on disk is missing or inconsistent (the message says which file and what)."""


class DataBuildError(DatasetError):
    """A builder met bad input (the message names the file and row / task id) or was refused."""


class PuzzleFormatError(ValueError):
    """A puzzle given as text (typed, pasted, a file, a CSV row) is malformed; the message says what is
    wrong and where (rows and columns count from 1)."""


@dataclasses.dataclass
class DatasetMetadata:
    """The reference's ``PuzzleDatasetMetadata`` (``dataset.json``); ``total_puzzles`` is absent in HRM's."""

    pad_id: int
    ignore_label_id: Optional[int]
    blank_identifier_id: int
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    total_groups: int
    mean_puzzle_examples: float
    total_puzzles: Optional[int] = None
    sets: List[str] = dataclasses.field(default_factory=lambda: ["all"])

    def apply_to(self, model_cfg) -> None:
        """Copy what the data decides into a :class:`~trmlab.config.ModelConfig`: ``vocab_size``,
        ``seq_len`` and the number of puzzle identifiers."""
        model_cfg.vocab_size = int(self.vocab_size)
        model_cfg.seq_len = int(self.seq_len)
        model_cfg.num_puzzle_identifiers = int(self.num_puzzle_identifiers)

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["total_puzzles"] is None:
            del d["total_puzzles"]
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any], where: str = "dataset.json") -> "DatasetMetadata":
        required = ["pad_id", "ignore_label_id", "blank_identifier_id", "vocab_size", "seq_len",
                    "num_puzzle_identifiers", "total_groups", "mean_puzzle_examples", "sets"]
        missing = [k for k in required if k not in d]
        if missing:
            raise DatasetError(f"{where}: missing field(s) {', '.join(missing)}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def smallest_uint_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type holding tokens 0..vocab_size-1."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


@dataclasses.dataclass
class PuzzleSet:
    """The five arrays of one set (``all`` for every builder); inputs/labels are memory-mapped."""

    name: str
    inputs: np.ndarray
    labels: np.ndarray
    puzzle_identifiers: np.ndarray
    puzzle_indices: np.ndarray
    group_indices: np.ndarray

    @property
    def num_examples(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def num_puzzles(self) -> int:
        return int(self.puzzle_identifiers.shape[0])

    @property
    def num_groups(self) -> int:
        return int(self.group_indices.shape[0] - 1)

    def example_puzzle(self, example_index) -> np.ndarray:
        """Puzzle index of each example index (vectorised)."""
        return np.searchsorted(self.puzzle_indices, example_index, side="right") - 1


@dataclasses.dataclass
class PuzzleSplit:
    """A validated split (``train``, ``val`` or ``test``) of a dataset."""

    root: Path
    split: str
    metadata: DatasetMetadata
    sets: Dict[str, PuzzleSet]

    def __getattr__(self, name):  # convenience: split.inputs etc. of the only / first set
        if name in ARRAY_NAMES or name in ("num_examples", "num_puzzles", "num_groups", "example_puzzle"):
            return getattr(self.first, name)
        raise AttributeError(name)

    @property
    def first(self) -> PuzzleSet:
        return self.sets[self.metadata.sets[0]]


def _load_array(path: Path, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: file missing")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - report any numpy failure as a dataset error
        raise DatasetError(f"{path}: not a readable .npy file ({e})") from None


def _check_csr(path: Path, arr: np.ndarray, end: int, what: str) -> None:
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise DatasetError(f"{path}: must be a 1-D array of offsets, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise DatasetError(f"{path}: offsets must be integers, got {arr.dtype}")
    if int(arr[0]) != 0:
        raise DatasetError(f"{path}: first offset must be 0, got {int(arr[0])}")
    d = np.diff(arr.astype(np.int64))
    if (d < 0).any():
        i = int(np.nonzero(d < 0)[0][0])
        raise DatasetError(f"{path}: offsets decrease at position {i + 1} ({int(arr[i])} -> {int(arr[i + 1])})")
    if int(arr[-1]) != end:
        raise DatasetError(f"{path}: last offset is {int(arr[-1])} but there are {end} {what}")


def _check_tokens(path: Path, arr: np.ndarray, vocab: int, lo: int, chunk: int = 1 << 16) -> None:
    for s in range(0, arr.shape[0], chunk):
        block = np.asarray(arr[s:s + chunk])
        if block.size == 0:
            continue
        bad = (block >= vocab) | (block < lo)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DatasetError(f"{path}: token {int(block[r, c])} at example {s + r}, position {c} "
                               f"is outside 0..{vocab - 1} (vocab_size {vocab})")


def _load_json(path: Path, missing: str) -> Any:
    """A JSON file of a dataset folder; DatasetError naming the file when it is missing or not JSON."""
    if not path.is_file():
        raise DatasetError(f"{path}: file missing{missing}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None


def read_metadata(root, split: str) -> DatasetMetadata:
    path = Path(root) / split / "dataset.json"
    return DatasetMetadata.from_dict(_load_json(path, f" (is {root} a dataset folder?)"), str(path))


def open_split(root, split: str = "train", mmap: bool = True, check_tokens: bool = True) -> PuzzleSplit:
    """Open and validate one split; inputs and labels are memory-mapped (``mmap=True``).

    Checks: files present; inputs/labels 2-D ``[N, seq_len]`` of equal shape and integer type; CSR offsets
    start at 0, never decrease and end at the number of examples / puzzles; identifiers within
    ``0..num_puzzle_identifiers-1``; tokens within ``0..vocab_size-1`` (labels may also hold the ignore id).
    Raises :class:`DatasetError` naming the file and what is wrong.
    """
    root = Path(root)
    meta = read_metadata(root, split)
    d = root / split
    sets = {}
    for set_name in meta.sets:
        arrs = {k: _load_array(d / f"{set_name}__{k}.npy", mmap and k in ("inputs", "labels")) for k in ARRAY_NAMES}
        p = {k: d / f"{set_name}__{k}.npy" for k in ARRAY_NAMES}
        inp, lab = arrs["inputs"], arrs["labels"]
        for k in ("inputs", "labels"):
            a = arrs[k]
            if a.ndim != 2 or a.shape[1] != meta.seq_len:
                raise DatasetError(f"{p[k]}: shape {a.shape}, expected [N, seq_len={meta.seq_len}]")
            if not np.issubdtype(a.dtype, np.integer):
                raise DatasetError(f"{p[k]}: dtype {a.dtype} is not an integer type")
        if lab.shape != inp.shape:
            raise DatasetError(f"{p['labels']}: shape {lab.shape} differs from inputs {inp.shape}")
        ids = arrs["puzzle_identifiers"]
        if ids.ndim != 1:
            raise DatasetError(f"{p['puzzle_identifiers']}: must be 1-D, got shape {ids.shape}")
        _check_csr(p["puzzle_indices"], arrs["puzzle_indices"], inp.shape[0], "examples")
        if arrs["puzzle_indices"].shape[0] != ids.shape[0] + 1:
            raise DatasetError(f"{p['puzzle_indices']}: {arrs['puzzle_indices'].shape[0]} offsets for "
                               f"{ids.shape[0]} puzzles (need puzzles + 1)")
        _check_csr(p["group_indices"], arrs["group_indices"], ids.shape[0], "puzzles")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= meta.num_puzzle_identifiers):
            raise DatasetError(f"{p['puzzle_identifiers']}: identifiers span {int(ids.min())}..{int(ids.max())}, "
                               f"outside 0..{meta.num_puzzle_identifiers - 1}")
        if check_tokens:
            _check_tokens(p["inputs"], inp, meta.vocab_size, 0)
            lo = min(0, meta.ignore_label_id if meta.ignore_label_id is not None else 0)
            _check_tokens(p["labels"], lab, max(meta.vocab_size, (meta.ignore_label_id or 0) + 1), lo)
        sets[set_name] = PuzzleSet(set_name, inp, lab, ids.astype(np.int32, copy=False),
                                   arrs["puzzle_indices"].astype(np.int64), arrs["group_indices"].astype(np.int64))
    return PuzzleSplit(root, split, meta, sets)


def has_split(root, split: str) -> bool:
    """Whether the dataset at ``root`` has the split (e.g. ``has_split(root, "val")``)."""
    return (Path(root) / split / "dataset.json").is_file()


def default_val_count(n_train: int) -> int:
    """The default number of validation puzzles for ``n_train`` training puzzles (Sudoku, Maze)."""
    return int(min(VAL_MAX, max(VAL_MIN, round(VAL_FRACTION * n_train))))


def resolve_val(val: Optional[int], n_train: int) -> int:
    """``--val N`` as given (0 = no validation split), or the default for ``n_train`` training puzzles."""
    if val is None:
        return default_val_count(n_train)
    if val < 0:
        raise DataBuildError(f"--val must be >= 0, got {val}")
    return int(val)


def fresh_questions(questions: np.ndarray, *others: np.ndarray) -> np.ndarray:
    """Boolean mask: which of ``questions`` [N, ...] appear in none of ``others`` (compared byte for byte)."""
    seen = {q.tobytes() for arr in others for q in arr}
    return np.array([q.tobytes() not in seen for q in questions], dtype=bool)


def split_generated(items: list, n_train: int, n_test: int):
    """Split generated ``(question, answer, extra)`` tuples, kept in generation order, into the training
    puzzles (the first ``n_train``), the test puzzles (the next ``n_test``) and the held-out rest (the
    validation split), so train and test are the same bytes whether or not a validation split is asked for.

    Returns ``(questions, answers, extras), test, (val_questions, val_answers)``; ``test`` is
    ``(questions, answers)`` or None when ``n_test`` is 0; an empty validation part has no rows."""
    train, test, held = items[:n_train], items[n_train:n_train + n_test], items[n_train + n_test:]
    qs, answers = np.stack([t[0] for t in train]), np.stack([t[1] for t in train])
    extras = np.array([t[2] for t in train])
    tests = (np.stack([t[0] for t in test]), np.stack([t[1] for t in test])) if test else None
    vq = np.stack([t[0] for t in held]) if held else qs[:0]
    va = np.stack([t[1] for t in held]) if held else answers[:0]
    return (qs, answers, extras), tests, (vq, va)


#: the validation rows of a CSV build are drawn with ``default_rng([seed, VAL_STREAM])``
VAL_STREAM = 1


def csv_val_rows(csv, n_rows: int, subsample: Optional[int], val: Optional[int], seed: int,
                 rng: np.random.Generator, notes: List[str]):
    """The training and validation rows of a training CSV with ``n_rows`` usable rows (Sudoku, Maze).

    ``val`` is ``--val`` (None: the default share); the training subsample is drawn with ``rng``
    (:func:`choose_rows`). A CSV too small for the default split gets none, with a note appended to
    ``notes``. Returns ``(train_rows, val_rows, n_val)``."""
    n_val = resolve_val(val, min(subsample or n_rows, n_rows))
    if val is None and n_val >= n_rows:
        n_val = 0
        notes.append(f"no validation split: {csv} has only {n_rows} usable row(s); pass --val N to hold some out")
    train, held = choose_rows(n_rows, subsample, n_val, rng, np.random.default_rng([seed, VAL_STREAM]))
    return train, held, n_val


def choose_rows(n_rows: int, subsample: Optional[int], n_val: int, rng: np.random.Generator,
                val_rng: np.random.Generator):
    """Split the rows of a training CSV into (training rows, validation rows), both sorted, disjoint.

    The training subsample is drawn with ``rng`` exactly as without a validation split; the validation
    rows are drawn with ``val_rng`` from the rows it leaves unused. Without a subsample (or when fewer
    than ``n_val`` rows are left over) the validation rows are held out first and the subsample is
    drawn from the rest.
    """
    all_rows = np.arange(n_rows)
    if subsample is not None and subsample < n_rows:
        train = np.sort(rng.choice(n_rows, size=subsample, replace=False))
        rest = np.setdiff1d(all_rows, train)
        if rest.size >= n_val:
            return train, np.sort(val_rng.choice(rest, size=n_val, replace=False)) if n_val else rest[:0]
    if n_val >= n_rows:
        raise DataBuildError(f"--val {n_val} leaves no training puzzle of the {n_rows} usable rows")
    val = np.sort(val_rng.choice(n_rows, size=n_val, replace=False)) if n_val else all_rows[:0]
    rest = np.setdiff1d(all_rows, val)
    if subsample is not None and subsample < rest.size:
        rest = rest[np.sort(rng.choice(rest.size, size=subsample, replace=False))]
    return rest, val


def read_identifiers(root) -> List[str]:
    """``identifiers.json``: puzzle identifier -> puzzle (ARC: version) name, ``"<blank>"`` for 0."""
    return _load_json(Path(root) / "identifiers.json", "")


def read_test_puzzles(root) -> Dict[str, dict]:
    """``test_puzzles.json`` of an ARC dataset: the raw test tasks, {task id: {"train", "test"}}."""
    return _load_json(Path(root) / "test_puzzles.json", " (only ARC datasets have it)")


def dataset_hash(root) -> str:
    """SHA-256 over every file of a built dataset (relative path and bytes, in path order) except
    ``build.json`` (it records the build's duration): two builds with the same arguments and seed give
    the same hash. Model cards record it so a retraining can show it starts from the same data."""
    import hashlib

    root = Path(root)
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.name != "build.json")
    if not files:
        raise DatasetError(f"{root}: no dataset files to hash (not a built dataset)")
    h = hashlib.sha256()
    for f in files:
        rel = f.relative_to(root).as_posix().encode()
        h.update(len(rel).to_bytes(4, "little") + rel)
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def read_build_info(root) -> dict:
    """trmlab's ``build.json`` (family, grid shape, arguments, counts, skips); ``{}`` when absent."""
    path = Path(root) / "build.json"
    return _load_json(path, "") if path.is_file() else {}


def family_of(vocab_size: int, seq_len: int) -> Optional[str]:
    """``sudoku``, ``maze`` or ``arc`` as the token map of each builder implies it, or None."""
    side = int(round(max(seq_len, 0) ** 0.5))
    if vocab_size == 12 and seq_len == 900:
        return "arc"
    if side * side == seq_len and vocab_size == side + 2 and side in (4, 6, 9):
        return "sudoku"
    if vocab_size == 6 and side * side == seq_len and side > 0:
        return "maze"
    return None


def infer_family(root) -> str:
    """``sudoku``, ``maze`` or ``arc``: from build.json, else from vocab_size / seq_len."""
    info = read_build_info(root)
    if info.get("family"):
        return info["family"]
    split = "test" if (Path(root) / "test" / "dataset.json").is_file() else "train"
    m = read_metadata(root, split)
    family = family_of(m.vocab_size, m.seq_len)
    if family is not None:
        return family
    raise DatasetError(f"{root}: cannot tell the task family (vocab_size {m.vocab_size}, seq_len {m.seq_len}) "
                       "and there is no build.json")


def grid_shape(root) -> tuple:
    info = read_build_info(root)
    if info.get("grid_shape"):
        return tuple(info["grid_shape"])
    split = "test" if (Path(root) / "test" / "dataset.json").is_file() else "train"
    side = int(round(read_metadata(root, split).seq_len ** 0.5))
    return (side, side)


# ---------------------------------------------------------------------------------------------- writing
class DatasetWriter:
    """Writes a dataset into a hidden temporary folder beside ``out`` and renames it into place at the end.

    Use as a context manager; on any exception the temporary folder is removed, so no half-written
    dataset is left. An existing ``out`` is refused unless ``force`` (then replaced only on success).
    """

    def __init__(self, out, force: bool = False):
        self.out = Path(out)
        self.force = force
        if self.out.exists() and not force:
            raise DataBuildError(f"{self.out}: already exists; pass --force to overwrite it")
        self.tmp = self.out.parent / f".{self.out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> "DatasetWriter":
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir()
        return self

    def path(self, *parts) -> Path:
        p = self.tmp.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, rel: str, obj) -> None:
        with open(self.path(rel), "w") as f:
            json.dump(obj, f)

    def write_split(self, split: str, metadata: DatasetMetadata, arrays: Dict[str, np.ndarray], set_name: str = "all") -> None:
        for k in ARRAY_NAMES:
            if k in arrays:
                a = arrays[k]
                if k not in ("inputs", "labels"):
                    a = np.asarray(a, dtype=np.int32)
                np.save(self.path(split, f"{set_name}__{k}.npy"), a)
        self.write_json(f"{split}/dataset.json", metadata.to_dict())

    def open_array(self, split: str, name: str, shape, dtype, set_name: str = "all") -> np.ndarray:
        """A writable memory-mapped .npy in the temporary folder (for builds too large for RAM)."""
        return np.lib.format.open_memmap(self.path(split, f"{set_name}__{name}.npy"), mode="w+", dtype=dtype,
                                         shape=tuple(shape))

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        try:
            for split in SPLITS:
                if (self.tmp / split / "dataset.json").is_file():
                    open_split(self.tmp, split)  # validate what we wrote before publishing it
            old = None
            if self.out.exists():
                old = self.out.parent / f".{self.out.name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(self.out, old)
            os.rename(self.tmp, self.out)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return False


def csr_from_counts(counts) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    out[1:] = np.cumsum(np.asarray(counts, dtype=np.int64))
    return out.astype(np.int32)


class SkipLog:
    """Collects skipped inputs (``where``, ``reason``); with ``strict`` the first one raises."""

    def __init__(self, strict: bool = False, echo=None):
        self.strict = strict
        self.items: List[Dict[str, str]] = []
        self.echo = echo

    def skip(self, where: str, reason: str) -> None:
        if self.strict:
            raise DataBuildError(f"{where}: {reason} (--strict makes skips fatal)")
        self.items.append({"where": where, "reason": reason})
        if self.echo is not None and len(self.items) <= 5:
            self.echo(f"skipped {where}: {reason}")

    def __len__(self) -> int:
        return len(self.items)


def write_shared_id_dataset(out, force: bool, train: tuple, test: tuple, info: dict, t0: float, echo,
                            val: Optional[tuple] = None) -> dict:
    """Write a dataset whose puzzles share one identifier (Sudoku, Maze): the splits given as
    (metadata, arrays) (``val`` None: no validation split), ``identifiers.json`` = ["<blank>"] and
    ``build.json`` = ``info``; atomically."""
    with DatasetWriter(out, force) as w:
        w.write_split("train", *train)
        if val is not None:
            w.write_split(VAL_SPLIT, *val)
        w.write_split("test", *test)
        w.write_json("identifiers.json", ["<blank>"])
        info["seconds"] = round(time.time() - t0, 2)
        w.write_json("build.json", info)
    c = info["counts"]
    echo(f"wrote {out} (train {c['train_examples']} examples in {c['train_groups']} groups, "
         f"validation {c.get('val_examples', 0)}, test {c['test_examples']}; {info['skipped']} rows skipped)")
    return info
