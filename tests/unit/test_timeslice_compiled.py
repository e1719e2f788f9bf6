"""The compiled build of the time-slicing model gives exactly the results of its Python source.

Installing vsim compiles the slice loop's modules with Cython (vsim/model/timeslice/*.pxd give
the C types). C integers and Python integers differ (overflow, division), so the two builds are
run on the same random hosts, covering every feature of the model, and must agree to the last
nanosecond and the last latency sample. The Python build runs in a child process with
VSIM_PURE_PYTHON=1, which is also how a user gets it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vsim.model.timeslice as ts
from vsim.compiled import is_current

ROOT = Path(__file__).resolve().parents[2]


def _hosts(n: int = 40) -> list[tuple[int, list[ts.VmLoad], str, dict, ts.Profile, int]]:
    """Random hosts: pCPUs, VMs (demand, bursts, patterns, pins, weights, caps, SMP), policy and
    its options, hypervisor costs and co-scheduling, and a seed."""
    rng = np.random.default_rng(2026)
    out = []
    for i in range(n):
        pcpus = int(rng.integers(1, 5))
        vms = []
        for _ in range(int(rng.integers(1, 7))):
            vcpus = tuple(
                ts.VcpuLoad(float(rng.choice([1.0, rng.uniform(0.05, 0.95), 0.0], p=[0.3, 0.65, 0.05])),
                            float(rng.choice([0.0005, 0.004, 0.02])),
                            str(rng.choice(["exponential", "fixed"], p=[0.8, 0.2])),
                            int(rng.integers(0, pcpus)) if rng.random() < 0.15 else -1)
                for _ in range(int(rng.choice([1, 1, 2, 3]))))
            vms.append(ts.VmLoad(vcpus, weight=float(rng.choice([1.0, 2.0, 0.5])),
                                 cap=float(rng.choice([np.inf, 0.5, 1.5], p=[0.7, 0.2, 0.1]))))
        policy = "credit" if i % 2 == 0 else "fair"
        options: dict = {}
        if policy == "credit" and rng.random() < 0.3:
            options["boost"] = False
        if policy == "fair" and rng.random() < 0.3:
            options["hrtick"] = True
        profile = ts.Profile(switch_s=float(rng.choice([0.0, 3e-6, 2e-5])),
                             interference=float(rng.choice([0.0, 0.02])),
                             host_os=float(rng.choice([0.0, 0.0, 0.05])),
                             coschedule=str(rng.choice(["none", "relaxed"])))
        out.append((pcpus, vms, policy, options, profile, i))
    return out


def _results() -> list[dict]:
    rows = []
    for pcpus, vms, policy, options, profile, seed in _hosts():
        pol = ts.Credit(**options) if policy == "credit" else ts.Fair(**options)
        r = ts.HostSlicer(pcpus, vms, pol, profile=profile,
                          rng=np.random.default_rng(seed)).run(2.0, warmup_s=0.2)
        rows.append({"counters": {k: v.tolist() for k, v in r.counters.items()},
                     "latencies": [x.tolist() for x in r.latencies_s],
                     "host": [r.pcpu_idle_s, r.switch_overhead_s, r.slices, r.skipped_s]})
    return rows


def test_the_compiled_build_gives_exactly_the_python_results() -> None:
    if not ts.COMPILED:
        pytest.skip("the time-slicing model is not compiled here (no C compiler when vsim was "
                    "installed, or VSIM_PURE_PYTHON is set); the Python build is what runs")
    child = subprocess.run([sys.executable, __file__], capture_output=True, text=True, check=True,
                           env={**os.environ, "VSIM_PURE_PYTHON": "1"}, cwd=ROOT)
    python_build = json.loads(child.stdout)
    assert python_build["compiled"] is False
    compiled = _results()
    assert len(compiled) == len(python_build["rows"]) == 40
    for i, (a, b) in enumerate(zip(compiled, python_build["rows"], strict=True)):
        assert a == b, f"host {i} differs between the compiled and the Python build"
    # The hosts exercise the model: slices, latencies, co-stop and throttling all occur.
    assert sum(row["host"][2] for row in compiled) > 10_000
    assert any(any(row["counters"]["costop_s"]) for row in compiled)
    assert any(any(row["counters"]["throttled_s"]) for row in compiled)


def test_vsim_pure_python_selects_the_python_build() -> None:
    code = "import vsim.model.timeslice.host as h, vsim.model.timeslice as t; print(t.COMPILED, h.__file__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "VSIM_PURE_PYTHON": "1"}, cwd=ROOT).stdout.split()
    assert out[0] == "False" and out[1].endswith("host.py")


def test_an_edited_source_is_run_as_python_until_rebuilt(tmp_path: Path) -> None:
    if not ts.COMPILED:
        pytest.skip("the time-slicing model is not compiled here")
    copy = tmp_path / "timeslice"
    shutil.copytree(Path(ts.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    modules = ("parts", "host", "common", "credit", "fair")
    assert is_current(copy, modules)
    host = copy / "host.py"
    host.write_text(host.read_text() + "# an edit\n")
    assert not is_current(copy, modules)
    # The check is on content, not file times: undoing the edit makes the build current again.
    host.write_text(host.read_text().removesuffix("# an edit\n"))
    assert is_current(copy, modules)
    (copy / "_compiled.json").unlink()  # compiled outside vsim's build: not trusted
    assert not is_current(copy, modules)


if __name__ == "__main__":
    print(json.dumps({"compiled": ts.COMPILED, "rows": _results()}))
