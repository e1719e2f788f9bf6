"""The run report: aggregations against hand-computed values; the page's sections; offline use."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from vsim.report import (
    build_report,
    host_energy_kwh,
    host_util_heatmap,
    ready_quantiles_over_time,
    vm_ready_fraction,
    write_report,
)
from vsim.report.formatting import format_clock, format_duration, format_value, summary_rows

GHZ = 1e9
PERIOD = 300.0


def _vms(rows: list[tuple[float, int, int, float, float]]) -> pd.DataFrame:
    """VM rows from (time_s, vm, host, demand GHz, alloc GHz) with the recorder's ready fraction."""
    frame = pd.DataFrame(rows, columns=["time_s", "vm", "host", "d", "a"])
    demand, alloc = frame.pop("d") * GHZ, frame.pop("a") * GHZ
    frame["state"] = pd.Categorical(
        np.where(frame["host"] >= 0, "running", "queued"),
        categories=["queued", "starting", "running", "done"],
    )
    frame["cpu_demand_hz"] = demand
    frame["cpu_alloc_hz"] = alloc
    ready = np.divide(demand - alloc, demand, out=np.zeros(len(frame)), where=demand > 0)
    frame["cpu_ready_frac"] = ready.astype(np.float32)
    frame["mem_bytes"] = 2.0**31
    return frame


