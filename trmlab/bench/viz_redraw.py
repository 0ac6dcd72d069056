"""Redraw time of the recursion views on a 30x30 maze and an ARC task (docs/recursion.md).

    python -m trmlab.bench.viz_redraw [--browser] [--json bench/viz_redraw.json]

Measures, per step of the trace (median and max over the steps):
* ``frame``: computing the step's dynamic traces (two grids, cursor, PCA points) in Python;
* ``player``: the live player's slider callback (frame + pushing it into the plotly FigureWidget);
* ``browser`` (with --browser, needs /usr/bin/chromium + Playwright): the exported HTML in headless
  Chromium, Plotly.animate to the step with redraw, until the promise resolves.
Models are tiny and untrained (the views cost the same whatever the weights).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch

from trmlab.trace import arc_spec, maze_spec, trace
from trmlab.trace.tiny import random_batch, tiny_model
from trmlab.viz import TraceView, export_html
from trmlab.viz.player import Player


def _stats(xs):
    return {"median_ms": round(1000 * statistics.median(xs), 2), "max_ms": round(1000 * max(xs), 2), "steps": len(xs)}


def bench_browser(path: str, steps: int) -> dict:
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = b.new_page(viewport={"width": 1120, "height": 980})
        page.goto("file://" + path)
        page.wait_for_selector(".js-plotly-plot .main-svg")
        times = page.evaluate("""async (n) => {
            const gd = document.querySelector('.js-plotly-plot');
            const names = gd._transitionData._frames.map(f => f.name).slice(0, n);
            const out = [];
            for (const name of names) {
              const t0 = performance.now();
              await Plotly.animate(gd, [name], {frame: {duration: 0, redraw: true}, transition: {duration: 0}, mode: 'immediate'});
              out.push(performance.now() - t0);
            }
            return out; }""", steps)
        b.close()
    return _stats([t / 1000 for t in times])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--browser", action="store_true", help="also time the exported HTML in headless Chromium")
    ap.add_argument("--json", default="", help="write the results here")
    ap.add_argument("--hidden", type=int, default=64)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    for task in (maze_spec(30), arc_spec()):
        model = tiny_model(task, hidden=args.hidden, n_recursions=3, n_latent_steps=4, n_supervision=4)
        t0 = time.perf_counter()
        tr = trace(model, random_batch(task, 1, seed=0), task=task)
        trace_s = time.perf_counter() - t0
        view = TraceView(tr)
        frame = []
        for p in range(len(view)):
            t = time.perf_counter()
            view.frame_updates(p)
            frame.append(time.perf_counter() - t)
        res = {"records": len(tr), "trace_s": round(trace_s, 2), "frame": _stats(frame)}
        player = Player(tr)
        if player.fig is not None:
            ts = []
            for p in range(len(view)):
                t = time.perf_counter()
                player.slider.value = p
                ts.append(time.perf_counter() - t)
            res["player"] = _stats(ts[1:])
        if args.browser:
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "a.html")
                export_html(tr, path, full_html=True)
                res["html_mb"] = round(os.path.getsize(path) / 2 ** 20, 1)
                res["browser"] = bench_browser(path, 40)
        results[task.name] = res
        print(task.name, json.dumps(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
