"""HTML reports of executed notebooks that open with no network and no kernel, and ``reports/index.html``.

>>> report_runs(["runs/demo-sudoku4"])          # reports/demo-sudoku4-02-train.html, ... + reports/index.html
>>> export_report("runs/x/02-train.ipynb", "reports/x-02-train.html")
>>> report_runs(["runs/x"], standalone=True)    # each file self-contained, to send to someone

A report is nbconvert's JupyterLab-style HTML whose scripts all come from the machine:

* plotly figures: each figure's JSON is drawn by plotly.js, from the ``plotly`` package;
* ipywidgets (progress bars, sliders, players): the widget state saved by papermill, drawn by the
  ``@jupyter-widgets/html-manager`` embed script with require.js, both read from a local folder (see
  :func:`widget_js_dir`: ``scripts/setup.sh`` fetches them once with npm) and anywidget's module (for
  plotly's FigureWidget) from the ``anywidget`` package. Without that folder the report says so and
  widgets show their text form; plotly figures still render;
* no MathJax or Mermaid from a CDN: nothing on the page asks the network for anything.

By default the reports of one folder share one copy of those scripts in ``<folder>/assets`` (named by
version or content hash, so a newer script never replaces one an older report still loads) and load them
with relative ``<script src="assets/...">`` tags, which a browser follows from disk (``file://``).
``standalone=True`` inlines them instead: the file works alone, ~9 MB bigger.

A notebook that failed gets a red banner naming the failing cell, and the cell shows its traceback.
Next to each ``NAME.html`` a ``NAME.json`` holds what the index shows (run, task, preset, metrics,
status, date); ``index.html`` has one row per run (the run's reports linked by notebook), newest first.
"""
from __future__ import annotations

import copy
import datetime as _dt
import html
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional

from ..io import atomic_write, write_json_atomic
from ..paths import display_path as _rel, project_root, resolve
from .results import RunFolderError, is_run_folder, read_notebooks, read_run

TEMPLATES = Path(__file__).parent / "templates"
#: the widget scripts, their pinned npm packages and SHA-256 (checked by scripts/setup.sh when it fetches them)
WIDGET_JS = {
    "require.js": ("requirejs@2.3.8", "c1fc6b1d53af7522f78d664922abb32acac64ed0ecccb8f907f1e6fc7262563a"),
    "embed-amd.js": ("@jupyter-widgets/html-manager@1.0.15",
                     "ca87dff57c70ffb2658794fde0eab0e27e5f5472a1f5df7ab2b08e1039fc4b72"),
    # the icon fonts the widget styles load (Font Awesome, Lato), inlined into the script at export
    "1551f4f60c37af51121f.woff2": ("@jupyter-widgets/html-manager@1.0.15",
                                   "9834b82ad26e2a37583d22676a12dd2eb0fe7c80356a2114d0db1aa8b3899537"),
    "7a3337626410ca2f4071.woff2": ("@jupyter-widgets/html-manager@1.0.15",
                                   "e42a88444448ac3d60549cc7c1ff2c8a9cac721034c073d80a14a44e79730cca"),
    "d878b0a6a1144760244f.woff2": ("@jupyter-widgets/html-manager@1.0.15",
                                   "8ea8791754915a898a3100e63e32978a6d1763be6df8e73a39d3a90d691cdeef"),
}
PLOTLY_MIME = "application/vnd.plotly.v1+json"


class ReportError(ValueError):
    """A report cannot be made; the message names the file."""


