"""Invariants of random small datacenters, and the fluid scheduler against a brute-force solver.

DESIGN.md's invariants: delivered CPU <= demand and <= capacity, every VM in exactly one place,
energy >= idle power x time on; plus work conservation, checked exactly in the periods where
nothing changes (constant demand within the period, so period means are the allocation itself).
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
from conftest import GHZ, CheckedRecorder, scenario_from
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import vsim
import vsim.runner
from vsim.model.cpu import fluid_share
from vsim.model.datacenter import VM_STATE_NAMES, HostState, VmState
from vsim.model.power import POWER_TABLES
from vsim.policies import PLACEMENT_POLICIES

DURATION_S = 2 * 3600.0
REL = 1e-9  # float dust on sums of a few dozen terms in Hz


# --- a brute-force reference for the fluid scheduler -------------------------------------------


def brute_force_share(host, demand, shares, reservation, cap, capacity):
    """The fluid allocation found by bisection on each host's level lam (no breakpoints)."""
    want = np.minimum(demand, cap)
    floor = np.minimum(want, reservation)
    alloc = want.astype(float).copy()
    for h in range(len(capacity)):
        mine = host == h
        if want[mine].sum() <= capacity[h]:
            continue
        lo, hi, w = floor[mine], want[mine], shares[mine]
        a, b = 0.0, float(np.max(hi / w))
        for _ in range(200):
            mid = (a + b) / 2
            if np.clip(w * mid, lo, hi).sum() < capacity[h]:
                a = mid
            else:
                b = mid
        alloc[mine] = np.clip(w * b, lo, hi)
    return alloc


@st.composite
def fluid_inputs(draw):
    n_hosts = draw(st.integers(1, 4))
    capacity = np.array(draw(st.lists(st.sampled_from([1.0, 2.0, 4.0, 10.0, 41.6]),
                                      min_size=n_hosts, max_size=n_hosts))) * GHZ
    n = draw(st.integers(1, 12))
    host = np.array(draw(st.lists(st.integers(0, n_hosts - 1), min_size=n, max_size=n)))
    fraction = st.floats(0.0, 1.0, allow_nan=False)
    demand = np.array(draw(st.lists(st.one_of(st.just(0.0), fraction.map(lambda x: x * 4 * GHZ),
                                              st.sampled_from([0.5 * GHZ, 1 * GHZ, 2 * GHZ])),
                                    min_size=n, max_size=n)))
    shares = np.array(draw(st.lists(st.one_of(st.sampled_from([500.0, 1000.0, 2000.0]),
                                              st.floats(1.0, 10000.0)),
                                    min_size=n, max_size=n)))
    cap = np.array(draw(st.lists(st.one_of(st.just(np.inf), st.sampled_from([0.5, 1, 2]).map(
        lambda x: x * GHZ), fraction.map(lambda x: (0.05 + x) * 3 * GHZ)), min_size=n, max_size=n)))
    # Reservations are admitted against capacity: each host's sum stays within it.
    share_of = np.array(draw(st.lists(fraction, min_size=n, max_size=n)))
    reserve = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    reservation = np.zeros(n)
    for h in range(n_hosts):
        mine = (host == h) & reserve
        if mine.any():
            budget = draw(st.sampled_from([0.3, 0.8, 1.0])) * capacity[h]
            weights = share_of[mine] + 1e-3
            reservation[mine] = np.floor(budget * weights / weights.sum())
    return host, demand, shares, reservation, cap, capacity


@settings(max_examples=300, deadline=None)
@given(fluid_inputs())
def test_fluid_share_matches_the_brute_force_solver(case) -> None:
    host, demand, shares, reservation, cap, capacity = case
    alloc = fluid_share(host, demand, shares, reservation, cap, capacity)
    expected = brute_force_share(host, demand, shares, reservation, cap, capacity)
    np.testing.assert_allclose(alloc, expected, rtol=1e-7, atol=1.0)  # within 1 Hz
    want = np.minimum(demand, cap)
    assert np.all(alloc <= want * (1 + REL))
    assert np.all(alloc >= np.minimum(want, reservation) * (1 - REL) - 1e-3)
    used = np.bincount(host, weights=alloc, minlength=len(capacity))
    wanted = np.bincount(host, weights=want, minlength=len(capacity))
    assert np.all(used <= capacity * (1 + REL))
    # Work conserving: a host is left partly idle only when every VM on it is satisfied.
    np.testing.assert_allclose(used, np.minimum(wanted, capacity), rtol=1e-9)


# --- random small scenarios --------------------------------------------------------------------


class CheckingRecorder(CheckedRecorder):
    """The run's recorder, checking the datacenter's own invariants at every period and event."""

    def check(self) -> None:
        self.dc.check_invariants()
        v = self.dc.vms
        # Every VM is in exactly one place: future, queued, on a host (starting/running), or gone.
        assert np.all(v.state < len(VM_STATE_NAMES))
        on_host = (v.state == VmState.STARTING) | (v.state == VmState.RUNNING)
        assert np.all((v.host >= 0) == on_host)
        starting_on = self.dc.hosts.state[v.host[v.state == VmState.STARTING]]
        assert np.all(starting_on != HostState.OFF)

    def period(self, s) -> None:
        assert np.unique(s.vm_ids).size == s.vm_ids.size
        super().period(s)


