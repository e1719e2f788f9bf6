"""Datastores, thin and thick disks, snapshots, clones and boots in whole runs, against times and
sizes computed by hand from the scenarios' numbers (in the comments next to each expectation)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import events_of, run_text, scenario

import vsim

GiB, MiB = 2.0**30, 2.0**20

# Four app VMs on thin qcow2 disks (5 GiB written of 40 GiB, every write to a new block at
# 10 MiB/s) and two full clones of a 20 GiB template holding 10 GiB, on one 100 GiB datastore.
THIN = """
name: thin
duration: 2 h
period: 10 min
hosts:
  - {{name: h, count: 2, cores: 16, core_speed: 2 GHz, ram: 256 GiB}}
datastores:
  - {{name: ds1, capacity: {capacity}, bandwidth: 200 MiB/s}}
templates:
  - name: gold
    disk: {{size: 20 GiB, used: 10 GiB, format: qcow2, datastore: ds1}}
vms:
  - name: app
    count: 4
    ram: 4 GiB
    write_rate: 10 MiB/s
    disks: [{{size: 40 GiB, format: {fmt}, used: 5 GiB, new_writes: 100%}}]
    workload: busy
  - {{name: dev, count: 2, ram: 2 GiB, template: gold, clone: full}}
workloads:
  busy: {{kind: constant, level: 50%}}
"""


def thin(capacity: str = "100 GiB", fmt: str = "qcow2") -> vsim.Result:
    return run_text(THIN.format(capacity=capacity, fmt=fmt))


def test_full_clones_copy_at_the_datastores_bandwidth_shared_max_min() -> None:
    r = thin()
    deploys = r.tables["deploys"]
    # Two 10 GiB copies within one datastore cross it twice each: 4 shares of 200 MiB/s, so each
    # copies at 50 MiB/s and takes 10 GiB / 50 MiB/s = 204.8 s.
    assert deploys["deploy_s"].tolist() == pytest.approx([10 * 1024 / 50] * 2)
    assert deploys["bytes_copied"].tolist() == [10 * GiB] * 2
    assert [t for t, _, _ in events_of(r, "vm_deployed")] == pytest.approx([204.8, 204.8])
    # The dev VMs start only once deployed.
    info = r.tables["vm_info"].set_index("name")
    assert info.loc[["dev-0", "dev-1"], "start_s"].tolist() == pytest.approx([204.8, 204.8])
    assert info.loc["app-0", "start_s"] == 0.0


def test_a_thin_datastore_fills_at_the_instant_the_writes_say_and_pauses_its_writers() -> None:
    r = thin()
    # At 0: the template's 10 GiB + 4 x 5 GiB + the two clones' 10 GiB (taken when the copy
    # starts) = 50 GiB. The apps add 4 x 10 MiB/s from 0; the clones, once deployed at 204.8 s,
    # 1 MiB/s (default write rate) x 10 % new blocks each. Full when
    # 40 t + 0.2 (t - 204.8) = 50 GiB = 51200 MiB: t = (51200 + 0.2 * 204.8) / 40.2.
    full_at = (51200 + 0.2 * 204.8) / 40.2
    events = events_of(r, "datastore_full")
    assert [(t, s) for t, s, _ in events] == [(pytest.approx(full_at), "ds1")]
    paused = events_of(r, "vm_paused")
    assert sorted(s for _, s, _ in paused) == ["app-0", "app-1", "app-2", "app-3", "dev-0", "dev-1"]
    # Nothing frees space, so they stay paused to the end: 6 x (7200 - full_at) s.
    st = r.summary["storage"]
    assert st["vm_hours_paused"] == pytest.approx(6 * (7200 - full_at) / 3600)
    assert st["datastores"]["ds1"]["peak_fill_frac"] == pytest.approx(1.0)
    # Provisioned: template 20 + 4 x 40 + 2 x 20 GiB = 220 GiB on 100 GiB: overcommitted 2.2 x.
    assert st["datastores"]["ds1"]["overcommit"] == pytest.approx(2.2)
    # The deployed clones hold their 10 GiB plus 0.1 MiB/s from 204.8 s until the pause.
    assert r.tables["deploys"]["space_bytes"].tolist() == pytest.approx(
        [10 * GiB + 0.1 * MiB * (full_at - 204.8)] * 2)


def test_a_paused_vm_gets_no_cpu() -> None:
    r = thin()
    full_at = (51200 + 0.2 * 204.8) / 40.2
    vms = r.tables["vms"]
    app = vms[vms["vm"] == 0]
    before = app[app["time_s"] + 600 <= full_at]
    after = app[app["time_s"] >= full_at]
    # 50 % of one 2 GHz vCPU while it runs; nothing once paused (the demand stays, unmet).
    assert before["cpu_alloc_hz"].to_numpy() == pytest.approx(1e9)
    assert after["cpu_alloc_hz"].to_numpy() == pytest.approx(0.0)
    assert (after["cpu_demand_hz"].to_numpy() > 0).all()


def test_thick_disks_take_their_size_at_once_and_never_grow() -> None:
    r = thin(capacity="1 TiB", fmt="vmdk")  # vmdk: thick by default
    # 10 (template) + 4 x 40 (thick) + 2 x 10 (thin clones of the qcow2 template) = 190 GiB at
    # the start; only the clones grow, 2 x 1 MiB/s x 10 % from 204.8 s to the end.
    used = r.summary["storage"]["datastores"]["ds1"]["used_bytes"]
    assert used == pytest.approx(190 * GiB + 0.2 * MiB * (7200 - 204.8))
    assert not events_of(r, "vm_paused")


def test_thick_disks_that_do_not_fit_are_refused_before_the_run() -> None:
    # The template's 10 GiB and 4 x 40 GiB thick = 170 GiB (the clones come later) on 100 GiB.
    with pytest.raises(vsim.ScenarioError, match=r"datastore 'ds1' cannot hold what is on it at "
                       r"the start: 170 GiB .* on 100 GiB"):
        thin(fmt="vmdk")


SNAP = """
name: snap
duration: 3 h
period: 10 min
hosts:
  - {name: h, count: 1, cores: 16, core_speed: 2 GHz, ram: 256 GiB}
