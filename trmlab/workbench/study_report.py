"""``reports/study-<task>.html``: the ablation table, the figures and a conclusion made from the numbers.

>>> write_study_report("runs/study-sudoku4")      # -> reports/study-sudoku4.html (+ its index row)
>>> conclusions(arm_values, paper)                 # the conclusion's sentences, from numbers alone

Every number on the page names the run folder (and file) it comes from: the table lists each run's value
with its folder, each figure's caption lists its runs. The conclusion compares the baseline (TRM) with
every other arm: the difference of test exact accuracy with its 95% interval (paired over seeds where
both arms have the same seeds, :func:`trmlab.eval.comparison.compare`), whether that interval settles
the paper's ordering (TRM ahead), and whether the two arms' own intervals overlap.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Mapping, Optional

from ..eval.comparison import Difference, Spread, compare, overlap, summarise
from ..io import atomic_write, write_json_atomic
from ..paths import display_path, resolve
from ..viz.animation import animation_figure
from ..viz.study import curve_figure, depth_figure, halting_figure
from .recursion import prepare
from .reports import ASSETS, ReportInfo, report_scripts, write_index
from .study import BASELINE, KEY_COMPARISONS, StudyData, read_study


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def conclusion_line(label: str, arm: str, d: Difference, base: Spread, other: Spread,
                    paper_base: Optional[float], paper_arm: Optional[float], base_name: str = BASELINE) -> str:
    """One sentence on baseline vs ``arm`` from the numbers."""
    where = (f"{base_name} {_pct(base.mean)} vs {arm} {_pct(other.mean)}: difference {_pts(d.diff)} points, "
             f"95% interval [{_pts(d.low)}, {_pts(d.high)}] ({d.method})")
    paper = ""
    if paper_base is not None and paper_arm is not None:
        paper = f" The paper: {paper_base:g} vs {paper_arm:g}."
    ov = ("the two arms' own intervals overlap" if overlap(base, other) else "the two arms' own intervals do not overlap")
    if d.verdict == "holds":
        verdict = f"the interval is above zero, so the paper's ordering ({base_name} ahead) holds at this scale; {ov}."
    elif d.verdict == "reversed":
        verdict = (f"the interval is below zero: the paper's ordering is reversed at this scale ({arm} ahead); "
                   f"{ov}.")
    else:
        lean = (f"{base_name} ahead, as in the paper" if d.diff > 0 else
                f"{arm} ahead, against the paper" if d.diff < 0 else "no difference")
        verdict = (f"the interval contains zero, so these runs do not settle the ordering (the point estimate has "
                   f"{lean}); {ov}.")
    return f"<b>{html.escape(label)}</b>: {html.escape(where)}; {html.escape(verdict)}{html.escape(paper)}"


def conclusions(values: Mapping[str, Mapping[int, float]], counts: Mapping[str, tuple],
                paper: Mapping[str, Optional[float]], labels: Optional[Mapping[str, str]] = None,
                base: str = BASELINE) -> list[str]:
    """The conclusion's sentences: the key comparisons first (:data:`KEY_COMPARISONS`), then every other
    arm. ``values``: arm -> {seed: test exact accuracy}; ``counts``: arm -> (right, puzzles) pooled over
    its runs (the interval of a one-run arm); ``paper``: arm -> the paper's figure (%)."""
    if base not in values or not values[base]:
        return [f"No finished run of the baseline arm '{base}': nothing to compare."]
    labels = dict(labels or {})
    order = [a for a, _ in KEY_COMPARISONS if a in values] + [a for a in values if a != base and
                                                             a not in dict(KEY_COMPARISONS)]
    names = dict(KEY_COMPARISONS)
    out = []
    bs = summarise(list(values[base].values()), counts.get(base))
    for arm in order:
        if not values.get(arm):
            out.append(f"<b>{html.escape(names.get(arm, labels.get(arm, arm)))}</b>: no finished run of '{arm}'.")
            continue
        d = compare(values[base], values[arm], counts.get(base) if len(values[base]) == 1 else None,
                    counts.get(arm) if len(values[arm]) == 1 else None)
        os_ = summarise(list(values[arm].values()), counts.get(arm))
        label = names.get(arm, f"TRM vs {labels.get(arm, arm)}")
        out.append(conclusion_line(label, arm, d, bs, os_, paper.get(base), paper.get(arm), base))
    return out


