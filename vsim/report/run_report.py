"""One run's report.html: a single self-contained page built from the run's result tables.

The page must open offline years later, mailed around or archived with the results, so plotly.js
is inlined once in the head, every figure is a div plus a small script calling it, the CSS is
inline, and nothing is fetched from the network. Each section appears only when the table and
columns it needs are there, so runs that record less (no jobs, no per-VM rows) still get a report.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vsim.report import aggregate as agg
from vsim.report import availability as av
from vsim.report import figures as figs
from vsim.report import memory as mem
from vsim.report import storage as st
from vsim.report import timeslice as ts
from vsim.report.formatting import (
    format_clock,
    format_duration,
    format_value,
    html_table,
    summary_rows,
    time_axis,
)
from vsim.report.page import figure_div, html_page, write_atomic

__all__ = ["build_report", "write_report"]

Tables = Mapping[str, pd.DataFrame | None]

EVENT_ROWS = 50

_CSS = """
h3 { margin: 20px 0 4px; font-size: 1.05em; }
.meta { color: #555; font-size: 0.92em; }
nav { font-size: 0.92em; margin: 8px 0; }
nav a { margin-right: 14px; color: #1f5fa8; text-decoration: none; }
table.figures td:nth-child(2) { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { max-height: 480px; overflow: auto; }
"""


@dataclass(frozen=True)
class _Section:
    anchor: str
    title: str
    body: str


@dataclass(frozen=True)
class _Context:
    tables: Tables
    summary: Mapping[str, Any]
    tdiv: float  # seconds per unit of the time axes
    tunit: str

    def table(self, name: str, columns: list[str]) -> pd.DataFrame | None:
        """Table ``name`` if it has rows and all of ``columns``, else None (skip the section)."""
        table = self.tables.get(name)
        return table if table is not None and agg.has_columns(table, columns) else None

    def names(self, info: str, key: str) -> pd.Series | None:
        """Names by id from an info table, when it has them."""
        table = self.table(info, [key, "name"])
        return None if table is None else table.set_index(key)["name"]




def _caption(text: str) -> str:
    return f'<p class="caption">{html.escape(text)}</p>'


def _datacenter_section(ctx: _Context) -> _Section | None:
    dc = ctx.table("datacenter", ["time_s"])
    if dc is None:
        return None
    thin = agg.thin_rows(dc)
    note = (
        ""
        if len(thin) == len(dc)
        else (
            f" Consecutive periods are averaged {-(-len(dc) // len(thin))} at a time to keep "
            "the page light."
        )
    )
    parts = []
    if agg.has_columns(dc, ["power_w"]):
        parts += [
            "<h3>Power and hosts on</h3>",
            figure_div(figs.datacenter_power_figure(thin, ctx.tdiv, ctx.tunit), "fig-dc-power"),
            _caption(
                "Total power drawn by the hosts (mean over each period) and the number "
                "of hosts powered on." + note
            ),
        ]
    if agg.has_columns(dc, ["cpu_demand_hz", "cpu_alloc_hz"]):
        parts += [
            "<h3>CPU demanded and delivered</h3>",
            figure_div(figs.datacenter_cpu_figure(thin, ctx.tdiv, ctx.tunit), "fig-dc-cpu"),
            _caption(
                "CPU the VMs asked for against what the hypervisors gave them; the gap "
                "is demand left unserved. The dotted line is the capacity of the hosts on." + note
            ),
        ]
    if set(dc.columns) & {"vms_running", "vms_queued"}:
        parts += [
            "<h3>VMs running and queued</h3>",
            figure_div(figs.datacenter_vms_figure(thin, ctx.tdiv, ctx.tunit), "fig-dc-vms"),
            _caption("VMs running on a host, and VMs waiting for a host to be placed on." + note),
        ]
    if not parts:
        return None
    return _Section("sec-datacenter", "Datacenter over time", "".join(parts))


def _heatmap_section(ctx: _Context) -> _Section | None:
    hosts = ctx.table("hosts", ["time_s", "host", "cpu_util_frac"])
    if hosts is None:
        return None
    data = agg.host_util_heatmap(hosts)
    shown = len(data.host_ids)
    if shown == data.hosts_total:
        which = f"All {shown:,} hosts, one row each."
    else:
        which = (
            f"{shown:,} of {data.hosts_total:,} hosts, picked evenly over the host ids "
            f"(about one in {data.host_step:.3g}); unpicked hosts are not drawn, not averaged in."
        )
    period = ctx.summary.get("period_s")
    if data.periods_per_column > 1:
        span = (
            format_duration(data.periods_per_column * float(period))
            if isinstance(period, numbers.Real)
            else f"{data.periods_per_column} periods"
        )
        which += f" Each column is the mean of {data.periods_per_column} periods ({span})."
    if "on_frac" in hosts.columns:
        which += " Blank cells: the host was off."
    body = figure_div(
        figs.host_heatmap_figure(data, ctx.tdiv, ctx.tunit), "fig-host-heatmap"
    ) + _caption(
        "CPU utilisation of each host over time, from 0 % (idle) to 100 % (every core "
        "busy). " + which
    )
    return _Section("sec-heatmap", "Host utilisation", body)


def _measured_ready(ctx: _Context) -> pd.Series | None:
    """Whole-run ready of the VMs that ran on time-sliced hosts, by VM id (from vm_info)."""
    lat = ctx.table("latency", ["vm"])
    info = ctx.table("vm_info", ["vm", "cpu_ready_frac"])
    if lat is None or info is None:
        return None
    ready = info.set_index("vm")["cpu_ready_frac"]
    return ready[ready.index.isin(lat["vm"].unique())].dropna()


def _ready_section(ctx: _Context) -> _Section | None:
    parts = []
    vms = ctx.table("vms", ["vm", "cpu_demand_hz", "cpu_alloc_hz"])
    if vms is not None:
        ready = agg.vm_ready_fraction(vms).dropna()
        sliced = _measured_ready(ctx)
        if sliced is not None:  # measured on time-sliced hosts: their own figure
            ready.update(sliced)
        if len(ready):
            worst = ready.idxmax()
            names = ctx.names("vm_info", "vm")
            worst_vm = names.get(worst, f"VM {worst}") if names is not None else f"VM {worst}"
            text = (
                f"{len(ready):,} VMs with CPU demand. Per VM, ready = Σ(demanded − delivered) / "
                f"Σ demanded over the periods it spent on a host"
                + ("; on time-sliced hosts, its vCPUs' measured ready time over their time there"
                   if sliced is not None else "")
                + ". Median "
                f"{format_value('x_frac', float(ready.median()))}, 95th percentile "
                f"{format_value('x_frac', float(ready.quantile(0.95)))}, worst "
                f"{format_value('x_frac', float(ready.max()))} ({worst_vm})."
            )
            parts += [
                "<h3>Time-averaged CPU ready per VM</h3>",
                figure_div(figs.ready_histogram_figure(ready), "fig-ready-hist"),
                _caption(text),
            ]
    vms = ctx.table("vms", ["time_s", "cpu_demand_hz"])
    if vms is not None and set(vms.columns) & {"cpu_ready_frac", "cpu_alloc_hz"}:
        quantiles = agg.ready_quantiles_over_time(vms)
        if len(quantiles):
            parts += [
                "<h3>CPU ready over time</h3>",
                figure_div(
                    figs.ready_over_time_figure(quantiles, ctx.tdiv, ctx.tunit), "fig-ready-time"
                ),
                _caption(
                    "Median, 95th percentile and maximum of the CPU ready fraction "
                    "over the VMs that demanded CPU on a host in each period."
                ),
            ]
    if not parts:
        return None
    return _Section("sec-ready", "CPU ready", "".join(parts))


def _energy_section(ctx: _Context) -> _Section | None:
    hosts = ctx.table("hosts", ["host", "energy_j"])
    if hosts is None:
        return None
    energy = agg.host_energy_kwh(hosts)
    names = ctx.names("host_info", "host")
    top = energy.idxmax()
    top_name = names.get(top, f"host {top}") if names is not None else f"host {top}"
    text = (
        f"Energy drawn by each of {len(energy):,} hosts over the run, the sum of its periods' "
        f"energy. Total {format_value('x_kwh', float(energy.sum()))}, mean per host "
        f"{format_value('x_kwh', float(energy.mean()))}, highest "
        f"{format_value('x_kwh', float(energy.max()))} ({top_name})."
    )
    body = figure_div(figs.host_energy_figure(energy, names), "fig-host-energy") + _caption(text)
    return _Section("sec-energy", "Energy per host", body)


def _jobs_section(ctx: _Context) -> _Section | None:
    jobs = ctx.table("jobs", ["start_s", "finish_s"])
    if jobs is None:
        return None
    done = agg.job_completion_s(jobs)
    if len(done) == 0:
        return _Section("sec-jobs", "Jobs", _caption(f"None of the {len(jobs):,} jobs finished."))
    text = (
        f"{len(done):,} of {len(jobs):,} jobs finished. Completion time (finish − start): "
        f"median {format_duration(float(np.median(done)))}, mean "
        f"{format_duration(float(done.mean()))}, longest {format_duration(float(done.max()))}."
    )
    body = figure_div(figs.job_completion_figure(done), "fig-job-times") + _caption(text)
    return _Section("sec-jobs", "Jobs", body)


def _migrations_section(ctx: _Context) -> _Section | None:
    mig = ctx.table("migrations", ["duration_s", "downtime_s", "outcome"])
    if mig is None:
        return None
    ran = mig[mig["outcome"].astype(str) != "abandoned"]
    outcomes = ", ".join(f"{n:,} {k}" for k, n in mig["outcome"].astype(str).value_counts().items())
    parts = []
    if len(ran):
        took = ran["duration_s"]
        if agg.has_columns(ran, ["time_s", "queued_s", "reason"]):
            began = (ran["time_s"] + ran["queued_s"]).to_numpy(dtype=float)
            series = figs.migrations_in_flight(began, began + took.to_numpy(dtype=float),
                                               ran["reason"].astype(str).to_numpy())
            parts += [figure_div(figs.migration_timeline_figure(series, ctx.tdiv, ctx.tunit),
                                 "fig-migration-timeline"),
                      _caption("Live migrations under way over time, by reason: each from its "
                               "start (after any wait for a slot) to the VM running on its "
                               "destination or the copy given up.")]
        parts += [figure_div(figs.migration_duration_figure(took.to_numpy()), "fig-migration-time"),
                  _caption(f"{len(mig):,} live migrations ({outcomes}). Time from start to the VM "
                           f"running on its destination: median "
                           f"{format_duration(float(took.median()))}, longest "
                           f"{format_duration(float(took.max()))}.")]
        down = ran.loc[ran["outcome"].astype(str) != "aborted", "downtime_s"]
        if len(down):
            parts += [figure_div(figs.migration_downtime_figure(down.to_numpy()),
                                   "fig-migration-downtime"),
                      _caption(f"Downtime (VM paused for the switch-over): median "
                               f"{float(down.median()) * 1000:.0f} ms, worst "
                               f"{float(down.max()) * 1000:.0f} ms.")]
    drains = ctx.summary.get("maintenance") or []
    if drains:
        frame = pd.DataFrame([{
            "drain": d["name"], "VMs": d["vms"], "migrations": d["migrations"],
            "drained in": d["drained_s"], "RAM / bandwidth predicts": d["predicted_ram_over_bandwidth_s"],
            "worst downtime (ms)": d["worst_downtime_s"] * 1000.0, "left behind": d["unplaced"],
        } for d in drains])
        parts.append("<h3>Maintenance drains</h3>" + html_table(frame, {
            "drained in": format_duration, "RAM / bandwidth predicts": format_duration,
            "worst downtime (ms)": lambda v: f"{v:,.0f}"}))
    return _Section("sec-migrations", "Live migrations", "".join(parts)) if parts else None


def _events_section(ctx: _Context) -> _Section | None:
    events = ctx.table("events", ["kind"])
    if events is None:
        return None
    kinds = events["kind"].astype(str)
    counts = kinds.value_counts(sort=True).rename_axis("kind").reset_index(name="count")
    fmt_time: dict[str, Callable[[Any], str]] = {}
    if "time_s" in events.columns:
        spans = events.groupby(kinds, observed=True)["time_s"].agg(["min", "max"])
        counts["first"] = counts["kind"].map(spans["min"])
        counts["last"] = counts["kind"].map(spans["max"])
        fmt_time = {"first": format_clock, "last": format_clock, "time": format_clock}
    head_cols = [c for c in ("time_s", "kind", "subject", "detail") if c in events.columns]
    head = events.sort_values("time_s", kind="stable") if "time_s" in events.columns else events
    head = head[head_cols].head(EVENT_ROWS).rename(columns={"time_s": "time"})
    body = (
        "<h3>Events by kind</h3>"
        + html_table(counts, {"count": lambda n: f"{n:,}", **fmt_time})
        + f"<h3>First {len(head)} of {len(events):,} events</h3>"
        + f'<div class="scroll">{html_table(head, fmt_time)}</div>'
    )
    return _Section("sec-events", "Events", body)


def _timeslice_section(ctx: _Context) -> _Section | None:
    hosts = (ctx.summary.get("timeslice") or {}).get("hosts")
    if not hosts:
        return None
    rows = ts.ratio_rows(hosts)
    info = ctx.summary["timeslice"]
    body = (
        "<h3>CPU ready against vCPUs per core</h3>"
        + figure_div(ts.ready_figure(rows), "fig-timeslice-ready")
        + _caption(
            "Measured on the time-sliced hosts: the share of each vCPU's time spent runnable "
            "but waiting for a core (held back by a cap included), per role; dashed: the usual "
            "5 % and 10 % alarm levels. A VM group named <role>-<host group> counts as <role>.")
        + "<h3>Wake-up latency against vCPUs per core</h3>"
        + figure_div(ts.latency_figure(rows), "fig-timeslice-latency")
        + _caption("99th percentile of the time from a vCPU's wake-up to its first instruction "
                   "on a core.")
        + "<h3>Per host and role</h3>" + ts.host_table(rows)
        + _caption(f"{info.get('windows', 0):,} windows of {info.get('slices', 0):,} timeslices "
                   "simulated.")
    )
    return _Section("sec-timeslice", "Time-sliced hosts", body)


def _memory_section(ctx: _Context) -> _Section | None:
    memory = ctx.summary.get("memory") or {}
    if not memory.get("hosts"):
        return None
    vms = ctx.table("vms", ["host", "mem_slowdown"])
    rows = mem.host_rows(memory["hosts"], vms, ctx.names("host_info", "host"))
    slowed = f"{(mem.SLOWED - 1) * 100:.3g} %"
    parts = [_caption(
        "When its VMs are promised more memory than it has, a hypervisor takes memory back in a "
        "chain: it first shares identical pages between VMs, then inflates balloons in the "
        "guests to take back their idle memory, then compresses pages and at last swaps them "
        "to disk. A VM slows down when it touches a page that is not in RAM; its slowdown is how "
        f"much longer a unit of its work takes (1.10: {slowed} longer than at full speed).")]
    curve = mem.ratio_curve(rows, vms)
    if len(curve) >= 2:
        p95 = curve["slowdown_p95"].notna().any()
        column, what = (("slowdown_p95", "The 95th percentile of slowdown") if p95
                        else ("slowdown_mean", "The mean slowdown"))
        cross = mem.crossing(curve["ratio"], curve[column], mem.SLOWED)
        parts += [
            "<h3>Swapped memory against the overcommit ratio</h3>",
            figure_div(mem.swapped_figure(curve), "fig-memory-swapped"),
            _caption("Memory swapped out to disk per host: its mean over the run and its peak "
                     "(the highest mean over a period). The ratio is the memory of the VMs placed "
                     "on the host, averaged over the run, over its RAM."),
            "<h3>Slowdown against the overcommit ratio</h3>",
            figure_div(mem.slowdown_figure(curve, cross), "fig-memory-slowdown"),
            _caption(
                "Mean slowdown over the VMs' time on each host"
                + (", and the 95th percentile of the slowdown of one VM over one period, over "
                   "the host's VM-period rows, each weighted alike (hosts of one ratio pooled)"
                   if p95 else "")
                + f"; dashed: {slowed} slower. " + mem.crossing_sentence(cross, what)
                + (" Interpolated linearly between the two neighbouring ratios."
                   if cross.status == "crossed" else "")),
        ]
    hosts = ctx.table("hosts", ["time_s", "host", *mem.LEVEL_COLUMNS])
    if hosts is not None:
        ids = rows.loc[rows["host_id"] >= 0, "host_id"].tolist()
        levels = agg.thin_rows(mem.over_time(hosts, ids if len(ids) == len(rows) else None))
        parts += [
            "<h3>Memory taken back over time</h3>",
            figure_div(mem.over_time_figure(levels, ctx.tdiv, ctx.tunit), "fig-memory-time"),
            _caption("VM memory not held in RAM of its own, summed over the modelled hosts "
                     "(means over each period), stacked: what page sharing saves, what the "
                     "balloons hold, what is compressed (before compression) and what is "
                     "swapped out."),
        ]
        period = ctx.summary.get("period_s")
        if ({"swap_in_bytes", "swap_out_bytes"} <= set(levels.columns)
                and isinstance(period, numbers.Real) and float(period) > 0
                and (levels[["swap_in_bytes", "swap_out_bytes"]].to_numpy() > 0).any()):
            parts += [
                "<h3>Swap traffic over time</h3>",
                figure_div(mem.swap_traffic_figure(levels, float(period), ctx.tdiv, ctx.tunit),
                           "fig-memory-swap-traffic"),
                _caption("Bytes swapped out and back in per second, mean over each period, "
                         "summed over the modelled hosts."),
            ]
    refused = int(memory.get("admission_refusals") or 0)
    refusals = (f" Memory admission control turned a VM away {refused:,} times (a reservation "
                "it could not meet, or no swap space for it)." if refused else "")
    parts += [
        "<h3>Per host</h3>", mem.host_table(rows),
        _caption(f"Memory levels are means over the run; swapped in: bytes read back from "
                 f"swap. Worst state: the highest memory pressure the host reached (high: none; "
                 f"clear: pages shared; soft: balloons; hard: compression and swapping; low: "
                 f"not even that was enough). Slowdown p95 over the host's VM-period rows; last "
                 f"column: the share of the VMs' time spent in periods that ran more than "
                 f"{slowed} slower." + refusals),
    ]
    return _Section("sec-memory", "Memory overcommit", "".join(parts))


def _storage_section(ctx: _Context) -> _Section | None:
    stores = ctx.table("datastores", ["time_s", "datastore", "used_bytes", "provisioned_bytes",
                                      "capacity_bytes", "fill_frac"])
    if stores is None:
        return None
    storage = ctx.summary.get("storage") or {}
    shown = st.shown_datastores(stores)
    total = stores["datastore"].nunique()
    which = "" if len(shown) == total else f" The {len(shown)} of {total} datastores that ran fullest."
    rows = st.thin_by(stores, "datastore", shown)
    events = ctx.table("events", ["time_s", "kind", "subject"])
    full = None if events is None else events[events["kind"].astype(str) == "datastore_full"]
    parts = ["<h3>Datastore fill</h3>",
             figure_div(st.fill_figure(rows, full, ctx.tdiv, ctx.tunit), "fig-storage-fill"),
             _caption("Space written (solid) and space promised to the disks on it (dashed: thin "
                      "disks' full sizes, thick disks, snapshots, clones), as shares of each "
                      "datastore's capacity, mean over each period. Dashed above 100 % is thin "
                      "overcommit; the solid line reaching 100 % is a full datastore (×), whose "
                      "writing VMs are paused." + which)]
    if agg.has_columns(rows, ["transfer_bytes_s", "vm_write_bytes_s"]):
        parts += ["<h3>Datastore throughput</h3>",
                  figure_div(st.throughput_figure(rows, ctx.tdiv, ctx.tunit),
                             "fig-storage-throughput"),
                  _caption("Bytes per second the datastore moved for clones, snapshot "
                           "consolidations and boot reads (solid), and the VMs' own writes "
                           "(dotted), mean over each period." + which)]
    if "vms_paused" in stores.columns and (stores["vms_paused"] > 0).any():
        hours = storage.get("vm_hours_paused")
        parts += ["<h3>VMs paused for want of space</h3>",
                  figure_div(st.paused_figure(stores, ctx.tdiv, ctx.tunit), "fig-storage-paused"),
                  _caption("VMs paused because a datastore they write to was full, per datastore"
                           + (f"; {float(hours):,.3g} VM-hours paused in all"
                              if hours is not None else "") + ".")]
    if storage.get("datastores"):
        parts += ["<h3>Per datastore</h3>", st.datastore_table(storage["datastores"]),
                  _caption("Peak used: the most written at once; provisioned / capacity: the "
                           "thin overcommit at the end; peak transfers: the highest period mean.")]
    deploys = ctx.table("deploys", ["template", "clone", "deploy_s", "bytes_copied",
                                    "space_bytes"])
    if deploys is not None:
        clone = deploys["clone"].astype(str)
        lines = {f"{kind} clones": deploys.loc[clone == kind, "deploy_s"].to_numpy(dtype=float)
                 for kind in sorted(clone.unique())}
        parts += ["<h3>Deploying VMs from templates</h3>",
                  figure_div(st.duration_cdf_figure(lines, "deploy time", "VMs"),
                             "fig-storage-deploys"),
                  _caption(f"Empirical CDF of the time from asking for each of {len(deploys):,} "
                           "clones to it being ready to start, by clone kind: a full clone "
                           "copies the template's data (and waits for room on its datastore), a "
                           "linked clone only creates a delta disk."),
                  st.deploy_table(deploys),
                  _caption("Space per VM: what the clone holds on its datastore at the end of "
                           "the run (for a linked clone, its delta disk only).")]
    boots = ctx.table("boots", ["began_s", "ended_s", "boot_s"])
    if boots is not None:
        boot_s = boots["boot_s"].to_numpy(dtype=float)
        parts += ["<h3>Boots</h3>",
                  figure_div(st.duration_cdf_figure({"all VMs": boot_s}, "boot time", "VMs"),
                             "fig-storage-boots"),
                  _caption(f"Empirical CDF of the boot time of {len(boots):,} VMs that booted "
                           "when they first started; boots read their disks from the datastore "
                           "together, so a storm of them takes longer each. Median "
                           f"{format_duration(float(np.nanmedian(boot_s)))}, longest "
                           f"{format_duration(float(np.nanmax(boot_s)))}."),
                  figure_div(st.boot_storm_figure(boots, ctx.tdiv, ctx.tunit),
                             "fig-storage-boot-storm"),
                  _caption("The boot storm's shape: VMs booting at each instant, and VMs done "
                           "booting so far (right axis).")]
    return _Section("sec-storage", "Storage", "".join(parts))


def _network_section(ctx: _Context) -> _Section | None:
    links = ctx.table("links", ["time_s", "link", "capacity_bytes_s", "carried_bytes_s",
                                "utilisation"])
    if links is None:
        return None
    network = ctx.summary.get("network") or {}
    shown = st.busiest_links(links)
    if not shown:
        return _Section("sec-network", "Network",
                        _caption(f"None of the {links['link'].nunique():,} limited links carried "
                                 "any traffic."))
    rows = st.thin_by(links, "link", shown)
    parts = ["<h3>Busiest links</h3>",
             figure_div(st.links_figure(rows, shown, ctx.tdiv, ctx.tunit), "fig-network-links"),
             _caption(f"Utilisation (traffic carried over capacity, mean over each period) of "
                      f"the {len(shown)} links with the busiest period, of "
                      f"{links['link'].nunique():,} limited links; a host NIC and a site uplink "
                      "are a link each way (-out, -in).")]
    if agg.has_columns(rows, ["vm_bytes_s", "migration_bytes_s", "replication_bytes_s"]):
        parts += [f"<h3>What filled {html.escape(shown[0])}</h3>",
                  figure_div(st.busiest_link_figure(rows, shown[0], ctx.tdiv, ctx.tunit),
                             "fig-network-busiest"),
                  _caption("The busiest link's traffic, stacked by what sent it: the VMs' vNIC "
                           "traffic, live migrations (of moves and drains too) and replication "
                           "to a recovery site; dotted: its capacity. Senders share a full link "
                           "max-min fairly."),
                  st.link_table(links, shown, network.get("busiest_links") or []),
                  _caption("Peak: the highest utilisation at any instant (for the links the "
                           "summary lists); busiest period and mean: over the period means; "
                           "shares: of all the bytes the link carried.")]
    traffic = ctx.table("vm_traffic", ["unserved_frac"])
    if traffic is not None and (traffic["unserved_frac"] > 0).any():
        worst = traffic["unserved_frac"].max()
        overall = network.get("vm_traffic_unserved_frac")
        parts += ["<h3>VM traffic not delivered</h3>",
                  figure_div(st.unserved_figure(traffic), "fig-network-unserved"),
                  _caption(f"{len(traffic):,} VMs with vNIC traffic, by the share of the traffic "
                           "they wanted to send and receive that full links (or port-group "
                           f"shaping) held back; worst {format_value('x_frac', float(worst))}"
                           + (f", {format_value('x_frac', float(overall))} over all VMs"
                              if overall is not None else "") + ".")]
    return _Section("sec-network", "Network", "".join(parts))


def _moves_section(ctx: _Context) -> _Section | None:
    moves = ctx.table("moves", ["move", "wave", "vm", "wave_start_s", "copy_end_s", "moved_s",
                                "sent_bytes", "status"])
    if moves is None:
        return None
    end = ctx.summary.get("sim_time_s")
    waves = st.wave_rows(moves, float(end) if isinstance(end, numbers.Real) else None)
    body = (
        "<h3>Waves</h3>"
        + figure_div(st.waves_figure(waves, ctx.tdiv, ctx.tunit), "fig-moves-waves")
        + _caption("A row per wave of each move, in the order they started. Upper bar: the "
                   "disk copies over the WAN, from the wave's start to its last copy done "
                   "(copies share the links, and each must also carry what its VM writes "
                   "meanwhile). Lower, hatched bar: the memory live migrations, from the first "
                   "VM whose disks are across to the last VM running at its destination. A wave "
                   "still under way at the end of the run is drawn to the end.")
        + "<h3>Per move</h3>" + st.move_table(waves)
        + _caption("Data sent: the disks' data and the writes made while they were copied.")
    )
    return _Section("sec-moves", "Moves", body)


def _availability_section(ctx: _Context) -> _Section | None:
    present = [ctx.tables.get(n) for n in ("outages", "host_failures")]
    if all(t is None for t in present):
        return None  # no failures, HA or DR in the scenario
    outages = ctx.table("outages", av.OUTAGE_COLUMNS)
    failures = ctx.table("host_failures", av.FAILURE_COLUMNS)
    avail = ctx.summary.get("availability") or {}
    n = int((avail.get("replications") or {}).get("n", 1))
    over = f"{n:,} Monte Carlo replications" if n > 1 else "the run"
    parts = [] if outages is not None or failures is not None else [
        _caption(f"No host failed in {over}.")]
    if outages is not None:
        by, lines = av.rto_lines(outages)
        if any(len(v) for v in lines.values()):
            ended = int((~outages["restarted"].astype(bool)).sum())
            parts += [
                f"<h3>Recovery time (RTO achieved) by {html.escape(by)}</h3>",
                figure_div(av.cdf_figure(lines, "downtime"), "fig-avail-rto"),
                _caption(f"Empirical CDF of the downtime of {sum(map(len, lines.values())):,} "
                         f"restarted VM outages over {over}: from the host's failure until the "
                         "VM had booted again (on another host, or on its own once repaired)."
                         + (f" {ended:,} outages that ended without a restart (the VM still "
                            "down at the end of the run, or gone) are not drawn." if ended else "")),
                av.cdf_table(lines, by)]
    end = ctx.summary.get("sim_time_s")
    line = av.timeline(failures, outages, float(end) if isinstance(end, numbers.Real) else None)
    if line is not None:
        total = ctx.summary.get("hosts")
        parts += [
            "<h3>Capacity over time</h3>",
            figure_div(av.capacity_figure(line, total if isinstance(total, int) else None,
                                          ctx.tdiv, ctx.tunit), "fig-avail-capacity"),
            _caption(("Replication 0 (the scenario's own seed). " if n > 1 else "")
                     + "Hosts up (a failed host is down until repaired) and VMs down, from "
                     "their host's failure until they have booted again, left, or the run "
                     "ended; ×: a failure (hover for its hosts).")]
    if outages is not None and "data_loss_s" in outages.columns:
        lines = av.data_loss_lines(outages)
        rpo = (avail.get("replication") or {}).get("rpo_s")
        if lines:
            parts += [
                "<h3>Data lost by DR failovers (RPO achieved)</h3>",
                figure_div(av.cdf_figure(lines, "data lost", "failovers", float(rpo) if
                                         isinstance(rpo, numbers.Real) else None),
                           "fig-avail-data-loss"),
                _caption(f"Empirical CDF over {sum(map(len, lines.values())):,} VMs failed over "
                         f"to a recovery site in {over}: the time from their last recovery point "
                         "replicated to the recovery site to the site's loss.")]
    if avail:
        parts += ["<h3>Headline figures</h3>",
                  av.headline_table(avail, outages, failures, ctx.table("replications",
                                                                        ["replication"])),
                  _caption("RTO: from a host's failure to its VM booted again (restarted VMs "
                           "only); VM-hours lost count every outage, those not restarted up to "
                           "the end of the run."
                           + (" Data-loss window over the run: what a failover at any instant "
                              "would have lost, at worst and on average over the replicated VMs."
                              if avail.get("replication") else "")
                           + (f" Mean and Student-t confidence interval over {n:,} replications "
                              "(a figure undefined in a replication, such as an RTO without "
                              "outages, is left out)." if n > 1 else ""))]
        clusters = av.admission_table((avail.get("admission") or {}).get("clusters") or {})
        if clusters:
            parts += ["<h3>HA admission control per cluster</h3>", clusters,
                      _caption("What admission control had set aside for failover at the end "
                               "of the run" + (" (replication 0)" if n > 1 else "") + ".")]
    return _Section("sec-availability", "Availability", "".join(parts))


_SECTIONS = (
    _datacenter_section,
    _heatmap_section,
    _ready_section,
    _timeslice_section,
    _memory_section,
    _storage_section,
    _availability_section,
    _energy_section,
    _jobs_section,
    _migrations_section,
    _network_section,
    _moves_section,
    _events_section,
)


def _time_span(tables: Tables, summary: Mapping[str, Any]) -> float:
    span = summary.get("sim_time_s")
    if isinstance(span, numbers.Real) and math.isfinite(float(span)) and float(span) > 0:
        return float(span)
    # The datacenter table is one row per period, so its max is cheap; the big tables are last.
    for name in ("datacenter", "hosts", "vms"):
        table = tables.get(name)
        if table is not None and agg.has_columns(table, ["time_s"]):
            return float(table["time_s"].max())
    return 0.0


def _header(summary: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    scenario = str(summary.get("scenario") or "vsim run")
    parts = [f"<h1>{html.escape(scenario)}</h1>"]
    if summary.get("description"):
        parts.append(f"<p>{html.escape(str(summary['description']))}</p>")
    facts = []
    seed = meta.get("seed", summary.get("seed"))
    if seed is not None:
        facts.append(f"seed {seed}")
    if meta.get("vsim_version"):
        version = f"vsim {meta['vsim_version']}"
        if meta.get("git_revision"):
            version += f" ({str(meta['git_revision'])[:12]})"
        facts.append(version)
    if meta.get("started_at"):
        facts.append(f"started {meta['started_at']}")
    wall = meta.get("wall_time_s", summary.get("wall_time_s"))
    if isinstance(wall, numbers.Real):
        facts.append(f"run wall time {format_duration(float(wall))}")
    if isinstance(meta.get("peak_memory_bytes"), numbers.Real):
        facts.append(
            f"peak memory {format_value('peak_memory_bytes', float(meta['peak_memory_bytes']))}"
        )
    if facts:
        parts.append(f'<p class="meta">{html.escape(" · ".join(facts))}</p>')
    return "".join(parts)


def _summary_section(summary: Mapping[str, Any]) -> _Section | None:
    rows = summary_rows(summary)
    if not rows:
        return None
    cells = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return _Section(
        "sec-summary", "Key figures", f'<table class="figures"><tbody>{cells}</tbody></table>'
    )


def build_report(
    tables: Mapping[str, pd.DataFrame],
    summary: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> str:
    """The HTML text of the run's report, from its result tables, summary and run metadata."""
    meta = meta or {}
    tdiv, tunit = time_axis(_time_span(tables, summary))
    ctx = _Context(tables=tables, summary=summary, tdiv=tdiv, tunit=tunit)
    sections = [_summary_section(summary)] + [build(ctx) for build in _SECTIONS]
    present = [s for s in sections if s is not None]
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in present)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{s.body}</section>'
        for s in present
    )
    title = f"{summary.get('scenario') or 'vsim run'} — vsim report"
    version = html.escape(str(meta.get("vsim_version", "")))
    return html_page(
        title, _CSS, f"<header>{_header(summary, meta)}<nav>{nav}</nav></header>{body}",
        f"Built by vsim {version} from the run's result tables.",
    )


def write_report(
    path: Path,
    tables: Mapping[str, pd.DataFrame],
    summary: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Build the report and write it to ``path``.

    Written to a temporary file first and renamed into place, so an interrupted build never leaves
    a truncated report.html that looks complete.
    """
    path = Path(path)
    text = build_report(tables, summary, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
