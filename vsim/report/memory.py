"""The report's section on memory overcommit: what reclaiming memory cost the VMs, against the
overcommit ratio (VM memory / host RAM), the capacity planner's how-far-can-we-go question.

Each host whose memory is modelled is one point, at its ratio. Its whole-run figures come from
the summary; the 95th percentile of slowdown is taken here over the vms table's rows (one per VM
per period) on that host, each row weighted alike. Hosts of equal ratio are pooled into one point
so that the curves, and the ratio where slowdown passes the 10 % level, stay well defined.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from vsim.metrics.memory import SLOWED
from vsim.report.figures import base_figure
from vsim.report.formatting import format_value, html_table

__all__ = [
    "LEVEL_COLUMNS",
    "SLOWED",
    "Crossing",
    "crossing",
    "crossing_sentence",
    "host_rows",
    "host_table",
    "over_time",
    "over_time_figure",
    "ratio_curve",
    "slowdown_figure",
    "swap_traffic_figure",
    "swapped_figure",
]

GIB = 1024.0**3
P95 = 0.95

# The levels of the time figure, bottom to top in the order the hypervisor reaches for them.
_LEVELS = (("mem_shared_saved_bytes", "shared (saved)"), ("mem_balloon_bytes", "ballooned"),
           ("mem_compressed_bytes", "compressed"), ("mem_swapped_bytes", "swapped"))
LEVEL_COLUMNS = tuple(column for column, _ in _LEVELS)


class Crossing(NamedTuple):
    """Where a curve first goes above a level.

    ``status`` "crossed": ``x`` is interpolated between the last point at or below the level and
    the first above it; "already": above at the first point, ``x`` is that point's; "never": at or
    below it throughout, ``x`` is the last point's.
    """

    status: Literal["crossed", "already", "never"]
    x: float


def crossing(x: Any, y: Any, level: float) -> Crossing:
    """Where ``y`` (sampled at increasing ``x``) first goes above ``level``, interpolating
    linearly between the two neighbouring points. Points with a missing ``y`` are skipped."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        raise ValueError("crossing() needs at least one point")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    above = np.flatnonzero(y > level)
    if above.size == 0:
        return Crossing("never", float(x[-1]))
    i = int(above[0])
    if i == 0:
        return Crossing("already", float(x[0]))
    # y[i - 1] <= level < y[i], so the slope is positive and the crossing lies in [x[i-1], x[i]).
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return Crossing("crossed", float(x0 + (level - y0) * (x1 - x0) / (y1 - y0)))


def crossing_sentence(c: Crossing, what: str, level: float = SLOWED) -> str:
    """``what`` (e.g. "The 95th percentile of slowdown") against the level, as a sentence."""
    pct = f"{(level - 1) * 100:.3g} %"
    if c.status == "crossed":
        return f"{what} passes {pct} at an overcommit ratio of about {c.x:.2f}."
    if c.status == "already":
        return f"{what} is already above {pct} at the lowest ratio simulated, {c.x:.2f}."
    return f"{what} stays at or below {pct} up to the highest ratio simulated, {c.x:.2f}."


def _host_ids(names: pd.Series | None, hosts: list[Mapping[str, Any]]) -> dict[str, int]:
    """Host id by name for the modelled hosts (empty without a host_info table)."""
    if names is None:
        return {}
    by_name = {str(n): int(i) for i, n in names.items()}
    return {h["host"]: by_name[h["host"]] for h in hosts if h["host"] in by_name}


