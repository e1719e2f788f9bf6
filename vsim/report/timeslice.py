"""The report's section on time-sliced hosts: CPU ready and wake-up latency against the number
of vCPUs per core, the capacity planner's consolidation-ratio question.

Each time-sliced host is one point; its VMs are drawn per role. A VM group named
``<role>-<host group>`` (``web-r4`` on hosts ``r4``) counts as role ``web``, so that one scenario
can put the same roles on hosts of several ratios and read one line per role.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vsim.report.figures import base_figure
from vsim.report.formatting import format_value, html_table

__all__ = ["READY_THRESHOLDS", "host_table", "latency_figure", "ratio_rows", "ready_figure"]

# The usual alarm levels of CPU ready per vCPU (VMware's guidance: investigate above 5 %, users
# notice above 10 %).
READY_THRESHOLDS = (0.05, 0.10)


def _role(vm_group: str, host_group: str) -> str:
    suffix = f"-{host_group}"
    return vm_group[: -len(suffix)] if vm_group.endswith(suffix) and vm_group != suffix else vm_group


def ratio_rows(hosts: list[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (host, role): vCPUs per core, ready, co-stop, latency percentiles."""
    rows = []
    for h in hosts:
        rows.append({"host": h["host"], "role": "all VMs", "vcpus_per_core": h["vcpus_per_core"],
                     **{k: h[k] for k in ("ready_frac", "costop_frac", "latency_p50_s",
                                          "latency_p99_s", "wakeups")}})
        for group, g in h.get("vm_groups", {}).items():
            rows.append({"host": h["host"], "role": _role(group, h["group"]),
                         "vcpus_per_core": h["vcpus_per_core"],
                         **{k: g[k] for k in ("ready_frac", "costop_frac", "latency_p50_s",
                                              "latency_p99_s", "wakeups")}})
    table = pd.DataFrame(rows)
    return table.sort_values(["role", "vcpus_per_core"], kind="stable").reset_index(drop=True)


def _by_role(rows: pd.DataFrame, column: str, scale: float) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for role, part in rows.groupby("role", sort=False):
        y = pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float) * scale
        out.append((str(role), part["vcpus_per_core"].to_numpy(), y))
    return out


def ready_figure(rows: pd.DataFrame) -> Any:
    """CPU ready (%) against vCPUs per core, one line per role, with the alarm levels."""
    import plotly.graph_objects as go

    fig = base_figure(hovermode="closest", xaxis_title="vCPUs per physical core",
                  yaxis={"title": "CPU ready (% of vCPU time)", "rangemode": "tozero"})
    for role, x, y in _by_role(rows, "ready_frac", 100.0):
        fig.add_trace(go.Scatter(x=x, y=y, name=role, mode="lines+markers"))
    for level in READY_THRESHOLDS:
        fig.add_hline(y=level * 100, line_dash="dash", line_color="#999",
                      annotation_text=f"{level:.0%}", annotation_position="top left")
    return fig


def latency_figure(rows: pd.DataFrame) -> Any:
    """99th-percentile wake-up latency (ms, log scale) against vCPUs per core, per role."""
    import plotly.graph_objects as go

    fig = base_figure(hovermode="closest", xaxis_title="vCPUs per physical core",
                  yaxis={"title": "p99 wake-up latency (ms)", "type": "log"})
    for role, x, y in _by_role(rows, "latency_p99_s", 1000.0):
        keep = np.isfinite(y) & (y > 0)
        fig.add_trace(go.Scatter(x=x[keep], y=y[keep], name=role, mode="lines+markers"))
    return fig


def _short_time(seconds: Any) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    if seconds < 1e-6:  # the histogram's lowest bin: scheduled at once
        return "< 1 µs"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    return f"{seconds * 1e3:.3g} ms"


def host_table(rows: pd.DataFrame) -> str:
    shown = rows.rename(columns={"vcpus_per_core": "vCPUs/core", "ready_frac": "ready",
                                 "costop_frac": "co-stop", "latency_p50_s": "p50 wake-up",
                                 "latency_p99_s": "p99 wake-up"})
    fmt = {"ready": lambda v: format_value("x_frac", v), "co-stop": lambda v: format_value("x_frac", v),
           "p50 wake-up": _short_time, "p99 wake-up": _short_time,
           "vCPUs/core": lambda v: f"{v:.2f}", "wakeups": lambda n: f"{n:,}"}
    return html_table(shown, fmt)
