"""Alibaba cluster trace 2018 (cluster-trace-v2018) read into a :class:`DemandTable`.

Format (https://github.com/alibaba/clusterdata, cluster-trace-v2018/schema.md and
trace_2018.md): CSV files without a header, among them

* ``container_meta.csv``: container_id, machine_id, time_stamp, app_du, status, cpu_request,
  cpu_limit, mem_size (cpu_request and cpu_limit: 100 is one core; mem_size normalised 0..100);
* ``container_usage.csv``: container_id, machine_id, time_stamp, cpu_util_percent,
  mem_util_percent, cpi, mem_gps, mpki, net_in, net_out, disk_io_percent (readings about
  every 10 s, times in seconds; the last six are often empty);
* ``machine_meta.csv``: machine_id, time_stamp, failure_domain_1, failure_domain_2, cpu_num,
  mem_size, status;
* ``machine_usage.csv``: machine_id, time_stamp, cpu_util_percent, mem_util_percent, mem_gps,
  mkpi, net_in, net_out, disk_io_percent.

What vsim takes from it: containers are the series (VMs), sorted by id with their numbers in
order (``c_2`` before ``c_10``); CPU is ``cpu_util_percent`` / 100 and memory
``mem_util_percent`` / 100, both clipped to [0, 1] and averaged onto a regular grid (default
300 s) from the trace's time 0 (see :mod:`vsim.traces.grid`); each container arrives at its
first reading. vcpus: the largest ``cpu_request`` / 100, rounded up (a container without a meta
row counts one core). The trace gives memory sizes, network and disk only normalised (0..100),
not in bytes, so ``ram_bytes`` and the byte columns stay empty. :func:`read_alibaba_machines`
reads the machines the same way, for host-level comparison.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from vsim.traces.delimited import Column, read_delimited, trace_error
from vsim.traces.grid import Grid, grid_for, mean_per_step, presence
from vsim.traces.table import DemandTable

__all__ = ["ALIBABA_STEP_S", "read_alibaba", "read_alibaba_machines"]

ALIBABA_STEP_S = 300.0
_FMT = "Alibaba cluster-trace-v2018"
_CONTAINER_META = [Column("container_id", "text"), Column("machine_id", "text"),
                   Column("time_stamp"), Column("app_du", "text"), Column("status", "text"),
                   Column("cpu_request", "optional"), Column("cpu_limit", "optional"),
                   Column("mem_size", "optional")]
_CONTAINER_USAGE = [Column("container_id", "text"), Column("machine_id", "text"),
                    Column("time_stamp"), Column("cpu_util_percent"),
                    Column("mem_util_percent", "optional"), Column("cpi", "optional"),
                    Column("mem_gps", "optional"), Column("mpki", "optional"),
                    Column("net_in", "optional"), Column("net_out", "optional"),
                    Column("disk_io_percent", "optional")]
_MACHINE_META = [Column("machine_id", "text"), Column("time_stamp"),
                 Column("failure_domain_1", "optional"), Column("failure_domain_2", "text"),
                 Column("cpu_num", "optional"), Column("mem_size", "optional"),
                 Column("status", "text")]
_MACHINE_USAGE = [Column("machine_id", "text"), Column("time_stamp"),
                  Column("cpu_util_percent"), Column("mem_util_percent", "optional"),
                  Column("mem_gps", "optional"), Column("mkpi", "optional"),
                  Column("net_in", "optional"), Column("net_out", "optional"),
                  Column("disk_io_percent", "optional")]


def _natural(name: str) -> tuple:
    """``c_2`` before ``c_10``: digit runs compare as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _file(folder: Path, name: str, required: bool = True) -> Path | None:
    for candidate in (name, name + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    if required:
        raise trace_error(f"no {name} in this folder", folder,
                          hint=f"give the folder holding the {_FMT} files ({name} ...)")
    return None


def _folder(path: str | Path) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise trace_error("Alibaba trace folder not found", folder,
                          hint=f"give the folder holding the {_FMT} CSV files")
    return folder


def _grid(times: np.ndarray, step_s: float) -> Grid:
    # Times count from the trace's start: keep that origin so runs of different subsets agree.
    return Grid(0.0, step_s, grid_for(times, step_s, 0.0).n_steps) if times.min() >= 0 else (
        grid_for(times, step_s))


def _usage_table(usage_path: Path, columns: list[Column], id_column: str, ids: list[str] | None,
                 vms: int | None, step_s: float, source: str
                 ) -> tuple[DemandTable, list[str]]:
    keep = None if ids is None else (id_column, set(ids))
    usage = read_delimited(usage_path, columns, fmt=_FMT, keep=keep)
    if usage.empty:
        raise trace_error("the file holds no readings" + ("" if ids is None else
                          " of the chosen series"), usage_path,
                          hint=f"check that it is {usage_path.name} of {_FMT}")
    if ids is None:
        ids = sorted(usage[id_column].unique(), key=_natural)
        if vms is not None:
            ids = ids[:vms]
    index = {name: i for i, name in enumerate(ids)}
    series = usage[id_column].map(index)
    usage = usage[series.notna().to_numpy()]
    series = series.dropna().to_numpy(dtype=np.int64)
    times = usage["time_stamp"].to_numpy(dtype=float)
    values = {
        "cpu": np.clip(usage["cpu_util_percent"].to_numpy(dtype=float) / 100.0, 0.0, 1.0),
        "memory": np.clip(usage["mem_util_percent"].to_numpy(dtype=float) / 100.0, 0.0, 1.0),
    }
    grid = _grid(times, step_s)
    means, occupied = mean_per_step(series, times, values, len(ids), grid)
    start, lifetime = presence(occupied, step_s)
    table = DemandTable(step_s=step_s, names=tuple(ids), source=source, start_s=start,
                        lifetime_s=lifetime, **means)
    return table, ids


def _cores(meta_path: Path | None, columns: list[Column], id_column: str, value: str,
           scale: float, ids: list[str]) -> np.ndarray:
    """Per series: the largest ``value`` / ``scale`` of its meta rows, rounded up; 1 if none."""
    cores = np.ones(len(ids), dtype=np.int64)
    if meta_path is None:
        return cores
    meta = read_delimited(meta_path, columns, fmt=_FMT, keep=(id_column, set(ids)))
    largest = meta.groupby(id_column)[value].max() / scale
    for i, name in enumerate(ids):
        if name in largest.index and np.isfinite(largest[name]) and largest[name] > 0:
            cores[i] = int(np.ceil(largest[name] - 1e-9))
    return cores


def read_alibaba(path: str | Path, step_s: float = ALIBABA_STEP_S,
                 vms: int | None = None) -> DemandTable:
    """The containers of a cluster-trace-v2018 folder (``vms``: only the first so many)."""
    folder = _folder(path)
    usage_path = _file(folder, "container_usage.csv")
    assert usage_path is not None
    meta_path = _file(folder, "container_meta.csv", required=False)
    ids = None
    if meta_path is not None and vms is not None:
        # Choose the containers from the (small) meta file, so the usage file is filtered
        # while it is read instead of held whole.
        meta = read_delimited(meta_path, _CONTAINER_META, fmt=_FMT)
        ids = sorted(meta["container_id"].unique(), key=_natural)[:vms]
    table, ids = _usage_table(usage_path, _CONTAINER_USAGE, "container_id", ids, vms, step_s,
                              f"alibaba:{folder.name}")
    cores = _cores(meta_path, _CONTAINER_META, "container_id", "cpu_request", 100.0, ids)
    return replace(table, vcpus=cores)


def read_alibaba_machines(path: str | Path, step_s: float = ALIBABA_STEP_S) -> DemandTable:
    """The machines of a cluster-trace-v2018 folder: their whole CPU and memory use (containers
    and batch jobs together), vcpus from ``cpu_num`` of machine_meta.csv."""
    folder = _folder(path)
    usage_path = _file(folder, "machine_usage.csv")
    assert usage_path is not None
    table, ids = _usage_table(usage_path, _MACHINE_USAGE, "machine_id", None, None, step_s,
                              f"alibaba-machines:{folder.name}")
    cores = _cores(_file(folder, "machine_meta.csv", required=False), _MACHINE_META,
                   "machine_id", "cpu_num", 1.0, ids)
    return replace(table, vcpus=cores)
