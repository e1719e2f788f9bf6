"""Random datacenters with failures, HA, DR and maintenance: the invariants hold at every instant.

DESIGN.md: every VM is in exactly one place (a host, in flight, queued, or failed), so a VM never
runs on two hosts or two sites at once, whatever fails while it migrates, boots or is recovered.
Checked at every event and period of random runs, and on the outages they report.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
from conftest import CheckedRecorder, scenario_from
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vsim
import vsim.runner
from vsim.model.datacenter import HostState, VmState
from vsim.model.simulation import Simulation


class WatchedSimulation(Simulation):
    def __init__(self, dc, observer, *args, **kwargs) -> None:
        super().__init__(dc, observer, *args, **kwargs)
        observer.sim = self


class CheckingRecorder(CheckedRecorder):
    sim: Simulation

    def check(self) -> None:
        sim = self.sim
        dc, v, h = sim.dc, sim.dc.vms, sim.dc.hosts
        dc.check_invariants()
        sim.fabric.check_invariants(v.state == VmState.MIGRATING)
        placed = np.isin(v.state, [VmState.STARTING, VmState.RUNNING, VmState.MIGRATING,
                                   VmState.BOOTING])
        # One host, or none: placed VMs have exactly one, every other VM none.
        assert np.all((v.host >= 0) == placed)
        assert np.all(h.vm_count[h.state == HostState.FAILED] == 0)
        avail = sim.avail
        if avail is None:
            return
        booting = set(np.flatnonzero(v.state == VmState.BOOTING).tolist())
        assert set(avail.boots.active.tolist()) == booting, "a boot runs iff its VM is booting"
        assert np.all(h.state[v.host[list(booting)]] == HostState.ON)
        down = v.state == VmState.DOWN
        assert np.all(down[avail.waiting]) and np.all(down[avail.for_repair])
        assert set(avail.open) >= set(np.flatnonzero(down).tolist()), "a down VM has an outage"
        rep = avail.replication
        if rep is not None:
            # A VM replicates only while it runs (never while down or booting).
            assert np.all(np.isin(v.state[rep.running], [VmState.RUNNING, VmState.MIGRATING]))
            now = sim.engine.now
            rp = rep.recovery_point(np.arange(len(v)), now)
            assert np.all(np.nan_to_num(rp, nan=-1.0) <= now + 1e-6)



@st.composite
def scenarios(draw):
    two_sites = draw(st.booleans())
    sites = [{"name": "a", "uplink": "1 Gbit/s", "storage": "500 MB/s"}]
    hosts = [{"name": "ha", "site": "a", "count": draw(st.integers(2, 4)), "cores": 8,
              "core_speed": "2 GHz", "ram": "32 GiB", "boot_time": "2 min",
              "storage": draw(st.sampled_from(["unlimited", "200 MB/s"]))}]
    if two_sites:
        sites.append({"name": "b", "uplink": "1 Gbit/s", "storage": "300 MB/s"})
        hosts.append({"name": "hb", "site": "b", "count": draw(st.integers(1, 3)), "cores": 8,
                      "core_speed": "2 GHz", "ram": "32 GiB", "boot_time": "1 min",
                      "initially": draw(st.sampled_from(["on", "off"]))})
    vms = []
    for i in range(draw(st.integers(1, 3))):
        vm = {"name": f"g{i}", "count": draw(st.integers(1, 6)),
              "vcpus": draw(st.sampled_from([1, 2, 4])),
              "ram": f"{draw(st.sampled_from([2, 4, 8]))} GiB",
              "priority": draw(st.integers(0, 2)), "ha": draw(st.booleans()),
              "workload": "w", "hosts": "ha", "write_rate": draw(st.sampled_from(
                  ["100 KiB/s", "5 MiB/s", "40 MiB/s"]))}
        if draw(st.integers(0, 3)) == 0:
            vm["lifetime"] = draw(st.sampled_from(["50 min", "3 h"]))
        vms.append(vm)
    failures = [{"hosts": "ha", "time_to_failure": draw(st.sampled_from(["1 h", "4 h"])),
                 "repair": draw(st.sampled_from(["20 min", "never",
                                                 {"distribution": "exponential", "mean": "1 h"}]))}]
    if two_sites and draw(st.booleans()):
        failures.append({"site": "a", "between": ["30 min", "4 h"],
                         "repair": draw(st.sampled_from(["1 h", "never"]))})
    policy = draw(st.sampled_from(["none", "slots", "percentage"]))
    data = {
        "name": "failprop", "duration": "6 h", "period": "15 min",
        "sites": sites, "hosts": hosts, "vms": vms,
        "workloads": {"w": {"kind": "synthetic", "step": "15 min", "mean": "40%",
                            "noise": {"sd": "10%"}}},
        "placement": {"policy": draw(st.sampled_from(["first-fit", "worst-fit", "best-fit"])),
                      "cpu_overcommit": 2.0},
        "failures": failures,
        "ha": {"admission": {"policy": policy}, "wait_for": draw(st.sampled_from(
            ["placed", "booted"])), "tier_delay": draw(st.sampled_from(["0 s", "1 min"])),
            "boot": {"io": "1 GiB", "init": "30 s"}},
        "migration": {"max_bandwidth": "1 GiB/s"},
    }
    if draw(st.booleans()):
        data["maintenance"] = [{"hosts": ["ha-0"], "start": draw(st.sampled_from(
            ["20 min", "2 h"])), "until": "3 h"}]
    if two_sites:
        data["dr"] = [{"name": "p", "site": "a", "to": "b",
                       "replication": {"rpo": draw(st.sampled_from(["5 min", "15 min"]))},
                       "detection": "2 min", "groups": [
                           {"name": f"r{i}", "vms": [vm["name"]]} for i, vm in enumerate(vms)],
                       "failback": draw(st.sampled_from(["10 min", "never"]))}]
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**16))
def test_failures_never_put_a_vm_in_two_places(data, seed) -> None:
    with mock.patch.object(vsim.runner, "Recorder", CheckingRecorder), \
            mock.patch.object(vsim.runner, "Simulation", WatchedSimulation):
        r = vsim.run(scenario_from(data), seed=seed)
    out = r.tables["outages"]
    assert (out["downtime_s"] >= 0).all()
    up = out[out["restarted"]]
    assert (up["placed_s"] >= up["failed_s"]).all() and (up["up_s"] >= up["placed_s"]).all()
    # HA restarts within the site; DR failovers at the recovery site.
    assert (up.loc[up["how"] == "ha", "new_site"] == up.loc[up["how"] == "ha", "site"]).all()
    assert (up.loc[up["how"] == "dr", "new_site"] == "b").all()
    # A VM's outages follow one another: it is never down twice at once.
    for _, mine in out.sort_values("failed_s").groupby("vm"):
        ends = np.where(mine["restarted"], mine["up_s"], np.inf)
        assert np.all(mine["failed_s"].to_numpy()[1:] >= ends[:-1])