SIZES = [(1, 1.0), (2, 2.5), (4, 2.0), (8, 3.0), (16, 2.6)]  # (cores, GHz)


@st.composite
def power_specs(draw):
    if draw(st.booleans()):
        return {"spec": draw(st.sampled_from(sorted(POWER_TABLES)))}
    idle = draw(st.sampled_from([50, 100, 140]))
    spec = {"idle": f"{idle} W", "max": f"{idle + draw(st.sampled_from([0, 60, 240]))} W"}
    if draw(st.booleans()):
        spec["off"] = f"{draw(st.sampled_from([0, 4]))} W"
    return spec


@st.composite
def workloads(draw):
    kind = draw(st.sampled_from(["constant", "constant", "synthetic", "none"]))
    if kind == "none":
        return None
    if kind == "constant":
        # Busy VMs more often than not, so that hosts are contended.
        level = draw(st.one_of(st.sampled_from([60, 100]), st.integers(0, 100)))
        return {"kind": "constant", "level": f"{level}%"}
    w = {"kind": "synthetic", "step": "10 min", "mean": f"{draw(st.integers(5, 90))}%",
         "noise": {"sd": f"{draw(st.sampled_from([0, 5, 20]))}%"}}
    if draw(st.booleans()):
        w["arrivals"] = {"mean_interarrival": f"{draw(st.sampled_from([5, 20, 60]))} min"}
    if draw(st.booleans()):
        w["lifetime"] = {"mean": f"{draw(st.sampled_from([20, 60, 180]))} min",
                         "distribution": draw(st.sampled_from(["exponential", "fixed"]))}
    return w


@st.composite
def scenarios(draw):
    hosts = []
    # Few hosts more often than many, so that VMs compete for them.
    for i in range(draw(st.one_of(st.integers(1, 2), st.integers(1, 6)))):
        cores, ghz = draw(st.sampled_from(SIZES))
        hosts.append({
            "name": f"h{i}", "cores": cores, "core_speed": f"{ghz} GHz",
            "ram": f"{draw(st.sampled_from([4, 8, 16, 32]))} GiB",
            "power": draw(power_specs()),
            "boot_time": f"{draw(st.sampled_from([0, 1, 5]))} min",
            "initially": draw(st.sampled_from(["on", "on", "off"])),
        })
    vms, loads, total = [], {}, 0
    while total < 20 and (not vms or draw(st.integers(0, 3)) > 0):
        count = draw(st.integers(1, min(6, 20 - total)))
        total += count
        name = f"g{len(vms)}"
        # Sized to fit at least one host (a VM larger than every host is refused at load).
        fits = draw(st.sampled_from(hosts))
        ram = int(fits["ram"].split()[0])
        vm = {
            "name": name, "count": count,
            "vcpus": draw(st.sampled_from([c for c in (1, 2, 4, 8) if c <= fits["cores"]])),
            "ram": f"{draw(st.sampled_from([r for r in (0.5, 1, 2, 4, 8) if r <= ram]))} GiB",
            "shares": draw(st.one_of(st.sampled_from(["low", "normal", "high"]),
                                     st.integers(100, 5000))),
            "reservation": draw(st.sampled_from(["0 Hz", "0 Hz", "200 MHz", "500 MHz", "1 GHz"])),
        }
        # A limit below the reservation is refused at load.
        vm["limit"] = draw(st.sampled_from(["unlimited", "unlimited", "2 GHz", "5 GHz"]
                                           + (["800 MHz"] if vm["reservation"] != "1 GHz" else [])))
        if draw(st.booleans()):
            vm["vcpu_speed"] = draw(st.sampled_from(["1 GHz", "2 GHz", "3.5 GHz"]))
        if draw(st.integers(0, 3)) == 0:
            vm["lifetime"] = draw(st.sampled_from(["25 min", "1 h", "95 min"]))
        load = draw(workloads())
        if load is not None:
            loads[name] = load
            vm["workload"] = name
        vms.append(vm)
    return {
        "name": "prop",
        "duration": "2 h",
        "period": "10 min",
        "hosts": hosts,
        "vms": vms,
        "workloads": loads,
        "placement": {
            "policy": draw(st.sampled_from(list(PLACEMENT_POLICIES))),
            "cpu_overcommit": draw(st.sampled_from([1.0, 1.5, 2.0, 4.0, 4.0, 8.0])),
            "ram_overcommit": draw(st.sampled_from([1.0, 1.5])),
        },
        "power_management": {
            "power_on_when_needed": draw(st.booleans()),
            "idle_off_after": draw(st.sampled_from(["never", "10 min", "30 min"])),
        },
    }


def period_lengths(times: pd.Series, end: float) -> pd.Series:
    starts = np.sort(times.unique())
    lengths = np.diff(np.r_[starts, end])
    return times.map(dict(zip(starts, lengths, strict=True)))


