"""Plotly figures of the report, drawn from the reduced arrays of :mod:`vsim.report.aggregate`.

plotly is imported inside the functions: importing it takes a noticeable time and most users of
vsim (a sweep worker, the CLI's ``--help``) never draw anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vsim.report.aggregate import HeatmapData, histogram

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "base_figure",
    "datacenter_cpu_figure",
    "datacenter_power_figure",
    "datacenter_vms_figure",
    "host_energy_figure",
    "host_heatmap_figure",
    "job_completion_figure",
    "ready_histogram_figure",
    "ready_over_time_figure",
]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#7f7f7f"]


def base_figure(height: int = 340, **layout: object) -> go.Figure:
    """An empty figure with the report's look.

    The layout is spelled out instead of using a named plotly template because a template is
    serialised into every figure's JSON and would add ~10 kB per figure for nothing.
    """
    import plotly.graph_objects as go

    base: dict[str, object] = {
        "template": {"layout": {"colorway": _COLORS}},
        "height": height,
        "margin": {"l": 64, "r": 24, "t": 16, "b": 48},
        "font": {"family": "system-ui, sans-serif", "size": 12},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    }
    base.update(layout)
    fig = go.Figure(layout=base)
    grid = {"showgrid": True, "gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#999"}
    fig.update_xaxes(**grid)
    fig.update_yaxes(**grid)
    return fig


def _time_title(unit: str) -> str:
    return f"simulated time ({unit})"


def _line(x: np.ndarray, y: np.ndarray, name: str, **kw: object) -> go.Scatter:
    import plotly.graph_objects as go

    # Values are averages over the period that starts at x, hence the step shape.
    return go.Scatter(x=x, y=y, name=name, mode="lines", line_shape="hv", **kw)


def datacenter_power_figure(dc: pd.DataFrame, tdiv: float, tunit: str) -> go.Figure:
    """Total power and hosts on against time, on two y axes."""
    x = dc["time_s"].to_numpy() / tdiv
    power = dc["power_w"].to_numpy(dtype=np.float64)
    scale, punit = (1e3, "kW") if np.nanmax(np.abs(power), initial=0.0) >= 1e4 else (1.0, "W")
    fig = base_figure(
        xaxis_title=_time_title(tunit), yaxis={"title": f"power ({punit})", "rangemode": "tozero"}
    )
    # The second axis gets no grid of its own: two unaligned grids make both unreadable.
    fig.update_layout(
        yaxis2={
            "title": "hosts on",
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "zeroline": False,
        }
    )
    fig.add_trace(_line(x, power / scale, f"power ({punit})"))
    if "hosts_on" in dc.columns:
        fig.add_trace(_line(x, dc["hosts_on"].to_numpy(), "hosts on", yaxis="y2"))
    return fig


def datacenter_cpu_figure(dc: pd.DataFrame, tdiv: float, tunit: str) -> go.Figure:
    """CPU demanded by the VMs against CPU delivered to them (and the capacity of the hosts on)."""
    x = dc["time_s"].to_numpy() / tdiv
    fig = base_figure(
        xaxis_title=_time_title(tunit), yaxis={"title": "CPU (GHz)", "rangemode": "tozero"}
    )
    fig.add_trace(_line(x, dc["cpu_demand_hz"].to_numpy() / 1e9, "demand"))
    fig.add_trace(_line(x, dc["cpu_alloc_hz"].to_numpy() / 1e9, "delivered"))
    if "cpu_capacity_hz" in dc.columns:
        fig.add_trace(
            _line(
                x,
                dc["cpu_capacity_hz"].to_numpy() / 1e9,
                "capacity of hosts on",
                line={"dash": "dot", "color": "#7f7f7f"},
            )
        )
    return fig


def datacenter_vms_figure(dc: pd.DataFrame, tdiv: float, tunit: str) -> go.Figure:
    """VMs running and VMs queued for placement against time."""
    x = dc["time_s"].to_numpy() / tdiv
    fig = base_figure(xaxis_title=_time_title(tunit), yaxis={"title": "VMs", "rangemode": "tozero"})
    for column, name in (("vms_running", "running"), ("vms_queued", "queued")):
        if column in dc.columns:
            fig.add_trace(_line(x, dc[column].to_numpy(), name))
    return fig


def host_heatmap_figure(data: HeatmapData, tdiv: float, tunit: str) -> go.Figure:
    """Hosts × time heatmap of CPU utilisation, 0 to 100 %."""
    import plotly.graph_objects as go

    height = int(min(720, max(260, 120 + 3 * len(data.host_ids))))
    fig = base_figure(
        height=height, hovermode="closest", xaxis_title=_time_title(tunit), yaxis_title="host"
    )
    fig.add_trace(
        go.Heatmap(
            z=data.z,
            # Plotly centres a cell on its x; shifting by half a column lines each cell up with the
            # period it averages, as the step lines of the other plots do.
            x=(data.time_s + data.column_s / 2) / tdiv,
            y=data.host_ids,
            zmin=0.0,
            zmax=1.0,
            colorscale="Viridis",
            colorbar={"title": {"text": "CPU util"}, "tickformat": ".0%"},
            hovertemplate=(
                f"host %{{y}}<br>%{{x:.3g}} {tunit}<br>CPU util %{{z:.1%}}<extra></extra>"
            ),
            hoverongaps=False,
        )
    )
    return fig


def _bars(edges: np.ndarray, counts: np.ndarray, name: str, scale: float = 1.0) -> go.Bar:
    import plotly.graph_objects as go

    centers = (edges[:-1] + edges[1:]) / 2 / scale
    widths = np.diff(edges) / scale
    return go.Bar(x=centers, y=counts, width=widths, name=name, marker_line_width=0)


def _histogram_figure(values: np.ndarray, x_title: str, counted: str,
                      scale: float = 1.0) -> go.Figure:
    """How many items (``counted``: VMs, hosts, jobs) fall in each bin of ``values``."""
    edges, counts = histogram(values)
    fig = base_figure(hovermode="closest", bargap=0, showlegend=False, xaxis_title=x_title,
                  yaxis_title=counted)
    fig.add_trace(_bars(edges, counts, counted, scale=scale))
    return fig


def ready_histogram_figure(ready_by_vm: pd.Series) -> go.Figure:
    """How many VMs had which time-averaged CPU ready fraction (x in %)."""
    return _histogram_figure(ready_by_vm.to_numpy() * 100.0,
                             "time-averaged CPU ready (% of demanded CPU)", "VMs")


def ready_over_time_figure(quantiles: pd.DataFrame, tdiv: float, tunit: str) -> go.Figure:
    """Median, 95th percentile and maximum over VMs of the ready fraction, per period (in %)."""
    x = quantiles.index.to_numpy() / tdiv
    fig = base_figure(
        xaxis_title=_time_title(tunit), yaxis={"title": "CPU ready (%)", "rangemode": "tozero"}
    )
    names = {"p50": "median", "p95": "95th percentile", "max": "maximum"}
    for column in quantiles.columns:
        fig.add_trace(_line(x, quantiles[column].to_numpy() * 100.0, names.get(column, column)))
    return fig


def host_energy_figure(
    energy_kwh: pd.Series, names: pd.Series | None = None, max_bars: int = 100
) -> go.Figure:
    """Energy per host: one bar per host for small runs, else how many hosts used how much."""
    import plotly.graph_objects as go

    if len(energy_kwh) <= max_bars:
        lookup = names.to_dict() if names is not None and names.is_unique else {}
        labels = [str(lookup.get(h, h)) for h in energy_kwh.index]
        fig = base_figure(
            hovermode="closest",
            showlegend=False,
            xaxis_title="host",
            xaxis_type="category",
            yaxis_title="energy (kWh)",
        )
        fig.add_trace(go.Bar(x=labels, y=energy_kwh.to_numpy(), marker_line_width=0))
        return fig
    return _histogram_figure(energy_kwh.to_numpy(), "energy per host (kWh)", "hosts")


def job_completion_figure(completion_s: np.ndarray) -> go.Figure:
    """How many jobs took how long from start to finish."""
    median = float(np.median(completion_s)) if len(completion_s) else 0.0
    scale, unit = (
        (3600.0, "h") if median >= 7200 else (60.0, "min") if median >= 120 else (1.0, "s")
    )
    return _histogram_figure(completion_s, f"completion time, finish − start ({unit})", "jobs",
                             scale=scale)


def migration_duration_figure(duration_s: np.ndarray) -> go.Figure:
    """How many live migrations took how long, from start to the VM running on its destination."""
    return _histogram_figure(duration_s, "migration time (s)", "migrations")


def migration_downtime_figure(downtime_s: np.ndarray) -> go.Figure:
    """How many live migrations paused their VM for how long (x in ms)."""
    return _histogram_figure(downtime_s * 1000.0, "downtime (ms)", "migrations")


def migrations_in_flight(start_s: np.ndarray, end_s: np.ndarray,
                         reason: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per reason, the step series (times, count) of migrations under way: each counts from its
    start (after any wait for a slot) to its end."""
    out = {}
    for why in pd.unique(reason):
        mine = reason == why
        times = np.concatenate([start_s[mine], end_s[mine]])
        steps = np.concatenate([np.ones(mine.sum()), -np.ones(mine.sum())])
        order = np.lexsort((steps, times))  # at a tie an end comes before a start
        t, n = times[order], np.cumsum(steps[order])
        out[str(why)] = (np.concatenate([[0.0], t]), np.concatenate([[0.0], n]))
    return out


def migration_timeline_figure(series: dict[str, tuple[np.ndarray, np.ndarray]], tdiv: float,
                              tunit: str) -> go.Figure:
    """Live migrations under way over time, one line per reason (overload, maintenance, ...)."""
    fig = base_figure(xaxis_title=_time_title(tunit), yaxis_title="migrations under way")
    for why, (t, n) in series.items():
        fig.add_trace(_line(t / tdiv, n, why))
    return fig