datastores:
  - {name: ds1, capacity: 100 GiB, bandwidth: 100 MiB/s}
vms:
  - name: db
    count: 2
    ram: 8 GiB
    write_rate: 4 MiB/s
    disks: [{size: 50 GiB, format: vmdk, provisioning: thick}]
    snapshots: {at: 30 min, keep: 1 h}
    workload: busy
workloads:
  busy: {kind: constant, level: 50%}
"""


def test_a_snapshot_delta_takes_every_write_until_consolidated() -> None:
    r = run_text(SNAP)
    rows = r.tables["datastores"].set_index("time_s")
    # Thick: 2 x 50 GiB from the start and no growth; the deltas from 30 min take 2 x 4 MiB/s
    # for an hour: 2 x 4 MiB x 3600 s = 28800 MiB more at 1 h 30.
    # ... but the datastore holds only 100 GiB: the thick disks fill it, so the deltas find no
    # room at all: the VMs pause the moment the snapshot is taken.
    assert [t for t, _, _ in events_of(r, "datastore_full")] == pytest.approx([1800.0])
    assert rows.loc[0.0, "used_bytes"] == pytest.approx(100 * GiB)


def test_consolidation_frees_the_delta_and_resumes_paused_vms() -> None:
    r = run_text(SNAP.replace("capacity: 100 GiB", "capacity: 110 GiB"))
    # 10 GiB free for the deltas, filled at 8 MiB/s: 10240 / 8 = 1280 s after 30 min.
    full_at = 1800 + 10240 / 8
    assert [t for t, _, _ in events_of(r, "datastore_full")] == pytest.approx([full_at])
    # At 1 h 30 the deltas (5 GiB each) are consolidated: read and written on the datastore,
    # 2 flows x 2 crossings of 100 MiB/s: 25 MiB/s each, 5120 / 25 = 204.8 s; then the space is
    # free again and the VMs resume.
    done = 5400 + 5 * 1024 / 25
    # One event for the group: its two VMs' 5 GiB deltas.
    assert events_of(r, "snapshot_consolidated") == [(pytest.approx(done), "db",
                                                       "2 VM(s), 10 GiB freed")]
    assert events_of(r, "snapshot_taken") == [(1800.0, "db", "2 VM(s)")]
    assert [t for t, _, _ in events_of(r, "vm_resumed")] == pytest.approx([done] * 2)
    assert r.summary["storage"]["vm_hours_paused"] == pytest.approx(2 * (done - full_at) / 3600)


VDI = """
name: vdi
duration: 2 h
period: 5 min
hosts:
  - {{name: h, count: 4, cores: 32, core_speed: 2 GHz, ram: 512 GiB, storage: {path}}}
