"""vsim's memory model on the memory experiment's configurations, and its naive baseline.

The guest's own speed with nothing swapped (``t_hit``, one over its unlimited pages/s, measured
beside every point) is a property of the workload, like a dirty rate; the calibration fits the
cost of a fault (``t_fault``). The naive baseline is what a simulator without a memory model
says: memory pressure costs nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from vsim.model.memory import swap_slowdown

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
            for r in per.itertuples()]
    return pd.DataFrame({"point": per.index.to_numpy(), "slowdown": slow})


def naive_memory(measured: pd.DataFrame) -> pd.DataFrame:
    points = np.sort(measured.point.unique())
    return pd.DataFrame({"point": points, "slowdown": np.ones(len(points))})
