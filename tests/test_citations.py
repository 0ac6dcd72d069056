"""Every Markdown file the code and the docs name exists in the repository.

A citation is any ``<name>.md`` (with or without a folder, e.g. ``docs/cli.md``, ``../zoo/sudoku4/card.md``,
``card.md``) written in the package (``trmlab/**/*.py``), ``scripts/``, ``bench/*.py``, the notebooks'
cells, ``README.md``, ``docs/**/*.md`` and ``zoo/*/card.md``. It resolves when it names a file of the
repository's tree (tracked, or new and not ignored by git), tried in this order:

1. relative to the citing file's folder (how a Markdown link is followed),
2. relative to the repository root (how the docs and docstrings write paths),
3. any file of the tree whose path ends with the name (``card.md`` is written into every zoo folder).

A path that leaves the repository (``../<folder beside the clone>/...``) never resolves: a clone does
not have it. URLs are not citations. A name that trmlab generates at run time and that is not in the
repository goes in :data:`ALLOWED` with the reason; there is none at present (``card.md``, which the zoo
export writes into each zoo folder, exists under ``zoo/*/``).
"""
from __future__ import annotations

import json
import posixpath
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: cited names that may be missing from the repository: name -> why. Keep it small and explicit.
ALLOWED: dict[str, str] = {}

# a Markdown file name, possibly with folders; not followed by more of a name (".md_x", ".md.bak")
MD_NAME = re.compile(r"[\w./-]*[\w-]\.md(?![\w-]|\.\w)")
URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")

SKIP_DIRS = {".git", ".venv", "__pycache__", "node_modules", ".ipynb_checkpoints", ".pytest_cache"}


@dataclass(frozen=True)
class Dangling:
    file: str  # the citing file, relative to the root
    where: str  # "line N" or "cell C, line N" (notebooks)
    name: str  # the name as written

    def __str__(self) -> str:
        return f"{self.file}, {self.where}: {self.name} names no file of the repository"


def repo_files(root: Path) -> set[str]:
    """Paths (posix, relative to ``root``) of the tree: git's tracked and not-ignored files when ``root``
    is a git checkout, else every file outside hidden and cache folders."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard",
                              "-z"], capture_output=True, check=True).stdout.decode()
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True,
                             check=True).stdout.decode().strip()
        if Path(top).resolve() == root.resolve():
            return {p for p in out.split("\0") if p and (root / p).is_file()}
    except (OSError, subprocess.CalledProcessError):
        pass
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(root).parts[:-1])}


def text_lines(path: Path) -> list[tuple[str, str]]:
    """(where, line) for every line of the file's text; for a notebook, of its cells' sources."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        out = []
        for c, cell in enumerate(cells, 1):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            out += [(f"cell {c}, line {n}", line) for n, line in enumerate(source.splitlines(), 1)]
        return out
    text = path.read_text(encoding="utf-8", errors="replace")
    return [(f"line {n}", line) for n, line in enumerate(text.splitlines(), 1)]


def citations(line: str) -> list[str]:
    """The Markdown file names written in one line, URLs left out."""
    urls = [m.span() for m in URL.finditer(line)]
    return [m.group() for m in MD_NAME.finditer(line)
            if not any(a <= m.start() < b for a, b in urls)]


def resolves(name: str, citing: str, files: set[str]) -> bool:
    """Whether ``name``, cited in the file ``citing`` (relative to the root), names a file of ``files``."""
    for base in (posixpath.dirname(citing), ""):
        path = posixpath.normpath(posixpath.join(base, name))
        if path in files:  # a path that leaves the root normalises to "../..." and is never in files
            return True
    bare = name
    while bare.startswith(("./", "../")):
        bare = bare.split("/", 1)[1]
    bare = posixpath.normpath(bare.lstrip("/"))
    return not bare.startswith("..") and any(f == bare or f.endswith("/" + bare) for f in files)


def is_scanned(path: str) -> bool:
    """``trmlab/**/*.py``, ``scripts/*``, ``bench/*.py``, ``notebooks/*.ipynb``, ``README.md``,
    ``docs/**/*.md``, ``zoo/*/card.md`` (tests/ is not scanned)."""
    parts = path.split("/")
    top, name = parts[0], parts[-1]
    return ((top == "trmlab" and name.endswith(".py"))
            or (top == "scripts" and len(parts) == 2)
            or (top == "bench" and len(parts) == 2 and name.endswith(".py"))
            or (top == "notebooks" and len(parts) == 2 and name.endswith(".ipynb"))
            or path == "README.md"
            or (top == "docs" and name.endswith(".md"))
            or (top == "zoo" and len(parts) == 3 and name == "card.md"))


def scanned_files(files: set[str]) -> list[str]:
    return sorted(f for f in files if is_scanned(f))


