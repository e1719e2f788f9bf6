"""The report's memory-overcommit section: where slowdown crosses its level (hand-computed), the
95th percentile per host and per ratio, and the section built from real runs."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest
from conftest import run_text

from vsim.report import build_report
from vsim.report.memory import Crossing, crossing, crossing_sentence, host_rows, ratio_curve

GIB = 1024.0**3

# Three 16 GiB hosts at ratios 1.0, 1.5 and 2.0 (4, 6 and 8 VMs of 4 GiB), kept apart by the
# VM-host rules, and one host whose memory is not modelled.
SMALL = """
name: mem-small
seed: 1
duration: 4 h
period: 30 min
hosts:
  - {name: r100, cores: 8, core_speed: 2 GHz, ram: 16 GiB, memory: {preset: esxi, swap: ssd}}
  - {name: r150, cores: 8, core_speed: 2 GHz, ram: 16 GiB, memory: {preset: esxi, swap: ssd}}
  - {name: r200, cores: 8, core_speed: 2 GHz, ram: 16 GiB, memory: {preset: esxi, swap: ssd}}
  - {name: plain, cores: 8, core_speed: 2 GHz, ram: 16 GiB}
vms:
  - {name: d-r100, count: 4, vcpus: 1, ram: 4 GiB, workload: cpu, hosts: r100,
     memory: {active: {workload: busy}}}
  - {name: d-r150, count: 6, vcpus: 1, ram: 4 GiB, workload: cpu, hosts: r150,
     memory: {active: {workload: busy}}}
  - {name: d-r200, count: 8, vcpus: 1, ram: 4 GiB, workload: cpu, hosts: r200,
     memory: {active: {workload: busy}}}
  - {name: p, count: 2, vcpus: 1, ram: 4 GiB, workload: cpu, hosts: plain}
workloads:
  cpu: {kind: constant, level: 20%}
  busy: {kind: synthetic, step: 30 min, mean: 55%, noise: {sd: 5%, correlation: 0.5}}
