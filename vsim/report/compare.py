"""Several runs side by side: ``vsim compare RESULT_DIR [RESULT_DIR ...]``.

Only what ``vsim run`` leaves in its result folders is read (``summary.json``, ``meta.json``,
``datacenter.parquet``), so runs made by older versions of vsim, or on another machine, can be
compared as long as their folders are at hand. A figure a folder lacks is shown as "–" rather
than refused: the point is to compare what is there.

``load_summaries(dirs)`` gives one row per run; ``comparison_table(frame)`` renders it for a
terminal; ``build_comparison_html(dirs)`` / ``write_comparison(path, dirs)`` make one
self-contained HTML page with the same table and charts.
"""

from __future__ import annotations

import html
import json
import math
import numbers
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vsim.errors import VsimError
from vsim.report.page import figure_div, html_page, save_page

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["build_comparison_html", "comparison_table", "load_summaries", "write_comparison"]

PathLike = str | os.PathLike[str]

MISSING = "–"

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
# A year of 5-minute periods is 105,120 points per line per run; past this many the lines are
# block-averaged so the page stays light enough for a browser.
_MAX_POINTS = 3000


# --- reading the folders ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    label: str
    folder: Path
    summary: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def _not_a_result_folder(folder: Path) -> VsimError:
    hint = "pass folders written by `vsim run`, such as results/<scenario>/<run-id>"
    # A common slip is to pass the scenario's folder, which holds one result folder per run.
    runs = sorted(p.parent for p in folder.glob("*/summary.json"))
    if runs:
        shown = ", ".join(str(p) for p in runs[:3]) + (", …" if len(runs) > 3 else "")
        hint = f"it holds {len(runs)} result folder(s): pass those instead ({shown})"
    return VsimError(f"{folder}: not a vsim result folder (no summary.json); {hint}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VsimError(f"{path}: cannot read it as JSON ({exc})") from None


def _read_run(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    if not folder.exists():
        raise VsimError(f"{folder}: no such folder; pass a result folder written by `vsim run`")
    if not folder.is_dir():
        raise VsimError(f"{folder}: not a folder; pass a result folder written by `vsim run`, "
                        "not a file in it")
    if not (folder / "summary.json").is_file():
        raise _not_a_result_folder(folder)
    summary = _read_json(folder / "summary.json")
    if not isinstance(summary, dict):
        raise VsimError(f"{folder / 'summary.json'}: expected a JSON object, "
                        f"found {type(summary).__name__}")
    meta: dict[str, Any] = {}
    # meta.json only adds context (seed, start time, version) to the page; a folder without a
    # readable one is still worth comparing.
    if (folder / "meta.json").is_file():
        try:
            loaded = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            meta = loaded if isinstance(loaded, dict) else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            meta = {}
    return summary, meta


def _labels(folders: Sequence[Path], summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Scenario names, with the folder name added where two runs share one (the usual case when
    runs differ only by ``--set``), and a counter where even that is not enough."""
    names = [str(s.get("scenario") or f.name) for f, s in zip(folders, summaries, strict=True)]
    shared = Counter(names)
    labels = [
        f"{name} ({folder.name})" if shared[name] > 1 and folder.name != name else name
        for name, folder in zip(names, folders, strict=True)
    ]
    seen: Counter[str] = Counter()
    unique = []
    for label in labels:
        seen[label] += 1
        unique.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return unique


def _load(dirs: Iterable[PathLike]) -> list[_Run]:
    folders = [Path(d) for d in dirs]
    if not folders:
        raise VsimError("nothing to compare; pass one or more result folders written by `vsim run`")
    read = [_read_run(f) for f in folders]
    labels = _labels(folders, [s for s, _ in read])
    return [_Run(label, folder, summary, meta)
            for label, folder, (summary, meta) in zip(labels, folders, read, strict=True)]


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _frame(runs: Sequence[_Run]) -> pd.DataFrame:
    frame = pd.DataFrame([_flatten(r.summary) for r in runs],
                         index=pd.Index([r.label for r in runs], name="run"))
    frame.attrs["folders"] = {r.label: str(r.folder) for r in runs}
    return frame


def load_summaries(dirs: Iterable[PathLike]) -> pd.DataFrame:
    """One row per result folder, indexed by a short unique label, with the summaries' keys as
    columns (nested ones flattened: ``sla.slatah``). Keys a folder lacks are NaN in its row.
    ``frame.attrs["folders"]`` maps each label back to its folder.

    Raises :class:`~vsim.errors.VsimError` for a folder that is missing or not a result folder.
    """
    return _frame(_load(dirs))


# --- formatting ---------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is missing or not a number."""
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits in plain notation (no exponent for the values
    a report meets), with thousands separators."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -4:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def _fmt_count(value: float) -> str:
    return f"{int(value):,}" if value.is_integer() else _significant(value, 4)


def _fmt_fixed2(value: float) -> str:
    return f"{value:,.2f}"


def _fmt_percent(value: float) -> str:
    return _significant(100.0 * value, 3)


def _fmt_hours(value: float) -> str:
    # Durations are mostly whole hours or days: "48", not "48.00".
    text = f"{value / 3600.0:,.2f}"
    return text.rstrip("0").rstrip(".")


def _fmt_seconds(value: float) -> str:
    return _significant(value, 3)


@dataclass(frozen=True)
class _Metric:
    key: str  # flattened summary key
    label: str
    fmt: Callable[[float], str]


# The rows of the comparison, in reading order: what was simulated, then what it cost, then how
# the VMs fared, then what the simulation itself cost.
_METRICS = (
    _Metric("hosts", "hosts", _fmt_count),
    _Metric("vms", "VMs", _fmt_count),
    _Metric("sim_time_s", "simulated time (h)", _fmt_hours),
    _Metric("energy_kwh", "energy (kWh)", _fmt_fixed2),
    _Metric("migrations", "migrations", _fmt_count),
    _Metric("host_shutdowns", "host shutdowns", _fmt_count),
    _Metric("hosts_on_mean", "hosts on (mean)", _fmt_fixed2),
    _Metric("sla.slatah", "SLATAH (%)", _fmt_percent),
    _Metric("sla.pdm", "PDM (%)", _fmt_percent),
    _Metric("sla.slav", "SLAV (%)", _fmt_percent),
    _Metric("sla.overall_violation_frac", "overall SLA violation (%)", _fmt_percent),
    _Metric("cpu_ready_frac_mean", "CPU ready, mean (%)", _fmt_percent),
    _Metric("cpu_ready_frac_p95", "CPU ready, p95 (%)", _fmt_percent),
    _Metric("vms_unplaced", "unplaced VMs", _fmt_count),
    _Metric("wall_time_s", "wall time (s)", _fmt_seconds),
)


def _value(frame: pd.DataFrame, run: Any, key: str) -> float | None:
    return _number(frame.at[run, key]) if key in frame.columns else None


def _formatted(frame: pd.DataFrame, run: Any, metric: _Metric) -> str:
    value = _value(frame, run, metric.key)
    return MISSING if value is None else metric.fmt(value)


def _relative(value: float | None, base: float | None) -> float | None:
    """(value − base) / |base|, or None when either is missing or the base is 0 and they differ
    (there is no relative change from nothing)."""
    if value is None or base is None:
        return None
    if base == 0:
        return 0.0 if value == 0 else None
    return (value - base) / abs(base)


def _fmt_relative(change: float | None) -> str:
    if change is None:
        return MISSING
    percent = 100.0 * change
    if percent == 0:
        return "0.0 %"
    # Differences below a tenth of a percent would all read "+0.0 %"; give them two digits.
    if abs(percent) < 0.1:
        return f"{percent:+.2g} %"
    return f"{percent:+,.1f} %"


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], first_width: int) -> list[str]:
    """Rows of text cells as aligned lines: first column left-aligned, the others right."""
    widths = [max(first_width, len(header[0]), *(len(r[0]) for r in rows))]
    for i in range(1, len(header)):
        widths.append(max(len(header[i]), *(len(r[i]) for r in rows)))
    lines = []
    for cells in (header, *rows):
        parts = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:],
                                                                          strict=True)]
        lines.append("  ".join(parts).rstrip())
    return lines


