"""Initial placement policies on small hand-built datacenters, and power-on of off hosts in runs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import GIB, MHZ, datacenter, events_of, run_text, scenario_from
from hypothesis import given, settings
from hypothesis import strategies as st

from vsim.model.datacenter import HostState
from vsim.policies import PLACEMENT_POLICIES, make_placement
from vsim.scenario import build

# The policies whose only limits are the standard filters; pabfd adds a nominal-CPU filter of its
# own (tested below), so the overcommit tests leave it out.
POLICIES = [p for p in PLACEMENT_POLICIES if p != "pabfd"]


def place(dc, policy: str, vms=None, candidates=None, seed: int = 0, **overcommit) -> list[int]:
    """The host chosen for each VM (all VMs in id order unless ``vms`` is given)."""
    view = dc.view()
    n_hosts, n_vms = view.host_cores.shape[0], view.vm_vcpus.shape[0]
    vms = np.arange(n_vms) if vms is None else np.asarray(vms)
    candidates = np.ones(n_hosts, dtype=bool) if candidates is None else np.asarray(candidates)
    policy_fn = make_placement(policy, np.random.default_rng(seed), **overcommit)
    return policy_fn(view, vms, candidates).tolist()


def test_the_policies_are_registered() -> None:
    assert set(PLACEMENT_POLICIES) == {"first-fit", "best-fit", "worst-fit",
                                       "first-fit-decreasing", "random", "pabfd"}
    with pytest.raises(KeyError):
        make_placement("next-fit", np.random.default_rng(0))


# Hosts: h0 4 cores 16 GiB, h1 8 cores 32 GiB, h2 2 cores 8 GiB. VMs (vCPUs, RAM):
# A (2, 4 GiB), B (1, 12 GiB), C (4, 4 GiB), D (2, 2 GiB).
THREE_HOSTS = """
    name: place
    duration: 1 h
    hosts:
      - {name: h0, cores: 4, core_speed: 1 GHz, ram: 16 GiB}
      - {name: h1, cores: 8, core_speed: 1 GHz, ram: 32 GiB}
      - {name: h2, cores: 2, core_speed: 1 GHz, ram: 8 GiB}
    vms:
      - {name: A, count: 1, vcpus: 2, ram: 4 GiB}
      - {name: B, count: 1, vcpus: 1, ram: 12 GiB}
      - {name: C, count: 1, vcpus: 4, ram: 4 GiB}
      - {name: D, count: 1, vcpus: 2, ram: 2 GiB}
"""


def test_first_fit() -> None:
    # A -> h0 (2/4 cores, 4/16 GiB). B -> h0 (3/4, 16/16). C: h0 has 1 core left -> h1 (4/8).
    # D: h0 has 1 core left -> h1 (6/8).
    assert place(datacenter(THREE_HOSTS), "first-fit") == [0, 0, 1, 1]


def test_best_fit() -> None:
    # Score: the fuller of (vCPUs / cores, RAM / RAM) after placing; the highest wins.
    # A: h0 max(2/4, 4/16) = .5, h1 max(2/8, 4/32) = .25, h2 max(2/2, 4/8) = 1 -> h2.
    # B: h0 max(1/4, 12/16) = .75, h1 max(1/8, 12/32) = .375, h2 has no core left -> h0.
    # C: h0 would need 5 of 4 cores; h1 max(4/8, 4/32) = .5 -> h1.
    # D: h0 max(3/4, 14/16) = .875, h1 max(6/8, 6/32) = .75 -> h0.
    assert place(datacenter(THREE_HOSTS), "best-fit") == [2, 0, 1, 0]


def test_worst_fit() -> None:
    # The lowest score wins.
    # A: h1 (.25). B: h0 .75, h1 max(3/8, 16/32) = .5, h2 lacks RAM (4 + 12 > 8) -> h1.
    # C: h0 max(4/4, 4/16) = 1, h1 max(7/8, 20/32) = .875, h2 has 2 cores < 4 -> h1.
    # D: h0 max(2/4, 2/16) = .5, h1 would need 9 of 8 cores, h2 max(2/2, 2/8) = 1 -> h0.
    assert place(datacenter(THREE_HOSTS), "worst-fit") == [1, 1, 1, 0]


def test_first_fit_decreasing() -> None:
    # Largest first by vCPUs, then RAM: C (4), A (2, 4 GiB), D (2, 2 GiB), B (1). First fit:
    # C -> h0 (4/4), A -> h1 (2/8), D -> h1 (4/8), B -> h1 (5/8, 18/32 GiB).
    # Answers come back in the order the VMs were given: A, B, C, D.
    assert place(datacenter(THREE_HOSTS), "first-fit-decreasing") == [1, 1, 0, 1]


IDENTICAL = """
    name: ties
    duration: 1 h
    hosts: [{name: h, count: 3, cores: 4, core_speed: 1 GHz, ram: 16 GiB}]
    vms: [{name: v, count: 6, vcpus: 1, ram: 1 GiB}]
