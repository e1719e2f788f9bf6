"""The report's section on failures, HA and DR: how long the VMs stayed down (the RTO achieved),
how much data a failover lost (the RPO achieved), what was left standing while hosts were down,
and the headline figures a capacity planner quotes, with their spread over replications.

Everything is read from the ``outages`` and ``host_failures`` tables and the ``availability``
summary of :mod:`vsim.metrics.availability`. The distributions pool the outages of every Monte
Carlo replication: each replication is an equally likely history, so together they estimate the
distribution of one outage's RTO better than any single one. The timeline shows replication 0
alone (the run with the scenario's own seed): averaging histories would draw a capacity that was
never there, and overlaying them would be unreadable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from vsim.report.figures import base_figure
from vsim.report.formatting import format_duration, format_value, html_table

__all__ = [
    "FAILURE_COLUMNS",
    "OUTAGE_COLUMNS",
    "Timeline",
    "admission_table",
    "capacity_figure",
    "cdf_figure",
    "cdf_table",
    "data_loss_lines",
    "ecdf",
    "failure_marks",
    "first_replication",
    "headline_table",
    "hosts_down",
    "intervals_open",
    "log_scale",
    "rto_lines",
    "timeline",
    "vms_down",
]

OUTAGE_COLUMNS = ["replication", "failed_s", "downtime_s", "restarted", "priority", "group", "how"]
FAILURE_COLUMNS = ["replication", "failed_s", "back_s"]
MINUTE = 60.0
DECADES = 1.0  # a wider spread than this (max / min) gets a log axis
MAX_GROUPS = 8  # more lines than this in one CDF no longer tell apart


def ecdf(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of ``values`` (NaN dropped): its distinct values ascending, and at each
    the fraction of values at or below it."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    distinct, counts = np.unique(x, return_counts=True)
    return distinct, np.cumsum(counts) / max(x.size, 1)


def log_scale(values: Any, decades: float = DECADES) -> bool:
    """Whether ``values`` spread over more than ``decades`` powers of ten. A zero (a sync
    replica's data loss) cannot sit on a log axis, so any zero keeps the axis linear."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    return bool(x.size and x.min() > 0 and x.max() / x.min() > 10**decades)


def rto_lines(outages: pd.DataFrame) -> tuple[str, dict[str, np.ndarray]]:
    """The downtimes of the restarted outages, one array per restart priority (highest first),
    or per VM group when every restarted VM had the same priority; and what they are split by.
    Outages never restarted are left out: their downtime only says how long the run lasted."""
    done = outages[outages["restarted"].astype(bool)]
    if done["priority"].nunique() > 1:
        keys = sorted(done["priority"].unique().tolist(), reverse=True)
        return "priority", {f"priority {k}": done.loc[done["priority"] == k, "downtime_s"]
                            .to_numpy(dtype=float) for k in keys}
    return "VM group", _by_group(done, "downtime_s")


def _by_group(rows: pd.DataFrame, column: str) -> dict[str, np.ndarray]:
    groups = rows["group"].astype(str)
    if not 1 < groups.nunique() <= MAX_GROUPS:
        return {"all VMs": rows[column].to_numpy(dtype=float)}
    return {g: rows.loc[groups == g, column].to_numpy(dtype=float) for g in sorted(groups.unique())}


def data_loss_lines(outages: pd.DataFrame) -> dict[str, np.ndarray]:
    """The data-loss windows of the DR failovers, one array per VM group (or one in all)."""
    dr = outages[(outages["how"].astype(str) == "dr") & outages["data_loss_s"].notna()]
    return _by_group(dr, "data_loss_s") if len(dr) else {}


def cdf_figure(lines: Mapping[str, np.ndarray], x_title: str, counted: str = "outages",
               rpo_s: float | None = None) -> Any:
    """One empirical CDF per line (its legend says how many ``counted`` it has), x in minutes,
    log when the values spread over more than ``DECADES`` decades; dashed: the RPO, if given."""
    import plotly.graph_objects as go

    pooled = np.concatenate([np.asarray(v, dtype=float) for v in lines.values()] or [np.zeros(0)])
    pooled = pooled[~np.isnan(pooled)] / MINUTE
    log = log_scale(pooled)
    rpo = rpo_s / MINUTE if rpo_s is not None and math.isfinite(rpo_s) and rpo_s > 0 else None
    shown = np.r_[pooled, [] if rpo is None else [rpo]]
    top = float(shown.max(initial=0.0))
    # Some room past the longest value, so a last rise is not hidden in the frame; a linear axis
    # starts at 0, so how far a distribution lies from zero is seen (log ranges are in log10).
    span = ([math.log10(shown.min()) - 0.05, math.log10(top) + 0.05] if log
            else [0.0, 1.05 * top if top > 0 else 1.0])
    fig = base_figure(hovermode="closest", xaxis={"title": f"{x_title} (min)",
                                                  "type": "log" if log else "linear",
                                                  "range": span},
                      yaxis={"title": f"share of {counted} at or below", "tickformat": ".0%",
                             "range": [0, 1.02]})
    for name, values in lines.items():
        x, y = ecdf(values)
        if x.size == 0:
            continue
        n = int(np.count_nonzero(~np.isnan(np.asarray(values, dtype=float))))
        # A rise from 0 at the first value, and 100 % held out to the longest value of any line,
        # so that lines ending early stay in sight instead of stopping mid-plot.
        x, y = np.r_[x[0], x], np.r_[0.0, y]
        if x[-1] / MINUTE < top:
            x, y = np.r_[x, top * MINUTE], np.r_[y, 1.0]
        fig.add_trace(go.Scatter(x=x / MINUTE, y=y, mode="lines",
                                 line_shape="hv", name=f"{name} ({n:,})",
                                 hovertemplate="%{x:.3g} min: %{y:.1%}"))
    if rpo is not None:
        # A trace, not a layout line: annotations on a log axis want log10 coordinates and shapes
        # do not, while a trace sits right on either axis and names itself in the legend.
        fig.add_trace(go.Scatter(x=[rpo, rpo], y=[0.0, 1.0], mode="lines",
                                 name=f"RPO {format_duration(rpo * MINUTE)}", hoverinfo="skip",
                                 line={"dash": "dash", "color": "#7f7f7f"}))
    return fig


def cdf_table(lines: Mapping[str, np.ndarray], by: str) -> str:
    """Count, median, 95th percentile and maximum of each line of a CDF figure."""
    rows = [{by: name, "outages": len(v), "median": float(np.median(v)),
             "95th percentile": float(np.percentile(v, 95)), "max": float(np.max(v))}
            for name, v in lines.items() if len(v)]
    return html_table(pd.DataFrame(rows), {"outages": lambda n: f"{n:,}", "median": format_duration,
                                           "95th percentile": format_duration,
                                           "max": format_duration})


def first_replication(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of replication 0 (the run with the scenario's seed), or all rows when the table
    has no replication column."""
    return table[table["replication"] == 0] if "replication" in table.columns else table


def intervals_open(starts: Any, ends: Any, end_s: float) -> pd.Series:
    """How many of the intervals [start, end) are open at each instant from 0 to ``end_s``: a
    step series indexed by the instants it changes at (a NaN end: open to the end). Its value at
    an index holds until the next one; the last index is ``end_s``, repeating the last value."""
    starts = np.sort(np.asarray(starts, dtype=float))
    ends = np.sort(np.nan_to_num(np.asarray(ends, dtype=float), nan=np.inf))
    times = np.unique(np.r_[0.0, starts, ends[np.isfinite(ends)]])
    times = times[(times >= 0.0) & (times < end_s)]
    if times.size == 0:
        times = np.zeros(1)
    # Open at t: started at or before t, not yet ended at t (an end at t has closed it).
    count = np.searchsorted(starts, times, side="right") - np.searchsorted(ends, times, "right")
    if end_s > times[-1]:  # the last value holds to the end (an outage censored there included)
        times, count = np.r_[times, end_s], np.r_[count, count[-1]]
    return pd.Series(count, index=pd.Index(times, name="time_s"), name="open")


def hosts_down(failures: pd.DataFrame, end_s: float) -> pd.Series:
    """Hosts failed and not yet back, over time (one replication's host_failures rows)."""
    return intervals_open(failures["failed_s"], failures["back_s"], end_s)


def vms_down(outages: pd.DataFrame, end_s: float) -> pd.Series:
    """VMs down over time (one replication's outages rows): from their host's failure for their
    downtime, which ends when they are up again, left, or the run ended."""
    failed = outages["failed_s"].to_numpy(dtype=float)
    return intervals_open(failed, failed + outages["downtime_s"].to_numpy(dtype=float), end_s)


def failure_marks(failures: pd.DataFrame) -> pd.DataFrame:
    """One mark per failure instant and cause: time, hosts failing then, and a label naming them."""
    cause = failures["process"].astype(str) if "process" in failures.columns else "failure"
    names = (failures["name"] if "name" in failures.columns else failures["host"]).astype(str)
    frame = pd.DataFrame({"failed_s": failures["failed_s"], "cause": cause, "name": names})
    marks = frame.groupby(["failed_s", "cause"], sort=True)["name"].agg(list).reset_index()
    marks["hosts"] = marks["name"].map(len)
    marks["label"] = [f"{c}: {', '.join(n[:4])}{', …' if len(n) > 4 else ''}"
                      for c, n in zip(marks["cause"], marks["name"], strict=True)]
    return marks.drop(columns="name")


class Timeline(NamedTuple):
    """What was down over replication 0, as step series from 0 to the end of the run."""

    hosts_down: pd.Series
    vms_down: pd.Series | None  # None without outages
    marks: pd.DataFrame  # failure_marks


def timeline(failures: pd.DataFrame | None, outages: pd.DataFrame | None,
             end_s: float | None = None) -> Timeline | None:
    """Replication 0's hosts down, VMs down and failures, or None when nothing failed in it.
    Without the run's length (``end_s``), the series end at the last instant the tables know."""
    fails = (pd.DataFrame({"failed_s": [], "back_s": []}) if failures is None
             else first_replication(failures))
    outs = None if outages is None else first_replication(outages)
    if outs is not None and not len(outs):
        outs = None
    if not len(fails) and outs is None:
        return None
    if end_s is None:
        known = [fails["failed_s"], fails["back_s"]]
        if outs is not None:
            known.append(outs["failed_s"] + outs["downtime_s"])
        end_s = float(np.nanmax(np.concatenate([np.asarray(k, dtype=float) for k in known])))
    return Timeline(hosts_down(fails, end_s), None if outs is None else vms_down(outs, end_s),
                    failure_marks(fails))


def capacity_figure(line: Timeline, hosts_total: int | None, tdiv: float, tunit: str) -> Any:
    """Hosts up (or, without a host count, hosts down) and VMs down against time, on two y axes;
    an × on the hosts line at each failure."""
    import plotly.graph_objects as go

    down_hosts, down_vms, marks = line
    label = "hosts up" if hosts_total else "hosts down"
    hosts = (hosts_total - down_hosts) if hosts_total else down_hosts
    fig = base_figure(xaxis_title=f"simulated time ({tunit})", hovermode="closest",
                      yaxis={"title": label, "rangemode": "tozero"})
    fig.add_trace(go.Scatter(x=hosts.index / tdiv, y=hosts.to_numpy(), mode="lines",
                             line_shape="hv", name=label))
    if down_vms is not None:
        # Its own axis, without a grid: two unaligned grids make both unreadable.
        fig.update_layout(yaxis2={"title": "VMs down", "overlaying": "y", "side": "right",
                                  "rangemode": "tozero", "showgrid": False, "zeroline": False,
                                  "tickmode": "auto"},
                          margin_r=64)  # room for the right axis' labels and title
        fig.add_trace(go.Scatter(x=down_vms.index / tdiv, y=down_vms.to_numpy(), mode="lines",
                                 line_shape="hv", name="VMs down", yaxis="y2"))
    if len(marks):
        at = hosts.reindex(marks["failed_s"].to_numpy(), method="ffill")
        fig.add_trace(go.Scatter(x=marks["failed_s"] / tdiv, y=at.to_numpy(), mode="markers",
                                 name="failure", marker={"symbol": "x", "size": 10,
                                                         "color": "#d62728"},
                                 text=marks["label"], hovertemplate="%{text}<extra></extra>"))
    return fig


# The headline figures: (label, key whose suffix gives the unit, value in one run's summary).
_HEADLINE = (
    ("Host failures", "host_failures", lambda a: a["host_failures"]),
    ("Host downtime (hours)", "host_down_hours", lambda a: a["host_down_hours"]),
    ("VM outages", "vm_outages", lambda a: a["vm_outages"]),
    ("VMs affected", "vms_affected", lambda a: a["vms_affected"]),
    ("Restarted by HA", "restarted_ha", lambda a: a["restarted"]["ha"]),
    ("Restarted by DR failover", "restarted_dr", lambda a: a["restarted"]["dr"]),
    ("Restarted on repair", "restarted_repair", lambda a: a["restarted"]["repair"]),
    ("Not restarted", "not_restarted", lambda a: a["not_restarted"]),
    ("VM-hours lost", "vm_hours_lost", lambda a: a["vm_hours_lost"]),
    ("RTO, median", "rto_p50_s", lambda a: a["rto_s"]["p50"]),
    ("RTO, 95th percentile", "rto_p95_s", lambda a: a["rto_s"]["p95"]),
    ("RTO, worst", "rto_max_s", lambda a: a["rto_s"]["max"]),
    ("Restart attempts, most for one VM", "restart_attempts_max",
     lambda a: a["restart_attempts_max"]),
    ("Data loss of a DR failover, worst", "data_loss_max_s",
     lambda a: (a.get("data_loss_s") or {}).get("max")),
    ("Power-ons refused by admission control", "admission_refused",
     lambda a: a["admission"]["refused"]),
    ("VMs replicated", "replicated_vms", lambda a: (a.get("replication") or {}).get("vms")),
    ("Data-loss window over the run, worst", "worst_data_loss_s",
     lambda a: (a.get("replication") or {}).get("worst_data_loss_s")),
    ("Data-loss window over the run, mean", "mean_data_loss_s",
     lambda a: (a.get("replication") or {}).get("mean_data_loss_s")),
)


def _interval(values: np.ndarray, confidence: float) -> dict[str, float] | None:
    """Mean and Student-t confidence interval, as vsim.metrics.availability computes them for
    the figures the summary carries (NaN values, undefined in their replication, left out)."""
    from scipy import stats

    x = values[~np.isnan(values)]
    if x.size == 0:
        return None
    mean, sd = float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0
    if sd == 0.0:
        return {"mean": mean, "ci_low": mean, "ci_high": mean}
    lo, hi = stats.t.interval(confidence, x.size - 1, loc=mean, scale=sd / math.sqrt(x.size))
    return {"mean": mean, "ci_low": float(lo), "ci_high": float(hi)}


def _per_replication(n: int, outages: pd.DataFrame | None, failures: pd.DataFrame | None,
                     replications: pd.DataFrame | None) -> pd.DataFrame:
    """The headline figures the summary does not spread over replications, one row per
    replication; a replication with no row in a table had none of what it counts."""
    frame = pd.DataFrame(index=pd.RangeIndex(n, name="replication"))
    if replications is not None and "replication" in replications.columns:
        frame = frame.join(replications.set_index("replication").drop(columns="seed",
                                                                       errors="ignore"))
    if outages is not None:
        by = outages.groupby("replication")
        frame["vms_affected"] = by["vm"].nunique() if "vm" in outages.columns else np.nan
        for how in ("ha", "dr", "repair"):
            done = outages["restarted"].astype(bool) & (outages["how"].astype(str) == how)
            frame[f"restarted_{how}"] = done.groupby(outages["replication"]).sum()
    if failures is not None and "down_s" in failures.columns:
        frame["host_down_hours"] = failures.groupby("replication")["down_s"].sum() / 3600.0
    counts = [c for c in ("host_failures", "vms_affected", "restarted_ha", "restarted_dr",
                          "restarted_repair", "host_down_hours") if c in frame.columns]
    frame[counts] = frame[counts].fillna(0.0)
    return frame


def headline_table(avail: Mapping[str, Any], outages: pd.DataFrame | None = None,
                   failures: pd.DataFrame | None = None,
                   replications: pd.DataFrame | None = None) -> str:
    """The headline figures of replication 0; with several replications also their mean and
    confidence interval over them, from the summary's ``replications`` where it has the figure,
    else computed here in the same way from the tables."""
    spread = avail.get("replications") or {}
    n, confidence = int(spread.get("n", 1)), float(spread.get("confidence", 0.95))
    per = _per_replication(n, outages, failures, replications) if n > 1 else None
    rows = []
    for label, key, get in _HEADLINE:
        try:
            value = get(avail)
        except (KeyError, TypeError):
            continue
        if value is None:
            continue
        row = {"figure": label, "replication 0" if n > 1 else "value": format_value(key, value)}
        if per is not None:
            ci = spread.get(key) or (_interval(per[key].to_numpy(dtype=float), confidence)
                                     if key in per.columns else None)
            row[f"mean of {n}"] = "–" if ci is None else format_value(key, float(ci["mean"]))
            low, high = ("–", "–") if ci is None else (
                format_value(key, float(ci["ci_low"])), format_value(key, float(ci["ci_high"])))
            row[f"{confidence * 100:.3g} % confidence interval"] = (
                low if low == high else f"{low} – {high}")
        rows.append(row)
    return html_table(pd.DataFrame(rows))


_ADMISSION_LABELS = {
    "host_failures": "host failures tolerated", "slot_cpu_hz": "slot CPU",
    "slot_mem_bytes": "slot memory", "slots_total": "slots in all",
    "slots_used": "slots used", "slots_after_failures": "slots left after those failures",
    "vms_powered_on": "VMs powered on", "failover_capacity_hosts": "failover capacity (hosts)",
    "failover_hosts": "failover hosts", "failover_hosts_up": "failover hosts up",
}


def _label(key: str) -> str:
    """A figure's label from its key, without the unit its formatted value shows:
    ``cpu_reserved_frac`` -> "CPU reserved"."""
    for suffix in ("_hz", "_bytes", "_frac"):
        key = key.removesuffix(suffix)
    words = {"cpu": "CPU", "mem": "memory"}
    return " ".join(words.get(w, w) for w in key.split("_"))


def admission_table(clusters: Mapping[str, Mapping[str, float]]) -> str | None:
    """HA admission control's figures at the end of the run, one column per cluster (site)."""
    clusters = {site: f for site, f in clusters.items() if f}
    if not clusters:
        return None
    keys = list(dict.fromkeys(k for f in clusters.values() for k in f))
    frame = pd.DataFrame({"figure": [_ADMISSION_LABELS.get(k) or _label(k) for k in keys],
                          **{site: [format_value(k, f.get(k)) for k in keys]
                             for site, f in clusters.items()}})
    return html_table(frame)
