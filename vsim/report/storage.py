"""The report's sections on storage, networks and moves: how full the datastores ran and what
crossed them, how long clones and boots took, which links were busiest and what filled them, and
how the waves of a move to another site unfolded.

Everything is drawn from the result tables (``datastores``, ``deploys``, ``boots``, ``links``,
``vm_traffic``, ``moves``, ``events``) and the ``storage``, ``network`` and ``moves`` summaries
of :mod:`vsim.metrics`. Per-period tables hold means over the period that starts at ``time_s``,
hence the step lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vsim.report.aggregate import histogram, thin_rows
from vsim.report.availability import ecdf, intervals_open, log_scale
from vsim.report.figures import base_figure
from vsim.report.formatting import format_clock, format_duration, format_value, html_table

__all__ = [
    "MAX_LINES", "boot_storm_figure", "busiest_link_figure", "busiest_links", "datastore_table",
    "deploy_table", "duration_cdf_figure", "fill_figure", "link_table", "links_figure",
    "move_table", "paused_figure", "shown_datastores", "thin_by", "throughput_figure",
    "unserved_figure", "wave_rows", "waves_figure",
]

GIB = 2.0**30
MIB = 2.0**20
MAX_LINES = 8  # more lines than this in one figure no longer tell apart
# The link's traffic by what sent it, bottom to top of the stack.
_TRAFFIC = (("vm_bytes_s", "VM traffic"), ("migration_bytes_s", "live migration"),
            ("replication_bytes_s", "replication"))


def _palette() -> list[str]:
    import plotly.colors

    return list(plotly.colors.qualitative.D3)


def _step(x: Any, y: Any, name: str, **kw: Any) -> Any:
    import plotly.graph_objects as go

    return go.Scatter(x=x, y=y, name=name, mode="lines", line_shape="hv", **kw)


def _time_title(tunit: str) -> str:
    return f"simulated time ({tunit})"


# --- storage -----------------------------------------------------------------------------------

def shown_datastores(datastores: pd.DataFrame) -> list[str]:
    """The datastores to draw: all, or the ``MAX_LINES`` that ran fullest."""
    peak = datastores.groupby(datastores["datastore"].astype(str))["fill_frac"].max()
    return peak.sort_values(ascending=False, kind="stable").index[:MAX_LINES].tolist()


def thin_by(table: pd.DataFrame, key: str, names: list[str]) -> pd.DataFrame:
    """The rows of the ``names`` (values of column ``key``), each one's periods thinned apart
    (:func:`vsim.report.aggregate.thin_rows` would average neighbouring rows of different
    datastores or links together)."""
    keys = table[key].astype(str)
    parts = [thin_rows(table[keys == name]).assign(**{key: name}) for name in names]
    return pd.concat(parts, ignore_index=True) if parts else table.iloc[:0]


def _each(table: pd.DataFrame, key: str, names: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """Each of ``names`` (values of column ``key``) with its rows in time order."""
    keys = table[key].astype(str)
    return [(name, table[keys == name].sort_values("time_s", kind="stable")) for name in names]


def _datastore_lines(fig: Any, datastores: pd.DataFrame, tdiv: float,
                     lines: tuple[tuple[str, str, str], ...], scale: Any, hover: str) -> Any:
    """Per shown datastore, one colour, a line per (column, what, dash) of ``lines``: the column
    over ``scale`` (a number, or a column of the rows), with its bytes in GiB as customdata."""
    for (name, rows), color in zip(_each(datastores, "datastore", shown_datastores(datastores)),
                                   _palette(), strict=False):
        div = rows[scale].to_numpy(dtype=float) if isinstance(scale, str) else scale
        for column, what, dash in lines:
            size = rows[column].to_numpy(dtype=float)
            fig.add_trace(_step(rows["time_s"].to_numpy() / tdiv, size / div, f"{name} {what}",
                                line={"color": color, "dash": dash}, customdata=size / GIB,
                                hovertemplate=hover))
    return fig


def fill_figure(datastores: pd.DataFrame, full_events: pd.DataFrame | None, tdiv: float,
                tunit: str) -> Any:
    """Used and provisioned space of each shown datastore as shares of its capacity (solid and
    dashed, one colour per datastore) against time; dashed grey: full; ×: a datastore filled."""
    import plotly.graph_objects as go

    fig = base_figure(xaxis_title=_time_title(tunit),
                      yaxis={"title": "share of capacity", "tickformat": ".0%",
                             "rangemode": "tozero"})
    _datastore_lines(fig, datastores, tdiv, (("used_bytes", "used", "solid"),
                                             ("provisioned_bytes", "provisioned", "dash")),
                     "capacity_bytes", "%{y:.1%} (%{customdata:,.1f} GiB)")
    fig.add_hline(y=1.0, line_dash="dash", line_color="#999")
    if full_events is not None and len(full_events):
        fig.add_trace(go.Scatter(x=full_events["time_s"] / tdiv, y=np.ones(len(full_events)),
                                 mode="markers", name="datastore full",
                                 text=full_events["subject"].astype(str),
                                 marker={"symbol": "x", "size": 10, "color": "#d62728"},
                                 hovertemplate="%{text} full<extra></extra>"))
    return fig


def throughput_figure(datastores: pd.DataFrame, tdiv: float, tunit: str) -> Any:
    """Per shown datastore, its transfers (clones, consolidations, boot reads; solid) and the
    VMs' writes (dotted) in MiB/s against time."""
    fig = base_figure(xaxis_title=_time_title(tunit),
                      yaxis={"title": "throughput (MiB/s)", "rangemode": "tozero"})
    return _datastore_lines(fig, datastores, tdiv, (("transfer_bytes_s", "transfers", "solid"),
                                                    ("vm_write_bytes_s", "VM writes", "dot")),
                            MIB, "%{y:,.3g} MiB/s")


