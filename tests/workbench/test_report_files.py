"""The files `trmlab report` writes: the shared scripts in reports/assets, standalone reports, FigureWidgets
drawn by the page's plotly.js, and an index with one row per run (no browser, no papermill)."""
import json
from dataclasses import asdict

import nbformat
import pytest

from trmlab.workbench import reports

FONTS = [name for name in reports.WIDGET_JS if name.endswith(".woff2")]


@pytest.fixture
def widget_js(tmp_path, monkeypatch):
    """A stand-in for the npm widget scripts (tiny files under the real names)."""
    d = tmp_path / "widget-js"
    d.mkdir()
    (d / "require.js").write_text("/* require.js stand-in */ var requirejs, require, define;")
    (d / "embed-amd.js").write_text('/* embed-amd stand-in */ var font = n.p+"%s";' % FONTS[0])
    for font in FONTS:
        (d / font).write_bytes(b"wOF2 stand-in")
    monkeypatch.setattr(reports, "widget_js_dir", lambda: d)
    return d


def _figure_widget_model(esm: str) -> dict:
    return {"model_name": "AnyModel", "model_module": "anywidget", "model_module_version": "~0.9.*",
            "state": {"_esm": esm, "_widget_data": [{"type": "scatter", "y": [1, 3, 2]}],
                      "_widget_layout": {"title": {"text": "live"}}, "_config": {},
                      "_py2js_relayout": {}, "_js2py_relayout": {}}}


def _notebook(path, figure_widget_esm: str = ""):
    """A saved notebook with a plotly figure and a slider widget (and a FigureWidget when asked)."""
    nb = nbformat.v4.new_notebook()
    fig = {"data": [{"type": "scatter", "x": [1, 2, 3], "y": [3, 1, 2]}], "layout": {"title": {"text": "loss"}}}
    outputs = [nbformat.v4.new_output("display_data", data={"application/vnd.plotly.v1+json": fig,
                                                             "text/plain": "Figure"})]
    state = {"aaaaaaaa1": {"model_name": "IntSliderModel", "model_module": "@jupyter-widgets/controls",
                           "model_module_version": "2.0.0", "state": {"value": 3}}}
    ids = ["aaaaaaaa1"]
    if figure_widget_esm:
        state["ffffffff1"] = _figure_widget_model(figure_widget_esm)
        ids.append("ffffffff1")
    for mid in ids:
        outputs.append(nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": mid, "version_major": 2, "version_minor": 0},
            "text/plain": "a widget"}))
    nb.cells = [nbformat.v4.new_code_cell("show()", outputs=outputs)]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0, "state": state}}
    nbformat.write(nb, str(path))
    return path


def _script_srcs(html: str) -> list:
    import re

    return re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)


def test_reports_share_one_copy_of_their_scripts(tmp_path, widget_js):
    from plotly.offline import get_plotlyjs

    out = tmp_path / "reports"
    nb = _notebook(tmp_path / "a.ipynb")
    assert reports.export_report(nb, out / "a.html") is True
    assets = sorted(p.name for p in (out / "assets").iterdir())
    assert len(assets) == 4, assets
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "assets").iterdir()}
    assert reports.export_report(nb, out / "b.html") is True  # the second report writes nothing new
    assert {p.name: p.stat().st_mtime_ns for p in (out / "assets").iterdir()} == stamps
    for name in ("a.html", "b.html"):
        html = (out / name).read_text()
        srcs = _script_srcs(html)
        assert [s.split("/")[0] for s in srcs] == ["assets"] * 4
        assert [s.split("/")[1].split("-")[0] for s in srcs] == ["plotly", "require", "anywidget", "embed"]
        assert sorted(s.split("/")[1] for s in srcs) == assets
        assert srcs[1] == "assets/require-2.3.8.js" and srcs[0].endswith(".min.js")
        # the order of the inline scripts of before: config, plotly, require.js, anywidget; renderer at the end
        pos = [html.index("window.PlotlyConfig")] + [html.index(f'src="{s}"') for s in srcs]
        assert pos == sorted(pos) and html.index("widget-view+json") < pos[-1]
        assert get_plotlyjs()[:2000] not in html and "require.js stand-in" not in html
        assert len(html) < 500_000
    assert (out / "assets" / srcs[0].split("/")[1]).read_text() == get_plotlyjs()
    renderer = (out / "assets" / srcs[3].split("/")[1]).read_text()
    assert "data:font/woff2;base64," in renderer  # fonts inlined into the shared renderer
    assert 'define("anywidget"' in (out / "assets" / srcs[2].split("/")[1]).read_text()