"""


@pytest.mark.parametrize(("policy", "expected"), [
    # Ties go to the lowest host id. Best fit then keeps filling the host it started (fullest),
    # worst fit moves on to the emptiest, which cycles through identical hosts.
    ("first-fit", [0, 0, 0, 0, 1, 1]),
    ("best-fit", [0, 0, 0, 0, 1, 1]),
    ("worst-fit", [0, 1, 2, 0, 1, 2]),
    ("first-fit-decreasing", [0, 0, 0, 0, 1, 1]),
])
def test_ties_on_identical_hosts(policy: str, expected: list[int]) -> None:
    assert place(datacenter(IDENTICAL), policy) == expected


def test_random_is_seeded_and_only_picks_hosts_that_fit() -> None:
    text = """
        name: rnd
        duration: 1 h
        hosts:
          - {name: small, cores: 2, core_speed: 1 GHz, ram: 64 GiB}
          - {name: big, count: 3, cores: 64, core_speed: 1 GHz, ram: 64 GiB}
        vms:
          - {name: v, count: 60, vcpus: 1, ram: 1 GiB}
    """
    dc = datacenter(text)
    candidates = [True, True, False, True]  # host 2 is not offered
    first = place(dc, "random", candidates=candidates, seed=7)
    assert first == place(dc, "random", candidates=candidates, seed=7)
    assert first != place(dc, "random", candidates=candidates, seed=8)
    counts = np.bincount(first, minlength=4)
    assert counts[2] == 0  # never a host that is not a candidate
    assert counts[0] <= 2  # never beyond the small host's 2 cores
    assert counts.sum() == 60 and counts[1] > 0 and counts[3] > 0


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(("ratio", "placed"), [(1.0, 4), (1.5, 6), (2.0, 8), (3.0, 10)])
def test_cpu_overcommit_limits_vcpus_per_core(policy: str, ratio: float, placed: int) -> None:
    # One 4-core host, ten 1-vCPU VMs: at most floor(4 * ratio) of them, the rest get -1.
    text = """
        name: oc
        duration: 1 h
        hosts: [{name: h, cores: 4, core_speed: 1 GHz, ram: 64 GiB}]
        vms: [{name: v, count: 10, vcpus: 1, ram: 1 GiB}]
    """
    chosen = place(datacenter(text), policy, cpu_overcommit=ratio)
    assert chosen == [0] * placed + [-1] * (10 - placed)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(("ratio", "placed"), [(1.0, 4), (1.5, 6), (2.0, 8)])
def test_ram_overcommit_limits_memory(policy: str, ratio: float, placed: int) -> None:
    # 16 GiB host, 4 GiB VMs: floor(16 * ratio / 4) fit; vCPUs are not the limit (overcommit 10).
    text = """
        name: oc
        duration: 1 h
        hosts: [{name: h, cores: 4, core_speed: 1 GHz, ram: 16 GiB}]
        vms: [{name: v, count: 10, vcpus: 1, ram: 4 GiB}]
    """
    chosen = place(datacenter(text), policy, cpu_overcommit=10.0, ram_overcommit=ratio)
    assert chosen == [0] * placed + [-1] * (10 - placed)


@pytest.mark.parametrize("policy", POLICIES)
def test_a_vm_never_has_more_vcpus_than_the_host_has_cores(policy: str) -> None:
    # With 4:1 overcommit the 2-core host could hold 8 vCPUs, but a 4-vCPU VM needs 4 cores.
    text = """
        name: cores
        duration: 1 h
        hosts:
          - {name: two, cores: 2, core_speed: 1 GHz, ram: 64 GiB}
          - {name: four, cores: 4, core_speed: 1 GHz, ram: 64 GiB}
        vms: [{name: v, count: 3, vcpus: 4, ram: 1 GiB}]
    """
    # four holds 4 * 4 = 16 vCPUs: all three go there.
    assert place(datacenter(text), policy, cpu_overcommit=4.0) == [1, 1, 1]


@pytest.mark.parametrize("policy", POLICIES)
def test_reservations_never_exceed_capacity(policy: str) -> None:
    # Hosts of 2 GHz and 3 GHz; VMs reserving 800 MHz: 2 fit on the first (1.6 GHz), 3 on the
    # second (2.4 GHz); the sixth fits nowhere although vCPUs and RAM would allow it.
    text = """
        name: res
        duration: 1 h
        hosts:
          - {name: a, cores: 2, core_speed: 1 GHz, ram: 64 GiB}
          - {name: b, cores: 3, core_speed: 1 GHz, ram: 64 GiB}
        vms: [{name: v, count: 6, vcpus: 1, ram: 1 GiB, reservation: 800 MHz}]
    """
    dc = datacenter(text)
    chosen = np.array(place(dc, policy, cpu_overcommit=8.0))
    assert np.count_nonzero(chosen == 0) == 2
    assert np.count_nonzero(chosen == 1) == 3
    assert np.count_nonzero(chosen == -1) == 1
    reserved = np.bincount(chosen[chosen >= 0], minlength=2) * 800 * MHZ
    assert np.all(reserved <= dc.hosts.capacity_hz)


@pytest.mark.parametrize("policy", POLICIES)
def test_a_vm_that_fits_nowhere_gets_minus_one(policy: str) -> None:
    # The 12 GiB VM fits the empty host but not once the first VM took 8 of its 16 GiB.
    text = """
        name: none
        duration: 1 h
        hosts: [{name: h, cores: 8, core_speed: 1 GHz, ram: 16 GiB}]
        vms:
          - {name: a, count: 1, ram: 8 GiB}
          - {name: b, count: 1, ram: 12 GiB}
          - {name: c, count: 1, ram: 8 GiB}
    """
    if policy == "first-fit-decreasing":
        # Largest first: b (12 GiB) takes the host, and then neither 8 GiB VM fits.
        assert place(datacenter(text), policy) == [-1, 0, -1]
    else:
        assert place(datacenter(text), policy) == [0, -1, 0]


@pytest.mark.parametrize("policy", POLICIES)
def test_only_candidate_hosts(policy: str) -> None:
    text = """
        name: cand
        duration: 1 h
        hosts: [{name: h, count: 3, cores: 8, core_speed: 1 GHz, ram: 16 GiB}]
        vms: [{name: v, count: 4, ram: 1 GiB}]
    """
    assert place(datacenter(text), policy, candidates=[False, True, False]) == [1, 1, 1, 1]
    assert place(datacenter(text), policy, candidates=[False, False, False]) == [-1] * 4


def test_policies_count_existing_commitments_and_do_not_mutate_the_datacenter() -> None:
    text = """
        name: commit
        duration: 1 h
        hosts: [{name: h, count: 2, cores: 4, core_speed: 1 GHz, ram: 16 GiB}]
        vms: [{name: v, count: 6, vcpus: 2, ram: 1 GiB}]
    """
    dc = datacenter(text)
    dc.place(np.array([0, 1]), np.array([0, 0]), now=0.0)  # host 0 already holds 4 of 4 vCPUs
    before = dc.hosts.vcpus_used.copy()
    assert place(dc, "first-fit", vms=[2, 3, 4]) == [1, 1, -1]
    assert np.array_equal(dc.hosts.vcpus_used, before)
    assert dc.vms.host.tolist() == [0, 0, -1, -1, -1, -1]
    with pytest.raises(ValueError):
        dc.view().host_vcpus_used[0] = 0.0  # the view is read-only


# --- the vectorised first-fit path against a plain reference --------------------------------------


def reference_first_fit(dc, vms, candidates, cpu_oc: float, ram_oc: float) -> list[int]:
    """First fit, one VM at a time, every host in order, with the standard filters."""
    h, v = dc.hosts, dc.vms
    vcpus, ram, res = h.vcpus_used.copy(), h.ram_used.copy(), h.reservation_used_hz.copy()
    out = []
    for vm in vms:
        for host in range(len(h)):
            if (candidates[host] and h.cores[host] >= v.vcpus[vm]
                    and vcpus[host] + v.vcpus[vm] <= h.cores[host] * cpu_oc
                    and ram[host] + v.ram_bytes[vm] <= h.ram_bytes[host] * ram_oc
                    and res[host] + v.reservation_hz[vm] <= h.capacity_hz[host]):
                vcpus[host] += v.vcpus[vm]
                ram[host] += v.ram_bytes[vm]
                res[host] += v.reservation_hz[vm]
                out.append(host)
                break
        else:
            out.append(-1)
    return out


VM_KINDS = [  # (vCPUs, GiB, reserved MHz): values that add up exactly in floating point
    (1, 1, 0), (1, 2, 0), (2, 4, 0), (2, 2, 500), (4, 8, 0), (4, 16, 1000), (8, 8, 0),
]


@st.composite
def batches(draw):
    hosts = draw(st.lists(
        st.tuples(st.sampled_from([2, 4, 8, 16]), st.sampled_from([8, 16, 32, 64]),
                  st.booleans()),
        min_size=1, max_size=12))
    # Runs of identical VMs, some long enough (>= 8) for the vectorised path.
    runs = draw(st.lists(
        st.tuples(st.integers(0, len(VM_KINDS) - 1), st.integers(1, 30)), min_size=1, max_size=6))
    cpu_oc = draw(st.sampled_from([1.0, 1.5, 2.0, 4.0]))
    ram_oc = draw(st.sampled_from([1.0, 1.5]))
    preplaced = draw(st.integers(0, 10))
    spare_offered = draw(st.booleans())
    return hosts, runs, cpu_oc, ram_oc, preplaced, spare_offered


@settings(max_examples=60, deadline=None)
@given(batches())
def test_vectorised_first_fit_equals_one_at_a_time(case) -> None:
    hosts, runs, cpu_oc, ram_oc, preplaced, spare_offered = case
    data = {
        "name": "ff", "duration": "1 h",
        "hosts": [{"name": f"h{i}", "cores": c, "core_speed": "1 GHz", "ram": f"{g} GiB"}
                  for i, (c, g, _) in enumerate(hosts)],
        "vms": [{"name": f"g{j}", "count": n, "vcpus": VM_KINDS[k][0],
                 "ram": f"{VM_KINDS[k][1]} GiB", "reservation": f"{VM_KINDS[k][2]} MHz"}
                for j, (k, n) in enumerate(runs)],
        "placement": {"cpu_overcommit": cpu_oc, "ram_overcommit": ram_oc},
    }
    # A spare host every VM fits (the scenario refuses VMs larger than every host); when it is
    # not offered, some VMs may fit nowhere and both answers must say -1.
    data["hosts"].append({"name": "spare", "cores": 16, "core_speed": "1 GHz", "ram": "64 GiB"})
    dc = build(scenario_from(data)).dc
    n_hosts = len(dc.hosts)
    candidates = np.array([offered for _, _, offered in hosts] + [spare_offered])
    vms = np.arange(len(dc.vms))
    # Some VMs are already placed (by the reference), so hosts start partly committed.
    first = vms[:preplaced]
    where = np.array(reference_first_fit(dc, first, np.ones(n_hosts, bool), cpu_oc, ram_oc),
                     dtype=np.int64)
    dc.place(first[where >= 0], where[where >= 0], now=0.0)
    rest = vms[preplaced:]
    expected = reference_first_fit(dc, rest, candidates, cpu_oc, ram_oc)
    got = place(dc, "first-fit", vms=rest, candidates=candidates,
                cpu_overcommit=cpu_oc, ram_overcommit=ram_oc)
    assert got == expected
    # First fit decreasing is the same first fit over the VMs sorted largest first (vCPUs, then
    # RAM; stable), answered in the order the VMs were given.
    v = dc.vms
    order = sorted(range(len(rest)), key=lambda i: (-v.vcpus[rest[i]], -v.ram_bytes[rest[i]]))
    sorted_answer = reference_first_fit(dc, rest[order], candidates, cpu_oc, ram_oc)
    expected_ffd = [-1] * len(rest)
    for i, host in zip(order, sorted_answer, strict=True):
        expected_ffd[i] = host
    got_ffd = place(dc, "first-fit-decreasing", vms=rest, candidates=candidates,
                    cpu_overcommit=cpu_oc, ram_overcommit=ram_oc)
    assert got_ffd == expected_ffd


def test_vectorised_first_fit_fills_hosts_in_order() -> None:
    # 20 identical 1-vCPU VMs (one run, vectorised) on hosts of 2, 4 and 8 cores, host 1 not a
    # candidate: 2 on host 0, 8 on host 2, and the last 10 fit nowhere.
    text = """
        name: run
        duration: 1 h
        hosts:
          - {name: a, cores: 2, core_speed: 1 GHz, ram: 64 GiB}
          - {name: b, cores: 4, core_speed: 1 GHz, ram: 64 GiB}
          - {name: c, cores: 8, core_speed: 1 GHz, ram: 64 GiB}
        vms: [{name: v, count: 20, vcpus: 1, ram: 1 GiB}]
    """
    got = place(datacenter(text), "first-fit", candidates=[True, False, True])
    assert got == [0] * 2 + [2] * 8 + [-1] * 10


# --- powered-off hosts in a run ----------------------------------------------------------------

OFF_HOSTS = """
    name: power-on
    duration: 1 h
    period: 10 min
    hosts:
      - {{name: off0, cores: 4, core_speed: 1 GHz, ram: 16 GiB, initially: off, boot_time: 5 min}}
      - {{name: on1, cores: 2, core_speed: 1 GHz, ram: 16 GiB}}
      - {{name: off2, cores: 4, core_speed: 1 GHz, ram: 16 GiB, initially: off, boot_time: 5 min}}
    vms:
      - {{name: v, count: {count}, vcpus: 1, ram: 1 GiB}}
    placement: {{policy: {policy}}}
