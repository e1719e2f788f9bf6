"""Finite work (CloudSim's cloudlets): completion times derived from delivered cycles."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from conftest import events_of, run_text, vsim_cli

# One host of four 1000-MIPS cores (1 MIPS = 1 MHz: one instruction per cycle) and one 4-vCPU VM.
JOBS = """
    name: jobs
    duration: jobs-done
    period: 1 s
    hosts:
      - {{name: h, cores: 4, core_speed: 1000 MIPS, ram: 16 GiB}}
    vms:
      - {{name: vm, count: 1, vcpus: 4, ram: 1 GiB}}
    jobs:
      - {{count: {count}, threads: {threads}, length: {length}}}
"""


def jobs_run(count: int = 1, threads: int = 2, length: str = "10000 MI", extra: str = ""):
    return run_text(JOBS.format(count=count, threads=threads, length=length) + extra)


def test_one_two_thread_job() -> None:
    # Each of the 2 threads runs on its own vCPU at 1000 MIPS: 10,000 MI / 1000 MIPS = 10 s.
    result = jobs_run(count=1)
    jobs = result.tables["jobs"]
    assert jobs["finish_s"].tolist() == [10000 / 1000]
    assert jobs["start_s"].tolist() == [0.0]
    assert result.summary["sim_time_s"] == 10.0
    assert result.summary["jobs"] == {
        "total": 1, "completed": 1, "killed": 0, "makespan_s": 10.0, "mean_completion_s": 10.0,
    }


def test_two_jobs_fill_the_four_vcpus() -> None:
    # 2 jobs x 2 threads = 4 threads on 4 vCPUs: each thread still has a whole vCPU -> 10 s.
    jobs = jobs_run(count=2).tables["jobs"]
    assert jobs["finish_s"].tolist() == [10.0, 10.0]


def test_three_jobs_share_the_vcpus() -> None:
    # 6 threads on 4 vCPUs: each thread gets 4/6 of a vCPU, 1000 * 4/6 MIPS, so
    # 10,000 MI / (1000 * 4 / 6) = 15 s.
    jobs = jobs_run(count=3).tables["jobs"]
    expected = 10000 / (1000 * 4 / 6)
    assert jobs["finish_s"].to_numpy() == pytest.approx([expected] * 3, rel=1e-12)


def test_jobs_of_different_lengths() -> None:
    # Two 2-thread jobs, 5,000 MI and 10,000 MI per thread, each thread on its own vCPU: the
    # short one ends at 5 s, the long one at 10 s (it has 4 vCPUs' worth of room throughout).
    text = JOBS.format(count=1, threads=2, length="5000 MI") + \
        "      - {count: 1, threads: 2, length: 10000 MI}\n"
    jobs = run_text(text).tables["jobs"]
    assert jobs["finish_s"].tolist() == pytest.approx([5000 / 1000, 10000 / 1000])


def test_freed_vcpus_speed_up_the_rest() -> None:
    # Three 2-thread jobs of 5,000, 10,000 and 10,000 MI: until the first ends, 6 threads share
    # 4 vCPUs (2/3 vCPU each): 5,000 / (1000 * 2/3) = 7.5 s. By then the long ones have done
    # 7.5 * 1000 * 2/3 = 5,000 MI per thread; the 5,000 MI left run at a full vCPU: 5 s more.
    text = JOBS.format(count=1, threads=2, length="5000 MI") + \
        "      - {count: 2, threads: 2, length: 10000 MI}\n"
    jobs = run_text(text).tables["jobs"]
    first = 5000 / (1000 * 2 / 3)
    rest = first + (10000 - first * 1000 * 2 / 3) / 1000
    assert jobs["finish_s"].to_numpy() == pytest.approx([first, rest, rest])
    assert (first, rest) == pytest.approx((7.5, 12.5))


def test_a_later_submission_starts_then() -> None:
    text = JOBS.format(count=1, threads=4, length="10000 MI").replace(
        "length: 10000 MI}", "length: 10000 MI, submit: 5 s}")
    jobs = run_text(text).tables["jobs"]
    assert jobs["submit_s"].tolist() == [5.0]
    assert jobs["start_s"].tolist() == [5.0]
    assert jobs["finish_s"].tolist() == [5.0 + 10000 / 1000]


# A 4-vCPU worker with one 4-thread job beside a 4-vCPU VM running flat out, on one 4-core host.
CONTENDED = """
    name: contended
    duration: jobs-done
    period: 1 s
    hosts:
      - {name: h, cores: 4, core_speed: 1000 MIPS, ram: 16 GiB}
    vms:
      - {name: worker, count: 1, vcpus: 4, ram: 1 GiB}
      - {name: busy, count: 1, vcpus: 4, ram: 1 GiB, workload: full}
    workloads:
      full: {kind: constant, level: 100%}
    jobs:
      - {vms: worker, count: 1, threads: 4, length: 10000 MI}
    placement: {cpu_overcommit: 2}
