"""``vsim sweep``: grids of overrides times replications, their index, resuming after a kill, failed
runs, bad axis values and determinism across executors, through the real command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, vsim_cli

import vsim.experiments.sweep as sweep_module
from vsim.errors import VsimError
from vsim.experiments.executors import InProcess, LocalProcesses
from vsim.experiments.sweep import (
    flatten_summary,
    parse_axis,
    plan_sweep,
    run_sweep,
    run_task,
    split_values,
)
from vsim.runner import replication_seeds

TINY = """\
name: tiny
seed: 3
duration: {duration}
period: {period}
hosts:
  - {{name: h, count: 4, cores: 8, core_speed: 2 GHz, ram: 64 GiB,
      power: {{idle: 100 W, max: 250 W}}}}
vms:
  - {{name: web, count: 6, vcpus: 2, ram: 4 GiB, workload: w}}
workloads:
  w: {{kind: synthetic, mean: 40%, noise: {{sd: 10%, correlation: 0.5}}}}
placement: {{policy: first-fit}}
"""

GRID = ("--axis", "hosts.0.count=4,6", "--axis", "placement.policy=first-fit,worst-fit")


def tiny(tmp_path: Path, duration: str = "2 h", period: str = "5 min") -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(duration=duration, period=period), encoding="utf-8")
    return path


def figures(index: pd.DataFrame) -> pd.DataFrame:
    """The index without what legitimately varies between two sweeps (wall times)."""
    return index.drop(columns=["wall_time_s", "engine.wall_time_s"], errors="ignore")


def visible_runs(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "runs").iterdir() if not p.name.startswith("."))


def test_a_grid_of_two_axes_with_replications(tmp_path: Path) -> None:
    tiny(tmp_path)
    done = vsim_cli("sweep", "tiny.yaml", *GRID, "--replications", "2", "--out", "sw", "-q",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "sw"
    assert "0 failed" in done.stderr
    folder = tmp_path / "sw"
    assert visible_runs(folder) == [f"p{p:03d}-r{r:02d}" for p in range(4) for r in range(2)]
    index = pd.read_parquet(folder / "index.parquet")
    assert len(index) == 8 and set(index["status"]) == {"ok"}
    assert list(index.columns[:9]) == ["run_id", "point", "replication", "seed", "status", "error",
                                       "wall_time_s", "hosts.0.count", "placement.policy"]
    # The first axis is the slowest; values are kept as given, as text.
    assert list(index["hosts.0.count"]) == ["4"] * 4 + ["6"] * 4
    assert list(index["placement.policy"]) == ["first-fit"] * 2 + ["worst-fit"] * 2 + [
        "first-fit"] * 2 + ["worst-fit"] * 2
    # Common random numbers: replication r has the same seed at every point.
    seeds = replication_seeds(3, 2)
    assert list(index["seed"]) == seeds * 4
    assert {"energy_kwh", "sla.slav", "hosts_on_mean"} <= set(index.columns)
    assert "scenario" not in index.columns  # text is left out
    # Two more hosts idle at 100 W for 2 h each: energy grows where the axis matters.
    by_hosts = index.groupby("hosts.0.count")["energy_kwh"].mean()
    assert by_hosts["6"] == pytest.approx(by_hosts["4"] + 2 * 0.1 * 2, rel=0.05)
    manifest = json.loads((folder / "sweep.json").read_text())
    assert manifest["axes"] == [{"key": "hosts.0.count", "values": ["4", "6"]},
                                {"key": "placement.policy", "values": ["first-fit", "worst-fit"]}]
    assert manifest["replications"] == 2 and manifest["seeds"] == seeds
    assert manifest["scenario"] == "tiny" and "hosts:" in manifest["scenario_yaml"]
    meta = json.loads((folder / "runs" / "p003-r01" / "meta.json").read_text())

    again = vsim_cli("sweep", "tiny.yaml", *GRID, "--replications", "2", "--out", "sw", "-q",
                     cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 done now, 8 skipped" in again.stderr
    assert json.loads((folder / "runs" / "p003-r01" / "meta.json").read_text()) == meta
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "index.parquet"), index)

    other = vsim_cli("sweep", "tiny.yaml", "--axis", "hosts.0.count=4,8", "--axis",
                     "placement.policy=first-fit,worst-fit", "--replications", "2", "--out", "sw",
                     cwd=tmp_path)
    assert other.returncode == 2
    assert "holds another sweep" in other.stderr and "hosts.0.count=4,6" in other.stderr
    assert "hosts.0.count=4,8" in other.stderr and "Traceback" not in other.stderr


def test_resume_after_kill_9_runs_only_what_is_missing(tmp_path: Path) -> None:
    tiny(tmp_path, duration="2 d", period="1 min")  # about 0.4 s per run
    args = ["sweep", "tiny.yaml", "--axis", "hosts.0.count=4,5,6,7,8,9", "--replications", "2",
            "--workers", "1", "--out", "sw", "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vsim.cli", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "sw" / "runs"
    deadline = time.monotonic() + 60
    try:
        while not (runs.is_dir() and len(visible_runs(runs.parent)) >= 2):
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no run folder appeared"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = visible_runs(runs.parent)
    assert 2 <= len(before) < 12
    for name in before:  # only complete folders are visible
        assert {"summary.json", "meta.json", "scenario.yaml"} <= {p.name for p in (runs / name)
                                                                   .iterdir()}
    kept = {n: ((runs / n).stat().st_ino, (runs / n / "meta.json").read_text()) for n in before}

    done = vsim_cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{12 - len(before)} done now, {len(before)} skipped" in done.stderr
    assert visible_runs(runs.parent) == [f"p{p:03d}-r{r:02d}" for p in range(6) for r in range(2)]
    assert not [p for p in runs.iterdir() if p.name.startswith(".")]  # leftovers cleaned
    index = pd.read_parquet(runs.parent / "index.parquet")
    assert len(index) == 12 and index["run_id"].is_unique and set(index["status"]) == {"ok"}
    for name, (inode, meta) in kept.items():  # not run again
        assert (runs / name).stat().st_ino == inode
        assert (runs / name / "meta.json").read_text() == meta


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_killed_sweep_leaves_no_worker_behind(tmp_path: Path) -> None:
    tiny(tmp_path, duration="2 d", period="1 min")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vsim.cli", "sweep", "tiny.yaml", "--axis",
                             "hosts.0.count=4,5,6,7,8,9", "--replications", "2", "--workers", "2",
                             "--out", "sw", "-q"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "sw" / "runs"
    deadline = time.monotonic() + 60
    try:
        while not (runs.is_dir() and visible_runs(runs.parent)):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        workers = _children(proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert workers
    deadline = time.monotonic() + 10
    try:
        while not all(_gone(w) for w in workers):
            assert time.monotonic() < deadline, "pool workers outlived the killed sweep"
            time.sleep(0.1)
    finally:
        for w in workers:  # never leave them running, even when the test fails
            if not _gone(w):
                os.kill(w, signal.SIGKILL)


def test_a_failing_run_is_recorded_and_the_others_run(tmp_path: Path) -> None:
    tiny(tmp_path)
    # 64 vCPUs load fine but no 8-core host can take them: the run fails when it builds.
    args = ["sweep", "tiny.yaml", "--axis", "vms.web.vcpus=1,64,2", "--replications", "2",
            "--workers", "1", "--out", "sw", "-q"]
    done = vsim_cli(*args, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "2 failed" in done.stderr and "Traceback" not in done.stderr
    folder = tmp_path / "sw"
    assert done.stdout.strip().splitlines()[-1] == "sw"
    index = pd.read_parquet(folder / "index.parquet")
    assert len(index) == 6
    bad = index[index["vms.web.vcpus"] == "64"]
    assert set(bad["status"]) == {"failed"}
    assert bad["error"].str.contains("larger than any host").all()
    assert bad["energy_kwh"].isna().all()
    good = index[index["vms.web.vcpus"] != "64"]
    assert set(good["status"]) == {"ok"} and set(good["error"]) == {""}
    record = json.loads((folder / "runs" / "p001-r00.failed.json").read_text())
    assert record["error_type"] == "ScenarioError" and "Traceback" in record["traceback"]
    assert not (folder / "runs" / "p001-r00").exists()

    # Failed runs are not retried on resume unless asked, and still count as failed.
    again = vsim_cli(*args, cwd=tmp_path)
    assert again.returncode == 1 and "0 done now, 6 skipped" in again.stderr
    retried = vsim_cli(*args, "--retry-failed", cwd=tmp_path)
    assert retried.returncode == 1 and "2 done now, 4 skipped" in retried.stderr


def test_a_run_whose_scenario_vanishes_is_recorded_as_failed(tmp_path: Path) -> None:
    """The worker itself: whatever raises inside a run is written next to the run folders."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(duration="2 h", period="5 min").replace(
        "placement:", "calibration: cal.yaml\nplacement:"), encoding="utf-8")
    (tmp_path / "cal.yaml").write_text("scenario: {}\n", encoding="utf-8")
    plan = plan_sweep(path, ["hosts.0.count=4"])
    (tmp_path / "cal.yaml").unlink()  # after validation, before the run
    task = plan.tasks(tmp_path / "sw")[0]
    (tmp_path / "sw" / "runs").mkdir(parents=True)
    out = run_task(task)
    assert out["status"] == "failed" and "no calibration file" in out["error"]
    assert (tmp_path / "sw" / "runs" / "p000-r00.failed.json").exists()


