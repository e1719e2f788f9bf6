"""The fluid proportional-share CPU scheduler against hand-derived allocations.

Each expected value is worked out from the model's definition (vsim/model/cpu.py): every VM gets
``clip(w_i * lam, min(e_i, r_i), e_i)`` with ``e_i`` its demand capped by its limit and one core
per vCPU, ``w_i`` its shares, ``r_i`` its reservation, and the level ``lam`` chosen so the host's
capacity is used up exactly when the host is contended (allocation = demand otherwise).

The same cases then run end to end through ``vsim.run`` on a one-host scenario with constant
workloads, and the ``vms`` table must show the same ``cpu_alloc_hz`` and ``cpu_ready_frac``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import GHZ, MHZ, run_text

from vsim.model.cpu import FluidScheduler, fluid_share

INF = np.inf


def share_one_host(demand, shares, reservation=None, cap=None, capacity=1 * GHZ):
    """fluid_share for VMs that all sit on host 0."""
    n = len(demand)
    return fluid_share(
        np.zeros(n, dtype=np.int64),
        np.asarray(demand, dtype=float),
        np.asarray(shares, dtype=float),
        np.zeros(n) if reservation is None else np.asarray(reservation, dtype=float),
        np.full(n, INF) if cap is None else np.asarray(cap, dtype=float),
        np.array([capacity], dtype=float),
    )


# --- the function ---------------------------------------------------------------------------------


def test_two_equal_vms_on_one_core_get_half_each():
    # Two 1-vCPU VMs each want a full 1 GHz core; equal shares: lam * w = 1 GHz / 2.
    alloc = share_one_host([1 * GHZ, 1 * GHZ], [1000, 1000])
    expected = [1 * GHZ / 2, 1 * GHZ / 2]
    assert alloc == pytest.approx(expected, rel=1e-12)
    ready = (1 * GHZ - alloc) / (1 * GHZ)  # the share of demand that waited
    assert ready == pytest.approx([0.5, 0.5])


def test_weights_two_to_one():
    # 2000 vs 1000 shares: w1*lam + w2*lam = 1 GHz, lam = 1 GHz / 3000 -> 2/3 and 1/3 GHz.
    alloc = share_one_host([1 * GHZ, 1 * GHZ], [2000, 1000])
    assert alloc == pytest.approx([2 / 3 * GHZ, 1 / 3 * GHZ], rel=1e-12)


def test_reservation_is_honoured_under_contention():
    # Three VMs want a full core each; the first reserves 0.6 GHz. Equal shares alone would give
    # 1/3 GHz each, below the reservation, so VM 0 is held at its floor of 0.6 GHz and the other
    # two split the remaining 1 - 0.6 = 0.4 GHz equally: 0.2 GHz each.
    alloc = share_one_host([1 * GHZ] * 3, [1000] * 3, reservation=[600 * MHZ, 0, 0])
    assert alloc == pytest.approx([600 * MHZ, (1000 - 600) / 2 * MHZ, (1000 - 600) / 2 * MHZ])


def test_reservation_above_the_fair_share_only():
    # A reservation below the fair share changes nothing: 0.2 GHz reserved, fair share 1/3 GHz.
    alloc = share_one_host([1 * GHZ] * 3, [1000] * 3, reservation=[200 * MHZ, 0, 0])
    assert alloc == pytest.approx([1 / 3 * GHZ] * 3)


def test_reservation_is_never_more_than_the_demand():
    # VM 0 reserves 0.8 GHz but demands only 0.3 GHz: its floor is min(0.3, 0.8) = 0.3 GHz, and
    # it is below the fair share anyway, so it gets its 0.3 GHz; the other gets the rest, 0.7 GHz.
    alloc = share_one_host([300 * MHZ, 1 * GHZ], [1000, 1000], reservation=[800 * MHZ, 0])
    assert alloc == pytest.approx([300 * MHZ, 700 * MHZ])


def test_limit_caps_a_vm_and_the_rest_is_redistributed():
    # On a 2 GHz host, VM 0 is limited to 0.5 GHz: it gets 0.5 (less than its fair 1 GHz);
    # the other two split the remaining 2 - 0.5 = 1.5 GHz: 0.75 GHz each.
    alloc = share_one_host([2 * GHZ] * 3, [1000] * 3, cap=[0.5 * GHZ, INF, INF], capacity=2 * GHZ)
    assert alloc == pytest.approx([0.5 * GHZ, 1.5 / 2 * GHZ, 1.5 / 2 * GHZ])


def test_max_min_small_demand_keeps_its_demand():
    # Demands 0.1, 1, 1 GHz on one 1 GHz core: the fair share 1/3 exceeds 0.1, so VM 0 keeps its
    # 0.1 and the others split the remaining 0.9: 0.45 each.
    alloc = share_one_host([0.1 * GHZ, 1 * GHZ, 1 * GHZ], [1000] * 3)
    assert alloc == pytest.approx([0.1 * GHZ, 0.9 / 2 * GHZ, 0.9 / 2 * GHZ])


def test_max_min_with_weights():
    # Shares 1000, 1000, 2000 and demands 0.2, 1, 1 GHz on 1 GHz. The weighted level would give
    # VM 0 a quarter (0.25 GHz) > 0.2, so it keeps 0.2; the other 0.8 GHz splits 1:2.
    alloc = share_one_host([0.2 * GHZ, 1 * GHZ, 1 * GHZ], [1000, 1000, 2000])
    assert alloc == pytest.approx([0.2 * GHZ, 0.8 / 3 * GHZ, 0.8 * 2 / 3 * GHZ])


def test_no_contention_allocation_equals_demand():
    # 0.2 + 0.3 + 0.4 = 0.9 GHz <= 1 GHz: everybody gets what they ask, whatever the shares.
    demand = [0.2 * GHZ, 0.3 * GHZ, 0.4 * GHZ]
    alloc = share_one_host(demand, [500, 1000, 2000])
    assert np.array_equal(alloc, demand)


def test_demand_exactly_equal_to_capacity_is_not_cut():
    alloc = share_one_host([0.25 * GHZ, 0.75 * GHZ], [1000, 3000])
    assert np.array_equal(alloc, [0.25 * GHZ, 0.75 * GHZ])


def test_cap_applies_without_contention_too():
    # A VM alone on a big host never gets more than its cap (limit or one core per vCPU).
    alloc = share_one_host([3 * GHZ], [1000], cap=[1 * GHZ], capacity=4 * GHZ)
    assert alloc == pytest.approx([1 * GHZ])


def test_hosts_are_independent():
    # Host 0 (1 GHz) holds two VMs that each want 1 GHz; host 1 (4 GHz) one VM that wants 1 GHz.
    alloc = fluid_share(
        np.array([0, 1, 0]), np.array([1, 1, 1]) * GHZ, np.array([1000.0, 1000, 3000]),
        np.zeros(3), np.full(3, INF), np.array([1 * GHZ, 4 * GHZ]),
    )
    # Host 0: shares 1000:3000 -> 1/4 and 3/4 GHz; host 1 uncontended -> 1 GHz.
    assert alloc == pytest.approx([0.25 * GHZ, 1 * GHZ, 0.75 * GHZ])


def test_work_conserving_sum_equals_capacity():
    alloc = share_one_host([0.7 * GHZ, 0.6 * GHZ, 0.05 * GHZ], [700, 1300, 100],
                           reservation=[0, 0.4 * GHZ, 0], cap=[0.5 * GHZ, INF, INF])
    assert alloc.sum() == pytest.approx(1 * GHZ, rel=1e-12)
    assert np.all(alloc <= [0.5 * GHZ, 0.6 * GHZ, 0.05 * GHZ])


def test_scheduler_class_is_the_function():
    args = (np.array([0, 0]), np.array([1.0, 1.0]) * GHZ, np.array([1.0, 3.0]), np.zeros(2),
            np.full(2, INF), np.array([1 * GHZ]))
    assert np.array_equal(FluidScheduler().allocate(*args), fluid_share(*args))


def test_over_reserved_host_scales_the_floors():
    # Reservations 0.8 + 0.4 = 1.2 GHz on a 1 GHz host (a caller broke admission control). The
    # docstring promises the floors are scaled to fit: 0.8/1.2 and 0.4/1.2 of 1 GHz.
    alloc = share_one_host([1 * GHZ, 1 * GHZ], [1000, 1000], reservation=[0.8 * GHZ, 0.4 * GHZ])
    assert alloc.sum() <= 1 * GHZ * (1 + 1e-12)
    assert alloc == pytest.approx([0.8 / 1.2 * GHZ, 0.4 / 1.2 * GHZ])


# --- end to end through vsim.run ----------------------------------------------------------------

ONE_CORE = """
    name: fluid
    duration: 1 h
    period: 20 min
    hosts:
      - {{name: h, cores: {cores}, core_speed: 1 GHz, ram: 64 GiB}}
    vms:
{vms}
    workloads:
      full: {{kind: constant, level: 100%}}
      tenth: {{kind: constant, level: 10%}}
    placement: {{cpu_overcommit: 8}}
