"""Throughput of the quantum-level vCPU scheduler model (vsim.model.timeslice).

    python benchmarks/timeslice.py [--repeat N] [--scale X]     (part of: make bench)

Simulated timeslices (dispatches, ``SliceResult.slices``) per second of wall time on four hosts,
under Xen's credit scheduler and under Linux CFS:

* cpu-bound: 4 pCPUs, 16 CPU-bound 1-vCPU VMs; the schedule repeats, so most of the window is
  added up period by period (the batched path);
* bursty: 4 pCPUs, 8 VMs at 30 % demand in 5 ms bursts and 8 I/O-bound VMs at 5 % in 0.5 ms bursts;
* smp-relaxed: 8 pCPUs, 16 2-vCPU VMs of mixed demand (4 vCPUs per pCPU), weights 1-3, relaxed
  co-scheduling and 3 us switches (ESXi's costs);
* 1cpu-switch: 1 pCPU, 4 CPU-bound vCPUs, 4 us switches.

The goal is 500,000 slices per second where bare simpy does about 800,000 timeouts per second, so
it is checked as a ratio: slices/s at least 0.625 x the simpy timeouts/s measured in the same run
(16 processes, each waiting on ``env.timeout`` in a loop), since absolute speed on a shared machine
varies. It runs the build of the model that vsim uses: the compiled one when installing vsim could
compile it, the Python one with ``VSIM_PURE_PYTHON=1``; the first line printed says which.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy
from table import print_table

from vsim.model.timeslice import COMPILED, Credit, Fair, HostSlicer, Profile, VcpuLoad, VmLoad

GOAL_SLICES_S = 500_000
SIMPY_REFERENCE_S = 800_000
GOAL_RATIO = GOAL_SLICES_S / SIMPY_REFERENCE_S


@dataclass(frozen=True)
class Case:
    name: str
    pcpus: int
    vms: Callable[[], list[VmLoad]]
    profile: Profile
    window_s: float  # simulated, at --scale 1; about a second of wall time or less


def _cpu_bound(n: int) -> list[VmLoad]:
    return [VmLoad((VcpuLoad(),)) for _ in range(n)]


def _bursty() -> list[VmLoad]:
    return ([VmLoad((VcpuLoad(0.30, 0.005),)) for _ in range(8)]
            + [VmLoad((VcpuLoad(0.05, 0.0005),)) for _ in range(8)])


def _smp() -> list[VmLoad]:
    demands = (1.0, 0.6, 0.3, 0.1)
    return [VmLoad((VcpuLoad(demands[i % 4], 0.004),) * 2, weight=float(1 + i % 3))
            for i in range(16)]


CASES = [
    Case("cpu-bound", 4, lambda: _cpu_bound(16), Profile(), 3600.0),
    Case("bursty", 4, _bursty, Profile(), 60.0),
    Case("smp-relaxed", 8, _smp, Profile(switch_s=3e-6, coschedule="relaxed"), 30.0),
    Case("1cpu-switch", 1, lambda: _cpu_bound(4), Profile(switch_s=4e-6), 600.0),
]
POLICIES = {"credit": Credit, "fair": Fair}


def slices_per_s(case: Case, policy: str, scale: float) -> tuple[int, float, float]:
    """Slices simulated, wall seconds and the share of the window added up by period."""
    start = time.perf_counter()
    host = HostSlicer(case.pcpus, case.vms(), POLICIES[policy](), profile=case.profile,
                      rng=np.random.default_rng(1))
    window = case.window_s * scale
    r = host.run(window)
    return r.slices, time.perf_counter() - start, r.skipped_s / window


def simpy_timeouts_per_s(n: int = 400_000, processes: int = 16) -> float:
    env = simpy.Environment()

    def waiter(delay: int):  # type: ignore[no-untyped-def]
        timeout = env.timeout
        while True:
            yield timeout(delay)

    for i in range(processes):
        env.process(waiter(1 + i % 3))
    per_unit = sum(1 / (1 + i % 3) for i in range(processes))
    start = time.perf_counter()
    env.run(until=n / per_unit)
    return n / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (median)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every simulated window")
    args = ap.parse_args()
    print("time-slicing model: " + ("compiled (Cython)" if COMPILED else
                                    "Python build (not compiled, or VSIM_PURE_PYTHON is set)"))
    simpy_runs, rows = [], []
    for case in CASES:
        for policy in POLICIES:
            runs = []
            for _ in range(args.repeat):
                runs.append(slices_per_s(case, policy, args.scale))
                simpy_runs.append(simpy_timeouts_per_s())  # interleaved: the machine's load drifts
            slices, _, skipped = runs[0]
            wall = statistics.median(r[1] for r in runs)
            rows.append((case, policy, slices, wall, skipped))
    simpy_rate = statistics.median(simpy_runs)
    header = ("case", "policy", "slices", "wall s", "slices/s", "x simpy", "goal", "", "batched")
    table = []
    missed = 0
    for case, policy, slices, wall, skipped in rows:
        rate = slices / wall
        ok = rate >= GOAL_RATIO * simpy_rate
        missed += not ok
        table.append((case.name, policy, f"{slices:,}", f"{wall:.3f}", f"{rate:,.0f}",
                      f"{rate / simpy_rate:.2f}", f">= {GOAL_RATIO:.3f}", "ok" if ok else "MISSED",
                      f"{skipped:.0%}" if skipped else ""))
    print_table(header, table)
    print(f"\nbare simpy on this machine, same run: {simpy_rate:,.0f} timeouts/s (median of "
          f"{len(simpy_runs)}); goal: {GOAL_SLICES_S:,} slices/s against simpy's ~"
          f"{SIMPY_REFERENCE_S:,}/s, i.e. slices/s >= {GOAL_RATIO:.3f} x simpy's, here "
          f"{GOAL_RATIO * simpy_rate:,.0f}/s")
    print(f"median wall of {args.repeat} runs per case, construction included; 'batched': share of "
          f"the window added up period by period; {missed} of {len(table)} cases miss the goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