@dataclass
class ReportInfo:
    """What the index shows for one report (also saved as NAME.json next to NAME.html)."""

    html: str  # file name in the reports folder
    title: str
    notebook: str  # the notebook's stem, e.g. "03-evaluate"
    run: str  # the run folder
    task: str
    preset: str
    status: str  # ok | failed | unknown
    error: str
    date: str  # ISO time the notebook finished (or the report was written)
    steps: Optional[int]
    wall_minutes: Optional[float]
    n_params: Optional[int]
    exact_accuracy: Optional[float]  # training's last evaluation, all supervision steps
    exact_accuracy_low: Optional[float]
    exact_accuracy_high: Optional[float]
    eval_supervision: Optional[int]
    eval_file: str  # newest eval JSON of the run
    eval_exact_accuracy: Optional[float]
    eval_exact_accuracy_low: Optional[float]
    eval_exact_accuracy_high: Optional[float]
    eval_n_supervision: Optional[int]
    eval_checkpoint: Optional[str]
    eval_checkpoint_choice: Optional[str]
    widgets: bool  # widget state was embedded with its renderer
    # the notebook's folder is a run (a run folder, or a notebook executed there by papermill); False: a
    # bare notebook, shown on an index row of its own. None in sidecars from before it was recorded
    in_run: Optional[bool] = None
    standalone: Optional[bool] = None  # the scripts are inline (False: loaded from assets/)


# -- the widget scripts --------------------------------------------------------------------------

def widget_js_dir() -> Optional[Path]:
    """The folder holding ``require.js`` and ``embed-amd.js``: ``$TRMLAB_WIDGET_JS``, else
    ``<environment>/share/trmlab/widget-js`` (where scripts/setup.sh puts them), else the same under the
    project's ``.venv``; None when none has both files."""
    candidates = []
    if os.environ.get("TRMLAB_WIDGET_JS"):
        candidates.append(Path(os.environ["TRMLAB_WIDGET_JS"]))
    candidates += [Path(sys.prefix) / "share" / "trmlab" / "widget-js",
                   project_root() / ".venv" / "share" / "trmlab" / "widget-js"]
    for c in candidates:
        if all((c / f).is_file() for f in WIDGET_JS):
            return c
    return None


#: where each script is inside its npm tarball (``npm pack`` names the tarballs this way)
_TARBALLS = {name: ("jupyter-widgets-html-manager-1.0.15.tgz", f"package/dist/{name}") for name in WIDGET_JS}
_TARBALLS["require.js"] = ("requirejs-2.3.8.tgz", "package/require.js")


def install_widget_js(tarballs: str | os.PathLike, dest: Optional[str | os.PathLike] = None) -> Path:
    """Take ``require.js`` and ``embed-amd.js`` out of the npm tarballs in folder ``tarballs`` (from
    ``npm pack requirejs@2.3.8 @jupyter-widgets/html-manager@1.0.15``), check their SHA-256 and put them
    in ``dest`` (default ``<environment>/share/trmlab/widget-js``). Used by scripts/setup.sh."""
    import hashlib
    import tarfile

    dest = Path(dest) if dest else Path(sys.prefix) / "share" / "trmlab" / "widget-js"
    for name, (tgz, member) in _TARBALLS.items():
        path = Path(tarballs) / tgz
        if not path.is_file():
            raise ReportError(f"{path}: missing (npm pack {WIDGET_JS[name][0]})")
        with tarfile.open(path, "r:gz") as tar:
            try:
                data = tar.extractfile(member).read()
            except (KeyError, AttributeError):
                raise ReportError(f"{path}: has no {member}") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != WIDGET_JS[name][1]:
            raise ReportError(f"{path}: {member} has SHA-256 {digest}, expected {WIDGET_JS[name][1]}")
        atomic_write(dest / name, lambda f: f.write(data))
    return dest


def anywidget_module() -> str:
    """anywidget's AMD module (shipped by the ``anywidget`` package for the classic notebook), named
    ``anywidget`` so the html-manager finds it locally instead of asking a CDN."""
    from importlib import resources

    src = (resources.files("anywidget") / "nbextension" / "index.js").read_text()
    anonymous = 'define(["@jupyter-widgets/base"]'
    if anonymous not in src:
        raise ReportError("anywidget/nbextension/index.js: unexpected layout (no AMD define of the module)")
    head, _, tail = src.rpartition(anonymous)
    return head + 'define("anywidget", ["@jupyter-widgets/base"]' + tail


