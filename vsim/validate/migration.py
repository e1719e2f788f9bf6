"""The simulator on the migration experiment's configurations, and its naive baseline.

Each measured point becomes a two-host scenario: the guest is a VM of the same memory, working set
and dirty rate on host ``src``, which a maintenance drain empties at time 0, so vsim's migration
model moves it to ``dst`` under the same max-bandwidth, downtime limit and cap on bytes sent. What the
calibration knows about this guest image and QEMU enters as scenario values:

* ``footprint``: memory the guest's kernel and programs hold besides the working set, a fixed
  part and a part per byte of RAM (the kernel's page descriptors: 64 bytes per 4 KiB page); the
  rest of its RAM is zero pages, which round 0 skips;
* ``bandwidth_scale``: what QEMU's rate limiter really lets through, over ``max-bandwidth``;
* ``loopback``: the speed of the unthrottled stop-and-copy (the hosts' "NIC");
* ``tail``: the guest's non-zero memory above its zero pages (the initrd and the kernel's early
  allocations, which Linux makes from the top of RAM down), a fixed part and the same part per
  byte of RAM as the footprint; where QEMU switches over inside round 0, the rest of this tail is
  sent while the guest is paused, at ``fresh_page_bytes_s``, the destination's speed for pages it never had;
* ``setup``, ``resume``, ``device_state``: the migration model's own parameters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import pandas as pd

from vsim.kvm.migration import MigrationPoint
from vsim.runner import run
from vsim.scenario import scenario_from_data

__all__ = ["MigrationCalibration", "naive_migration", "predict_migration", "scenario_for"]

MIB = 2.0**20


@dataclass(frozen=True)
class MigrationCalibration:
    footprint_bytes: float = 52 * MIB
    footprint_per_byte: float = 64 / 4096
    bandwidth_scale: float = 1.0
    loopback_bytes_s: float = 1.25e9
    setup_s: float = 0.002
    resume_s: float = 0.005
    device_state_bytes: float = 0.25 * MIB
    tail_bytes: float = 0.0
    fresh_page_bytes_s: float = math.inf

    def fresh_page_bandwidth(self) -> float | str:
        """``fresh_page_bytes_s`` as a scenario writes it (``unlimited`` for no extra time)."""
        return self.fresh_page_bytes_s if math.isfinite(self.fresh_page_bytes_s) else "unlimited"

    def tail_for(self, memory_bytes: float) -> float:
        """The tail of a guest of ``memory_bytes``: 0 (none seen) stays 0."""
        return self.tail_bytes + self.footprint_per_byte * memory_bytes if self.tail_bytes > 0 else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MigrationCalibration:
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def scenario_for(p: MigrationPoint, c: MigrationCalibration, name: str = "validate-migration"
                 ) -> dict[str, Any]:
    """The scenario (as YAML data) that puts point ``p`` to vsim's migration model."""
    non_zero = min(c.footprint_bytes + c.footprint_per_byte * p.memory_bytes
                   + p.working_set_bytes, p.memory_bytes)
    host = {"cores": 2, "core_speed": "1 GHz", "ram": p.memory_bytes * 4,
            "network": c.loopback_bytes_s, "boot_time": 0.0}
    return {
        "name": name,
        "description": f"vsim's model of the migration experiment at {p.label()}",
        "seed": 0,
        "duration": 600.0,
        "period": 60.0,
        "hosts": [{"name": "src", **host}, {"name": "dst", **host}],
        "vms": [{"name": "guest", "vcpus": 1, "ram": p.memory_bytes, "workload": "busy",
                 "dirty_rate": p.dirty_rate_bytes_s, "working_set": p.working_set_bytes}],
        "workloads": {"busy": {"kind": "constant", "level": 1.0}},
        "placement": {"policy": "first-fit"},
        "migration": {
            "model": "precopy",
            "max_bandwidth": p.max_bandwidth_bytes_s * c.bandwidth_scale,
            "downtime_limit": p.downtime_limit_s,
            "max_rounds": None,
            "max_sent": p.max_sent,
            "on_no_convergence": "abort",
            "zero_pages": 1.0 - non_zero / p.memory_bytes,
            "setup": c.setup_s,
            "resume": c.resume_s,
            "device_state": c.device_state_bytes,
            "round0_tail": c.tail_for(p.memory_bytes),
            "fresh_page_bandwidth": c.fresh_page_bandwidth(),
            "dirty_follows_cpu": False,
        },
        "maintenance": [{"name": "move", "hosts": "src", "start": 0.0}],
        "power_management": {"power_on_when_needed": False},
        "output": {"vms_table": False, "hosts_table": False, "report": False},
    }


def predict_migration(points: list[MigrationPoint], c: MigrationCalibration) -> pd.DataFrame:
    """vsim's ``migrations`` rows for ``points``, one per point, in order."""
    rows = []
    for i, p in enumerate(points):
        result = run(scenario_from_data(scenario_for(p, c), file=f"<point {i}>"))
        table = result.tables["migrations"]
        if len(table) == 0:
            raise RuntimeError(f"point {i} ({p.label()}): the simulator did not migrate the guest")
        row = table.sort_values("time_s", kind="stable").iloc[0]  # an aborted drain tries again
        rows.append({"point": i, "duration_s": float(row.duration_s), "bytes": float(row.bytes),
                     "outcome": str(row.outcome), "downtime_s": float(row.downtime_s),
                     "rounds": int(row.rounds)})
    return pd.DataFrame(rows)


def naive_migration(points: list[MigrationPoint]) -> pd.DataFrame:
    """The peers' estimate: RAM over bandwidth, always converging, no downtime model."""
    return pd.DataFrame([{"point": i, "duration_s": p.memory_bytes / p.max_bandwidth_bytes_s,
                          "bytes": p.memory_bytes, "outcome": "completed", "downtime_s": 0.0}
                         for i, p in enumerate(points)])
