"""Dynamic consolidation end to end: overload relief, underload switch-off, migrations, SLA."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, events_of, run_text, scenario

import vsim
from vsim.errors import ScenarioError

GIB = 1024.0**3

# Host a (1 core, 1 GHz) starts with two VMs at 50 % of a core each: 100 % > THR 0.8, so at the
# first tick (5 min) one leaves. MMT picks the one with less RAM ('light', 1 GiB). Host b is empty
# and on, so it is the only place to go. The VMs dirty no memory, so pre-copy takes one round.

# With vsim's default migration parameters (QEMU's): 50 ms setup; round 0 sends RAM plus an 8-byte
# header per 4 KiB page over the 1 Gbit/s NIC (below the 128 MiB/s cap); the VM pauses while its
# 1 MiB of device state goes over, then takes 20 ms to resume.
def round_0_s(ram: float) -> float:
    return ram * (1 + 8 / 4096) / 125e6


ROUND_0_S = round_0_s(GIB)
STOP_COPY_S = 2**20 / 125e6
MIGRATION_S = 0.05 + ROUND_0_S + STOP_COPY_S + 0.02
OVERLOAD = """
    name: overload
    duration: 30 min
    period: 5 min
    hosts:
      - {name: a, cores: 1, core_speed: 1 GHz, ram: 8 GiB, network: 1 Gbit/s,
         power: {idle: 100 W, max: 200 W}}
      - {name: b, cores: 1, core_speed: 1 GHz, ram: 8 GiB, network: 1 Gbit/s,
         power: {idle: 100 W, max: 200 W}}
    vms:
      - {name: heavy, vcpus: 1, ram: 2 GiB, workload: half, dirty_rate: 0 B/s}
      - {name: light, vcpus: 1, ram: 1 GiB, workload: half, dirty_rate: 0 B/s}
    workloads:
      half: {kind: constant, level: 50%}
    placement: {policy: first-fit, cpu_overcommit: 2}
    consolidation:
      interval: 5 min
      overload: {detector: thr, threshold: 0.8}
      selection: mmt
      underload: false