def widget_renderer(js_dir: Path) -> str:
    """embed-amd.js with its font files inlined as data: URLs (webpack would fetch them next to the script)."""
    import base64
    import re

    js = (js_dir / "embed-amd.js").read_text()
    for font in sorted(js_dir.glob("*.woff2")):
        url = "data:font/woff2;base64," + base64.b64encode(font.read_bytes()).decode("ascii")
        js = re.sub(r'\b\w+\.p\+"' + re.escape(font.name) + '"', json.dumps(url), js)
    return js


def _inline(js: str) -> str:
    """Script text safe inside an inline <script> element."""
    return js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


ASSETS = "assets"  #: the folder, next to the reports, of the scripts they share


def write_asset(folder: str | os.PathLike, stem: str, suffix: str, text: str) -> str:
    """Put ``text`` in ``folder/<stem><suffix>`` (atomically) unless that file already holds it, and
    return the file name. A different file of that name is never replaced (a report may load it): the
    text goes to ``<stem>-<first 12 hex digits of its SHA-256><suffix>`` instead."""
    import hashlib

    folder = Path(folder)
    data = text.encode("utf-8")
    names = [stem + suffix, f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}{suffix}"]
    for name in names:
        path = folder / name
        if path.is_file():
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return name
            continue
        atomic_write(path, lambda f: f.write(data))
        return name
    raise ReportError(f"{folder / names[1]}: exists with other content (not written by trmlab?); remove it")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _content_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def report_scripts(has_plotly: bool, js_dir: Optional[Path], assets: Optional[Path]) -> tuple[list, list]:
    """The (head, footer) scripts of a report, in load order: plotly's config and plotly.js; require.js and
    anywidget's named module; the widget renderer (footer). Each is ``{"inline": text}`` or ``{"src":
    "assets/NAME"}``: with ``assets`` (a folder) the big scripts are written there once (see
    :func:`write_asset`) and referenced by relative path; with None everything is inline."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    head, footer = [], []

    def add(where: list, stem: str, suffix: str, text: str):
        if assets is None:
            where.append({"inline": _inline(text)})
        else:
            where.append({"src": f"{ASSETS}/{write_asset(assets, stem, suffix, text)}"})

    if has_plotly:
        config = "window.PlotlyConfig = {MathJaxConfig: 'local'};\n"
        if assets is None:
            head.append({"inline": _inline(config + get_plotlyjs())})
        else:
            head.append({"inline": config})
            add(head, f"plotly-{get_plotlyjs_version()}", ".min.js", get_plotlyjs())
    if js_dir is not None:
        add(head, "require-" + WIDGET_JS["require.js"][0].rpartition("@")[2], ".js", (js_dir / "require.js").read_text())
        add(head, f"anywidget-{_version('anywidget')}", ".js", anywidget_module())
        renderer = widget_renderer(js_dir)  # fonts inlined: named by content, not by the npm version
        add(footer, f"embed-amd-{_content_hash(renderer)}", ".js", renderer)
    return head, footer


# -- preparing the notebook -----------------------------------------------------------------------

def _is_plotly_loader(output: dict) -> bool:
    """plotly's notebook-renderer output that loads plotly.js (the report has one inline copy in its head)."""
    data = output.get("data") or {}
    text = data.get("text/html", "")
    text = "".join(text) if isinstance(text, list) else text
    return PLOTLY_MIME not in data and "window.PlotlyConfig" in text and (
        "window.Plotly = Plotly" in text or "define('plotly'" in text)


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def prune_widget_state(nb) -> int:
    """Drop widget models no output shows (directly or through another shown model), e.g. a live
    figure that was replaced by a plain one when training ended. Returns how many were dropped."""
    import re

    bundle = (nb.metadata.get("widgets") or {}).get(WIDGET_STATE)
    if not bundle or "state" not in bundle:
        return 0
    state = bundle["state"]
    todo = [o["data"][WIDGET_VIEW]["model_id"] for c in nb.cells for o in c.get("outputs", [])
            if WIDGET_VIEW in (o.get("data") or {})]
    keep: set = set()
    ref = re.compile(r'IPY_MODEL_([0-9a-f]{8,})|"model_id":\s*"([0-9a-f]{8,})"')
    while todo:
        mid = todo.pop()
        if mid in keep or mid not in state:
            continue
        keep.add(mid)
        for a, b in ref.findall(json.dumps(state[mid])):
            todo.append(a or b)
    dropped = len(state) - len(keep)
    bundle["state"] = {k: v for k, v in state.items() if k in keep}
    return dropped