"""


def test_jobs_on_a_contended_host_take_longer() -> None:
    # A second 4-vCPU VM runs flat out on the same 4-core host (2:1 overcommit). The job's VM
    # wants 4 threads x 1 GHz = 4 GHz, the busy one 4 GHz, on 4 GHz: equal shares give 2 GHz each.
    # The job's 4 threads x 10,000 MI = 4e10 cycles at 2e9 Hz: 20 s instead of 10 s.
    text = CONTENDED
    result = run_text(text)
    expected = (4 * 10000e6) / (4e9 / 2)
    assert result.tables["jobs"]["finish_s"].tolist() == pytest.approx([expected])
    assert expected == 20.0
    # With high shares (2000 per vCPU against 1000) the worker gets 2/3 of 4 GHz: 15 s.
    faster = run_text(text.replace("ram: 1 GiB}\n", "ram: 1 GiB, shares: high}\n", 1))
    expected_high = (4 * 10000e6) / (4e9 * 2 / 3)
    assert faster.tables["jobs"]["finish_s"].tolist() == pytest.approx([expected_high])
    # The worker waits for CPU half the time while it works: its ready fraction shows it.
    vms = result.tables["vms"]
    worker = vms[(vms["vm"] == 0) & (vms["time_s"] < 20)]
    assert worker["cpu_ready_frac"].to_numpy() == pytest.approx([0.5] * 20)


def test_a_job_speeds_up_when_its_competitor_leaves() -> None:
    # As above, but 'busy' leaves after 5 s. For 5 s the worker gets 2 GHz: 1e10 of its 4e10
    # cycles. The remaining 3e10 cycles run at the full 4 GHz: 7.5 s more, 12.5 s in all.
    text = CONTENDED.replace("name: contended", "name: leaves").replace(
        "workload: full}", "workload: full, lifetime: 5 s}")
    result = run_text(text)
    done_while_shared = 5 * 2e9
    expected = 5 + (4 * 10000e6 - done_while_shared) / 4e9
    assert result.tables["jobs"]["finish_s"].tolist() == pytest.approx([expected])
    assert expected == 12.5
    assert result.summary["sim_time_s"] == pytest.approx(expected)


def test_jobs_are_handed_round_robin_to_the_group() -> None:
    # Four 1-thread jobs on two 1-vCPU VMs: jobs 0, 2 on VM 0 and 1, 3 on VM 1, two threads per
    # one vCPU: 1,000 MI at 1000/2 MIPS = 2 s each.
    text = """
        name: rr
        duration: jobs-done
        period: 1 s
        hosts:
          - {name: h, cores: 4, core_speed: 1000 MIPS, ram: 16 GiB}
        vms:
          - {name: w, count: 2, vcpus: 1, ram: 1 GiB}
        jobs:
          - {count: 4, threads: 1, length: 1000 MI}
    """
    jobs = run_text(text).tables["jobs"]
    assert jobs["vm"].tolist() == [0, 1, 0, 1]
    assert jobs["finish_s"].to_numpy() == pytest.approx([1000 / (1000 / 2)] * 4)


def test_jobs_table_columns() -> None:
    jobs = jobs_run(count=2, threads=3, length="2000 MI").tables["jobs"]
    assert list(jobs.columns) == [
        "job", "vm", "threads", "length_cycles", "submit_s", "start_s", "finish_s",
    ]
    assert jobs["job"].tolist() == [0, 1]
    assert jobs["threads"].tolist() == [3, 3]
    assert jobs["length_cycles"].tolist() == [2000 * 1e6] * 2
    # 6 threads on 4 vCPUs: 2000 MI / (1000 * 4/6) MIPS = 3 s.
    assert jobs["finish_s"].to_numpy() == pytest.approx([3.0, 3.0])


def test_jobs_done_stops_the_run_at_the_last_completion() -> None:
    # 4 threads of 25,000 MI on a whole 4-vCPU VM: 25 s; tables end there.
    result = jobs_run(count=1, threads=4, length="25000 MI")
    assert result.summary["sim_time_s"] == 25.0
    assert result.tables["hosts"]["time_s"].max() == 24.0  # the last 1 s period starts at 24
    assert result.tables["datacenter"]["time_s"].tolist() == [float(t) for t in range(25)]


def test_a_fixed_duration_leaves_long_jobs_unfinished() -> None:
    text = JOBS.format(count=1, threads=2, length="10000 MI").replace(
        "duration: jobs-done", "duration: 4 s")
    result = run_text(text)
    assert np.isnan(result.tables["jobs"]["finish_s"].iloc[0])
    assert result.summary["sim_time_s"] == 4.0
    assert result.summary["jobs"]["completed"] == 0
    assert result.summary["jobs"]["makespan_s"] is None


def test_jobs_of_a_departing_vm_are_killed() -> None:
    text = JOBS.format(count=1, threads=2, length="10000 MI").replace(
        "duration: jobs-done", "duration: 20 s").replace(
        "ram: 1 GiB}", "ram: 1 GiB, lifetime: 5 s}")
    result = run_text(text)
    assert events_of(result, "job_killed") == [(5.0, "job-0", "vm")]
    assert result.summary["jobs"]["killed"] == 1
    assert np.isnan(result.tables["jobs"]["finish_s"].iloc[0])


def test_a_jobs_done_run_stops_when_the_jobs_can_never_run() -> None:
    # The only core is taken forever by 'hog'; the job's VM waits for a host that nothing frees.
    text = """
        name: stall
        duration: jobs-done
        period: 1 s
        hosts:
          - {name: h, cores: 1, core_speed: 1000 MIPS, ram: 2 GiB}
        vms:
          - {name: hog, count: 1, vcpus: 1, ram: 2 GiB}
          - {name: late, count: 1, vcpus: 1, ram: 2 GiB}
        jobs:
          - {vms: late, count: 1, threads: 1, length: 1000 MI}
    """
    result = run_text(text)
    assert result.summary["sim_time_s"] == 0.0
    kinds = result.tables["events"]["kind"].astype(str).tolist()
    assert kinds == ["vm_start", "vm_queued", "run_stalled"]


def test_a_jobs_done_run_stops_when_the_last_job_is_killed() -> None:
    # The VM leaves at 5 s, killing its 1,000,000 MI job (which would take 1000 s): nothing is
    # left to do, so the run ends at 5 s.
    text = JOBS.format(count=1, threads=1, length="1000000 MI").replace(
        "ram: 1 GiB}", "ram: 1 GiB, lifetime: 5 s}")
    result = run_text(text)
    assert result.summary["jobs"]["killed"] == 1
    assert result.summary["sim_time_s"] == 5.0


def test_a_jobs_done_run_with_all_jobs_killed_before_submission_stops(tmp_path) -> None:
    # The VM leaves at 5 s; its job would have been submitted at 10 s. Nothing can ever happen
    # after 5 s. Run in a child process: a run that never stops is killed after 6 s (a run that
    # stops takes about one).
    text = JOBS.format(count=1, threads=1, length="1000 MI").replace(
        "ram: 1 GiB}", "ram: 1 GiB, lifetime: 5 s}").replace(
        "length: 1000 MI}", "length: 1000 MI, submit: 10 s}")
    path = tmp_path / "killed.yaml"
    path.write_text(textwrap.dedent(text))
    done = vsim_cli("run", str(path), "--out", str(tmp_path / "out"), "--no-report", "-q",
                    cwd=tmp_path, timeout=6)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["sim_time_s"] == 5.0