"""


@pytest.mark.parametrize("policy", POLICIES)
def test_hosts_that_are_on_are_used_first(policy: str) -> None:
    # Two 1-vCPU VMs fit the 2-core host that is on: no host is switched on.
    result = run_text(OFF_HOSTS.format(count=2, policy=policy))
    assert events_of(result, "host_power_on") == []
    assert [(t, host) for t, _, host in events_of(result, "vm_start")] == [(0.0, "on1")] * 2


def test_an_off_host_is_switched_on_only_for_what_does_not_fit() -> None:
    # Four VMs: two fit on1; the other two go to the first off host (first fit), which boots
    # for 5 minutes before they start. off2 stays off.
    result = run_text(OFF_HOSTS.format(count=4, policy="first-fit"))
    assert events_of(result, "host_power_on") == [(0.0, "off0", "capacity needed")]
    assert events_of(result, "vm_place") == [(0.0, "v-2", "off0"), (0.0, "v-3", "off0")]
    assert events_of(result, "host_on") == [(300.0, "off0", "")]
    assert events_of(result, "vm_start") == [
        (0.0, "v-0", "on1"), (0.0, "v-1", "on1"), (300.0, "v-2", "off0"), (300.0, "v-3", "off0"),
    ]
    info = result.tables["vm_info"]
    assert info["start_s"].tolist() == [0.0, 0.0, 300.0, 300.0]
    hosts = result.tables["hosts"]
    first_period = hosts[hosts["time_s"] == 0.0].sort_values("host")
    # Period [0, 10 min): off0 booting 5 min then on 5 min; on1 on; off2 off.
    assert first_period["on_frac"].tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_no_power_on_when_not_allowed() -> None:
    text = OFF_HOSTS.format(count=4, policy="first-fit") + \
        "    power_management: {power_on_when_needed: false}\n"
    result = run_text(text)
    assert events_of(result, "host_power_on") == []
    assert [s for _, s, _ in events_of(result, "vm_queued")] == ["v-2", "v-3"]
    assert result.summary["vms_unplaced"] == 2


def test_booting_host_takes_more_vms_without_a_second_power_on() -> None:
    # Arrivals at 0 and 1 min: the second wave fits on the host already booting.
    text = """
        name: boot
        duration: 1 h
        hosts:
          - {name: h, cores: 4, core_speed: 1 GHz, ram: 16 GiB, initially: off, boot_time: 5 min}
          - {name: g, cores: 4, core_speed: 1 GHz, ram: 16 GiB, initially: off, boot_time: 5 min}
        vms:
          - {name: v, count: 4, vcpus: 1, ram: 1 GiB, workload: w}
        workloads:
          w: {kind: synthetic, arrivals: {mean_interarrival: 1 min}}
    """
    result = run_text(text, seed=3)
    power_on = events_of(result, "host_power_on")
    assert [h for _, h, _ in power_on] == ["h"]
    info = result.tables["vm_info"]
    first_arrival = info["arrival_s"].min()
    assert power_on[0][0] == first_arrival
    up = first_arrival + 5 * 60
    assert events_of(result, "host_on") == [(up, "h", "")]
    # Nothing starts before the host is up; a VM arriving later would start on arrival.
    assert info["start_s"].tolist() == [max(up, a) for a in info["arrival_s"]]
    assert {host for _, _, host in events_of(result, "vm_start")} == {"h"}


def test_hosts_start_in_their_initial_state() -> None:
    dc = datacenter(OFF_HOSTS.format(count=1, policy="first-fit"))
    assert dc.hosts.state.tolist() == [HostState.OFF, HostState.ON, HostState.OFF]
    assert dc.hosts.ram_bytes.tolist() == [16 * GIB] * 3


PRIORITY = """
    name: prio
    duration: 1 h
    hosts: [{{name: h, cores: 4, core_speed: 1 GHz, ram: 16 GiB}}]
    vms:
      - {{name: big, count: 1, vcpus: 4, ram: 1 GiB, priority: 0}}
      - {{name: small, count: 1, vcpus: 2, ram: 1 GiB, priority: 10}}
    placement: {{policy: {policy}}}
