"""Reductions of the result tables to the small arrays the report plots.

A run can hold tens of millions of host and VM rows, so every reduction here is a few vectorised
passes (pandas factorize, numpy bincount, per-period partitions) and never a Python loop over rows.
None of these functions draws anything; they are kept apart from the figures so they can be checked
against hand-computed values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "HeatmapData",
    "has_columns",
    "histogram",
    "host_energy_kwh",
    "host_util_heatmap",
    "job_completion_s",
    "period_codes",
    "ready_quantiles_over_time",
    "thin_rows",
    "vm_ready_fraction",
]

_J_PER_KWH = 3.6e6


def has_columns(table: pd.DataFrame | None, columns: Iterable[str]) -> bool:
    """True when ``table`` exists, has at least one row and carries every one of ``columns``."""
    return table is not None and len(table) > 0 and set(columns).issubset(table.columns)


def period_codes(time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct period start times (ascending) and, per row, the index of its period.

    A hash factorize is one pass over the rows, which beats sorting millions of floats; only the
    few hundred distinct times are then sorted.
    """
    codes, uniques = pd.factorize(np.asarray(time_s), sort=True)
    return np.asarray(uniques, dtype=np.float64), codes


def _id_codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ids (ascending) and each row's index into them."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu" and len(ids) and ids.min() >= 0 and ids.max() < 4 * len(ids) + 1024:
        # Host and VM ids are small dense integers: counting them is several times faster than
        # hashing, and when every id in 0..max is present the ids are their own codes.
        present = np.flatnonzero(np.bincount(ids))
        if len(present) == int(ids.max()) + 1:
            return present, ids.astype(np.intp, copy=False)
        code_of = np.full(int(ids.max()) + 1, -1, dtype=np.intp)
        code_of[present] = np.arange(len(present))
        return present, code_of[ids]
    codes, uniques = pd.factorize(ids, sort=True)
    return np.asarray(uniques), codes


def _floats(column: pd.Series) -> np.ndarray:
    """A column as float64 (missing values as NaN) without copying when it already is one."""
    return np.asarray(column.to_numpy(dtype=np.float64))


def _on_a_host(vms: pd.DataFrame) -> np.ndarray | bool:
    """Per row, whether the VM sat on a host (``host`` ≥ 0); True for all when not recorded."""
    if "host" not in vms.columns:
        return True
    return np.asarray((vms["host"] >= 0).to_numpy(dtype=bool, na_value=False))


def vm_ready_fraction(vms: pd.DataFrame) -> pd.Series:
    """Each VM's time-averaged CPU ready fraction, Σ(demand − alloc)·dt / Σ demand·dt.

    All reporting periods have the same length, so dt cancels and plain sums over the VM's rows are
    enough. Rows where the VM is not on a host (``host`` < 0: queued, or between hosts) are left
    out: a VM waiting for placement is not waiting for a pCPU, and counting it would mix the
    placement backlog into the scheduler's ready time. VMs that never demanded CPU have no defined
    ready fraction and are dropped. The result is indexed by VM id.
    """
    demand = _floats(vms["cpu_demand_hz"])
    alloc = _floats(vms["cpu_alloc_hz"])
    keep = (demand > 0.0) & np.isfinite(alloc) & _on_a_host(vms)
    ids, codes = _id_codes(vms["vm"].to_numpy())
    # Rows left out get zero weight rather than being cut out: on millions of rows that saves
    # copying every column through the mask. alloc can exceed demand by float noise only; such a
    # negative shortfall must not cancel real waits, hence the clip.
    shortfall = np.where(keep, np.clip(demand - alloc, 0.0, None), 0.0)
    demand_sum = np.bincount(codes, weights=np.where(keep, demand, 0.0), minlength=len(ids))
    short_sum = np.bincount(codes, weights=shortfall, minlength=len(ids))
    has_demand = demand_sum > 0.0
    frac = short_sum[has_demand] / demand_sum[has_demand]
    return pd.Series(frac, index=pd.Index(ids[has_demand], name="vm"), name="cpu_ready_frac")


def ready_quantiles_over_time(
    vms: pd.DataFrame, quantiles: tuple[float, ...] = (0.5, 0.95)
) -> pd.DataFrame:
    """Per period, quantiles and maximum of the ready fraction over the VMs demanding CPU on a host.

    Uses the recorded ``cpu_ready_frac`` when present (the scheduler's own figure), else
    (demand − alloc) / demand. Quantiles interpolate linearly like ``numpy.quantile``. Columns are
    ``p50``, ``p95``, … and ``max``, indexed by ``time_s``; a period with no such VM is absent.
    """
    demand = _floats(vms["cpu_demand_hz"])
    if "cpu_ready_frac" in vms.columns:
        ready = _floats(vms["cpu_ready_frac"])
    else:
        alloc = _floats(vms["cpu_alloc_hz"])
        with np.errstate(invalid="ignore", divide="ignore"):
            ready = np.clip((demand - alloc) / demand, 0.0, 1.0)
    keep = (demand > 0.0) & np.isfinite(ready) & _on_a_host(vms)
    times, codes = period_codes(vms["time_s"].to_numpy()[keep])
    ready = ready[keep]
    # Quantiles need each period's values side by side. Recorders write period after period, so
    # the rows are usually in time order already and the costly reordering is skipped.
    if len(codes) > 1 and not (np.diff(codes) >= 0).all():
        order = np.argsort(codes, kind="stable")
        codes, ready = codes[order], ready[order]
    counts = np.bincount(codes, minlength=len(times))
    ends = np.cumsum(counts)
    starts = ends - counts
    out = np.empty((len(times), len(quantiles) + 1))
    for g, (lo, n) in enumerate(zip(starts, counts, strict=True)):
        # np.partition places only the needed order statistics, O(n) per period instead of a sort.
        pos = np.asarray(quantiles) * (n - 1)
        below, above = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        kth = np.unique(np.concatenate([below, above, [n - 1]]))
        part = np.partition(ready[lo : lo + n], kth)
        out[g, :-1] = part[below] + (pos - below) * (part[above] - part[below])
        out[g, -1] = part[n - 1]
    columns = [f"p{q * 100:g}" for q in quantiles] + ["max"]
    return pd.DataFrame(out, index=pd.Index(times, name="time_s"), columns=columns)