def comparison_table(df: pd.DataFrame) -> str:
    """The runs of ``df`` (as from :func:`load_summaries`) side by side as plain text: one row per
    headline figure, one column per run, then each figure's change relative to the first run."""
    runs = list(df.index)
    if not runs:
        return "(no runs to compare)"
    labels = [str(r) for r in runs]
    first_width = max(len(m.label) for m in _METRICS)
    values = [[m.label] + [_formatted(df, r, m) for r in runs] for m in _METRICS]
    lines = _grid(["", *labels], values, first_width)
    if len(runs) > 1:
        base = runs[0]
        changes = [
            [m.label] + [_fmt_relative(_relative(_value(df, r, m.key), _value(df, base, m.key)))
                         for r in runs[1:]]
            for m in _METRICS
        ]
        lines += ["", f"Change relative to {labels[0]}:"]
        lines += _grid(["", *labels[1:]], changes, first_width)
        lines += ["", f"{MISSING} : missing in a folder, or no relative change from a first "
                      "value of 0."]
    return "\n".join(lines)


# --- the HTML page ------------------------------------------------------------------------------


_CSS = """
.figure { margin-bottom: 12px; }
table.metrics td.num { text-align: right; font-variant-numeric: tabular-nums; }
.delta { display: block; color: #666; font-size: 0.85em; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 6px;
          border-radius: 2px; vertical-align: baseline; }
"""