"""


def test_an_overloaded_host_sheds_the_vm_with_least_ram() -> None:
    result = run_text(OVERLOAD)
    m = result.tables["migrations"]
    assert len(m) == 1
    row = m.iloc[0]
    assert (row["vm"], row["from_host"], row["to_host"]) == (1, 0, 1)  # light: a -> b
    assert row["time_s"] == 5 * 60
    assert row["duration_s"] == pytest.approx(MIGRATION_S)
    assert row["downtime_s"] == pytest.approx(STOP_COPY_S + 0.02)
    assert row["rounds"] == 1 and row["bytes"] == pytest.approx(GIB * (1 + 8 / 4096) + 2**20)
    assert row["reason"] == "overload" and row["outcome"] == "completed"
    assert result.summary["migrations"] == 1
    # Before the tick both VMs share one core (0.5 GHz each: no ready); afterwards each has one.
    vms = result.tables["vms"]
    after = vms[vms["time_s"] >= 10 * 60]
    assert (after.groupby("vm")["host"].first().tolist()) == [0, 1]


def test_pdm_is_the_demand_a_migrating_vm_does_not_get() -> None:
    result = run_text(OVERLOAD)
    # While bytes flow, the copy costs 1 cycle per byte on each host: 0.125 GHz of host a's 1 GHz,
    # so the two VMs share 0.875 GHz and 'light' gets 0.4375 of its 0.5 GHz. Paused (stop-and-copy
    # and resume) it gets nothing. Both VMs demand 0.5 GHz for the whole 30 min run.
    lost = (0.5e9 - 0.875e9 / 2) * ROUND_0_S + 0.5e9 * (STOP_COPY_S + 0.02)
    expected = lost / (2 * 0.5e9 * 1800)
    assert result.summary["sla"]["pdm"] == pytest.approx(expected)
    # Host a's VMs demand exactly its 1 GHz: no overload until the copy takes 0.125 GHz of it
    # during round 0. In stop-and-copy 'light' is paused and a is no longer at full load.
    assert result.summary["sla"]["slatah"] == pytest.approx(ROUND_0_S / (2 * 1800))


# Two hosts, each with one light VM (20 % of a core): neither is overloaded, and the least used
# one can be emptied onto the other, then switched off at once (idle_off_after: 0 s).
UNDERLOAD = OVERLOAD.replace("underload: false", "underload: true").replace(
    "placement: {policy: first-fit, cpu_overcommit: 2}",
    "placement: {policy: worst-fit, cpu_overcommit: 2}\n    power_management: {idle_off_after: 0 s}",
).replace("level: 50%", "level: 20%")


def test_underload_empties_a_host_and_switches_it_off() -> None:
    result = run_text(UNDERLOAD)
    m = result.tables["migrations"]
    assert m["reason"].tolist() == ["underload"]
    source = int(m.iloc[0]["from_host"])
    round_0 = round_0_s([2 * GIB, GIB][int(m.iloc[0]["vm"])])  # heavy or light
    t_done = 5 * 60 + 0.05 + round_0 + STOP_COPY_S + 0.02
    assert events_of(result, "host_off") == [(pytest.approx(t_done), ["a", "b"][source], "idle")]
    assert result.summary["host_shutdowns"] == 1
    # Power is 100 W + 100 W x utilisation. Both hosts run at 20 % (120 W) until the copy
    # starts; the copy adds 0.125 GHz (12.5 %) on each while bytes flow; during stop-and-copy
    # the source's VM is paused (only the copy: 112.5 W); while the VM resumes the source idles
    # (100 W); then the source is off and the other host runs both VMs at 40 % (140 W).
    expected = (2 * 120.0 * (300 + 0.05) + 2 * 132.5 * round_0 + (112.5 + 132.5) * STOP_COPY_S
                + (100.0 + 120.0) * 0.02 + 140.0 * (1800 - t_done))
    assert result.summary["energy_j"] == pytest.approx(expected)


def test_without_consolidation_nothing_moves() -> None:
    text = UNDERLOAD[: UNDERLOAD.index("    consolidation:")]
    result = run_text(text)
    assert result.summary["migrations"] == 0
    assert len(result.tables["migrations"]) == 0
    assert result.summary["energy_j"] == pytest.approx(2 * 120.0 * 1800)


def test_unknown_detector_and_selection_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ScenarioError) as err:
        scenario(OVERLOAD.replace("detector: thr", "detector: thrr").replace(
            "selection: mmt", "selection: mtt"))
    text = str(err.value)
    assert "consolidation.overload" in text and "'thr'" in text
    assert "consolidation.selection" in text and "'mmt'" in text
    with pytest.raises(ScenarioError, match="no parameter threshold"):
        scenario(OVERLOAD.replace("detector: thr", "detector: lr"))


@pytest.mark.parametrize("detector", ["thr", "iqr", "mad", "lr", "lrr"])
def test_consolidation_never_overcommits_ram_nor_targets_an_overloaded_host(detector: str) -> None:
    # A slice of PlanetLab (80 hosts, 200 VMs, 6 h) with every detector: at every period no host
    # holds more VM memory than its RAM, the datacenter's invariants hold, and no migration lands
    # on a host that the detector flagged at that tick.
    loaded = vsim.load_scenario(
        REPO / "scenarios" / "planetlab" / "thr-mmt.yaml",
        overrides={"duration": "6 h", "hosts.0.count": 40, "hosts.1.count": 40,
                   **{f"vms.{i}.count": 50 for i in range(4)},
                   "consolidation.overload": {"detector": detector}},
    )
    result = vsim.run(loaded, seed=3)
    hosts = result.tables["hosts"]
    info = result.tables["host_info"].set_index("host")
    assert (hosts["mem_used_bytes"].to_numpy()
            <= info.loc[hosts["host"], "ram_bytes"].to_numpy() * (1 + 1e-12)).all()
    assert result.summary["migrations"] > 0
    m = result.tables["migrations"]
    assert (m["from_host"] != m["to_host"]).all()
    assert (m["duration_s"] > 0).all()


def test_the_planetlab_scenario_consolidates() -> None:
    # 120 VMs spread over 100 hosts, against the same run with consolidation off: fewer hosts
    # on, less energy, some migrations.
    path = REPO / "scenarios" / "planetlab" / "thr-mmt.yaml"
    small = {"duration": "4 h", "hosts.0.count": 50, "hosts.1.count": 50,
             **{f"vms.{i}.count": 30 for i in range(4)}}
    on = vsim.run(vsim.load_scenario(path, overrides=small))
    raw = vsim.load_scenario(path, overrides=small).raw
    raw.pop("consolidation")
    off = vsim.run(vsim.parse_scenario(__import__("yaml").safe_dump(raw)))
    assert on.summary["migrations"] > 0 and off.summary["migrations"] == 0
    assert on.summary["hosts_on_mean"] < off.summary["hosts_on_mean"]
    assert on.summary["energy_kwh"] < off.summary["energy_kwh"]
    assert np.isfinite(on.summary["sla"]["slav"])


@pytest.mark.parametrize("detector", ["thr", "mad", "lr"])
def test_no_decision_targets_a_flagged_host_or_overfills_ram(detector: str, monkeypatch) -> None:
    # Every decision the policy returns is checked against the view it was given: the
    # destination was not flagged by the detector at that tick, and after all the tick's moves
    # no host is committed beyond its RAM.
    from vsim.policies.consolidation import DynamicConsolidation

    original = DynamicConsolidation.__call__
    seen = {"decisions": 0}

    def checked(self, view):
        decisions = original(self, view)
        p = view.placement
        util = view.host_demand_hz / p.host_capacity_hz
        flagged = self.detector(util, view.host_history, view.host_n_valid)
        ram = p.host_ram_used.copy()
        for m in decisions:
            assert not flagged[m.dest], f"VM {m.vm} sent to flagged host {m.dest}"
            ram[m.dest] += p.vm_ram_bytes[m.vm]  # reserved on the destination while copying
        assert (ram <= p.host_ram_bytes * self.ram_overcommit * (1 + 1e-12)).all()
        seen["decisions"] += len(decisions)
        return decisions

    monkeypatch.setattr(DynamicConsolidation, "__call__", checked)
    loaded = vsim.load_scenario(
        REPO / "scenarios" / "planetlab" / "thr-mmt.yaml",
        overrides={"duration": "4 h", "hosts.0.count": 40, "hosts.1.count": 40,
                   **{f"vms.{i}.count": 30 for i in range(4)},
                   "consolidation.overload": {"detector": detector}},
    )
    vsim.run(loaded, seed=5)
    assert seen["decisions"] > 0


TILED = """
    name: tiled
    duration: 2 d
    period: 5 min
    hosts:
      - {name: h, count: 4, cores: 8, core_speed: 2660 MIPS, ram: 64 GiB}
    vms:
      - {name: v, count: 6, vcpus: 1, vcpu_speed: 1000 MIPS, ram: 1 GiB, workload: month}
    workloads:
      month: {kind: planetlab, day: all, tile_days: 2}