def first_solved(curve) -> Optional[int]:
    """The first optimiser step whose evaluation got a test puzzle right (None: none did)."""
    return next((int(step) for step, acc in curve if acc > 0), None)


def learning_sentence(curves: Mapping[str, list], steps: int, labels: Optional[Mapping[str, str]] = None) -> str:
    """Which arms never got a test puzzle right at any evaluation of their runs (``curves``: arm -> one
    training curve [(step, test exact accuracy)] per run), and when the others first did: at a fixed budget
    an arm at 0% throughout has not started to learn, so its gap to the baseline says how much later it
    learns here, not what it reaches."""
    labels = dict(labels or {})
    firsts = {a: [first_solved(c) for c in cs] for a, cs in curves.items() if cs}
    never = [a for a, fs in firsts.items() if all(f is None for f in fs)]
    started = {a: sorted(f for f in fs if f is not None) for a, fs in firsts.items() if a not in never}
    if not never:
        return ""
    first = "; ".join(f"{labels.get(a, a)} {', '.join(map(str, v))}" for a, v in started.items())
    return (f"Arms whose runs never got a test puzzle right at any evaluation in {steps} optimiser steps: "
            f"{', '.join(labels.get(a, a) for a in never)}. At this budget they had not started to solve puzzles, "
            f"so their gaps to the baseline measure how much later they learn on this task, not the accuracy they "
            f"would reach. The first evaluation with a puzzle right, per run (optimiser step): {first}.")


def summary_sentence(lines_verdicts: Mapping[str, str]) -> str:
    """How many of the paper's orderings hold / are reversed / are unresolved."""
    held = [a for a, v in lines_verdicts.items() if v == "holds"]
    rev = [a for a, v in lines_verdicts.items() if v == "reversed"]
    unres = [a for a, v in lines_verdicts.items() if v == "unresolved"]
    parts = [f"Of {len(lines_verdicts)} orderings of the paper (TRM ahead of each arm), {len(held)} hold at this scale"
             + (f" ({', '.join(held)})" if held else ""),
             f"{len(rev)} are reversed" + (f" ({', '.join(rev)})" if rev else ""),
             f"{len(unres)} are not settled by these runs" + (f" ({', '.join(unres)})" if unres else "")]
    return "; ".join(parts) + "."


def _verdicts(values, counts, base=BASELINE) -> dict[str, str]:
    out = {}
    for arm, v in values.items():
        if arm == base or not v or not values.get(base):
            continue
        out[arm] = compare(values[base], v, counts.get(base) if len(values[base]) == 1 else None,
                           counts.get(arm) if len(v) == 1 else None).verdict
    return out


def _fig_div(fig, div_id: str) -> str:
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, auto_play=False)


def _animation(data: StudyData, echo: Callable) -> tuple[str, str]:
    """(figure div, caption) of the TRM arm's recursion on a test puzzle the direct arm gets wrong."""
    arms = data.by_arm()
    trm, direct = arms.get(BASELINE, []), arms.get("direct", [])
    if not trm or not direct:
        return "", "No animation: it needs a finished run of both the TRM and the direct-prediction arm."
    t, d = trm[0], direct[0]
    wrong_direct = set(d.wrong)
    if not wrong_direct:
        return "", f"No animation: direct prediction ({display_path(d.run_dir)}) gets every test puzzle right."
    both = sorted(wrong_direct - set(t.wrong))
    index = both[0] if both else min(wrong_direct)
    rec = prepare(run=str(t.run_dir), pick="index", index=index, split="test", n_supervision=t.train_steps)
    fig = animation_figure(rec.trace, max_frames=200)
    how = "TRM gets it right" if both else "TRM gets it wrong too (no puzzle that only direct prediction misses)"
    echo(f"animation: test puzzle {index} of {display_path(t.run_dir)}")
    return (_fig_div(fig, "study-animation"),
            f"The recursion of {display_path(t.run_dir)} (checkpoint chosen on validation) on test puzzle {index}, "
            f"which direct prediction ({display_path(d.run_dir)}) gets wrong; {how}.")