#: what a plotly ``FigureWidget`` of a saved notebook runs in a report instead of plotly's widget bundle
#: (``_esm``, ~5 MB: plotly.js again, with the code that syncs the figure with a kernel). With no kernel
#: the widget only shows the figure it held when the notebook was saved, which this draws the way the
#: bundle's FigureView does (height 360 unless set, resized with the window unless the width is set), with
#: the page's own plotly.js.
STATIC_FIGURE_ESM = """// trmlab: the saved state of a plotly FigureWidget, drawn with the page's plotly.js (no kernel here)
const TYPED = { int8: Int8Array, int16: Int16Array, int32: Int32Array, uint8: Uint8Array, uint16: Uint16Array,
                uint32: Uint32Array, float32: Float32Array, float64: Float64Array };
// what plotly's widget does to the saved traits: {dtype, shape, buffer} (a binary buffer) -> typed array
function revive(v) {
  if (Array.isArray(v)) return v.map(revive);
  if (v === "_undefined_") return undefined;
  if (v === null || typeof v !== "object" || ArrayBuffer.isView(v)) return v;
  const bytes = v.buffer || v.value;
  if (v.dtype in TYPED && v.shape && bytes && bytes.buffer) {
    const T = TYPED[v.dtype];
    return new T(bytes.buffer, bytes.byteOffset || 0, (bytes.byteLength || 0) / T.BYTES_PER_ELEMENT);
  }
  const out = {};
  for (const k of Object.keys(v)) out[k] = revive(v[k]);
  return out;
}
function render({ model, el }) {
  const data = revive(model.get("_widget_data") || []);
  const layout = revive(model.get("_widget_layout") || {});
  if (!layout.height) layout.height = 360;
  const config = Object.assign({}, model.get("_config") || {}, { editSelection: false });
  window.Plotly.newPlot(el, data, layout, config);
  const resize = () => { if (layout.width == null) window.Plotly.Plots.resize(el); };
  window.addEventListener("resize", resize);
  return () => { window.removeEventListener("resize", resize); window.Plotly.purge(el); };
}
export default { render };
"""


def _is_figure_widget(model: dict) -> bool:
    """A plotly FigureWidget's saved model (anywidget with plotly's figure traits)."""
    st = model.get("state") or {}
    return model.get("model_name") == "AnyModel" and isinstance(st.get("_esm"), str) and {
        "_widget_data", "_widget_layout", "_py2js_relayout", "_js2py_relayout"} <= set(st)


def static_figure_widgets(nb) -> int:
    """Swap the ``_esm`` of each plotly FigureWidget in ``nb``'s widget state for
    :data:`STATIC_FIGURE_ESM` (which needs plotly.js on the page). Returns how many were swapped."""
    bundle = (nb.metadata.get("widgets") or {}).get(WIDGET_STATE) or {}
    n = 0
    for model in (bundle.get("state") or {}).values():
        if isinstance(model, dict) and _is_figure_widget(model):
            model["state"]["_esm"] = STATIC_FIGURE_ESM
            n += 1
    return n