placement: {ram_overcommit: 2}
"""

MEMORY_IDS = ("fig-memory-swapped", "fig-memory-slowdown", "fig-memory-time")


# --- crossing: hand-computed cases ---------------------------------------------------------------

@pytest.mark.parametrize(("x", "y", "expected"), [
    # Between (2, 1.05) and (3, 1.25): 2 + (1.10 - 1.05) / (1.25 - 1.05) = 2.25.
    ([1, 2, 3], [1.0, 1.05, 1.25], 2.25),
    # Unsorted points are put in order of x first.
    ([3, 1, 2], [1.25, 1.0, 1.05], 2.25),
    # At the level is not above it: the curve leaves it at x = 2 exactly.
    ([1, 2, 3], [1.0, 1.10, 1.30], 2.0),
    # A missing point is skipped: between (1, 1.0) and (3, 1.2): 1 + 2 * 0.1 / 0.2 = 2.
    ([1, 2, 3, 4], [1.0, np.nan, 1.2, 1.3], 2.0),
    # The first crossing counts, not a later one: 1 + 0.1 / 0.2 = 1.5.
    ([1, 2, 3, 4], [1.0, 1.2, 1.0, 1.3], 1.5),
    # Ratios as in the shipped scenario: 1.75 + 0.125 * (0.10 - 0.06) / (0.14 - 0.06) = 1.8125.
    ([1.625, 1.75, 1.875], [1.01, 1.06, 1.14], 1.8125),
])
def test_crossing_interpolates_between_the_neighbouring_points(x, y, expected) -> None:
    c = crossing(x, y, 1.10)
    assert c.status == "crossed"
    assert c.x == pytest.approx(expected)


def test_crossing_never_reached_gives_the_last_point() -> None:
    assert crossing([1.0, 1.5, 2.0], [1.0, 1.05, 1.10], 1.10) == Crossing("never", 2.0)


def test_crossing_already_above_gives_the_first_point() -> None:
    assert crossing([2.0, 1.5], [1.3, 1.2], 1.10) == Crossing("already", 1.5)


def test_crossing_needs_a_point() -> None:
    with pytest.raises(ValueError):
        crossing([1.0], [np.nan], 1.10)


def test_crossing_sentences() -> None:
    what = "The 95th percentile of slowdown"
    assert crossing_sentence(Crossing("crossed", 1.8125), what) == (
        f"{what} passes 10 % at an overcommit ratio of about 1.81.")
    assert "already above 10 % at the lowest ratio simulated, 1.50" in crossing_sentence(
        Crossing("already", 1.5), what)
    assert "stays at or below 10 % up to the highest ratio simulated, 2.00" in crossing_sentence(
        Crossing("never", 2.0), what)


# --- per host and per ratio ----------------------------------------------------------------------

def _summary_host(name: str, vm_gib: float) -> dict:
    return {"host": name, "group": name, "ram_bytes": 16 * GIB, "vm_ram_bytes": vm_gib * GIB,
            "state_worst": "hard", "free_mean_bytes": 0.0, "saved_mean_bytes": 1.0,
            "balloon_mean_bytes": 2.0, "compressed_mean_bytes": 3.0, "swapped_mean_bytes": 4.0,
            "swapped_peak_bytes": 5.0, "swap_in_bytes": 6.0, "swap_out_bytes": 6.0,
            "slowdown_mean": 1.0, "vm_time_slowed_frac": 0.0}


def test_p95_per_host_and_pooled_per_ratio() -> None:
    # Host 0 (ratio 2): 19 rows at 1.0 and one at 2.0. Linear quantile: position 0.95 * 19 = 18.05,
    # so 1.0 + 0.05 * (2.0 - 1.0) = 1.05. Host 1 (ratio 2): 20 rows at 1.2 -> 1.2. Pooled, 40
    # rows: position 0.95 * 39 = 37.05 among 19 x 1.0, 1 x 2.0 sorted last, 20 x 1.2 -> rows 37
    # and 38 are both 1.2 -> 1.2. Host 2 (ratio 1): no rows -> NaN. Rows off any host are ignored.
    vms = pd.DataFrame({"host": [0] * 20 + [1] * 20 + [-1],
                        "mem_slowdown": [1.0] * 19 + [2.0] + [1.2] * 20 + [9.0]})
    names = pd.Series(["a", "b", "c"], index=[0, 1, 2])
    rows = host_rows([_summary_host("a", 32), _summary_host("b", 32), _summary_host("c", 16)],
                     vms, names)
    assert list(rows["host"]) == ["c", "a", "b"]  # in order of ratio
    assert list(rows["ratio"]) == [1.0, 2.0, 2.0]
    assert list(rows["host_id"]) == [2, 0, 1]
    p95 = dict(zip(rows["host"], rows["slowdown_p95"], strict=True))
    assert np.isnan(p95["c"]) and p95["a"] == pytest.approx(1.05) and p95["b"] == pytest.approx(1.2)
    curve = ratio_curve(rows, vms)
    assert list(curve["ratio"]) == [1.0, 2.0]
    assert list(curve["hosts"]) == [1, 2]
    assert curve["slowdown_p95"].iloc[1] == pytest.approx(1.2)


def test_without_host_names_there_is_no_p95() -> None:
    vms = pd.DataFrame({"host": [0, 0], "mem_slowdown": [1.0, 1.5]})
    rows = host_rows([_summary_host("a", 32)], vms, None)
    assert rows["host_id"].tolist() == [-1] and rows["slowdown_p95"].isna().all()


# --- the section from real runs ------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    return run_text(SMALL, seed=1)


def _section(page: str) -> str:
    found = re.search(r'<section id="sec-memory">.*?</section>', page, flags=re.S)
    assert found, "no memory section"
    return found.group(0)


def test_small_run_gets_the_memory_section(small) -> None:
    memory = small.summary["memory"]
    assert [h["host"] for h in memory["hosts"]] == ["r100", "r150", "r200"]
    assert memory["swap_out_bytes"] > 0  # ratio 2 with 55 % active must swap
    page = build_report(small.tables, small.summary, small.meta)
    assert '<a href="#sec-memory">Memory overcommit</a>' in page
    section = html.unescape(_section(page))
    for div_id in (*MEMORY_IDS, "fig-memory-swap-traffic"):
        assert f'id="{div_id}"' in section
    assert "sharing" in section and "balloon" in section
    # The sentence on the 10 % level, in one of its three forms.
    assert re.search(r"The 95th percentile of slowdown (passes 10 % at an overcommit ratio of "
                     r"about \d\.\d\d|stays at or below 10 % up to|is already above)", section)
    for name in ("r100", "r150", "r200"):
        assert f"<td>{name}</td>" in section
    assert "<td>plain</td>" not in section  # not modelled: no row


def test_the_sentence_agrees_with_the_hosts_p95(small) -> None:
    rows = host_rows(small.summary["memory"]["hosts"], small.tables["vms"],
                     small.tables["host_info"].set_index("host")["name"])
    assert rows["ratio"].tolist() == pytest.approx([1.0, 1.5, 2.0])
    assert rows["slowdown_p95"].notna().all() and (rows["slowdown_p95"] >= 1.0).all()
    c = crossing(rows["ratio"], rows["slowdown_p95"], 1.10)
    page = html.unescape(_section(build_report(small.tables, small.summary)))
    assert crossing_sentence(c, "The 95th percentile of slowdown") in page


def test_one_modelled_host_gets_no_ratio_figures() -> None:
    text = SMALL.replace(", memory: {preset: esxi, swap: ssd}}", "}", 2)
    res = run_text(text, seed=1)
    assert [h["host"] for h in res.summary["memory"]["hosts"]] == ["r200"]
    section = _section(build_report(res.tables, res.summary))
    assert 'id="fig-memory-time"' in section and "<td>r200</td>" in section
    assert 'id="fig-memory-swapped"' not in section and 'id="fig-memory-slowdown"' not in section


def test_a_run_without_memory_has_no_memory_section() -> None:
    res = run_text(SMALL.replace(", memory: {preset: esxi, swap: ssd}}", "}"), seed=1)
    assert "memory" not in res.summary
    page = build_report(res.tables, res.summary)
    assert 'id="sec-memory"' not in page
    for div_id in MEMORY_IDS:
        assert div_id not in page


def test_slowdown_figure_marks_the_crossing_and_keeps_the_level_in_view() -> None:
    from vsim.report.memory import slowdown_figure

    curve = pd.DataFrame({"ratio": [1.0, 1.5, 2.0], "slowdown_mean": [1.0, 1.0, 1.02],
                          "slowdown_p95": [1.0, 1.05, 1.25]})
    fig = slowdown_figure(curve, crossing(curve["ratio"], curve["slowdown_p95"], 1.10))
    lines = [(s.type, s.x0, s.y0) for s in fig.layout.shapes]
    assert ("line", 0, 1.10) in lines  # the 10 % level, across the plot
    assert any(x0 == pytest.approx(1.625) for _, x0, _ in lines)  # 1.5 + 0.5 * 0.05 / 0.20
    flat = curve.assign(slowdown_mean=1.0, slowdown_p95=1.0)
    fig = slowdown_figure(flat, crossing(flat["ratio"], flat["slowdown_p95"], 1.10))
    assert len(fig.layout.shapes) == 1 and fig.layout.yaxis.range[1] > 1.10