def paused_figure(datastores: pd.DataFrame, tdiv: float, tunit: str) -> Any:
    """VMs paused for want of space on each datastore that paused any, against time."""
    fig = base_figure(xaxis_title=_time_title(tunit),
                      yaxis={"title": "VMs paused", "rangemode": "tozero"})
    paused = datastores.groupby(datastores["datastore"].astype(str))["vms_paused"].max()
    for name, rows in _each(datastores, "datastore", paused.index[paused > 0].tolist()):
        fig.add_trace(_step(rows["time_s"].to_numpy() / tdiv, rows["vms_paused"].to_numpy(),
                            name))
    return fig


def datastore_table(stores: Mapping[str, Mapping[str, Any]]) -> str:
    """The summary's figures per datastore."""
    def number(value: Any, unit: str, scale: float = 1.0) -> str:
        return "–" if value is None else f"{float(value) / scale:,.4g} {unit}"

    return html_table(pd.DataFrame([{
        "datastore": name, "capacity": format_value("x_bytes", f.get("capacity_bytes")),
        "used at the end": format_value("x_bytes", f.get("used_bytes")),
        "peak used": format_value("x_bytes", f.get("peak_used_bytes")),
        "provisioned": format_value("x_bytes", f.get("provisioned_bytes")),
        "provisioned / capacity": number(f.get("overcommit"), "×"),
        "peak fill": format_value("x_frac", f.get("peak_fill_frac")),
        "peak transfers": number(f.get("peak_transfer_bytes_s"), "MiB/s", MIB),
    } for name, f in stores.items()]))


def _seconds_scale(values: np.ndarray) -> tuple[float, str]:
    median = float(np.nanmedian(values)) if len(values) else 0.0
    return (3600.0, "h") if median >= 7200 else (60.0, "min") if median >= 120 else (1.0, "s")


