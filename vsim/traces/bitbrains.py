"""Bitbrains GWA-T-12 VM traces read into a :class:`DemandTable`.

Format (Grid Workloads Archive, GWA-T-12 Bitbrains, http://gwa.ewi.tudelft.nl/datasets/
gwa-t-12-bitbrains; Shen, van Beek and Iosup, "Statistical Characterization of
Business-Critical Workloads Hosted in Cloud Datacenters", CCGrid 2015): two traces,
``fastStorage`` (1,250 VMs) and ``Rnd`` (500 VMs, in one sub-folder per month: give one), one
CSV file per VM, one row per reading every 300 s, fields separated by a semicolon and a tab (``;\\t``),
and a header line::

    Timestamp [ms];	CPU cores;	CPU capacity provisioned [MHZ];	CPU usage [MHZ];
    CPU usage [%];	Memory capacity provisioned [KB];	Memory usage [KB];
    Disk read throughput [KB/s];	Disk write throughput [KB/s];
    Network received throughput [KB/s];	Network transmitted throughput [KB/s]

What vsim takes from it:

* one series per file, named by the file (``fastStorage/1.csv`` gives ``1``), files sorted by
  name, numerically where the names are numbers (as the archive numbers them);
* timestamps are seconds since 1970 in the published files despite the ``[ms]`` in the header;
  values above 10^11 (after 1973 in milliseconds) are taken as milliseconds;
* CPU: ``CPU usage [%]`` / 100, clipped to [0, 1]; memory: usage / provisioned, clipped;
  disk and network: KB/s times 1024 (the archive's KB are KiB: 67108864 KB is 64 GiB);
* vcpus: the largest ``CPU cores``; ram_bytes: the largest ``Memory capacity provisioned``,
  in bytes (a VM must be sized for its largest provisioning);
* readings are averaged onto a regular grid (default 300 s) starting at the first reading of
  any VM (see :mod:`vsim.traces.grid`); each VM arrives at its first reading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vsim.traces.delimited import Column, read_delimited, trace_error
from vsim.traces.grid import grid_for, mean_per_step, presence
from vsim.traces.table import DemandTable

__all__ = ["BITBRAINS_COLUMNS", "BITBRAINS_STEP_S", "read_bitbrains"]

BITBRAINS_STEP_S = 300.0
BITBRAINS_COLUMNS = (
    "Timestamp [ms]",
    "CPU cores",
    "CPU capacity provisioned [MHZ]",
    "CPU usage [MHZ]",
    "CPU usage [%]",
    "Memory capacity provisioned [KB]",
    "Memory usage [KB]",
    "Disk read throughput [KB/s]",
    "Disk write throughput [KB/s]",
    "Network received throughput [KB/s]",
    "Network transmitted throughput [KB/s]",
)
_FMT = "Bitbrains GWA-T-12"
_SEP = ";"  # followed by a tab, which the reader skips as leading whitespace
_KIB = 1024.0
_MS_THRESHOLD = 1e11


def _sort_key(path: Path) -> tuple[int, int | str]:
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.name)


def bitbrains_files(folder: Path) -> list[Path]:
    """The VM files of a trace folder (its ``.csv`` files), sorted by name."""
    if not folder.is_dir():
        raise trace_error("Bitbrains trace folder not found", folder,
                          hint="give the fastStorage folder or a month folder of Rnd "
                          "(one CSV file per VM)")
    files = sorted((p for p in folder.glob("*.csv") if p.is_file()), key=_sort_key)
    if not files:
        # Rnd keeps the same VMs in one folder per month: reading them all would repeat VMs.
        months = sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("*.csv")))
        hint = (f"this folder holds one folder per month; give one of them: {', '.join(months)}"
                if months else "give the fastStorage folder or a month folder of Rnd")
        raise trace_error("folder holds no .csv files", folder, hint=hint)
    return files


def _check_header(path: Path) -> int:
    """Lines to skip: 1 when the file starts with the format's header (checked), else 0."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        first = handle.readline().rstrip("\r\n")
    if not first.strip() or first.lstrip()[:1].isdigit():
        return 0
    if _SEP not in first:
        raise trace_error(
            f"the header has no {_SEP!r} between column names: {_FMT} separates them with "
            "';' and a tab", path, 1, "write the file in the GWA-T-12 format")
    names = [re.sub(r"\s+", " ", n).strip() for n in first.split(_SEP)]
    for expected in BITBRAINS_COLUMNS:
        if expected.lower() not in (n.lower() for n in names):
            raise trace_error(f"column {expected!r} is missing from the header", path, 1,
                              f"a {_FMT} file has the columns: {'; '.join(BITBRAINS_COLUMNS)}")
    return 1


def read_bitbrains(path: str | Path | Sequence[str | Path], step_s: float = BITBRAINS_STEP_S,
                   ) -> DemandTable:
    """The VMs of a GWA-T-12 folder (or of a list of its files) as a table of ``step_s`` steps."""
    if isinstance(path, str | Path):
        folder = Path(path)
        files = bitbrains_files(folder)
        source = f"bitbrains:{folder.name}"
    else:
        files = [Path(p) for p in path]
        if not files:
            raise trace_error("no Bitbrains files given", "<list>", hint="give at least one file")
        source = "bitbrains"
    columns = [Column(name) for name in BITBRAINS_COLUMNS]
    frames = []
    for f in files:
        frame = read_delimited(f, columns, sep=_SEP, skip_lines=_check_header(f), fmt=_FMT)
        if frame.empty:
            raise trace_error("the file holds no readings", f,
                              hint="remove it from the folder, or restore its rows")
        frames.append(frame)
    series = np.concatenate([np.full(len(fr), i) for i, fr in enumerate(frames)])

    def col(name: str) -> np.ndarray:
        return np.concatenate([fr[name].to_numpy(dtype=float) for fr in frames])

    times = col("Timestamp [ms]")
    times = np.where(times > _MS_THRESHOLD, times / 1000.0, times)
    provisioned = col("Memory capacity provisioned [KB]")
    memory = np.divide(col("Memory usage [KB]"), provisioned,
                       out=np.zeros_like(provisioned), where=provisioned > 0)
    values = {
        "cpu": np.clip(col("CPU usage [%]") / 100.0, 0.0, 1.0),
        "memory": np.clip(memory, 0.0, 1.0),
        "disk_read": col("Disk read throughput [KB/s]") * _KIB,
        "disk_write": col("Disk write throughput [KB/s]") * _KIB,
        "net_rx": col("Network received throughput [KB/s]") * _KIB,
        "net_tx": col("Network transmitted throughput [KB/s]") * _KIB,
    }
    grid = grid_for(times, step_s)
    means, occupied = mean_per_step(series, times, values, len(files), grid)
    start, lifetime = presence(occupied, step_s)
    cores = np.array([fr["CPU cores"].max() for fr in frames])
    ram_kb = np.array([fr["Memory capacity provisioned [KB]"].max() for fr in frames])
    return DemandTable(
        step_s=step_s, names=tuple(f.stem for f in files), source=source,
        start_s=start, lifetime_s=lifetime,
        vcpus=np.maximum(np.rint(cores), 1).astype(np.int64), ram_bytes=ram_kb * _KIB,
        **means,
    )
