"""Run a parameterized notebook with papermill; the executed copy is kept in the run folder.

>>> run_notebook("02-train", {"steps": 200}, out="runs/s4")    # -> runs/s4/02-train.ipynb
>>> run_notebook("notebooks/03-evaluate.ipynb", out="runs/s4")  # `run` is set to runs/s4

* ``notebook``: a path, or a name in ``notebooks/`` (``02-train``, ``02-train.ipynb``, or a unique
  prefix such as ``02``);
* ``out``: the run folder. When the notebook has a ``run`` parameter and none is given, it is set to
  ``out`` -- unless ``out`` holds no run yet and the notebook opens a zoo model by default (a ``task``
  parameter and an empty default ``run``: 03 and 04), which it then does, ``out`` just keeping the
  executed copy; the executed notebook is written to ``<out>/<notebook stem>.ipynb``. Without ``out`` the folder is the
  ``run`` parameter given, else the notebook's default ``run``, else ``runs/<stem>-<time>``;
* ``params``: notebook parameters. A key that is not a parameter of the notebook but is a training
  configuration key (``train.lr``, ``n_latent_steps``, ``arch.L_cycles``...) goes into the notebook's
  ``overrides`` dict when it has one; anything else is an error that lists the parameters.

A cell that raises: :class:`NotebookFailed` (the CLI exits non-zero), and the executed notebook is
still written, showing the failing cell and its traceback.
"""
from __future__ import annotations

import ast
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..config import ConfigError, resolve_key
from ..paths import display_path as _display_path, project_root, resolve
from .results import is_run_folder

KERNEL = "trmlab"


class NotebookError(ValueError):
    """A notebook cannot be found or its parameters do not fit; the message says which."""


class NotebookFailed(RuntimeError):
    """A cell raised while the notebook ran. ``executed`` is the kept executed notebook."""

    def __init__(self, notebook: Path, executed: Path, cell: int, exec_count, ename: str, evalue: str):
        self.notebook, self.executed, self.cell = notebook, executed, cell
        self.ename, self.evalue = ename, evalue
        super().__init__(f"{notebook.name}: cell {cell} (In [{exec_count}]) raised {ename}: {evalue}; "
                         f"the executed notebook with the traceback is {executed}")


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def find_notebook(notebook: str | os.PathLike) -> Path:
    """A notebook path from a path or a name in ``notebooks/`` (see the module docstring)."""
    p = Path(notebook)
    if p.suffix == ".ipynb" and (p.is_file() or resolve(p).is_file()):
        return (p if p.is_file() else resolve(p)).resolve()
    folder = notebooks_dir()
    stem = p.name[:-6] if p.name.endswith(".ipynb") else p.name
    exact = folder / f"{stem}.ipynb"
    if exact.is_file():
        return exact
    matches = sorted(folder.glob(f"{stem}*.ipynb")) if folder.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(f.stem for f in folder.glob("*.ipynb"))) if folder.is_dir() else "none"
    if len(matches) > 1:
        raise NotebookError(f"notebook '{notebook}' is ambiguous: {', '.join(m.stem for m in matches)}")
    raise NotebookError(f"notebook '{notebook}' not found (a path to an .ipynb file, or one of: {known})")


