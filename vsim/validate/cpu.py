"""The simulator on the CPU experiment's configurations, and its naive baseline.

Each measured point becomes a one-host scenario with as many cores as the guests were pinned to,
and one always-busy VM per guest. Either CPU model can be put to the guests:

* fluid: the proportional share of the host, less what time-slicing costs it
  (``hypervisor: {switch_loss, interference}``);
* timeslice: the host's run queue under Linux CFS, as QEMU's vCPU threads meet it, with a cost per
  context switch and a loss of speed per other vCPU taking turns on the core
  (``hypervisor: {scheduler: timeslice, switch_cost, interference}``). The host OS's own share is
  left out: the measured share is relative to a lone guest on the same host, which pays it too.

The calibration fits the two costs of each model. A guest's share is the CPU it got over one
core. The naive baseline is the fluid share with no cost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from vsim.kvm.cpu import CpuPoint
from vsim.runner import run
from vsim.scenario import scenario_from_data

__all__ = ["MODELS", "CpuCalibration", "naive_cpu", "predict_cpu", "scenario_for"]


MODELS = ("fluid", "timeslice")


@dataclass(frozen=True)
class CpuCalibration:
    switch_loss: float = 0.0  # fluid
    interference: float = 0.0
    switch_cost_s: float = 0.0  # timeslice
    slice_interference: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CpuCalibration:
        return cls(**{k: float(data[k]) for k in asdict(cls()) if k in data})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def hypervisor(self, model: str = "fluid") -> dict[str, Any]:
        """The scenario's ``hypervisor:`` for a host group of ``model``."""
        if model == "timeslice":
            return {"scheduler": "timeslice", "preset": "kvm", "host_os": 0.0,
                    "switch_cost": self.switch_cost_s, "interference": self.slice_interference}
        return {"switch_loss": self.switch_loss, "interference": self.interference}


def scenario_for(p: CpuPoint, c: CpuCalibration, name: str = "validate-cpu",
                 model: str = "fluid") -> dict[str, Any]:
    return {
        "name": name,
        "description": f"vsim's model of the CPU experiment: {p.label()}",
        "seed": 0,
        "duration": 60.0,
        "period": 60.0,
        "hosts": [{"name": "host", "cores": p.host_cores, "core_speed": "1 GHz", "ram": "64 GiB",
                   "hypervisor": c.hypervisor(model)}],
        "vms": [{"name": f"guest{g}", "vcpus": p.vcpus, "ram": "256 MiB", "workload": "spin",
                 "shares": p.weight(g),
                 **({"limit": cap * 1e9} if (cap := p.cap(g)) else {})} for g in range(p.guests)],
        "workloads": {"spin": {"kind": "constant", "level": 1.0}},
        "placement": {"policy": "first-fit", "cpu_overcommit": 64.0},
        "output": {"vms_table": True, "hosts_table": False, "report": False},
    }


def predict_cpu(points: list[CpuPoint], c: CpuCalibration, model: str = "fluid") -> pd.DataFrame:
    """Per point and guest, the predicted share of one core."""
    rows = []
    for i, p in enumerate(points):
        result = run(scenario_from_data(scenario_for(p, c, model=model), file=f"<point {i}>"))
        vms = result.tables["vms"]
        first = vms[vms.time_s == vms.time_s.min()].sort_values("vm")
        core_hz = 1e9
        for g, alloc in enumerate(first.cpu_alloc_hz.to_numpy()):
            rows.append({"point": i, "guest": g, "share": float(alloc) / core_hz})
    return pd.DataFrame(rows)


def naive_cpu(points: list[CpuPoint]) -> pd.DataFrame:
    """Equal fluid shares with no overhead."""
    rows = []
    for i, p in enumerate(points):
        share = min(p.vcpus, p.host_cores / p.guests)
        rows += [{"point": i, "guest": g, "share": share} for g in range(p.guests)]
    return pd.DataFrame(rows)
