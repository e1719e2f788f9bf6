"""Random small datacenters under dynamic consolidation keep the model's invariants at every
instant: every VM in exactly one place, running VMs only on hosts that are on (a migration target
is never switched off while a VM is on its way in), commitments equal to the placements, and the
migration fabric agreeing with the VMs' states and its concurrency limits."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import vsim
import vsim.model.simulation as simulation
from vsim.model.datacenter import HostState, PlacementView, VmState
from vsim.model.interfaces import ConsolidationView
from vsim.model.power import POWER_TABLES, PowerCurves
from vsim.policies.consolidation import PowerAwarePlacer
from vsim.policies.overload import make_overload_detector


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
                          network=f"{int(rng.integers(0, 200))} Mbit/s",
                          network_follows_cpu=bool(rng.random() < 0.5))
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


# PABFD's shortcuts decide exactly as the full test: the overload screen of best_host (THR at
# once, LR by its linear form) against the detector on every candidate, and the undo log against
# the state before a dropped plan.

GIB = 1024.0**3


def random_view(seed: int, width: int = 30) -> ConsolidationView:
    rng = np.random.default_rng(seed)
    n_h, n_v = int(rng.integers(3, 30)), int(rng.integers(1, 60))
    cores = rng.integers(1, 4, n_h).astype(float)
    capacity = cores * rng.choice([1.86e9, 2.66e9], n_h)
    vm_capacity = rng.choice([0.5e9, 1e9, 2e9, 2.5e9], n_v)
    # Coarse grids make equal costs and histories right at the limits frequent.
    vm_history = np.round(rng.random((n_v, width)) * 8) / 8
    vm_n_valid = rng.integers(0, width + 1, n_v)
    vm_demand = np.round(rng.random(n_v) * 8) / 8 * vm_capacity
    vm_host = rng.integers(0, n_h, n_v)
    host_history = np.zeros((n_h, width))
    np.add.at(host_history, vm_host, vm_history * vm_capacity[:, None])
    host_history /= capacity[:, None]
    host_n_valid = np.zeros(n_h, dtype=np.int64)
    np.maximum.at(host_n_valid, vm_host, vm_n_valid)
    vm_ram = rng.choice([0.5, 1.0, 2.0], n_v) * GIB
    tables = list(POWER_TABLES.values())
    power = PowerCurves(tables, [0.0, 0.0], of_host=rng.integers(0, 2, n_h))
    zeros = np.zeros(n_h)
    placement = PlacementView(
        host_cores=cores, host_capacity_hz=capacity, host_ram_bytes=np.full(n_h, 8 * GIB),
        host_state=np.full(n_h, HostState.ON), host_vcpus_used=np.bincount(vm_host, minlength=n_h)
        .astype(float), host_ram_used=np.bincount(vm_host, weights=vm_ram, minlength=n_h),
        host_reservation_used_hz=zeros, host_vm_count=np.bincount(vm_host, minlength=n_h),
        host_cpu_committed_hz=np.bincount(vm_host, weights=vm_capacity, minlength=n_h),
        vm_vcpus=np.ones(n_v), vm_ram_bytes=vm_ram, vm_reservation_hz=np.zeros(n_v),
        vm_capacity_hz=vm_capacity, vm_priority=np.zeros(n_v), power=power)
    return ConsolidationView(
        placement=placement, power=power,
        host_demand_hz=np.bincount(vm_host, weights=vm_demand, minlength=n_h),
        vm_demand_hz=vm_demand, vm_host=vm_host, vm_state=np.full(n_v, VmState.RUNNING),
        vm_history=vm_history, vm_n_valid=vm_n_valid, host_history=host_history,
        host_n_valid=host_n_valid)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), detector=st.sampled_from(["thr", "lr", "lrr"]),
       safety=st.sampled_from([0.8, 1.0, 1.2]))
def test_screened_best_host_is_the_full_scan(seed: int, detector: str, safety: float) -> None:
    view = random_view(seed)
    params = {"threshold": safety * 0.7} if detector == "thr" else {"safety": safety}
    det = make_overload_detector(detector, **params)
    screened = PowerAwarePlacer(view, det, cpu_overcommit=4.0, ram_overcommit=1.0)
    full = PowerAwarePlacer(view, det, cpu_overcommit=4.0, ram_overcommit=1.0)
    full._screen = lambda *args: None  # the detector on every candidate, cheapest first
    rng = np.random.default_rng(seed)
    n_h = len(view.host_demand_hz)
    # Place every VM in turn (moves change the state the next choice sees).
    for vm in rng.permutation(len(view.vm_demand_hz)).tolist():
        allowed = rng.random(n_h) < 0.8
        a, b = screened.best_host(vm, allowed), full.best_host(vm, allowed)
        assert a == b
        if a >= 0:
            screened.move(vm, int(view.vm_host[vm]), a)
            full.move(vm, int(view.vm_host[vm]), b)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_rollback_restores_the_exact_state(seed: int) -> None:
    view = random_view(seed)
    placer = PowerAwarePlacer(view, make_overload_detector("lr"), 4.0, 1.0)
    before = [a.copy() for a in (placer.demand, placer.history, placer.n_valid, placer.vcpus,
                                 placer.ram, placer.power_now, placer.lin)]
    rng = np.random.default_rng(seed)
    n_h = len(view.host_demand_hz)
    placer.tentative()
    for vm in range(len(view.vm_demand_hz)):
        placer.move(vm, int(view.vm_host[vm]), int(rng.integers(0, n_h)))
    placer.rollback()
    after = (placer.demand, placer.history, placer.n_valid, placer.vcpus, placer.ram,
             placer.power_now)
    for x, y in zip(before, after, strict=False):
        assert x.tobytes() == y.tobytes()
    # The LR screen's host terms are recomputed per host: the same up to rounding.
    assert np.allclose(before[-1], placer.lin, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), safety=st.sampled_from([0.8, 1.0, 1.2]))
def test_the_screen_precheck_never_refuses_a_vm_that_finds_a_host(seed: int, safety: float) -> None:
    # might_pass_screen lets the underload phase skip a source whose first VM fits nowhere. As in
    # that phase, hosts only leave `allowed`, plans are made and dropped (rollback) or kept; the
    # check may let through VMs that then find no host, never the other way round.
    view = random_view(seed)
    placer = PowerAwarePlacer(view, make_overload_detector("lr", safety=safety), 4.0, 1.0)
    rng = np.random.default_rng(seed)
    n_h, n_v = len(view.host_demand_hz), len(view.vm_demand_hz)
    allowed = np.ones(n_h, dtype=bool)
    where = view.vm_host.copy()
    for vm in rng.permutation(n_v).tolist():
        passes = placer.might_pass_screen(vm, allowed)
        placer.tentative()
        dest = placer.best_host(vm, allowed)
        assert passes or dest < 0
        if dest >= 0:
            placer.move(vm, int(where[vm]), dest)
            if rng.random() < 0.5:
                placer.rollback()
            else:
                placer.commit()
                where[vm] = dest
        else:
            placer.rollback()
        if rng.random() < 0.3:
            allowed[rng.integers(0, n_h)] = False