def write_study_report(folder: str | os.PathLike, out: str | os.PathLike = "reports", echo: Callable = print,
                       animation: bool = True, standalone: bool = False) -> Path:
    """Write ``<out>/study-<task>.html`` (and its index sidecar) from the study folder's runs; returns it."""
    data = read_study(folder)
    st = data.study
    out = resolve(out)
    out.mkdir(parents=True, exist_ok=True)
    arms = data.by_arm()
    values = {a: {r.seed: r.accuracy for r in runs} for a, runs in arms.items()}
    counts = {a: (sum(r.right for r in runs), sum(r.puzzles for r in runs)) for a, runs in arms.items()}
    paper = {a.name: a.paper for a in st.arms}
    labels = {a.name: a.label for a in st.arms}

    rows = []
    for a in st.arms:
        runs = arms.get(a.name, [])
        paper_cell = (f"{a.paper:g}% <small>(paper, {html.escape(a.paper_source)})</small>"
                      if a.paper is not None else "")
        if not runs:
            rows.append(f"<tr><td>{html.escape(a.name)}</td><td>{html.escape(a.label)}</td>"
                        f"<td colspan=5><i>no finished run</i></td><td>{paper_cell}</td></tr>")
            continue
        sp = summarise([r.accuracy for r in runs], counts[a.name])
        each = "<br>".join(f"seed {r.seed}: {_pct(r.accuracy)} ({r.right}/{r.puzzles}, step "
                           f"{r.checkpoint_step}) <code>{html.escape(r.source)}</code>" for r in runs)
        spread = "" if sp.sd is None else f"sd {100 * sp.sd:.1f} pts"
        walls = [r.wall_seconds for r in runs if r.wall_seconds]
        wall = f"{sum(walls) / len(walls) / 60:.1f}" if walls else ""
        flops = sum(r.train_flops for r in runs) / len(runs)
        rows.append(f"<tr><td>{html.escape(a.name)}</td><td>{html.escape(a.label)}<br><small>"
                    f"{html.escape(json.dumps(a.switches)) if a.switches else 'the base, no switch'}"
                    f"{' halved: ' + ', '.join(a.halve) if a.halve else ''}"
                    f"</small></td><td><b>{_pct(sp.mean)}</b> {spread}</td>"
                    f"<td>[{_pct(sp.low)}, {_pct(sp.high)}]<br><small>{html.escape(sp.method)}</small></td>"
                    f"<td class=runs>{each}</td><td>{wall}</td><td>{flops:.3g}</td><td>{paper_cell}</td></tr>")

    lines = conclusions(values, counts, paper, labels)
    verdicts = _verdicts(values, counts)
    summary = summary_sentence({labels.get(a, a): v for a, v in verdicts.items()}) if verdicts else ""
    learning = learning_sentence({a: [r.curve for r in rs] for a, rs in arms.items()}, st.steps, labels)

    train_steps = next((r.train_steps for r in data.runs), 0)
    figs = []
    sources = ", ".join(display_path(r.run_dir) for r in data.runs)
    if data.runs:
        figs.append((_fig_div(depth_figure({a: [r.by_step for r in rs] for a, rs in arms.items()}, train_steps),
                              "study-depth"),
                     f"Test exact accuracy after each number of supervision steps, past the {train_steps} the runs "
                     f"trained and were selected with (the eval_best_N*_max.json of: {sources})."))
        figs.append((_fig_div(curve_figure({a: [r.curve for r in rs] for a, rs in arms.items()}), "study-curves"),
                     f"Test exact accuracy at each evaluation during training (metrics.jsonl of: {sources}); "
                     f"reported, never used to choose the checkpoint (validation does)."))
        figs.append((_fig_div(halting_figure({a: [r.halt_table for r in rs] for a, rs in arms.items()}),
                              "study-halting"),
                     f"Steps used against correctness: the supervision step each test puzzle's halting head stops "
                     f"at, and the exact accuracy of the puzzles stopping there, pooled over seeds (halt_table of "
                     f"the eval_best_N*_max.json of: {sources})."))
    anim, anim_caption = _animation(data, echo) if animation else ("", "Animation skipped.")
    if anim:
        figs.append((anim, anim_caption))
    head, _ = report_scripts(True, None, None if standalone else out / ASSETS)
    scripts = "\n".join(f"<script>{s['inline']}</script>" if "inline" in s else f"<script src='{s['src']}'></script>"
                        for s in head)
    missing = (f"<p class=warn>Cells without a finished run (not in the numbers): {', '.join(data.missing)}</p>"
               if data.missing else "")
    task = st.task or "task"
    title = f"Ablation study: {st.name} on {task}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1300px; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 5px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} td.runs {{ font-size: 12px; }} code {{ font-size: 11px; }}
