"""The report's storage, network and moves sections: what each figure draws from small tables
written by hand (the expected values worked out next to them), the sections left out without
their tables, and the three sections of a real run that exercises them all."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from conftest import run_text

from vsim.report import build_report
from vsim.report import storage as st

GIB, MIB = 2.0**30, 2.0**20

# Two datastores over three 10-minute periods; ds-b fills at 1500 s.
DATASTORES = pd.DataFrame({
    "time_s": [0.0, 0.0, 600.0, 600.0, 1200.0, 1200.0],
    "datastore": pd.Categorical(["ds-a", "ds-b"] * 3),
    "used_bytes": [10 * GIB, 50 * GIB, 20 * GIB, 80 * GIB, 30 * GIB, 100 * GIB],
    "provisioned_bytes": [40 * GIB, 150 * GIB, 40 * GIB, 150 * GIB, 40 * GIB, 150 * GIB],
    "capacity_bytes": [100 * GIB, 100 * GIB] * 3,
    "transfer_bytes_s": [0.0, 200 * MIB, 0.0, 0.0, 50 * MIB, 0.0],
    "vm_write_bytes_s": [10 * MIB, 30 * MIB, 10 * MIB, 30 * MIB, 10 * MIB, 0.0],
    "vms_paused": [0, 0, 0, 0, 0, 3],
})
DATASTORES["fill_frac"] = DATASTORES["used_bytes"] / DATASTORES["capacity_bytes"]
EVENTS = pd.DataFrame({"time_s": [1500.0, 1500.0], "kind": ["datastore_full", "vm_paused"],
                       "subject": ["ds-b", "app-0"], "detail": ["", ""]})

# Three links over two periods; the fabric carried nothing.
LINKS = pd.DataFrame({
    "time_s": [0.0, 0.0, 0.0, 600.0, 600.0, 600.0],
    "link": pd.Categorical(["h-0/nic-out", "dc1/uplink-out", "dc1/fabric"] * 2),
    "capacity_bytes_s": [1.25e9, 125e6, 1e10] * 2,
    "vm_bytes_s": [100e6, 25e6, 0.0, 100e6, 25e6, 0.0],
    "migration_bytes_s": [0.0, 0.0, 0.0, 400e6, 75e6, 0.0],
    "replication_bytes_s": [0.0, 0.0, 0.0, 0.0, 25e6, 0.0],
})
LINKS["carried_bytes_s"] = LINKS[["vm_bytes_s", "migration_bytes_s",
                                  "replication_bytes_s"]].sum(axis=1)
LINKS["utilisation"] = LINKS["carried_bytes_s"] / LINKS["capacity_bytes_s"]

# Move "exit" in two waves of two VMs (app-3 still copying when the run ends at 7200 s), then
# move "db" in one wave of one VM.
MOVES = pd.DataFrame({
    "move": pd.Categorical(["exit"] * 4 + ["db"]),
    "wave": [1, 1, 2, 2, 1],
    "vm": [0, 1, 2, 3, 4],
    "name": ["app-0", "app-1", "app-2", "app-3", "db-0"],
    "disk_bytes": [10e9] * 5,
    "sent_bytes": [10e9, 10e9, 10e9, 4e9, 10e9],
    "wave_start_s": [3600.0, 3600.0, 4800.0, 4800.0, 4000.0],
    "copy_start_s": [3600.0, 3600.0, 4800.0, 4800.0, 4000.0],
    "copy_end_s": [4200.0, 4300.0, 5400.0, np.nan, 4500.0],
    "moved_s": [4600.0, 4800.0, 5500.0, np.nan, 4700.0],
    "status": ["moved", "moved", "moved", "copying disks", "moved"],
})


def test_fill_figure_draws_used_and_provisioned_as_shares_of_capacity() -> None:
    fig = st.fill_figure(DATASTORES, EVENTS[EVENTS["kind"] == "datastore_full"], 60.0, "min")
    traces = {t.name: t for t in fig.data}
    # ds-b ran fullest (100 %), so it comes first; each gets a used and a provisioned line.
    assert [t.name for t in fig.data] == ["ds-b used", "ds-b provisioned", "ds-a used",
                                          "ds-a provisioned", "datastore full"]
    assert list(traces["ds-a used"].x) == [0.0, 10.0, 20.0]
    assert list(traces["ds-a used"].y) == pytest.approx([0.1, 0.2, 0.3])
    assert list(traces["ds-b provisioned"].y) == pytest.approx([1.5] * 3)
    assert list(traces["ds-b used"].customdata) == pytest.approx([50, 80, 100])  # GiB
    assert traces["ds-b used"].line.color == traces["ds-b provisioned"].line.color
    assert list(traces["datastore full"].x) == [25.0] and list(traces["datastore full"].y) == [1]


def test_throughput_and_paused_figures() -> None:
    fig = st.throughput_figure(DATASTORES, 60.0, "min")
    traces = {t.name: t for t in fig.data}
    assert list(traces["ds-b transfers"].y) == pytest.approx([200, 0, 0])  # MiB/s
    assert list(traces["ds-a VM writes"].y) == pytest.approx([10, 10, 10])
    paused = st.paused_figure(DATASTORES, 60.0, "min")
    # Only the datastore that paused anything gets a line.
    assert [t.name for t in paused.data] == ["ds-b"]
    assert list(paused.data[0].y) == [0, 0, 3]


def test_a_long_table_is_thinned_per_datastore() -> None:
    times = np.arange(5000) * 60.0
    long = pd.DataFrame({"time_s": np.r_[times, times], "datastore": ["a"] * 5000 + ["b"] * 5000,
                         "used_bytes": np.r_[np.zeros(5000), np.ones(5000)]})
    thin = st.thin_by(long, "datastore", ["a", "b"])
    # 5000 periods in runs of 3 (at most 2000 rows each); a and b are never averaged together.
    assert (thin["datastore"] == "a").sum() == 1667
    assert thin.loc[thin["datastore"] == "b", "used_bytes"].eq(1.0).all()


def test_duration_cdf_steps_to_each_value_and_holds_to_the_longest() -> None:
    fig = st.duration_cdf_figure({"full clones": np.array([10.0, 20.0, 20.0, 40.0]),
                                  "linked clones": np.array([5.0])}, "deploy time", "VMs")
    full, linked = fig.data
    assert full.name == "full clones (4)" and linked.name == "linked clones (1)"
    # From 0 at the first value; 1 of 4 at 10 s, 3 of 4 at 20 s, all at 40 s (the longest).
    assert list(full.x) == [10, 10, 20, 40, 40] and list(full.y) == [0, 0.25, 0.75, 1, 1]
    assert list(linked.x) == [5, 5, 40] and list(linked.y) == [0, 1, 1]
    assert fig.layout.xaxis.title.text == "deploy time (s)"
    # 5 to 40 s is less than a decade: a linear axis from 0 with 5 % room past the end.
    assert fig.layout.xaxis.type == "linear" and list(fig.layout.xaxis.range) == [0, 42]
    minutes = st.duration_cdf_figure({"all": np.array([600.0, 900.0])}, "boot time", "VMs")
    assert list(minutes.data[0].x) == [10, 10, 15, 15]


def test_boot_storm_counts_boots_under_way_and_done() -> None:
    boots = pd.DataFrame({"began_s": [600.0, 600.0, 660.0], "ended_s": [1200.0, 1800.0, 1500.0]})
    fig = st.boot_storm_figure(boots, 60.0, "min")
    booting, done = fig.data
    # Two from 10 min, three from 11, two after 20, one after 25, none after 30.
    assert list(booting.x) == [10, 11, 20, 25, 30] and list(booting.y) == [2, 3, 2, 1, 0]
    assert list(done.x) == [10, 20, 25, 30] and list(done.y) == [0, 1, 2, 3]
    assert done.yaxis == "y2"


def test_deploy_table_per_template_and_clone_kind() -> None:
    deploys = pd.DataFrame({"template": ["gold"] * 3, "clone": ["full", "full", "linked"],
                            "deploy_s": [100.0, 300.0, 5.0],
                            "bytes_copied": [10 * GIB, 10 * GIB, 0.0],
                            "space_bytes": [10 * GIB, 12 * GIB, 0.5 * GIB]})
    text = st.deploy_table(deploys)
    rows = re.findall(r"<tr>(.*?)</tr>", text)[1:]
    assert [re.findall(r"<td>(.*?)</td>", r) for r in rows] == [
        ["gold", "full", "2", "3 min 20 s", "5 min", "20 GiB", "11 GiB", "12 GiB"],
        ["gold", "linked", "1", "5 s", "5 s", "0 B", "512 MiB", "512 MiB"],
    ]


def test_busiest_links_by_their_busiest_period_and_what_filled_the_busiest() -> None:
    # uplink: 25/125 = 20 % then 125/125 = 100 %; NIC: 8 % then 40 %; the fabric carried nothing.
    shown = st.busiest_links(LINKS)
    assert shown == ["dc1/uplink-out", "h-0/nic-out"]
    fig = st.links_figure(LINKS, shown, 60.0, "min")
    assert [t.name for t in fig.data] == shown
    assert list(fig.data[0].x) == [0, 10] and list(fig.data[0].y) == pytest.approx([0.2, 1.0])
    busiest = st.busiest_link_figure(LINKS, "dc1/uplink-out", 60.0, "min")
    traces = {t.name: t for t in busiest.data}
    # 125 MB/s is 1 Gbit/s: drawn in Gbit/s, stacked VM, migration, replication.
    assert list(traces["VM traffic"].y) == pytest.approx([0.2, 0.2])
    assert list(traces["live migration"].y) == pytest.approx([0.0, 0.6])
    assert list(traces["replication"].y) == pytest.approx([0.0, 0.2])
    assert list(traces["capacity"].y) == pytest.approx([1.0, 1.0])
    assert {traces[n].stackgroup for n in ("VM traffic", "live migration", "replication")} == {
        "traffic"}


def test_link_table_shares_and_peaks() -> None:
    text = st.link_table(LINKS, ["dc1/uplink-out", "h-0/nic-out"],
                         [{"link": "dc1/uplink-out", "peak_utilisation": 1.0}])
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", text)[1:]]
    # Uplink: 150 MB/s carried in all, 50 by VMs (1/3), 75 by migrations, 25 by replication;
    # the NIC's peak is not in the summary.
    assert rows[0] == ["dc1/uplink-out", "1 Gbit/s", "100 %", "100 %", "60 %", "33.3 %", "50 %",
                       "16.7 %"]
    assert rows[1][:3] == ["h-0/nic-out", "10 Gbit/s", "–"]


def test_unserved_histogram_counts_every_vm() -> None:
    traffic = pd.DataFrame({"unserved_frac": [0.0, 0.0, 0.1, 0.3]})
    fig = st.unserved_figure(traffic)
    assert sum(fig.data[0].y) == 4
    assert min(fig.data[0].x) > 0 and max(fig.data[0].x) < 30  # bin centres, in %


def test_wave_rows_and_the_wave_timeline() -> None:
    waves = st.wave_rows(MOVES, end_s=7200.0)
    # In order of start: exit 1 (3600), db 1 (4000), exit 2 (4800; app-3 runs on to the end).
    assert list(zip(waves["move"], waves["wave"], strict=True)) == [("exit", 1), ("db", 1),
                                                                    ("exit", 2)]
    assert waves["start_s"].tolist() == [3600, 4000, 4800]
    assert waves["first_copy_end_s"].tolist() == [4200, 4500, 5400]
    assert waves["copies_end_s"].tolist() == [4300, 4500, 7200]
    assert waves["end_s"].tolist() == [4800, 4700, 7200]
    assert waves["moved"].tolist() == [2, 1, 1] and waves["vms"].tolist() == [2, 1, 2]
    fig = st.waves_figure(waves, 60.0, "min")
    traces = {t.name: t for t in fig.data}
    copies, migration = traces["exit: disk copies"], traces["exit: migration"]
    assert list(copies.y) == ["exit · wave 1", "exit · wave 2"]
    # Disk copies from the wave's start to its last copy's end, in minutes.
    assert list(copies.base) == [60, 80] and list(copies.x) == pytest.approx([700 / 60, 40])
    # Migrations from the first copy's end to the last VM moved.
    assert list(migration.base) == [70, 90] and list(migration.x) == pytest.approx([10, 30])
    assert copies.marker.color == migration.marker.color != traces["db: migration"].marker.color
    # Without the run's end, the unfinished VM is left out of its wave's ends.
    assert st.wave_rows(MOVES).loc[2, ["copies_end_s", "end_s"]].tolist() == [5400, 5500]


def test_move_table_per_move() -> None:
    text = st.move_table(st.wave_rows(MOVES, end_s=7200.0))
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", text)[1:]]
    # exit: 1:00:00 to 2:00:00 (the end); its waves 20 min and 40 min; 34 GB sent.
    assert rows[0] == ["exit", "3 of 4", "2", "1:00:00", "2:00:00", "1 h", "20 min, 40 min",
                       "31.7 GiB"]
    assert rows[1][:3] == ["db", "1 of 1", "1"]


def _figure_ids(page: str) -> list[str]:
    return re.findall(r'<div id="(fig-[^"]+)"', page)


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="(sec-[^"]+)"', page)


def test_sections_only_with_their_tables() -> None:
    summary = {"sim_time_s": 7200.0}
    bare = build_report({}, summary)
    assert not {"sec-storage", "sec-network", "sec-moves"} & set(_sections(bare))
    # Tables without rows count as absent.
    empty = build_report({"datastores": DATASTORES.iloc[:0], "links": LINKS.iloc[:0],
                          "moves": MOVES.iloc[:0]}, summary)
    assert not {"sec-storage", "sec-network", "sec-moves"} & set(_sections(empty))
    page = build_report({"datastores": DATASTORES, "events": EVENTS, "links": LINKS,
                         "moves": MOVES}, summary)
    assert _sections(page) == ["sec-summary", "sec-storage", "sec-network", "sec-moves",
                               "sec-events"]
    # No deploys, boots or VM traffic: their figures are left out.
    assert _figure_ids(page) == ["fig-storage-fill", "fig-storage-throughput",
                                 "fig-storage-paused", "fig-network-links",
                                 "fig-network-busiest", "fig-moves-waves"]
    idle = build_report({"links": LINKS.assign(utilisation=0.0)}, summary)
    assert "None of the 3 limited links carried any traffic." in idle
    assert "fig-network" not in idle


# Two sites with a WAN between them: four app VMs moved to the cloud in two waves; four desktops
# linked-cloned from a template boot at start; one VM fills a small thin datastore and is paused.
STORAGE_TINY = """
name: report-storage
seed: 1
duration: 3 h
period: 10 min
sites:
  - {name: onprem, uplink: 1 Gbit/s}
  - {name: cloud, uplink: 10 Gbit/s}