def dangling_citations(root: Path, allowed: dict[str, str] | None = None) -> list[Dangling]:
    """Every citation of the scanned files that resolves to no file of the repository and is not in
    ``allowed`` (matched on the name as written or its last component)."""
    allowed = ALLOWED if allowed is None else allowed
    files = repo_files(root)
    bad = []
    for rel in scanned_files(files):
        for where, line in text_lines(root / rel):
            for name in citations(line):
                if name in allowed or posixpath.basename(name) in allowed:
                    continue
                if not resolves(name, rel, files):
                    bad.append(Dangling(rel, where, name))
    return bad


# ------------------------------------------------------------------------------------------------ tests
def test_every_cited_markdown_file_exists():
    bad = dangling_citations(REPO)
    assert not bad, "dangling Markdown citations:\n" + "\n".join(map(str, bad))


def test_the_scan_covers_code_notebooks_and_docs():
    scanned = set(scanned_files(repo_files(REPO)))
    for expected in ("trmlab/model/layers.py", "trmlab/train/optim.py", "README.md", "docs/reference.md",
                     "docs/model.md", "notebooks/03-evaluate.ipynb", "scripts/quickstart.sh",
                     "zoo/sudoku4/card.md"):
        assert expected in scanned, expected
    assert not any(f.startswith("tests/") for f in scanned)


def test_allow_list_entries_have_reasons_and_are_needed():
    files = repo_files(REPO)
    for name, reason in ALLOWED.items():
        assert reason.strip(), f"ALLOWED[{name!r}] needs a reason"
        assert not any(posixpath.basename(f) == posixpath.basename(name) for f in files), \
            f"{name} exists in the repository: drop it from ALLOWED"


def test_reference_citations_point_into_the_repository():
    """The modules that follow the reference cite docs/reference.md, which is in the repository."""
    assert (REPO / "docs" / "reference.md").is_file()
    for rel in ("trmlab/model/layers.py", "trmlab/model/act.py", "trmlab/model/embedding.py",
                "trmlab/train/optim.py", "trmlab/train/trainer.py", "trmlab/train/losses.py",
                "trmlab/eval/metrics.py"):
        assert "docs/reference.md section" in (REPO / rel).read_text(), rel


# -------------------------------------------------------------------------------- the checker on its own
def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def planted(tmp_path):
    """A small tree outside git, with a file outside it that a ``../`` citation could reach."""
    (tmp_path / "outside.md").write_text("not in the repository\n")
    root = tmp_path / "repo"
    _write(root, "docs/guide.md", "# Guide\nSee [cli](cli.md) and `docs/cli.md` and "
                                  "https://example.org/other/missing.md for more.\n")
    _write(root, "docs/cli.md", "# CLI\n")
    _write(root, "zoo/a/card.md", "# card\n")
    _write(root, "README.md", "[guide](docs/guide.md), [card](zoo/a/card.md)\n")
    _write(root, "trmlab/mod.py", '"""Writes ``card.md`` (docs/cli.md section 2)."""\nX = "guide.md"\n')
    return root


def test_checker_accepts_relative_root_and_anywhere_names(planted):
    assert dangling_citations(planted, allowed={}) == []


def test_checker_names_file_line_and_missing_name(planted):
    _write(planted, "docs/guide.md", "# Guide\nfine: [cli](cli.md)\nbad: see design/trm-notes.md section 1.2\n")
    _write(planted, "trmlab/mod.py", '"""Model.\n\nAs in missing-spec.md, section 3.\n"""\n')
    _write(planted, "notebooks/n.ipynb", json.dumps(
        {"cells": [{"cell_type": "markdown", "source": ["# N\n", "see [x](../docs/nope.md)\n"]}]}))
    bad = dangling_citations(planted, allowed={})
    assert {(d.file, d.where, d.name) for d in bad} == {
        ("docs/guide.md", "line 3", "design/trm-notes.md"),
        ("trmlab/mod.py", "line 3", "missing-spec.md"),
        ("notebooks/n.ipynb", "cell 1, line 2", "../docs/nope.md"),
    }
    assert any(str(d).startswith("docs/guide.md, line 3: design/trm-notes.md") for d in bad)


def test_checker_rejects_a_path_that_leaves_the_repository(planted):
    _write(planted, "docs/model.md", "Described in `../../outside.md` and `../elsewhere/design/outside.md`.\n")
    bad = dangling_citations(planted, allowed={})
    assert [d.name for d in bad] == ["../../outside.md", "../elsewhere/design/outside.md"]


def test_checker_allow_list(planted):
    _write(planted, "trmlab/mod.py", 'NAME = "report.md"  # written per run\n')
    assert [d.name for d in dangling_citations(planted, allowed={})] == ["report.md"]
    assert dangling_citations(planted, allowed={"report.md": "written into each run folder"}) == []