"""


@pytest.mark.parametrize("policy", POLICIES)
def test_queued_vms_are_placed_highest_priority_first(policy: str) -> None:
    # Both arrive at 0; only one fits the 4-core host. 'small' has the higher priority, so it
    # is placed and 'big' waits (the schema: queued VMs are placed in priority order).
    result = run_text(PRIORITY.format(policy=policy))
    assert events_of(result, "vm_start") == [(0.0, "small", "h")]
    assert [vm for _, vm, _ in events_of(result, "vm_queued")] == ["big"]


# PABFD: one G4 (2 x 1860 MIPS) and one G5 (2 x 2660 MIPS) host, both empty, and a 1000 MIPS VM.
PABFD = """
    name: pabfd
    duration: 1 h
    hosts:
      - {name: g4, cores: 2, core_speed: 1860 MIPS, ram: 4096 MB, power: {spec: hp-proliant-ml110-g4}}
      - {name: g5, cores: 2, core_speed: 2660 MIPS, ram: 4096 MB, power: {spec: hp-proliant-ml110-g5}}
    vms:
      - {name: v, count: 1, vcpus: 1, vcpu_speed: 1000 MIPS, ram: 512 MB}
    placement: {policy: pabfd}
"""


def test_pabfd_picks_the_host_whose_power_grows_least() -> None:
    # G4 after: 1000 / 3720 = 0.2688 -> 92.6 + (96 - 92.6) * (2.688 - 2) = 94.94 W, +8.94 W on 86 W.
    # G5 after: 1000 / 5320 = 0.1880 -> 97 + (101 - 97) * (1.880 - 1) = 100.52 W, +6.82 W on 93.7 W.
    g4 = 92.6 + (96 - 92.6) * (1000 / 3720 * 10 - 2) - 86.0
    g5 = 97.0 + (101 - 97) * (1000 / 5320 * 10 - 1) - 93.7
    assert g5 < g4
    assert place(datacenter(PABFD), "pabfd") == [1]


def test_pabfd_never_overbooks_nominal_cpu() -> None:
    # Three 2500 MIPS VMs on one G5 host (5320 MIPS): two fit (5000), the third does not.
    text = PABFD.replace("count: 1, vcpus: 1, vcpu_speed: 1000 MIPS", "count: 3, vcpus: 1, "
                         "vcpu_speed: 2500 MIPS").replace(
        "      - {name: g4, cores: 2, core_speed: 1860 MIPS, ram: 4096 MB, power: "
        "{spec: hp-proliant-ml110-g4}}\n", "")
    assert place(datacenter(text), "pabfd", cpu_overcommit=4) == [0, 0, -1]
