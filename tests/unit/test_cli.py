"""The ``vsim`` command line: run, scenarios, schema; the result folder it writes."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import QUICKSTART, REPO, vsim_cli

import vsim

QUICK = ("--set", "duration=6h")  # six simulated hours instead of two days: a fraction of a second

TABLE_COLUMNS = {
    "hosts": ["time_s", "host", "state", "cpu_util_frac", "power_w"],
    "vms": ["time_s", "vm", "host", "cpu_demand_hz", "cpu_alloc_hz", "cpu_ready_frac"],
    "events": ["time_s", "kind", "subject", "detail"],
    "datacenter": ["time_s", "hosts_on", "power_w", "energy_j"],
    "host_info": ["host", "name", "cores", "core_hz", "ram_bytes", "power_idle_w", "power_max_w"],
    "vm_info": ["vm", "name", "group", "vcpus", "ram_bytes", "arrival_s", "start_s"],
}


def has_report_writer() -> bool:
    try:
        return hasattr(importlib.import_module("vsim.report"), "write_report")
    except ImportError:
        return False


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("cli") / "run"
    done = vsim_cli("run", "scenarios/quickstart.yaml", "--out", str(out),
                    "--set", "hosts.0.count=20", "--seed", "3", *QUICK, cwd=REPO)
    return out, done


def test_run_exits_0_and_prints_the_folder(quickstart_run) -> None:
    out, done = quickstart_run
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert "Traceback" not in done.stderr


def test_run_writes_the_resolved_scenario(quickstart_run) -> None:
    out, _ = quickstart_run
    saved = yaml.safe_load((out / "scenario.yaml").read_text())
    original = yaml.safe_load(QUICKSTART.read_text())
    assert saved["seed"] == 3  # --seed, not the file's 42
    assert original["seed"] == 42
    assert saved["hosts"][0]["count"] == 20  # the override
    assert original["hosts"][0]["count"] == 16
    assert saved["duration"] == "6h"
    assert saved["vms"] == original["vms"]


def test_run_writes_meta(quickstart_run) -> None:
    out, _ = quickstart_run
    meta = json.loads((out / "meta.json").read_text())
    assert meta["vsim_version"] == vsim.__version__
    assert meta["seed"] == 3
    assert 0 < meta["wall_time_s"] < 60
    assert isinstance(meta["peak_memory_bytes"], int) and meta["peak_memory_bytes"] > 1e6


def test_run_writes_the_summary(quickstart_run) -> None:
    out, _ = quickstart_run
    summary = json.loads((out / "summary.json").read_text())
    for key in ("hosts", "vms", "sim_time_s", "energy_kwh", "migrations", "cpu_ready_frac_mean",
                "wall_time_s"):
        assert key in summary
    assert summary["hosts"] == 20 + 8  # std overridden to 20, big 8
    assert summary["vms"] == 160 + 40 + 60 + 80
    assert summary["sim_time_s"] == 6 * 3600
    assert summary["migrations"] == 0
    assert summary["energy_kwh"] == pytest.approx(summary["energy_j"] / 3.6e6)
    assert 0 <= summary["cpu_ready_frac_mean"] <= 1
    assert 0 <= summary["sla"]["overall_violation_frac"] <= 1
    # Energy is below every host at full power for six hours (20 x 380 W, 8 x 540 W).
    assert 0 < summary["energy_kwh"] < (20 * 380 + 8 * 540) * 6 * 3600 / 3.6e6
    # ... and is what the hosts table adds up to.
    hosts = pd.read_parquet(out / "hosts.parquet")
    assert hosts["energy_j"].sum() == pytest.approx(summary["energy_j"], rel=1e-9)


def test_run_writes_the_tables(quickstart_run) -> None:
    out, _ = quickstart_run
    for name, columns in TABLE_COLUMNS.items():
        df = pd.read_parquet(out / f"{name}.parquet")
        missing = [c for c in columns if c not in df.columns]
        assert not missing, f"{name} lacks {missing}"
        assert len(df) > 0
    hosts = pd.read_parquet(out / "hosts.parquet")
    assert hosts["host"].nunique() == 28
    assert hosts["time_s"].nunique() == 6 * 3600 / 300  # one row per host per 5-minute period


def test_saved_tables_are_what_the_saved_scenario_reproduces(quickstart_run) -> None:
    out, _ = quickstart_run
    again = vsim.run(vsim.load_scenario(out / "scenario.yaml"))  # its seed is the saved 3
    for name in ("hosts", "vms", "datacenter"):
        saved = pd.read_parquet(out / f"{name}.parquet")
        pd.testing.assert_frame_equal(saved, again.tables[name].reset_index(drop=True),
                                      check_categorical=False, check_dtype=False)


def test_run_writes_a_report(quickstart_run) -> None:
    if not has_report_writer():
        pytest.skip("vsim.report.write_report is not there yet")
    out, _ = quickstart_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")


def test_no_report_flag(tmp_path: Path) -> None:
    done = vsim_cli("run", str(QUICKSTART), "--out", "r", "--no-report", "-q", *QUICK,
                    "--set", "hosts.0.count=20", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "r" / "report.html").exists()
    assert (tmp_path / "r" / "summary.json").exists()


def test_named_list_override(tmp_path: Path) -> None:
    done = vsim_cli("run", str(QUICKSTART), "--out", "r", "--no-report", "-q", *QUICK,
                    "--set", "vms.web.count=10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["vms"] == 10 + 40 + 60 + 80  # web overridden from 160 to 10
    saved = yaml.safe_load((tmp_path / "r" / "scenario.yaml").read_text())
    assert [g["count"] for g in saved["vms"]] == [10, 40, 60, 80]


def test_without_out_the_folder_goes_under_results(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(
        "name: tiny\nduration: 1 h\n"
        "hosts: [{name: h, cores: 2, core_speed: 1 GHz, ram: 4 GiB}]\n"
        "vms: [{name: v, count: 1, ram: 1 GiB}]\n", encoding="utf-8")
    done = vsim_cli("run", "tiny.yaml", "--seed", "5", "--no-report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert folder.parent == Path("results") / "tiny"
    assert (tmp_path / folder / "summary.json").exists()
    # A second run gets a new folder, never the first one's.
    second = vsim_cli("run", "tiny.yaml", "--seed", "5", "--no-report", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert Path(second.stdout.strip()) != folder
    assert len(list((tmp_path / "results" / "tiny").iterdir())) == 2


def test_out_folder_that_exists_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("mine")
    done = vsim_cli("run", str(QUICKSTART), "--out", "r", "--no-report", *QUICK, cwd=tmp_path)
    assert done.returncode == 2
    assert "already exists" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_an_existing_out_folder_is_refused_before_the_run_not_after(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    # Ten years of the quickstart would take many minutes: the refusal must come first.
    done = vsim_cli("run", str(QUICKSTART), "--out", "r", "--set", "duration=3650 d", cwd=tmp_path,
                    timeout=60)
    assert done.returncode == 2 and "already exists" in done.stderr


def test_a_shipped_scenario_by_name(tmp_path: Path) -> None:
    done = vsim_cli("run", "quickstart", "--out", "r", "--no-report", "-q", *QUICK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["scenario"] == "quickstart"


def test_scenarios_lists_quickstart_with_its_description(tmp_path: Path) -> None:
    done = vsim_cli("scenarios", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    description = yaml.safe_load(QUICKSTART.read_text())["description"].splitlines()[0]
    lines = [line for line in done.stdout.splitlines() if line.split()[0] == "quickstart"]
    assert len(lines) == 1
    assert description in lines[0]


def test_scenarios_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\ndescription: first one\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("name: b\ndescription: |\n  second\n  more\n")
    done = vsim_cli("scenarios", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line.split(None, 1) for line in done.stdout.splitlines()]
    assert rows == [["a", "first one"], ["sub/b", "second"]]


def test_schema_is_json_with_hosts_and_vms(tmp_path: Path) -> None:
    done = vsim_cli("schema", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert {"hosts", "vms", "duration", "placement"} <= set(schema["properties"])
    assert "hosts" in schema["required"]


def test_a_failing_save_leaves_no_folder(tmp_path: Path) -> None:
    # The folder appears complete or not at all: a writer that fails half-way removes it all.
    result = vsim.run(vsim.load_scenario(QUICKSTART, ["duration=1h", "vms.web.count=4"]), seed=1)

    def broken(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        result.save(tmp_path / "out", extra={"report.html": broken})
    assert list(tmp_path.iterdir()) == []
    # The same result saves fine afterwards, into the folder it could not write before.
    folder = result.save(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (folder / "summary.json").exists() and (folder / "meta.json").exists()
