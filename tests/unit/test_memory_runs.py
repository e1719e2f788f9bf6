"""Memory overcommit inside datacenter runs, through ``vsim.run``.

The reclamation chain itself is held to hand-computed values in tests/reference/
test_memory_reclaim.py; these tests check what a run does with it: admission control, the
slowdown fed back into delivered CPU, the tables and summary, migrations, determinism.

Figures used below: ESXi's minFree is 6 % of the first 4 GiB of RAM, 4 % of the next 8, 2 % of
the next 16 (0.4 GiB for 8 GiB, 0.64 GiB for 16 GiB); the default overhead of a VM is 32 MiB
plus 1 % of its memory; an SSD swaps a page in 100 us plus 2 x 4 KiB (in, and a dirty victim
out) at 500 MB/s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import GIB, REPO, events_of, run_text

import vsim

MIB = 2.0**20

ADMISSION = """
name: admission
duration: 1 h
period: 10 min
hosts:
  - {name: h, cores: 8, core_speed: 2 GHz, ram: 16 GiB, memory: {preset: esxi}}
vms:
  - {name: a, count: 3, ram: 4 GiB, lifetime: 30 min, memory: {reservation: 4 GiB}}
  - {name: b, count: 1, ram: 4 GiB, memory: {reservation: 4 GiB}}
placement: {ram_overcommit: 2}
"""


def test_a_vm_whose_reservation_cannot_be_met_waits_with_the_reason_then_starts() -> None:
    res = run_text(ADMISSION)
    # Each VM reserves 4 GiB + 32 MiB + 1 % of 4 GiB; the host can reserve 16 - 0.64 GiB.
    reserved = 4 * GIB + 32 * MIB + 0.01 * 4 * GIB
    reservable = 16 * GIB - (0.06 * 4 + 0.04 * 8 + 0.02 * 4) * GIB
    assert 3 * reserved <= reservable < 4 * reserved  # so a, not b, fits at first
    refused = events_of(res, "vm_admission_refused")
    assert [(t, who) for t, who, _ in refused] == [(0.0, "b")]
    detail = refused[0][2]
    assert "4.07 GiB" in detail and "cannot be met" in detail
    assert f"{(reservable - 3 * reserved) / GIB:.3g} GiB" in detail
    # The three a's leave at 30 min; b starts then.
    starts = {who: t for t, who, _ in events_of(res, "vm_start")}
    assert starts["b"] == 1800.0
    assert res.summary["memory"]["admission_refusals"] == 1
    assert res.summary["vms_unplaced"] == 0


PRESSURE = """
name: pressure
duration: 20 min
period: 10 min
hosts:
  - name: h
    cores: 2
    core_speed: 2 GHz
    ram: 8 GiB
    memory: {{preset: esxi, page_sharing: off, compression: {compression}, swap: ssd}}
vms:
  - name: v
    count: 2
    ram: 8 GiB
    workload: busy
    memory: {{active: 50%, balloon: false}}
workloads:
  busy: {{kind: constant, level: 100%}}
