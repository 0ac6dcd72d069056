"""The one-way import order of the package, checked on the source.

Layers, lowest first (README "Layout and design", docs/contracts.md)::

    config/io -> data -> model -> eval -> train -> zoo -> runs -> trace -> viz -> bench -> workbench -> cli

A module may import from its own layer and from layers below it, never from a layer above it. Every
import counts: at the top of a file, inside a function, behind ``if TYPE_CHECKING``. No two modules
import each other, directly or in a circle, inside one layer either (imports inside functions count).
Our own modules are never imported inside ``try`` (an import error there would be hidden), and one
imported inside a function says why on that line (a comment).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "trmlab"

LAYERS = ["config/io", "data", "model", "eval", "train", "zoo", "runs", "trace", "viz", "bench", "workbench", "cli"]
#: first name under ``trmlab`` -> layer
LAYER_OF = {"__init__": "config/io", "config": "config/io", "io": "config/io", "machine": "config/io",
            "paths": "config/io", "data": "data", "model": "model", "eval": "eval", "train": "train", "zoo": "zoo",
            "runs": "runs", "trace": "trace", "viz": "viz", "bench": "bench", "workbench": "workbench", "cli": "cli"}


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


def _module_file(name: str, package: Path) -> Path | None:
    """The file of module ``trmlab.x.y`` (a package: its ``__init__.py``), or None."""
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    for cand in (package / rel.with_suffix(".py") if rel.parts else None, package / rel / "__init__.py"):
        if cand is not None and cand.is_file():
            return cand
    return None


def _edges(path: Path, package: Path = PACKAGE) -> list[tuple[str, int, str]]:
    """(target module, line, statement) for every import of our own modules in ``path``, anywhere in it;
    ``from pkg import name`` reaches ``pkg.name`` when that is a module, else ``pkg``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module = _module_name(path, package)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        for target in _targets(node, module, path.name == "__init__.py"):
            names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else [None]
            for n in names:
                full = f"{target}.{n}" if n and _module_file(f"{target}.{n}", package) else target
                if full != module:
                    out.append((full, node.lineno, ast.unparse(node)))
    return out


def _cycles(package: Path = PACKAGE) -> list[str]:
    """Every circle of imports between modules of the package (strongly connected components of more
    than one module), each named with the imports that close it."""
    files = sorted(package.rglob("*.py"))
    graph: dict[str, dict[str, tuple[Path, int, str]]] = {}
    for f in files:
        mod = _module_name(f, package)
        graph.setdefault(mod, {})
        for target, line, stmt in _edges(f, package):
            if _module_file(target, package) is not None:
                graph[mod].setdefault(target, (f, line, stmt))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for comp in comps:
        ties = [f"    {graph[a][b][0].relative_to(package.parent)}:{graph[a][b][1]}: `{graph[a][b][2]}` ({a} -> {b})"
                for a in comp for b in comp if b in graph[a]]
        out.append(f"circle of {len(comp)} modules: {', '.join(comp)}\n" + "\n".join(ties))
    return out


def test_no_circle_of_imports():
    found = _cycles()
    assert not found, "modules that import each other (inside functions too):\n" + "\n".join(found)


def _uncommented_function_imports(path: Path, package: Path = PACKAGE) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    module = _module_name(path, package)
    out = []
    for fn in ast.walk(ast.parse(source, filename=str(path))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and _targets(node, module, path.name == "__init__.py"):
                text = "\n".join(lines[node.lineno - 1: node.end_lineno])
                comment = text.split("#", 1)[1].strip() if "#" in text else ""
                if len(comment) < 4:
                    out.append(f"{path.relative_to(package.parent)}:{node.lineno}: `{ast.unparse(node)}` inside "
                               f"{fn.name}() with no comment saying why (import it at the top of the file)")
    return out


def test_imports_inside_functions_say_why():
    found = sorted({v for p in _modules() for v in _uncommented_function_imports(p)})
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


def _plant(tmp_path, files: dict) -> Path:
    pkg = tmp_path / "trmlab"
    for rel, text in files.items():
        f = pkg / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return pkg


def test_a_planted_circle_inside_one_layer_is_named(tmp_path):
    pkg = _plant(tmp_path, {"__init__.py": "", "data/__init__.py": "",
                            "data/a.py": "from .b import g\n\n\ndef f():\n    return g()\n",
                            "data/b.py": "def g():\n    from .a import f  # lazy\n    return f\n",
                            "data/c.py": "from . import a\n"})
    found = _cycles(pkg)
    assert len(found) == 1, found
    assert found[0].startswith("circle of 2 modules: trmlab.data.a, trmlab.data.b")
    assert "trmlab/data/b.py:2: `from .a import f`" in found[0] and "trmlab/data/a.py:1" in found[0]


def test_no_circle_in_a_chain(tmp_path):
    pkg = _plant(tmp_path, {"__init__.py": "", "data/__init__.py": "", "data/a.py": "from .b import g\n",
                            "data/b.py": "from . import c\n", "data/c.py": "import numpy\n"})
    assert _cycles(pkg) == []


def test_an_import_inside_a_function_needs_its_reason(tmp_path):
    pkg = _plant(tmp_path, {"__init__.py": "", "data/__init__.py": "", "data/b.py": "",
                            "data/a.py": "def f():\n    from .b import g\n    from .b import h  # lazy: heavy\n"
                                         "    import numpy\n"})
    found = _uncommented_function_imports(pkg / "data" / "a.py", pkg)
    assert len(found) == 1 and found[0].startswith("trmlab/data/a.py:2: `from .b import g` inside f()"), found
