"""Time-sliced hosts inside datacenter runs, through ``vsim.run`` and the command line.

Expected values come from the time-slicing model's reference cases (tests/reference/
test_timeslice.py): n CPU-bound 1-vCPU VMs on one core each get 1/n of it and are ready
(n - 1)/n of the time.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import GHZ, REPO, run_text, vsim_cli

ONE_CORE = """
name: sliced
seed: 3
duration: 20 min
period: 10 min
hosts:
  - name: sliced
    cores: 1
    core_speed: 1 GHz
    ram: 64 GiB
    hypervisor: {{scheduler: timeslice, preset: ideal, policy: {policy}, window: 20 s}}
  - name: fluid
    cores: 1
    core_speed: 1 GHz
    ram: 64 GiB
vms:
  - {{name: a, count: {n}, vcpus: 1, ram: 1 GiB, workload: busy, hosts: sliced}}
  - {{name: b, count: {n}, vcpus: 1, ram: 1 GiB, workload: busy, hosts: fluid}}
workloads:
  busy: {{kind: constant, level: 100%}}
placement: {{cpu_overcommit: 8}}
"""


@pytest.mark.parametrize("policy", ["credit", "fair"])
@pytest.mark.parametrize("n", [2, 3])
def test_cpu_bound_vms_share_a_sliced_core_like_the_fluid_one(policy: str, n: int) -> None:
    res = run_text(ONE_CORE.format(policy=policy, n=n))
    vms = res.tables["vms"].merge(res.tables["vm_info"][["vm", "group"]], on="vm")
    for group in ("a", "b"):  # a: time-sliced host; b: the fluid one
        mine = vms[vms["group"] == group]
        assert mine["host"].nunique() == 1  # the VM-host rule kept each group on its host
        assert mine["cpu_alloc_hz"].to_numpy() == pytest.approx(1 * GHZ / n, rel=0.02)
        assert mine["cpu_ready_frac"].to_numpy() == pytest.approx((n - 1) / n, abs=0.01)
    lat = res.tables["latency"]
    assert set(lat["vm"]) == set(vms.loc[vms["group"] == "a", "vm"])  # sliced vCPUs only
    assert lat["ready_frac"].to_numpy() == pytest.approx((n - 1) / n, abs=0.01)
    assert lat["run_frac"].to_numpy() == pytest.approx(1 / n, abs=0.01)
    assert (lat["steal_frac"] >= lat["ready_frac"] - 1e-6).all()
    assert (lat["costop_frac"] == 0).all()  # 1-vCPU VMs are never co-stopped
    ts = res.summary["timeslice"]
    assert ts["windows"] == 1  # constant demand: one window holds for the whole run
    assert ts["hosts"][0]["vcpus_per_core"] == pytest.approx(n)


def test_idle_vcpus_wake_and_their_latency_is_recorded() -> None:
    text = ONE_CORE.format(policy="fair", n=2).replace(
        "{name: a, count: 2, vcpus: 1, ram: 1 GiB, workload: busy, hosts: sliced}",
        "{name: a, count: 2, vcpus: 1, ram: 1 GiB, workload: busy, hosts: sliced}\n"
        "  - {name: io, count: 2, vcpus: 1, ram: 1 GiB, workload: light, cpu_burst: 0.5 ms, "
        "hosts: sliced}").replace("workloads:\n", "workloads:\n  light: {kind: constant, level: 5%}\n")
    res = run_text(text)
    lat = res.tables["latency"].merge(res.tables["vm_info"][["vm", "group"]], on="vm")
    io = lat[lat["group"] == "io"]
    # 5 % demand in 0.5 ms bursts: 0.05 / 0.5 ms = 100 wake-ups per second, over each 600 s period.
    assert io["wakeups"].to_numpy() == pytest.approx(100 * 600, rel=0.1)
    assert (io["latency_p99_s"] >= io["latency_p50_s"]).all()
    # CFS lets a waking sleeper preempt a CPU hog at once (see the reference tests).
    assert (io["latency_p99_s"] < 1e-3).all()
    busy = lat[lat["group"] == "a"]
    assert (busy["wakeups"] == 0).all()  # CPU-bound vCPUs never sleep


def test_same_seed_same_tables_and_another_seed_other_latencies() -> None:
    text = (REPO / "scenarios" / "host-consolidation-ratio.yaml").read_text(encoding="utf-8")
    text = text.replace("duration: 10 min", "duration: 2 min").replace("period: 10 min", "period: 1 min")
    text = text.replace("preset: esxi}", "preset: esxi, window: 2 s}")
    first, again, other = run_text(text, seed=1), run_text(text, seed=1), run_text(text, seed=2)
    pd.testing.assert_frame_equal(first.tables["latency"], again.tables["latency"])
    pd.testing.assert_frame_equal(first.tables["vms"], again.tables["vms"])
    assert not np.array_equal(first.tables["latency"]["latency_p99_s"].to_numpy(),
                              other.tables["latency"]["latency_p99_s"].to_numpy())


def test_shipped_ratio_scenario_ready_grows_with_vcpus_per_core(tmp_path) -> None:
    done = vsim_cli("run", "host-consolidation-ratio", "--out", "out", "--quiet", cwd=tmp_path,
                    timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    hosts = summary["timeslice"]["hosts"]
    ratio = [h["vcpus_per_core"] for h in hosts]
    assert ratio == pytest.approx([1, 2, 3, 4, 5, 6, 7, 8])  # 4r vCPUs on 4 cores
    ready = [h["ready_frac"] for h in hosts]
    assert ready[0] < 0.005  # one vCPU per core: nothing waits (no host OS in the ESXi preset)
    assert all(b > a for a, b in itertools.pairwise(ready[1:]))
    assert ready[-1] > 0.10  # past the 10 % alarm level at 8 vCPUs per core
    p99 = [h["latency_p99_s"] for h in hosts]
    assert p99[-1] > 10 * p99[1]
    costop = [h["vm_groups"][f"batch-r{i + 1}"]["costop_frac"] for i, h in enumerate(hosts)]
    assert costop[0] == 0 and costop[-1] > 0  # relaxed co-scheduling stops 2-vCPU VMs once busy
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert 'id="fig-timeslice-ready"' in page and 'id="fig-timeslice-latency"' in page
    assert "measured ready time over their time there" in page  # the histogram's caption
    latency = pd.read_parquet(tmp_path / "out" / "latency.parquet")
    # One row per vCPU per period: 4r vCPUs on host r, r = 1..8, one 10-minute period.
    assert len(latency) == sum(4 * r for r in range(1, 9))


@pytest.mark.parametrize(("tick", "slice_s"), [("4 ms", 0.004), ("1 ms", 0.003)])
def test_the_scheduler_tick_ends_cfs_slices(tick: str, slice_s: float) -> None:
    # Two busy threads on one CPU: CFS's ideal slice is 6 ms / 2 = 3 ms, but without
    # high-resolution ticks a slice ends at the first tick after it is used up: every 4 ms tick,
    # or at 3 ms with a 1 ms tick. Each vCPU is switched in once per two slices.
    text = ONE_CORE.format(policy="fair", n=2).replace("window: 20 s}", f"window: 20 s, tick: {tick}}}")
    lat = run_text(text).tables["latency"]
    expected = 600 / (2 * slice_s)  # switch-ins per 10-minute period
    assert lat["switches"].to_numpy() == pytest.approx(expected, rel=0.01)


def test_time_sliced_hosts_follow_traces_and_live_migrations() -> None:
    # A drain moves every VM of esx-0 to esx-1 by live migration (each paused for its
    # switch-over) and back after maintenance; the demand follows a synthetic trace. Each change
    # is a new window on the hosts it touches.
    res = run_text("""
        name: sliced-maintenance
        seed: 2
        duration: 20 min
        period: 5 min
        hosts:
          - {name: esx, count: 2, cores: 4, core_speed: 2.6 GHz, ram: 64 GiB,
             hypervisor: {scheduler: timeslice, preset: esxi, window: 1 s}}
        vms:
          - {name: web, count: 6, vcpus: 2, ram: 2 GiB, workload: w, cpu_burst: 1 ms}
        workloads:
          w: {kind: synthetic, mean: 40%, step: 1 min, noise: {sd: 10%}}
        placement: {policy: first-fit, cpu_overcommit: 4}
        maintenance:
          - {hosts: [esx-0], start: 5 min}
    """)
    assert res.summary["migrations"] > 0
    lat = res.tables["latency"]
    drained = lat[(lat["host"] == 0) & (lat["time_s"] >= 600)]
    assert drained.empty  # no vCPU left on the drained host once the drain is over
    late = lat[lat["time_s"] >= 600]
    assert set(late["host"]) == {1} and late["vm"].nunique() == 6
    assert res.summary["timeslice"]["windows"] > 20  # one per trace sample and migration step
    # Delivered CPU never exceeds a host's four cores.
    hosts = res.tables["hosts"]
    assert (hosts["cpu_alloc_hz"] <= 4 * 2.6 * GHZ * (1 + 1e-9)).all()
    after = hosts[hosts["time_s"] >= 600]
    assert (after.loc[after["host"] == 1, "cpu_alloc_hz"] > 0).all()
    assert (after.loc[after["host"] == 0, "cpu_alloc_hz"] == 0).all()
