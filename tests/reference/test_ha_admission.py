"""HA admission control (vsim/policies/admission.py) against hand-computed clusters.

The rules are those of vSphere HA's admission control ("vSphere Availability"): slot policy,
percentage policy, dedicated failover hosts. Every expected value below is derived in the comments
from those rules; nothing is taken from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vsim.policies.admission import (
    ADMISSION_POLICIES,
    ClusterState,
    FailoverHostsPolicy,
    NoAdmission,
    PercentagePolicy,
    SlotPolicy,
    failover_capacity_hosts,
    failover_fractions,
    largest_hosts_share,
    make_admission,
    slot_size,
    slots_after_failures,
    slots_per_host,
    vm_slots,
)

MHZ = 1e6
GHZ = 1e9
GIB = 2.0**30

# Four hosts of two sizes: two big (8 GHz, 24 GiB) and two small (4 GHz, 16 GiB).
HOST_CPU = np.array([8, 8, 4, 4]) * GHZ
HOST_MEM = np.array([24, 24, 16, 16]) * GIB
# Four powered-on VMs: CPU reservations 500, 1000, 0, 250 MHz; memory reservation + overhead
# 2, 1, 4, 0.5 GiB.
VM_CPU = np.array([500, 1000, 0, 250]) * MHZ
VM_MEM = np.array([2, 1, 4, 0.5]) * GIB


def cluster(up: list[bool] | None = None, cpu: np.ndarray = VM_CPU,
            mem: np.ndarray = VM_MEM) -> ClusterState:
    host_up = np.ones(4, dtype=bool) if up is None else np.array(up)
    return ClusterState(HOST_CPU, HOST_MEM, host_up, cpu, mem)


def small(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n candidate VMs without CPU reservation and 1 GiB of memory: they never enlarge the slot."""
    return np.zeros(n), np.full(n, 1 * GIB)


# ------------------------------------------------------------------ slot policy

def test_slot_counting_on_a_hand_computed_cluster() -> None:
    # CPU slot = max(500, 1000, 0, 250 MHz; 32 MHz) = 1000 MHz; memory slot = max(2, 1, 4, 0.5)
    # = 4 GiB.
    assert slot_size(VM_CPU, VM_MEM) == (1000 * MHZ, 4 * GIB)
    # Big hosts: floor(min(8000/1000 = 8, 24/4 = 6)) = 6 (memory bound);
    # small hosts: floor(min(4000/1000 = 4, 16/4 = 4)) = 4. Total 6 + 6 + 4 + 4 = 20.
    per_host = slots_per_host(HOST_CPU, HOST_MEM, 1000 * MHZ, 4 * GIB)
    assert per_host.tolist() == [6, 6, 4, 4]
    # Every VM is within the (uncapped) slot: 4 VMs take 4 slots.
    assert vm_slots(VM_CPU, VM_MEM, 1000 * MHZ, 4 * GIB).tolist() == [1, 1, 1, 1]
    # One failure (largest host, 6 slots) leaves 14; two leave 8; three leave 4; four leave 0.
    assert slots_after_failures(per_host, 1) == 14
    assert slots_after_failures(per_host, 3) == 4
    # 4 slots used: 14, 8, 4 >= 4 but 0 < 4, so 3 hosts can fail.
    assert failover_capacity_hosts(per_host, 4) == 3

    figures = SlotPolicy(host_failures=1).describe(cluster())
    assert figures["slot_cpu_hz"] == 1000 * MHZ
    assert figures["slot_mem_bytes"] == 4 * GIB
    assert figures["slots_total"] == 20
    assert figures["slots_used"] == 4
    assert figures["slots_after_failures"] == 14
    assert figures["failover_capacity_hosts"] == 3


def test_the_power_on_that_breaks_one_host_failure_is_refused() -> None:
    # N = 1 leaves 14 slots; 4 are used, so 10 more 1-slot VMs fit (14 VMs in 14 slots) and the
    # 11th would make 15 VMs for 14 slots.
    decision = SlotPolicy(host_failures=1).admit(cluster(), *small(11))
    assert decision.admitted.tolist() == [True] * 10 + [False]
    assert decision.reasons[:10] == [""] * 10
    assert decision.reasons[10] == (
        "would leave 14 slots for 15 VMs after 1 host failure (slot 1000 MHz, 4 GiB)")
    # With the 10 powered on: 14 slots used; one failure leaves 14 >= 14, two leave 8 < 14.
    full = cluster(cpu=np.append(VM_CPU, small(10)[0]), mem=np.append(VM_MEM, small(10)[1]))
    assert SlotPolicy().describe(full)["failover_capacity_hosts"] == 1