def notebook_parameters(path: str | os.PathLike) -> dict[str, dict]:
    """The notebook's ``parameters`` cell: name -> {"default": source text of the value, "help": its comment}.

    Read with Python's parser (papermill's own inspection skips any line whose comment holds an ``=``)."""
    import nbformat

    path = Path(path)
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:  # nbformat raises several kinds for a bad file
        raise NotebookError(f"{path}: not a readable notebook ({type(e).__name__}: {e})") from None
    cell = next((c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return {}
    src = cell.source
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        raise NotebookError(f"{path}: its parameters cell is not valid Python (line {e.lineno}: {e.msg})") from None
    lines = src.splitlines()
    out = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name) and node.value is not None:
                line = lines[node.end_lineno - 1]
                help_text = line.split("#", 1)[1].strip() if "#" in line[node.end_col_offset:] else ""
                out[t.id] = {"default": ast.get_source_segment(src, node.value), "help": help_text}
    return out


def parse_value(text: Any) -> Any:
    """A command-line value as a Python literal when it is one (``3``, ``1e-3``, ``true``, ``[1, 2]``,
    ``{"a": 1}``), else the string itself."""
    if not isinstance(text, str):
        return text
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return text


def split_parameters(path: Path, params: Mapping[str, Any]) -> dict:
    """Check ``params`` against the notebook's parameters; config keys go into ``overrides``."""
    known = notebook_parameters(path)
    if not known:
        raise NotebookError(f"{path}: has no cell tagged 'parameters' (papermill needs one)")
    out: dict = {}
    extra: dict = {}
    for key, value in params.items():
        if key in known:
            out[key] = value
            continue
        if "overrides" in known and _is_config_key(key):
            extra[key] = value
            continue
        hint = " (or a training config key, which goes into 'overrides')" if "overrides" in known else ""
        raise NotebookError(f"{path.name}: unknown parameter '{key}'; its parameters are "
                            f"{', '.join(known)}{hint}")
    if extra:
        base = out.get("overrides")
        if base is None:
            base = _default_literal(known["overrides"]["default"], "overrides", path)
        if not isinstance(base, dict):
            raise NotebookError(f"{path.name}: parameter 'overrides' must be a dict, got {base!r}")
        out["overrides"] = {**base, **extra}
    return out


def _is_config_key(key: str) -> bool:
    try:
        resolve_key(key)
        return True
    except ConfigError:
        return False


def _default_literal(text: Optional[str], name: str, path: Path):
    try:
        return ast.literal_eval(text) if text else {}
    except (ValueError, SyntaxError):
        raise NotebookError(f"{path.name}: the default of '{name}' is not a literal ({text})") from None


def output_folder(path: Path, params: Mapping[str, Any], out: Optional[str | os.PathLike]) -> Path:
    if out:
        return resolve(out)
    if params.get("run"):
        return resolve(str(params["run"]))
    known = notebook_parameters(path)
    default = known.get("run", {}).get("default")
    if default:
        value = _default_literal(default, "run", path)
        if value:
            return resolve(str(value))
    return resolve(f"runs/{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}")


def check_kernel(kernel: str = KERNEL) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    if kernel not in KernelSpecManager().find_kernel_specs():
        raise NotebookError(f"no Jupyter kernel named '{kernel}': run `bash scripts/setup.sh` (it registers it), or "
                            f"`python -m ipykernel install --sys-prefix --name {kernel}` in the environment "
                            f"that has trmlab")


def run_notebook(notebook: str | os.PathLike, params: Optional[Mapping[str, Any]] = None,
                 out: Optional[str | os.PathLike] = None, kernel: str = KERNEL, log_output: bool = False,
                 progress: bool = True, echo: Callable = print) -> Path:
    """Execute ``notebook`` with papermill and return the executed notebook's path (see the module
    docstring). ``log_output``: copy the cells' printed output to this process's stdout/stderr as they
    run. Raises :class:`NotebookFailed` when a cell raises (the executed notebook is kept)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = find_notebook(notebook)
    params = split_parameters(path, dict(params or {}))
    folder = output_folder(path, params, out)
    known = notebook_parameters(path)
    if "run" in known and "run" not in params:
        default = _default_literal(known["run"]["default"], "run", path) if known["run"].get("default") else ""
        opens_zoo = not default and "task" in known  # 03/04: run "" = the zoo model of `task`
        if not opens_zoo or is_run_folder(folder):
            params["run"] = _display_path(folder)
    check_kernel(kernel)
    folder.mkdir(parents=True, exist_ok=True)
    executed = folder / f"{path.stem}.ipynb"
    echo(f"running {_display_path(path)} -> {_display_path(executed)}"
         + (f" with {', '.join(f'{k}={v!r}' for k, v in params.items())}" if params else ""))
    env_path = os.environ.get("PYTHONPATH", "")
    root = str(project_root())
    if (Path(root) / "trmlab").is_dir() and root not in env_path.split(os.pathsep):  # the kernel imports this checkout
        os.environ["PYTHONPATH"] = root + (os.pathsep + env_path if env_path else "")
    try:
        streams = dict(stdout_file=sys.stdout, stderr_file=sys.stderr) if log_output else {}
        papermill.execute_notebook(str(path), str(executed), parameters=params, kernel_name=kernel,
                                   cwd=root, progress_bar=progress, **streams)
    except PapermillExecutionError as e:
        raise NotebookFailed(path, executed, e.cell_index, e.exec_count, e.ename, e.evalue) from None
    finally:
        if env_path:
            os.environ["PYTHONPATH"] = env_path
        else:
            os.environ.pop("PYTHONPATH", None)
    return executed
