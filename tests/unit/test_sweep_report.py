"""A sweep folder aggregated: confidence intervals, comparisons, the HTML report, the command.

The statistics are checked on small hand-made index tables whose answers are worked out by hand;
the report and ``vsim sweep-report`` on a sweep folder built here from real runs, laid out as
``vsim sweep`` lays it out (sweep.json, runs/<run-id>/, index.parquet).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import vsim_cli

import vsim
from vsim.errors import VsimError
from vsim.experiments.aggregate import (
    aggregate,
    compare,
    default_metrics,
    interval,
    load_index,
)
from vsim.report.sweep import sweep_table, write_sweep_report

T_975_2 = 4.302652729911275  # t quantile at 0.975 with 2 degrees of freedom (tables)


def index_of(points: dict[str, dict[str, list[float]]], failed: dict[str, int] | None = None,
             axis: str = "policy") -> pd.DataFrame:
    """An index: for each axis value, its runs' figures (replication r is the r-th value), plus
    ``failed[value]`` failed runs whose figures are nonsense that must not count."""
    rows = []
    for point, (value, figures) in enumerate(points.items()):
        n = len(next(iter(figures.values())))
        for r in range(n):
            rows.append({"run_id": f"p{point:03d}-r{r:02d}", "point": point, "replication": r,
                         "seed": 100 + r, "status": "ok", "error": None, "wall_time_s": 0.1,
                         axis: value, **{k: v[r] for k, v in figures.items()}})
        for extra in range((failed or {}).get(value, 0)):
            r = n + extra
            rows.append({"run_id": f"p{point:03d}-r{r:02d}", "point": point, "replication": r,
                         "seed": 100 + r, "status": "failed", "error": "boom",
                         "wall_time_s": 0.1, axis: value,
                         **dict.fromkeys(figures, 1e9)})
    return pd.DataFrame(rows)


def row(agg: pd.DataFrame, metric: str, **axes: str) -> pd.Series:
    mask = agg["metric"] == metric
    for key, value in axes.items():
        mask &= agg[key] == value
    (found,) = np.flatnonzero(mask.to_numpy())
    return agg.iloc[found]


# --- intervals ----------------------------------------------------------------------------------


def test_t_interval_of_1_2_3() -> None:
    n, mean, sd, lo, hi = interval([1.0, 2.0, 3.0])
    half = T_975_2 * 1.0 / math.sqrt(3)  # = 2.4841
    assert (n, mean, sd) == (3, 2.0, 1.0)
    assert lo == pytest.approx(2 - half, abs=1e-9) and hi == pytest.approx(2 + half, abs=1e-9)
    assert half == pytest.approx(2.4841, abs=1e-4)


def test_bootstrap_interval_of_1_2_3() -> None:
    # A resample of three draws from {1, 2, 3} has the mean 1 with probability 1/27 (3.7 %) and
    # at most 4/3 with probability 4/27 (14.8 %); symmetrically at the top. So the 2.5 % and
    # 97.5 % percentiles of the resampled means are 1 and 3, and the 10 % and 90 % ones 4/3 and
    # 8/3, far enough from the steps that 9,999 resamples cannot miss them.
    assert interval([1, 2, 3], 0.95, "bootstrap")[3:] == pytest.approx((1.0, 3.0))
    assert interval([1, 2, 3], 0.80, "bootstrap")[3:] == pytest.approx((4 / 3, 8 / 3))
    assert interval([1, 5, 2, 8], 0.9, "bootstrap", seed=7) == interval([1, 5, 2, 8], 0.9,
                                                                        "bootstrap", seed=7)


def test_too_few_values_and_no_spread() -> None:
    assert np.isnan(interval([4.0])[3:]).all()  # one run says nothing about the spread
    assert interval([4.0])[:2] == (1, 4.0)
    assert interval([])[0] == 0
    assert interval([5.0, 5.0, 5.0]) == (3, 5.0, 0.0, 5.0, 5.0)
    assert interval([5.0, 5.0], method="bootstrap") == (2, 5.0, 0.0, 5.0, 5.0)


# --- aggregate ----------------------------------------------------------------------------------


def test_aggregate_per_point_with_failed_runs_left_out() -> None:
    index = index_of({"first-fit": {"energy_kwh": [1.0, 2.0, 3.0]},
                      "best-fit": {"energy_kwh": [10.0, 10.0, 10.0]}}, failed={"best-fit": 2})
    agg = aggregate(index, ["policy"])
    assert list(agg["policy"]) == ["first-fit", "best-fit"]  # the sweep's order, not sorted
    ff, bf = row(agg, "energy_kwh", policy="first-fit"), row(agg, "energy_kwh", policy="best-fit")
    assert (ff["n"], ff["ok"], ff["failed"], ff["mean"], ff["sd"]) == (3, 3, 0, 2.0, 1.0)
    assert ff["ci_high"] - ff["mean"] == pytest.approx(T_975_2 / math.sqrt(3))
    # The two failed runs carry 1e9: counted as failed, never averaged in.
    assert (bf["n"], bf["ok"], bf["failed"], bf["mean"]) == (3, 3, 2, 10.0)
    assert (bf["ci_low"], bf["ci_high"]) == (10.0, 10.0)
    assert agg.attrs["confidence"] == 0.95 and agg.attrs["method"] == "t"


def test_aggregate_is_nan_safe() -> None:
    index = index_of({"a": {"energy_kwh": [1.0, 2.0, 3.0],
                            "availability.rto_s.p95": [np.nan, 30.0, 50.0],
                            "jobs.makespan_s": [np.nan, np.nan, np.nan]},
                      "b": {"energy_kwh": [2.0, np.inf, 4.0],
                            "availability.rto_s.p95": [10.0, 10.0, 40.0],
                            "jobs.makespan_s": [5.0, np.nan, np.nan]}})
    agg = aggregate(index, ["policy"], metrics=["energy_kwh", "availability.rto_s.p95",
                                                "jobs.makespan_s"])
    rto = row(agg, "availability.rto_s.p95", policy="a")
    assert (rto["n"], rto["ok"], rto["mean"]) == (2, 3, 40.0)  # the run without outages left out
    assert row(agg, "energy_kwh", policy="b")[["n", "mean"]].tolist() == [2, 3.0]  # inf: undefined
    none = row(agg, "jobs.makespan_s", policy="a")
    assert none["n"] == 0 and np.isnan(none["mean"]) and np.isnan(none["ci_low"])
    one = row(agg, "jobs.makespan_s", policy="b")
    assert one["n"] == 1 and one["mean"] == 5.0 and np.isnan(one["ci_low"])
    # The text table says when a mean stands on fewer runs than succeeded.
    assert "40 s ± " in sweep_table(agg) and "(n=2)" in sweep_table(agg)


def test_point_where_every_run_failed_still_appears() -> None:
    index = index_of({"a": {"energy_kwh": [1.0, 2.0]}, "b": {"energy_kwh": []}}, failed={"b": 2})
    b = row(aggregate(index, ["policy"], metrics=["energy_kwh"]), "energy_kwh", policy="b")
    assert (b["n"], b["ok"], b["failed"]) == (0, 0, 2) and np.isnan(b["mean"])


def test_default_metrics() -> None:
    index = index_of({"a": {"energy_kwh": [1.0, 2.0], "migrations": [0, 0], "hosts": [4, 4],
                            "engine.events": [10, 12], "host_shutdowns": [1, 3],
                            "vms_destroyed": [0, 0], "semantics": ["x", "x"]},
                      "b": {"energy_kwh": [3.0, 4.0], "migrations": [0, 0], "hosts": [6, 6],
                            "engine.events": [11, 13], "host_shutdowns": [2, 2],
                            "vms_destroyed": [0, 0], "semantics": ["x", "x"]}})
    # Headline figures even when constant (migrations), then what varies; not the scenario's
    # size, the engine's effort, the run's wall time, constants or text.
    assert default_metrics(index, ["policy"]) == ["energy_kwh", "migrations", "host_shutdowns"]


def test_unknown_metric_names_the_known_ones() -> None:
    index = index_of({"a": {"energy_kwh": [1.0, 2.0]}})
    with pytest.raises(VsimError, match=r"no figure named energy\b.*energy_kwh"):
        aggregate(index, ["policy"], metrics=["energy"])
    with pytest.raises(VsimError, match="confidence"):
        aggregate(index, ["policy"], confidence=95)


def test_bootstrap_aggregate_is_seeded() -> None:
    index = index_of({"a": {"energy_kwh": [1.0, 2.0, 3.0]}, "b": {"energy_kwh": [3.0, 7.0, 4.0]}})
    first = aggregate(index, ["policy"], method="bootstrap", confidence=0.8)
    assert row(first, "energy_kwh", policy="a")[["ci_low", "ci_high"]].tolist() == pytest.approx(
        [4 / 3, 8 / 3])
    pd.testing.assert_frame_equal(first, aggregate(index, ["policy"], method="bootstrap",
                                                   confidence=0.8))


# --- compare ------------------------------------------------------------------------------------


def test_compare_separated_and_overlapping_intervals() -> None:
    index = index_of({"first-fit": {"energy_kwh": [10.0, 11.0, 12.0], "x": [10.0, 20.0, 30.0]},
                      "best-fit": {"energy_kwh": [1.0, 2.0, 3.0], "x": [11.0, 21.1, 30.9]}})
    agg = aggregate(index, ["policy"])
    energy = compare(agg, "policy", "energy_kwh", index=index).set_index("policy")
    assert energy.loc["best-fit", "best"] and not energy.loc["first-fit", "best"]
    assert energy.loc["best-fit", "cis"] == "best"
    assert energy.loc["first-fit", "cis"] == "differs"  # 11 ± 2.48 against 2 ± 2.48
    assert energy.loc["first-fit", "diff_mean"] == pytest.approx(9.0)
    assert energy.loc["first-fit", "paired"] == "differs"
    assert energy.attrs["better"] == "lower"

    # x: the runs of a replication share a seed and move together; the intervals overlap
    # widely, yet every pair differs by about 1: the paired comparison sees it.
    x = compare(agg, "policy", "x", index=index).set_index("policy")
    assert x.loc["first-fit", "best"] and x.loc["best-fit", "cis"] == "overlaps"
    diff = x.loc["best-fit"]
    half = T_975_2 * 0.1 / math.sqrt(3)  # differences 1, 1.1, 0.9: mean 1, sd 0.1
    assert diff["pairs"] == 3 and diff["diff_mean"] == pytest.approx(1.0)
    assert diff["diff_ci_low"] == pytest.approx(1 - half)
    assert diff["diff_ci_high"] == pytest.approx(1 + half)
    assert diff["paired"] == "differs"

    without_index = compare(agg, "policy", "x")
    assert "paired" not in without_index.columns


def test_compare_holds_the_other_axes_fixed() -> None:
    rows = []
    # More completed jobs is better. At 4 hosts best-fit completes more; at 6 hosts first-fit
    # does, narrowly: the intervals overlap and the paired differences 1, -1, 0.5 straddle 0.
    values = {("4", "first-fit"): [1, 2, 3], ("4", "best-fit"): [9, 10, 11],
              ("6", "first-fit"): [5, 6, 7], ("6", "best-fit"): [6, 5, 6.5]}
    for point, ((hosts, policy), figures) in enumerate(values.items()):
        for r, v in enumerate(figures):
            rows.append({"run_id": f"p{point}-r{r}", "point": point, "replication": r,
                         "seed": r, "status": "ok", "hosts.0.count": hosts,
                         "placement.policy": policy, "jobs.completed": v})
    index = pd.DataFrame(rows)
    agg = aggregate(index, ["hosts.0.count", "placement.policy"])
    table = compare(agg, "placement.policy", "jobs.completed", index=index)
    assert table.attrs["better"] == "higher"
    best = table[table["best"]].set_index("hosts.0.count")["placement.policy"].to_dict()
    assert best == {"4": "best-fit", "6": "first-fit"}
    six = table[(table["hosts.0.count"] == "6") & ~table["best"]].iloc[0]
    assert six["cis"] == "overlaps" and six["paired"] == "no clear difference"
    with pytest.raises(VsimError, match="no axis"):
        compare(agg, "policy", "jobs.completed")


# --- a sweep folder built from real runs --------------------------------------------------------

SCENARIO = """\
name: tiny-sweep
seed: 1
duration: 2 h
period: 10 min
hosts:
  - {name: std, count: 4, cores: 8, core_speed: 2 GHz, ram: 64 GiB,
     power: {idle: 100 W, max: 250 W}}
