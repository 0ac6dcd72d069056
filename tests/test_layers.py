"""The one-way import order of the package, checked on the source.

Layers, lowest first (README "Layout and design", docs/contracts.md)::

    config/io -> data -> model -> eval -> train -> trace -> viz -> workbench -> cli

A module may import from its own layer and from layers below it, never from a layer above it. Every
import counts: at the top of a file, inside a function, behind ``if TYPE_CHECKING``. Our own modules
are never imported inside ``try`` (an import error there would be hidden).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "trmlab"

LAYERS = ["config/io", "data", "model", "eval", "train", "trace", "viz", "workbench", "cli"]
#: first name under ``trmlab`` -> layer
LAYER_OF = {"__init__": "config/io", "config": "config/io", "io": "config/io", "machine": "config/io", "data": "data", "model": "model",
            "eval": "eval", "train": "train", "trace": "trace", "viz": "viz", "workbench": "workbench",
            "cli": "cli"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package).with_suffix("").parts
    return LAYER_OF[rel[0]]


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The trmlab modules an import statement reaches (``trmlab.x.y``), relative imports resolved."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == "trmlab" or a.name.startswith("trmlab.")]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    if prefix != "trmlab" and not prefix.startswith("trmlab."):
        return []
    if prefix == "trmlab":  # from trmlab import data / from .. import config: the names are modules
        return [f"trmlab.{a.name}" for a in node.names]
    return [prefix]


def _target_layer(target: str) -> str | None:
    parts = target.split(".")
    if len(parts) == 1:  # `import trmlab`: the package itself
        return LAYER_OF["__init__"]
    return LAYER_OF.get(parts[1])


def _violations(path: Path, package: Path = PACKAGE) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    module, own = _module_name(path, package), _layer(path, package)
    rel = path.relative_to(package.parent)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        for target in _targets(node, module, path.name == "__init__.py"):
            layer = _target_layer(target)
            if layer is None:
                out.append(f"{rel}:{node.lineno}: `{ast.unparse(node)}` reaches {target}, which has no layer "
                           f"(add it to LAYER_OF in tests/test_layers.py)")
            elif LAYERS.index(layer) > LAYERS.index(own):
                out.append(f"{rel}:{node.lineno}: `{ast.unparse(node)}`: {own} imports from {layer}, a layer "
                           f"above it (order: {' -> '.join(LAYERS)})")
    return out


def test_every_module_has_a_layer():
    unknown = sorted({p.relative_to(PACKAGE).parts[0] for p in _modules()}
                     - {f"{k}.py" for k in LAYER_OF} - set(LAYER_OF))
    assert not unknown, f"trmlab/{unknown}: no layer assigned; add it to LAYER_OF in tests/test_layers.py"


def test_imports_run_one_way():
    found = [v for p in _modules() for v in _violations(p)]
    assert not found, "imports against the layer order:\n" + "\n".join(found)


def test_no_try_around_own_imports():
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        module = _module_name(path)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Try):
                continue
            for stmt in node.body:
                for inner in ast.walk(stmt):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)) and _targets(
                            inner, module, path.name == "__init__.py"):
                        found.append(f"{path.relative_to(PACKAGE.parent)}:{inner.lineno}: `{ast.unparse(inner)}` "
                                     f"inside try (line {node.lineno}): an error in our own module would be hidden")
    assert not found, "\n".join(found)


# -- the checker itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("source, module, package, expected", [
    ("from ..train.trainer import train", "trmlab.eval.evaluate", False, ["trmlab.train.trainer"]),
    ("from . import arc", "trmlab.data.view", False, ["trmlab.data"]),
    ("from .recorder import trace", "trmlab.trace", True, ["trmlab.trace.recorder"]),
    ("from .. import config, viz", "trmlab.data.view", False, ["trmlab.config", "trmlab.viz"]),
    ("import trmlab.viz.grids as g", "trmlab.data.view", False, ["trmlab.viz.grids"]),
    ("import numpy as np", "trmlab.data.view", False, []),
    ("from trmlab.workbench import notebook", "trmlab.viz.session", False, ["trmlab.workbench"]),
])
def test_import_targets(source, module, package, expected):
    assert _targets(ast.parse(source).body[0], module, package) == expected


def test_a_violation_inside_a_function_is_named(tmp_path):
    pkg = tmp_path / "trmlab"
    (pkg / "data").mkdir(parents=True)
    bad = pkg / "data" / "view.py"
    bad.write_text("import numpy\n\n\ndef draw():\n    from trmlab.viz.grids import draw_panel\n"
                   "    from ..eval import metrics\n    from .format import DatasetError\n")
    found = _violations(bad, pkg)
    assert len(found) == 2, found
    assert found[0].startswith("trmlab/data/view.py:5: `from trmlab.viz.grids import draw_panel`: data imports from viz")
    assert found[1].startswith("trmlab/data/view.py:6: `from ..eval import metrics`: data imports from eval")