placement: {{ram_overcommit: 2}}
"""


def test_a_swapping_vm_does_less_work_by_its_slowdown() -> None:
    res = run_text(PRESSURE.format(compression="false"))
    vms = res.tables["vms"]
    # Hard state: the host swaps until free memory is back at 32 % of minFree; the two equal
    # VMs keep equal halves of the rest, less than their 4 GiB active working sets.
    overhead = 32 * MIB + 0.01 * 8 * GIB
    min_free = (0.06 * 4 + 0.04 * 4) * GIB
    kept = (8 * GIB - 2 * overhead - 0.32 * min_free) / 2
    p_swapped = (4 * GIB - kept) / (4 * GIB)
    touches = 40 * MIB / 4096  # the default access rate, in pages per second
    fault = 100e-6 + 2 * 4096 / 500e6
    slowdown = 1 + touches * p_swapped * fault
    assert vms["mem_swapped_bytes"].to_numpy() == pytest.approx(8 * GIB - kept)
    assert vms["mem_slowdown"].to_numpy() == pytest.approx(slowdown, rel=1e-9)
    # One CPU-bound vCPU each on two cores: no CPU contention, only the stalls.
    assert vms["cpu_demand_hz"].to_numpy() == pytest.approx(2e9)
    assert vms["cpu_alloc_hz"].to_numpy() == pytest.approx(2e9 / slowdown, rel=1e-9)
    hosts = res.tables["hosts"]
    assert list(hosts["mem_state"].astype(str)) == ["hard", "hard"]
    assert hosts["mem_free_bytes"].to_numpy() == pytest.approx(0.32 * min_free)
    # Steady faults: each VM reads (and writes back) its faulting pages all the time.
    faults_s = touches * p_swapped / slowdown
    first, second = (vms[vms["time_s"] == t] for t in (0.0, 600.0))
    # The first period also holds the pages swapped out at the start.
    assert second["swap_in_bytes"].to_numpy() == pytest.approx(faults_s * 4096 * 600, rel=1e-9)
    assert first["swap_out_bytes"].to_numpy() == pytest.approx(
        8 * GIB - kept + faults_s * 4096 * 600, rel=1e-9)
    summary = res.summary["memory"]
    assert summary["slowdown_mean"] == pytest.approx(slowdown, rel=1e-9)
    assert summary["hosts"][0]["state_worst"] == "hard"


def test_compression_spares_swapping_and_slowdown() -> None:
    plain = run_text(PRESSURE.format(compression="false")).tables["vms"]
    zipped = run_text(PRESSURE.format(compression="true")).tables["vms"]
    assert (zipped["mem_compressed_bytes"] > 0).all()
    assert (zipped["mem_swapped_bytes"] < plain["mem_swapped_bytes"]).all()
    # A decompression (20 us) costs less than a fault (116 us): less slowdown.
    assert (zipped["mem_slowdown"] < plain["mem_slowdown"]).all()
    assert (zipped["cpu_alloc_hz"] > plain["cpu_alloc_hz"]).all()


def test_without_memory_settings_the_tables_are_as_before() -> None:
    res = run_text(ADMISSION.replace(", memory: {preset: esxi}", ""))
    assert "memory" not in res.summary
    assert not [c for c in res.tables["vms"].columns if c.startswith(("mem_", "swap_"))
                and c != "mem_bytes"]
    assert not [c for c in res.tables["hosts"].columns if c.startswith(("mem_", "swap_"))
                and c != "mem_used_bytes"]
    assert not events_of(res, "vm_admission_refused")


ACTIVE = """
name: active
duration: 2 h
period: 30 min
hosts:
  - {name: h, cores: 8, core_speed: 2 GHz, ram: 64 GiB, memory: {preset: kvm}}
vms:
  - {name: v, count: 3, ram: 4 GiB, template: gold, memory: {active: {workload: day}}}
workloads:
  day: {kind: synthetic, step: 30 min, mean: 40%, mean_spread: 0.3,
        noise: {sd: 10%, correlation: 0.5}}