def duration_cdf_figure(lines: Mapping[str, np.ndarray], x_title: str, counted: str) -> Any:
    """One empirical CDF of durations per line (its legend says how many it has), in s, min or
    h by the median, on a log axis when they spread over more than a decade."""
    pooled = np.concatenate([np.asarray(v, dtype=float) for v in lines.values()] or [np.zeros(0)])
    pooled = pooled[np.isfinite(pooled)]
    scale, unit = _seconds_scale(pooled)
    log, top = log_scale(pooled), float(pooled.max(initial=0.0))
    # Room past the longest value and before the shortest, so that a line rising at either end
    # of the range is not hidden in the frame (log ranges are in log10).
    span = ([np.log10(pooled.min() / scale) - 0.1, np.log10(top / scale) + 0.1] if log
            else [0.0, 1.05 * top / scale if top > 0 else 1.0])
    fig = base_figure(hovermode="closest",
                      xaxis={"title": f"{x_title} ({unit})", "type": "log" if log else "linear",
                             "range": span},
                      yaxis={"title": f"share of {counted} at or below", "tickformat": ".0%",
                             "range": [0, 1.02]})
    for name, values in lines.items():
        x, y = ecdf(values)
        if x.size:  # from 0 at the first value to 100 % held out to the longest of any line
            fig.add_trace(_step(np.r_[x[0], x, top] / scale, np.r_[0.0, y, 1.0],
                                f"{name} ({np.count_nonzero(np.isfinite(values)):,})",
                                showlegend=True, hovertemplate=f"%{{x:.3g}} {unit}: %{{y:.1%}}"))
    return fig


def deploy_table(deploys: pd.DataFrame) -> str:
    """Per template and clone kind: VMs deployed, deploy time, data copied, space per VM."""
    keys = [deploys["template"].astype(str), deploys["clone"].astype(str)]
    by = deploys.groupby(keys)
    frame = pd.DataFrame({
        "VMs": by.size(), "deploy time, median": by["deploy_s"].median(),
        "deploy time, longest": by["deploy_s"].max(), "data copied": by["bytes_copied"].sum(),
        "space per VM, mean": by["space_bytes"].mean(),
        "space per VM, largest": by["space_bytes"].max()}).rename_axis(["template", "clone"])
    size = lambda v: format_value("x_bytes", float(v))  # noqa: E731
    return html_table(frame.reset_index(), {
        "VMs": lambda n: f"{n:,}", "deploy time, median": format_duration,
        "deploy time, longest": format_duration, "data copied": size,
        "space per VM, mean": size, "space per VM, largest": size})


def boot_storm_figure(boots: pd.DataFrame, tdiv: float, tunit: str) -> Any:
    """VMs booting at each instant and VMs booted so far (right axis), against time."""
    began = boots["began_s"].to_numpy(dtype=float)
    ended = boots["ended_s"].to_numpy(dtype=float)
    end = float(np.nanmax(np.r_[began, ended]))
    booting = intervals_open(began, ended, end)
    booting = booting[booting.index >= began.min()]  # the storm, not the quiet before it
    booting.iloc[-1] = np.count_nonzero(np.isnan(ended))  # at the last end, only unfinished boots
    done = np.sort(ended[np.isfinite(ended)])
    fig = base_figure(xaxis_title=_time_title(tunit), margin_r=64,
                      yaxis={"title": "VMs booting", "rangemode": "tozero"},
                      yaxis2={"title": "VMs booted so far", "overlaying": "y", "side": "right",
                              "rangemode": "tozero", "showgrid": False, "zeroline": False,
                              "tickmode": "auto"})
    fig.add_trace(_step(booting.index / tdiv, booting.to_numpy(), "booting"))
    fig.add_trace(_step(np.r_[began.min(), done] / tdiv, np.arange(done.size + 1),
                        "booted so far", yaxis="y2"))
    return fig


# --- network -----------------------------------------------------------------------------------

