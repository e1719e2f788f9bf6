"""vsim's memory model on the memory experiment's configurations, and its naive baseline.

The guest's own speed with nothing swapped (``t_hit``, one over its unlimited pages/s, measured
beside every point) is a property of the workload, like a dirty rate; the calibration fits the
cost of a fault (``t_fault``). Random touches go through the datacenter model itself
(:func:`vsim.model.reclaim.reclaim` and its slowdown): one VM whose memory limit is the cgroup's,
on a host with no other pressure, swapping to a device whose fault time is ``t_fault``.
Sequential touches, which the datacenter model does not assume, use :func:`swap_slowdown`. The
naive baseline is what a simulator without a memory model says: memory pressure costs nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from vsim.model.memory import MemoryParams, swap_slowdown
from vsim.model.reclaim import HostMemory, MemoryModel, VmMemory

__all__ = ["MemoryCalibration", "naive_memory", "predict_memory"]


@dataclass(frozen=True)
class MemoryCalibration:
    t_fault_s: float = 20e-6  # swap a page out and another in (zram)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryCalibration:
        return cls(**{k: float(data[k]) for k in ("t_fault_s",) if k in data})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def predict_memory(measured: pd.DataFrame, c: MemoryCalibration) -> pd.DataFrame:
    """The predicted slowdown of every measured point (its t_hit averaged over repeats)."""
    per = measured.groupby("point", sort=True).agg(ratio=("ratio", "first"), order=("order", "first"),
                                                    alone=("alone_pages_s", "mean"))
    slow = [float(swap_slowdown(r.ratio, 1.0 / r.alone, c.t_fault_s, r.order))
            if r.order != "random" else model_slowdown(r.ratio, r.alone, c.t_fault_s)
            for r in per.itertuples()]
    return pd.DataFrame({"point": per.index.to_numpy(), "slowdown": slow})


def model_slowdown(ratio: float, pages_s: float, t_fault_s: float) -> float:
    """The datacenter model's slowdown of one busy VM touching a working set ``ratio`` times
    the memory its limit lets it keep, ``pages_s`` pages a second when nothing is missing."""
    gib = 2.0**30
    one = np.ones(1)
    host = HostMemory(
        enabled=one.astype(bool), ram=one * 1024 * gib, min_free=one * 0.0, share_below=one,
        balloon_below=one, swap_below=one, low_below=one, sharing=np.zeros(1, dtype=np.int64),
        compression=np.zeros(1, dtype=bool), overhead_bytes=one * 0.0, overhead_frac=one * 0.0,
        swap_latency_s=one * t_fault_s, swap_bandwidth=one * np.inf, swap_size=one * np.inf)
    params = MemoryParams()
    vm = VmMemory(
        ram=one * gib, template=-one.astype(np.int64), reservation=one * 0.0,
        limit=one * gib * 0.5 / ratio, shares=one, active_frac=one * 0.5,
        access_bytes_s=one * pages_s * params.page_bytes, zero_frac=one * 0.0,
        template_frac=one * 0.0, common_frac=one * 0.0, balloon=np.zeros(1, dtype=bool))
    model = MemoryModel(host, vm, params)
    return float(model.update(np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), one)[0])


def naive_memory(measured: pd.DataFrame) -> pd.DataFrame:
    points = np.sort(measured.point.unique())
    return pd.DataFrame({"point": points, "slowdown": np.ones(len(points))})