"""


def test_tiled_planetlab_days_replay_whole_traces_per_day() -> None:
    result = vsim.run(scenario(TILED), seed=4)
    vms = result.tables["vms"]
    # Every 5-minute demand is a trace sample: an integer percent of the VM's 1000 MIPS.
    percent = vms["cpu_demand_hz"].to_numpy() / 1e9 * 100
    assert np.allclose(percent, np.round(percent), atol=1e-9)
    # Each VM follows one whole trace per day: its day-1 and day-2 series differ (two draws
    # from 11,746 traces) and the same seed gives the same draws.
    day = vms["time_s"] // 86400
    series = vms.assign(day=day).groupby(["vm", "day"])["cpu_demand_hz"].apply(tuple)
    assert all(series[(vm, 0)] != series[(vm, 1)] for vm in range(6))
    again = vsim.run(scenario(TILED), seed=4).tables["vms"]
    assert np.array_equal(again["cpu_demand_hz"].to_numpy(), vms["cpu_demand_hz"].to_numpy())


def test_tiled_workloads_are_refused_in_cloudsim_semantics() -> None:
    with pytest.raises(ScenarioError, match="tile_days"):
        vsim.run(scenario(TILED.replace("    duration: 2 d", "    duration: 2 d\n    semantics: cloudsim")))


def test_an_overloaded_host_switches_an_off_host_on_when_nothing_else_fits() -> None:
    # Host b starts off; host a is overloaded at the first tick (5 min). 'light' can only go to
    # b, which boots for 2 min first.
    text = OVERLOAD.replace(
        "      - {name: b, cores: 1, core_speed: 1 GHz, ram: 8 GiB, network: 1 Gbit/s,",
        "      - {name: b, cores: 1, core_speed: 1 GHz, ram: 8 GiB, network: 1 Gbit/s,\n"
        "         initially: 'off', boot_time: 2 min,")
    result = run_text(text)
    assert events_of(result, "host_power_on") == [(300.0, "b", "consolidation target")]
    assert events_of(result, "host_on") == [(300.0 + 120.0, "b", "")]
    (row,) = result.tables["migrations"].itertuples()
    assert (row.vm, row.from_host, row.to_host) == (1, 0, 1)
    # The migration waits for b to boot, then runs as on a host that was on.
    assert row.queued_s == pytest.approx(120.0)
    assert row.duration_s == pytest.approx(MIGRATION_S)