"""


def run_one_host(vms: list[str], cores: int = 1):
    text = ONE_CORE.format(cores=cores, vms="\n".join("      - " + v for v in vms))
    result = run_text(text)
    df = result.tables["vms"]
    # Constant demand: every period shows the same allocation; one value per VM.
    assert df.groupby("vm")["cpu_alloc_hz"].nunique().max() == 1
    assert len(df) == 3 * len(result.tables["vm_info"])  # three 20-minute periods in the hour
    first = df[df["time_s"] == 0.0].sort_values("vm")
    return first["cpu_alloc_hz"].to_numpy(), first["cpu_ready_frac"].to_numpy(), result


def test_run_two_vms_on_one_core():
    alloc, ready, _ = run_one_host([
        "{name: a, count: 1, vcpus: 1, ram: 1 GiB, workload: full}",
        "{name: b, count: 1, vcpus: 1, ram: 1 GiB, workload: full}",
    ])
    assert alloc == pytest.approx([0.5 * GHZ, 0.5 * GHZ])
    assert ready == pytest.approx([0.5, 0.5])


def test_run_shares_two_to_one():
    alloc, ready, _ = run_one_host([
        "{name: a, count: 1, ram: 1 GiB, shares: 2000, workload: full}",
        "{name: b, count: 1, ram: 1 GiB, shares: 1000, workload: full}",
    ])
    assert alloc == pytest.approx([2 / 3 * GHZ, 1 / 3 * GHZ])
    # ready = (demand - alloc) / demand = 1 - alloc / 1 GHz.
    assert ready == pytest.approx([1 - 2 / 3, 1 - 1 / 3], rel=1e-6)


def test_run_named_shares_are_per_vcpu():
    # shares: high = 2000 per vCPU, low = 500 per vCPU; two 1-vCPU VMs: 2000:500 -> 4/5 : 1/5.
    alloc, _, _ = run_one_host([
        "{name: a, count: 1, ram: 1 GiB, shares: high, workload: full}",
        "{name: b, count: 1, ram: 1 GiB, shares: low, workload: full}",
    ])
    assert alloc == pytest.approx([0.8 * GHZ, 0.2 * GHZ])


def test_run_reservation():
    alloc, ready, _ = run_one_host([
        "{name: a, count: 1, ram: 1 GiB, reservation: 600 MHz, workload: full}",
        "{name: b, count: 2, ram: 1 GiB, workload: full}",
    ])
    assert alloc == pytest.approx([600 * MHZ, 200 * MHZ, 200 * MHZ])
    assert ready == pytest.approx([0.4, 0.8, 0.8], rel=1e-6)


def test_run_limit_redistributes():
    # Two cores (2 GHz): 'a' limited to 500 MHz; 'b' x2 share the remaining 1.5 GHz.
    alloc, _, _ = run_one_host([
        "{name: a, count: 1, vcpus: 2, ram: 1 GiB, limit: 500 MHz, workload: full}",
        "{name: b, count: 2, vcpus: 2, ram: 1 GiB, workload: full}",
    ], cores=2)
    assert alloc == pytest.approx([0.5 * GHZ, 0.75 * GHZ, 0.75 * GHZ])


def test_run_limit_counts_as_demand_not_met():
    # A limited VM alone: demand 1 GHz, limit 250 MHz -> alloc 250 MHz, ready 0.75.
    alloc, ready, _ = run_one_host(
        ["{name: a, count: 1, ram: 1 GiB, limit: 250 MHz, workload: full}"])
    assert alloc == pytest.approx([250 * MHZ])
    assert ready == pytest.approx([1 - 0.25])


def test_run_max_min():
    alloc, _, _ = run_one_host([
        "{name: a, count: 1, ram: 1 GiB, workload: tenth}",
        "{name: b, count: 2, ram: 1 GiB, workload: full}",
    ])
    assert alloc == pytest.approx([0.1 * GHZ, 0.45 * GHZ, 0.45 * GHZ])


def test_run_no_contention():
    # Three 10 % VMs of 1 GHz on one core: 0.3 GHz in total, each gets its 0.1 GHz, ready 0.
    alloc, ready, result = run_one_host(["{name: a, count: 3, ram: 1 GiB, workload: tenth}"])
    assert alloc == pytest.approx([0.1 * GHZ] * 3)
    assert np.all(ready == 0.0)
    hosts = result.tables["hosts"]
    assert hosts["cpu_util_frac"].to_numpy() == pytest.approx([0.3] * 3, rel=1e-6)


def test_run_one_vcpu_never_gets_more_than_one_core():
    # A 1-vCPU VM whose vCPU is rated 4 GHz demands 4 GHz (100 %), alone on a host of four
    # 1 GHz cores: one vCPU runs on one core at a time, so it gets 1 GHz and waits 3/4 of the time.
    alloc, ready, result = run_one_host(
        ["{name: a, count: 1, vcpus: 1, vcpu_speed: 4 GHz, ram: 1 GiB, workload: full}"], cores=4)
    demand = result.tables["vms"]["cpu_demand_hz"].iloc[0]
    assert demand == pytest.approx(4 * GHZ)
    assert alloc == pytest.approx([1 * GHZ])
    assert ready == pytest.approx([(4 - 1) / 4])


def test_run_two_vcpus_get_two_cores_at_most():
    # Two 2-vCPU VMs at 100 % of their 1 GHz vCPUs on a 4-core host: 2 GHz each, no waiting.
    alloc, ready, _ = run_one_host(["{name: a, count: 2, vcpus: 2, ram: 1 GiB, workload: full}"],
                                   cores=4)
    assert alloc == pytest.approx([2 * GHZ, 2 * GHZ])
    assert np.all(ready == 0.0)


def test_run_reservations_admitted_to_the_last_hertz_never_overbook_the_host():
    # Placement admits a reservation when the room left is within a relative 1e-9 of it
    # (rounding dust), so these three, which add up to 1 GHz + 0.1 Hz, share one 1 GHz core.
    reservations = [214285714.3, 187239944.5, 598474341.3]
    vms = [f"{{name: r{i}, count: 1, ram: 1 GiB, reservation: {r!r} Hz, workload: full}}"
           for i, r in enumerate(reservations)]
    result = run_text(ONE_CORE.format(cores=1, vms="\n".join("      - " + v for v in vms)))
    df = result.tables["vms"]
    assert (df["host"] == 0).all()  # all three placed
    # Each wants the whole core, so each is held at its reservation (they fill the core).
    first = df[df["time_s"] == 0.0].sort_values("vm")
    assert first["cpu_alloc_hz"].to_numpy() == pytest.approx(reservations, rel=1e-6)
    assert result.tables["hosts"]["cpu_alloc_hz"].max() <= 1 * GHZ * (1 + 1e-9)
