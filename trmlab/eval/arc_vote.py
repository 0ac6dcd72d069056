"""The ARC evaluator of the reference (``evaluators/arc.py``), re-implemented.

For every evaluated row (one augmented version of one test input):

1. drop padding rows (``puzzle_identifiers == blank_id``);
2. look the version name ``<task>|||t<k>|||<perm digits>`` up in ``identifiers`` and parse it;
3. crop the input and the predicted 30x30 token grids the way the reference does (from the top-left,
   the maximum-area rectangle of colour tokens 2..11) and subtract 2;
4. undo the augmentation on both crops: the dihedral transform first (inverse table
   ``DIHEDRAL_INVERSE``), then the colour permutation (``argsort(perm)``);
5. hash the de-augmented input: it is the key of the original test pair; hash the de-augmented
   prediction and keep its grid once;
6. record one vote (prediction hash, sigmoid(q_halt_logit) in fp64) under [task][input hash].

``result()`` then, for every task of ``test_puzzles`` and each of its test pairs, groups the votes by
distinct predicted grid, counts them and averages their halting probability, sorts by
(count, mean probability) descending, and scores pass@K = "the true output is among the top K".
The per-task score is the fraction of its test pairs solved; ``ARC/pass@K`` is the mean over tasks.
The reference reports pass@2.

Difference from the reference: the reference never clears its votes, so each evaluation silently
pools all earlier evaluations (checkpoints) too. Here :meth:`ArcEvaluator.begin` starts a fresh
evaluation and ``ARC/pass@K`` scores that evaluation's votes alone (one checkpoint). With
``pool_across_evaluations=True`` (the reference's protocol; ``train.arc_pool_votes`` and
``trmlab eval --arc-pool-votes``) the evaluator also keeps the votes of every earlier evaluation and
``result()`` adds ``ARC_pooled/pass@K``: this evaluation's votes pooled with all earlier ones (the
reference's number); ``submission.json`` then holds the pooled answers, as the reference writes it.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from trmlab.data.arc import MAX_GRID as GRID
from trmlab.data.arc import crop_sizes, invert_version, parse_version_name
from trmlab.data.format import read_identifiers, read_metadata, read_test_puzzles
from trmlab.io import write_json_atomic

__all__ = ["ArcEvaluator", "grid_hash"]

_STATE_VERSION = 2


def grid_hash(grid: np.ndarray) -> str:
    """A hash of a 2-D colour grid that depends on its shape and its values (uint8)."""
    g = np.ascontiguousarray(np.asarray(grid, dtype=np.uint8))
    if g.ndim != 2:
        raise ValueError(f"grid must be 2-D, got shape {g.shape}")
    h = hashlib.sha256()
    h.update(np.asarray(g.shape, dtype=np.int64).tobytes())
    h.update(g.tobytes())
    return h.hexdigest()


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.is_floating_point():
            x = x.to(torch.float64)
        return x.cpu().numpy()
    return np.asarray(x)


def _sigmoid64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------------------------------------
# The evaluator
# ---------------------------------------------------------------------------------------------


class ArcEvaluator:
    """Votes over augmented versions and scores ARC pass@K; see the module docstring.

    Parameters
    ----------
    identifiers: list id -> puzzle (version) name, ``identifiers[0] == "<blank>"`` (``identifiers.json``).
    test_puzzles: task id -> {"train": [...], "test": [{"input": grid, "output": grid}, ...]}, the raw,
        untransformed tasks (``test_puzzles.json``).
    pass_ks: the K of pass@K.
    submission_k: attempts per test input in ``submission.json`` (2: ``attempt_1``, ``attempt_2``).
    pool_across_evaluations: keep every evaluation's votes across :meth:`begin` calls and also score
        them pooled (``ARC_pooled/pass@K``), as the reference always does.
    blank_id: puzzle identifier of padding rows.

    Distributed use: every rank calls ``begin`` / ``update``; the trainer gathers ``state()`` of
    every rank (e.g. ``torch.distributed.gather_object``) and calls ``merge(states)`` then
    ``result()`` on rank 0. ``states`` may include rank 0's own state (it is recognised and not
    counted twice). ``merge`` does not change any rank's own votes, so pooling across evaluations
    stays exact (each rank keeps its own history, as in the reference).
    """

    def __init__(
        self,
        identifiers: Sequence[str],
        test_puzzles: Mapping[str, Mapping[str, Any]],
        pass_ks: Sequence[int] = (1, 2, 5, 10, 100, 1000),
        submission_k: int = 2,
        pool_across_evaluations: bool = False,
        blank_id: int = 0,
    ):
        self.identifiers = list(identifiers)
        self.test_puzzles = test_puzzles
        self.pass_ks = tuple(int(k) for k in pass_ks)
        self.submission_k = int(submission_k)
        if self.submission_k < 1:
            raise ValueError("submission_k must be >= 1")
        self.pool_across_evaluations = bool(pool_across_evaluations)
        self.blank_id = int(blank_id)
        self._source = uuid.uuid4().hex
        self._parsed: dict[int, tuple[str, int, np.ndarray]] = {}
        # task -> input hash -> test pair indices; true output hashes per task
        self._pair_of_input: dict[str, dict[str, list[int]]] = {}
        self._truth: dict[str, list[str]] = {}
        for task, puzzle in test_puzzles.items():
            keys: dict[str, list[int]] = {}
            truths: list[str] = []
            for i, pair in enumerate(puzzle["test"]):
                keys.setdefault(grid_hash(np.array(pair["input"], dtype=np.uint8)), []).append(i)
                truths.append(grid_hash(np.array(pair["output"], dtype=np.uint8)))
            self._pair_of_input[task] = keys
            self._truth[task] = truths
        self._clear()

    @classmethod
    def from_dataset(cls, root: str | os.PathLike, **kwargs: Any) -> "ArcEvaluator":
        """Build from a dataset folder in the reference layout (``identifiers.json``,
        ``test_puzzles.json``, and the blank id of ``test/dataset.json`` when present)."""
        if "blank_id" not in kwargs and (Path(root) / "test" / "dataset.json").exists():
            kwargs["blank_id"] = read_metadata(root, "test").blank_identifier_id
        return cls(read_identifiers(root), read_test_puzzles(root), **kwargs)

    # -- collecting -------------------------------------------------------------------------

    def _clear(self) -> None:
        self._grids: dict[str, np.ndarray] = {}
        # task -> input hash -> prediction hash -> [count, sum of sigmoid(q_halt)]: this evaluation
        self._votes: dict[str, dict[str, dict[str, list]]] = {}
        self._rows = 0
        # the same for all earlier evaluations (kept only when pooling across evaluations)
        self._history: dict[str, dict[str, dict[str, list]]] = {}
        self._history_rows = 0
        self._evaluations = 0
        self._foreign: dict[str, dict] = {}

    def begin(self) -> None:
        """Start an evaluation. Without pooling the votes are cleared; with pooling the votes of the
        evaluation just finished move to the history. States merged from other ranks are always
        dropped (they send theirs again)."""
        if self.pool_across_evaluations:
            if self._rows:
                _add_votes(self._history, self._votes)
                self._history_rows += self._rows
                self._evaluations += 1
            self._votes, self._rows = {}, 0
            self._foreign = {}
        else:
            self._clear()

    @property
    def evaluations_pooled(self) -> int:
        """Earlier evaluations (with votes) whose votes this rank keeps for pooling."""
        return self._evaluations

    def _parse(self, pid: int) -> tuple[str, int, np.ndarray]:
        p = self._parsed.get(pid)
        if p is None:
            p = parse_version_name(self.identifiers[pid])
            self._parsed[pid] = p
        return p

    def update(self, inputs: Any, puzzle_identifiers: Any, predictions: Any, q_halt_logits: Any) -> None:
        """Add one batch: ``inputs`` and ``predictions`` [B, 900] tokens, ``puzzle_identifiers`` [B],
        ``q_halt_logits`` [B] (numpy arrays or torch tensors)."""
        ids = _to_numpy(puzzle_identifiers).reshape(-1).astype(np.int64)
        keep = ids != self.blank_id
        if not keep.any():
            return
        ids = ids[keep]
        inp = _to_numpy(inputs).reshape(len(keep), GRID, GRID)[keep]
        pred = _to_numpy(predictions).reshape(len(keep), GRID, GRID)[keep]
        q = _sigmoid64(_to_numpy(q_halt_logits).reshape(-1)[keep])
        in_sizes = crop_sizes(inp)
        pred_sizes = crop_sizes(pred)
        for j in range(len(ids)):
            task, tid, perm = self._parse(int(ids[j]))
            (ri, ci), (rp, cp) = in_sizes[j], pred_sizes[j]
            in_grid = invert_version((inp[j, :ri, :ci] - 2).astype(np.uint8), tid, perm)
            pr_grid = invert_version((pred[j, :rp, :cp] - 2).astype(np.uint8), tid, perm)
            in_h = grid_hash(in_grid)
            pr_h = grid_hash(pr_grid)
            self._grids.setdefault(pr_h, pr_grid)
            slot = self._votes.setdefault(task, {}).setdefault(in_h, {}).setdefault(pr_h, [0, 0.0])
            slot[0] += 1
            slot[1] += float(q[j])
            self._rows += 1

    # -- distributed -----------------------------------------------------------------------

    def state(self) -> dict:
        """This rank's votes (picklable; each distinct grid stored once): ``votes`` of this
        evaluation and, when pooling, ``history`` of the earlier ones."""
        return {
            "version": _STATE_VERSION,
            "source": self._source,
            "rows": self._rows,
            "grids": dict(self._grids),
            "votes": _copy_votes(self._votes),
            "history_rows": self._history_rows,
            "history": _copy_votes(self._history),
        }

    def merge(self, states: Iterable[Mapping]) -> None:
        """Use other ranks' ``state()`` in the next ``result()``. Replaces states merged before;
        this evaluator's own state, when present, is skipped."""
        self._foreign = {}
        for s in states:
            if s.get("version") != _STATE_VERSION:
                raise ValueError("ArcEvaluator state of an unknown version")
            if s["source"] != self._source:
                self._foreign[s["source"]] = s

    # -- scoring ---------------------------------------------------------------------------

    def _pooled(self, with_history: bool) -> tuple[dict[str, dict[str, dict[str, list]]], int, dict[str, np.ndarray]]:
        """Votes of this evaluation on every rank (and of the earlier ones with ``with_history``)."""
        mine = {"grids": self._grids, "votes": self._votes, "rows": self._rows,
                "history": self._history, "history_rows": self._history_rows}
        sources = [mine, *self._foreign.values()]
        if len(sources) == 1 and not with_history:
            return self._votes, self._rows, self._grids
        grids: dict[str, np.ndarray] = {}
        votes: dict[str, dict[str, dict[str, list]]] = {}
        rows = 0
        for s in sources:
            for h, g in s["grids"].items():
                grids.setdefault(h, g)
            _add_votes(votes, s["votes"])
            rows += s["rows"]
            if with_history:
                _add_votes(votes, s["history"])
                rows += s["history_rows"]
        return votes, rows, grids

    def result(self, out_dir: str | os.PathLike | None = None) -> dict:
        """Score the collected votes.

        Returns ``{"ARC/pass@K": float, ...}`` for this evaluation's votes, plus ``"per_task"`` (task
        -> ``{"pass@K": fraction of its test pairs solved, "pairs": [{"votes", "candidates",
        "rank_of_truth"}, ...]}``) and ``"summary"`` (counts, including votes whose input matched no
        test pair). When pooling across evaluations it adds ``"ARC_pooled/pass@K"`` (all evaluations'
        votes together, the reference's number), ``"pooled_per_task"``, ``"pooled_summary"`` (with
        ``evaluations``: how many evaluations were pooled) and the submission holds the pooled answers.
        With ``out_dir`` writes ``<out_dir>/submission.json`` atomically and adds its path as
        ``"submission_path"``.
        """
        votes, rows, grids = self._pooled(with_history=False)
        scores, per_task, summary, submission = self._score(votes, rows, grids)
        out: dict[str, Any] = {f"ARC/{k}": v for k, v in scores.items()}
        out["per_task"] = per_task
        out["summary"] = summary
        if self.pool_across_evaluations:
            votes, rows, grids = self._pooled(with_history=True)
            scores, per_task, summary, submission = self._score(votes, rows, grids)
            out.update({f"ARC_pooled/{k}": v for k, v in scores.items()})
            out["pooled_per_task"] = per_task
            summary["evaluations"] = self._evaluations + 1
            out["pooled_summary"] = summary
        self._last_submission = submission
        if out_dir is not None:
            out["submission_path"] = str(write_json_atomic(Path(out_dir) / "submission.json", submission))
        return out

    def _score(self, votes, rows: int, grids) -> tuple[dict, dict, dict, dict]:
        n_tasks = len(self.test_puzzles)
        totals = {k: 0.0 for k in self.pass_ks}
        per_task: dict[str, dict] = {}
        submission: dict[str, list] = {}
        matched_votes = 0
        tasks_with_votes = 0
        for task, puzzle in self.test_puzzles.items():
            n_pairs = len(puzzle["test"])
            task_votes = votes.get(task, {})
            solved = {k: 0 for k in self.pass_ks}
            pairs_info = []
            attempts_list = []
            ranked_by_pair: dict[int, list[tuple[str, int, float]]] = {}
            for in_h, d in task_votes.items():
                for i in self._pair_of_input[task].get(in_h, []):
                    ranked_by_pair[i] = [(p_h, cnt, qsum / cnt) for p_h, (cnt, qsum) in d.items()]
            if ranked_by_pair:
                tasks_with_votes += 1
            for i in range(n_pairs):
                ranked = ranked_by_pair.get(i, [])
                # stable sort: among exact ties the first-seen grid stays first
                ranked.sort(key=lambda x: (x[1], x[2]), reverse=True)
                hashes = [h for h, _, _ in ranked]
                truth = self._truth[task][i]
                rank = hashes.index(truth) + 1 if truth in hashes else None
                for k in self.pass_ks:
                    if rank is not None and rank <= k:
                        solved[k] += 1
                n_votes = sum(c for _, c, _ in ranked)
                matched_votes += n_votes
                pairs_info.append({
                    "votes": n_votes,
                    "candidates": len(ranked),
                    "rank_of_truth": rank,
                    "top": [(c, m) for _, c, m in ranked[: max(self.submission_k, 2)]],
                })
                if ranked:
                    top = [grids[h].tolist() for h in hashes[: self.submission_k]]
                else:
                    top = [[[0]]]
                top += [top[0]] * (self.submission_k - len(top))
                attempts_list.append({f"attempt_{a + 1}": g for a, g in enumerate(top)})
            per_task[task] = {f"pass@{k}": solved[k] / n_pairs for k in self.pass_ks}
            per_task[task]["pairs"] = pairs_info
            for k in self.pass_ks:
                totals[k] += solved[k] / n_pairs
            submission[task] = attempts_list

        scores = {f"pass@{k}": (totals[k] / n_tasks if n_tasks else float("nan")) for k in self.pass_ks}
        summary = {
            "tasks": n_tasks,
            "tasks_with_votes": tasks_with_votes,
            "test_pairs": sum(len(p["test"]) for p in self.test_puzzles.values()),
            "rows": rows,
            "votes_matched": matched_votes,
            "votes_unmatched": rows - matched_votes,
            "distinct_grids": len({h for inner in votes.values() for d in inner.values() for h in d}),
        }
        return scores, per_task, summary, submission

    def submission(self) -> dict:
        """The submission of the last ``result()`` call (task -> list of attempts per test input)."""
        return getattr(self, "_last_submission", {})


def _copy_votes(votes: dict) -> dict:
    return {t: {i: {p: list(v) for p, v in d.items()} for i, d in inner.items()} for t, inner in votes.items()}


def _add_votes(dst: dict, src: dict) -> None:
    """Add the vote counts and halting-probability sums of ``src`` into ``dst``."""
    for task, inner in src.items():
        vt = dst.setdefault(task, {})
        for in_h, d in inner.items():
            vi = vt.setdefault(in_h, {})
            for p_h, (cnt, qsum) in d.items():
                slot = vi.setdefault(p_h, [0, 0.0])
                slot[0] += cnt
                slot[1] += qsum