hosts:
  - {name: old, count: 2, site: onprem, cores: 32, core_speed: 2 GHz, ram: 512 GiB,
     network: 10 Gbit/s}
  - {name: new, count: 2, site: cloud, cores: 32, core_speed: 2 GHz, ram: 512 GiB,
     network: 10 Gbit/s}
datastores:
  - {name: san, site: onprem, capacity: 10 TiB, bandwidth: 400 MB/s}
  - {name: small, site: onprem, capacity: 30 GiB}
templates:
  - name: gold
    disk: {size: 20 GiB, used: 5 GiB, format: vmdk, provisioning: thin, datastore: san}
networks:
  - {name: lan}
vms:
  - {name: app, count: 4, ram: 8 GiB, hosts: old, write_rate: 1 MB/s, dirty_rate: 0,
     disks: [{size: 100 GiB, format: vmdk, provisioning: thin, used: 10 GB, datastore: san}],
     nics: [{network: lan, traffic: 100 Mbit/s, external: true}], workload: cpu}
  - {name: desk, count: 4, ram: 2 GiB, hosts: old, template: gold, clone: linked,
     boot_at_start: true, boot: {io: 500 MB, read_rate: 100 MB/s, init: 30 s}, workload: cpu}
  - {name: filler, count: 1, ram: 2 GiB, hosts: old, write_rate: 10 MiB/s,
     disks: [{size: 100 GiB, format: qcow2, used: 20 GiB, new_writes: 100%, datastore: small}]}