def host_rows(hosts: list[Mapping[str, Any]], vms: pd.DataFrame | None,
              names: pd.Series | None) -> pd.DataFrame:
    """One row per modelled host: its ratio, the summary's figures, and the 95th percentile of its
    VM-period slowdown (NaN without per-VM rows). ``names``: host name by id, from host_info.
    Column ``host_id`` is the host's id (-1 when unknown)."""
    rows = pd.DataFrame([dict(h) for h in hosts])
    rows["ratio"] = np.divide(rows["vm_ram_bytes"], rows["ram_bytes"])
    ids = _host_ids(names, hosts)
    rows["host_id"] = rows["host"].map(ids).fillna(-1).astype(int)
    rows["slowdown_p95"] = np.nan
    if vms is not None and "mem_slowdown" in vms.columns and ids:
        on = vms.loc[vms["host"].isin(list(ids.values())), ["host", "mem_slowdown"]]
        p95 = on.groupby("host")["mem_slowdown"].quantile(P95)
        rows["slowdown_p95"] = rows["host_id"].map(p95)
    return rows.sort_values("ratio", kind="stable").reset_index(drop=True)


def ratio_curve(rows: pd.DataFrame, vms: pd.DataFrame | None) -> pd.DataFrame:
    """One row per distinct ratio: the mean over its hosts of their means, the highest peak, and
    the 95th percentile of slowdown over the VM-period rows of all its hosts together."""
    key = rows["ratio"].round(6)
    curve = rows.groupby(key).agg(
        swapped_mean_bytes=("swapped_mean_bytes", "mean"),
        swapped_peak_bytes=("swapped_peak_bytes", "max"),
        slowdown_mean=("slowdown_mean", "mean"),
        slowdown_p95=("slowdown_p95", "mean"),  # one host per ratio: its own, kept as is
        hosts=("host", "size"),
    )
    pooled = curve.index[curve["hosts"] > 1]
    if len(pooled) and vms is not None and "mem_slowdown" in vms.columns:
        ratio_of = pd.Series(key.to_numpy(), index=rows["host_id"])
        ratio_of = ratio_of[ratio_of.index >= 0]
        on = vms.loc[vms["host"].isin(ratio_of.index), ["host", "mem_slowdown"]]
        p95 = on.groupby(on["host"].map(ratio_of))["mem_slowdown"].quantile(P95)
        curve.loc[pooled, "slowdown_p95"] = p95.reindex(pooled)
    return curve.rename_axis("ratio").reset_index()


def _ratio_axis() -> dict[str, Any]:
    return {"title": "overcommit ratio (VM memory / host RAM)", "tickformat": ".3~f"}


def swapped_figure(curve: pd.DataFrame) -> Any:
    """Mean and peak memory swapped out to disk (GiB) against the overcommit ratio."""
    import plotly.graph_objects as go

    fig = base_figure(hovermode="x unified", xaxis=_ratio_axis(),
                      yaxis={"title": "swapped (GiB per host)", "rangemode": "tozero"})
    for column, name in (("swapped_mean_bytes", "mean over the run"),
                         ("swapped_peak_bytes", "peak (highest period mean)")):
        fig.add_trace(go.Scatter(x=curve["ratio"], y=curve[column] / GIB, name=name,
                                 mode="lines+markers", hovertemplate="%{y:.3g} GiB"))
    return fig


def slowdown_figure(curve: pd.DataFrame, cross: Crossing | None) -> Any:
    """Mean and 95th-percentile slowdown against the ratio; dashed: the 10 % level; dotted: where
    the 95th percentile crosses it."""
    import plotly.graph_objects as go

    fig = base_figure(hovermode="x unified", xaxis=_ratio_axis(),
                      yaxis={"title": "slowdown (time a unit of work takes, ×)"})
    fig.add_trace(go.Scatter(x=curve["ratio"], y=curve["slowdown_mean"], name="mean",
                             mode="lines+markers", hovertemplate="%{y:.3f}"))
    if curve["slowdown_p95"].notna().any():
        fig.add_trace(go.Scatter(x=curve["ratio"], y=curve["slowdown_p95"],
                                 name="95th percentile of VM-periods", mode="lines+markers",
                                 hovertemplate="%{y:.3f}"))
    fig.add_hline(y=SLOWED, line_dash="dash", line_color="#999",
                  annotation_text=f"{(SLOWED - 1) * 100:.3g} % slower",
                  annotation_position="top left")
    if cross is not None and cross.status == "crossed":
        fig.add_vline(x=cross.x, line_dash="dot", line_color="#999",
                      annotation_text=f"{cross.x:.2f}", annotation_position="bottom right")
    # Keep the 10 % line in view even when every VM ran at full speed.
    top = max(float(np.nanmax(curve[["slowdown_mean", "slowdown_p95"]].to_numpy(),
                              initial=1.0)), SLOWED)
    fig.update_yaxes(range=[0.99, 1.0 + (top - 1.0) * 1.1])
    return fig


