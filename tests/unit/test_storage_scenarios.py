"""The shipped storage and network scenarios run and show what their descriptions promise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vsim

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_vdi_boot_storm_stretches_the_boots() -> None:
    r = vsim.run(vsim.load_scenario(SCENARIOS / "vdi-boot-storm.yaml"))
    boots = r.tables["boots"]
    assert len(boots) == 600 and boots["boot_s"].notna().all()
    alone = 800 / 150 + 60  # its own read rate, then initialising
    assert boots["boot_s"].min() >= alone - 1e-6
    # The datastore moved the 600 x 800 MB the boots read and nothing else (linked clones copy
    # nothing); 480 GB through 1.2 GB/s is 400 s of a saturated datastore in a 5-minute ramp,
    # so boots take several times as long as alone.
    rows = r.tables["datastores"]
    assert (rows["transfer_bytes_s"] * 300).sum() == pytest.approx(600 * 800e6)
    assert rows["transfer_bytes_s"].max() <= 1.2e9 * (1 + 1e-9)
    assert rows["transfer_bytes_s"].max() > 0.95 * 1.2e9
    assert r.summary["storage"]["boot_s"]["p95"] > 2 * alone
    # Linked clones: created in 5 s, nothing copied.
    assert (r.tables["deploys"]["deploy_s"] == 5.0).all()
    assert (r.tables["deploys"]["bytes_copied"] == 0).all()


def test_dev_test_clones_and_fills_its_datastore() -> None:
    r = vsim.run(vsim.load_scenario(SCENARIOS / "dev-test.yaml", overrides=["duration=3 d"]))
    d = r.tables["deploys"]
    linked = d[d["clone"] == "linked"]
    full = d[d["clone"] == "full"]
    assert (linked["deploy_s"] == 3.0).all()
    # A full clone copies the template's 22 GiB at most at its own 200 MB/s.
    assert (full["bytes_copied"] == 22 * 2**30).all()
    assert (full["deploy_s"] >= 22 * 2**30 / 200e6 - 1e-6).all()
    fill = r.tables["datastores"]["fill_frac"].to_numpy()
    assert fill[-1] > fill[0]  # what the VMs write fills it
    snaps = r.tables["events"]
    assert (snaps["kind"] == "snapshot_taken").sum() > 0
    assert (snaps["kind"] == "snapshot_consolidated").sum() > 0


def test_cloud_migration_moves_every_vm_in_its_waves() -> None:
    r = vsim.run(vsim.load_scenario(SCENARIOS / "cloud-migration.yaml"))
    moves = r.summary["moves"]
    # 50 front ends in waves of 10; 6 databases in waves of 2.
    assert (moves["front-ends"]["moved"], moves["front-ends"]["waves"]) == (50, 5)
    assert (moves["databases"]["moved"], moves["databases"]["waves"]) == (6, 3)
    assert moves["databases"]["began_s"] == 86400.0
    # The WAN link is what limits: saturated while copies run.
    busiest = r.summary["network"]["busiest_links"][0]
    assert busiest["link"] == "onprem/uplink-out"
    assert busiest["peak_utilisation"] == pytest.approx(1.0)
    # Every VM ends in the cloud.
    vms = r.tables["vms"]
    last = vms[vms["time_s"] == vms["time_s"].max()]
    cloud = set(np.flatnonzero(r.tables["host_info"]["group"] == "cloud-host"))
    assert set(last["host"]) <= cloud


def test_the_run_line_gives_the_storage_network_and_move_figures(tmp_path: Path) -> None:
    from conftest import vsim_cli

    done = vsim_cli("run", "cloud-migration", "--out", str(tmp_path / "out"), "--no-report",
                    cwd=SCENARIOS.parent)
    assert done.returncode == 0, done.stderr
    assert "; busiest link onprem/uplink-out at 100 %" in done.stderr
    assert "; move front-ends: 50 of 50 VMs in 5 wave(s), 2.3 h" in done.stderr
    assert "; move databases: 6 of 6 VMs in 3 wave(s)" in done.stderr