def busiest_links(links: pd.DataFrame, n: int = MAX_LINES) -> list[str]:
    """The ``n`` links with the highest utilisation over a period that carried anything."""
    peak = links.groupby(links["link"].astype(str))["utilisation"].max()
    peak = peak[peak > 0].sort_values(ascending=False, kind="stable")
    return peak.index[:n].tolist()


def links_figure(links: pd.DataFrame, shown: list[str], tdiv: float, tunit: str) -> Any:
    """Utilisation of the ``shown`` links (mean over each period) against time."""
    fig = base_figure(xaxis_title=_time_title(tunit),
                      yaxis={"title": "utilisation", "tickformat": ".0%", "rangemode": "tozero"})
    for link, rows in _each(links, "link", shown):
        fig.add_trace(_step(rows["time_s"].to_numpy() / tdiv, rows["utilisation"].to_numpy(),
                            link, hovertemplate="%{y:.1%}"))
    fig.add_hline(y=1.0, line_dash="dash", line_color="#999")
    return fig


def _rate_scale(bytes_s: np.ndarray) -> tuple[float, str]:
    top = float(np.nanmax(bytes_s, initial=0.0)) * 8
    return (1e9 / 8, "Gbit/s") if top >= 1e9 else (1e6 / 8, "Mbit/s")


def busiest_link_figure(links: pd.DataFrame, link: str, tdiv: float, tunit: str) -> Any:
    """What one link carried, stacked by what sent it, under its capacity (dotted)."""
    rows = _each(links, "link", [link])[0][1]
    scale, unit = _rate_scale(rows["capacity_bytes_s"].to_numpy(dtype=float))
    x = rows["time_s"].to_numpy() / tdiv
    fig = base_figure(xaxis_title=_time_title(tunit),
                      yaxis={"title": f"{link} ({unit})", "rangemode": "tozero"})
    for column, name in _TRAFFIC:
        fig.add_trace(_step(x, rows[column].to_numpy(dtype=float) / scale, name,
                            stackgroup="traffic", line_width=0.5,
                            hovertemplate=f"%{{y:,.3g}} {unit}"))
    fig.add_trace(_step(x, rows["capacity_bytes_s"].to_numpy(dtype=float) / scale, "capacity",
                        line={"dash": "dot", "color": "#7f7f7f"}))
    return fig


def link_table(links: pd.DataFrame, shown: list[str], busiest: list[Mapping[str, Any]]) -> str:
    """Per shown link: capacity, peak (from the summary, when it has the link), busiest period
    and mean utilisation, and the shares of its traffic by sender."""
    rows = links[links["link"].astype(str).isin(shown)]
    by = rows.groupby(rows["link"].astype(str))
    carried = by["carried_bytes_s"].sum()
    frame = pd.DataFrame({
        "capacity": by["capacity_bytes_s"].max(),
        "peak": pd.Series({b["link"]: b.get("peak_utilisation") for b in busiest}, dtype=float),
        "busiest period": by["utilisation"].max(), "mean": by["utilisation"].mean(),
        **{f"{name} share": by[column].sum() / carried.where(carried > 0)
           for column, name in _TRAFFIC}}).reindex(shown).rename_axis("link").reset_index()
    scale, unit = _rate_scale(frame["capacity"].to_numpy(dtype=float))
    share = lambda v: format_value("x_frac", float(v))  # noqa: E731
    return html_table(frame, {"capacity": lambda v: f"{v / scale:,.4g} {unit}",
                              **{c: share for c in frame.columns[2:]}})


def unserved_figure(traffic: pd.DataFrame) -> Any:
    """How many VMs had which share of their vNIC traffic demand not delivered (in %)."""
    import plotly.graph_objects as go

    edges, counts = histogram(traffic["unserved_frac"].to_numpy(dtype=float) * 100.0)
    fig = base_figure(hovermode="closest", bargap=0, showlegend=False,
                      xaxis_title="traffic demanded but not delivered (% of the VM's demand)",
                      yaxis_title="VMs")
    fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                         marker_line_width=0, name="VMs"))
    return fig


