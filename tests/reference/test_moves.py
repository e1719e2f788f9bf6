"""Moving VMs to another site in waves: disk copies sharing the WAN while the VMs write, then
memory live-migrated, against times computed by hand from the scenario's numbers."""

from __future__ import annotations

import pytest
from conftest import events_of, run_text, scenario

import vsim

MB = 1e6
GiB = 2.0**30

EXIT = """
name: move
duration: 6 h
period: 10 min
sites:
  - {{name: onprem, uplink: 1 Gbit/s}}
  - {{name: cloud, uplink: 10 Gbit/s}}
hosts:
  - {{name: old, count: 2, site: onprem, cores: 32, core_speed: 2 GHz, ram: 512 GiB,
      network: 10 Gbit/s}}
  - {{name: new, count: 2, site: cloud, cores: 32, core_speed: 2 GHz, ram: 512 GiB,
      network: 10 Gbit/s}}
datastores:
  - {{name: san, site: onprem, capacity: 50 TiB}}
vms:
  - name: app
    count: 8
    ram: 8 GiB
    hosts: old
    write_rate: 1 MB/s
    dirty_rate: 0
    disks: [{{size: 100 GiB, format: vmdk, provisioning: thin, used: 25 GB}}]
moves:
  - {{name: exit, vms: app, to: new, start: 1 h, waves: {{size: 4, gap: {gap}}}{extra}}}
"""


def test_waves_copy_disks_over_the_shared_uplink_then_migrate_memory() -> None:
    r = run_text(EXIT.format(gap="0", extra=""))
    # A wave of 4: four 25 GB copies share the 125 MB/s uplink, 31.25 MB/s each; each VM writes
    # 1 MB/s that must follow, so a copy gains 30.25 MB/s: 25e9 / 30.25e6 s.
    copy = 25e9 / 30.25e6
    # Then 4 memory migrations of 8 GiB (+ page headers and device state: the migrations
    # table's bytes) on the same uplink at 31.25 MB/s, plus QEMU's setup and resume.
    m = r.tables["migrations"]
    assert (m["reason"] == "move exit").all() and len(m) == 8
    memory = m["bytes"].iloc[0] / (31.25 * MB) + 0.05 + 0.02
    wave = copy + memory
    moves = r.tables["moves"]
    assert moves["copy_end_s"].to_numpy() == pytest.approx(
        [3600 + copy] * 4 + [3600 + wave + copy] * 4)
    assert moves["moved_s"].to_numpy() == pytest.approx([3600 + wave] * 4 + [3600 + 2 * wave] * 4)
    s = r.summary["moves"]["exit"]
    assert s["waves"] == 2 and s["moved"] == 8
    assert s["wave_s"] == pytest.approx([wave, wave])
    # Sent: the data and the writes made while it was copied.
    assert moves["sent_bytes"].to_numpy() == pytest.approx(25e9 + 1e6 * copy)
    # They now run in the cloud and stay there.
    info = r.tables["vms"]
    last = info[info["time_s"] == info["time_s"].max()]
    assert set(last["host"]) <= {2, 3}


def test_a_gap_between_waves_and_a_concurrency_limit() -> None:
    r = run_text(EXIT.format(gap="10 min", extra=", max_concurrent: 2"))
    # Two copies at a time: 62.5 MB/s each, gaining 61.5 MB/s: 25e9 / 61.5e6 s per pair.
    pair = 25e9 / 61.5e6
    moves = r.tables["moves"]
    first_wave = moves[moves["wave"] == 1]["copy_end_s"].to_numpy()
    assert first_wave[:2] == pytest.approx([3600 + pair] * 2)
    # The second pair starts as the first pair's copies end, sharing the uplink with their
    # memory migrations, so it ends later than another `pair`.
    assert (first_wave[2:] > 3600 + 2 * pair).all()
    ends = [t for t, _, _ in events_of(r, "move_wave_end")]
    starts = [t for t, _, _ in events_of(r, "move_wave_start")]
    assert starts[1] == pytest.approx(ends[0] + 600)


def test_a_move_to_an_unknown_host_group_is_one_clear_error() -> None:
    text = EXIT.format(gap="0", extra="").replace("to: new", "to: nwe")
    with pytest.raises(vsim.ScenarioError, match=r"moves.0.to: no host group 'nwe'.*did you mean "
                       "'new'"):
        vsim.run(scenario(text))


def test_a_cold_move_shuts_down_copies_at_full_speed_and_boots_at_the_destination() -> None:
    r = run_text(EXIT.format(gap="0", extra=", mode: cold, boot: 2 min"))
    # Shut down at the wave's start, so nothing is written meanwhile: four 25 GB copies at
    # 125 / 4 = 31.25 MB/s each take 800 s; then 2 min to boot on a cloud host (already on).
    copy = 25e9 / 31.25e6
    wave = copy + 120
    moves = r.tables["moves"]
    assert moves["copy_end_s"].to_numpy() == pytest.approx([3600 + copy] * 4
                                                           + [3600 + wave + copy] * 4)
    assert moves["moved_s"].to_numpy() == pytest.approx([3600 + wave] * 4
                                                        + [3600 + 2 * wave] * 4)
    assert moves["down_s"].to_numpy() == pytest.approx([wave] * 8)
    assert moves["sent_bytes"].to_numpy() == pytest.approx(25e9)  # nothing to re-send
    assert len(r.tables["migrations"]) == 0  # no live migration at all
    # While down (at the end of the period from 1 h) the VM is on no host; afterwards it runs
    # in the cloud.
    vms = r.tables["vms"]
    app0 = vms[vms["vm"] == 0].set_index("time_s")
    assert app0.loc[3600.0, "state"] == "down" and app0.loc[3600.0, "host"] == -1
    assert app0.iloc[-1]["host"] in (2, 3) and app0.iloc[-1]["state"] == "running"


def test_a_cold_move_waits_for_a_destination_host_to_boot() -> None:
    text = EXIT.format(gap="0", extra=", mode: cold, boot: 2 min").replace(
        "network: 10 Gbit/s}\ndatastores", "network: 10 Gbit/s, initially: off}\ndatastores")
    r = run_text(text)
    # The cloud hosts are off: the first copies' end powers one on (2 min, the default boot
    # time), and the VMs boot on it once it is on.
    copy = 25e9 / 31.25e6
    moves = r.tables["moves"]
    first = moves[moves["wave"] == 1]
    assert first["moved_s"].to_numpy() == pytest.approx(3600 + copy + 120 + 120)