def over_time(hosts: pd.DataFrame, host_ids: list[int] | None) -> pd.DataFrame:
    """Per period, the memory levels and swap traffic summed over the modelled hosts
    (``host_ids``; all hosts when None)."""
    if host_ids is not None:
        hosts = hosts[hosts["host"].isin(host_ids)]
    columns = [*LEVEL_COLUMNS] + [c for c in ("swap_in_bytes", "swap_out_bytes")
                                         if c in hosts.columns]
    return hosts.groupby("time_s", sort=True)[columns].sum().reset_index()


def over_time_figure(levels: pd.DataFrame, tdiv: float, tunit: str) -> Any:
    """Memory shared, ballooned, compressed and swapped (GiB), stacked, against time."""
    import plotly.graph_objects as go

    fig = base_figure(xaxis_title=f"simulated time ({tunit})",
                      yaxis={"title": "VM memory (GiB, all modelled hosts)", "rangemode": "tozero"})
    x = levels["time_s"].to_numpy() / tdiv
    for column, name in _LEVELS:
        # Values are averages over the period that starts at x, hence the step shape.
        fig.add_trace(go.Scatter(x=x, y=levels[column].to_numpy() / GIB, name=name, mode="lines",
                                 line_shape="hv", line_width=0.5, stackgroup="memory",
                                 hovertemplate="%{y:.3g} GiB"))
    return fig


def swap_traffic_figure(levels: pd.DataFrame, period_s: float, tdiv: float, tunit: str) -> Any:
    """Swap-out and swap-in rates (MiB/s, mean over each period) against time."""
    import plotly.graph_objects as go

    fig = base_figure(xaxis_title=f"simulated time ({tunit})",
                      yaxis={"title": "swap traffic (MiB/s, all modelled hosts)",
                             "rangemode": "tozero"})
    x = levels["time_s"].to_numpy() / tdiv
    for column, name in (("swap_out_bytes", "out (to disk)"), ("swap_in_bytes", "in (from disk)")):
        fig.add_trace(go.Scatter(x=x, y=levels[column].to_numpy() / period_s / 2**20, name=name,
                                 mode="lines", line_shape="hv", hovertemplate="%{y:.3g} MiB/s"))
    return fig


def host_table(rows: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "host": rows["host"], "ratio": rows["ratio"], "worst state": rows["state_worst"],
        "balloon": rows["balloon_mean_bytes"], "shared saved": rows["saved_mean_bytes"],
        "compressed": rows["compressed_mean_bytes"], "swapped": rows["swapped_mean_bytes"],
        "swapped peak": rows["swapped_peak_bytes"], "swapped in": rows["swap_in_bytes"],
        "slowdown": rows["slowdown_mean"], "slowdown p95": rows["slowdown_p95"],
        f"VM-time > {(SLOWED - 1) * 100:.3g} % slower": rows["vm_time_slowed_frac"],
    })

    def size(v: Any) -> str:
        return format_value("x_bytes", float(v))

    def factor(v: Any) -> str:
        return "–" if pd.isna(v) else f"{float(v):.3f}"

    fmt = {"ratio": lambda v: f"{v:.3f}", "balloon": size, "shared saved": size,
           "compressed": size, "swapped": size, "swapped peak": size, "swapped in": size,
           "slowdown": factor, "slowdown p95": factor,
           shown.columns[-1]: lambda v: format_value("x_frac", float(v))}
    return html_table(shown, fmt)