@dataclass(frozen=True)
class HeatmapData:
    """A hosts × time matrix cut down to a plottable size, with how it was cut down."""

    z: np.ndarray  # (rows, columns) mean cpu_util_frac; NaN where the host was off throughout
    host_ids: np.ndarray  # the host shown on each row
    time_s: np.ndarray  # start of each column's time bin
    column_s: float  # time covered by one column (0 when there is a single period)
    hosts_total: int
    host_step: float  # about one host in host_step is shown (1 = all hosts)
    periods_per_column: int  # reporting periods averaged into each column (1 = no averaging)


def host_util_heatmap(
    hosts: pd.DataFrame, max_hosts: int = 200, max_columns: int = 300
) -> HeatmapData:
    """Mean ``cpu_util_frac`` per (host, time bin), at most ``max_hosts`` × ``max_columns`` cells.

    Rows are hosts picked evenly over the sorted host ids, not averages of host groups: an average
    of a hundred hosts hides the saturated and the idle ones, which are what a heatmap is for.
    Columns average consecutive periods, which loses nothing but time resolution.
    """
    host_ids, hcode = _id_codes(hosts["host"].to_numpy())
    times, tcode = period_codes(hosts["time_s"].to_numpy())
    n_hosts, n_times = len(host_ids), len(times)

    if n_hosts <= max_hosts:
        picked = np.arange(n_hosts)
    else:
        picked = np.unique(np.linspace(0, n_hosts - 1, max_hosts).round().astype(np.int64))
    row_of = np.full(n_hosts, -1, dtype=np.int64)
    row_of[picked] = np.arange(len(picked))
    per_col = max(1, -(-n_times // max_columns))  # ceil division
    n_cols = -(-n_times // per_col)

    rows = row_of[hcode]
    keep = rows >= 0
    cell = rows[keep] * n_cols + tcode[keep] // per_col
    size = len(picked) * n_cols
    util = _floats(hosts["cpu_util_frac"])[keep]
    finite = np.isfinite(util)
    total = np.bincount(cell[finite], weights=util[finite], minlength=size)
    count = np.bincount(cell[finite], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = total / count
    if "on_frac" in hosts.columns:
        # A host that was off for the whole bin shows as a gap, not as an idle 0 %, so switched-off
        # capacity is told apart from powered-on idle capacity.
        on = np.nan_to_num(_floats(hosts["on_frac"])[keep])
        z[np.bincount(cell, weights=on, minlength=size) <= 0.0] = np.nan
    return HeatmapData(
        z=z.reshape(len(picked), n_cols).astype(np.float32),
        host_ids=host_ids[picked],
        time_s=times[::per_col],
        # Periods are equally long, so the median spacing is the period even if one is missing.
        column_s=float(np.median(np.diff(times))) * per_col if n_times > 1 else 0.0,
        hosts_total=n_hosts,
        host_step=n_hosts / len(picked) if len(picked) else 1.0,
        periods_per_column=per_col,
    )


def host_energy_kwh(hosts: pd.DataFrame) -> pd.Series:
    """Energy per host over the run, in kWh: the sum of its per-period ``energy_j``."""
    host_ids, codes = _id_codes(hosts["host"].to_numpy())
    energy = _floats(hosts["energy_j"])
    energy = np.where(np.isfinite(energy), energy, 0.0)
    total = np.bincount(codes, weights=energy, minlength=len(host_ids))
    return pd.Series(total / _J_PER_KWH, index=pd.Index(host_ids, name="host"), name="energy_kwh")


def job_completion_s(jobs: pd.DataFrame) -> np.ndarray:
    """Completion time (finish − start, in seconds) of every job that finished."""
    start, finish = _floats(jobs["start_s"]), _floats(jobs["finish_s"])
    done = np.isfinite(start) & np.isfinite(finish)
    return finish[done] - start[done]


def histogram(values: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(edges, counts) of the finite ``values``.

    Binning here rather than in the browser keeps the file small: the page carries ``bins``
    counts instead of every value.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.array([0.0, 1.0]), np.array([0])
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):
        # All equal up to rounding: numpy cannot split such a range, so draw one narrow bar
        # (1 % of the value wide) that reads as a single value.
        half = 0.005 * max(abs(lo), 1.0)
        lo, hi, bins = lo - half, hi + half, 1
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return edges, counts


def thin_rows(table: pd.DataFrame, time_col: str = "time_s", max_rows: int = 2000) -> pd.DataFrame:
    """``table`` sorted by time, runs of consecutive rows averaged down to at most ``max_rows``.

    Long runs (a month at five-minute periods is 8,640 rows) would otherwise put more points in a
    line chart than a screen has pixels.
    """
    table = table.sort_values(time_col, kind="stable")
    if len(table) <= max_rows:
        return table.reset_index(drop=True)
    per_row = -(-len(table) // max_rows)
    numeric = table.select_dtypes(include="number")
    groups = np.arange(len(table)) // per_row
    thinned = numeric.groupby(groups).mean()
    # The time of a bin is its first period's start, as for the unthinned rows.
    thinned[time_col] = numeric[time_col].to_numpy()[::per_row]
    return thinned.reset_index(drop=True)