def quiet_periods(events: pd.DataFrame, starts: np.ndarray) -> set[float]:
    """Starts of the periods with no event after their start, up to their end included: demand
    is constant within them, and the state recorded at their end is the state all along."""
    touched = np.searchsorted(starts, events["time_s"].to_numpy(), side="left") - 1
    return {float(s) for s in starts} - {float(starts[k]) for k in touched if k >= 0}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**16))
def test_random_scenarios_keep_the_invariants(data, seed) -> None:
    with mock.patch.object(vsim.runner, "Recorder", CheckingRecorder):
        result = vsim.run(scenario_from(data), seed=seed)
    tables, summary = result.tables, result.summary
    hosts, vms = tables["hosts"], tables["vms"]
    host_info, vm_info = tables["host_info"].set_index("host"), tables["vm_info"].set_index("vm")
    end = summary["sim_time_s"]
    assert end == DURATION_S

    # A VM is never given more than it demands, nor more than its vCPUs can run.
    if len(vms):
        assert np.all(vms["cpu_alloc_hz"] <= vms["cpu_demand_hz"] * (1 + REL) + 1e-6)
        capacity_of_vm = (vm_info["vcpus"] * vm_info["vcpu_hz"]).reindex(vms["vm"]).to_numpy()
        assert np.all(vms["cpu_demand_hz"].to_numpy() <= capacity_of_vm * (1 + REL))
        assert vms["cpu_ready_frac"].between(0.0, 1.0).all()
        # Each VM appears at most once per period, and only on a real host or nowhere (-1).
        assert not vms.duplicated(["time_s", "vm"]).any()
        assert vms["host"].between(-1, len(host_info) - 1).all()

    # No host delivers more than its capacity over the time it was on.
    capacity = host_info["cpu_capacity_hz"].reindex(hosts["host"]).to_numpy()
    assert np.all(hosts["cpu_alloc_hz"].to_numpy()
                  <= capacity * hosts["on_frac"].to_numpy().astype(float) * (1 + 1e-6) + 1e-3)
    if len(vms):
        per_host = vms[vms["host"] >= 0].groupby(["time_s", "host"])["cpu_alloc_hz"].sum()
        recorded = hosts.set_index(["time_s", "host"])["cpu_alloc_hz"]
        # A VM that left mid-period shows no host, so the host's own total may be larger.
        assert np.all(per_host <= recorded.reindex(per_host.index) * (1 + REL) + 1e-3)

    # Energy: at least idle power for every second a host was on; the tables add up.
    dt = period_lengths(hosts["time_s"], end).to_numpy()
    idle = host_info["power_idle_w"].reindex(hosts["host"]).to_numpy()
    on_s = hosts["on_frac"].to_numpy().astype(float) * dt
    assert np.all(hosts["energy_j"].to_numpy() >= idle * on_s * (1 - 1e-6) - 1e-6)
    assert summary["energy_j"] >= float((idle * on_s).sum()) * (1 - 1e-6)
    np.testing.assert_allclose(hosts["energy_j"].sum(), summary["energy_j"], rtol=1e-9)
    np.testing.assert_allclose(tables["datacenter"]["energy_j"].sum(), summary["energy_j"],
                               rtol=1e-9)

    # Work conservation, exactly, in the periods where nothing happened inside the period: then
    # each VM's demand was constant over it, so the period means are the allocation itself and
    # must be the fluid allocation of those demands (checked against the brute-force solver).
    if not len(vms):
        return
    starts = np.sort(hosts["time_s"].unique())
    checked = 0
    for t in quiet_periods(tables["events"], starts):
        here = vms[(vms["time_s"] == t) & (vms["host"] >= 0) & (vms["state"] == "running")]
        on_all_period = hosts[(hosts["time_s"] == t) & (hosts["on_frac"] == 1.0)]["host"]
        here = here[here["host"].isin(on_all_period)]
        if here.empty:
            continue
        info = vm_info.reindex(here["vm"])
        host = here["host"].to_numpy()
        core_hz = host_info["core_hz"].reindex(host).to_numpy()
        cap = np.minimum(info["limit_hz"].to_numpy(), info["vcpus"].to_numpy() * core_hz)
        demand = here["cpu_demand_hz"].to_numpy()
        expected = brute_force_share(
            host, demand, info["shares"].to_numpy(), info["reservation_hz"].to_numpy(), cap,
            host_info["cpu_capacity_hz"].reindex(range(len(host_info))).to_numpy(),
        )
        np.testing.assert_allclose(here["cpu_alloc_hz"].to_numpy(), expected, rtol=1e-6, atol=1.0)
        checked += len(here)
        want = np.minimum(demand, cap)
        used = pd.Series(here["cpu_alloc_hz"].to_numpy()).groupby(host).sum()
        wanted = pd.Series(want).groupby(host).sum()
        cap_h = host_info["cpu_capacity_hz"].reindex(used.index)
        np.testing.assert_allclose(used.to_numpy(), np.minimum(wanted, cap_h).to_numpy(),
                                   rtol=1e-6)
        contended = (wanted > cap_h).sum()
        event(f"quiet period with a contended host: {contended > 0}")
    event(f"VM-periods checked exactly: {'none' if checked == 0 else 'some'}")