datastores:
  - {{name: vdi, capacity: 10 TiB, bandwidth: 400 MB/s}}
templates:
  - name: win
    disk: {{size: 40 GiB, used: 20 GiB, format: vmdk, provisioning: thin, datastore: vdi}}
    linked_clone_time: 3 s
vms:
  - name: desk
    count: {count}
    vcpus: 2
    ram: 4 GiB
    template: win
    clone: linked
    start: 1 h
    boot_at_start: true
    boot: {{io: 500 MB, read_rate: 100 MB/s, init: 30 s}}
placement: {{policy: worst-fit, cpu_overcommit: 4}}
"""


def test_a_linked_clone_is_ready_in_its_creation_time_and_boots_at_its_own_read_rate() -> None:
    r = run_text(VDI.format(count=1, path="unlimited"))
    d = r.tables["deploys"]
    assert d["deploy_s"].tolist() == [3.0]
    assert d["bytes_copied"].tolist() == [0.0]
    # Alone: 500 MB at its own 100 MB/s, then 30 s of initialisation.
    assert r.tables["boots"]["boot_s"].tolist() == pytest.approx([500 / 100 + 30])
    assert r.tables["vm_info"]["start_s"].tolist() == [3600.0 + 3.0]


def test_a_boot_storm_shares_the_datastore() -> None:
    r = run_text(VDI.format(count=40, path="unlimited"))
    # 40 boots at once on 400 MB/s: 10 MB/s each, 500 / 10 = 50 s of reading, then 30 s.
    assert r.tables["boots"]["boot_s"].to_numpy() == pytest.approx(50 + 30)
    # Each host's storage path limits first when it is slower: 10 VMs per host (worst-fit) on
    # 50 MB/s: 5 MB/s each, 100 s.
    r = run_text(VDI.format(count=40, path="50 MB/s"))
    assert r.tables["boots"]["boot_s"].to_numpy() == pytest.approx(100 + 30)
    # A linked clone's delta starts at 1 MiB and grows with its writes (1 MiB/s x 10 %).
    space = r.tables["deploys"]["space_bytes"].to_numpy()
    running = 7200 - 3600 - 3 - (100 + 30)  # it writes once it has booted
    assert space == pytest.approx(MiB + 0.1 * MiB * running)


def test_powered_off_vms_take_space_but_never_start() -> None:
    r = run_text(THIN.format(capacity="1 TiB", fmt="qcow2").replace(
        "  - {name: dev, count: 2, ram: 2 GiB, template: gold, clone: full}",
        "  - {name: old, count: 2, ram: 2 GiB, power: off, disks: [{size: 30 GiB, used: 7 GiB}]}"))
    info = r.tables["vm_info"].set_index("name")
    assert np.isnan(info.loc["old-0", "start_s"]) and np.isnan(info.loc["old-1", "start_s"])
    rows = r.tables["datastores"]
    # vmdk: thick by default, so the two powered-off VMs hold 2 x 30 GiB from the start.
    first = rows.iloc[0]["provisioned_bytes"]
    assert first == pytest.approx(20 * GiB + 4 * 40 * GiB + 2 * 30 * GiB)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("datastores:\n  - {name: ds1, capacity: 100 GiB, bandwidth: 200 MiB/s}\n",
                         "").replace("templates:\n  - name: gold\n    disk: {size: 20 GiB, used: "
                                     "10 GiB, format: qcow2, datastore: ds1}\n", ""),
     "declares no datastore"),
    (lambda t: t.replace("datastore: ds1}", "datastore: ds2}"), "no datastore 'ds2'"),
    (lambda t: t.replace("template: gold, clone", "template: silver, clone"),
     "needs template 'silver'"),
    (lambda t: t.replace("template: gold, clone", "clone"), "clone needs a template"),
    (lambda t: t.replace("format: qcow2, used: 5 GiB", "format: vdi, used: 5 GiB"), "format"),
    (lambda t: t.replace("used: 5 GiB, new", "used: 150%, new"), "between 0% and 100%"),
])
def test_storage_mistakes_are_one_clear_error(edit, message: str) -> None:
    text = edit(THIN.format(capacity="100 GiB", fmt="qcow2"))
    with pytest.raises(vsim.ScenarioError, match=message):
        vsim.run(scenario(text))


def test_a_vm_that_starts_writing_on_a_full_datastore_is_paused_at_once() -> None:
    text = THIN.format(capacity="100 GiB", fmt="qcow2").replace(
        "workloads:", "  - {name: late, count: 1, ram: 2 GiB, start: 1 h, write_rate: 1 MiB/s,\n"
        "     disks: [{size: 10 GiB, format: qcow2, used: 0}]}\nworkloads:")
    r = run_text(text)
    full_at = (51200 + 0.2 * 204.8) / 40.2  # as above: the late VM is not there yet
    assert [t for t, _, _ in events_of(r, "datastore_full")] == [pytest.approx(full_at)]
    late = [t for t, s, _ in events_of(r, "vm_paused") if s == "late"]
    assert late == [3600.0]  # it starts at 1 h and its first write finds no room
    assert r.summary["storage"]["datastores"]["ds1"]["peak_fill_frac"] == pytest.approx(1.0)


def test_the_datastore_table_gives_what_the_vms_wrote_in_each_period() -> None:
    r = thin(capacity="1 TiB")
    rows = r.tables["datastores"].set_index("time_s")
    # First 10 minutes: the apps write 4 x 10 MiB/s throughout; the two clones 1 MiB/s each
    # from their deploy at 204.8 s (a clone's copy is transfer, not a VM write).
    first = (4 * 10 * MiB * 600 + 2 * 1 * MiB * (600 - 204.8)) / 600
    assert rows.loc[0.0, "vm_write_bytes_s"] == pytest.approx(first)
    assert rows.loc[600.0, "vm_write_bytes_s"] == pytest.approx(42 * MiB)
    # Copies: 2 x 10 GiB read and written on ds1 (4 x 10 GiB through it) in the first period.
    assert rows.loc[0.0, "transfer_bytes_s"] == pytest.approx(4 * 10 * GiB / 600)


def test_a_full_clone_that_does_not_fit_waits_for_room() -> None:
    r = thin(capacity="45 GiB")
    # At 0: the template's 10 GiB + 4 x 5 GiB = 30 GiB. dev-0's 10 GiB copy fits (40 GiB);
    # dev-1's would make 50 GiB: it waits, and nothing ever frees room for it.
    assert events_of(r, "deploy_waiting") == [(0.0, "dev-1", "no room on its datastore for the "
                                                            "clone")]
    d = r.tables["deploys"].set_index("name")
    # dev-0 copies alone: twice through ds1's 200 MiB/s, 100 MiB/s, 10 GiB in 102.4 s.
    assert d.loc["dev-0", "deploy_s"] == pytest.approx(10 * 1024 / 100)
    assert np.isnan(d.loc["dev-1", "deployed_s"])
    assert np.isnan(r.tables["vm_info"].set_index("name").loc["dev-1", "start_s"])
