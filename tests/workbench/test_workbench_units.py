"""Small pieces of the workbench: grids, values, datasets on demand, report preparation."""
import json

import nbformat
import pytest

from trmlab.data.format import DatasetError
from trmlab.data import catalog as datasets
from trmlab.workbench import reports
from trmlab.workbench.execute import notebook_parameters, parse_value
from trmlab.workbench.sweep import SweepError, parse_grid, parse_seeds


def test_parse_value_and_grid():
    assert parse_value("3") == 3 and parse_value("1e-3") == 0.001 and parse_value("true") is True
    assert parse_value('{"a": [1, 2]}') == {"a": [1, 2]} and parse_value("cpu_sudoku4") == "cpu_sudoku4"
    assert parse_value("[1, 'x']") == [1, "x"] and parse_value("none") is None
    grid = parse_grid(["train.lr=1e-3,2e-3", 'overrides={"a": 1, "b": 2},{}', "preset=cpu_tiny"])
    assert grid == {"train.lr": [0.001, 0.002], "overrides": [{"a": 1, "b": 2}, {}], "preset": ["cpu_tiny"]}
    with pytest.raises(SweepError, match="expected KEY=V1,V2"):
        parse_grid(["lr"])
    with pytest.raises(SweepError, match="given twice"):
        parse_grid(["a=1", "a=2"])
    assert parse_seeds("0,1,2") == [0, 1, 2]
    with pytest.raises(SweepError, match="integers"):
        parse_seeds("0,x")


def test_parameters_are_read_even_with_equals_in_comments(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('run = ""   # "" = a tiny model\nsteps = 5  # a = b\nd = {"a": 1}')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, str(tmp_path / "n.ipynb"))
    params = notebook_parameters(tmp_path / "n.ipynb")
    assert list(params) == ["run", "steps", "d"]
    assert params["steps"]["default"] == "5" and params["run"]["help"] == '"" = a tiny model'


def test_ensure_dataset_builds_a_known_recipe_and_explains_the_rest(tmp_path, monkeypatch):
    monkeypatch.setitem(datasets.DATASETS, "tiny4", ("sudoku", dict(generate=12, size=4, num_aug=0,
                                                                    test_generate=4, seed=0)))
    folder = datasets.ensure_dataset(tmp_path / "tiny4", progress=False, echo=lambda *a: None)
    assert datasets.is_built(folder)
    assert datasets.ensure_dataset(tmp_path / "tiny4", echo=lambda *a: None) == folder  # reused
    with pytest.raises(DatasetError, match="--hub --subsample 1000"):
        datasets.ensure_dataset(tmp_path / "sudoku-extreme-1k-aug-1000")
    with pytest.raises(DatasetError, match="none is built on demand for 'mine'"):
        datasets.ensure_dataset(tmp_path / "mine")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a built dataset"):
        datasets.ensure_dataset(tmp_path / "junk")
    assert datasets.build_command("sudoku4") == ("trmlab data sudoku --out data/sudoku4 --generate 500 --size 4 "
                                                  "--num-aug 100 --test-generate 300 --seed 0")


def _widget_notebook(path):
    nb = nbformat.v4.new_notebook()
    shown = nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "aaaaaaaa1", "version_major": 2,
                                                     "version_minor": 0}, "text/plain": "IntSlider(value=3)"})
    cell = nbformat.v4.new_code_cell("w", outputs=[shown])
    nb.cells = [cell]

    def model(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
                "state": state}

    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0,
        "state": {"aaaaaaaa1": model("IntSliderModel", value=3, layout="IPY_MODEL_bbbbbbbb2"),
                  "bbbbbbbb2": model("LayoutModel"), "cccccccc3": model("IntSliderModel", value=9)}}}
    nbformat.write(nb, str(path))
    return path


def test_unshown_widget_models_are_dropped(tmp_path):
    nb = nbformat.read(str(_widget_notebook(tmp_path / "w.ipynb")), as_version=4)
    assert reports.prune_widget_state(nb) == 1
    assert set(nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]) == {"aaaaaaaa1", "bbbbbbbb2"}


def test_report_without_widget_scripts_says_so_and_asks_no_cdn(tmp_path, monkeypatch):
    monkeypatch.setattr(reports, "widget_js_dir", lambda: None)
    nb = _widget_notebook(tmp_path / "w.ipynb")
    assert reports.export_report(nb, tmp_path / "w.html") is False
    html = (tmp_path / "w.html").read_text()
    assert "widgets of this notebook are shown as text" in html and "IntSlider(value=3)" in html
    assert "cdn.jsdelivr" not in html and "cdnjs" not in html and "unpkg" not in html
    assert "widget-state+json" not in html


def test_install_widget_js_checks_the_hashes(tmp_path):
    import io
    import tarfile

    members: dict = {}
    for tgz, member in reports._TARBALLS.values():
        members.setdefault(tgz, []).append(member)
    for tgz, names in members.items():
        with tarfile.open(tmp_path / tgz, "w:gz") as tar:
            for member in names:
                data = b"not the real file"
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    with pytest.raises(reports.ReportError, match="SHA-256"):
        reports.install_widget_js(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
