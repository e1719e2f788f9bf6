"""Azure Public Dataset V1 (2017) VM traces read into a :class:`DemandTable`.

Format (https://github.com/Azure/AzurePublicDataset, AzurePublicDatasetV1.md and its schema;
Cortez et al., "Resource Central: Understanding and Predicting Workloads for Improved Resource
Management in Large Cloud Platforms", SOSP 2017): CSV files without a header,

* ``vmtable.csv``: vmid, subscriptionid, deploymentid, vmcreated, vmdeleted, maxcpu, avgcpu,
  p95maxcpu, vmcategory, vmcorecount, vmmemory (GB); times in seconds from the trace's start;
* ``vm_cpu_readings-file-<i>-of-<n>.csv``: timestamp, vmid, mincpu, maxcpu, avgcpu, one line
  per VM every 5 minutes (timestamps in seconds from the trace's start, multiples of 300).

Either may be gzipped (``.csv.gz``, as the dataset is downloaded). What vsim takes from it:

* one series per VM of ``vmtable.csv``, in its order (``max_vms``: only the first so many);
  value: ``avgcpu`` / 100, clipped to [0, 1], on a 300 s grid from time 0; a step without a
  reading holds the one before (see :mod:`vsim.traces.grid`);
* arrival: ``vmcreated``; lifetime: ``vmdeleted - vmcreated``, at least one reading's 300 s
  (a VM created and deleted within one reading lived up to 5 minutes), as the dataset's
  analysis notebook counts it;
* vcpus and ram_bytes from ``vmcorecount`` and ``vmmemory``. The trace gives sizes in buckets:
  numbers (``2``, ``1.75``) are taken as they are (memory in GiB, Azure's sizes); an open top
  bucket ``>N`` (``>24`` cores, ``>64`` GB) is taken as the next power of two above N (32
  cores, 128 GiB), the next size Azure offered; vcpus are rounded up to whole cores.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from vsim.traces.delimited import Column, read_delimited, trace_error
from vsim.traces.grid import Grid, mean_per_step
from vsim.traces.table import DemandTable

__all__ = ["AZURE_STEP_S", "azure_bucket_value", "read_azure"]

AZURE_STEP_S = 300.0
_FMT = "Azure Public Dataset V1"
_VMTABLE = [Column("vmid", "text"), Column("subscriptionid", "text"),
            Column("deploymentid", "text"), Column("vmcreated"), Column("vmdeleted"),
            Column("maxcpu"), Column("avgcpu"), Column("p95maxcpu"), Column("vmcategory", "text"),
            Column("vmcorecount", "text"), Column("vmmemory", "text")]
_READINGS = [Column("timestamp"), Column("vmid", "text"), Column("mincpu"), Column("maxcpu"),
             Column("avgcpu")]
_READINGS_NAME = re.compile(r"^vm_cpu_readings-file-(\d+)-of-(\d+)\.csv(\.gz)?$")
_GIB = 2.0**30


def azure_bucket_value(text: str) -> float:
    """A size bucket as a number: ``"8"`` is 8, ``">24"`` the next power of two above 24 (32)."""
    text = text.strip()
    if text.startswith(">"):
        bound = float(text[1:])
        return float(2 ** (math.floor(math.log2(bound)) + 1)) if bound > 0 else 1.0
    return float(text)


def _vmtable_path(folder: Path) -> Path:
    for name in ("vmtable.csv", "vmtable.csv.gz"):
        if (folder / name).is_file():
            return folder / name
    raise trace_error("no vmtable.csv in this folder", folder,
                      hint="give the folder holding vmtable.csv and the "
                           "vm_cpu_readings-file-*-of-*.csv files of the Azure V1 trace")


def _readings_paths(folder: Path) -> list[Path]:
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := _READINGS_NAME.match(p.name)) and p.is_file()]
    if not found:
        raise trace_error("no vm_cpu_readings-file-*-of-*.csv files in this folder", folder,
                          hint="put the readings files of the Azure V1 trace next to vmtable.csv")
    return [p for _, p in sorted(found)]


def _sizes(column: np.ndarray, name: str, path: Path) -> np.ndarray:
    out = np.empty(len(column))
    for i, text in enumerate(column):
        try:
            out[i] = azure_bucket_value(str(text))
        except ValueError:
            # No header: line i + 1 of the file is row i.
            raise trace_error(f"column {name!r} holds {text!r}, not a size or a bucket such "
                              "as '8' or '>24'", path, i + 1,
                              "fix the value, or remove this VM's line") from None
        if not out[i] > 0:
            raise trace_error(f"column {name!r} holds {text!r}, not a positive size",
                              path, i + 1, "fix the value, or remove this VM's line")
    return out


def read_azure(folder: str | Path, max_vms: int | None = None) -> DemandTable:
    """The VMs of an Azure V1 trace folder as a table of 300 s steps from the trace's start."""
    folder = Path(folder)
    if not folder.is_dir():
        raise trace_error("Azure trace folder not found", folder,
                          hint="give the folder holding vmtable.csv and the readings files")
    table_path = _vmtable_path(folder)
    readings_paths = _readings_paths(folder)
    vms = read_delimited(table_path, _VMTABLE, fmt=f"{_FMT} vmtable")
    if max_vms is not None:
        vms = vms.iloc[:max_vms]
    if vms.empty:
        raise trace_error("vmtable.csv lists no VMs", table_path,
                          hint="restore the file from the dataset")
    ids = vms["vmid"].to_numpy(dtype=str)
    dup = vms["vmid"].duplicated().to_numpy()
    if dup.any():
        line = int(np.flatnonzero(dup)[0]) + 1
        raise trace_error(f"VM {ids[line - 1]!r} is listed twice", table_path, line,
                          "each VM has one line in vmtable.csv; remove the repeat")
    index = {vmid: i for i, vmid in enumerate(ids)}
    keep = ("vmid", set(index))
    frames = [read_delimited(p, _READINGS, fmt=f"{_FMT} readings", keep=keep)
              for p in readings_paths]
    times = np.concatenate([f["timestamp"].to_numpy(dtype=float) for f in frames])
    if times.size == 0:
        raise trace_error("the readings files hold no reading of the VMs in vmtable.csv",
                          folder, hint="check that vmtable.csv and the readings files belong "
                          "to the same trace")
    series = np.concatenate([f["vmid"].map(index).to_numpy(dtype=np.int64) for f in frames])
    avg = np.concatenate([f["avgcpu"].to_numpy(dtype=float) for f in frames])
    created = vms["vmcreated"].to_numpy(dtype=float)
    deleted = vms["vmdeleted"].to_numpy(dtype=float)
    end = max(float(times.max()), float(deleted.max()))
    grid = Grid(0.0, AZURE_STEP_S, int(end // AZURE_STEP_S) + 1)
    means, _ = mean_per_step(series, times, {"cpu": np.clip(avg / 100.0, 0.0, 1.0)},
                             len(ids), grid)
    cores = _sizes(vms["vmcorecount"].to_numpy(), "vmcorecount", table_path)
    memory_gb = _sizes(vms["vmmemory"].to_numpy(), "vmmemory", table_path)
    return DemandTable(
        step_s=AZURE_STEP_S, cpu=means["cpu"], names=tuple(ids), source=f"azure:{folder.name}",
        start_s=created, lifetime_s=np.maximum(deleted - created, AZURE_STEP_S),
        vcpus=np.ceil(cores).astype(np.int64), ram_bytes=memory_gb * _GIB,
    )
