"""Throughput of ``vsim sweep``: the same 64-run sweep on one process, on local worker processes and
on a local Dask cluster.

    python benchmarks/sweep.py [--workers N] [--repeat N]

The sweep is scenarios/quickstart.yaml over four placement policies x four sizes of its first host
group x four replications (64 runs of two simulated days, 340 VMs each), without the per-VM table
or reports, the way a sweep is usually run. Each way is timed from planning (every point checked)
to the index written, including starting and stopping the workers, in this one process so that
imports are paid once for all three. Runs per second are compared with one process in the same
run, since absolute speed on a shared machine varies: with two cores the local pool should be at
least 1.8 x as fast and Dask at least 1.7 x (its scheduler and worker processes cost a little).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from table import print_table

from vsim.experiments.executors import make_executor, warm_up
from vsim.experiments.sweep import plan_sweep, run_sweep

HERE = Path(__file__).resolve().parent
SCENARIO = HERE.parent / "scenarios" / "quickstart.yaml"
AXES = ("placement.policy=first-fit,best-fit,worst-fit,random", "hosts.0.count=12,14,16,18")
REPLICATIONS = 4
FIXED = ("output.vms_table=false", "output.report=false")
RUNS = 64
GOALS = {"local": 1.8, "dask": 1.7}  # minimum speed-up over one process, with two workers


def timed(kind: str, workers: int, out: Path) -> tuple[float, pd.DataFrame]:
    """Wall seconds of one whole sweep and its index."""
    started = time.perf_counter()
    preload = ("vsim.experiments.sweep", "vsim.runner")
    warm_up(kind, None, preload)  # as `vsim sweep` does
    plan = plan_sweep(SCENARIO, AXES, REPLICATIONS, fixed=FIXED)
    executor = make_executor(kind, workers, preload=preload)
    try:
        outcome = run_sweep(plan, out, executor)
    finally:
        executor.close()
    wall = time.perf_counter() - started
    if outcome.failed or outcome.ran != plan.runs:
        raise SystemExit(f"the {kind} sweep ran {outcome.ran} of {plan.runs} runs, "
                         f"{outcome.failed} failed")
    return wall, outcome.index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel ways")
    parser.add_argument("--repeat", type=int, default=1, help="sweeps of each way (median)")
    args = parser.parse_args()
    ways = [("one process", "local", 1), (f"local, {args.workers} processes", "local", args.workers),
            (f"dask LocalCluster, {args.workers} workers", "dask", args.workers)]
    walls: dict[int, list[float]] = {n: [] for n in range(len(ways))}
    per_run: dict[int, list[float]] = {n: [] for n in range(len(ways))}
    indexes = []
    with tempfile.TemporaryDirectory(prefix="vsim-bench-sweep-") as tmp:
        # Dask last: its client leaves threads behind, and a local pool started after that would
        # fork its workers from a fork server instead of from this process, as `vsim sweep` does.
        for n, (_, kind, workers) in enumerate(ways):
            for r in range(args.repeat):
                wall, index = timed(kind, workers, Path(tmp) / f"sweep-{r}-{n}")
                walls[n].append(wall)
                per_run[n].append(float(index["wall_time_s"].mean()))
                indexes.append(index.drop(columns=["wall_time_s"]))
    rows, failed = [], False
    base_rate = RUNS / statistics.median(walls[0])
    for n, (label, kind, workers) in enumerate(ways):
        wall = statistics.median(walls[n])
        rate = RUNS / wall
        ratio = rate / base_rate
        goal = GOALS.get(kind) if workers > 1 else None
        ok = goal is None or ratio >= goal
        failed |= not ok
        rows.append((label, RUNS, f"{wall:.1f}", f"{rate:.2f}", f"{ratio:.2f}x",
                     f"{statistics.median(per_run[n]):.3f}", f">= {goal}x" if goal else "",
                     "" if goal is None else ("ok" if ok else "MISSED")))
    same = all(i.equals(indexes[0]) for i in indexes[1:])
    print_table(("sweep of quickstart", "runs", "wall s", "runs/s", "vs one process",
                 "s/run simulated", "goal", ""), rows)
    print(f"\n4 policies x 4 sizes x {REPLICATIONS} replications of {SCENARIO.name} "
          f"({', '.join(FIXED)}); planning, runs, index and worker start-up included; median of "
          f"{args.repeat}; 's/run simulated' is a run's own simulation time in its worker (saving "
          f"excluded); identical figures on every executor: {'yes' if same else 'NO'}")
    return 1 if failed or not same else 0


if __name__ == "__main__":
    sys.exit(main())