def test_bad_axis_values_are_one_message_and_nothing_is_written(tmp_path: Path) -> None:
    tiny(tmp_path)
    done = vsim_cli("sweep", "tiny.yaml", "--axis", "hosts.0.count=4,6",
                    "--axis", "hosts.0.ram=64 GiB,12 parsecs", "--axis", "placement.polcy=random",
                    cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--axis hosts.0.ram: value '12 parsecs'" in done.stderr
    assert "--axis placement.polcy: value 'random'" in done.stderr
    assert "did you mean 'policy'" in done.stderr
    assert "nothing was run" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]

    malformed = vsim_cli("sweep", "tiny.yaml", "--axis", "hosts.0.count", cwd=tmp_path)
    assert malformed.returncode == 2 and "--axis dotted.key=value1,value2" in malformed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_two_workers_give_the_figures_of_one(tmp_path: Path) -> None:
    tiny(tmp_path)
    common = ("sweep", "tiny.yaml", *GRID, "--replications", "2", "-q")
    one = vsim_cli(*common, "--workers", "1", "--out", "one", cwd=tmp_path)
    two = vsim_cli(*common, "--workers", "2", "--out", "two", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert "2 local processes" in two.stderr
    pd.testing.assert_frame_equal(figures(pd.read_parquet(tmp_path / "one" / "index.parquet")),
                                  figures(pd.read_parquet(tmp_path / "two" / "index.parquet")))


def test_the_python_api_runs_a_sweep_in_process(tmp_path: Path) -> None:
    plan = plan_sweep(tiny(tmp_path), ["placement.policy=first-fit,best-fit"], replications=3,
                      seed=11)
    assert plan.seeds == tuple(replication_seeds(11, 3)) and plan.runs == 6
    seen: list[tuple[int, int]] = []
    outcome = run_sweep(plan, tmp_path / "sw", InProcess(),
                        progress=lambda done, total: seen.append((done, total)))
    assert (outcome.ran, outcome.skipped, outcome.ok, outcome.failed) == (6, 0, 6, 0)
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    assert list(outcome.index["seed"]) == list(plan.seeds) * 2


def test_workers_from_a_fork_server_give_the_same_index(tmp_path: Path) -> None:
    plan = plan_sweep(tiny(tmp_path), ["hosts.0.count=4,6"], replications=2)
    pool = LocalProcesses(2, ("vsim.experiments.sweep",), start_method="forkserver")
    try:
        pooled = run_sweep(plan, tmp_path / "pool", pool)
    finally:
        pool.close()
    alone = run_sweep(plan, tmp_path / "alone", InProcess())
    pd.testing.assert_frame_equal(figures(pooled.index), figures(alone.index))


def test_fixed_overrides_and_reports(tmp_path: Path) -> None:
    tiny(tmp_path)
    done = vsim_cli("sweep", "tiny.yaml", "--axis", "hosts.0.count=4", "--set", "duration=1 h",
                    "--reports", "--workers", "1", "--out", "sw", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    index = pd.read_parquet(tmp_path / "sw" / "index.parquet")
    assert list(index["sim_time_s"]) == [3600.0] and "duration" not in index.columns
    assert (tmp_path / "sw" / "runs" / "p000-r00" / "report.html").exists()
    assert json.loads((tmp_path / "sw" / "sweep.json").read_text())["set"] == ["duration=1 h"]
    # The same axes with another fixed override are another sweep.
    other = vsim_cli("sweep", "tiny.yaml", "--axis", "hosts.0.count=4", "--out", "sw",
                     cwd=tmp_path)
    assert other.returncode == 2 and "--set duration=1 h" in other.stderr


class _Elsewhere:
    """Workers that report runs done but write where this process cannot see them."""

    workers = 1

    def map_unordered(self, fn, items, key=None):  # type: ignore[no-untyped-def]
        for item in items:
            yield {"run_id": item.run_id, "status": "ok", "error": "", "host": "node7"}

    def close(self) -> None:
        pass


def test_runs_written_out_of_sight_are_an_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_module, "VISIBLE_WITHIN_S", 0.2)
    plan = plan_sweep(tiny(tmp_path), ["hosts.0.count=4"])
    with pytest.raises(VsimError, match=r"finished on node7.*filesystem this machine shares"):
        run_sweep(plan, tmp_path / "sw", _Elsewhere())


def test_axis_values_split_on_top_level_commas_only() -> None:
    assert split_values("{policy: slots, n: 2},[1, 2], 'a,b' ,x") == [
        "{policy: slots, n: 2}", "[1, 2]", "'a,b'", "x"]
    axis = parse_axis("ha.admission={policy: slots},{policy: percentage, cpu: 25%}")
    assert axis.key == "ha.admission" and len(axis.values) == 2
    for bad in ("nokey", "=1,2", "a=1,,2", "a=1,1"):
        with pytest.raises(VsimError):
            parse_axis(bad)


def test_summaries_flatten_to_scalar_columns() -> None:
    flat = flatten_summary({"scenario": "x", "energy_kwh": 1.5, "sla": {"slav": 0.1},
                            "availability": {"rto_s": {"p95": None}, "groups": [1, 2]},
                            "flag": True, "migrations": 3})
    assert flat.keys() == {"energy_kwh", "sla.slav", "availability.rto_s.p95", "migrations"}
    assert flat["sla.slav"] == 0.1 and flat["availability.rto_s.p95"] != flat[
        "availability.rto_s.p95"]  # NaN