def _color(i: int) -> str:
    return _COLORS[i % len(_COLORS)]




def figure_layout(title: str, height: int = 360) -> dict[str, Any]:
    # Spelled out rather than a named plotly template: a template is serialised into every
    # figure's JSON and would weigh more than the data.
    return {
        "title": {"text": title, "x": 0, "xanchor": "left"},
        "height": height,
        "margin": {"l": 64, "r": 24, "t": 72, "b": 48},
        "font": {"family": "system-ui, sans-serif", "size": 12},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
    }


def _bar_figure(runs: Sequence[_Run], frame: pd.DataFrame, title: str,
                metrics: Sequence[tuple[str, str, float]]) -> go.Figure:
    """One panel per metric, each with its own y axis (SLAV is the product of two fractions and
    would vanish next to SLATAH on a shared one); in a panel, one bar per run, side by side, in
    the run's colour throughout the page."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(metrics), horizontal_spacing=0.08)
    for col, (key, name, scale) in enumerate(metrics, start=1):
        for i, run in enumerate(runs):
            value = _value(frame, run.label, key)
            # A run without this figure gets an empty bar labelled "–", so that it reads as
            # missing rather than as left out of the chart.
            text = MISSING if value is None else _significant(value * scale, 4)
            fig.add_trace(
                go.Bar(x=[name], y=[0.0 if value is None else value * scale], name=run.label,
                       legendgroup=run.label, showlegend=col == 1, marker_color=_color(i),
                       marker_line_width=0, text=[text], textposition="outside",
                       cliponaxis=False, hovertext=[f"{html.escape(run.label)}: {text}"],
                       hovertemplate="%{hovertext}<extra></extra>"),
                row=1, col=col,
            )
        fig.update_yaxes(rangemode="tozero", showgrid=True, gridcolor="#e5e5e5", zeroline=False,
                         row=1, col=col)
    fig.update_layout(barmode="group", hovermode="closest", **figure_layout(title))
    return fig


def _thin(dc: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """At most ``_MAX_POINTS`` rows: consecutive periods averaged in equal blocks, each block
    placed at the start of its first period (periods are equal, so the mean of the block's power
    is the block's mean power)."""
    if len(dc) <= _MAX_POINTS:
        return dc
    block = -(-len(dc) // _MAX_POINTS)
    groups = np.arange(len(dc)) // block
    thin = dc[list(columns)].groupby(groups).mean()
    thin["time_s"] = dc["time_s"].groupby(groups).min()
    return thin


def _read_datacenter(run: _Run) -> pd.DataFrame | None:
    path = run.folder / "datacenter.parquet"
    if not path.is_file():
        return None
    try:
        dc = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise VsimError(f"{path}: cannot read it as a Parquet table ({exc})") from None
    return dc.sort_values("time_s", kind="stable") if "time_s" in dc.columns else None


def _line_figure(runs: Sequence[_Run], tables: Sequence[pd.DataFrame], column: str, title: str,
                 unit: str, scale: float) -> go.Figure:
    import plotly.graph_objects as go

    layout = figure_layout(title)
    layout.update(hovermode="x unified", xaxis_title="simulated time (h)",
                  yaxis={"title": unit, "rangemode": "tozero"})
    fig = go.Figure(layout=layout)
    for i, (run, dc) in enumerate(zip(runs, tables, strict=True)):
        thin = _thin(dc, [column])
        # Each row is the mean over the period that starts at time_s, hence the steps.
        fig.add_trace(go.Scatter(x=thin["time_s"].to_numpy() / 3600.0,
                                 y=thin[column].to_numpy(dtype=np.float64) / scale,
                                 name=run.label, mode="lines", line_shape="hv",
                                 line={"color": _color(i), "width": 1.5}))
    grid = {"showgrid": True, "gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#999"}
    fig.update_xaxes(**grid)
    fig.update_yaxes(**grid)
    return fig


def _caption(text: str) -> str:
    return f'<p class="caption">{html.escape(text)}</p>'


def _over_time_section(runs: Sequence[_Run]) -> str:
    tables = [_read_datacenter(r) for r in runs]
    lacking = [r for r, t in zip(runs, tables, strict=True) if t is None]
    if lacking:
        names = ", ".join(str(r.folder) for r in lacking)
        return _caption("Power and hosts on over time are drawn only when every folder has "
                        f"datacenter.parquet; it is missing or unreadable in: {names}.")
    frames = [t for t in tables if t is not None]
    parts = []
    if all("power_w" in t.columns for t in frames):
        peak = max((float(np.nanmax(t["power_w"].to_numpy(dtype=np.float64), initial=0.0))
                    for t in frames), default=0.0)
        scale, unit = (1e3, "kW") if peak >= 1e4 else (1.0, "W")
        parts.append(figure_div(
            _line_figure(runs, frames, "power_w", "Total power over time", f"power ({unit})",
                         scale), "cmp-power"))
    if all("hosts_on" in t.columns for t in frames):
        parts.append(figure_div(
            _line_figure(runs, frames, "hosts_on", "Hosts powered on over time", "hosts on",
                         1.0), "cmp-hosts-on"))
    if not parts:
        return _caption("The datacenter tables lack the power_w and hosts_on columns.")
    if any(len(t) > _MAX_POINTS for t in frames):
        parts.append(_caption("Long runs are drawn with consecutive periods averaged in blocks, "
                              "to keep the page light."))
    return "".join(parts)


def _runs_table(runs: Sequence[_Run]) -> str:
    rows = []
    for i, run in enumerate(runs):
        seed = run.meta.get("seed", run.summary.get("seed"))
        cells = [
            f'<span class="swatch" style="background:{_color(i)}"></span>{html.escape(run.label)}',
            html.escape(str(run.folder)),
            html.escape(MISSING if seed is None else str(seed)),
            html.escape(str(run.meta.get("started_at") or MISSING)),
            html.escape(str(run.meta.get("vsim_version") or MISSING)),
            html.escape(str(run.summary.get("description") or "")),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in
                   ("run", "folder", "seed", "started", "vsim", "description"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _metrics_table(frame: pd.DataFrame) -> str:
    runs = list(frame.index)
    head = "<th></th>" + "".join(f"<th>{html.escape(str(r))}</th>" for r in runs)
    rows = []
    for metric in _METRICS:
        base = _value(frame, runs[0], metric.key)
        cells = [f"<td>{html.escape(metric.label)}</td>"]
        for i, run in enumerate(runs):
            text = html.escape(_formatted(frame, run, metric))
            if i > 0:
                change = _fmt_relative(_relative(_value(frame, run, metric.key), base))
                text += f'<span class="delta">{html.escape(change)}</span>'
            cells.append(f'<td class="num">{text}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="metrics"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def build_comparison_html(dirs: Iterable[PathLike]) -> str:
    """One self-contained HTML page comparing the runs in ``dirs``: plotly.js inlined once, no
    network access needed to open it."""
    runs = _load(dirs)
    frame = _frame(runs)
    first = html.escape(runs[0].label)
    bars = [
        _bar_figure(runs, frame, "Energy", [("energy_kwh", "energy (kWh)", 1.0)]),
        _bar_figure(runs, frame, "Live migrations and host shutdowns",
                    [("migrations", "migrations", 1.0), ("host_shutdowns", "host shutdowns", 1.0)]),
        _bar_figure(runs, frame, "SLA violation metrics",
                    [("sla.slatah", "SLATAH (%)", 100.0), ("sla.pdm", "PDM (%)", 100.0),
                     ("sla.slav", "SLAV (%)", 100.0)]),
    ]
    bar_html = "".join(figure_div(fig, f"cmp-bars-{i}") for i, fig in enumerate(bars))
    sections = [
        ("Runs", _runs_table(runs)),
        ("Key figures",
         _metrics_table(frame)
         + (_caption(f"Under each value of the other runs: its change relative to {runs[0].label}"
                     f". “{MISSING}”: missing in that folder, or no relative change from 0.")
            if len(runs) > 1 else "")),
        ("Compared", bar_html + _caption(
            "SLATAH: share of active-host time at full load with demand unserved; PDM: share of "
            "demand lost to live migrations; SLAV: their product.")),
        ("Over time", _over_time_section(runs)),
    ]
    body = "".join(f"<section><h2>{html.escape(t)}</h2>{b}</section>" for t, b in sections)
    title = "vsim comparison: " + ", ".join(r.label for r in runs)
    return html_page(
        title, _CSS,
        f"<h1>Comparison of {len(runs)} run{'s' if len(runs) != 1 else ''}</h1>"
        f'<p class="caption">Relative changes are against the first run, {first}.</p>{body}',
        "Built by vsim compare from the runs' result folders.",
    )


def write_comparison(path: PathLike, dirs: Iterable[PathLike]) -> Path:
    """Build the comparison page and write it to ``path``; return the path.

    Written to a temporary file next to it and renamed into place, so an interrupted build never
    leaves a truncated page that looks complete.
    """
    return save_page(path, build_comparison_html(dirs), "the comparison")