def test_one_call_agrees_with_powering_on_one_at_a_time() -> None:
    policy = SlotPolicy(host_failures=1)
    cpu = np.array([0, 2000, 300, 4000, 100, 0, 50, 700, 0, 0, 0, 0]) * MHZ
    mem = np.array([1, 2, 4, 1, 8, 1, 1, 2, 1, 1, 1, 1]) * GIB
    together = policy.admit(cluster(), cpu, mem)
    state = cluster()
    for i in range(cpu.size):
        alone = policy.admit(state, cpu[i:i + 1], mem[i:i + 1])
        assert alone.admitted[0] == together.admitted[i]
        assert alone.reasons[0] == together.reasons[i]
        if alone.admitted[0]:
            state = cluster(cpu=np.append(state.vm_cpu_res_hz, cpu[i]),
                            mem=np.append(state.vm_mem_res_bytes, mem[i]))
    assert 0 < together.admitted.sum() < cpu.size  # both outcomes occur


def test_a_big_reservation_enlarges_the_slot_and_is_refused() -> None:
    # At today's slot (1000 MHz, 4 GiB) there are 14 - 4 = 10 free slots after one failure: a
    # 4000 MHz / 4 GiB VM would fit even counted as ceil(4000/1000) = 4 slots.
    # But powered on it makes the CPU slot 4000 MHz: big hosts floor(min(8000/4000 = 2, 24/4 = 6))
    # = 2, small floor(min(4000/4000 = 1, 4)) = 1; total 2 + 2 + 1 + 1 = 6, one failure leaves 4,
    # and 5 VMs need 5 slots.
    # The small VM after it is admitted: the refused VM neither enlarges the slot nor counts.
    decision = SlotPolicy(host_failures=1).admit(
        cluster(), np.array([4000 * MHZ, 0]), np.array([4 * GIB, 1 * GIB]))
    assert decision.admitted.tolist() == [False, True]
    assert decision.reasons[0] == (
        "would leave 4 slots for 5 VMs after 1 host failure (slot 4000 MHz, 4 GiB)")


def test_capped_slots_count_multi_slot_vms_by_ceil() -> None:
    policy = SlotPolicy(host_failures=2, max_slot_cpu_hz=500 * MHZ, max_slot_mem_bytes=2 * GIB)
    # Slot = (min(1000, 500) = 500 MHz, min(4, 2) = 2 GiB).
    # VM slots = max(ceil(cpu / 500 MHz), ceil(mem / 2 GiB)):
    #   500 MHz / 2 GiB -> max(1, 1) = 1;  1000 MHz / 1 GiB -> max(2, 1) = 2;
    #   0 MHz (counts 32) / 4 GiB -> max(1, 2) = 2;  250 MHz / 0.5 GiB -> max(1, 1) = 1.  Sum 6.
    assert vm_slots(VM_CPU, VM_MEM, 500 * MHZ, 2 * GIB).tolist() == [1, 2, 2, 1]
    # Big hosts floor(min(8000/500 = 16, 24/2 = 12)) = 12; small floor(min(8, 8)) = 8; total 40;
    # two failures (12 + 12) leave 16.
    figures = policy.describe(cluster())
    assert (figures["slot_cpu_hz"], figures["slot_mem_bytes"]) == (500 * MHZ, 2 * GIB)
    assert (figures["slots_total"], figures["slots_used"]) == (40, 6)
    assert figures["slots_after_failures"] == 16
    # Candidates: 3000 MHz / 8 GiB takes max(ceil(6), ceil(4)) = 6 slots -> 12 <= 16 admitted;
    # the same again -> 18 > 16 refused; 500 MHz / 2 GiB (1 slot) -> 13 <= 16 admitted.
    decision = policy.admit(cluster(), np.array([3000, 3000, 500]) * MHZ,
                            np.array([8, 8, 2]) * GIB)
    assert decision.admitted.tolist() == [True, False, True]
    assert decision.reasons[1] == (
        "would leave 16 slots for 6 VMs taking 18 slots after 2 host failures "
        "(slot 500 MHz, 2 GiB)")


def test_failed_and_maintenance_hosts_give_no_slots() -> None:
    # Host 0 (big) failed: slots [0, 6, 4, 4], total 14; one failure (the other big host, 6)
    # leaves 8. 4 VMs used, so 4 more fit and the 5th (9 VMs) does not.
    state = cluster(up=[False, True, True, True])
    per_host = slots_per_host(HOST_CPU, HOST_MEM, 1000 * MHZ, 4 * GIB, state.host_up)
    assert per_host.tolist() == [0, 6, 4, 4]
    # 4 used: failures of the up hosts leave 8, 4, 0 -> 2 hosts can fail (the failed one is not
    # counted again).
    assert failover_capacity_hosts(per_host, 4, state.host_up) == 2
    decision = SlotPolicy(host_failures=1).admit(state, *small(5))
    assert decision.admitted.tolist() == [True] * 4 + [False]
    assert decision.reasons[4].startswith("would leave 8 slots for 9 VMs after 1 host failure")
    # A host in maintenance is just as absent: hosts 0 and 2 out leave [0, 6, 0, 4] = 10,
    # one failure leaves 4, exactly the 4 VMs: nothing more.
    assert not SlotPolicy().admit(cluster(up=[False, True, False, True]), *small(1)).admitted[0]