"""


def test_active_memory_follows_its_workload_and_runs_are_deterministic() -> None:
    a = run_text(ACTIVE, seed=4).tables["vms"]
    b = run_text(ACTIVE, seed=4).tables["vms"]
    pd.testing.assert_frame_equal(a, b)
    active = a.pivot(index="time_s", columns="vm", values="mem_active_bytes") / (4 * GIB)
    assert active.nunique().min() > 1  # it changes every sample
    assert ((active > 0) & (active <= 1)).all().all()
    assert (active.std() > 0.01).all()
    # KVM shares zero pages, and pages between any VMs, once free memory is below 20 % of RAM:
    # 3 x 4 GiB on 64 GiB leaves far more, so nothing is shared, ballooned or swapped.
    assert (a[["mem_shared_bytes", "mem_balloon_bytes", "mem_swapped_bytes"]] == 0).all().all()
    assert (a["mem_slowdown"] == 1.0).all()


def test_memory_moves_with_a_migrating_vm() -> None:
    text = """
    name: drain
    duration: 2 h
    period: 10 min
    hosts:
      - {name: old, cores: 8, core_speed: 2 GHz, ram: 16 GiB, network: 10 Gbit/s,
         memory: {preset: esxi, page_sharing: all}}
      - {name: new, cores: 8, core_speed: 2 GHz, ram: 16 GiB, network: 10 Gbit/s,
         memory: {preset: esxi, page_sharing: all}}
    vms:
      - {name: v, count: 6, ram: 4 GiB, template: gold, workload: w}
    workloads:
      w: {kind: constant, level: 20%}
    placement: {ram_overcommit: 2}
    maintenance:
      - {hosts: [old], start: 30 min}
    """
    res = run_text(text)
    hosts = res.tables["hosts"].merge(res.tables["host_info"][["host", "name"]], on="host")
    before = hosts[hosts["time_s"] == 0.0].set_index("name")
    after = hosts[hosts["time_s"] == 6000.0].set_index("name")
    # First fit put all six on `old` (24 GiB on 16): shared, ballooned; `new` was idle.
    assert before.loc["old", "mem_shared_saved_bytes"] > 0
    assert before.loc["old", "mem_balloon_bytes"] > 0
    assert before.loc["new", "mem_balloon_bytes"] == 0
    # Drained: `old` holds nothing and is off; its pressure went with the VMs to `new`.
    assert after.loc["old", "mem_balloon_bytes"] == 0
    assert after.loc["old", "mem_shared_saved_bytes"] == 0
    assert after.loc["new", "mem_balloon_bytes"] == pytest.approx(
        before.loc["old", "mem_balloon_bytes"])
    assert res.summary["maintenance"][0]["unplaced"] == 0


def test_the_overcommit_scenario_swaps_and_slows_more_as_the_ratio_grows() -> None:
    res = vsim.run(vsim.load_scenario(REPO / "scenarios" / "memory-overcommit.yaml"))
    hosts = pd.DataFrame(res.summary["memory"]["hosts"])
    ratio = hosts["vm_ram_bytes"] / hosts["ram_bytes"]
    assert ratio.to_numpy() == pytest.approx(np.arange(1.0, 2.01, 0.125))
    swapped = hosts["swapped_mean_bytes"].to_numpy()
    assert swapped[0] == 0 and swapped[-1] > 1 * GIB
    assert (np.diff(swapped) >= -1e-6 * GIB).all()
    slowdown = hosts["slowdown_mean"].to_numpy()
    # No swapping, no slowdown; then more with every step.
    assert (slowdown[swapped == 0] == 1.0).all()
    assert (np.diff(slowdown[swapped > 0]) > 0).all()
    # The reclamation chain in order as the ratio grows: sharing only, then balloons, then swap.
    states = list(hosts["state_worst"])
    assert states[0] == "clear" and "soft" in states and states[-1] == "hard"
    assert states.index("soft") < states.index("hard")
    # Memory held never exceeds RAM: free memory stays at or above zero everywhere.
    assert (res.tables["hosts"]["mem_free_bytes"] >= 0).all()
    assert (res.tables["hosts"]["mem_deficit_bytes"] == 0).all()


@pytest.mark.parametrize("ratio", [0.8, 1.0, 1.1, 1.3, 2.0])
def test_the_validation_predicts_with_the_datacenter_model_which_matches_the_closed_form(
        ratio: float) -> None:
    from vsim.model.memory import swap_slowdown
    from vsim.validate.memory import model_slowdown

    # Random touches at 3 M pages/s, 20 us per fault: 1 + (1 - 1/ratio) x 20e-6 x 3e6.
    expected = 1 + max(0.0, 1 - 1 / ratio) * 20e-6 * 3e6
    assert model_slowdown(ratio, 3e6, 20e-6) == pytest.approx(expected, rel=1e-12)
    assert float(swap_slowdown(ratio, 1 / 3e6, 20e-6)) == pytest.approx(expected, rel=1e-12)