def prepare_notebook(nb, banner_html: str, keep_widgets: bool):
    """A copy of ``nb`` for export: plotly figures re-drawn as plain plotly.js calls (no require.js), the
    plotly loader outputs dropped, a banner cell first, widget state dropped unless ``keep_widgets`` (kept:
    models no output shows dropped, FigureWidgets drawn by the page's plotly.js, see
    :data:`STATIC_FIGURE_ESM`). Returns (notebook, needs plotly.js)."""
    import nbformat
    import plotly.io as pio

    nb = copy.deepcopy(nb)
    has_plotly = False
    for ci, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for oi, out in enumerate(cell.get("outputs", [])):
            if _is_plotly_loader(out):
                continue
            data = out.get("data") or {}
            if PLOTLY_MIME in data:
                has_plotly = True
                fig = data[PLOTLY_MIME]
                data["text/html"] = pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=False,
                                                auto_play=False, div_id=f"trmlab-plot-{ci}-{oi}")
            outputs.append(out)
        cell["outputs"] = outputs
    if not keep_widgets and "widgets" in nb.metadata:
        del nb.metadata["widgets"]
    elif keep_widgets:
        prune_widget_state(nb)
        has_plotly = static_figure_widgets(nb) > 0 or has_plotly
    banner = nbformat.v4.new_markdown_cell(banner_html)
    banner.metadata["tags"] = ["trmlab-banner"]
    nb.cells.insert(0, banner)
    return nb, has_plotly


# -- one report -----------------------------------------------------------------------------------