# --- moves -------------------------------------------------------------------------------------

def wave_rows(moves: pd.DataFrame, end_s: float | None = None) -> pd.DataFrame:
    """One row per wave of each move: its start, the first and last disk copy's end, its last VM
    moved, its VMs and the data it sent. The ends of VMs still on their way are ``end_s`` (the
    run's end) when given, so unfinished waves draw up to it; else those VMs are left out."""
    rows = moves.assign(move=moves["move"].astype(str))
    if end_s is not None:
        # Only VMs still on their way run on to the end; a skipped VM has no phases to draw.
        going = ~rows["status"].astype(str).isin(["moved", "skipped"])
        for column in ("copy_end_s", "moved_s"):
            rows.loc[going, column] = rows.loc[going, column].fillna(end_s)
    by = rows.groupby(["move", "wave"], sort=False)
    waves = by.agg(start_s=("wave_start_s", "min"), first_copy_end_s=("copy_end_s", "min"),
                   copies_end_s=("copy_end_s", "max"), end_s=("moved_s", "max"),
                   vms=("vm", "size"), sent_bytes=("sent_bytes", "sum")).reset_index()
    waves["moved"] = by["status"].agg(lambda s: int((s.astype(str) == "moved").sum())).to_numpy()
    return waves.sort_values(["start_s", "wave"], kind="stable").reset_index(drop=True)


def waves_figure(waves: pd.DataFrame, tdiv: float, tunit: str) -> Any:
    """A row per wave, top to bottom in time: the disk copies (from the wave's start to its last
    copy's end; upper bar, solid) and the memory migrations (from its first copy's end to its
    last VM moved; lower bar, hatched), one colour per move."""
    import plotly.graph_objects as go

    fig = base_figure(height=int(min(720, max(260, 100 + 28 * len(waves)))), hovermode="closest",
                      barmode="overlay", xaxis_title=_time_title(tunit),
                      yaxis={"autorange": "reversed", "type": "category", "automargin": True})
    label = waves["move"] + " · wave " + waves["wave"].astype(str)
    phases = (("start_s", "copies_end_s", "disk copies", -0.4, ""),
              ("first_copy_end_s", "end_s", "migration", 0.0, "/"))
    for (move, rows), color in zip(waves.groupby("move", sort=False), _palette(), strict=False):
        for begin, end, what, offset, pattern in phases:
            took = rows[end] - rows[begin]
            fig.add_trace(go.Bar(
                y=label[rows.index], x=took / tdiv, base=rows[begin] / tdiv, orientation="h",
                width=0.4, offset=offset, name=f"{move}: {what}",
                customdata=[format_duration(float(t)) for t in took],
                marker={"color": color, "line_width": 0,
                        "pattern": {"shape": pattern, "fillmode": "overlay", "fgcolor": "white"}},
                hovertemplate=f"%{{y}}, {what}: from %{{base:.4g}} {tunit}, took "
                              "%{customdata}<extra></extra>"))
    return fig


def move_table(waves: pd.DataFrame) -> str:
    """Per move: VMs moved, waves, start, end, how long it and each of its waves took, and the
    data its disk copies sent."""
    rows = []
    for move, w in waves.groupby("move", sort=False):
        took = w["end_s"] - w["start_s"]
        rows.append({"move": move, "VMs moved": f"{int(w['moved'].sum()):,} of "
                     f"{int(w['vms'].sum()):,}", "waves": len(w),
                     "began": format_clock(float(w["start_s"].min())),
                     "ended": format_clock(float(w["end_s"].max())),
                     "took": format_duration(float(w["end_s"].max() - w["start_s"].min())),
                     "each wave took": ", ".join(format_duration(float(t)) for t in took),
                     "data sent": format_value("x_bytes", float(w["sent_bytes"].sum()))})
    return html_table(pd.DataFrame(rows))