def _hosts(n_hosts: int, n_periods: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_hosts * n_periods
    util = rng.random(n).astype(np.float32)
    return pd.DataFrame(
        {
            "time_s": np.repeat(np.arange(n_periods) * PERIOD, n_hosts),
            "host": np.tile(np.arange(n_hosts, dtype=np.int32), n_periods),
            "state": pd.Categorical(np.full(n, "on"), categories=["off", "booting", "on"]),
            "on_frac": np.ones(n, dtype=np.float32),
            "cpu_util_frac": util,
            "cpu_demand_hz": util * 32 * GHZ,
            "cpu_alloc_hz": util * 32 * GHZ,
            "power_w": (100 + 100 * util).astype(np.float32),
            "energy_j": (100 + 100 * util.astype(np.float64)) * PERIOD,
            "vms": np.full(n, 3, dtype=np.int32),
            "mem_used_bytes": np.full(n, 2.0**34),
        }
    )


@pytest.fixture
def run() -> tuple[dict[str, pd.DataFrame], dict, dict]:
    """A small run with every table: 3 hosts, 3 VMs, 4 five-minute periods, 2 jobs, 3 events."""
    hosts = _hosts(3, 4)
    vms = _vms(
        [
            (t * PERIOD, vm, vm % 3, 1.0 + vm, 1.0 + vm - 0.1 * t)
            for t in range(4)
            for vm in range(3)
        ]
    )
    dc = hosts.groupby("time_s", as_index=False).agg(
        power_w=("power_w", "sum"),
        cpu_demand_hz=("cpu_demand_hz", "sum"),
        cpu_alloc_hz=("cpu_alloc_hz", "sum"),
        energy_j=("energy_j", "sum"),
    )
    dc["hosts_on"] = np.int32(3)
    dc["vms_running"] = np.int32(3)
    dc["vms_queued"] = np.int32(0)
    dc["cpu_capacity_hz"] = 3 * 32 * GHZ
    tables = {
        "datacenter": dc,
        "hosts": hosts,
        "vms": vms,
        "host_info": pd.DataFrame({"host": [0, 1, 2], "name": ["esx-a", "esx-b", "esx-c"]}),
        "vm_info": pd.DataFrame({"vm": [0, 1, 2], "name": ["web", "db", "batch"]}),
        "events": pd.DataFrame(
            {
                "time_s": [0.0, 60.0, 30.0],
                "kind": ["vm_start", "migration", "vm_start"],
                "subject": ["vm 0", "vm 1", "vm 2"],
                "detail": ["", "host 0 -> host 1", ""],
            }
        ),
        "jobs": pd.DataFrame(
            {
                "job": [0, 1],
                "vm": [2, 2],
                "threads": [1, 1],
                "length_cycles": [1e12, 1e12],
                "submit_s": [0.0, 0.0],
                "start_s": [0.0, 100.0],
                "finish_s": [600.0, np.nan],
            }
        ),
        "migrations": pd.DataFrame(
            {
                "time_s": [300.0, 300.0],
                "vm": [0, 1],
                "duration_s": [8.7, 3.0],
                "downtime_s": [0.028, 0.0],
                "outcome": ["completed", "aborted"],
            }
        ),
    }
    summary = {
        "scenario": "tiny",
        "description": "three hosts",
        "seed": 7,
        "hosts": 3,
        "vms": 3,
        "sim_time_s": 1200.0,
        "period_s": PERIOD,
        "energy_kwh": 0.25,
        "energy_j": 0.25 * 3.6e6,
        "migrations": 1,
        "cpu_ready_frac_mean": 0.05,
        "cpu_ready_frac_p95": 0.12,
        "sla": {"overall_violation_frac": 0.015},
        "hosts_on_mean": 3.0,
        "vms_unplaced": 0,
        "jobs": {"completed": 1, "total": 2, "makespan_s": 600.0, "mean_completion_s": 600.0},
        "wall_time_s": 1.5,
        "maintenance": [{"name": "rack-a", "vms": 1, "migrations": 1, "drained_s": 8.7,
                         "predicted_ram_over_bandwidth_s": 8.6, "worst_downtime_s": 0.028,
                         "unplaced": 0}],
    }
    meta = {
        "vsim_version": "0.1.0",
        "git_revision": "0123456789abcdef",
        "seed": 7,
        "wall_time_s": 1.5,
        "peak_memory_bytes": 2.0**28,
        "started_at": "2025-03-01T12:00:00Z",
    }
    return tables, summary, meta


SECTIONS = {  # table -> (section id, figure div ids drawn from it)
    "datacenter": ("sec-datacenter", ["fig-dc-power", "fig-dc-cpu", "fig-dc-vms"]),
    "hosts": ("sec-heatmap", ["fig-host-heatmap", "fig-host-energy"]),
    "vms": ("sec-ready", ["fig-ready-hist", "fig-ready-time"]),
    "jobs": ("sec-jobs", ["fig-job-times"]),
    "migrations": ("sec-migrations", ["fig-migration-time", "fig-migration-downtime"]),
    "events": ("sec-events", []),
}


def _plotlyjs() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _without_plotlyjs(page: str) -> str:
    assert page.count(_plotlyjs()) == 1
    return page.replace(_plotlyjs(), "")


# --- aggregations -------------------------------------------------------------------------------


def test_vm_ready_fraction_matches_hand_computed_values() -> None:
    vms = _vms(
        [
            # VM 0 demands 2 GHz and gets 1.5 GHz, then 2 GHz:
            # ready = ((2 − 1.5) + (2 − 2)) / (2 + 2) = 0.5 / 4 = 0.125.
            (0.0, 0, 0, 2.0, 1.5),
            (300.0, 0, 0, 2.0, 2.0),
            # VM 1 gets all it asks for: ready 0.
            (0.0, 1, 1, 1.0, 1.0),
            (300.0, 1, 1, 3.0, 3.0),
            # VM 2 waits for placement in the first period (host −1), which is not CPU ready,
            # then gets 0.5 of 1 GHz: ready = 0.5 / 1 = 0.5, not (1 + 0.5) / 2 = 0.75.
            (0.0, 2, -1, 1.0, 0.0),
            (300.0, 2, 0, 1.0, 0.5),
            # VM 3 never demands CPU: no ready fraction at all.
            (0.0, 3, 1, 0.0, 0.0),
            (300.0, 3, 1, 0.0, 0.0),
            # VM 7 (ids need not be dense) is 1 GHz short of 4, then 3 short of 4, then gets more
            # than it asked (only rounding should do that), which counts as 0 short, not −0.4:
            # ready = (1 + 3 + 0) / (4 + 4 + 4) = 1/3, not (1 + 3 − 0.4) / 12 = 0.3.
            (0.0, 7, 1, 4.0, 3.0),
            (300.0, 7, 1, 4.0, 1.0),
            (600.0, 7, 1, 4.0, 4.4),
        ]
    )
    ready = vm_ready_fraction(vms)
    assert list(ready.index) == [0, 1, 2, 7]
    assert ready[0] == pytest.approx(0.125)
    assert ready[1] == 0.0
    assert ready[2] == pytest.approx(0.5)
    assert ready[7] == pytest.approx(1 / 3)


def test_vm_ready_fraction_ignores_row_order() -> None:
    vms = _vms([(t * PERIOD, vm, 0, 2.0, 2.0 - 0.25 * vm * t) for t in range(3) for vm in range(4)])
    shuffled = vms.sample(frac=1.0, random_state=3)
    pd.testing.assert_series_equal(vm_ready_fraction(shuffled), vm_ready_fraction(vms))
    # VM 3 gets 2, 1.25, 0.5 of 2 GHz: ready = (0 + 0.75 + 1.5) / 6 = 0.375.
    assert vm_ready_fraction(vms)[3] == pytest.approx(0.375)


def test_ready_quantiles_over_time_match_hand_computed_values() -> None:
    # Period 0: four VMs on hosts with ready 0, 0.1, 0.2, 0.4 and one queued VM (left out).
    # Linear interpolation on the sorted values at position q·(n − 1):
    #   p50: 0.5 · 3 = 1.5  → 0.1 + 0.5 · (0.2 − 0.1) = 0.15
    #   p95: 0.95 · 3 = 2.85 → 0.2 + 0.85 · (0.4 − 0.2) = 0.37
    # Period 300: a single VM with ready 0.25 is every quantile; an idle VM (no demand) is left out.
    vms = _vms(
        [
            (0.0, 0, 0, 1.0, 1.0),
            (0.0, 1, 0, 1.0, 0.9),
            (0.0, 2, 1, 1.0, 0.8),
            (0.0, 3, 1, 1.0, 0.6),
            (0.0, 4, -1, 1.0, 0.0),
            (300.0, 0, 0, 2.0, 1.5),
            (300.0, 1, 0, 0.0, 0.0),
        ]
    )
    expected = pd.DataFrame(
        {"p50": [0.15, 0.25], "p95": [0.37, 0.25], "max": [0.4, 0.25]},
        index=pd.Index([0.0, 300.0], name="time_s"),
    )
    got = ready_quantiles_over_time(vms)
    pd.testing.assert_frame_equal(got, expected, atol=1e-6)  # cpu_ready_frac is float32
    # Rows out of time order, and the same figures recomputed from demand and alloc when the
    # recorded fraction is missing.
    pd.testing.assert_frame_equal(ready_quantiles_over_time(vms.iloc[::-1]), expected, atol=1e-6)
    pd.testing.assert_frame_equal(
        ready_quantiles_over_time(vms.drop(columns="cpu_ready_frac")), expected, atol=1e-12
    )


def test_ready_quantiles_agree_with_numpy_on_random_data() -> None:
    rng = np.random.default_rng(5)
    n_vms, n_periods = 97, 6
    vms = _vms(
        [
            (t * PERIOD, vm, 0, 1.0, float(rng.random()))
            for t in range(n_periods)
            for vm in range(n_vms)
        ]
    )
    got = ready_quantiles_over_time(vms, quantiles=(0.1, 0.5, 0.95))
    for t, group in vms.groupby("time_s"):
        values = group["cpu_ready_frac"].to_numpy(np.float64)
        assert got.loc[t, ["p10", "p50", "p95"]].to_numpy() == pytest.approx(
            np.quantile(values, [0.1, 0.5, 0.95])
        )
        assert got.loc[t, "max"] == pytest.approx(values.max())


def test_host_energy_is_summed_per_host_in_kwh() -> None:
    hosts = pd.DataFrame(
        {
            "time_s": [0.0, 0.0, 300.0, 300.0],
            "host": [5, 2, 5, 2],
            # host 5: 3.6 MJ + 1.8 MJ = 1.5 kWh; host 2: 0.36 MJ + NaN (not counted) = 0.1 kWh
            "energy_j": [3.6e6, 3.6e5, 1.8e6, np.nan],
        }
    )
    energy = host_energy_kwh(hosts)
    assert energy.to_dict() == pytest.approx({2: 0.1, 5: 1.5})


def test_heatmap_keeps_small_tables_whole_and_blanks_hosts_that_are_off() -> None:
    hosts = _hosts(3, 4)
    off = (hosts["host"] == 1) & (hosts["time_s"] == 2 * PERIOD)
    hosts.loc[off, ["on_frac", "cpu_util_frac"]] = 0.0
    data = host_util_heatmap(hosts.sample(frac=1.0, random_state=0))  # order must not matter
    assert data.z.shape == (3, 4)
    assert list(data.host_ids) == [0, 1, 2]
    assert list(data.time_s) == [0.0, 300.0, 600.0, 900.0]
    assert (data.host_step, data.periods_per_column) == (1.0, 1)
    expected = hosts.pivot(index="host", columns="time_s", values="cpu_util_frac").to_numpy(
        copy=True
    )
    expected[1, 2] = np.nan
    np.testing.assert_allclose(data.z, expected, rtol=1e-6)


def test_heatmap_of_a_large_run_is_cut_down_to_bounded_size() -> None:
    hosts = _hosts(5000, 288)
    data = host_util_heatmap(hosts)
    assert data.z.shape == (200, 288)
    assert data.hosts_total == 5000
    # Evenly spaced real hosts, first and last included, each row that host's own values.
    assert data.host_ids[0] == 0 and data.host_ids[-1] == 4999
    assert np.all(np.diff(data.host_ids) > 0)
    h = int(data.host_ids[57])
    own = hosts.loc[hosts["host"] == h, "cpu_util_frac"].to_numpy()
    np.testing.assert_allclose(data.z[57], own)


def test_heatmap_averages_consecutive_periods_beyond_the_column_limit() -> None:
    hosts = _hosts(4, 700)
    data = host_util_heatmap(hosts, max_hosts=200, max_columns=300)
    # ceil(700 / 300) = 3 periods per column, ceil(700 / 3) = 234 columns.
    assert data.periods_per_column == 3
    assert data.z.shape == (4, 234)
    first = hosts.loc[(hosts["host"] == 2) & (hosts["time_s"] < 3 * PERIOD), "cpu_util_frac"]
    assert data.z[2, 0] == pytest.approx(first.mean(), rel=1e-6)
    # The last column holds the single 700th period.
    last = hosts.loc[(hosts["host"] == 2) & (hosts["time_s"] == 699 * PERIOD), "cpu_util_frac"]
    assert data.z[2, -1] == pytest.approx(last.iloc[0], rel=1e-6)
    assert data.time_s[1] == 3 * PERIOD


# --- formatting -------------------------------------------------------------------------------


def test_durations_and_summary_values_are_readable() -> None:
    assert format_duration(0.25) == "0.25 s"
    assert format_duration(300.0) == "5 min"
    assert format_duration(250.0) == "4 min 10 s"
    assert format_duration(7500.0) == "2 h 05 min"
    assert format_duration(86400.0 * 30) == "30 d"
    assert format_clock(3725.5) == "1:02:05.500"
    assert format_clock(90000.0) == "1 d 1:00:00"
    assert format_value("cpu_ready_frac_p95", 0.0123) == "1.23 %"
    assert format_value("energy_kwh", 12.5) == "12.5 kWh"
    assert format_value("migrations", np.int64(12345)) == "12,345"
    rows = dict(
        summary_rows({"scenario": "x", "sla": {"overall_violation_frac": 0.5}, "period_s": 300.0})
    )
    assert rows == {"Reporting period": "5 min", "CPU demand not delivered (SLA violation)": "50 %"}


# --- the page ---------------------------------------------------------------------------------


def test_full_report_has_every_section_and_loads_nothing_from_the_network(run) -> None:
    tables, summary, meta = run
    page = build_report(tables, summary, meta)
    assert page.startswith("<!DOCTYPE html>")
    rest = _without_plotlyjs(page)  # plotly.js inlined exactly once
    # Outside plotly.js itself there is no URL at all, and nothing is loaded by src or href.
    assert "http://" not in rest and "https://" not in rest
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link\b", rest)
    for section, figures in SECTIONS.values():
        assert f'<section id="{section}">' in rest
        for fig in figures:
            assert f'id="{fig}"' in rest
    assert '<section id="sec-energy">' in rest
    # One completed and one aborted migration; the drain's row, with its times readable.
    assert "2 live migrations (1 completed, 1 aborted)" in rest and "worst 28 ms" in rest
    assert "<td>rack-a</td>" in rest and "8.7 s" in rest
    # Header and key figures, formatted.
    for text in (
        "<h1>tiny</h1>",
        "three hosts",
        "seed 7",
        "vsim 0.1.0",
        "run wall time 1.5 s",
        "<td>Energy</td><td>0.25 kWh</td>",
        "<td>CPU demand not delivered (SLA violation)</td><td>1.5 %</td>",
        "<td>Simulated time</td><td>20 min</td>",
    ):
        assert text in rest
    # Names from the info tables, jobs and events summarised.
    assert "(esx-" in rest
    assert "1 of 2 jobs finished" in rest
    assert "<td>vm_start</td><td>2</td>" in rest
    assert "host 0 -&gt; host 1" in rest


def test_the_page_is_the_same_from_one_build_to_the_next(run) -> None:
    tables, summary, meta = run
    assert build_report(tables, summary, meta) == build_report(tables, summary, meta)


@pytest.mark.parametrize("missing", sorted(SECTIONS))
def test_a_missing_table_drops_only_its_section(run, missing: str) -> None:
    tables, summary, meta = run
    del tables[missing]
    rest = _without_plotlyjs(build_report(tables, summary, meta))
    for table, (section, figures) in SECTIONS.items():
        present = table != missing
        assert (f'<section id="{section}">' in rest) is present
        for fig in figures:
            assert (f'id="{fig}"' in rest) is present


def test_missing_columns_and_empty_tables_skip_what_they_feed(run) -> None:
    tables, summary, meta = run
    tables["hosts"] = tables["hosts"].drop(columns="energy_j")
    tables["vms"] = tables["vms"].drop(columns=["cpu_alloc_hz", "vm"])
    tables["datacenter"] = tables["datacenter"][["time_s", "vms_running"]]
    tables["jobs"] = tables["jobs"].iloc[:0]
    tables["events"] = tables["events"].drop(columns="kind")
    rest = _without_plotlyjs(build_report(tables, summary, meta))
    assert 'id="fig-host-heatmap"' in rest and 'id="fig-host-energy"' not in rest
    # Per-VM averages need vm and alloc; the per-period quantiles use the recorded fraction.
    assert 'id="fig-ready-hist"' not in rest and 'id="fig-ready-time"' in rest
    assert (
        'id="fig-dc-vms"' in rest
        and 'id="fig-dc-power"' not in rest
        and 'id="fig-dc-cpu"' not in rest
    )
    assert '<section id="sec-jobs">' not in rest and '<section id="sec-events">' not in rest


def test_a_report_from_the_summary_alone_still_builds(run) -> None:
    _, summary, _ = run
    rest = _without_plotlyjs(build_report({}, {"scenario": "<b>bare</b>"}))
    assert "plotly-graph-div" not in rest
    assert "<h1>&lt;b&gt;bare&lt;/b&gt;</h1>" in rest  # names are escaped, never markup
    assert '<section id="sec-summary">' in _without_plotlyjs(build_report({}, summary))


def test_write_report_writes_the_page_in_one_piece(run, tmp_path) -> None:
    tables, summary, meta = run
    target = tmp_path / "run-1" / "report.html"
    write_report(target, tables, summary, meta)
    assert target.read_text(encoding="utf-8") == build_report(tables, summary, meta)
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_a_5000_host_run_gives_a_small_page() -> None:
    hosts = _hosts(5000, 288)
    n_vms = 2000
    rng = np.random.default_rng(2)
    demand = rng.random(n_vms * 288) * 2 * GHZ
    vms = pd.DataFrame(
        {
            "time_s": np.repeat(np.arange(288) * PERIOD, n_vms),
            "vm": np.tile(np.arange(n_vms, dtype=np.int32), 288),
            "host": np.tile(np.arange(n_vms, dtype=np.int32), 288),
            "cpu_demand_hz": demand,
            "cpu_alloc_hz": demand * 0.9,
            "cpu_ready_frac": np.full(n_vms * 288, 0.1, dtype=np.float32),
        }
    )
    page = build_report({"hosts": hosts, "vms": vms}, {"scenario": "big", "period_s": PERIOD})
    rest = _without_plotlyjs(page)
    assert len(page.encode()) < 6e6
    assert len(rest.encode()) < 1e6  # the figures themselves stay well under a megabyte
    assert "200 of 5,000 hosts" in rest
    assert 'id="fig-host-energy"' in rest and 'id="fig-ready-hist"' in rest


def test_migrations_under_way_count_each_copy_from_start_to_end() -> None:
    from vsim.report.figures import migrations_in_flight

    # Copies of [0, 10), [5, 15) and [10, 20) s: one, then two from 5 s; at 10 s one ends as the
    # next starts (the end counted first), two until 15 s, one until 20 s.
    series = migrations_in_flight(np.array([0.0, 5.0, 10.0]), np.array([10.0, 15.0, 20.0]),
                                  np.array(["maintenance"] * 3))
    t, n = series["maintenance"]
    assert t.tolist() == [0.0, 0.0, 5.0, 10.0, 10.0, 15.0, 20.0]
    assert n.tolist() == [0.0, 1.0, 2.0, 1.0, 2.0, 1.0, 0.0]
