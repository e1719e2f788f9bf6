"""The validation page: the simulator against real guests, one self-contained HTML file.

Built from a validation's error table and summary only: predicted against measured with the y = x
line (the naive baseline beside the model), the error along each grid axis, and the targets.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from vsim.report.compare import figure_layout
from vsim.report.page import figure_div, html_page, write_atomic
from vsim.validate.errors import format_value
from vsim.validate.session import naive_value

__all__ = ["build_validation_html", "write_validation"]

UNITS = {"duration_s": ("total time", "s", 1.0), "bytes": ("bytes sent", "MiB", 2.0**-20),
         "downtime_s": ("downtime", "ms", 1e3), "share": ("share of a core", "%", 100.0),
         "slowdown": ("slowdown", "x", 1.0)}
AXES = {"memory_bytes": ("guest memory", "MiB", 2.0**-20),
        "working_set_bytes": ("working set", "MiB", 2.0**-20),
        "dirty_rate_bytes_s": ("dirty rate", "MiB/s", 2.0**-20),
        "max_bandwidth_bytes_s": ("max-bandwidth", "MiB/s", 2.0**-20),
        "guests": ("guests on the core", "", 1.0),
        "ratio": ("working set / resident memory", "", 1.0)}


def _scatter(errors: pd.DataFrame) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = list(dict.fromkeys(errors.metric))
    fig = make_subplots(rows=1, cols=len(metrics), horizontal_spacing=0.08,
                        subplot_titles=[f"{UNITS[m][0]} ({UNITS[m][1]})" for m in metrics])
    for col, metric in enumerate(metrics, start=1):
        rows = errors[errors.metric == metric]
        scale = UNITS[metric][2]
        meas = rows.measured * scale
        hi = float(max(meas.max(), (rows.predicted * scale).max())) * 1.08
        fig.add_trace(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", name="y = x",
                                 line={"color": "#999", "dash": "dot"}, showlegend=col == 1),
                      row=1, col=col)
        fig.add_trace(go.Scatter(x=meas, y=rows.predicted * scale, mode="markers", name="vsim",
                                 marker={"color": "#1f77b4", "size": 9}, showlegend=col == 1),
                      row=1, col=col)
        if rows.naive.notna().any():
            fig.add_trace(go.Scatter(x=meas, y=rows.naive * scale, mode="markers",
                                     name="naive baseline", showlegend=col == 1,
                                     marker={"color": "#d62728", "size": 8, "symbol": "x"}),
                          row=1, col=col)
        fig.update_xaxes(title_text="measured", row=1, col=col, rangemode="tozero")
        fig.update_yaxes(title_text="predicted" if col == 1 else None, row=1, col=col,
                         rangemode="tozero")
    return _laid_out(fig, "Predicted against measured", 440, legend_y=-0.22)


def _laid_out(fig: Any, title: str, height: int, legend_y: float) -> Any:
    """The page's look, with the legend below the subplots."""
    fig.update_layout(**figure_layout(title, height))
    fig.update_layout(legend={"orientation": "h", "y": legend_y, "yanchor": "top", "x": 0},
                      margin={"b": 96})
    return fig


def _by_axis(errors: pd.DataFrame) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    axes = [a for a in AXES if a in errors.columns and errors[a].nunique() > 1]
    if not axes:
        return None
    fig = make_subplots(rows=1, cols=len(axes), horizontal_spacing=0.08,
                        subplot_titles=[f"{AXES[a][0]}" + (f" ({AXES[a][1]})" if AXES[a][1] else "")
                                        for a in axes])
    colors = ["#1f77b4", "#2ca02c", "#ff7f0e"]
    for col, axis in enumerate(axes, start=1):
        for i, metric in enumerate(dict.fromkeys(errors.metric)):
            rows = errors[errors.metric == metric]
            per = rows.groupby(axis).abs_pct_error.mean().reset_index()
            fig.add_trace(go.Scatter(x=per[axis] * AXES[axis][2], y=per.abs_pct_error,
                                     mode="lines+markers", name=UNITS[metric][0],
                                     line={"color": colors[i % 3]}, showlegend=col == 1),
                          row=1, col=col)
        fig.update_yaxes(title_text="mean |error| (%)" if col == 1 else None, row=1, col=col,
                         rangemode="tozero")
    return _laid_out(fig, "Error along each grid axis", 380, legend_y=-0.2)


def build_validation_html(errors: pd.DataFrame, summary: dict[str, Any]) -> str:
    kind = summary["experiment"]
    parts = [f"<h1>vsim against real guests: {html.escape(kind)}</h1>",
             f'<p class="caption">QEMU {html.escape(summary.get("qemu_version", "?"))} with '
             f'{html.escape(summary.get("accel", "?"))}; {summary.get("points", 0)} grid points.</p>',
             "<h2>Targets</h2><table><tr><th>metric</th><th>statistic</th><th>vsim</th>"
             "<th>naive baseline</th><th>target</th><th>met</th></tr>"]
    for metric, t in summary["targets"].items():
        stat = t["statistic"]
        naive = format_value(naive_value(summary, metric), stat, metric)
        parts.append(f"<tr><td>{html.escape(metric)}</td><td>{html.escape(stat)}</td>"
                     f"<td>{format_value(t['value'], stat, metric)}</td><td>{naive}</td>"
                     f"<td>{format_value(t['limit'], stat, metric)}</td>"
                     f"<td>{'yes' if t['met'] else 'no'}</td></tr>")
    parts.append("</table>")
    parts.append(figure_div(_scatter(errors), "fig-validation-scatter"))
    axis = _by_axis(errors)
    if axis is not None:
        parts.append(figure_div(axis, "fig-validation-axes"))
    table = errors.copy()
    parts.append("<h2>Every point</h2>" + table.to_html(index=False, float_format=lambda v: f"{v:.4g}",
                                                         border=0))
    return html_page(f"vsim validation: {kind}", "", "\n".join(parts),
                     "Written by vsim validate from the error table in this folder.")


def write_validation(path: Path, errors: pd.DataFrame, summary: dict[str, Any]) -> None:
    write_atomic(path, build_validation_html(errors, summary))
