"""Live migration inside whole runs: maintenance drains, departures mid-copy, post-copy."""

from __future__ import annotations

import pytest
from conftest import GIB, events_of, run_text

import vsim
from vsim.errors import ScenarioError

# Rack a (one host) holds three idle 1 GiB VMs; rack b (one host) has room for them. The drain
# at 60 s moves them one at a time. Each copy takes the default 50 ms setup, one round of RAM
# plus 8-byte page headers over the 1 Gbit/s NIC, the 1 MiB device state, and a 20 ms resume.
DRAIN = """
    name: drain
    duration: 10 min
    period: 1 min
    hosts:
      - {name: rack-a, cores: 4, core_speed: 1 GHz, ram: 8 GiB, network: 1 Gbit/s}
      - {name: rack-b, cores: 4, core_speed: 1 GHz, ram: 8 GiB, network: 1 Gbit/s}
    vms:
      - {name: v, count: 3, ram: 1 GiB, dirty_rate: 0 B/s}
    placement: {policy: first-fit}
    maintenance:
      - {hosts: rack-a, start: 1 min, max_concurrent: 1}
"""
STOP_COPY_S = 2**20 / 125e6
ONE_S = 0.05 + GIB * (1 + 8 / 4096) / 125e6 + STOP_COPY_S + 0.02


def test_a_drain_moves_every_vm_one_at_a_time_then_switches_the_rack_off() -> None:
    result = run_text(DRAIN)
    m = result.tables["migrations"]
    assert m["reason"].tolist() == ["maintenance"] * 3
    assert (m["from_host"] == 0).all() and (m["to_host"] == 1).all()
    assert m["duration_s"].tolist() == pytest.approx([ONE_S] * 3)
    assert m["queued_s"].tolist() == pytest.approx([0.0, ONE_S, 2 * ONE_S])
    (drain,) = result.summary["maintenance"]
    assert drain["vms"] == 3 and drain["migrations"] == 3 and drain["unplaced"] == 0
    assert drain["drained_s"] == pytest.approx(3 * ONE_S)
    assert drain["worst_downtime_s"] == pytest.approx(STOP_COPY_S + 0.02)
    # RAM over the NIC, one at a time, no setup, headers, device state or resume.
    assert drain["predicted_ram_over_bandwidth_s"] == pytest.approx(3 * GIB / 125e6)
    assert events_of(result, "host_off") == [(pytest.approx(60 + 3 * ONE_S), "rack-a", "maintenance")]
    hosts = result.tables["hosts"]
    last = hosts[hosts["time_s"] == hosts["time_s"].max()].set_index("host")
    assert last.loc[0, "vms"] == 0 and last.loc[1, "vms"] == 3


def test_drained_hosts_take_no_new_vms_and_come_back_after_the_window() -> None:
    text = DRAIN.replace("max_concurrent: 1}", "max_concurrent: 3, until: 5 min}")
    result = run_text(text)
    assert [e[1] for e in events_of(result, "host_power_on")] == ["rack-a"]
    assert events_of(result, "host_power_on")[0][0] == pytest.approx(300.0)
    # Three at a time over one NIC: each gets a third, so all end together.
    m = result.tables["migrations"]
    assert m["queued_s"].tolist() == [0.0, 0.0, 0.0]
    ends = (m["time_s"] + m["duration_s"]).to_numpy()
    assert ends == pytest.approx([ends[0]] * 3)


def test_a_vm_that_departs_mid_copy_abandons_its_migration() -> None:
    text = DRAIN.replace("{name: v, count: 3, ram: 1 GiB, dirty_rate: 0 B/s}",
                         "{name: v, count: 1, ram: 1 GiB, dirty_rate: 0 B/s, lifetime: 65 s}")
    result = run_text(text)
    (row,) = result.tables["migrations"].itertuples()
    assert row.outcome == "abandoned" and row.duration_s == pytest.approx(5.0)
    assert result.summary["migrations"] == 0
    (drain,) = result.summary["maintenance"]
    assert drain["drained_s"] == pytest.approx(5.0)  # nothing is left on the rack once it has gone


def test_in_post_copy_the_vm_runs_on_the_destination_slowed_by_page_faults() -> None:
    # One vCPU busy at 100 % of 1 GHz. Post-copy resumes it on rack-b after 50 ms setup, 1 MiB
    # of device state and 20 ms; the 1 GiB of pages then take 8.6 s, during which remote page
    # faults cost it half its CPU (postcopy_slowdown 0.5).
    text = DRAIN.replace("{name: v, count: 3, ram: 1 GiB, dirty_rate: 0 B/s}",
                         "{name: v, count: 1, ram: 1 GiB, workload: busy}").replace(
        "period: 1 min", "period: 1 s").replace(
        "    placement:", "    workloads: {busy: {kind: constant, level: 100%}}\n"
        "    migration: {model: postcopy}\n    placement:")
    result = run_text(text)
    hosts = result.tables["hosts"]
    during = hosts[(hosts["time_s"] >= 61) & (hosts["time_s"] < 68)]
    assert during[during["host"] == 1]["cpu_alloc_hz"].tolist() == pytest.approx([0.5e9] * 7)
    assert during[during["host"] == 0]["cpu_alloc_hz"].tolist() == pytest.approx([0.0] * 7)
    (row,) = result.tables["migrations"].itertuples()
    assert row.postcopy and row.rounds == 0
    assert row.downtime_s == pytest.approx(STOP_COPY_S + 0.02)