moves:
  - {name: exit, vms: app, to: new, start: 1 h, waves: {size: 2}}
workloads:
  cpu: {kind: constant, level: 30%}
"""

STORAGE_FIGURES = ["fig-storage-fill", "fig-storage-throughput", "fig-storage-paused",
                   "fig-storage-deploys", "fig-storage-boots", "fig-storage-boot-storm",
                   "fig-network-links", "fig-network-busiest", "fig-network-unserved",
                   "fig-moves-waves"]


def test_a_real_run_gets_all_three_sections() -> None:
    r = run_text(STORAGE_TINY)
    page = build_report(r.tables, r.summary, r.meta)
    figures = _figure_ids(page)
    assert [f for f in figures if f in STORAGE_FIGURES] == STORAGE_FIGURES
    sections = _sections(page)
    assert sections.index("sec-storage") < sections.index("sec-network") < sections.index(
        "sec-moves")
    # The per-move table agrees with the summary's figures for the move.
    exit_move = r.summary["moves"]["exit"]
    waves = st.wave_rows(r.tables["moves"], r.summary["sim_time_s"])
    assert (waves["end_s"] - waves["start_s"]).tolist() == pytest.approx(exit_move["wave_s"])
    assert waves["sent_bytes"].sum() == pytest.approx(exit_move["disk_bytes_sent"])
    assert "4 of 4" in page and "small" in page and "VM-hours paused" in page


def test_datastore_table_from_the_summary() -> None:
    text = st.datastore_table({"ds1": {
        "capacity_bytes": 100 * GIB, "peak_used_bytes": 100 * GIB, "used_bytes": 90 * GIB,
        "provisioned_bytes": 220 * GIB, "overcommit": 2.2, "peak_fill_frac": 1.0,
        "peak_transfer_bytes_s": 200 * MIB}, "ds2": {"capacity_bytes": GIB}})
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", text)[1:]]
    assert rows == [
        ["ds1", "100 GiB", "90 GiB", "100 GiB", "220 GiB", "2.2 ×", "100 %", "200 MiB/s"],
        ["ds2", "1 GiB", "–", "–", "–", "–", "–", "–"],
    ]


def test_rates_in_bytes_per_second_are_formatted_as_bandwidth_and_sections_not_repeated() -> None:
    from vsim.report.formatting import format_value, summary_rows

    # 1.2e9 B/s = 9.6e9 bit/s: a bandwidth, not a duration (the name ends in _s).
    assert format_value("storage.datastores.ds.peak_transfer_bytes_s", 1.2e9) == "9.6 Gbit/s"
    rows = summary_rows({"hosts": 2, "storage": {"vms_paused": 3}, "network": {"x": 1.0},
                         "moves": {"m": {"vms": 1}}})
    assert not any(str(r[0]).startswith(("storage", "network", "moves")) for r in rows)