vms:
  - {name: web, count: 12, vcpus: 2, ram: 4 GiB, workload: noisy}
workloads:
  noisy: {kind: synthetic, mean: 40%, mean_spread: 0.5, noise: {sd: 15%, correlation: 0.5}}
placement: {policy: first-fit, cpu_overcommit: 2.0}
"""


def flatten(summary: dict, prefix: str = "") -> dict:
    flat: dict = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            flat[f"{prefix}{key}"] = value
    return flat


def make_sweep(root: Path, axes: dict[str, list[str]], seeds: list[int],
               fail: set[str] = frozenset()) -> Path:
    """A sweep folder as `vsim sweep` writes it; runs named in ``fail`` are recorded as failed."""
    (root / "runs").mkdir(parents=True)
    scenario_file = root / "scenario.yaml"
    scenario_file.write_text(SCENARIO, encoding="utf-8")
    keys = list(axes)
    grid = [{}]
    for key in keys:
        grid = [{**g, key: v} for g in grid for v in axes[key]]
    rows = []
    for point, values in enumerate(grid):
        for r, seed in enumerate(seeds):
            run_id = f"p{point:03d}-r{r:02d}"
            base = {"run_id": run_id, "point": point, "replication": r, "seed": seed, **values}
            if run_id in fail:
                error = "placement: VM web-3 fits no host"
                (root / "runs" / f"{run_id}.failed.json").write_text(json.dumps({"error": error}))
                rows.append({**base, "status": "failed", "error": error, "wall_time_s": 0.0})
                continue
            loaded = vsim.load_scenario(scenario_file,
                                        overrides=[f"{k}={v}" for k, v in values.items()])
            result = vsim.run(loaded, seed=seed)
            result.save(root / "runs" / run_id)
            rows.append({**base, "status": "ok", "error": None, **flatten(result.summary)})
    index = pd.DataFrame(rows).drop(columns=["scenario", "description"], errors="ignore")
    index.to_parquet(root / "index.parquet")
    (root / "sweep.json").write_text(json.dumps({
        "scenario": "tiny-sweep", "scenario_file": str(scenario_file),
        "axes": [{"key": k, "values": v} for k, v in axes.items()],
        "replications": len(seeds), "seeds": seeds, "vsim_version": vsim.__version__,
        "created": "2025-01-01T00:00:00Z"}))
    return root


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("sweep") / "s",
                      {"placement.policy": ["first-fit", "worst-fit"],
                       "hosts.0.count": ["4", "6"]}, seeds=[11, 12, 13], fail={"p003-r01"})


def test_load_index(sweep: Path) -> None:
    meta, index = load_index(sweep)
    assert meta.axis_keys == ["placement.policy", "hosts.0.count"] and meta.replications == 3
    assert meta.axes[1].numeric and not meta.axes[0].numeric
    assert len(index) == 12 and (index["status"] == "failed").sum() == 1


def test_report_has_a_figure_per_metric_and_the_tables(sweep: Path, tmp_path: Path) -> None:
    path = write_sweep_report(sweep, out=tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    meta, index = load_index(sweep)
    metrics = aggregate(index, meta.axes).attrs["metrics"]
    assert {"energy_kwh", "cpu_ready_frac_mean", "sla.slav"} <= set(metrics)
    for metric in metrics:
        slug = re.sub(r"[^a-z0-9]+", "-", metric.lower())
        assert text.count(f'id="fig-{slug}"') == 1, metric
    assert "Energy (kWh)" in text and "CPU ready, mean over VMs (%)" in text
    for section in ("Means per point", "Values of each axis compared", "Failed runs"):
        assert f">{section}</h2>" in text
    assert "p003-r01" in text and "placement: VM web-3 fits no host" in text
    assert "<b>11 ok</b>, <b>1 failed</b>" in text
    # One file that opens offline: plotly.js inline, nothing fetched.
    assert not re.search(r"<script[^>]+src=[\"']?https?:", text)
    assert "Plotly" in text and text.count("<script") > len(metrics)


def test_third_axis_gives_one_figure_per_value(tmp_path: Path) -> None:
    folder = make_sweep(tmp_path / "s3", {"hosts.0.count": ["4", "6"],
                                          "placement.policy": ["first-fit"],
                                          "placement.cpu_overcommit": ["1.5", "2.0"]},
                        seeds=[1, 2])
    text = write_sweep_report(folder, metrics=["energy_kwh"]).read_text(encoding="utf-8")
    assert (folder / "sweep-report.html").is_file()
    assert 'id="fig-energy-kwh-1"' in text and 'id="fig-energy-kwh-2"' in text
    assert "placement.cpu_overcommit=2.0" in text


def test_text_table(sweep: Path) -> None:
    meta, index = load_index(sweep)
    table = sweep_table(aggregate(index, meta.axes))
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["placement.policy", "hosts.0.count", "ok", "failed"]
    assert "energy_kwh" in lines[0] and "cpu_ready_frac_mean" in lines[0]
    assert lines[4].split()[:4] == ["worst-fit", "6", "2", "1"]
    assert all("±" in line for line in lines[1:5])


def test_cli_prints_the_table_and_writes_the_report(sweep: Path, tmp_path: Path) -> None:
    done = vsim_cli("sweep-report", str(sweep), "--metric", "energy_kwh", "--metric",
                    "sla.slav", "--method", "bootstrap", "--confidence", "0.9",
                    "--out", str(tmp_path / "b.html"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["placement.policy", "hosts.0.count", "ok", "failed", "energy_kwh",
                              "sla.slav"]
    assert [r.split()[0] for r in rows[:4]] == ["first-fit", "first-fit", "worst-fit",
                                                "worst-fit"]
    assert "90 % confidence interval (percentile bootstrap)" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == str(tmp_path / "b.html")
    assert (tmp_path / "b.html").is_file()


def test_cli_on_a_folder_that_is_not_a_sweep(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text("{}")
    done = vsim_cli("sweep-report", "run", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("vsim: error: run: not a sweep folder (no sweep.json); it is "
                                   "the result folder of one run; `vsim compare` compares such "
                                   "folders")
    assert done.stdout == ""


def test_load_index_errors(tmp_path: Path) -> None:
    with pytest.raises(VsimError, match="no such folder"):
        load_index(tmp_path / "nope")
    folder = tmp_path / "s"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "sweep.json").write_text("{}")
    with pytest.raises(VsimError, match=r"not a sweep folder .*holds 1 sweep folder"):
        load_index(folder)
    (folder / "sweep.json").write_text(json.dumps({"axes": [{"key": "placement.policy",
                                                             "values": ["a"]}]}))
    with pytest.raises(VsimError, match=f"{re.escape(str(folder))}: no index.parquet"):
        load_index(folder)
    (folder / "index.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(VsimError, match="cannot read it as a Parquet table"):
        load_index(folder)
    pd.DataFrame({"run_id": ["x"], "point": [0], "replication": [0],
                  "status": ["ok"]}).to_parquet(folder / "index.parquet")
    with pytest.raises(VsimError, match=r"lacks the column.*placement\.policy"):
        load_index(folder)
    (folder / "sweep.json").write_text("[1, 2")
    with pytest.raises(VsimError, match="cannot read it as JSON"):
        load_index(folder)
