"""vsim's speed and memory benchmarks: whole runs, from process start to results written.

    python benchmarks/run.py [--repeat N] [--only NAME]     (or: make bench)

Each benchmark runs ``vsim run`` in a fresh process; wall time is measured around the process and
peak memory is the child's own maximum resident set (``wait4``). Figures are printed as a table;
goals are compared as ratios within the same run, since absolute times on a shared machine vary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from table import print_table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass(frozen=True)
class Benchmark:
    name: str
    scenario: Path
    args: tuple[str, ...]
    what: str
    goal: str
    max_wall_s: float | None = None
    max_rss_mb: float | None = None
    reference_wall_s: float | None = None  # a peer's figure on this kind of machine
    default: bool = True  # False: only with --only NAME (it takes long)
    # A goal relative to another benchmark of the same run: wall time at most max_ratio x its.
    relative_to: str | None = None
    max_ratio: float | None = None


# CloudSim Plus 8.5.7 on the same scale scenario took 6.2-6.4 s and about 600 MB on this kind of
# 2-core machine; the goal is at least 5x faster (6.2 / 5 = 1.24 s) and less memory.
CLOUDSIM_PLUS_WALL_S = 6.2
CLOUDSIM_PLUS_RSS_MB = 600.0

# CloudSim 3.0.3 takes 19-32 s and 1.9-2.8 GB per consolidating policy-day on PlanetLab 20110303
# on this kind of machine; the goal is at least 5x faster (19 / 5 = 3.8 s) and a quarter of the
# memory (1.9 GB / 4 = 475 MB), running the same model (semantics: cloudsim).
CLOUDSIM_PLANETLAB_WALL_S = 19.0
CLOUDSIM_PLANETLAB_RSS_MB = 1900.0

BENCHMARKS = [
    Benchmark("quickstart", REPO / "scenarios" / "quickstart.yaml", (),
              "scenarios/quickstart.yaml, all tables and report.html", "seconds"),
    Benchmark("cloudsimplus-scale", HERE / "scenarios" / "cloudsimplus-scale.yaml", ("--no-report",),
              "20k hosts, 40k VMs, 50k jobs of 2 x 10,000 MI, first fit, until done; tables",
              "<= 1.24 s (5x CloudSim Plus), < 600 MB",
              CLOUDSIM_PLUS_WALL_S / 5, CLOUDSIM_PLUS_RSS_MB, CLOUDSIM_PLUS_WALL_S),
    Benchmark("cloudsimplus-scale+report", HERE / "scenarios" / "cloudsimplus-scale.yaml", (),
              "the same, with report.html", "for information", None, None, CLOUDSIM_PLUS_WALL_S),
    Benchmark("fluid-20k", HERE / "scenarios" / "fluid-20k.yaml",
              ("--no-report", "--set", "output.vms_table=false"),
              "20k hosts, 40k VMs, 24 h of 5-min samples, fluid sharing, energy; host tables",
              "< 10 s, < 2 GB", 10.0, 2048.0),
    *(Benchmark(f"planetlab-{p}-mmt", REPO / "scenarios" / "planetlab" / f"{p}-mmt.yaml",
                ("--no-report", "--set", "semantics=cloudsim"),
                f"PlanetLab 20110303, 800 hosts, 1052 VMs, {p.upper()}-MMT, semantics: cloudsim",
                "<= 3.8 s (5x CloudSim 3.0.3), <= 475 MB", CLOUDSIM_PLANETLAB_WALL_S / 5,
                CLOUDSIM_PLANETLAB_RSS_MB / 4, CLOUDSIM_PLANETLAB_WALL_S)
      for p in ("thr", "iqr", "mad", "lr", "lrr")),
    Benchmark("planetlab-thr-mmt-vsim", REPO / "scenarios" / "planetlab" / "thr-mmt.yaml",
              ("--no-report",), "the same THR-MMT day in vsim's semantics", "for information"),
    Benchmark("planetlab-scale", HERE / "scenarios" / "planetlab-scale.yaml", ("--no-report",),
              "10k hosts, 100k VMs, 30 days of tiled PlanetLab days, LR-MMT, vsim semantics",
              "< 10 min, < 8 GB", 600.0, 8192.0, default=False),
    Benchmark("memory-2k-off", HERE / "scenarios" / "memory-2k.yaml",
              ("--no-report", "--set", "output.vms_table=false", "--set", "hosts.host.memory=null"),
              "2k hosts, 40k VMs at up to 8 vCPUs/core and 2 x RAM, 24 h of 5-min samples, "
              "memory only committed", "for information"),
    Benchmark("memory-2k", HERE / "scenarios" / "memory-2k.yaml",
              ("--no-report", "--set", "output.vms_table=false"),
              "the same with memory overcommit modelled (sharing, balloons, compression, swap, "
              "slowdown; active memory of every VM changing every 5 min)",
              "<= 2.5 x memory-2k-off", relative_to="memory-2k-off", max_ratio=2.5),
    Benchmark("ha-2k-none", HERE / "scenarios" / "ha-2k.yaml",
              ("--no-report", "--set", "output.vms_table=false", "--set", "failures=[]",
               "--set", "ha=null"),
              "2k hosts in 10 sites, 40k VMs, 30 days at hourly samples, no failures",
              "for information"),
    Benchmark("ha-2k", HERE / "scenarios" / "ha-2k.yaml",
              ("--no-report", "--set", "output.vms_table=false"),
              "the same with every host failing about once a year (about 160 failures), HA "
              "restarts under percentage admission control and boot storms",
              "<= 2 x ha-2k-none", relative_to="ha-2k-none", max_ratio=2.0),
    Benchmark("storage-2k-off", HERE / "scenarios" / "storage-2k.yaml",
              ("--no-report", "--set", "output.vms_table=false", "--set", "datastores=[]",
               "--set", "networks=[]", "--set", "vms.0.disks=[]", "--set", "vms.0.snapshots=null",
               "--set", "vms.0.nics=[]"),
              "2k hosts in 10 sites, 40k VMs, 30 days at hourly samples, no storage or network "
              "model", "for information"),
    Benchmark("storage-2k", HERE / "scenarios" / "storage-2k.yaml",
              ("--no-report", "--set", "output.vms_table=false"),
              "the same with a thin disk per VM growing with its writes, nightly snapshots and "
              "their consolidations, and two vNICs per VM (datastore and link tables)",
              "<= 2.5 x storage-2k-off", relative_to="storage-2k-off", max_ratio=2.5),
    Benchmark("fluid-20k+vms-table", HERE / "scenarios" / "fluid-20k.yaml", ("--no-report",),
              "the same, with the per-VM table (11.5 M rows)", "for information"),
]


def measure(b: Benchmark, out_root: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``vsim run`` in a fresh process."""
    out = out_root / f"{b.name}-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "vsim.cli", "run", str(b.scenario), "--quiet", "--out", str(out),
           *b.args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"benchmark {b.name} failed ({proc.returncode}):\n{err}")
    shutil.rmtree(out, ignore_errors=True)
    return wall, usage.ru_maxrss / 1024.0  # ru_maxrss is KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per benchmark (median)")
    parser.add_argument("--only", action="append", help="run only these benchmarks")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if (b.name in args.only if args.only else b.default)]
    rows = []
    walls: dict[str, float] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="vsim-bench-") as tmp:
        for b in chosen:
            runs = [measure(b, Path(tmp)) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            ok = (b.max_wall_s is None or wall <= b.max_wall_s) and (
                b.max_rss_mb is None or rss <= b.max_rss_mb)
            base = walls.get(b.relative_to or "")
            if base is not None and b.max_ratio is not None:
                ok &= wall <= b.max_ratio * base
            walls[b.name] = wall
            failed |= not ok
            speedup = f"{b.reference_wall_s / wall:.1f}x" if b.reference_wall_s else ""
            if base is not None:
                speedup = f"{wall / base:.2f}x {b.relative_to}"
            rows.append((b.name, f"{wall:.2f}", f"{rss:.0f}", speedup, b.goal,
                         "ok" if ok else "MISSED", b.what))
    header = ("benchmark", "wall s", "peak MB", "vs peer / ratio", "goal", "", "what")
    print_table(header, rows)
    print(f"\nmedian of {args.repeat} runs each; peak MB is the largest of them; 'vs peer' is the "
          f"peer's wall time over vsim's: CloudSim Plus {CLOUDSIM_PLUS_WALL_S} s "
          f"({CLOUDSIM_PLUS_RSS_MB:.0f} MB) on the scale scenario, CloudSim 3.0.3 "
          f"{CLOUDSIM_PLANETLAB_WALL_S}-32 s (1.9-2.8 GB) per PlanetLab policy-day")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