.warn {{ color: #b26a00; }} figcaption {{ color: #555; font-size: 13px; max-width: 70em; }}
li {{ margin-bottom: 6px; }}
</style>
{scripts}
</head><body>
<h1>{html.escape(title)}</h1>
<p>Study folder <code>{html.escape(display_path(data.folder))}</code> · preset {html.escape(st.preset)} · base
<code>{html.escape(json.dumps(st.base))}</code> · {st.steps} optimiser steps per run · evaluated every
{st.eval_every} steps · checkpoint chosen on the validation split, accuracy on the test split ·
{len(data.runs)} finished runs · written {_dt.datetime.now().isoformat(timespec="seconds")}.</p>
{missing}
<h2>Conclusion</h2>
<p>{html.escape(summary)}</p>
{f'<p>{html.escape(learning)}</p>' if learning else ''}
<ul>{''.join(f'<li>{ln}</li>' for ln in lines)}</ul>
<p><small>Generated from the numbers below. Intervals: per arm, Student's t over seeds, clipped to [0,
100%] (one run, or every seed equal: the Wilson interval of the pooled test count); differences: paired
over the seeds both arms share, else Welch, else Newcombe.
With 2-3 seeds a t interval is wide: "not settled" often means "more seeds needed", not "no effect".
The paper's figures are for Sudoku-Extreme at full scale (hidden 512, 60k epochs); they are labelled as the
paper's and never enter a computation.</small></p>
<h2>Ablation table</h2>
<table><thead><tr><th>arm</th><th>what</th><th>test exact accuracy (mean)</th><th>95% interval</th>
<th>each run (value, right/puzzles, checkpoint step, file)</th><th>wall minutes (mean)</th>
<th>training FLOPs (mean)</th><th>the paper's figure</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<p><small>Training FLOPs: matrix products of one training supervision step of one sample
(trmlab/model/flops.py) x global batch x optimiser steps. Wall minutes: first to last record of the run's
metrics.jsonl (this machine, whatever else ran).</small></p>
{''.join(f'<figure>{div}<figcaption>{html.escape(cap)}</figcaption></figure>' for div, cap in figs)}
{'' if anim else f'<p><i>{html.escape(anim_caption)}</i></p>'}
</body></html>
"""
    name = f"study-{task}"
    path = out / f"{name}.html"
    atomic_write(path, lambda f: f.write(page.encode("utf-8")))
    info = ReportInfo(html=path.name, title=title, notebook="study", run=display_path(data.folder), task=task,
                      preset=st.preset, status="ok", error="", date=_dt.datetime.now().isoformat(timespec="seconds"),
                      steps=st.steps, wall_minutes=None, n_params=None, exact_accuracy=None, exact_accuracy_low=None,
                      exact_accuracy_high=None, eval_supervision=None, eval_file="", eval_exact_accuracy=None,
                      eval_exact_accuracy_low=None, eval_exact_accuracy_high=None, eval_n_supervision=None,
                      eval_checkpoint=None, eval_checkpoint_choice=None, widgets=False, in_run=False,
                      standalone=standalone)
    write_json_atomic(out / f"{name}.json", asdict(info), indent=2, sort_keys=True)
    echo(f"wrote {display_path(path)}")
    echo(f"wrote {display_path(write_index(out))}")
    return path


__all__ = ["write_study_report", "conclusions", "conclusion_line", "summary_sentence", "learning_sentence",
           "first_solved"]