def test_slot_defaults_without_reservations() -> None:
    # No reservations at all: CPU slot is das.vmcpuminmhz = 32 MHz, memory slot 0 (no limit).
    assert slot_size(np.zeros(3), np.zeros(3)) == (32 * MHZ, 0.0)
    # 4 GHz / 32 MHz = 125 slots.
    assert slots_per_host(np.array([4 * GHZ]), np.array([GIB]), 32 * MHZ, 0.0).tolist() == [125]
    # An empty cluster: every up host can fail.
    assert SlotPolicy().describe(cluster(up=[True, True, False, True], cpu=np.zeros(0),
                                         mem=np.zeros(0)))["failover_capacity_hosts"] == 3


# ------------------------------------------------------------------ percentage policy

# CPU 10 + 10 + 20 + 20 = 60 GHz; memory 32 + 32 + 64 + 64 = 192 GiB.
P_CPU = np.array([10, 10, 20, 20]) * GHZ
P_MEM = np.array([32, 32, 64, 64]) * GIB
# VMs: CPU reservations 6, 3, 0, 0 GHz -> counted 6000 + 3000 + 32 + 32 = 9064 MHz;
# memory 40 + 20 + 8 + 4 = 72 GiB.
P_VM_CPU = np.array([6, 3, 0, 0]) * GHZ
P_VM_MEM = np.array([40, 20, 8, 4]) * GIB


def pstate(up: list[bool] | None = None, mem: np.ndarray = P_MEM) -> ClusterState:
    host_up = np.ones(4, dtype=bool) if up is None else np.array(up)
    return ClusterState(P_CPU, mem, host_up, P_VM_CPU, P_VM_MEM)


def test_percentage_failover_capacity_by_hand() -> None:
    cpu_free, mem_free = failover_fractions(pstate())
    # CPU (60000 - 9064) / 60000 = 50936 / 60000; memory (192 - 72) / 192 = 0.625.
    assert cpu_free == pytest.approx(50936 / 60000)
    assert mem_free == 0.625
    figures = PercentagePolicy(0.25, 0.5).describe(pstate())
    assert figures["cpu_reserved_hz"] == 9064 * MHZ
    assert figures["mem_reserved_bytes"] == 72 * GIB
    assert figures["mem_reserved_frac"] == 0.375
    assert (figures["cpu_target_frac"], figures["mem_target_frac"]) == (0.25, 0.5)


def test_memory_not_cpu_breaks_the_reserve_and_later_smaller_vms_still_fit() -> None:
    policy = PercentagePolicy(cpu_frac=0.25, mem_frac=0.5)
    # 1) 1 GHz / 30 GiB: memory 102 GiB -> (192 - 102) / 192 = 46.875 % < 50 %: refused, though
    #    CPU is fine: (60000 - 10064) / 60000 = 83.2 % >= 25 %.
    # 2) 1 GHz / 24 GiB (the refused one does not count): 96 GiB -> 96 / 192 = 50 %, exactly the
    #    reserve: admitted.
    # 3) 0 / 1 GiB: 97 GiB -> 95 / 192 = 49.5 % < 50 %: refused.
    decision = policy.admit(pstate(), np.array([1, 1, 0]) * GHZ, np.array([30, 24, 1]) * GIB)
    assert decision.admitted.tolist() == [False, True, False]
    assert decision.reasons[0] == (
        "would leave 46.9 % of memory unreserved, below the 50 % reserve "
        "(102 GiB of 192 GiB reserved)")
    assert "CPU" not in decision.reasons[0]
    assert decision.reasons[2].startswith("would leave 49.5 % of memory unreserved")