def export_report(notebook: str | os.PathLike, out_html: str | os.PathLike, title: str = "",
                  banner_html: str = "", standalone: bool = False) -> bool:
    """Write the HTML report of an executed notebook to ``out_html``. Its scripts go once into the
    ``assets`` folder next to it and are loaded from there, or with ``standalone`` are inline (a file
    that works alone). Returns True when its widget state was embedded with the widget renderer (False:
    no widgets, or the scripts are not installed)."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception as e:  # nbformat raises several kinds for a bad file
        raise ReportError(f"{notebook}: not a readable notebook ({type(e).__name__}: {e})") from None
    has_widgets = bool((nb.metadata.get("widgets") or {}).get("application/vnd.jupyter.widget-state+json"))
    js_dir = widget_js_dir() if has_widgets else None
    if has_widgets and js_dir is None:
        banner_html += ("\n\n<p><i>The interactive widgets of this notebook are shown as text: the widget "
                        "scripts are not installed (bash scripts/setup.sh fetches them with npm).</i></p>")
    prepared, has_plotly = prepare_notebook(nb, banner_html, keep_widgets=js_dir is not None)
    out_html = Path(out_html)
    head, footer = report_scripts(has_plotly, js_dir, None if standalone else out_html.parent / ASSETS)
    exporter = HTMLExporter(template_name="trmlab_report", extra_template_basedirs=[str(TEMPLATES)])
    resources = {"trmlab_head_js": head, "trmlab_footer_js": footer,
                 "metadata": {"name": title or notebook.stem}}
    body, _ = exporter.from_notebook_node(prepared, resources=resources)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out_html, lambda f: f.write(body.encode("utf-8")))
    return js_dir is not None


def _banner(nb_rec, run_summary, notebook: Path) -> str:
    lines = []
    who = f"<b>{html.escape(notebook.stem)}</b>"
    if run_summary is not None:
        s = run_summary
        bits = [f"run <code>{html.escape(_rel(s.path))}</code>"]
        if s.task:
            bits.append(f"task {html.escape(s.task)}")
        if s.preset:
            bits.append(f"preset {html.escape(s.preset)}")
        if s.steps:
            bits.append(f"{s.steps} optimiser steps")
        who += " · " + " · ".join(bits)
    if nb_rec is not None and nb_rec.end_time:
        who += f" · finished {html.escape(nb_rec.end_time[:19].replace('T', ' '))}"
    if nb_rec is not None and nb_rec.status == "failed":
        lines.append(f"<div class='trmlab-banner failed'><b>This notebook failed.</b> {who}<br>"
                     f"{html.escape(nb_rec.error or 'a cell raised an exception')} — the failing cell is "
                     f"shown below with its traceback.</div>")
    else:
        lines.append(f"<div class='trmlab-banner'>{who}</div>")
    return "\n".join(lines)


def report_notebook(notebook: str | os.PathLike, out: str | os.PathLike = "reports", name: str = "",
                    standalone: bool = False) -> ReportInfo:
    """The report of one executed notebook (its folder is taken as its run folder when it is one);
    ``standalone``: scripts inline instead of in ``<out>/assets`` (see :func:`export_report`)."""
    notebook = resolve(notebook)
    if not notebook.is_file():
        raise ReportError(f"{notebook}: no such notebook")
    run_dir = notebook.parent
    try:
        summary = read_run(run_dir)
    except RunFolderError:
        summary = None
    rec = read_notebooks(run_dir).get(notebook.stem)
    out = resolve(out)
    name = name or f"{run_dir.name}-{notebook.stem}"
    title = f"{run_dir.name} · {notebook.stem}"
    widgets = export_report(notebook, out / f"{name}.html", title=title, banner_html=_banner(rec, summary, notebook),
                            standalone=standalone)
    row = summary.row() if summary is not None else {}
    date = (rec.end_time if rec is not None and rec.end_time else
            _dt.datetime.fromtimestamp(notebook.stat().st_mtime).isoformat(timespec="seconds"))
    info = ReportInfo(
        html=f"{name}.html", title=title, notebook=notebook.stem, run=_rel(run_dir), task=row.get("task", ""),
        preset=row.get("preset", ""), status=rec.status if rec is not None else "unknown",
        error=rec.error if rec is not None else "", date=date[:19],
        steps=row.get("steps"), wall_minutes=row.get("wall_minutes"), n_params=row.get("n_params"),
        exact_accuracy=row.get("exact_accuracy"), exact_accuracy_low=row.get("exact_accuracy_low"),
        exact_accuracy_high=row.get("exact_accuracy_high"), eval_supervision=row.get("eval_supervision"),
        eval_file=row.get("eval_file", ""), eval_exact_accuracy=row.get("eval_exact_accuracy"),
        eval_exact_accuracy_low=row.get("eval_exact_accuracy_low"),
        eval_exact_accuracy_high=row.get("eval_exact_accuracy_high"),
        eval_n_supervision=row.get("eval_n_supervision"), eval_checkpoint=row.get("eval_checkpoint"),
        eval_checkpoint_choice=row.get("eval_checkpoint_choice"), widgets=widgets,
        in_run=summary is not None and (is_run_folder(run_dir) or (rec is not None and rec.status != "unknown")),
        standalone=standalone)
    write_json_atomic(out / f"{name}.json", asdict(info), indent=2, sort_keys=True)
    return info


def report_runs(paths: Iterable[str | os.PathLike], out: str | os.PathLike = "reports",
                notebooks: Optional[list[str]] = None, echo=print, standalone: bool = False) -> list[ReportInfo]:
    """Reports of the executed notebooks in each run folder (or of notebook files given directly),
    then ``index.html``. ``notebooks``: only these stems (default: every executed notebook);
    ``standalone``: self-contained files (scripts inline) instead of sharing ``<out>/assets``."""
    infos = []
    for p in paths:
        p = resolve(p)
        if p.is_file() and p.suffix == ".ipynb":
            files = [p]
        elif p.is_dir():
            files = sorted(p.glob("*.ipynb"))
            if notebooks:
                files = [f for f in files if f.stem in notebooks]
            if not files:
                raise ReportError(f"{p}: no executed notebook in this folder (run one with `trmlab run NOTEBOOK "
                                  f"--out {_rel(p)}`)")
        else:
            raise ReportError(f"{p}: no such run folder or notebook")
        for f in files:
            info = report_notebook(f, out, standalone=standalone)
            echo(f"wrote {_rel(resolve(out) / info.html)}" + (" (FAILED notebook)" if info.status == "failed" else ""))
            infos.append(info)
    index = write_index(out)
    echo(f"wrote {_rel(index)}")
    return infos


# -- the index ------------------------------------------------------------------------------------

def read_index_entries(out: str | os.PathLike = "reports") -> list[ReportInfo]:
    """Every report of the folder that still has its HTML, newest first. Sidecars written by earlier
    versions load too: a field they lack is None."""
    out = resolve(out)
    entries = []
    fields = set(ReportInfo.__dataclass_fields__)
    for f in sorted(out.glob("*.json")):
        try:
            d = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise ReportError(f"{f}: not valid JSON ({e})") from None
        if not isinstance(d, dict) or not {"html", "title", "date"} <= set(d):
            continue  # not one of ours
        if not (out / d["html"]).is_file():
            continue
        entries.append(ReportInfo(**{k: d.get(k) for k in fields}))
    entries.sort(key=lambda e: (e.date or "", e.html), reverse=True)
    return entries


@dataclass
class IndexRow:
    """One row of the index: a run and its reports (or the one report of a notebook outside any run)."""

    run: str  # the run folder ("" for a notebook outside any run)
    reports: list  # its ReportInfo, by notebook name
    info: ReportInfo  # the run's fields, each from the newest of its reports that has it

    @property
    def date(self) -> str:
        return max((r.date or "" for r in self.reports), default="")


def index_rows(entries: Iterable[ReportInfo]) -> list[IndexRow]:
    """Group reports by run folder, newest run first. A report with ``in_run`` False (a notebook not in
    a run folder) is a row of its own; sidecars without the field are grouped by their folder."""
    groups: dict[tuple, list[ReportInfo]] = {}
    for e in entries:
        key = ("file", e.html) if e.in_run is False else ("run", e.run or "")
        groups.setdefault(key, []).append(e)
    rows = []
    for (kind, key), reps in groups.items():
        newest = sorted(reps, key=lambda e: (e.date or "", e.html), reverse=True)
        merged = {}
        for name in ReportInfo.__dataclass_fields__:
            values = [getattr(e, name) for e in newest]
            merged[name] = next((v for v in values if v not in (None, "")), values[0])
        rows.append(IndexRow(run=key if kind == "run" else "", info=ReportInfo(**merged),
                             reports=sorted(reps, key=lambda e: (e.notebook or "", e.html))))
    rows.sort(key=lambda r: (r.date, r.run, r.reports[0].html), reverse=True)
    return rows


def _pct(v, lo=None, hi=None) -> str:
    if v is None:
        return ""
    s = f"{100 * v:.1f}%"
    if lo is not None and hi is not None:
        s += f" [{100 * lo:.1f}, {100 * hi:.1f}]"
    return s


def _metrics(e: ReportInfo) -> tuple[str, str]:
    """The index's two metric cells: training's last evaluation and the run's evaluation file."""
    train = _pct(e.exact_accuracy, e.exact_accuracy_low, e.exact_accuracy_high)
    if train and e.eval_supervision:
        train += f" @ {e.eval_supervision} steps"
    ev = _pct(e.eval_exact_accuracy, e.eval_exact_accuracy_low, e.eval_exact_accuracy_high)
    if ev and e.eval_n_supervision:
        ev += f" @ {e.eval_n_supervision} steps"
    if ev and e.eval_checkpoint:
        ev += f" · checkpoint {html.escape(Path(str(e.eval_checkpoint)).name)}"
        if e.eval_checkpoint_choice:
            ev += f" ({html.escape(str(e.eval_checkpoint_choice))})"
    return train, ev