def test_auto_converge_throttles_the_vcpus_of_a_vm_that_dirties_too_fast() -> None:
    text = DRAIN.replace("{name: v, count: 3, ram: 1 GiB, dirty_rate: 0 B/s}",
                         "{name: v, count: 1, ram: 4 GiB, workload: busy, dirty_rate: 400 MiB/s}").replace(
        "    placement:", "    workloads: {busy: {kind: constant, level: 100%}}\n"
        "    migration: {on_no_convergence: auto-converge}\n    placement:")
    result = run_text(text)
    (row,) = result.tables["migrations"].itertuples()
    assert row.outcome == "completed" and row.throttle_frac >= 0.2
    vms = result.tables["vms"]
    migrating = vms[vms["time_s"] == 60.0]
    # Throttled, the VM gets less than it asks for while it migrates.
    assert (migrating["cpu_alloc_hz"] < migrating["cpu_demand_hz"]).all()


def test_an_unknown_host_group_in_a_drain_is_named_with_a_suggestion() -> None:
    with pytest.raises(ScenarioError) as err:
        vsim.run(vsim.parse_scenario(DRAIN.replace("hosts: rack-a,", "hosts: rack-x,")))
    text = str(err.value)
    assert "maintenance.0.hosts" in text and "rack-x" in text and "did you mean" in text


def test_with_ram_over_bandwidth_a_drain_takes_what_the_peers_predict() -> None:
    # The peers' model (RAM / NIC, nothing shared, no fixed costs) simulated, and the same
    # estimate computed by list scheduling: they agree. Pre-copy takes longer than either.
    text = DRAIN.replace("max_concurrent: 1}", "max_concurrent: 2}")
    naive = run_text(text.replace("    placement:", "    migration: {model: ram-over-bandwidth}\n"
                                  "    placement:"))
    (drain,) = naive.summary["maintenance"]
    # Two at a time at the full NIC each (nothing shared): 1 GiB / 125e6, then the third.
    assert drain["drained_s"] == pytest.approx(2 * GIB / 125e6)
    assert drain["drained_s"] == pytest.approx(drain["predicted_ram_over_bandwidth_s"])
    # Pre-copy: the first two share the NIC (each round 0 and stop-and-copy take twice as long),
    # then the third runs alone.
    round_0 = GIB * (1 + 8 / 4096) / 125e6
    (real,) = run_text(text).summary["maintenance"]
    assert real["drained_s"] == pytest.approx(0.05 + 2 * round_0 + 2 * STOP_COPY_S + 0.02 + ONE_S)


def test_vm_traffic_that_follows_its_cpu_demand_leaves_the_rest_to_the_migration() -> None:
    # Both VMs start on rack-a (first fit). 'chatty' sends up to 100 MB/s each way at 100 % CPU
    # and runs at 40 %, so it uses 40 MB/s of the 125 MB/s NIC. The drain moves 'quiet' first;
    # chatty's 40 MB/s is below the fair share (62.5 MB/s), so the copy gets the other 85 MB/s.
    text = DRAIN.replace(
        "      - {name: v, count: 3, ram: 1 GiB, dirty_rate: 0 B/s}",
        "      - {name: quiet, count: 1, ram: 1 GiB, dirty_rate: 0 B/s}\n"
        "      - {name: chatty, count: 1, ram: 1 GiB, dirty_rate: 0 B/s, workload: forty,\n"
        "         network: 100 MB/s, network_follows_cpu: true}").replace(
        "    placement:", "    workloads: {forty: {kind: constant, level: 40%}}\n    placement:")
    m = run_text(text).tables["migrations"]
    first = m.iloc[0]
    assert first["vm"] == 0  # quiet goes first, one at a time
    round_0 = GIB * (1 + 8 / 4096) / 85e6
    assert first["duration_s"] == pytest.approx(0.05 + round_0 + 2**20 / 85e6 + 0.02)


@pytest.mark.parametrize("check", ["continuous", "round-end"])
def test_the_switch_over_test_of_qemu_or_of_xen_is_a_scenario_setting(check: str) -> None:
    # One 1 GiB VM dirtying 8 MiB/s whatever its CPU: round 0 sends its RAM with page headers,
    # round 1 what it dirtied meanwhile, more than the 300 ms the 1 Gbit/s NIC can send in the
    # pause (37.5 MB), so the test decides inside or after round 1.
    text = DRAIN.replace("count: 3, ram: 1 GiB, dirty_rate: 0 B/s",
                         "count: 1, ram: 1 GiB, dirty_rate: 8 MiB/s").replace(
        "    placement:", f"    migration: {{dirty_follows_cpu: false, switchover_check: {check}}}"
                         "\n    placement:")
    (row,) = run_text(text).tables["migrations"].itertuples()
    wire, rate, dirty = 1 + 8 / 4096, 125e6, 8 * 2**20
    round0_s = GIB * wire / rate
    round1 = dirty * round0_s * wire
    assert round1 > rate * 0.3
    if check == "continuous":
        # QEMU: the VM pauses the moment what is left plus what was dirtied fits in 300 ms.
        expected = 0.3 + STOP_COPY_S + 0.02
    else:
        # Xen: round 1 is sent in full; what it left dirty then fits.
        expected = dirty * (round1 / rate) * wire / rate + STOP_COPY_S + 0.02
    assert row.rounds == 2 and row.outcome == "completed"
    assert row.downtime_s == pytest.approx(expected, rel=1e-6)