def test_standalone_report_has_everything_inline(tmp_path, widget_js):
    from plotly.offline import get_plotlyjs

    out = tmp_path / "reports"
    assert reports.export_report(_notebook(tmp_path / "a.ipynb"), out / "a.html", standalone=True) is True
    html = (out / "a.html").read_text()
    assert not (out / "assets").exists()
    assert 'src="assets/' not in html and _script_srcs(html) == []
    assert get_plotlyjs()[:2000] in html and "require.js stand-in" in html and 'define("anywidget"' in html
    assert "data:font/woff2;base64," in html


def test_a_new_script_never_replaces_one_of_the_same_name(tmp_path):
    assert reports.write_asset(tmp_path, "x-1.0", ".js", "one") == "x-1.0.js"
    assert reports.write_asset(tmp_path, "x-1.0", ".js", "one") == "x-1.0.js"
    other = reports.write_asset(tmp_path, "x-1.0", ".js", "two")
    assert other.startswith("x-1.0-") and other.endswith(".js")
    assert (tmp_path / "x-1.0.js").read_text() == "one" and (tmp_path / other).read_text() == "two"
    assert reports.write_asset(tmp_path, "x-1.0", ".js", "two") == other
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x-1.0.js", other])  # no temporary left


def test_figure_widgets_are_drawn_by_the_pages_plotly(tmp_path, widget_js):
    big = "/* plotly's widget bundle */" + "x" * 200_000
    nb = nbformat.read(str(_notebook(tmp_path / "w.ipynb", figure_widget_esm=big)), as_version=4)
    assert reports.static_figure_widgets(nb) == 1
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    assert state["ffffffff1"]["state"]["_esm"] == reports.STATIC_FIGURE_ESM
    assert state["aaaaaaaa1"]["state"] == {"value": 3}
    # a notebook whose only plotly figure is a FigureWidget still gets plotly.js
    nb2 = _notebook(tmp_path / "w2.ipynb", figure_widget_esm=big)
    raw = nbformat.read(str(nb2), as_version=4)
    raw.cells[0].outputs = raw.cells[0].outputs[1:]
    nbformat.write(raw, str(nb2))
    reports.export_report(nb2, tmp_path / "out" / "w2.html")
    html = (tmp_path / "out" / "w2.html").read_text()
    assert big[:100] not in html and "drawn with the page's plotly.js" in html
    assert _script_srcs(html)[0].startswith("assets/plotly-")


def _sidecar(out, name, run, notebook, date, task="sudoku 4x4", status="ok", in_run=True, **extra):
    (out / f"{name}.html").write_text("<html></html>")
    info = dict(html=f"{name}.html", title=f"{run} · {notebook}", notebook=notebook, run=run, task=task,
                preset="cpu_tiny", status=status, error="", date=date, steps=None, wall_minutes=None,
                n_params=None, exact_accuracy=None, exact_accuracy_low=None, exact_accuracy_high=None,
                eval_supervision=None, eval_file="", eval_exact_accuracy=None, eval_exact_accuracy_low=None,
                eval_exact_accuracy_high=None, eval_n_supervision=None, eval_checkpoint=None,
                eval_checkpoint_choice=None, widgets=False, in_run=in_run, standalone=False)
    info.update(extra)
    (out / f"{name}.json").write_text(json.dumps(info))


