"""``vsim sweep --executor dask``: on a real scheduler and two workers started as processes on
loopback, and on a local cluster the sweep starts itself; the index equals the local executor's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, vsim_cli

from vsim.experiments.executors import DaskExecutor, ExecutorError

distributed = pytest.importorskip("distributed", reason="the dask executor needs 'distributed'")

TINY = """\
name: tiny
seed: 5
duration: 2 h
hosts:
  - {name: h, count: 4, cores: 8, core_speed: 2 GHz, ram: 64 GiB, power: {idle: 100 W, max: 250 W}}
vms:
  - {name: web, count: 6, vcpus: 2, ram: 4 GiB, workload: w}
workloads:
  w: {kind: synthetic, mean: 40%, noise: {sd: 10%, correlation: 0.5}}
placement: {policy: first-fit}
"""

GRID = ("--axis", "hosts.0.count=4,6", "--axis", "placement.policy=first-fit,worst-fit",
        "--replications", "2", "-q")


def _index(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "index.parquet").drop(columns=["wall_time_s"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scheduler and two single-threaded workers as separate processes; yields its address."""
    where = tmp_path_factory.mktemp("dask")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    address_file = where / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []
    log = (where / "dask.log").open("wb")
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(address_file)],
            cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 30
        while not address_file.exists() or not address_file.read_text().strip():
            assert procs[0].poll() is None, (where / "dask.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but give it a moment to be complete
        address = json.loads(address_file.read_text())["address"]
        for n in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1",
                 "--nthreads", "1", "--no-dashboard", "--name", f"w{n}",
                 "--local-directory", str(where / f"w{n}")],
                cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT))
        with distributed.Client(address, timeout="20s") as client:
            client.wait_for_workers(2, timeout=40)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def test_a_dask_cluster_gives_the_local_executors_index(tmp_path: Path, cluster: str) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY, encoding="utf-8")
    local = vsim_cli("sweep", "tiny.yaml", *GRID, "--workers", "1", "--out", "local", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    dask = vsim_cli("sweep", "tiny.yaml", *GRID, "--executor", "dask", "--scheduler", cluster,
                    "--out", "dask", cwd=tmp_path)
    assert dask.returncode == 0, dask.stderr
    assert cluster in dask.stderr and "8 done now" in dask.stderr
    assert dask.stdout.strip().splitlines()[-1] == "dask"
    index = _index(tmp_path / "dask")
    assert len(index) == 8 and set(index["status"]) == {"ok"}
    pd.testing.assert_frame_equal(index, _index(tmp_path / "local"))

    # Resuming on the cluster runs nothing more.
    again = vsim_cli("sweep", "tiny.yaml", *GRID, "--scheduler", cluster, "--out", "dask",
                     cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 done now, 8 skipped" in again.stderr


def test_without_a_scheduler_the_sweep_starts_a_local_cluster(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY, encoding="utf-8")
    done = vsim_cli("sweep", "tiny.yaml", "--axis", "hosts.0.count=4,6", "--executor", "dask",
                    "--workers", "2", "--out", "sw", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "local Dask cluster" in done.stderr
    index = _index(tmp_path / "sw")
    assert list(index["hosts.0.count"]) == ["4", "6"]
    assert index["energy_kwh"].iloc[1] > index["energy_kwh"].iloc[0]


def test_an_unreachable_scheduler_is_one_clear_error() -> None:
    with pytest.raises(ExecutorError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        DaskExecutor("tcp://127.0.0.1:9", connect_timeout_s=1.0)
