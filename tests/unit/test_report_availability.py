"""The report's availability section: ECDF points, hosts up and VMs down over time and the
headline figures against hand-computed values, and the section built from a real run."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest
from conftest import AVAILABILITY_TINY

import vsim
from vsim.report import availability as av
from vsim.report import build_report

FIGURES = ("fig-avail-rto", "fig-avail-capacity", "fig-avail-data-loss")


def _outages(rows: list[tuple]) -> pd.DataFrame:
    """Outages from (replication, vm, group, priority, how, failed_s, downtime_s, data_loss_s);
    a VM whose ``how`` is "not restarted" is down until the end (its downtime censored)."""
    frame = pd.DataFrame(rows, columns=["replication", "vm", "group", "priority", "how",
                                        "failed_s", "downtime_s", "data_loss_s"])
    frame["restarted"] = frame["how"] != "not restarted"
    return frame


def _failures(rows: list[tuple]) -> pd.DataFrame:
    """Host failures from (replication, host, process, failed_s, back_s); back NaN: never."""
    frame = pd.DataFrame(rows, columns=["replication", "host", "process", "failed_s", "back_s"])
    frame["name"] = "h-" + frame["host"].astype(str)
    frame["down_s"] = frame["back_s"].fillna(1000.0) - frame["failed_s"]
    return frame


# --- distributions ------------------------------------------------------------------------------

def test_ecdf_gives_each_distinct_value_the_share_at_or_below_it() -> None:
    x, y = av.ecdf([40.0, 100.0, 40.0, 10.0, np.nan])
    assert x.tolist() == [10.0, 40.0, 100.0]
    assert y.tolist() == [0.25, 0.75, 1.0]  # 1 of 4, 3 of 4 (the tie), 4 of 4; NaN dropped
    x, y = av.ecdf([])
    assert x.size == 0 and y.size == 0


def test_rto_lines_split_restarted_outages_by_priority_highest_first() -> None:
    out = _outages([
        (0, 1, "web", 0, "ha", 100.0, 60.0, 0.0),
        (0, 2, "db", 2, "ha", 100.0, 30.0, 0.0),
        (0, 3, "web", 0, "not restarted", 100.0, 900.0, 0.0),  # censored: not an RTO
        (1, 1, "web", 0, "repair", 200.0, 600.0, 0.0),
    ])
    by, lines = av.rto_lines(out)
    assert by == "priority"
    assert list(lines) == ["priority 2", "priority 0"]
    assert lines["priority 2"].tolist() == [30.0]
    assert lines["priority 0"].tolist() == [60.0, 600.0]  # both replications pooled


def test_rto_lines_fall_back_to_vm_groups_when_priorities_are_equal() -> None:
    out = _outages([(0, 1, "web", 0, "ha", 0.0, 60.0, 0.0), (0, 2, "db", 0, "ha", 0.0, 30.0, 0.0),
                    (0, 3, "web", 0, "ha", 0.0, 90.0, 0.0)])
    by, lines = av.rto_lines(out)
    assert by == "VM group" and list(lines) == ["db", "web"]
    assert lines["web"].tolist() == [60.0, 90.0]
    one = out.assign(group="web")
    assert av.rto_lines(one)[1].keys() == {"all VMs"}


def test_cdf_figure_draws_steps_in_minutes_from_zero_and_the_rpo() -> None:
    fig = av.cdf_figure({"db": np.array([120.0, 60.0, 120.0])}, "data lost", "failovers",
                        rpo_s=900.0)
    line, rpo = fig.data
    # A rise from 0 at the first value, then the ECDF: 1 of 3 at 1 min, 3 of 3 at 2 min, held at
    # 100 % out to the RPO so the line does not stop mid-plot.
    assert list(line.x) == [1.0, 1.0, 2.0, 15.0]
    assert list(line.y) == pytest.approx([0, 1 / 3, 1, 1])
    assert line.line.shape == "hv" and line.name == "db (3)"
    assert list(rpo.x) == [15.0, 15.0] and rpo.name == "RPO 15 min"
    assert fig.layout.xaxis.type == "linear" and list(fig.layout.xaxis.range) == [0, 15.75]
    assert fig.layout.yaxis.title.text == "share of failovers at or below"
    # Without an RPO the line ends at its own last value.
    assert list(av.cdf_figure({"db": np.array([60.0, 120.0])}, "x").data[0].x) == [1, 1, 2]


def test_log_axis_only_for_a_spread_over_a_decade_without_zeros() -> None:
    assert not av.log_scale([40.0, 399.0])  # just under 10 x
    assert av.log_scale([40.0, 401.0])
    assert not av.log_scale([0.0, 40.0, 1e6])  # a zero cannot sit on a log axis
    fig = av.cdf_figure({"a": np.array([30.0]), "b": np.array([6000.0])}, "downtime")
    assert fig.layout.xaxis.type == "log" and len(fig.data) == 2
    # Log ranges are in log10 units: 0.5 min to 100 min, with a little room either side.
    assert list(fig.layout.xaxis.range) == pytest.approx([np.log10(0.5) - 0.05, 2.05])
    assert list(fig.data[0].x) == [0.5, 0.5, 100.0]  # "a" held at 100 % out to "b"'s end


# --- the timeline -------------------------------------------------------------------------------

# Replication 0: h-0 down 100-400, h-1 down from 200 for good, h-2 down 400-500. Replication 1
# must not show: the timeline is replication 0's.
FAILS = _failures([(0, 0, "mtbf", 100.0, 400.0), (0, 1, "rack", 200.0, np.nan),
                   (0, 2, "rack", 400.0, 500.0), (1, 3, "mtbf", 50.0, 60.0)])
# Replication 0: a VM up again at 150, one never restarted (down to the end, 1000), one down
# 600-700.
OUTS = _outages([(0, 1, "web", 0, "ha", 100.0, 50.0, 0.0),
                 (0, 2, "web", 0, "not restarted", 100.0, 900.0, 0.0),
                 (0, 3, "db", 1, "ha", 600.0, 100.0, 0.0),
                 (1, 1, "web", 0, "ha", 50.0, 5.0, 0.0)])


def test_hosts_up_over_time_matches_a_hand_count() -> None:
    line = av.timeline(FAILS, OUTS, end_s=1000.0)
    assert line is not None
    down = line.hosts_down
    assert down.index.tolist() == [0.0, 100.0, 200.0, 400.0, 500.0, 1000.0]
    # 400: h-0 is back as h-2 fails; 500: h-2 is back; h-1 never is.
    assert down.tolist() == [0, 1, 2, 2, 1, 1]
    up = 5 - down
    for t, expected in ((0, 5), (99, 5), (100, 4), (250, 3), (400, 3), (450, 3), (500, 4),
                        (999, 4)):
        assert up.asof(t) == expected, t


def test_vms_down_over_time_matches_a_hand_count() -> None:
    down = av.timeline(FAILS, OUTS, end_s=1000.0).vms_down
    assert down.index.tolist() == [0.0, 100.0, 150.0, 600.0, 700.0, 1000.0]
    assert down.tolist() == [0, 2, 1, 2, 1, 1]
    for t, expected in ((50, 0), (100, 2), (149, 2), (150, 1), (650, 2), (800, 1)):
        assert down.asof(t) == expected, t


def test_timeline_without_the_run_length_ends_at_the_last_known_instant() -> None:
    line = av.timeline(FAILS, OUTS)
    assert line.hosts_down.index[-1] == 1000.0  # the censored outage: 100 + 900
    assert av.timeline(FAILS, None).hosts_down.index[-1] == 500.0 and \
        av.timeline(FAILS, None).vms_down is None
    assert av.timeline(FAILS[FAILS["replication"] == 1], None) is None  # nothing in replication 0


def test_failures_at_one_instant_make_one_mark_naming_the_hosts() -> None:
    site = _failures([(0, h, "site-loss", 300.0, np.nan) for h in range(6)]
                     + [(0, 9, "mtbf", 100.0, 200.0)])
    marks = av.failure_marks(site)
    assert marks["failed_s"].tolist() == [100.0, 300.0] and marks["hosts"].tolist() == [1, 6]
    assert marks["label"].tolist() == ["mtbf: h-9", "site-loss: h-0, h-1, h-2, h-3, …"]
    fig = av.capacity_figure(av.timeline(site, None, end_s=400.0), 10, 60.0, "min")
    hosts, failures = fig.data
    assert list(hosts.y) == [10, 9, 10, 4, 4] and list(failures.y) == [9, 4]


# --- tables -------------------------------------------------------------------------------------

def _summary(**extra) -> dict:
    return {"host_failures": 2, "host_down_hours": 0.5, "vm_outages": 3, "vms_affected": 3,
            "restarted": {"ha": 2, "dr": 0, "repair": 0}, "not_restarted": 1,
            "vm_hours_lost": 0.25, "rto_s": {"n": 2, "mean": 45.0, "p50": 45.0, "p95": 59.0,
                                             "max": 60.0},
            "restart_attempts_max": 1, "admission": {"refused": 0, "clusters": {}}, **extra}


def _cells(table: str) -> list[list[str]]:
    return [re.findall(r"<t[dh]>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>.*?</tr>", table)]


def test_headline_table_of_one_run() -> None:
    rows = _cells(av.headline_table(_summary()))
    assert rows[0] == ["figure", "value"]
    assert ["RTO, 95th percentile", "59 s"] in rows and ["Restarted by HA", "2"] in rows
    assert not any(r[0].startswith("Data loss") for r in rows)  # no DR failover: no row


def test_headline_table_over_replications() -> None:
    spread = {"n": 3, "confidence": 0.95,
              "vm_hours_lost": {"n": 3, "mean": 0.3, "sd": 0.1, "ci_low": 0.05, "ci_high": 0.55}}
    # HA restarts per replication: 2, 4 and none (replication 2 has no outage row at all).
    out = _outages([(0, 1, "web", 0, "ha", 0.0, 60.0, 0.0), (0, 2, "web", 0, "ha", 0.0, 30.0, 0.0)]
                   + [(1, v, "web", 0, "ha", 0.0, 30.0, 0.0) for v in range(4)])
    rows = {r[0]: r[1:] for r in _cells(av.headline_table(_summary(replications=spread), out))}
    assert rows["figure"] == ["replication 0", "mean of 3", "95 % confidence interval"]
    assert rows["VM-hours lost"] == ["0.25", "0.3", "0.05 – 0.55"]  # the summary's own figures
    # Computed here: mean 2, sd 2, t(0.975, 2 df) = 4.3027: 2 ± 4.3027 * 2 / sqrt(3) = 2 ± 4.968.
    assert rows["Restarted by HA"] == ["2", "2", "-2.968 – 6.968"]
    assert rows["Restarted by DR failover"] == ["0", "0", "0"]  # all alike: one value
    assert rows["Restart attempts, most for one VM"] == ["1", "–", "–"]  # not per replication


def test_admission_table_formats_each_cluster_by_unit() -> None:
    rows = _cells(av.admission_table({
        "prod": {"slot_cpu_hz": 32e6, "slots_total": 1338.0, "failover_capacity_hosts": 1.0},
        "dr": {"cpu_reserved_frac": 0.25}, "edge": {}}))
    assert rows[0] == ["figure", "prod", "dr"]  # a cluster without figures gets no column
    assert ["slot CPU", "32 MHz", "–"] in rows and ["slots in all", "1,338", "–"] in rows
    assert ["failover capacity (hosts)", "1", "–"] in rows and ["CPU reserved", "–", "25 %"] in rows
    assert av.admission_table({}) is None


# --- the section --------------------------------------------------------------------------------

def _section(page: str) -> str | None:
    found = re.search(r'<section id="sec-availability">.*?</section>', page, flags=re.S)
    return found.group(0) if found else None


def test_no_section_without_the_tables_and_a_note_when_nothing_failed() -> None:
    assert _section(build_report({}, {"scenario": "x", "availability": _summary()})) is None
    empty = {"outages": OUTS.iloc[:0], "host_failures": FAILS.iloc[:0]}
    section = _section(build_report(empty, {"scenario": "x"}))
    assert section is not None and "No host failed in the run." in section
    assert not any(f'id="{f}"' in section for f in FIGURES)


def test_section_from_hand_made_tables_draws_only_what_has_data() -> None:
    section = _section(build_report({"outages": OUTS, "host_failures": FAILS},
                                    {"scenario": "x", "hosts": 5, "sim_time_s": 1000.0,
                                     "availability": _summary()}))
    assert 'id="fig-avail-rto"' in section and 'id="fig-avail-capacity"' in section
    assert 'id="fig-avail-data-loss"' not in section  # no DR failover
    assert "3 restarted VM outages over the run" in html.unescape(section)
    assert "1 outages that ended without a restart" in html.unescape(section)


SCENARIO = AVAILABILITY_TINY


@pytest.fixture(scope="module")
def dr_run(tmp_path_factory) -> vsim.Result:
    path = tmp_path_factory.mktemp("avail") / "avail.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return vsim.run(path)


def test_report_of_a_real_run_has_the_section_and_its_figures(dr_run) -> None:
    page = build_report(dr_run.tables, dr_run.summary, dr_run.meta)
    assert '<a href="#sec-availability">Availability</a>' in page
    section = html.unescape(_section(page))
    for div_id in FIGURES:
        assert f'id="{div_id}"' in section
    assert "over 2 Monte Carlo replications" in section and "mean of 2" in section
    # Admission control's figures, one column per site.
    assert "<th>prod</th><th>dr</th>" in section and "slots in all" in section
    n_dr = int((dr_run.tables["outages"]["how"] == "dr").sum())
    assert n_dr > 0 and f"over {n_dr} VMs failed over" in section


def test_timeline_of_a_real_run_follows_the_scenario(dr_run) -> None:
    line = av.timeline(dr_run.tables["host_failures"], dr_run.tables["outages"],
                       dr_run.summary["sim_time_s"])
    up = dr_run.summary["hosts"] - line.hosts_down
    # p-0 down from 30 min; the whole of prod (3 hosts) from 90 min, never repaired.
    assert up.asof(0.0) == 5 and up.asof(45 * 60.0) == 4 and up.asof(120 * 60.0) == 2
    # Every VM ran in prod, so just after the site loss all 6 are down, before DR detects it.
    assert line.vms_down.asof(91 * 60.0) == 6 and line.vms_down.asof(60.0) == 0