def test_the_index_has_one_row_per_run_with_a_link_to_each_report(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    _sidecar(out, "a-02-train", "runs/a", "02-train", "2025-01-01T10:00:00", steps=400, wall_minutes=2.5,
             n_params=12345, exact_accuracy=0.5, exact_accuracy_low=0.4, exact_accuracy_high=0.6, eval_supervision=16)
    _sidecar(out, "a-03-evaluate", "runs/a", "03-evaluate", "2025-01-01T11:00:00", status="failed", steps=400,
             eval_exact_accuracy=0.75, eval_exact_accuracy_low=0.7, eval_exact_accuracy_high=0.8, eval_n_supervision=16)
    _sidecar(out, "a-04-recursion", "runs/a", "04-recursion", "2025-01-01T12:00:00")
    _sidecar(out, "b-02-train", "runs/b", "02-train", "2025-02-01T10:00:00", task="maze 30x30", steps=50)
    _sidecar(out, "notebooks-scratch", "notebooks", "scratch", "2024-12-01T10:00:00", task="", in_run=False)
    _sidecar(out, "notebooks-other", "notebooks", "other", "2024-12-02T10:00:00", task="", in_run=False)
    (out / "gone.json").write_text(json.dumps({"html": "gone.html", "title": "x", "date": "2026"}))  # no html
    reports.write_index(out)
    page = (out / "index.html").read_text()
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    rows = [r for r in body.split("<tr")[1:]]
    assert len(rows) == 4  # run b, run a, two bare notebooks; newest first
    assert "runs/b" in rows[0] and "runs/a" in rows[1] and "other" in rows[2] and "scratch" in rows[3]
    a = rows[1]
    for name in ("a-02-train", "a-03-evaluate", "a-04-recursion"):
        assert f"href='{name}.html'" in a
    assert a.index("02-train</a>") < a.index("03-evaluate</a>") < a.index("04-recursion</a>")
    assert "(failed)" in a and "cpu_tiny" in a and "400" in a and "2.5" in a and "12,345" in a
    assert "50.0% [40.0, 60.0] @ 16 steps" in a and "75.0% [70.0, 80.0] @ 16 steps" in a
    assert "2025-01-01 12:00:00" in a  # the run's newest report
    assert "not in a run folder" in rows[2] and "gone.html" not in page
    # the task filter: a select of the tasks, hidden until its script shows it (no script: every row shows)
    assert "<select id=\"task-filter\">" in page and "id=\"task-filter-box\" hidden" in page
    for task in ("sudoku 4x4", "maze 30x30"):
        assert f"<option value='{task}'>" in page
    assert "data-task='maze 30x30'" in rows[0] and 'getAttribute("data-task")' in page
    assert "http" not in page.replace("http-equiv", "")


def test_sidecars_of_earlier_versions_still_load(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    old = {"html": "r-02-train.html", "title": "r · 02-train", "notebook": "02-train", "run": "runs/r",
           "task": "sudoku 4x4", "preset": "cpu_tiny", "status": "ok", "error": "", "date": "2024-05-01T10:00:00",
           "steps": 10, "wall_minutes": 1.0, "n_params": 100, "exact_accuracy": 0.25, "widgets": True}
    (out / "r-02-train.html").write_text("<html></html>")
    (out / "r-02-train.json").write_text(json.dumps(old))
    (out / "r-03-evaluate.html").write_text("<html></html>")
    (out / "r-03-evaluate.json").write_text(json.dumps(dict(old, html="r-03-evaluate.html", notebook="03-evaluate")))
    [e, _] = sorted(reports.read_index_entries(out), key=lambda e: e.html)
    assert e.in_run is None and e.standalone is None and e.eval_checkpoint_choice is None and e.exact_accuracy == 0.25
    assert asdict(e)["eval_exact_accuracy"] is None
    rows = reports.index_rows(reports.read_index_entries(out))
    assert len(rows) == 1 and [r.notebook for r in rows[0].reports] == ["02-train", "03-evaluate"]
    reports.write_index(out)
    page = (out / "index.html").read_text()
    assert "href='r-02-train.html'" in page and "href='r-03-evaluate.html'" in page and "25.0%" in page