def test_cpu_reserve_counts_the_minimum_for_unreserved_vms() -> None:
    # CPU reserve 84 %: 60000 * (1 - 0.84) = 9600 MHz may be reserved; 9064 are.
    # 16 VMs without reservation count 16 * 32 = 512 MHz -> 9576 <= 9600, admitted; the 17th
    # makes 9608 > 9600, refused, though its reservation is 0.
    policy = PercentagePolicy(cpu_frac=0.84, mem_frac=0.0)
    decision = policy.admit(pstate(), np.zeros(17), np.zeros(17))
    assert decision.admitted.tolist() == [True] * 16 + [False]
    # (60000 - 9608) / 60000 = 83.987 %, shown with the digits that tell it from 84 %.
    assert decision.reasons[16] == (
        "would leave 83.99 % of CPU unreserved, below the 84 % reserve "
        "(9.608 GHz of 60 GHz reserved)")


def test_percentages_from_host_failures() -> None:
    equal = ClusterState(np.full(4, 10 * GHZ), np.full(4, 64 * GIB), np.ones(4, dtype=bool),
                         np.zeros(0), np.zeros(0))
    policy = PercentagePolicy.from_host_failures(1)
    # 4 equal hosts, N = 1: 1/4 of each.
    assert policy.targets(equal) == (0.25, 0.25)
    # Unequal, memory 32 + 32 + 32 + 64 = 160 GiB: the largest host holds CPU 20/60 = 1/3 and
    # memory 64/160 = 0.4.
    unequal = pstate(mem=np.array([32, 32, 32, 64]) * GIB)
    assert policy.targets(unequal) == pytest.approx((1 / 3, 0.4))
    # N = 2: CPU (20 + 20)/60 = 2/3, memory (64 + 32)/160 = 0.6.
    assert PercentagePolicy.from_host_failures(2).targets(unequal) == pytest.approx((2 / 3, 0.6))
    # Host 3 down: up CPU 10 + 10 + 20 = 40 -> 20/40 = 0.5; up memory 32 * 3 = 96 -> 32/96.
    down = pstate(up=[True, True, True, False], mem=np.array([32, 32, 32, 64]) * GIB)
    assert policy.targets(down) == pytest.approx((0.5, 1 / 3))
    assert largest_hosts_share(P_MEM, np.ones(4, dtype=bool), 4) == 1.0
    # Checked against the derived 1/3 and 0.4 on the unequal cluster (72 GiB reserved):
    # 24 GiB more -> (160 - 96) / 160 = 0.4 admitted; 25 GiB -> 63/160 < 0.4 refused.
    assert policy.admit(unequal, np.zeros(2), np.array([25, 24]) * GIB).admitted.tolist() == [
        False, True]
    assert make_admission("percentage", host_failures=1).admit(
        unequal, np.zeros(1), np.array([25 * GIB])).reasons[0].endswith(
        "below the 40 % reserve (97 GiB of 160 GiB reserved)")


# ------------------------------------------------------------------ failover hosts, none, registry

def test_failover_hosts_are_excluded_and_nothing_is_refused() -> None:
    policy = FailoverHostsPolicy(np.array([3]))
    assert policy.excluded_hosts(4).tolist() == [False, False, False, True]
    huge = np.array([1e6, 1e6]) * GHZ
    decision = policy.admit(cluster(), huge, huge)
    assert decision.admitted.tolist() == [True, True]
    assert decision.reasons == ["", ""]
    assert policy.describe(cluster(up=[True, True, True, False])) == {
        "failover_hosts": 1.0, "failover_hosts_up": 0.0}
    with pytest.raises(ValueError, match="not among"):
        policy.excluded_hosts(3)
    assert not SlotPolicy().excluded_hosts(4).any()
    assert not PercentagePolicy().excluded_hosts(4).any()


def test_none_admits_everything() -> None:
    decision = NoAdmission().admit(cluster(up=[False] * 4), np.full(3, 1e12), np.full(3, 1e15))
    assert decision.admitted.all()
    assert not NoAdmission().excluded_hosts(2).any()


def test_make_admission_builds_each_registered_policy() -> None:
    assert sorted(ADMISSION_POLICIES) == ["failover-hosts", "none", "percentage", "slots"]
    assert make_admission("slots", host_failures=2).name == "slots"
    assert make_admission("slots", host_failures=2) == SlotPolicy(host_failures=2)
    assert make_admission("percentage", cpu_frac=0.3).name == "percentage"
    assert make_admission("failover-hosts", hosts=np.array([0])).name == "failover-hosts"
    assert make_admission("none").name == "none"
    assert SlotPolicy(max_slot_cpu_hz=math.inf).max_slot_cpu_hz == math.inf


def test_make_admission_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown admission policy 'slot'") as err:
        make_admission("slot")
    for known in ("failover-hosts", "none", "percentage", "slots"):
        assert known in str(err.value)
    with pytest.raises(ValueError, match="no parameter host_failure; it takes"):
        make_admission("slots", host_failure=1)
    with pytest.raises(ValueError, match="not both"):
        make_admission("percentage", cpu_frac=0.2, host_failures=1)
