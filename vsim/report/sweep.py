"""A sweep's report: ``SWEEP_DIR/sweep-report.html``, and the text table ``vsim sweep-report``
prints.

The page is built from the sweep's index only (see :mod:`vsim.experiments.aggregate`), so it can be
rebuilt at another confidence level or with another interval method without rerunning anything.
It holds: what was swept and how many runs succeeded; for each figure, its mean against the first
axis with the confidence interval as a band (or as whiskers on bars when the axis is not numeric),
one line per value of the second axis and one chart per combination of any further axes; the
means with intervals per point as a table; per axis, its values compared with the others held
fixed; and the runs that failed with their errors. Like every vsim page it is one self-contained
file that opens offline (plotly.js inlined once).
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vsim.experiments.aggregate import (
    HEADLINE_METRICS,
    Axis,
    Method,
    SweepMeta,
    aggregate,
    compare,
    higher_is_better,
    load_index,
)
from vsim.report.figures import base_figure
from vsim.report.formatting import format_value
from vsim.report.page import figure_div, html_page, save_page

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["REPORT_NAME", "build_sweep_report", "metric_label", "save_report", "sweep_table",
           "write_sweep_report"]

PathLike = str | os.PathLike[str]
MISSING = "–"
REPORT_NAME = "sweep-report.html"

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_LABELS = {
    "energy_kwh": "Energy",
    "migrations": "Live migrations",
    "cpu_ready_frac_mean": "CPU ready, mean over VMs",
    "cpu_ready_frac_p95": "CPU ready, 95th percentile over VMs",
    "sla.slav": "SLAV (SLATAH × PDM)",
    "sla.slatah": "SLATAH: active-host time at full load",
    "sla.pdm": "PDM: demand lost to migrations",
    "sla.overall_violation_frac": "CPU demand not delivered",
    "hosts_on_mean": "Hosts on, mean",
    "host_shutdowns": "Host shutdowns",
    "vms_unplaced": "VMs never placed",
    "availability.vm_hours_lost": "VM-hours lost",
    "availability.rto_s.p95": "RTO, 95th percentile",
    "wall_time_s": "Wall time of a run",
}
_CSS = """
h3 { margin: 20px 0 4px; font-size: 1.05em; }
.meta { color: #555; font-size: 0.92em; }
nav { font-size: 0.92em; margin: 8px 0; }
nav a { margin-right: 14px; color: #1f5fa8; text-decoration: none; }
.scroll { max-height: 560px; overflow: auto; }
.scroll td { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #eef6ee; }
tr.group th { background: white; text-align: left; padding-top: 10px; border-left: none;
              border-right: none; }
td.error { font-family: ui-monospace, monospace; font-size: 0.9em; white-space: pre-wrap; }
"""


# --- units and labels ---------------------------------------------------------------------------


def _unit_key(metric: str) -> str:
    """The part of a dotted name that carries the unit: a statistic of a figure
    ("availability.rto_s.p95") is in the figure's unit."""
    head, _, last = metric.rpartition(".")
    return head if head and re.fullmatch(r"p\d+|max|min|mean|median", last) else metric


def _scale(metric: str, values: np.ndarray) -> tuple[float, str]:
    """(divisor, unit) for plotting ``metric``, from the unit its name ends with."""
    name = _unit_key(metric).rsplit(".", 1)[-1]
    top = float(np.nanmax(np.abs(values), initial=0.0)) if values.size else 0.0
    if name.endswith("_frac") or "_frac_" in name or name in ("slatah", "pdm", "slav"):
        return 0.01, "%"
    if name.endswith("_kwh"):
        return 1.0, "kWh"
    if name.endswith("_s"):
        for div, unit in ((86400.0, "d"), (3600.0, "h"), (60.0, "min")):
            if top >= 2 * div:
                return div, unit
        return 1.0, "s"
    if name.endswith("_bytes"):
        return 2.0**30, "GiB"
    if name.endswith("_w"):
        return (1e3, "kW") if top >= 1e4 else (1.0, "W")
    if name.endswith("_j"):
        return 3.6e6, "kWh"
    return 1.0, ""


def metric_label(metric: str) -> str:
    """A reader's name for a summary figure ("sla.slav" → "SLAV (SLATAH × PDM)")."""
    return _LABELS.get(metric) or metric.replace(".", ": ").replace("_", " ").capitalize()


def _fmt(metric: str, value: float) -> str:
    return format_value(_unit_key(metric), float(value)) if np.isfinite(value) else MISSING


def _cell(metric: str, row: pd.Series, method: str) -> str:
    """"mean ± half-width" (t) or "mean (low to high)" (bootstrap, not symmetric)."""
    if row["n"] == 0:
        return MISSING
    text = _fmt(metric, row["mean"])
    if np.isfinite(row["ci_low"]):
        if method == "bootstrap":
            text += f" ({_fmt(metric, row['ci_low'])} to {_fmt(metric, row['ci_high'])})"
        else:
            text += f" ± {_fmt(metric, (row['ci_high'] - row['ci_low']) / 2)}"
    if row["n"] < row["ok"]:
        text += f" (n={int(row['n'])})"
    return text


def _headline(agg: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    chosen = list(agg.attrs.get("metrics") or dict.fromkeys(agg["metric"]))
    if metrics:
        return [m for m in metrics if m in chosen]
    return [m for m in HEADLINE_METRICS if m in chosen] or chosen[:6]


def _points(agg: pd.DataFrame) -> pd.DataFrame:
    """One row per point (axis values, point, ok, failed), in the sweep's order."""
    keys = list(agg.attrs.get("axes", []))
    return agg.drop_duplicates("point")[[*keys, "point", "ok", "failed"]]


# --- the terminal table -------------------------------------------------------------------------


def sweep_table(agg: pd.DataFrame, metrics: Sequence[str] | None = None) -> str:
    """The aggregate as aligned text: one row per point, its axis values, runs ok and failed,
    then ``mean ± half-width`` of each headline figure (or of ``metrics``)."""
    keys = list(agg.attrs.get("axes", []))
    shown = _headline(agg, metrics)
    method = str(agg.attrs.get("method", "t"))
    by_point = {(p, m): row for (p, m), row in agg.set_index(["point", "metric"]).iterrows()}
    header = [*keys, "ok", "failed", *shown]
    rows = []
    for _, point in _points(agg).iterrows():
        cells = [str(point[k]) for k in keys] + [str(int(point["ok"])), str(int(point["failed"]))]
        cells += [_cell(m, by_point[(point["point"], m)], method) for m in shown]
        rows.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = []
    for cells in (header, *rows):
        # Axis values read left to right; numbers line up on the right.
        parts = [c.ljust(w) if i < len(keys) else c.rjust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
    confidence = float(agg.attrs.get("confidence", 0.95))
    kind = "percentile bootstrap" if method == "bootstrap" else "Student t"
    lines.append(f"\n± : half-width of the {100 * confidence:g} % confidence interval ({kind}) "
                 "over the runs that succeeded.")
    return "\n".join(lines)


# --- figures ------------------------------------------------------------------------------------


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _figure(rows: pd.DataFrame, metric: str, x_axis: Axis | None, series: Axis | None,
            scale: tuple[float, str]) -> go.Figure:
    """Mean of ``metric`` against ``x_axis``, one trace per value of ``series``."""
    import plotly.graph_objects as go

    div, unit = scale
    numeric = x_axis is not None and x_axis.numeric
    fig = base_figure(height=360, hovermode="closest",
                      xaxis_title=x_axis.key if x_axis else "",
                      yaxis_title=metric_label(metric) + (f" ({unit})" if unit else ""))
    if x_axis is not None and not numeric:
        fig.update_xaxes(type="category", categoryorder="array",
                         categoryarray=list(x_axis.values))
    elif x_axis is not None and len(x_axis.values) <= 12:
        # Ticks at the values swept, not at round numbers between them.
        fig.update_xaxes(tickvals=[float(v) for v in x_axis.values], ticktext=list(x_axis.values))
    groups = [(None, rows)] if series is None else [
        (v, rows[rows[series.key] == v]) for v in series.values]
    for i, (value, part) in enumerate(groups):
        if part.empty:
            continue
        color = _COLORS[i % len(_COLORS)]
        name = f"{series.key}={value}" if series is not None else metric_label(metric)
        x: list[Any] = (list(part[x_axis.key]) if x_axis is not None else ["all runs"] * len(part))
        if numeric:
            order = np.argsort([float(v) for v in x], kind="stable")
            part, x = part.iloc[order], [float(x[j]) for j in order]
        mean = part["mean"].to_numpy(dtype=float) / div
        lo = part["ci_low"].to_numpy(dtype=float) / div
        hi = part["ci_high"].to_numpy(dtype=float) / div
        custom = np.column_stack([part["n"], lo, hi])
        hover = (f"{html.escape(name)}<br>mean %{{y:.4g}} {unit}<br>"
                 f"interval %{{customdata[1]:.4g}} to %{{customdata[2]:.4g}}<br>"
                 "n = %{customdata[0]}<extra></extra>")
        if numeric:
            band = np.isfinite(lo) & np.isfinite(hi)
            if band.any():
                bx = [x[j] for j in np.flatnonzero(band)]
                fig.add_trace(go.Scatter(
                    x=bx + bx[::-1], y=np.concatenate([hi[band], lo[band][::-1]]),
                    mode="lines", fill="toself", fillcolor=_rgba(color, 0.16), line={"width": 0},
                    hoverinfo="skip", showlegend=False, legendgroup=name))
            fig.add_trace(go.Scatter(x=x, y=mean, name=name, mode="lines+markers",
                                     legendgroup=name, line={"color": color, "width": 2},
                                     customdata=custom, hovertemplate=hover))
        else:
            fig.add_trace(go.Bar(
                x=x, y=mean, name=name, marker_color=color, marker_line_width=0,
                customdata=custom, hovertemplate=hover,
                error_y={"type": "data", "symmetric": False, "color": "#333", "thickness": 1.2,
                         "array": np.nan_to_num(hi - mean), "arrayminus": np.nan_to_num(mean - lo)}))
    if not numeric:
        fig.update_layout(barmode="group")
    fig.update_layout(showlegend=series is not None)
    return fig


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()


def _figures_section(meta: SweepMeta, agg: pd.DataFrame) -> str:
    # A value that ran but is not in sweep.json (an index extended by hand) is drawn too.
    axes = [Axis(a.key, tuple(dict.fromkeys([*a.values, *agg[a.key]]))) for a in meta.axes]
    x_axis = axes[0] if axes else None
    series = axes[1] if len(axes) > 1 else None
    facets = [a.key for a in axes[2:]]
    parts = []
    taken: set[str] = set()
    for metric in agg.attrs["metrics"]:
        rows = agg[agg["metric"] == metric]
        slug = _slug(metric)
        while slug in taken:  # "sla.slav" and "sla_slav" must not share an element id
            slug += "-x"
        taken.add(slug)
        scale = _scale(metric, rows[["mean", "ci_high"]].to_numpy(dtype=float).ravel())
        label = metric_label(metric) + (f" ({scale[1]})" if scale[1] else "")
        combos = [((), rows)] if not facets else list(rows.groupby(facets, sort=False))
        for j, (combo, part) in enumerate(combos, start=1):
            combo = combo if isinstance(combo, tuple) else (combo,)
            where = ", ".join(f"{k}={v}" for k, v in zip(facets, combo, strict=True))
            div_id = f"fig-{slug}" + (f"-{j}" if facets else "")
            parts.append(f"<h3>{html.escape(label)}{' — ' + html.escape(where) if where else ''}"
                         f"</h3><p class=\"caption\">{html.escape(metric)}</p>")
            parts.append(figure_div(_figure(part, metric, x_axis, series, scale), div_id))
    return "".join(parts)


# --- tables -------------------------------------------------------------------------------------


Row = Sequence[tuple[str, str]] | str


def _table(header: Sequence[str], rows: Sequence[Row],
           row_classes: Sequence[str] | None = None) -> str:
    """An escaped HTML table; each cell is (text, css class). A row given as a string is a
    heading across the whole table, for the rows under it."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        if isinstance(row, str):
            body.append(f'<tr class="group"><th colspan="{len(header)}">{html.escape(row)}</th>'
                        "</tr>")
            continue
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="{c}">{html.escape(t)}</td>' if c else
                        f"<td>{html.escape(t)}</td>" for t, c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _aggregate_table(agg: pd.DataFrame) -> str:
    keys = list(agg.attrs["axes"])
    metrics = list(agg.attrs["metrics"])
    method = str(agg.attrs["method"])
    by_point = {(p, m): row for (p, m), row in agg.set_index(["point", "metric"]).iterrows()}
    rows = []
    for _, point in _points(agg).iterrows():
        cells = [(str(point[k]), "") for k in keys]
        cells += [(str(int(point["ok"])), "num"), (str(int(point["failed"])), "num")]
        cells += [(_cell(m, by_point[(point["point"], m)], method), "num") for m in metrics]
        rows.append(cells)
    header = [*keys, "runs ok", "failed", *(metric_label(m) for m in metrics)]
    return f'<div class="scroll">{_table(header, rows)}</div>'


def _diff(metric: str, row: pd.Series) -> str:
    if not np.isfinite(row.get("diff_mean", math.nan)):
        return MISSING
    sign = "+" if row["diff_mean"] > 0 else ""
    text = sign + _fmt(metric, row["diff_mean"])
    low, high = _fmt(metric, row["diff_ci_low"]), _fmt(metric, row["diff_ci_high"])
    # A difference that is the same in every pair has no spread to show.
    if low != high:
        text += f" ({low} to {high})"
    return text + f", {int(row['pairs'])} pairs"


def _comparison_section(meta: SweepMeta, index: pd.DataFrame, agg: pd.DataFrame) -> str:
    method = str(agg.attrs["method"])
    parts = []
    for axis in meta.axes:
        if len(axis.values) < 2:
            continue
        others = [a.key for a in meta.axes if a.key != axis.key]
        header = [*others, axis.key, "mean and interval", "intervals vs best",
                  "paired difference vs best", "paired"]
        rows: list[Row] = []
        classes: list[str] = []
        for metric in agg.attrs["metrics"]:
            table = compare(agg, axis.key, metric, index=index)
            better = "highest" if higher_is_better(metric) else "lowest"
            rows.append(f"{metric_label(metric)} ({metric}): {better} is best")
            classes.append("")
            for _, row in table.iterrows():
                rows.append([*((str(row[k]), "") for k in others),
                             (str(row[axis.key]) + (" (best)" if row["best"] else ""), ""),
                             (_cell(metric, pd.Series({**row, "ok": row["n"]}), method),
                              "num"),
                             (str(row["cis"]), ""), (_diff(metric, row), "num"),
                             (str(row.get("paired", MISSING)), "")])
                classes.append("best" if row["best"] else "")
        parts.append(f"<h3>{html.escape(axis.key)}</h3>"
                     f'<div class="scroll">{_table(header, rows, classes)}</div>')
    if not parts:
        return _caption("No axis has two values or more: there is nothing to compare.")
    return "".join(parts) + _caption(
        "For each figure and each combination of the other axes, the best value (lowest mean; "
        "highest for figures where more is better) is highlighted. “differs”: its interval and "
        "the best one's do not overlap. The paired difference pairs the runs of the same "
        "replication, which share their seed and so their random workload and failures; it "
        "“differs” when its Student-t interval excludes 0. Overlapping intervals can still hide "
        "a real difference that the paired comparison shows.")


def _failed_section(meta: SweepMeta, index: pd.DataFrame) -> str:
    failed = index[index["status"] != "ok"]
    if failed.empty:
        return _caption("No run failed.")
    keys = meta.axis_keys
    header = ["run", *keys, "replication", "seed", "error"]
    rows = []
    for _, run in failed.iterrows():
        error = run.get("error")
        rows.append([(str(run["run_id"]), ""), *((str(run[k]), "") for k in keys),
                     (str(run["replication"]), "num"), (str(run.get("seed", MISSING)), "num"),
                     (MISSING if error is None or pd.isna(error) or not str(error).strip()
                      else str(error), "error")])
    return (_caption(f"{len(failed)} run(s) failed; their figures are left out of every mean. "
                     "Each left runs/<run>.failed.json in the sweep folder.")
            + f'<div class="scroll">{_table(header, rows)}</div>')


def _caption(text: str) -> str:
    return f'<p class="caption">{html.escape(text)}</p>'


def _header(meta: SweepMeta, index: pd.DataFrame, agg: pd.DataFrame) -> str:
    raw = meta.raw
    ok = int((index["status"] == "ok").sum())
    failed = len(index) - ok
    points = len(_points(agg))
    confidence = float(agg.attrs["confidence"])
    kind = ("percentile bootstrap (9,999 resamples)" if agg.attrs["method"] == "bootstrap"
            else "Student t")
    facts = [f"scenario file {raw['scenario_file']}" if raw.get("scenario_file") else "",
             f"created {raw['created']}" if raw.get("created") else "",
             f"vsim {raw['vsim_version']}" if raw.get("vsim_version") else ""]
    axes_rows = [[(a.key, ""), (", ".join(a.values), "")] for a in meta.axes]
    return (
        f"<h1>Sweep of {html.escape(meta.scenario)}</h1>"
        f'<p class="meta">{html.escape("; ".join(f for f in facts if f))}</p>'
        + (_table(["axis", "values"], axes_rows) if axes_rows else _caption("No axes."))
        + f"<p>{points} point(s) × {meta.replications} replication(s): {len(index)} run(s), "
        f"<b>{ok} ok</b>, <b>{failed} failed</b>. Intervals: {100 * confidence:g} % {kind}, "
        "over the runs that succeeded.</p>")


def build_sweep_report(meta: SweepMeta, index: pd.DataFrame, agg: pd.DataFrame) -> str:
    """The page's HTML text, from the sweep's index and its aggregate (:func:`aggregate`)."""
    sections = [
        ("figures", "Figures against the axes", _figures_section(meta, agg) + _caption(
            "Lines or bars: means over the replications that succeeded; bands or whiskers: "
            "their confidence interval (none where fewer than two runs define the figure).")),
        ("aggregate", "Means per point", _aggregate_table(agg) + _caption(
            "(n=…): the figure was undefined in some runs of that point, which are left out.")),
        ("compare", "Values of each axis compared", _comparison_section(meta, index, agg)),
        ("failed", "Failed runs", _failed_section(meta, index)),
    ]
    nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t, _ in sections)
    body = "".join(f'<section id="{a}"><h2>{html.escape(t)}</h2>{b}</section>'
                   for a, t, b in sections)
    return html_page(f"vsim sweep: {meta.scenario}", _CSS,
                     _header(meta, index, agg) + f"<nav>{nav}</nav>" + body,
                     f"Built by vsim sweep-report from {html.escape(str(meta.folder))}.")


def save_report(path: PathLike, text: str) -> Path:
    """Write the page to ``path`` in one piece (never half-written); return the path."""
    return save_page(path, text, "the sweep report")


def write_sweep_report(sweep_dir: PathLike, out: PathLike | None = None,
                       metrics: Sequence[str] | None = None, confidence: float = 0.95,
                       method: Method = "t") -> Path:
    """Aggregate the sweep in ``sweep_dir`` and write its report to ``out`` (default
    ``SWEEP_DIR/sweep-report.html``); return the path written."""
    meta, index = load_index(sweep_dir)
    agg = aggregate(index, meta.axes, metrics, confidence, method)
    return save_report(out or meta.folder / REPORT_NAME, build_sweep_report(meta, index, agg))
