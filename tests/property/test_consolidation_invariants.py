"""Random small datacenters under dynamic consolidation keep the model's invariants at every
instant: every VM in exactly one place, running VMs only on hosts that are on (a migration target
is never switched off while a VM is on its way in), commitments equal to the placements, and the
migration fabric agreeing with the VMs' states and its concurrency limits."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import vsim
import vsim.model.simulation as simulation
from vsim.model.datacenter import VmState


def random_scenario(rng: np.random.Generator, i: int) -> dict:
    workload = {"kind": "synthetic", "mean": float(rng.uniform(0.1, 0.9)),
                "noise": {"sd": 0.2, "correlation": 0.5}}
    if rng.random() < 0.5:
        workload["arrivals"] = {"mean_interarrival": "20 min"}
    data = {
        "name": f"random-{i}", "duration": "6 h", "period": "10 min", "seed": i,
        "hosts": [{"name": "h", "count": int(rng.integers(2, 8)), "cores": int(rng.integers(2, 9)),
                   "core_speed": "2 GHz", "ram": f"{int(rng.integers(8, 64))} GiB",
                   "boot_time": f"{int(rng.integers(0, 300))} s",
                   "initially": str(rng.choice(["on", "off"]))}],
        "vms": [{"name": "v", "count": int(rng.integers(1, 25)), "vcpus": 1,
                 "ram": f"{int(rng.integers(1, 8))} GiB", "workload": "w",
                 "lifetime": str(rng.choice(["forever", "3 h"]))}],
        "workloads": {"w": workload},
        "placement": {"policy": str(rng.choice(["first-fit", "best-fit", "worst-fit", "pabfd"])),
                      "cpu_overcommit": float(rng.uniform(1, 4)),
                      "ram_overcommit": float(rng.uniform(1, 2))},
        "consolidation": {"interval": f"{int(rng.integers(1, 30))} min",
                          "overload": {"detector": str(rng.choice(["thr", "iqr", "mad", "lr"]))},
                          "selection": str(rng.choice(["mmt", "mu", "rs", "mc"])),
                          "underload": bool(rng.random() < 0.7)},
        "power_management": {"idle_off_after": str(rng.choice(["0 s", "10 min", "never"]))},
        "migration": {
            "model": str(rng.choice(["precopy", "postcopy", "ram-over-bandwidth"], p=[0.6, 0.2, 0.2])),
            "on_no_convergence": str(rng.choice(["force", "abort", "auto-converge", "postcopy"])),
            "max_per_host": int(rng.integers(1, 4)),
            "max_bandwidth": str(rng.choice(["8 MiB/s", "128 MiB/s"])),
        },
    }
    data["vms"][0].update(dirty_rate=f"{int(rng.integers(0, 40))} MiB/s",
                          network=f"{int(rng.integers(0, 200))} Mbit/s")
    if rng.random() < 0.3:
        data["hosts"].append({**data["hosts"][0], "name": "m", "count": 2, "initially": "on"})
        data["maintenance"] = [{"hosts": "m", "start": "1 h", "until": "4 h",
                                "max_concurrent": int(rng.integers(1, 4))}]
    return data


@pytest.mark.parametrize("i", range(40))
def test_invariants_hold_at_every_instant(i: int, monkeypatch) -> None:
    checks = {"n": 0}
    settle = simulation.Simulation._settle

    def checked(self) -> None:
        settle(self)
        self.dc.check_invariants()
        self.fabric.check_invariants(self.dc.vms.state == VmState.MIGRATING)
        checks["n"] += 1

    monkeypatch.setattr(simulation.Simulation, "_settle", checked)
    data = random_scenario(np.random.default_rng(1000 + i), i)
    result = vsim.run(vsim.parse_scenario(yaml.safe_dump(data)))
    assert checks["n"] > 0
    hosts, info = result.tables["hosts"], result.tables["host_info"].set_index("host")
    ram = info.loc[hosts["host"], "ram_bytes"].to_numpy() * data["placement"]["ram_overcommit"]
    assert (hosts["mem_used_bytes"].to_numpy() <= ram * (1 + 1e-9)).all()
