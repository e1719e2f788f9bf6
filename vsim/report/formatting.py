"""Readable text for the report: durations, the key-figures table, escaped HTML tables."""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Mapping
from typing import Any

import pandas as pd

from vsim.units import format_quantity

__all__ = [
    "format_clock",
    "format_duration",
    "format_value",
    "html_table",
    "summary_rows",
    "time_axis",
]

# Labels for the summary keys vsim writes; other keys get a label made from their name.
_LABELS = {
    "hosts": "Hosts",
    "vms": "VMs",
    "seed": "Seed",
    "sim_time_s": "Simulated time",
    "period_s": "Reporting period",
    "energy_kwh": "Energy",
    "energy_j": "Energy (J)",
    "migrations": "Live migrations",
    "cpu_ready_frac_mean": "CPU ready, mean",
    "cpu_ready_frac_p95": "CPU ready, 95th percentile",
    "sla.overall_violation_frac": "CPU demand not delivered (SLA violation)",
    "sla.slatah": "SLATAH: active-host time at full load",
    "sla.pdm": "PDM: demand lost to migrations",
    "sla.slav": "SLAV = SLATAH x PDM",
    "host_shutdowns": "Host shutdowns",
    "vms_destroyed": "VMs destroyed (CloudSim semantics)",
    "semantics": "Semantics",
    "hosts_on_mean": "Hosts on, mean",
    "vms_unplaced": "VMs never placed",
    "jobs.completed": "Jobs completed",
    "jobs.total": "Jobs submitted",
    "jobs.makespan_s": "Job makespan",
    "jobs.mean_completion_s": "Job completion time, mean",
    "migration.completed": "Migrations completed",
    "migration.forced": "Migrations forced to stop-and-copy",
    "migration.aborted": "Migrations aborted",
    "migration.abandoned": "Migrations abandoned (VM departed)",
    "migration.duration_mean_s": "Migration time, mean",
    "migration.duration_max_s": "Migration time, longest",
    "migration.downtime_mean_s": "Migration downtime, mean",
    "migration.downtime_max_s": "Migration downtime, worst",
    "migration.sent_bytes": "Migration traffic",
    "migration.queued_max_s": "Migration wait for a slot, longest",
    "wall_time_s": "Wall time of the run",
}
# Shown in the page header instead, or redundant with another row (energy is shown in kWh).
_SKIP = {"scenario", "description", "seed", "energy_j"}
# Summary parts a report section of their own shows in full.
_OWN_SECTION = {"availability", "storage", "network", "moves"}


def format_duration(seconds: float) -> str:
    """A duration in the two largest sensible units: "2 h 05 min", "4 min 10 s", "0.35 s"."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    sign = "−" if seconds < 0 else ""
    s = abs(float(seconds))
    if s < 60:
        return f"{sign}{s:.3g} s"
    whole = round(s)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours:02d} h" if hours else f"{sign}{days} d"
    if hours:
        return f"{sign}{hours} h {minutes:02d} min" if minutes else f"{sign}{hours} h"
    return f"{sign}{minutes} min {secs:02d} s" if secs else f"{sign}{minutes} min"


def format_clock(seconds: float) -> str:
    """Simulated time of day as a log would show it: "0:05:00", "1 d 02:00:00"."""
    if not math.isfinite(seconds):
        return "–"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    frac = seconds - whole
    tail = f".{round(frac * 1000):03d}" if frac >= 0.0005 else ""
    clock = f"{hours}:{minutes:02d}:{secs:02d}{tail}"
    return f"{days} d {clock}" if days else clock


def time_axis(span_s: float) -> tuple[float, str]:
    """Divisor and unit for a time axis covering ``span_s`` seconds, so tick labels stay short."""
    if span_s <= 2 * 3600:
        return 60.0, "min"
    if span_s <= 3 * 86400:
        return 3600.0, "h"
    return 86400.0, "d"


def format_value(key: str, value: Any) -> str:
    """``value`` formatted by the unit suffix of its ``key`` (``_frac``, ``_s``, ``_kwh``, …)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if not isinstance(value, numbers.Real):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return "–"
    name = key.rsplit(".", 1)[-1]
    if name.endswith("_frac") or "_frac_" in name or name in ("slatah", "pdm", "slav"):
        return f"{value * 100:.3g} %"
    if name.endswith("_kwh"):
        return f"{value:,.4g} kWh" if abs(value) < 1e4 else f"{value:,.0f} kWh"
    if name.endswith("_bytes_s"):
        return format_quantity(value, "bandwidth")
    if name.endswith("_s"):
        return format_duration(value)
    suffixes = {"_j": "energy", "_w": "power", "_hz": "frequency", "_bytes": "bytes"}
    for suffix, kind in suffixes.items():
        if name.endswith(suffix):
            return format_quantity(value, kind)
    if value.is_integer():
        return f"{int(value):,}"
    return f"{value:,.4g}"


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            items.extend(_flatten(value, prefix=f"{dotted}."))
        else:
            items.append((dotted, value))
    return items


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, formatted value) for every scalar in ``summary``, nested dicts flattened.

    Known keys come first in a fixed order so reports of different runs read alike.
    """
    flat = dict(_flatten(summary))
    order = [k for k in _LABELS if k in flat] + [k for k in flat if k not in _LABELS]
    rows = []
    for key in order:
        if key in _SKIP or key.split(".")[0] in _OWN_SECTION or isinstance(flat[key], list | tuple):
            continue
        label = _LABELS.get(key) or key.replace(".", ": ").replace("_", " ").capitalize()
        rows.append((label, format_value(key, flat[key])))
    return rows


def html_table(frame: pd.DataFrame, formatters: Mapping[str, Any] | None = None) -> str:
    """``frame`` as a plain, escaped HTML table (cell text may come from user-written names)."""
    formatters = formatters or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            fmt = formatters.get(column)
            text = fmt(value) if fmt else ("" if _is_missing(value) else str(value))
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
