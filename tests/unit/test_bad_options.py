"""Bad command-line options and output paths through the real command line: one message, exit
status 2, no traceback, and nothing written where the run would have gone."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, vsim_cli

QUICKSTART = str(REPO / "scenarios" / "quickstart.yaml")


def _refused(done, *parts: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for part in parts:
        assert part in done.stderr, f"{part!r} not in {done.stderr!r}"


@pytest.mark.parametrize("command", [("run", QUICKSTART),
                                     ("sweep", QUICKSTART, "--axis", "hosts.std.count=16,17")])
def test_a_negative_seed_is_refused(tmp_path: Path, command: tuple[str, ...]) -> None:
    done = vsim_cli(*command, "--seed", "-5", "--out", "out", cwd=tmp_path, timeout=60)
    _refused(done, "--seed", "-5 is not in the range x>=0")
    assert list(tmp_path.iterdir()) == []


def test_an_out_inside_a_file_is_refused_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    done = vsim_cli("run", QUICKSTART, "--out", "notes.txt/run", cwd=tmp_path, timeout=60)
    _refused(done, "--out notes.txt/run:", "is a file, not a folder; choose another --out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_out_where_nothing_can_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    # /proc takes no new folders, even from root (for whom permission bits would not tell).
    done = vsim_cli("run", QUICKSTART, "--out", "/proc/vsim-run", cwd=tmp_path, timeout=60)
    _refused(done, "--out /proc/vsim-run: cannot write in /proc", "choose another --out")
    assert not Path("/proc/vsim-run").exists()


def test_a_scheduler_that_is_no_address_is_named(tmp_path: Path) -> None:
    done = vsim_cli("sweep", QUICKSTART, "--axis", "hosts.std.count=16,17", "--scheduler",
                    "notaurl", "--out", "out", cwd=tmp_path, timeout=120)
    _refused(done, "cannot reach the Dask scheduler at notaurl", "leave out --scheduler")
    assert not (tmp_path / "out").exists()


def test_a_measured_table_that_is_no_parquet_is_named(tmp_path: Path) -> None:
    (tmp_path / "measured").mkdir()
    (tmp_path / "measured" / "cpu.parquet").write_text("junk\n")
    for command in (("calibrate", "measured", "--out", "cal.yaml"),
                    ("validate", "cpu", "--measured", "measured", "--out", "out")):
        done = vsim_cli(*command, cwd=tmp_path, timeout=120)
        _refused(done, "cpu.parquet: not a readable Parquet table", "vsim kvm measure cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["measured"]


def test_import_into_a_broken_scenario_names_it_and_writes_nothing(tmp_path: Path) -> None:
    text = Path(QUICKSTART).read_text().replace("core_speed:", "core_sped:", 1)
    (tmp_path / "base.yaml").write_text(text)
    done = vsim_cli("import", str(REPO / "tests" / "data" / "inventory" / "vinfo.csv"),
                    "--into", "base.yaml", "-o", "vms.yaml", cwd=tmp_path, timeout=60)
    _refused(done, "base.yaml", "unknown field 'core_sped'", "did you mean 'core_speed'?")
    assert not (tmp_path / "vms.yaml").exists()
