"""Notebook paths resolve against the project root wherever the notebook runs from."""
from pathlib import Path

from trmlab.paths import project_root, resolve

REPO = Path(__file__).resolve().parents[1]


def test_project_root_from_notebooks_folder_and_root():
    assert project_root(REPO / "notebooks") == REPO
    assert project_root(REPO) == REPO


def test_project_root_outside_a_clone_is_the_start(tmp_path):
    assert project_root(tmp_path) == tmp_path.resolve()


def test_resolve_keeps_absolute_and_roots_relative(tmp_path):
    assert resolve(tmp_path / "x") == tmp_path / "x"
    assert resolve("runs/a", root=REPO) == REPO / "runs" / "a"