#: shows the task filter and hides the rows of other tasks (with scripts off, every row shows)
_FILTER_JS = """(function () {
  var box = document.getElementById("task-filter-box"), sel = document.getElementById("task-filter");
  box.hidden = false;
  sel.addEventListener("change", function () {
    var rows = document.querySelectorAll("#reports tbody tr[data-task]");
    for (var i = 0; i < rows.length; i++)
      rows[i].hidden = sel.value !== "*" && rows[i].getAttribute("data-task") !== sel.value;
  });
})();"""


def _report_link(rep: ReportInfo) -> str:
    failed = rep.status == "failed"
    cls = " class='failed'" if failed else ""
    return (f"<a href='{html.escape(rep.html)}'{cls} title='{html.escape(rep.title or '')}'>"
            f"{html.escape(rep.notebook or rep.html)}</a>" + (" (failed)" if failed else ""))


def write_index(out: str | os.PathLike = "reports") -> Path:
    """``<out>/index.html``: one row per run, newest first (run, task, preset, steps, minutes, parameters,
    key metrics with their 95% intervals, a link to each of its reports, date), and a task filter (a small
    inline script; with scripts off every row shows). Nothing on it asks the network."""
    out = resolve(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, tasks = [], set()
    for r in index_rows(read_index_entries(out)):
        e = r.info
        tasks.add(e.task or "")
        train, ev = _metrics(e)
        size = f"{e.n_params:,}" if e.n_params else ""
        minutes = "" if e.wall_minutes is None else f"{e.wall_minutes:.1f}"
        where = (f"<code>{html.escape(r.run)}</code>" if r.run else
                 f"{html.escape(r.reports[0].title or r.reports[0].html)} <i>(not in a run folder)</i>")
        links = "<br>".join(_report_link(rep) for rep in r.reports)
        rows.append(
            f"<tr data-task='{html.escape(e.task or '')}'><td>{where}</td>"
            f"<td>{html.escape(e.task or '')}</td><td>{html.escape(e.preset or '')}</td>"
            f"<td>{e.steps or ''}</td><td>{minutes}</td><td>{size}</td><td>{train}</td><td>{ev}</td>"
            f"<td class='links'>{links}</td><td>{html.escape(r.date.replace('T', ' '))}</td></tr>")
    options = "".join(f"<option value='{html.escape(t)}'>{html.escape(t) if t else '(no task)'}</option>"
                      for t in sorted(tasks))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>trmlab reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 6px 10px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
td.links {{ white-space: nowrap; }}
.failed {{ color: #c62828; font-weight: bold; }}
p.note {{ color: #555; max-width: 70em; }}
</style></head><body>
<h1>trmlab reports</h1>
<p class="note">One row per run, newest first, with a link to the report of each of its notebooks. A report
is an executed notebook (papermill) exported to HTML with its figures and widgets; it opens with no network
and no kernel; it loads its scripts from the <code>assets</code> folder next to it (keep them together, or
make self-contained copies with <code>trmlab report --standalone</code>).
<i>training eval</i>: test exact accuracy at the last evaluation during training, with its 95% interval;
<i>evaluation</i>: the run's evaluation file (03-evaluate / trmlab eval) with the checkpoint it used and how
that checkpoint was chosen.</p>
<p id="task-filter-box" hidden><label>task: <select id="task-filter"><option value="*">all tasks</option>{options}</select></label></p>
<table id="reports"><thead><tr><th>run</th><th>task</th><th>preset</th>
<th>steps</th><th>minutes</th><th>parameters</th><th>training eval (exact)</th><th>evaluation (exact)</th>
<th>reports</th><th>date</th></tr></thead>
<tbody>
{chr(10).join(rows) if rows else "<tr><td colspan='10'>no reports yet: trmlab report RUN_DIR</td></tr>"}
</tbody></table>
<script>
{_FILTER_JS}
</script>
</body></html>
"""
    index = out / "index.html"
    atomic_write(index, lambda f: f.write(page.encode("utf-8")))
    return index
