"""PlanetLab reader: the shipped compact file, the raw folders, their agreement and their errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from vsim.errors import ScenarioError
from vsim.traces import (
    PLANETLAB_DAYS,
    DemandTable,
    default_planetlab_path,
    list_planetlab_days,
    read_planetlab,
)
from vsim.traces import planetlab as planetlab_module

REPO = Path(__file__).resolve().parents[2]
RAW_ROOT = REPO.parent / "shared" / "data" / "planetlab"
needs_raw = pytest.mark.skipif(
    not RAW_ROOT.is_dir(),
    reason=f"raw PlanetLab folders not present at {RAW_ROOT} (only the compact file is shipped)",
)

# Files per day, from the data's README (shared/data/planetlab/README.md), total 11,746.
README_COUNTS = {
    "20110303": 1052,
    "20110306": 898,
    "20110309": 1061,
    "20110322": 1516,
    "20110325": 1078,
    "20110403": 1463,
    "20110409": 1358,
    "20110411": 1233,
    "20110412": 1054,
    "20110420": 1033,
}


def _load_build_script():
    spec = importlib.util.spec_from_file_location(
        "planetlab_build", REPO / "workloads" / "planetlab" / "build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_file(folder: Path, name: str, lines: list[str], end: str = "\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes((end.join(lines) + end).encode("ascii"))
    return path


def _good_lines(seed: int) -> list[str]:
    values = np.random.default_rng(seed).integers(0, 101, size=288)
    return [str(v) for v in values]


@pytest.fixture
def raw_root(tmp_path: Path) -> Path:
    """A small raw root: two days, three and two files (written out of name order)."""
    root = tmp_path / "raw"
    for i, name in enumerate(["node_c", "node_a", "node_b"]):
        _write_file(root / "20990101", name, _good_lines(i))
    for i, name in enumerate(["z_host", "a_host"]):
        _write_file(root / "20990102", name, _good_lines(10 + i))
    return root


# --- the shipped compact file ----------------------------------------------------------------


def test_default_path_is_the_shipped_file():
    assert default_planetlab_path() == REPO / "workloads" / "planetlab" / "planetlab.npz"
    assert default_planetlab_path().is_file()


def test_compact_file_has_the_readme_counts():
    days = list_planetlab_days()
    assert dict(days) == README_COUNTS
    assert sum(n for _, n in days) == 11746
    assert tuple(d for d, _ in days) == PLANETLAB_DAYS


def test_compact_loads_without_pickle_and_has_the_documented_layout():
    with np.load(default_planetlab_path(), allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            [f"cpu_{d}" for d in PLANETLAB_DAYS] + [f"names_{d}" for d in PLANETLAB_DAYS]
        )
        cpu, names = npz["cpu_20110303"], npz["names_20110303"]
    assert cpu.dtype == np.uint8 and cpu.shape == (1052, 288)
    assert names.dtype.kind == "U" and names.shape == (1052,)


@pytest.mark.parametrize("day", PLANETLAB_DAYS)
def test_compact_day_table(day):
    table = read_planetlab(day)
    assert isinstance(table, DemandTable)
    assert table.cpu.shape == (README_COUNTS[day], 288)
    assert table.cpu.dtype == np.float64
    assert table.step_s == 300.0 and table.duration_s == 86400.0
    assert table.source == f"planetlab:{day}"
    assert list(table.names) == sorted(table.names) and len(set(table.names)) == len(table.names)
    # Integer percentages divided by 100: every value is k/100 with 0 <= k <= 100.
    percent = table.cpu.astype(np.float64) * 100
    assert np.allclose(percent, np.round(percent), atol=1e-4)
    assert table.cpu.min() >= 0.0 and table.cpu.max() <= 1.0
    assert (table.start_s == 0).all() and np.isinf(table.lifetime_s).all()


def test_known_values_of_two_files():
    # 20110303/146-179_surfsnel_dsl_internl_net_colostate_557 (first file by name), lines 1-8:
    # 24 34 29 26 26 21 18 25.
    day1 = read_planetlab("20110303")
    assert day1.names[0] == "146-179_surfsnel_dsl_internl_net_colostate_557"
    expected = np.array([24, 34, 29, 26, 26, 21, 18, 25], dtype=np.float64) / np.float64(100)
    np.testing.assert_array_equal(day1.cpu[0, :8], expected)
    # 20110420/vn4_cse_wustl_edu_princeton_codeen (last file by name), lines 286-288: 6 4 13.
    day10 = read_planetlab("20110420")
    assert day10.names[-1] == "vn4_cse_wustl_edu_princeton_codeen"
    expected = np.array([6, 4, 13], dtype=np.float64) / np.float64(100)
    np.testing.assert_array_equal(day10.cpu[-1, -3:], expected)


def test_day_statistics_match_the_published_characteristics():
    # Mean and standard deviation of CPU utilisation (%) per day over all VMs and samples, as in
    # the workload table of Beloglazov & Buyya (CCPE 2012), which used these same traces.
    published = {
        "20110303": (12.31, 17.09),
        "20110306": (11.44, 16.83),
        "20110309": (10.70, 15.57),
        "20110322": (9.26, 12.78),
        "20110325": (10.56, 14.14),
        "20110403": (12.39, 16.55),
        "20110409": (11.12, 15.09),
        "20110411": (11.56, 15.07),
        "20110412": (11.54, 15.15),
        "20110420": (10.43, 15.21),
    }
    for day, (mean, sd) in published.items():
        percent = read_planetlab(day).cpu.astype(np.float64) * 100
        assert round(percent.mean(), 2) == pytest.approx(mean, abs=1e-9), day
        assert round(percent.std(), 2) == pytest.approx(sd, abs=1e-9), day


# --- raw folders and agreement with the compact file ------------------------------------------


@needs_raw
def test_raw_and_compact_give_identical_tables():
    # Three days keep this quick (the build script compares all ten when it writes the file):
    # the first, the largest (1516 files) and the last.
    for day in ("20110303", "20110322", "20110420"):
        raw, compact = read_planetlab(day, RAW_ROOT), read_planetlab(day)
        assert raw.names == compact.names, day
        np.testing.assert_array_equal(raw.cpu, compact.cpu)
    # A day folder given directly reads the same as through its root.
    direct = read_planetlab("20110303", RAW_ROOT / "20110303")
    np.testing.assert_array_equal(direct.cpu, read_planetlab("20110303").cpu)


@needs_raw
def test_raw_listing_matches_readme():
    assert dict(list_planetlab_days(RAW_ROOT)) == README_COUNTS
    assert list_planetlab_days(RAW_ROOT / "20110306") == [("20110306", 898)]


def test_raw_day_sorted_by_name_and_divided_by_100(raw_root):
    table = read_planetlab("20990101", raw_root)
    assert table.names == ("node_a", "node_b", "node_c")
    # node_a was written from seed 1, node_b from 2, node_c from 0 (see the fixture).
    for row, seed in enumerate([1, 2, 0]):
        expected = np.array(_good_lines(seed), dtype=np.float64) / np.float64(100)
        np.testing.assert_array_equal(table.cpu[row], expected)
    assert list_planetlab_days(raw_root) == [("20990101", 3), ("20990102", 2)]


def test_crlf_missing_final_newline_and_leading_zeros_are_accepted(tmp_path):
    lines = _good_lines(5)
    _write_file(tmp_path / "20990101", "crlf", lines, end="\r\n")
    (tmp_path / "20990101" / "no_final_newline").write_text("\n".join(lines))
    _write_file(tmp_path / "20990101", "zeros", ["007", *lines[1:]])
    table = read_planetlab("20990101", tmp_path)
    expected = np.array(lines, dtype=np.float64) / np.float64(100)
    np.testing.assert_array_equal(table.cpu[0], expected)
    np.testing.assert_array_equal(table.cpu[1], expected)
    assert table.cpu[2, 0] == np.float64(0.07)
    np.testing.assert_array_equal(table.cpu[2, 1:], expected[1:])


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (lambda v: [*v[:4], "abc", *v[5:]], 5, "'abc' is not an integer"),
        (lambda v: [*v[:6], "101", *v[7:]], 7, "'101' is not an integer"),
        (lambda v: [*v[:2], "", *v[3:]], 3, "an empty line"),
        (lambda v: [*v[:9], "4 2", *v[10:]], 10, "'4 2'"),
        (lambda v: v[:287], 288, "ends after 287 lines"),
        (lambda v: [*v, "5"], 289, "289 lines"),
    ],
)
def test_bad_file_names_file_and_line(raw_root, edit, line, words):
    bad = _write_file(raw_root / "20990101", "node_bad", edit(_good_lines(3)))
    with pytest.raises(ScenarioError) as info:
        read_planetlab("20990101", raw_root)
    problem = info.value.problems[0]
    assert info.value.file == str(bad)
    assert problem.line == line
    assert words in problem.message
    assert f"{bad}:{line}:" in str(info.value)


def test_empty_file_is_reported_at_line_1(raw_root):
    (raw_root / "20990102" / "empty").write_bytes(b"")
    with pytest.raises(ScenarioError) as info:
        read_planetlab("20990102", raw_root)
    assert info.value.file.endswith("empty") and info.value.problems[0].line == 1


def test_missing_path(tmp_path):
    with pytest.raises(ScenarioError) as info:
        read_planetlab("20110303", tmp_path / "nowhere")
    assert info.value.file == str(tmp_path / "nowhere")
    assert "not found" in str(info.value)


def test_missing_default_file_says_how_to_rebuild(monkeypatch, tmp_path):
    monkeypatch.setattr(planetlab_module, "default_planetlab_path", lambda: tmp_path / "x.npz")
    with pytest.raises(ScenarioError, match="make workloads"):
        read_planetlab("20110303")


def test_unknown_day_lists_the_available_ones(raw_root):
    with pytest.raises(ScenarioError) as info:
        read_planetlab("20990105", raw_root)
    assert "20990101, 20990102" in str(info.value)
    with pytest.raises(ScenarioError) as info:
        read_planetlab("20110304")
    assert info.value.file == str(default_planetlab_path())
    assert ", ".join(PLANETLAB_DAYS) in str(info.value)


def test_day_folder_with_another_name(raw_root):
    with pytest.raises(ScenarioError, match="pass day='20990101'"):
        read_planetlab("20990102", raw_root / "20990101")


def test_empty_day_folder(tmp_path):
    (tmp_path / "20990101").mkdir()
    with pytest.raises(ScenarioError, match="no trace files"):
        read_planetlab("20990101", tmp_path)


def test_file_that_is_not_an_npz(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text("1\n2\n")
    with pytest.raises(ScenarioError, match=r"not a compact PlanetLab file"):
        read_planetlab("20110303", path)


# --- the build script -------------------------------------------------------------------------


def test_build_round_trips_and_is_reproducible(raw_root, tmp_path, capsys):
    build = _load_build_script()
    out = tmp_path / "out" / "small.npz"
    assert build.main([str(raw_root), "--out", str(out)]) == 0
    assert "2 days, 5 VMs" in capsys.readouterr().out
    first_bytes = out.read_bytes()
    for day in ("20990101", "20990102"):
        compact, raw = read_planetlab(day, out), read_planetlab(day, raw_root)
        assert compact.names == raw.names
        np.testing.assert_array_equal(compact.cpu, raw.cpu)
    # The same input gives the same bytes (fixed member timestamps).
    assert build.main([str(raw_root), "--out", str(out)]) == 0
    assert out.read_bytes() == first_bytes
    # A compact file without the day asked for lists the days it has.
    with pytest.raises(ScenarioError, match="it holds 20990101, 20990102"):
        read_planetlab("20110303", out)


def test_build_stops_at_a_bad_file_and_keeps_the_old_output(raw_root, tmp_path, capsys):
    build = _load_build_script()
    out = tmp_path / "small.npz"
    out.write_bytes(b"previous")
    lines = _good_lines(4)
    lines[41] = "x"
    bad = _write_file(raw_root / "20990102", "broken", lines)
    assert build.main([str(raw_root), "--out", str(out)]) == 2
    assert f"{bad}:42:" in capsys.readouterr().err
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".planetlab-")] == []
